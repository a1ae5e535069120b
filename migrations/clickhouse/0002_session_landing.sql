-- Raw session rollups as they arrive from the bus, kept for a week. Later migrations hang
-- materialized views for live sessions and usage cubes off this table.
CREATE TABLE IF NOT EXISTS session_landing (
    received_at   DateTime,
    tenant_id     String,
    iccid         String,
    session_id    String,
    network       String,
    bytes_up      UInt64,
    bytes_down    UInt64,
    event_time    DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(received_at)
ORDER BY (tenant_id, iccid, session_id, event_time)
{{TTL received_at + INTERVAL 7 DAY}};
