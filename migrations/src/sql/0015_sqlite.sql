-- Alert rules, their alerts and silences (see 0015_postgres.sql). One open alert per rule and subject (a partial unique
-- index); every alert write checks its version. Notifications learn which channels they speak
-- on: an alert rule may choose e-mail to named addresses, webhooks, the inbox, or some of them.

CREATE TABLE alert_rules (
    id                      BLOB PRIMARY KEY,
    tenant_id               BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                    TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description             TEXT CHECK (length(description) <= 1000),
    enabled                 INTEGER NOT NULL,
    severity                TEXT NOT NULL
        CHECK (severity IN ('CRITICAL', 'MAJOR', 'MINOR', 'WARNING', 'INFO')),
    target_kind             TEXT NOT NULL
        CHECK (target_kind IN ('ALL_SIMS', 'CUSTOMER', 'LABELS', 'TARIFF_PLAN', 'SIM')),
    target_customer_id      BLOB,
    -- LABELS: [{"key": …, "value": … or null}, …]
    target_labels           TEXT,
    target_tariff_plan      TEXT,
    target_sim_id           BLOB,
    metric                  TEXT NOT NULL,
    threshold               INTEGER,
    clear_threshold         INTEGER,
    state                   TEXT,
    in_app                  INTEGER NOT NULL,
    webhook                 INTEGER NOT NULL,
    -- Comma-separated addresses ('' for none).
    emails                  TEXT NOT NULL,
    pending_seconds         INTEGER NOT NULL CHECK (pending_seconds >= 0),
    group_wait_seconds      INTEGER NOT NULL CHECK (group_wait_seconds >= 0),
    group_interval_seconds  INTEGER NOT NULL CHECK (group_interval_seconds > 0),
    repeat_seconds          INTEGER NOT NULL CHECK (repeat_seconds >= 0),
    resolve_after_seconds   INTEGER NOT NULL CHECK (resolve_after_seconds > 0),
    -- When the rule last sent a notification (its group interval runs from there).
    announced_at            TEXT,
    created_by              TEXT NOT NULL,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    version                 INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE alerts (
    id              BLOB PRIMARY KEY,
    tenant_id       BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    rule_id         BLOB NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    subject_key     TEXT NOT NULL,
    subject         TEXT NOT NULL,
    sim_id          BLOB,
    customer_id     BLOB,
    severity        TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('PENDING', 'FIRING', 'RESOLVED')),
    value           INTEGER NOT NULL,
    started_at      TEXT NOT NULL,
    fired_at        TEXT,
    resolved_at     TEXT,
    last_seen_at    TEXT NOT NULL,
    repeats         INTEGER NOT NULL DEFAULT 0,
    flaps           INTEGER NOT NULL DEFAULT 0,
    event_key       TEXT,
    -- What the value does not say: the new network, the job's summary, the ratio to the median.
    detail          TEXT,
    ack_by          TEXT,
    ack_at          TEXT,
    ack_comment     TEXT,
    announced       TEXT NOT NULL CHECK (announced IN ('NONE', 'FIRING', 'RESOLVED')),
    announced_at    TEXT,
    announce_at     TEXT,
    updated_at      TEXT NOT NULL,
    version         INTEGER NOT NULL
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (rule_id, subject_key) WHERE state IN ('PENDING', 'FIRING');
CREATE INDEX alerts_subject ON alerts (rule_id, subject_key, updated_at DESC);
CREATE INDEX alerts_due ON alerts (announce_at) WHERE announce_at IS NOT NULL;
CREATE INDEX alerts_tenant ON alerts (tenant_id, started_at DESC, id DESC);

CREATE TABLE alert_silences (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    matcher_kind  TEXT NOT NULL CHECK (matcher_kind IN ('RULE', 'SIM', 'LABEL', 'CUSTOMER')),
    rule_id       BLOB,
    sim_id        BLOB,
    label_key     TEXT,
    label_value   TEXT,
    customer_id   BLOB,
    starts_at     TEXT NOT NULL,
    ends_at       TEXT NOT NULL CHECK (ends_at > starts_at),
    comment       TEXT,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX alert_silences_tenant ON alert_silences (tenant_id, ends_at);

ALTER TABLE notifications ADD COLUMN in_app INTEGER NOT NULL DEFAULT 1;
ALTER TABLE notifications ADD COLUMN webhook INTEGER NOT NULL DEFAULT 1;
ALTER TABLE notifications ADD COLUMN email_to TEXT NOT NULL DEFAULT '';

