-- Bulk jobs: a file (or an API list) of SIM actions, validated, confirmed, then executed row by
-- row against the network in file order. Rows are claimed with the job (FOR UPDATE SKIP LOCKED
-- plus a lease), so several instances share jobs and a killed one is resumed by another at the
-- first row without an outcome. Each row carries the network request id it is sent with, so a
-- row sent again after a crash is answered, not executed, a second time.
CREATE TABLE bulk_jobs (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source             text NOT NULL CHECK (source IN ('FILE', 'API')),
    file_name          text,
    action             text,
    status             text NOT NULL CHECK (status IN ('VALIDATING', 'AWAITING_CONFIRMATION', 'PROCESSING',
                           'COMPLETED', 'COMPLETED_WITH_ERRORS', 'FAILED', 'CANCELLED')),
    total_rows         bigint NOT NULL CHECK (total_rows >= 0),
    valid_rows         bigint NOT NULL CHECK (valid_rows >= 0),
    invalid_rows       bigint NOT NULL CHECK (invalid_rows >= 0),
    already_in_state   bigint NOT NULL CHECK (already_in_state >= 0),
    processed          bigint NOT NULL DEFAULT 0,
    succeeded          bigint NOT NULL DEFAULT 0,
    failed             bigint NOT NULL DEFAULT 0,
    skipped            bigint NOT NULL DEFAULT 0,
    -- The next row (position) to send: rows before it have been sent or have an outcome.
    next_position      bigint NOT NULL DEFAULT 0,
    created_by         text NOT NULL,
    created_by_user    uuid,
    created_by_role    text NOT NULL,
    confirmed_by       text,
    cancelled_by       text,
    note               text,
    -- Whether its end is notified (not for provisioning calls answered with every outcome).
    notify             boolean NOT NULL DEFAULT true,
    failure            text,
    created_at         timestamptz NOT NULL,
    confirmed_at       timestamptz,
    started_at         timestamptz,
    finished_at        timestamptz,
    heartbeat_at       timestamptz,
    claimed_by         text,
    claimed_until      timestamptz
);
CREATE INDEX bulk_jobs_tenant ON bulk_jobs (tenant_id, created_at DESC);
CREATE INDEX bulk_jobs_runnable ON bulk_jobs (confirmed_at) WHERE status = 'PROCESSING';

CREATE TABLE bulk_job_rows (
    job_id       uuid NOT NULL REFERENCES bulk_jobs (id) ON DELETE CASCADE,
    position     bigint NOT NULL,
    tenant_id    uuid NOT NULL,
    line         bigint NOT NULL,
    iccid        text NOT NULL,
    sim_id       uuid,
    action       text,
    -- PENDING (to send), SENT (sent, no answer recorded yet), SUCCEEDED, FAILED, SKIPPED, INVALID.
    outcome      text NOT NULL CHECK (outcome IN ('PENDING', 'SENT', 'SUCCEEDED', 'FAILED', 'SKIPPED', 'INVALID')),
    reason       text,
    request_id   uuid NOT NULL,
    reference    text,
    finished_at  timestamptz,
    PRIMARY KEY (job_id, position)
);
-- No index on the outcome: the rows of a job are read by position (the primary key) with the
-- outcome as a filter, and an outcome change then updates no index key (a HOT update where the
-- page has room).

-- How many SIMs an OPERATOR may change in one bulk job (tenant admins have no limit).
ALTER TABLE tenants ADD COLUMN operator_bulk_limit bigint NOT NULL DEFAULT 100
    CHECK (operator_bulk_limit >= 0);

GRANT SELECT, INSERT, UPDATE, DELETE ON bulk_jobs, bulk_job_rows TO ioto_app;

ALTER TABLE bulk_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE bulk_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON bulk_jobs
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
ALTER TABLE bulk_job_rows ENABLE ROW LEVEL SECURITY;
ALTER TABLE bulk_job_rows FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON bulk_job_rows
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
