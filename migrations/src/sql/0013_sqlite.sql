-- SQLite imports insert their rows directly (no row-level security, no staging table); the
-- grant of 0013_postgres.sql has no counterpart. Numbered alike.
SELECT 1;
