-- The statement-level job check of bulk job rows is Postgres's (0010_postgres.sql); SQLite keeps
-- its foreign key (checked in-process, per row, cheaply). Numbered alike.
SELECT 1;
