-- The latest state of each session, sorted by session first, in granules of 256 rows: it
-- replaces `live_sessions` (migration 3, sorted by ICCID first in 8,192-row granules). The ingest
-- worker recovers the progress of sessions it does not hold by (ICCID, session id); sorted by
-- ICCID first, ClickHouse read every granule holding rows of the SIMs asked, so a lookup cost
-- more the longer each SIM's history was. Sorted by session, a lookup reads at most one 256-row
-- granule per session asked, whatever the table's size. The live view of a SIM finds the SIM's
-- latest session in `session_updates` (sorted by tenant and ICCID) and reads its state here.
--
-- The new table and its view come first, then the old view goes, then the copy. An insert
-- started before the new view existed writes through the old view only; dropping the old view
-- waits for such inserts to finish, so the copy after it sees their rows. One started later
-- reaches the new table through its view (and perhaps the old one too: rows copied twice replace
-- each other as every update of a session does). Every statement can run again, or at the same
-- time in two processes. The old table is dropped by migration 10, once this one is recorded.
CREATE TABLE IF NOT EXISTS live_session_states (
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

CREATE MATERIALIZED VIEW IF NOT EXISTS live_session_states_mv TO live_session_states AS
SELECT tenant_id, customer_id, iccid, session_id, started_at, event_time, mcc_mnc, rat, ip_address,
       cell_id, terminated, total_in, total_out
FROM session_updates;

DROP TABLE IF EXISTS live_sessions_mv;

INSERT INTO live_session_states
SELECT tenant_id, customer_id, iccid, session_id, started_at, event_time, mcc_mnc, rat, ip_address,
       cell_id, terminated, total_in, total_out
FROM live_sessions;
