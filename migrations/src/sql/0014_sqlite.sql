-- Data quotas (see 0014_postgres.sql). SQLite cannot change a column's CHECK in place: the
-- notifications table is rebuilt with the new kinds, foreign keys off meanwhile so that dropping
-- the old table does not cascade into its deliveries (SQLite migrations run outside a
-- transaction, where the pragma takes effect).

ALTER TABLE tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC'
    CHECK (length(time_zone) BETWEEN 1 AND 64);

CREATE TABLE sim_quotas (
    id                  BLOB PRIMARY KEY,
    tenant_id           BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sim_id              BLOB NOT NULL UNIQUE REFERENCES sims (id) ON DELETE CASCADE,
    limit_bytes         INTEGER NOT NULL CHECK (limit_bytes > 0),
    stages              TEXT NOT NULL,
    action              TEXT NOT NULL CHECK (action IN ('NOTIFY', 'SUSPEND')),
    resume_next_period  INTEGER NOT NULL DEFAULT 0,
    set_by              TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX sim_quotas_tenant ON sim_quotas (tenant_id);

CREATE TABLE sim_quota_periods (
    quota_id       BLOB NOT NULL REFERENCES sim_quotas (id) ON DELETE CASCADE,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period_start   TEXT NOT NULL,
    period_end     TEXT NOT NULL,
    used_bytes     INTEGER NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
    stage          INTEGER NOT NULL DEFAULT 0 CHECK (stage BETWEEN 0 AND 100),
    exceeded_at    TEXT,
    action_state   TEXT NOT NULL DEFAULT 'NONE'
        CHECK (action_state IN ('NONE', 'PENDING', 'REQUESTED', 'DONE', 'FAILED')),
    action_reason  TEXT,
    bulk_job_id    BLOB,
    claimed_until  TEXT,
    evaluated_at   TEXT NOT NULL,
    PRIMARY KEY (quota_id, period_start)
);
CREATE INDEX sim_quota_periods_open_actions ON sim_quota_periods (action_state, claimed_until);

PRAGMA foreign_keys = OFF;
CREATE TABLE notifications_new (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    recipient      BLOB,
    kind           TEXT NOT NULL
        CHECK (kind IN ('BULK_JOB_FINISHED', 'QUOTA_STAGE', 'ALERT_FIRING', 'ALERT_RESOLVED')),
    subject_id     BLOB NOT NULL,
    title          TEXT NOT NULL,
    body           TEXT NOT NULL,
    payload        TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    read_at        TEXT,
    dispatched_at  TEXT
);
INSERT INTO notifications_new SELECT id, tenant_id, recipient, kind, subject_id, title, body, payload,
    created_at, read_at, dispatched_at FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;
CREATE INDEX notifications_recipient ON notifications (tenant_id, recipient, created_at DESC);
CREATE INDEX notifications_subject ON notifications (subject_id);
CREATE INDEX notifications_undispatched ON notifications (dispatched_at, created_at);
PRAGMA foreign_keys = ON;
