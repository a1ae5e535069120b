-- Landing table of the first ingest design; nothing reads it any more (kept so that existing
-- data directories migrate in order).
CREATE TABLE IF NOT EXISTS session_landing (
    received_at TEXT NOT NULL, tenant_id TEXT NOT NULL, iccid TEXT NOT NULL,
    session_id TEXT NOT NULL, network TEXT NOT NULL,
    bytes_up INTEGER NOT NULL, bytes_down INTEGER NOT NULL, event_time TEXT NOT NULL
);
