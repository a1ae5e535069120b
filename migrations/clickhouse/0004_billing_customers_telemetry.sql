-- CDRs: the billing view, kept apart from the session view. One row per cdr_id (the ingest worker
-- skips ids already stored). `day` and `month` are the UTC day and month the charging period
-- starts in, computed by the worker.
CREATE TABLE IF NOT EXISTS cdrs (
    tenant_id    String,
    customer_id  String,
    cdr_id       String,
    iccid        String,
    start        DateTime,
    end          DateTime,
    day          Date,
    month        Date,
    mcc_mnc      String,
    bytes_in     UInt64,
    bytes_out    UInt64,
    rating_group UInt32
) ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (cdr_id);

-- Billed bytes per SIM, network and day; the rating work reads these.
CREATE TABLE IF NOT EXISTS billing_daily (
    tenant_id    String,
    customer_id  String,
    iccid        String,
    mcc_mnc      String,
    day          Date,
    bytes_in     UInt64,
    bytes_out    UInt64,
    records      UInt64
) ENGINE = SummingMergeTree((bytes_in, bytes_out, records))
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, day, iccid, mcc_mnc, customer_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS billing_daily_mv TO billing_daily AS
SELECT tenant_id, customer_id, iccid, mcc_mnc, day, bytes_in, bytes_out, toUInt64(1) AS records
FROM cdrs;

-- Billed bytes per SIM, network and month.
CREATE TABLE IF NOT EXISTS billing_monthly (
    tenant_id    String,
    customer_id  String,
    iccid        String,
    mcc_mnc      String,
    month        Date,
    bytes_in     UInt64,
    bytes_out    UInt64,
    records      UInt64
) ENGINE = SummingMergeTree((bytes_in, bytes_out, records))
PARTITION BY toYear(month)
ORDER BY (tenant_id, month, iccid, mcc_mnc, customer_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS billing_monthly_mv TO billing_monthly AS
SELECT tenant_id, customer_id, iccid, mcc_mnc, month, bytes_in, bytes_out, toUInt64(1) AS records
FROM cdrs;

-- Session usage per sub-customer ('' = SIMs assigned to none), network and day / month.
CREATE TABLE IF NOT EXISTS customer_usage_daily (
    tenant_id    String,
    customer_id  String,
    mcc_mnc      String,
    day          Date,
    bytes_in     UInt64,
    bytes_out    UInt64
) ENGINE = SummingMergeTree((bytes_in, bytes_out))
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, customer_id, day, mcc_mnc);

CREATE MATERIALIZED VIEW IF NOT EXISTS customer_usage_daily_mv TO customer_usage_daily AS
SELECT tenant_id, customer_id, mcc_mnc, day, delta_in AS bytes_in, delta_out AS bytes_out
FROM session_updates;

CREATE TABLE IF NOT EXISTS customer_usage_monthly (
    tenant_id    String,
    customer_id  String,
    mcc_mnc      String,
    month        Date,
    bytes_in     UInt64,
    bytes_out    UInt64
) ENGINE = SummingMergeTree((bytes_in, bytes_out))
PARTITION BY toYear(month)
ORDER BY (tenant_id, customer_id, month, mcc_mnc);

CREATE MATERIALIZED VIEW IF NOT EXISTS customer_usage_monthly_mv TO customer_usage_monthly AS
SELECT tenant_id, customer_id, mcc_mnc, month, delta_in AS bytes_in, delta_out AS bytes_out
FROM session_updates;

-- Device telemetry: one row per reading (90 days).
CREATE TABLE IF NOT EXISTS device_telemetry (
    tenant_id     String,
    device_id     String,
    at            DateTime,
    day           Date,
    temperature_c Nullable(Float64),
    humidity_pct  Nullable(Float64),
    battery_pct   Nullable(Float64),
    light_lux     Nullable(Float64),
    latitude      Nullable(Float64),
    longitude     Nullable(Float64)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, device_id, at)
{{TTL at + INTERVAL 90 DAY}};
