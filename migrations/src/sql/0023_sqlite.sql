-- API keys (see the Postgres migration for the columns' meaning).
CREATE TABLE api_keys (
    id                 BLOB PRIMARY KEY,
    tenant_id          BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id        BLOB,
    name               TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role               TEXT NOT NULL
        CHECK (role IN ('PLATFORM_ADMIN', 'TENANT_ADMIN', 'OPERATOR', 'CUSTOMER_USER', 'VIEWER')),
    token_hash         TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    hint               TEXT NOT NULL,
    created_by         BLOB,
    created_at         TEXT NOT NULL,
    expires_at         TEXT,
    last_used_at       TEXT,
    last_used_address  TEXT,
    revoked_at         TEXT,
    rolled_from        BLOB,
    replaced_by        BLOB,
    CONSTRAINT api_keys_customer_in_tenant FOREIGN KEY (tenant_id, customer_id)
        REFERENCES customers (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT api_keys_customer_iff_customer_user CHECK ((role = 'CUSTOMER_USER') = (customer_id IS NOT NULL))
);
CREATE INDEX api_keys_tenant_name ON api_keys (tenant_id, name, id);

-- The audit trail records more than SIMs and devices: SQLite changes a CHECK by rebuilding.
CREATE TABLE audit_events_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id    BLOB,
    entity_kind    TEXT NOT NULL CHECK (entity_kind IN ('SIM', 'DEVICE', 'API_KEY')),
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
INSERT INTO audit_events_new SELECT * FROM audit_events;
DROP TABLE audit_events;
ALTER TABLE audit_events_new RENAME TO audit_events;
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id DESC);
CREATE INDEX audit_events_entity ON audit_events (entity_id, id DESC);
