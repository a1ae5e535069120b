-- Data quotas: a limit per SIM and billing period, with warning stages and an action at the
-- limit; each period's standing (stage reached, the action's progress). Quota periods are the
-- tenant's calendar months, in its time zone. Notifications learn the kinds of quotas and alerts.

ALTER TABLE tenants ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC'
    CHECK (length(time_zone) BETWEEN 1 AND 64);

CREATE TABLE sim_quotas (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sim_id              uuid NOT NULL UNIQUE REFERENCES sims (id) ON DELETE CASCADE,
    limit_bytes         bigint NOT NULL CHECK (limit_bytes > 0),
    -- Warning stages: percentages of the limit, ascending, comma-separated ('' for none).
    stages              text NOT NULL CHECK (stages ~ '^([0-9]{1,2}(,[0-9]{1,2}){0,4})?$'),
    action              text NOT NULL CHECK (action IN ('NOTIFY', 'SUSPEND')),
    resume_next_period  boolean NOT NULL DEFAULT false,
    set_by              text NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX sim_quotas_tenant ON sim_quotas (tenant_id);

CREATE TABLE sim_quota_periods (
    quota_id       uuid NOT NULL REFERENCES sim_quotas (id) ON DELETE CASCADE,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period_start   timestamptz NOT NULL,
    period_end     timestamptz NOT NULL CHECK (period_end > period_start),
    used_bytes     bigint NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
    -- The highest stage reached: 0 none, a warning percentage, 100 the limit.
    stage          smallint NOT NULL DEFAULT 0 CHECK (stage BETWEEN 0 AND 100),
    exceeded_at    timestamptz,
    action_state   text NOT NULL DEFAULT 'NONE'
        CHECK (action_state IN ('NONE', 'PENDING', 'REQUESTED', 'DONE', 'FAILED')),
    action_reason  text,
    bulk_job_id    uuid,
    claimed_until  timestamptz,
    evaluated_at   timestamptz NOT NULL,
    PRIMARY KEY (quota_id, period_start)
);
CREATE INDEX sim_quota_periods_open_actions ON sim_quota_periods (action_state, claimed_until)
    WHERE action_state IN ('PENDING', 'REQUESTED');

ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('BULK_JOB_FINISHED', 'QUOTA_STAGE', 'ALERT_FIRING', 'ALERT_RESOLVED'));

GRANT SELECT, INSERT, UPDATE, DELETE ON sim_quotas, sim_quota_periods TO ioto_app;

ALTER TABLE sim_quotas ENABLE ROW LEVEL SECURITY;
ALTER TABLE sim_quotas FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sim_quotas
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
ALTER TABLE sim_quota_periods ENABLE ROW LEVEL SECURITY;
ALTER TABLE sim_quota_periods FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sim_quota_periods
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
