-- ICCIDs, IMSIs and MSISDNs compare byte by byte (collation "C"), not by the database's locale.
-- They are digit strings (an MSISDN with a leading '+'), so their order is the same under every
-- locale; what changes is the cost of each comparison. Under a libc locale every comparison of
-- two different values copies both into terminated buffers and calls strcoll (C.UTF-8 included:
-- PostgreSQL 15 treats only "C" and "POSIX" as byte order); under "C" it is one memcmp. Five of
-- the SIM indexes hold one of these columns, and an import compares each new value some twenty
-- times per index to find its place: measured with an import's own statement as the server's
-- role (docs/benchmarks.md). Lookups by exact value, the prefix ranges of the SIM
-- filters and the identifiers of other tables compared with these columns are unchanged: a
-- column's own collation wins over the database default one in a comparison, so the indexes
-- still serve them. The indexes are rebuilt; the table is not rewritten.
ALTER TABLE sims
    ALTER COLUMN iccid TYPE text COLLATE "C",
    ALTER COLUMN imsi TYPE text COLLATE "C",
    ALTER COLUMN msisdn TYPE text COLLATE "C";
