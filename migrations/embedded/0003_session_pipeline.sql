-- Counted session updates with the live view and the hourly and monthly cubes, which the
-- adapter keeps itself (ClickHouse fills them with materialized views).
CREATE TABLE IF NOT EXISTS session_updates (
    tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, iccid TEXT NOT NULL, session_id TEXT NOT NULL,
    started_at INTEGER NOT NULL, event_time INTEGER NOT NULL, hour INTEGER NOT NULL,
    mcc_mnc TEXT NOT NULL, rat TEXT NOT NULL, ip_address TEXT NOT NULL, cell_id TEXT NOT NULL,
    terminated INTEGER NOT NULL, total_in INTEGER NOT NULL, total_out INTEGER NOT NULL,
    delta_in INTEGER NOT NULL, delta_out INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS session_updates_sim ON session_updates (tenant_id, iccid, event_time);
CREATE TABLE IF NOT EXISTS live_sessions (
    tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, iccid TEXT NOT NULL, session_id TEXT NOT NULL,
    started_at INTEGER NOT NULL, event_time INTEGER NOT NULL, mcc_mnc TEXT NOT NULL, rat TEXT NOT NULL,
    ip_address TEXT NOT NULL, cell_id TEXT NOT NULL, terminated INTEGER NOT NULL,
    total_in INTEGER NOT NULL, total_out INTEGER NOT NULL,
    PRIMARY KEY (iccid, session_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_hourly (
    tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, iccid TEXT NOT NULL, mcc_mnc TEXT NOT NULL,
    hour INTEGER NOT NULL, bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, iccid, hour, mcc_mnc, customer_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_monthly (
    tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, iccid TEXT NOT NULL, mcc_mnc TEXT NOT NULL,
    month INTEGER NOT NULL, bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, iccid, month, mcc_mnc, customer_id)
) WITHOUT ROWID;
