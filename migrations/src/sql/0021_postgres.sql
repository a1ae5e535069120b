-- The anomaly trigger (alert metric ANOMALY): the anomaly kinds a rule hears of (comma-separated;
-- empty: every kind) and the least severity. QUOTA_EXHAUSTION_FORECAST needs no column: its
-- threshold is the days ahead, and the metric column takes any name.
ALTER TABLE alert_rules ADD COLUMN anomaly_kinds text;
ALTER TABLE alert_rules ADD COLUMN anomaly_min_severity text
    CHECK (anomaly_min_severity IN ('LOW', 'MEDIUM', 'HIGH'));
-- Kinds come with a least severity.
ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_anomaly_condition
    CHECK (anomaly_kinds IS NULL OR anomaly_min_severity IS NOT NULL);

-- sim_imei_changes: each time a SIM's sessions reported another IMEI than its last (it moved
-- into another device), as the activity recorder saw it; the anomaly pass reads them as the
-- SIM's device history (IMEI_CHANGE anomalies). Kept with the SIM.
CREATE TABLE sim_imei_changes (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sim_id     uuid NOT NULL REFERENCES sims (id) ON DELETE CASCADE,
    at         timestamptz NOT NULL,
    from_imei  text NOT NULL CHECK (from_imei ~ '^[0-9]{15}$'),
    to_imei    text NOT NULL CHECK (to_imei ~ '^[0-9]{15}$')
);
CREATE INDEX sim_imei_changes_by_sim ON sim_imei_changes (sim_id, at);
GRANT SELECT, INSERT, UPDATE, DELETE ON sim_imei_changes TO ioto_app;
ALTER TABLE sim_imei_changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE sim_imei_changes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sim_imei_changes
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
