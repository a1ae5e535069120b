-- Rating results: per rating run, SIM, day and network, the bytes, the bytes after per-record
-- rounding and the exact cost (12 decimals); and the monthly access fees per SIM. Queries read
-- the runs the transactional store names current; older runs' rows are removed after a switch.
CREATE TABLE IF NOT EXISTS rated_usage (
    run_id        String,
    tenant_id     String,
    kind          String,
    customer_id   String,
    iccid         String,
    day           Date,
    mcc_mnc       String,
    zone          String,
    tariff_plan   String,
    records       UInt64,
    bytes_in      UInt64,
    bytes_out     UInt64,
    rounded_bytes UInt64,
    cost          Decimal128(12)
) ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, run_id, day, iccid, mcc_mnc);

CREATE TABLE IF NOT EXISTS rated_fees (
    run_id        String,
    tenant_id     String,
    kind          String,
    customer_id   String,
    iccid         String,
    month         Date,
    tariff_plan   String,
    fee           Decimal128(12)
) ENGINE = MergeTree
PARTITION BY toYear(month)
ORDER BY (tenant_id, run_id, month, iccid);
