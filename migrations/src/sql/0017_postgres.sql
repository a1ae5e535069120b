-- Quota defaults: the tenant's own (tariff_plan '') and one per tariff plan. SIMs without a
-- quota of their own follow their plan's default, else the tenant's.
CREATE TABLE quota_defaults (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    tariff_plan         text NOT NULL CHECK (length(tariff_plan) <= 100),
    limit_bytes         bigint NOT NULL CHECK (limit_bytes > 0),
    stages              text NOT NULL CHECK (stages ~ '^([0-9]{1,2}(,[0-9]{1,2}){0,4})?$'),
    action              text NOT NULL CHECK (action IN ('NOTIFY', 'SUSPEND')),
    resume_next_period  boolean NOT NULL DEFAULT false,
    set_by              text NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    UNIQUE (tenant_id, tariff_plan)
);

-- Where a SIM's quota comes from: set on it, or the default it follows (removed with it).
ALTER TABLE sim_quotas ADD COLUMN source text NOT NULL DEFAULT 'SIM'
    CHECK (source IN ('SIM', 'TARIFF_PLAN', 'TENANT'));
ALTER TABLE sim_quotas ADD COLUMN default_id uuid REFERENCES quota_defaults (id) ON DELETE CASCADE;
ALTER TABLE sim_quotas ADD CONSTRAINT sim_quotas_source_default
    CHECK ((source = 'SIM') = (default_id IS NULL));
CREATE INDEX sim_quotas_default ON sim_quotas (default_id) WHERE default_id IS NOT NULL;

-- The resume at a period's end of a SIM the quota suspended in it.
ALTER TABLE sim_quota_periods ADD COLUMN resume_state text NOT NULL DEFAULT 'NONE'
    CHECK (resume_state IN ('NONE', 'PENDING', 'REQUESTED', 'DONE', 'FAILED'));
ALTER TABLE sim_quota_periods ADD COLUMN resume_reason text;
ALTER TABLE sim_quota_periods ADD COLUMN resume_job_id uuid;
CREATE INDEX sim_quota_periods_open_resumes ON sim_quota_periods (resume_state, claimed_until)
    WHERE resume_state IN ('PENDING', 'REQUESTED');
CREATE INDEX sim_quota_periods_suspended ON sim_quota_periods (period_end)
    WHERE action_state = 'DONE' AND resume_state = 'NONE';

GRANT SELECT, INSERT, UPDATE, DELETE ON quota_defaults TO ioto_app;
ALTER TABLE quota_defaults ENABLE ROW LEVEL SECURITY;
ALTER TABLE quota_defaults FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON quota_defaults
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
