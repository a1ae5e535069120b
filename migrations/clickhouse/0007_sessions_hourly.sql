-- Usage per SIM, network, radio access type and hour, with the sessions started in the hour: the
-- analytics layer's cube for sessions and RAT. A session counts once, in the hour of its first
-- counted update (the one that starts its counters: event time = start, delta = total).
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
ORDER BY (tenant_id, iccid, hour, mcc_mnc, rat, customer_id);

-- The updates still kept (7 days) fill it once; migrations run before the workers write.
INSERT INTO sessions_hourly
SELECT tenant_id, customer_id, iccid, mcc_mnc, rat, hour, delta_in AS bytes_in, delta_out AS bytes_out,
       toUInt64(event_time = started_at AND delta_in = total_in AND delta_out = total_out) AS sessions
FROM session_updates;

CREATE MATERIALIZED VIEW IF NOT EXISTS sessions_hourly_mv TO sessions_hourly AS
SELECT tenant_id, customer_id, iccid, mcc_mnc, rat, hour, delta_in AS bytes_in, delta_out AS bytes_out,
       toUInt64(event_time = started_at AND delta_in = total_in AND delta_out = total_out) AS sessions
FROM session_updates;
