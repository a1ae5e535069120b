-- Bytes per SIM, network and day. Rows with the same key are summed when parts merge; queries
-- still aggregate with sum() because merges happen in the background.
CREATE TABLE IF NOT EXISTS usage_daily (
    tenant_id   String,
    customer_id String,
    iccid       String,
    network     String,
    day         Date,
    bytes_up    UInt64,
    bytes_down  UInt64
) ENGINE = SummingMergeTree((bytes_up, bytes_down))
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, day, network, customer_id, iccid);
