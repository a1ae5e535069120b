-- Tenant usage per SIM, network and day (the cube migration 1 of ClickHouse holds).
CREATE TABLE IF NOT EXISTS usage_daily (
    tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, iccid TEXT NOT NULL,
    network TEXT NOT NULL, day TEXT NOT NULL,
    bytes_up INTEGER NOT NULL, bytes_down INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day, network, customer_id, iccid)
) WITHOUT ROWID;
