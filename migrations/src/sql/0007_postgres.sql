-- Notifications (in-app, and the outbox of their e-mail and webhook deliveries), the tenants'
-- webhook endpoints, and the deliveries with their attempts. A notification is written in the
-- transaction of the change it tells of; workers fan it out (dispatched_at) and send the
-- deliveries, claimed with a lease like bulk jobs.
CREATE TABLE notifications (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- The user it is for; NULL: for the tenant's fleet managers.
    recipient      uuid,
    kind           text NOT NULL CHECK (kind IN ('BULK_JOB_FINISHED')),
    subject_id     uuid NOT NULL,
    title          text NOT NULL,
    body           text NOT NULL,
    payload        jsonb NOT NULL,
    created_at     timestamptz NOT NULL,
    read_at        timestamptz,
    dispatched_at  timestamptz
);
CREATE INDEX notifications_recipient ON notifications (tenant_id, recipient, created_at DESC);
CREATE INDEX notifications_subject ON notifications (subject_id);
CREATE INDEX notifications_undispatched ON notifications (created_at) WHERE dispatched_at IS NULL;

CREATE TABLE webhook_endpoints (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url          text NOT NULL CHECK (length(url) <= 2048),
    -- The HMAC-SHA256 signing key (whsec_…), shown once when the endpoint is created.
    secret       text NOT NULL,
    description  text,
    enabled      boolean NOT NULL DEFAULT true,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at);

CREATE TABLE notification_deliveries (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    notification_id  uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel          text NOT NULL CHECK (channel IN ('WEBHOOK', 'EMAIL')),
    endpoint_id      uuid REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    target           text NOT NULL,
    status           text NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz,
    last_error       text,
    response_status  integer,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL,
    claimed_by       text,
    claimed_until    timestamptz,
    CHECK ((channel = 'WEBHOOK') = (endpoint_id IS NOT NULL))
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX notification_deliveries_endpoint ON notification_deliveries (endpoint_id, created_at DESC);
CREATE INDEX notification_deliveries_notification ON notification_deliveries (notification_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON notifications, webhook_endpoints, notification_deliveries TO ioto_app;

ALTER TABLE notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON notifications
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_endpoints
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
ALTER TABLE notification_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE notification_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON notification_deliveries
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
