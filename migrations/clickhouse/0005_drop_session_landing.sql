-- `session_landing` (migration 2) was never written or read: session updates land in
-- `session_updates` (migration 3). Dropped so the schema holds only what the adapter uses.
DROP TABLE IF EXISTS session_landing;
