-- SQLite compares text byte by byte already (its BINARY collation); the byte order of ICCIDs,
-- IMSIs and MSISDNs is Postgres's (0012_postgres.sql). Numbered alike.
SELECT 1;
