-- `live_sessions` sorted by session first, in granules of 256 rows. The ingest worker recovers
-- the progress of sessions it does not hold by (ICCID, session id); sorted by ICCID first, with
-- 8,192-row granules, ClickHouse read every granule holding rows of the SIMs asked, so a lookup
-- cost more the longer each SIM's history was (the live load's p99 grew run over run). Sorted by
-- session, a lookup reads at most one 256-row granule per session asked, whatever the table's
-- size. The live view of a SIM now finds the SIM's latest session in `session_updates` (sorted by
-- tenant and ICCID) and reads that session here.
--
-- The table is rebuilt under its own name: copied, then swapped in by one RENAME, the view
-- feeding it re-created on the new table. Run again after a failure at any statement, it ends in
-- the same place (rows copied twice replace each other, as every update of a session does, and
-- the view is dropped before the swap).
CREATE TABLE IF NOT EXISTS live_sessions_by_session (
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
ORDER BY (session_id, iccid)
{{TTL started_at + INTERVAL 7 DAY}}
SETTINGS index_granularity = 256;

DROP TABLE IF EXISTS live_sessions_mv;

INSERT INTO live_sessions_by_session
SELECT tenant_id, customer_id, iccid, session_id, started_at, event_time, mcc_mnc, rat, ip_address,
       cell_id, terminated, total_in, total_out
FROM live_sessions;

-- Left by a run that failed after the swap: its rows are in `live_sessions` already.
DROP TABLE IF EXISTS live_sessions_by_sim;

RENAME TABLE live_sessions TO live_sessions_by_sim, live_sessions_by_session TO live_sessions;

CREATE MATERIALIZED VIEW IF NOT EXISTS live_sessions_mv TO live_sessions AS
SELECT tenant_id, customer_id, iccid, session_id, started_at, event_time, mcc_mnc, rat, ip_address,
       cell_id, terminated, total_in, total_out
FROM session_updates;

DROP TABLE IF EXISTS live_sessions_by_sim;
