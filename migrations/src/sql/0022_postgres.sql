-- Quota and plan advice, and the projected cost of forecasts, computed by the forecast pass.
--
-- advice: what the last pass advised, one row per subject and kind (a SIM's plan, a SIM's or a
-- pool's quota), replaced by every pass: it upserts its rows (an advice keeps its id from pass
-- to pass), then removes the tenant's rows it did not write again. A SIM's advice carries its ICCID and its sub-customer
-- (whose users see it, where the tenant shares SIM data); a pool's, the pool's sub-customer for a
-- pool of one (tenant-level readers only). Money is exact decimals as text, in `currency`;
-- `saving_rank` is the saving in whole millionths of the currency (0 for none, or nothing
-- saved): what lists sort and page by. `plain_sentence` is `sentence` without its amounts, for
-- readers who may not see costs.
CREATE TABLE advice (
    id                       uuid PRIMARY KEY,
    tenant_id                uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subject_kind             text NOT NULL CHECK (subject_kind IN ('SIM', 'POOL')),
    subject_id               uuid NOT NULL,
    iccid                    text,
    customer_id              uuid,
    kind                     text NOT NULL CHECK (kind IN ('PLAN', 'QUOTA')),
    action                   text NOT NULL CHECK (action IN ('SWITCH_PLAN', 'SET', 'RAISE', 'LOWER')),
    current_plan             text,
    recommended_plan         text,
    current_limit_bytes      bigint CHECK (current_limit_bytes > 0),
    recommended_limit_bytes  bigint CHECK (recommended_limit_bytes > 0),
    current_cost             text,
    recommended_cost         text,
    saving                   text,
    saving_rank              bigint NOT NULL DEFAULT 0 CHECK (saving_rank >= 0),
    currency                 text,
    sentence                 text NOT NULL,
    plain_sentence           text NOT NULL,
    window_from              date NOT NULL,
    window_to                date NOT NULL,
    computed_at              timestamptz NOT NULL,
    UNIQUE (tenant_id, subject_kind, subject_id, kind)
);
CREATE INDEX advice_by_saving ON advice (tenant_id, saving_rank DESC, id);
CREATE INDEX advice_computed ON advice (tenant_id, computed_at);

-- The projected cost of a forecast, where the tenant has a retail card: the billing period's
-- cost so far and where it is heading (expected and upper 80 %), exact decimals as text.
ALTER TABLE usage_forecasts
    ADD COLUMN cost_currency text,
    ADD COLUMN cost_so_far text,
    ADD COLUMN projected_cost text,
    ADD COLUMN projected_cost_high80 text;

GRANT SELECT, INSERT, UPDATE, DELETE ON advice TO ioto_app;

-- A sub-customer's users see the advice of their own SIMs only (the store leaves pools' out).
ALTER TABLE advice ENABLE ROW LEVEL SECURITY;
ALTER TABLE advice FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON advice
    USING (ioto_visible(tenant_id, customer_id)) WITH CHECK (ioto_tenant_visible(tenant_id));
