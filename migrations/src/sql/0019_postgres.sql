-- Quota pools: one data limit per period shared by a sub-customer's SIMs or by the SIMs carrying
-- some labels, with the warning stages and the action at the limit a SIM's quota has; and each
-- period's standing: the pool's usage and member count as last evaluated, the stage reached,
-- the suspension of its active SIMs and their resume as bulk jobs.
CREATE TABLE quota_pools (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- The members: a sub-customer's SIMs, or the SIMs matching every label condition
    -- ([{"key": …, "value": … or null}, …], as alert rules keep theirs); exactly one of the two.
    -- The sub-customer is the pool's tenant's (a composite key, as SIMs and users have).
    customer_id         uuid,
    labels              jsonb CHECK (labels IS NULL OR jsonb_typeof(labels) = 'array'),
    limit_bytes         bigint NOT NULL CHECK (limit_bytes > 0),
    -- Warning stages: percentages of the limit, ascending, comma-separated ('' for none).
    stages              text NOT NULL CHECK (stages ~ '^([0-9]{1,2}(,[0-9]{1,2}){0,4})?$'),
    action              text NOT NULL CHECK (action IN ('NOTIFY', 'SUSPEND')),
    resume_next_period  boolean NOT NULL DEFAULT false,
    set_by              text NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    UNIQUE (tenant_id, name),
    CONSTRAINT quota_pools_customer_in_tenant FOREIGN KEY (tenant_id, customer_id)
        REFERENCES customers (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT quota_pools_one_kind_of_members CHECK ((customer_id IS NULL) <> (labels IS NULL))
);
CREATE INDEX quota_pools_customer ON quota_pools (customer_id) WHERE customer_id IS NOT NULL;

CREATE TABLE quota_pool_periods (
    pool_id        uuid NOT NULL REFERENCES quota_pools (id) ON DELETE CASCADE,
    period_start   timestamptz NOT NULL,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period_end     timestamptz NOT NULL CHECK (period_end > period_start),
    used_bytes     bigint NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
    -- Member SIMs when last evaluated.
    sims           bigint NOT NULL DEFAULT 0 CHECK (sims >= 0),
    -- The highest stage reached: 0 none, a warning percentage, 100 the limit.
    stage          smallint NOT NULL DEFAULT 0 CHECK (stage BETWEEN 0 AND 100),
    exceeded_at    timestamptz,
    action_state   text NOT NULL DEFAULT 'NONE'
        CHECK (action_state IN ('NONE', 'PENDING', 'REQUESTED', 'DONE', 'FAILED')),
    action_reason  text,
    -- The bulk job suspending the pool's active SIMs at the limit.
    bulk_job_id    uuid,
    -- The resume at the period's end of the SIMs that job suspended.
    resume_state   text NOT NULL DEFAULT 'NONE'
        CHECK (resume_state IN ('NONE', 'PENDING', 'REQUESTED', 'DONE', 'FAILED')),
    resume_reason  text,
    resume_job_id  uuid,
    claimed_until  timestamptz,
    evaluated_at   timestamptz NOT NULL,
    PRIMARY KEY (pool_id, period_start)
);
CREATE INDEX quota_pool_periods_open_actions ON quota_pool_periods (action_state, claimed_until)
    WHERE action_state IN ('PENDING', 'REQUESTED');
CREATE INDEX quota_pool_periods_open_resumes ON quota_pool_periods (resume_state, claimed_until)
    WHERE resume_state IN ('PENDING', 'REQUESTED');
CREATE INDEX quota_pool_periods_suspended ON quota_pool_periods (period_end)
    WHERE bulk_job_id IS NOT NULL AND resume_state = 'NONE';

GRANT SELECT, INSERT, UPDATE, DELETE ON quota_pools, quota_pool_periods TO ioto_app;

ALTER TABLE quota_pools ENABLE ROW LEVEL SECURITY;
ALTER TABLE quota_pools FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON quota_pools
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
ALTER TABLE quota_pool_periods ENABLE ROW LEVEL SECURITY;
ALTER TABLE quota_pool_periods FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON quota_pool_periods
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
