-- The statement-level reference checks of SIMs are Postgres's (0011_postgres.sql); SQLite keeps its
-- foreign keys (checked in-process, per row, cheaply). Numbered alike.
SELECT 1;
