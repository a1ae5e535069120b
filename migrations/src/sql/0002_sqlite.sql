-- Fleet: devices, SIM details and bindings, labels, audit trail, scheduled transitions,
-- label catalogue, per-tenant visibility setting.

ALTER TABLE tenants ADD COLUMN customers_see_sims INTEGER NOT NULL DEFAULT 1;

CREATE TABLE devices (
    id                BLOB PRIMARY KEY,
    tenant_id         BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id       BLOB,
    imei              TEXT NOT NULL,
    name              TEXT NOT NULL,
    kind              TEXT NOT NULL,
    connectivity      TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('REGISTERED', 'IN_SERVICE', 'MAINTENANCE', 'RETIRED')),
    labels            TEXT NOT NULL DEFAULT '{}',
    last_activity_at  TEXT,
    version           INTEGER NOT NULL DEFAULT 1,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    CONSTRAINT devices_customer_in_tenant FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id),
    CONSTRAINT devices_tenant_imei UNIQUE (tenant_id, imei),
    CONSTRAINT devices_tenant_id UNIQUE (tenant_id, id)
);
CREATE INDEX devices_tenant_name ON devices (tenant_id, name, id);

-- SQLite cannot change a CHECK constraint in place: the SIM table is rebuilt.
CREATE TABLE sims_v2 (
    id                BLOB PRIMARY KEY,
    tenant_id         BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id       BLOB,
    iccid             TEXT NOT NULL UNIQUE,
    imsi              TEXT NOT NULL UNIQUE,
    msisdn            TEXT UNIQUE,
    state             TEXT NOT NULL CHECK (state IN ('INVENTORY', 'ACTIVE', 'SUSPENDED', 'LOST_STOLEN', 'TERMINATED')),
    created_at        TEXT NOT NULL,
    sim_type          TEXT NOT NULL DEFAULT 'POSTPAID' CHECK (sim_type IN ('PREPAID', 'POSTPAID', 'DATA_ONLY')),
    tariff_plan       TEXT,
    labels            TEXT NOT NULL DEFAULT '{}',
    device_id         BLOB,
    pin_sealed        TEXT,
    puk_sealed        TEXT,
    activation_code   TEXT,
    last_network      TEXT,
    last_activity_at  TEXT,
    import_id         BLOB,
    version           INTEGER NOT NULL DEFAULT 1,
    updated_at        TEXT NOT NULL DEFAULT '1970-01-01 00:00:00+00:00',
    CONSTRAINT sims_customer_in_tenant FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id),
    CONSTRAINT sims_device_in_tenant FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, id)
);
INSERT INTO sims_v2 (id, tenant_id, customer_id, iccid, imsi, msisdn, state, created_at, updated_at)
    SELECT id, tenant_id, customer_id, iccid, imsi, msisdn, state, created_at, created_at FROM sims;
DROP TABLE sims;
ALTER TABLE sims_v2 RENAME TO sims;
CREATE INDEX sims_tenant_iccid ON sims (tenant_id, iccid);
CREATE INDEX sims_device ON sims (device_id);
CREATE INDEX sims_tenant_state ON sims (tenant_id, state, id);
CREATE INDEX sims_tenant_created ON sims (tenant_id, created_at, id);
CREATE INDEX sims_tenant_updated ON sims (tenant_id, updated_at, id);
CREATE INDEX sims_tenant_customer ON sims (tenant_id, customer_id, iccid);

CREATE TABLE audit_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id    BLOB,
    entity_kind    TEXT NOT NULL CHECK (entity_kind IN ('SIM', 'DEVICE')),
    entity_id      BLOB NOT NULL,
    entity_ref     TEXT NOT NULL,
    action         TEXT NOT NULL,
    actor          TEXT NOT NULL,
    actor_user_id  BLOB,
    at             TEXT NOT NULL,
    old_value      TEXT,
    new_value      TEXT,
    note           TEXT
);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id DESC);
CREATE INDEX audit_events_entity ON audit_events (entity_id, id DESC);

CREATE TABLE scheduled_transitions (
    id                 BLOB PRIMARY KEY,
    tenant_id          BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id        BLOB,
    sim_id             BLOB NOT NULL REFERENCES sims (id) ON DELETE CASCADE,
    iccid              TEXT NOT NULL,
    target_state       TEXT NOT NULL,
    effective_at       TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('PENDING', 'APPLIED', 'FAILED', 'CANCELLED')),
    requested_by       TEXT NOT NULL,
    requested_by_user  BLOB,
    note               TEXT,
    created_at         TEXT NOT NULL,
    finished_at        TEXT,
    outcome            TEXT,
    claimed_until      TEXT
);
CREATE INDEX scheduled_transitions_due ON scheduled_transitions (status, effective_at);
CREATE INDEX scheduled_transitions_sim ON scheduled_transitions (sim_id, created_at DESC);

CREATE TABLE label_suggestions (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    suggested    TEXT NOT NULL DEFAULT '[]',
    description  TEXT,
    PRIMARY KEY (tenant_id, key)
);
