-- Late usage of closed billing periods, charged in a later open period of the same card (a
-- closed period's invoice is never rewritten). One row per card, booking period and adjusted
-- period; re-rating the booking period replaces its row while that period is open.
CREATE TABLE period_adjustments (
    rate_card_id          uuid NOT NULL REFERENCES rate_cards (id) ON DELETE CASCADE,
    period_start          date NOT NULL,
    adjusted_period_start date NOT NULL,
    adjusted_period_end   date NOT NULL,
    tenant_id             uuid NOT NULL,
    kind                  text NOT NULL,
    -- CDRs of the adjusted period when it was rated again for this row.
    basis_records         bigint NOT NULL CHECK (basis_records >= 0),
    -- Data by zone and price, and access fees by amount: exact decimals as text.
    lines                 jsonb NOT NULL,
    computed_at           timestamptz NOT NULL,
    PRIMARY KEY (rate_card_id, period_start, adjusted_period_start),
    CHECK (adjusted_period_end <= period_start)
);
CREATE INDEX period_adjustments_tenant ON period_adjustments (tenant_id, period_start);

GRANT SELECT, INSERT, UPDATE, DELETE ON period_adjustments TO ioto_app;

ALTER TABLE period_adjustments ENABLE ROW LEVEL SECURITY;
ALTER TABLE period_adjustments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON period_adjustments
    USING (ioto_price_visible(tenant_id, kind)) WITH CHECK (ioto_platform());
