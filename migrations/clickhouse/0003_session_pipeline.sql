-- Counted session updates: one row per rollup the ingest worker counted, with the usage it added
-- (delta_*) attributed to `hour` (`day` and `month` computed in UTC by the worker, so the server's
-- time zone does not matter). Live state and the cubes follow through materialized views.
CREATE TABLE IF NOT EXISTS session_updates (
    tenant_id    String,
    customer_id  String,
    iccid        String,
    session_id   String,
    started_at   DateTime,
    event_time   DateTime,
    hour         DateTime,
    day          Date,
    month        Date,
    mcc_mnc      String,
    rat          String,
    ip_address   String,
    cell_id      String,
    terminated   UInt8,
    total_in     UInt64,
    total_out    UInt64,
    delta_in     UInt64,
    delta_out    UInt64
) ENGINE = MergeTree
PARTITION BY day
ORDER BY (tenant_id, iccid, event_time, session_id)
{{TTL event_time + INTERVAL 7 DAY}};

-- The latest update of each session (live view; the worker's progress after a restart). All rows
-- of a session share `started_at`, so they meet in one partition and replace each other there.
CREATE TABLE IF NOT EXISTS live_sessions (
    tenant_id    String,
    customer_id  String,
    iccid        String,
    session_id   String,
    started_at   DateTime,
    event_time   DateTime,
    mcc_mnc      String,
    rat          String,
    ip_address   String,
    cell_id      String,
    terminated   UInt8,
    total_in     UInt64,
    total_out    UInt64
) ENGINE = ReplacingMergeTree(event_time)
PARTITION BY toYYYYMMDD(started_at)
ORDER BY (iccid, session_id)
{{TTL started_at + INTERVAL 7 DAY}};

CREATE MATERIALIZED VIEW IF NOT EXISTS live_sessions_mv TO live_sessions AS
SELECT tenant_id, customer_id, iccid, session_id, started_at, event_time, mcc_mnc, rat, ip_address,
       cell_id, terminated, total_in, total_out
FROM session_updates;

-- Bytes per SIM, network and hour.
CREATE TABLE IF NOT EXISTS usage_hourly (
    tenant_id    String,
    customer_id  String,
    iccid        String,
    mcc_mnc      String,
    hour         DateTime,
    bytes_in     UInt64,
    bytes_out    UInt64
) ENGINE = SummingMergeTree((bytes_in, bytes_out))
PARTITION BY toYYYYMM(hour)
ORDER BY (tenant_id, iccid, hour, mcc_mnc, customer_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_hourly_mv TO usage_hourly AS
SELECT tenant_id, customer_id, iccid, mcc_mnc, hour, delta_in AS bytes_in, delta_out AS bytes_out
FROM session_updates;

-- Bytes per SIM, network and month (years sum twelve of these).
CREATE TABLE IF NOT EXISTS usage_monthly (
    tenant_id    String,
    customer_id  String,
    iccid        String,
    mcc_mnc      String,
    month        Date,
    bytes_in     UInt64,
    bytes_out    UInt64
) ENGINE = SummingMergeTree((bytes_in, bytes_out))
PARTITION BY toYear(month)
ORDER BY (tenant_id, iccid, month, mcc_mnc, customer_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_monthly_mv TO usage_monthly AS
SELECT tenant_id, customer_id, iccid, mcc_mnc, month, delta_in AS bytes_in, delta_out AS bytes_out
FROM session_updates;

-- The daily cube of migration 1 is fed too: bytes up are what the device sent (bytes in).
CREATE MATERIALIZED VIEW IF NOT EXISTS usage_daily_mv TO usage_daily AS
SELECT tenant_id, customer_id, iccid, mcc_mnc AS network, day, delta_in AS bytes_up, delta_out AS bytes_down
FROM session_updates;
