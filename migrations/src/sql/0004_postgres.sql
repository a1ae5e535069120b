-- Rate cards, their versions, rating runs and closed billing periods.
--
-- A tenant has at most one card of each kind: RETAIL (what the tenant pays the platform) and
-- SUPPLIER (what the platform pays for the tenant's traffic; platform admins only, enforced
-- here as well as in the application). Versions hold their terms (zones, prices, rounding,
-- access fee, tariff overrides) as one JSON document, validated by the application.
CREATE TABLE rate_cards (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind           text NOT NULL CHECK (kind IN ('RETAIL', 'SUPPLIER')),
    name           text NOT NULL,
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    billing_period text NOT NULL CHECK (billing_period IN ('MONTHLY', 'QUARTERLY', 'ANNUAL')),
    retired_from   date,
    created_at     timestamptz NOT NULL,
    UNIQUE (tenant_id, kind)
);

CREATE TABLE rate_card_versions (
    id             uuid PRIMARY KEY,
    rate_card_id   uuid NOT NULL REFERENCES rate_cards (id) ON DELETE CASCADE,
    tenant_id      uuid NOT NULL,
    kind           text NOT NULL,
    effective_from date NOT NULL,
    terms          jsonb NOT NULL,
    created_at     timestamptz NOT NULL,
    created_by     text NOT NULL,
    UNIQUE (rate_card_id, effective_from)
);

-- One row per rating run; at most one CURRENT run per card and period.
CREATE TABLE rating_runs (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    rate_card_id   uuid NOT NULL REFERENCES rate_cards (id) ON DELETE CASCADE,
    kind           text NOT NULL,
    period_start   date NOT NULL,
    period_end     date NOT NULL,
    status         text NOT NULL CHECK (status IN ('RUNNING', 'CURRENT', 'SUPERSEDED', 'FAILED')),
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    totals         jsonb,
    error          text,
    requested_by   text NOT NULL
);
CREATE UNIQUE INDEX rating_runs_current ON rating_runs (rate_card_id, period_start) WHERE status = 'CURRENT';
CREATE INDEX rating_runs_tenant ON rating_runs (tenant_id, period_start DESC, started_at DESC);

-- Billing periods whose invoice data is final: later CDRs of such a period are charged as
-- adjustments in the next open period, never by rewriting it.
CREATE TABLE closed_periods (
    rate_card_id   uuid NOT NULL REFERENCES rate_cards (id) ON DELETE CASCADE,
    period_start   date NOT NULL,
    tenant_id      uuid NOT NULL,
    kind           text NOT NULL,
    run_id         uuid NOT NULL REFERENCES rating_runs (id),
    closed_at      timestamptz NOT NULL,
    closed_by      text NOT NULL,
    PRIMARY KEY (rate_card_id, period_start)
);

-- Other charges a platform admin adds to a tenant's period (set-up fees, hardware, credits).
-- Platform only: tenants see them on their invoice data, which the platform hands them.
CREATE TABLE invoice_charges (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period_start   date NOT NULL,
    description    text NOT NULL,
    quantity       bigint NOT NULL CHECK (quantity > 0),
    unit_price_micros bigint NOT NULL CHECK (unit_price_micros >= 0),
    credit         boolean NOT NULL,
    created_at     timestamptz NOT NULL,
    created_by     text NOT NULL
);
CREATE INDEX invoice_charges_period ON invoice_charges (tenant_id, period_start, created_at);

-- Whether users of sub-customers see usage costs (off by default: prices are the tenant's).
ALTER TABLE tenants ADD COLUMN customers_see_costs boolean NOT NULL DEFAULT false;

GRANT SELECT, INSERT, UPDATE, DELETE ON rate_cards, rate_card_versions, rating_runs, closed_periods, invoice_charges TO ioto_app;

-- Cards the caller may see: its tenant's retail card; supplier cards to the platform only.
-- Only the platform writes cards and periods; runs are written by the platform's rating service.
CREATE FUNCTION ioto_price_visible(row_tenant uuid, row_kind text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('app.platform', true), '') = 'on'
        OR (row_kind = 'RETAIL' AND row_tenant::text = coalesce(current_setting('app.tenant_id', true), ''))
$$;
CREATE FUNCTION ioto_platform() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('app.platform', true), '') = 'on'
$$;

ALTER TABLE rate_cards ENABLE ROW LEVEL SECURITY;
ALTER TABLE rate_cards FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON rate_cards
    USING (ioto_price_visible(tenant_id, kind)) WITH CHECK (ioto_platform());

ALTER TABLE rate_card_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE rate_card_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON rate_card_versions
    USING (ioto_price_visible(tenant_id, kind)) WITH CHECK (ioto_platform());

ALTER TABLE rating_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE rating_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON rating_runs
    USING (ioto_price_visible(tenant_id, kind)) WITH CHECK (ioto_platform());

ALTER TABLE closed_periods ENABLE ROW LEVEL SECURITY;
ALTER TABLE closed_periods FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON closed_periods
    USING (ioto_price_visible(tenant_id, kind)) WITH CHECK (ioto_platform());

ALTER TABLE invoice_charges ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoice_charges FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_only ON invoice_charges USING (ioto_platform()) WITH CHECK (ioto_platform());
