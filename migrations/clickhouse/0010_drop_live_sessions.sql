-- `live_sessions` (migration 3) was copied into `live_session_states` by migration 9, whose view
-- feeds it since; nothing reads or writes the old table any more.
DROP TABLE IF EXISTS live_sessions_mv;

DROP TABLE IF EXISTS live_sessions;
