CREATE TABLE tenants (
    id          BLOB PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE customers (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    external_ref  TEXT,
    created_at    TEXT NOT NULL,
    CONSTRAINT customers_tenant_name UNIQUE (tenant_id, name),
    CONSTRAINT customers_tenant_external_ref UNIQUE (tenant_id, external_ref),
    CONSTRAINT customers_tenant_id UNIQUE (tenant_id, id)
);

CREATE TABLE users (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id    BLOB,
    email          TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    role           TEXT NOT NULL
        CHECK (role IN ('PLATFORM_ADMIN', 'TENANT_ADMIN', 'OPERATOR', 'CUSTOMER_USER', 'VIEWER')),
    password_hash  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    CONSTRAINT users_customer_in_tenant FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id),
    CONSTRAINT users_customer_iff_customer_user CHECK ((role = 'CUSTOMER_USER') = (customer_id IS NOT NULL))
);
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE sims (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id  BLOB,
    iccid        TEXT NOT NULL UNIQUE,
    imsi         TEXT NOT NULL UNIQUE,
    msisdn       TEXT UNIQUE,
    state        TEXT NOT NULL CHECK (state IN ('INVENTORY', 'ACTIVE', 'SUSPENDED', 'TERMINATED')),
    created_at   TEXT NOT NULL,
    CONSTRAINT sims_customer_in_tenant FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE INDEX sims_tenant_iccid ON sims (tenant_id, iccid);
