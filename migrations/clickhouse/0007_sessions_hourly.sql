-- Usage per SIM, network, radio access type and hour, with the sessions started in the hour: the
-- analytics layer's cube for sessions and RAT. A session counts once, in the hour of its first
-- counted update (the one that starts its counters: event time = start, delta = total).
-- Sorted by time first: analytics reads ranges of hours of one tenant.
CREATE TABLE IF NOT EXISTS sessions_hourly (
    tenant_id    String,
    customer_id  String,
    iccid        String,
    mcc_mnc      String,
    rat          String,
    hour         DateTime,
    bytes_in     UInt64,
    bytes_out    UInt64,
    sessions     UInt64
) ENGINE = SummingMergeTree((bytes_in, bytes_out, sessions))
PARTITION BY toYYYYMM(hour)
ORDER BY (tenant_id, hour, iccid, mcc_mnc, rat, customer_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS sessions_hourly_mv TO sessions_hourly AS
SELECT tenant_id, customer_id, iccid, mcc_mnc, rat, hour, delta_in AS bytes_in, delta_out AS bytes_out,
       toUInt64(event_time = started_at AND delta_in = total_in AND delta_out = total_out) AS sessions
FROM session_updates;

-- History: the updates still kept (7 days before the upgrade) fill the cube once. Migrations run
-- before the workers write, and a re-run of this migration finds the cube filled and adds nothing.
INSERT INTO sessions_hourly
SELECT tenant_id, customer_id, iccid, mcc_mnc, rat, hour, delta_in AS bytes_in, delta_out AS bytes_out,
       toUInt64(event_time = started_at AND delta_in = total_in AND delta_out = total_out) AS sessions
FROM session_updates
WHERE (SELECT count() FROM sessions_hourly) = 0;
