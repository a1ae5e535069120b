-- `session_landing` (migration 2) was never written or read; as on ClickHouse, it is dropped.
DROP TABLE IF EXISTS session_landing;
