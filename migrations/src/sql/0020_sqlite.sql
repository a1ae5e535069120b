-- Forecasts and anomalies (see 0020_postgres.sql). `days` and `evidence` are JSON text. SQLite
-- cannot change a column's CHECK in place: the notifications table is rebuilt with the new kind,
-- foreign keys off meanwhile so that dropping the old table does not cascade into its deliveries
-- (as 0014 did; SQLite migrations run outside a transaction, where the pragma takes effect).

CREATE TABLE usage_forecasts (
    tenant_id                    BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subject_kind                 TEXT NOT NULL CHECK (subject_kind IN ('SIM', 'CUSTOMER', 'TENANT', 'POOL')),
    subject_id                   BLOB NOT NULL,
    computed_at                  TEXT NOT NULL,
    history_days                 INTEGER NOT NULL CHECK (history_days >= 0),
    method                       TEXT NOT NULL
        CHECK (method IN ('NAIVE', 'SEASONAL_NAIVE', 'DRIFT', 'ETS', 'COHORT')),
    backtest_mase                REAL,
    backtest_wape                REAL,
    days                         TEXT NOT NULL,
    quota_limit_bytes            INTEGER,
    used_bytes                   INTEGER,
    exhaustion_likely            TEXT,
    exhaustion_earliest          TEXT,
    exhaustion_latest            TEXT,
    period_end                   TEXT,
    projected_period_bytes       INTEGER,
    projected_period_bytes_hi80  INTEGER,
    PRIMARY KEY (tenant_id, subject_kind, subject_id)
);
CREATE INDEX usage_forecasts_computed ON usage_forecasts (tenant_id, computed_at);

CREATE TABLE anomalies (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sim_id           BLOB NOT NULL REFERENCES sims (id) ON DELETE CASCADE,
    customer_id      BLOB,
    iccid            TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('USAGE_SPIKE', 'SILENCE', 'SESSION_STORM', 'NEW_NETWORK',
                                                   'NEW_COUNTRY', 'IMEI_CHANGE')),
    day              TEXT NOT NULL,
    score            REAL NOT NULL,
    severity         TEXT NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'HIGH')),
    sentence         TEXT NOT NULL,
    evidence         TEXT NOT NULL,
    value            TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'DISMISSED', 'CONFIRMED')),
    decided_by       TEXT,
    decided_at       TEXT,
    comment          TEXT,
    dismissed_until  TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (sim_id, kind, day, value)
);
CREATE INDEX anomalies_by_day ON anomalies (tenant_id, day DESC, score DESC, id);
CREATE INDEX anomalies_by_status ON anomalies (tenant_id, status);
CREATE INDEX anomalies_dismissed ON anomalies (sim_id, status);

CREATE TABLE forecast_runs (
    tenant_id      BLOB PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    claimed_until  TEXT,
    finished_at    TEXT
);

PRAGMA foreign_keys = OFF;
CREATE TABLE notifications_new (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    recipient      BLOB,
    kind           TEXT NOT NULL
        CHECK (kind IN ('BULK_JOB_FINISHED', 'QUOTA_STAGE', 'ALERT_FIRING', 'ALERT_RESOLVED', 'ANOMALY')),
    subject_id     BLOB NOT NULL,
    title          TEXT NOT NULL,
    body           TEXT NOT NULL,
    payload        TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    read_at        TEXT,
    dispatched_at  TEXT,
    in_app         INTEGER NOT NULL DEFAULT 1,
    webhook        INTEGER NOT NULL DEFAULT 1,
    email_to       TEXT NOT NULL DEFAULT ''
);
INSERT INTO notifications_new (id, tenant_id, recipient, kind, subject_id, title, body, payload, created_at,
    read_at, dispatched_at, in_app, webhook, email_to)
SELECT id, tenant_id, recipient, kind, subject_id, title, body, payload, created_at, read_at, dispatched_at,
    in_app, webhook, email_to FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;
CREATE INDEX notifications_recipient ON notifications (tenant_id, recipient, created_at DESC);
CREATE INDEX notifications_subject ON notifications (subject_id);
CREATE INDEX notifications_undispatched ON notifications (dispatched_at, created_at);
PRAGMA foreign_keys = ON;
