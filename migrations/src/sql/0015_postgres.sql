-- Alert rules, their alerts and silences. One open alert per rule and subject (a partial unique
-- index); every alert write checks its version. Notifications learn which channels they speak
-- on: an alert rule may choose e-mail to named addresses, webhooks, the inbox, or some of them.

CREATE TABLE alert_rules (
    id                      uuid PRIMARY KEY,
    tenant_id               uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                    text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description             text CHECK (length(description) <= 1000),
    enabled                 boolean NOT NULL,
    severity                text NOT NULL
        CHECK (severity IN ('CRITICAL', 'MAJOR', 'MINOR', 'WARNING', 'INFO')),
    target_kind             text NOT NULL
        CHECK (target_kind IN ('ALL_SIMS', 'CUSTOMER', 'LABELS', 'TARIFF_PLAN', 'SIM')),
    target_customer_id      uuid,
    -- LABELS: [{"key": …, "value": … or null}, …]
    target_labels           jsonb,
    target_tariff_plan      text,
    target_sim_id           uuid,
    metric                  text NOT NULL,
    threshold               bigint,
    clear_threshold         bigint,
    state                   text,
    in_app                  boolean NOT NULL,
    webhook                 boolean NOT NULL,
    -- Comma-separated addresses ('' for none).
    emails                  text NOT NULL,
    pending_seconds         integer NOT NULL CHECK (pending_seconds >= 0),
    group_wait_seconds      integer NOT NULL CHECK (group_wait_seconds >= 0),
    group_interval_seconds  integer NOT NULL CHECK (group_interval_seconds > 0),
    repeat_seconds          integer NOT NULL CHECK (repeat_seconds >= 0),
    resolve_after_seconds   integer NOT NULL CHECK (resolve_after_seconds > 0),
    -- When the rule last sent a notification (its group interval runs from there).
    announced_at            timestamptz,
    created_by              text NOT NULL,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL,
    version                 bigint NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE alerts (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    rule_id         uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    subject_key     text NOT NULL,
    subject         text NOT NULL,
    sim_id          uuid,
    customer_id     uuid,
    severity        text NOT NULL,
    state           text NOT NULL CHECK (state IN ('PENDING', 'FIRING', 'RESOLVED')),
    value           bigint NOT NULL,
    started_at      timestamptz NOT NULL,
    fired_at        timestamptz,
    resolved_at     timestamptz,
    last_seen_at    timestamptz NOT NULL,
    repeats         integer NOT NULL DEFAULT 0,
    flaps           integer NOT NULL DEFAULT 0,
    event_key       text,
    -- What the value does not say: the new network, the job's summary, the ratio to the median.
    detail          text,
    ack_by          text,
    ack_at          timestamptz,
    ack_comment     text,
    announced       text NOT NULL CHECK (announced IN ('NONE', 'FIRING', 'RESOLVED')),
    announced_at    timestamptz,
    announce_at     timestamptz,
    updated_at      timestamptz NOT NULL,
    version         bigint NOT NULL
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (rule_id, subject_key) WHERE state IN ('PENDING', 'FIRING');
CREATE INDEX alerts_subject ON alerts (rule_id, subject_key, updated_at DESC);
CREATE INDEX alerts_due ON alerts (announce_at) WHERE announce_at IS NOT NULL;
CREATE INDEX alerts_tenant ON alerts (tenant_id, started_at DESC, id DESC);

CREATE TABLE alert_silences (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    matcher_kind  text NOT NULL CHECK (matcher_kind IN ('RULE', 'SIM', 'LABEL', 'CUSTOMER')),
    rule_id       uuid,
    sim_id        uuid,
    label_key     text,
    label_value   text,
    customer_id   uuid,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL CHECK (ends_at > starts_at),
    comment       text,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX alert_silences_tenant ON alert_silences (tenant_id, ends_at);

ALTER TABLE notifications ADD COLUMN in_app boolean NOT NULL DEFAULT true;
ALTER TABLE notifications ADD COLUMN webhook boolean NOT NULL DEFAULT true;
ALTER TABLE notifications ADD COLUMN email_to text NOT NULL DEFAULT '';

GRANT SELECT, INSERT, UPDATE, DELETE ON alert_rules, alerts, alert_silences TO ioto_app;

ALTER TABLE alert_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON alert_rules
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
ALTER TABLE alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON alerts
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
ALTER TABLE alert_silences ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_silences FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON alert_silences
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
