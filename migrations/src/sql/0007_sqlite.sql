-- Notifications, webhook endpoints and deliveries (see the Postgres file).
CREATE TABLE notifications (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    recipient      BLOB,
    kind           TEXT NOT NULL CHECK (kind IN ('BULK_JOB_FINISHED')),
    subject_id     BLOB NOT NULL,
    title          TEXT NOT NULL,
    body           TEXT NOT NULL,
    payload        TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    read_at        TEXT,
    dispatched_at  TEXT
);
CREATE INDEX notifications_recipient ON notifications (tenant_id, recipient, created_at DESC);
CREATE INDEX notifications_subject ON notifications (subject_id);
CREATE INDEX notifications_undispatched ON notifications (dispatched_at, created_at);

CREATE TABLE webhook_endpoints (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url          TEXT NOT NULL CHECK (length(url) <= 2048),
    secret       TEXT NOT NULL,
    description  TEXT,
    enabled      INTEGER NOT NULL DEFAULT 1,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at);

CREATE TABLE notification_deliveries (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    notification_id  BLOB NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel          TEXT NOT NULL CHECK (channel IN ('WEBHOOK', 'EMAIL')),
    endpoint_id      BLOB REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    target           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  TEXT,
    last_error       TEXT,
    response_status  INTEGER,
    delivered_at     TEXT,
    created_at       TEXT NOT NULL,
    claimed_by       TEXT,
    claimed_until    TEXT,
    CHECK ((channel = 'WEBHOOK') = (endpoint_id IS NOT NULL))
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (status, next_attempt_at);
CREATE INDEX notification_deliveries_endpoint ON notification_deliveries (endpoint_id, created_at DESC);
CREATE INDEX notification_deliveries_notification ON notification_deliveries (notification_id);
