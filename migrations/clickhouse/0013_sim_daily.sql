-- Bytes, networks and sessions per SIM and day, sorted by SIM first. The forecast pass reads a
-- page of a few thousand SIMs over 90 days at a time; `usage_daily` and `sessions_hourly` are
-- sorted by time first (analytics reads a range of days or hours of a whole tenant), so every
-- such page read the whole tenant's 90 days twice over (100,000 SIMs: 20 pages, 40 scans of
-- about ten million rows). Sorted by (tenant, ICCID, day), a page's rows are one range of the
-- table, and ClickHouse skips the rest by its sparse index. Reads of the daily cube, or of the
-- sessions cube by whole UTC days, that name their SIMs come from here (analytics/src/cubes).
--
-- The same rows as the two cubes it stands in for: a session counts once, on the day of its
-- first counted update, as in `sessions_hourly`. Behind a Buffer table like the cubes of
-- migration 12; the view writes to the buffer, reads name the store.
--
-- The history is copied from the hourly sessions cube (kept whole, as every cube is) before the
-- view feeds the table. A run that stopped anywhere starts again from nothing: what an earlier
-- run made is dropped first, so a copy cut short is not kept. As for migrations 11 and 12: stop
-- older servers, then migrate (an update written between the copy and the view would be missed).

DROP TABLE IF EXISTS sim_daily_mv;

DROP TABLE IF EXISTS sim_daily;

DROP TABLE IF EXISTS sim_daily_store;

CREATE TABLE IF NOT EXISTS sim_daily_store (
    tenant_id    String,
    customer_id  String,
    iccid        String,
    mcc_mnc      String,
    day          Date,
    bytes_in     UInt64,
    bytes_out    UInt64,
    sessions     UInt64
) ENGINE = SummingMergeTree((bytes_in, bytes_out, sessions))
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, iccid, day, mcc_mnc, customer_id);

CREATE TABLE IF NOT EXISTS sim_daily AS sim_daily_store
ENGINE = Buffer({{DATABASE}}, 'sim_daily_store', 4, 1, 1, 100000, 100000, 16777216, 16777216);

-- What the hourly cube's buffer holds, written to its store first (its store is what is copied).
OPTIMIZE TABLE sessions_hourly;

INSERT INTO sim_daily_store
SELECT tenant_id, customer_id, iccid, mcc_mnc, toDate(hour, 'UTC') AS day,
       sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out, sum(sessions) AS sessions
FROM sessions_hourly_store
GROUP BY tenant_id, customer_id, iccid, mcc_mnc, day;

CREATE MATERIALIZED VIEW IF NOT EXISTS sim_daily_mv TO sim_daily AS
SELECT tenant_id, customer_id, iccid, mcc_mnc, day, delta_in AS bytes_in, delta_out AS bytes_out,
       toUInt64(event_time = started_at AND delta_in = total_in AND delta_out = total_out) AS sessions
FROM session_updates;
