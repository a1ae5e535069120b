-- CDRs (one row per cdr_id) and device telemetry.
CREATE TABLE IF NOT EXISTS cdrs (
    cdr_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, iccid TEXT NOT NULL,
    start INTEGER NOT NULL, end INTEGER NOT NULL, day TEXT NOT NULL, mcc_mnc TEXT NOT NULL,
    bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL, rating_group INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cdrs_day ON cdrs (tenant_id, day, iccid);
CREATE TABLE IF NOT EXISTS device_telemetry (
    tenant_id TEXT NOT NULL, device_id TEXT NOT NULL, at INTEGER NOT NULL,
    temperature_c REAL, humidity_pct REAL, battery_pct REAL, light_lux REAL, latitude REAL, longitude REAL,
    PRIMARY KEY (tenant_id, device_id, at)
) WITHOUT ROWID;
