-- Export jobs (see the Postgres file).
CREATE TABLE export_jobs (
    id                   BLOB PRIMARY KEY,
    tenant_id            BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind                 TEXT NOT NULL,
    format               TEXT NOT NULL CHECK (format IN ('CSV', 'XLSX', 'PARQUET')),
    filter               TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED')),
    rows_written         INTEGER NOT NULL DEFAULT 0 CHECK (rows_written >= 0),
    bytes_written        INTEGER NOT NULL DEFAULT 0 CHECK (bytes_written >= 0),
    expected_rows        INTEGER,
    created_by           TEXT NOT NULL,
    created_by_user      BLOB,
    created_by_role      TEXT NOT NULL,
    created_by_customer  BLOB,
    failure              TEXT,
    sha256               TEXT,
    created_at           TEXT NOT NULL,
    started_at           TEXT,
    finished_at          TEXT,
    heartbeat_at         TEXT,
    expires_at           TEXT,
    claimed_by           TEXT,
    claimed_until        TEXT
);
CREATE INDEX export_jobs_tenant ON export_jobs (tenant_id, created_at DESC, id DESC);
CREATE INDEX export_jobs_open ON export_jobs (status, created_at);
CREATE INDEX export_jobs_expiry ON export_jobs (status, expires_at);
