-- Bulk jobs and their rows (see the Postgres file).
CREATE TABLE bulk_jobs (
    id                 BLOB PRIMARY KEY,
    tenant_id          BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source             TEXT NOT NULL CHECK (source IN ('FILE', 'API')),
    file_name          TEXT,
    action             TEXT,
    status             TEXT NOT NULL CHECK (status IN ('VALIDATING', 'AWAITING_CONFIRMATION', 'PROCESSING',
                           'COMPLETED', 'COMPLETED_WITH_ERRORS', 'FAILED', 'CANCELLED')),
    total_rows         INTEGER NOT NULL CHECK (total_rows >= 0),
    valid_rows         INTEGER NOT NULL CHECK (valid_rows >= 0),
    invalid_rows       INTEGER NOT NULL CHECK (invalid_rows >= 0),
    already_in_state   INTEGER NOT NULL CHECK (already_in_state >= 0),
    processed          INTEGER NOT NULL DEFAULT 0,
    succeeded          INTEGER NOT NULL DEFAULT 0,
    failed             INTEGER NOT NULL DEFAULT 0,
    skipped            INTEGER NOT NULL DEFAULT 0,
    next_position      INTEGER NOT NULL DEFAULT 0,
    created_by         TEXT NOT NULL,
    created_by_user    BLOB,
    created_by_role    TEXT NOT NULL,
    confirmed_by       TEXT,
    cancelled_by       TEXT,
    note               TEXT,
    notify             INTEGER NOT NULL DEFAULT 1,
    failure            TEXT,
    created_at         TEXT NOT NULL,
    confirmed_at       TEXT,
    started_at         TEXT,
    finished_at        TEXT,
    heartbeat_at       TEXT,
    claimed_by         TEXT,
    claimed_until      TEXT
);
CREATE INDEX bulk_jobs_tenant ON bulk_jobs (tenant_id, created_at DESC);
CREATE INDEX bulk_jobs_runnable ON bulk_jobs (status, confirmed_at);

CREATE TABLE bulk_job_rows (
    job_id       BLOB NOT NULL REFERENCES bulk_jobs (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    tenant_id    BLOB NOT NULL,
    line         INTEGER NOT NULL,
    iccid        TEXT NOT NULL,
    sim_id       BLOB,
    action       TEXT,
    outcome      TEXT NOT NULL CHECK (outcome IN ('PENDING', 'SENT', 'SUCCEEDED', 'FAILED', 'SKIPPED', 'INVALID')),
    reason       TEXT,
    request_id   BLOB NOT NULL,
    reference    TEXT,
    finished_at  TEXT,
    PRIMARY KEY (job_id, position)
);

ALTER TABLE tenants ADD COLUMN operator_bulk_limit INTEGER NOT NULL DEFAULT 100 CHECK (operator_bulk_limit >= 0);
