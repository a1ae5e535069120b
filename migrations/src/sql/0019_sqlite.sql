-- Quota pools and their periods (see 0019_postgres.sql).
CREATE TABLE quota_pools (
    id                  BLOB PRIMARY KEY,
    tenant_id           BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- A sub-customer's SIMs, or the SIMs matching every label condition
    -- ([{"key": …, "value": … or null}, …]); exactly one of the two.
    customer_id         BLOB,
    labels              TEXT,
    limit_bytes         INTEGER NOT NULL CHECK (limit_bytes > 0),
    stages              TEXT NOT NULL,
    action              TEXT NOT NULL CHECK (action IN ('NOTIFY', 'SUSPEND')),
    resume_next_period  INTEGER NOT NULL DEFAULT 0,
    set_by              TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (tenant_id, name),
    CONSTRAINT quota_pools_customer_in_tenant FOREIGN KEY (tenant_id, customer_id)
        REFERENCES customers (tenant_id, id) ON DELETE CASCADE,
    CHECK ((customer_id IS NULL) <> (labels IS NULL))
);
CREATE INDEX quota_pools_customer ON quota_pools (customer_id);

CREATE TABLE quota_pool_periods (
    pool_id        BLOB NOT NULL REFERENCES quota_pools (id) ON DELETE CASCADE,
    period_start   TEXT NOT NULL,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period_end     TEXT NOT NULL,
    used_bytes     INTEGER NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
    sims           INTEGER NOT NULL DEFAULT 0 CHECK (sims >= 0),
    stage          INTEGER NOT NULL DEFAULT 0 CHECK (stage BETWEEN 0 AND 100),
    exceeded_at    TEXT,
    action_state   TEXT NOT NULL DEFAULT 'NONE'
        CHECK (action_state IN ('NONE', 'PENDING', 'REQUESTED', 'DONE', 'FAILED')),
    action_reason  TEXT,
    bulk_job_id    BLOB,
    resume_state   TEXT NOT NULL DEFAULT 'NONE'
        CHECK (resume_state IN ('NONE', 'PENDING', 'REQUESTED', 'DONE', 'FAILED')),
    resume_reason  TEXT,
    resume_job_id  BLOB,
    claimed_until  TEXT,
    evaluated_at   TEXT NOT NULL,
    PRIMARY KEY (pool_id, period_start)
);
CREATE INDEX quota_pool_periods_open_actions ON quota_pool_periods (action_state, claimed_until);
CREATE INDEX quota_pool_periods_open_resumes ON quota_pool_periods (resume_state, claimed_until);
CREATE INDEX quota_pool_periods_suspended ON quota_pool_periods (period_end, resume_state);
