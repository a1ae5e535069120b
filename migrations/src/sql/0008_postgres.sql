-- Export jobs: requested through the API, run by any instance (claimed with a lease like bulk
-- jobs), their files kept in the export storage until expires_at.
CREATE TABLE export_jobs (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind                 text NOT NULL,
    format               text NOT NULL CHECK (format IN ('CSV', 'XLSX', 'PARQUET')),
    -- The request's filter as given (the GraphQL input), JSON.
    filter               jsonb NOT NULL,
    status               text NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED')),
    rows_written         bigint NOT NULL DEFAULT 0 CHECK (rows_written >= 0),
    bytes_written        bigint NOT NULL DEFAULT 0 CHECK (bytes_written >= 0),
    expected_rows        bigint,
    -- The requester: the job reads with their role and sub-customer.
    created_by           text NOT NULL,
    created_by_user      uuid,
    created_by_role      text NOT NULL,
    created_by_customer  uuid,
    failure              text,
    sha256               text,
    created_at           timestamptz NOT NULL,
    started_at           timestamptz,
    finished_at          timestamptz,
    heartbeat_at         timestamptz,
    expires_at           timestamptz,
    claimed_by           text,
    claimed_until        timestamptz
);
CREATE INDEX export_jobs_tenant ON export_jobs (tenant_id, created_at DESC, id DESC);
CREATE INDEX export_jobs_open ON export_jobs (created_at) WHERE status IN ('QUEUED', 'RUNNING');
CREATE INDEX export_jobs_expiry ON export_jobs (expires_at) WHERE status = 'COMPLETED';

GRANT SELECT, INSERT, UPDATE, DELETE ON export_jobs TO ioto_app;

ALTER TABLE export_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE export_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON export_jobs
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
