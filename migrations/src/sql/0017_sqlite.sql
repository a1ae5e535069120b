-- Quota defaults and the resume at a period's end (see 0017_postgres.sql).
CREATE TABLE quota_defaults (
    id                  BLOB PRIMARY KEY,
    tenant_id           BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    tariff_plan         TEXT NOT NULL CHECK (length(tariff_plan) <= 100),
    limit_bytes         INTEGER NOT NULL CHECK (limit_bytes > 0),
    stages              TEXT NOT NULL,
    action              TEXT NOT NULL CHECK (action IN ('NOTIFY', 'SUSPEND')),
    resume_next_period  INTEGER NOT NULL DEFAULT 0,
    set_by              TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (tenant_id, tariff_plan)
);

ALTER TABLE sim_quotas ADD COLUMN source TEXT NOT NULL DEFAULT 'SIM'
    CHECK (source IN ('SIM', 'TARIFF_PLAN', 'TENANT'));
ALTER TABLE sim_quotas ADD COLUMN default_id BLOB REFERENCES quota_defaults (id) ON DELETE CASCADE;
CREATE INDEX sim_quotas_default ON sim_quotas (default_id);

ALTER TABLE sim_quota_periods ADD COLUMN resume_state TEXT NOT NULL DEFAULT 'NONE'
    CHECK (resume_state IN ('NONE', 'PENDING', 'REQUESTED', 'DONE', 'FAILED'));
ALTER TABLE sim_quota_periods ADD COLUMN resume_reason TEXT;
ALTER TABLE sim_quota_periods ADD COLUMN resume_job_id BLOB;
CREATE INDEX sim_quota_periods_open_resumes ON sim_quota_periods (resume_state, claimed_until);
CREATE INDEX sim_quota_periods_suspended ON sim_quota_periods (period_end, action_state, resume_state);
