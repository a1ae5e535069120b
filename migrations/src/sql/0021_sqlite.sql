-- The anomaly trigger: the anomaly kinds an alert rule hears of and the least severity (see
-- 0021_postgres.sql). SQLite adds no table constraint to an existing table: that kinds come with
-- a severity is the domain's to keep.
ALTER TABLE alert_rules ADD COLUMN anomaly_kinds TEXT;
ALTER TABLE alert_rules ADD COLUMN anomaly_min_severity TEXT
    CHECK (anomaly_min_severity IS NULL OR anomaly_min_severity IN ('LOW', 'MEDIUM', 'HIGH'));

-- sim_imei_changes: the SIMs' changes of device (see 0021_postgres.sql).
CREATE TABLE sim_imei_changes (
    id         BLOB PRIMARY KEY,
    tenant_id  BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sim_id     BLOB NOT NULL REFERENCES sims (id) ON DELETE CASCADE,
    at         TEXT NOT NULL,
    from_imei  TEXT NOT NULL CHECK (length(from_imei) = 15),
    to_imei    TEXT NOT NULL CHECK (length(to_imei) = 15)
);
CREATE INDEX sim_imei_changes_by_sim ON sim_imei_changes (sim_id, at);
