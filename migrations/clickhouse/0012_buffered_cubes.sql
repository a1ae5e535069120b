-- The eight cubes behind `session_updates` take their views' rows through a Buffer table: each
-- cube's MergeTree table becomes `<cube>_store`, and a Buffer table under the cube's name holds
-- what the views wrote in memory, in four layers, and writes each layer to the store once a
-- second (or at 100,000 rows or 16 MiB). Every insert into `session_updates` (ten views) wrote a
-- part into each of the eight cubes, and ClickHouse rewrote each of those parts many times as it
-- merged them: the cube views were over half of each insert, five sixths of its statement CPU
-- and three quarters of the merges (docs/benchmarks.md). Behind the buffers they write
-- at most four parts per cube and second, whatever the rate of inserts; `session_updates`, the
-- live states and `session_activity` (the live paths) are written as before. Reads name the
-- cube as before: a Buffer table reads its memory and its store together, so a cube shows a row
-- as soon as the insert that fed it returns.
--
-- Why four layers and 100,000 rows (docs/benchmarks.md): ClickHouse holds a layer's
-- lock while it writes the layer to the store, and an insert that finds its layer due writes it
-- itself. With one layer of up to 1,000,000 rows, inserts waited behind the writes of large
-- layers (after a backlog) and the live view's p99 went up to 1.1 s; with four, an insert takes
-- a layer that is free, and no write is larger than 100,000 rows.
--
-- What this gives up: the rows in a buffer live in the ClickHouse server's memory until they
-- are written; a server that stops cleanly writes them, one that is killed loses up to the last
-- second or two of the cubes' usage (the updates themselves and the live states are kept).
--
-- Each cube is renamed to its store and its buffer, created first as `<cube>_incoming`, renamed
-- into its place in one statement, so an insert finds one table or the other under the cube's
-- name. The runner does not repeat a `RENAME` whose first new name exists (it ran), and the
-- `DROP` after it removes the buffer a repeated `CREATE` made, so the migration can run again
-- from its first statement after stopping anywhere but inside a `RENAME`: on 18.16 a two-table
-- `RENAME` is not all or nothing, and had one stopped between its halves, the cube's name would
-- be missing; the way back is `RENAME TABLE <cube>_incoming TO <cube>` by hand. As for migration
-- 11: stop older servers, then migrate. `{{DATABASE}}` is the database migrated, a string.

CREATE TABLE IF NOT EXISTS usage_hourly_incoming AS usage_hourly
ENGINE = Buffer({{DATABASE}}, 'usage_hourly_store', 4, 1, 1, 100000, 100000, 16777216, 16777216);

RENAME TABLE usage_hourly TO usage_hourly_store, usage_hourly_incoming TO usage_hourly;

DROP TABLE IF EXISTS usage_hourly_incoming;

CREATE TABLE IF NOT EXISTS usage_monthly_incoming AS usage_monthly
ENGINE = Buffer({{DATABASE}}, 'usage_monthly_store', 4, 1, 1, 100000, 100000, 16777216, 16777216);

RENAME TABLE usage_monthly TO usage_monthly_store, usage_monthly_incoming TO usage_monthly;

DROP TABLE IF EXISTS usage_monthly_incoming;

CREATE TABLE IF NOT EXISTS usage_daily_incoming AS usage_daily
ENGINE = Buffer({{DATABASE}}, 'usage_daily_store', 4, 1, 1, 100000, 100000, 16777216, 16777216);

RENAME TABLE usage_daily TO usage_daily_store, usage_daily_incoming TO usage_daily;

DROP TABLE IF EXISTS usage_daily_incoming;

CREATE TABLE IF NOT EXISTS customer_usage_daily_incoming AS customer_usage_daily
ENGINE = Buffer({{DATABASE}}, 'customer_usage_daily_store', 4, 1, 1, 100000, 100000, 16777216, 16777216);

RENAME TABLE customer_usage_daily TO customer_usage_daily_store, customer_usage_daily_incoming TO customer_usage_daily;

DROP TABLE IF EXISTS customer_usage_daily_incoming;

CREATE TABLE IF NOT EXISTS customer_usage_monthly_incoming AS customer_usage_monthly
ENGINE = Buffer({{DATABASE}}, 'customer_usage_monthly_store', 4, 1, 1, 100000, 100000, 16777216, 16777216);

RENAME TABLE customer_usage_monthly TO customer_usage_monthly_store, customer_usage_monthly_incoming TO customer_usage_monthly;

DROP TABLE IF EXISTS customer_usage_monthly_incoming;

CREATE TABLE IF NOT EXISTS sessions_hourly_incoming AS sessions_hourly
ENGINE = Buffer({{DATABASE}}, 'sessions_hourly_store', 4, 1, 1, 100000, 100000, 16777216, 16777216);

RENAME TABLE sessions_hourly TO sessions_hourly_store, sessions_hourly_incoming TO sessions_hourly;

DROP TABLE IF EXISTS sessions_hourly_incoming;

CREATE TABLE IF NOT EXISTS network_usage_monthly_incoming AS network_usage_monthly
ENGINE = Buffer({{DATABASE}}, 'network_usage_monthly_store', 4, 1, 1, 100000, 100000, 16777216, 16777216);

RENAME TABLE network_usage_monthly TO network_usage_monthly_store, network_usage_monthly_incoming TO network_usage_monthly;

DROP TABLE IF EXISTS network_usage_monthly_incoming;

CREATE TABLE IF NOT EXISTS sims_monthly_incoming AS sims_monthly
ENGINE = Buffer({{DATABASE}}, 'sims_monthly_store', 4, 1, 1, 100000, 100000, 16777216, 16777216);

RENAME TABLE sims_monthly TO sims_monthly_store, sims_monthly_incoming TO sims_monthly;

DROP TABLE IF EXISTS sims_monthly_incoming;
