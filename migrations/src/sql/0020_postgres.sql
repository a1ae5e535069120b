-- Forecasts and anomalies, computed by a scheduled pass over the usage cubes and stored so that
-- reads are lookups.
--
-- usage_forecasts: the latest forecast of each subject (a SIM, a sub-customer, the tenant, a
-- quota pool), replaced by every pass. `days` holds the forecast days compactly:
-- {"start": "YYYY-MM-DD", "points": [[expected, low80, high80, low95, high95], …]} in whole bytes,
-- one entry per day from `start`. The quota columns are set for a subject with a data quota.
CREATE TABLE usage_forecasts (
    tenant_id                    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subject_kind                 text NOT NULL CHECK (subject_kind IN ('SIM', 'CUSTOMER', 'TENANT', 'POOL')),
    -- The SIM's, sub-customer's or pool's id; the tenant's own id for TENANT.
    subject_id                   uuid NOT NULL,
    computed_at                  timestamptz NOT NULL,
    history_days                 integer NOT NULL CHECK (history_days >= 0),
    method                       text NOT NULL
        CHECK (method IN ('NAIVE', 'SEASONAL_NAIVE', 'DRIFT', 'ETS', 'COHORT')),
    backtest_mase                double precision,
    backtest_wape                double precision,
    days                         jsonb NOT NULL CHECK (jsonb_typeof(days) = 'object'),
    quota_limit_bytes            bigint CHECK (quota_limit_bytes > 0),
    used_bytes                   bigint CHECK (used_bytes >= 0),
    exhaustion_likely            date,
    exhaustion_earliest          date,
    exhaustion_latest            date,
    period_end                   date,
    projected_period_bytes       bigint CHECK (projected_period_bytes >= 0),
    projected_period_bytes_hi80  bigint CHECK (projected_period_bytes_hi80 >= 0),
    PRIMARY KEY (tenant_id, subject_kind, subject_id)
);
CREATE INDEX usage_forecasts_computed ON usage_forecasts (tenant_id, computed_at);

-- anomalies: what the detector found, one row per SIM, kind, day and value (the new network,
-- country or IMEI; '' for the other kinds, so that the unique key holds without NULLs), and what
-- people decided about it. A pass run twice stores each anomaly once. `customer_id` is the SIM's
-- sub-customer when found: its users see the anomalies of their SIMs.
CREATE TABLE anomalies (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sim_id           uuid NOT NULL REFERENCES sims (id) ON DELETE CASCADE,
    customer_id      uuid,
    iccid            text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('USAGE_SPIKE', 'SILENCE', 'SESSION_STORM', 'NEW_NETWORK',
                                                   'NEW_COUNTRY', 'IMEI_CHANGE')),
    day              date NOT NULL,
    score            double precision NOT NULL,
    severity         text NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'HIGH')),
    sentence         text NOT NULL,
    -- {"observed", "expected", "band_lo", "band_hi", "series": [...], "baseline": "OWN" | "COHORT"}
    evidence         jsonb NOT NULL CHECK (jsonb_typeof(evidence) = 'object'),
    value            text NOT NULL DEFAULT '',
    status           text NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'DISMISSED', 'CONFIRMED')),
    decided_by       text,
    decided_at       timestamptz,
    comment          text CHECK (comment IS NULL OR length(comment) <= 500),
    -- The last day a dismissal applies; NULL: for good.
    dismissed_until  date,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    UNIQUE (sim_id, kind, day, value)
);
CREATE INDEX anomalies_by_day ON anomalies (tenant_id, day DESC, score DESC, id);
CREATE INDEX anomalies_by_status ON anomalies (tenant_id, status);
CREATE INDEX anomalies_dismissed ON anomalies (sim_id) WHERE status = 'DISMISSED';

-- forecast_runs: one row per tenant, claimed by the instance passing it (until `claimed_until`,
-- a lease another instance waits out) and when its last pass finished.
CREATE TABLE forecast_runs (
    tenant_id      uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    claimed_until  timestamptz,
    finished_at    timestamptz
);

ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('BULK_JOB_FINISHED', 'QUOTA_STAGE', 'ALERT_FIRING', 'ALERT_RESOLVED', 'ANOMALY'));

GRANT SELECT, INSERT, UPDATE, DELETE ON usage_forecasts, anomalies, forecast_runs TO ioto_app;

ALTER TABLE usage_forecasts ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_forecasts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_forecasts
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
-- A sub-customer's users see the anomalies of their own SIMs only.
ALTER TABLE anomalies ENABLE ROW LEVEL SECURITY;
ALTER TABLE anomalies FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON anomalies
    USING (ioto_visible(tenant_id, customer_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
ALTER TABLE forecast_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE forecast_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON forecast_runs
    USING (ioto_tenant_visible(tenant_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
