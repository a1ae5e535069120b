-- Usage per SIM, network, radio access type and hour, with the sessions started in the hour (a
-- session counts in the hour of its first counted update). The writer keeps it like the other cubes.
CREATE TABLE IF NOT EXISTS sessions_hourly (
    tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, iccid TEXT NOT NULL, mcc_mnc TEXT NOT NULL,
    rat TEXT NOT NULL, hour INTEGER NOT NULL, bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL,
    sessions INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, iccid, hour, mcc_mnc, rat, customer_id)
) WITHOUT ROWID;
INSERT INTO sessions_hourly (tenant_id, customer_id, iccid, mcc_mnc, rat, hour, bytes_in, bytes_out, sessions)
SELECT tenant_id, customer_id, iccid, mcc_mnc, rat, hour, SUM(delta_in), SUM(delta_out),
       SUM(event_time = started_at AND delta_in = total_in AND delta_out = total_out)
FROM session_updates GROUP BY tenant_id, customer_id, iccid, mcc_mnc, rat, hour;
CREATE INDEX IF NOT EXISTS usage_hourly_time ON usage_hourly (tenant_id, hour);
CREATE INDEX IF NOT EXISTS usage_monthly_time ON usage_monthly (tenant_id, month);
CREATE INDEX IF NOT EXISTS sessions_hourly_time ON sessions_hourly (tenant_id, hour);
