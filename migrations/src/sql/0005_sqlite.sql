-- Late usage of closed billing periods, charged in a later open period (see the Postgres file).
CREATE TABLE period_adjustments (
    rate_card_id          BLOB NOT NULL REFERENCES rate_cards (id) ON DELETE CASCADE,
    period_start          TEXT NOT NULL,
    adjusted_period_start TEXT NOT NULL,
    adjusted_period_end   TEXT NOT NULL,
    tenant_id             BLOB NOT NULL,
    kind                  TEXT NOT NULL,
    basis_records         INTEGER NOT NULL CHECK (basis_records >= 0),
    lines                 TEXT NOT NULL,
    computed_at           TEXT NOT NULL,
    PRIMARY KEY (rate_card_id, period_start, adjusted_period_start),
    CHECK (adjusted_period_end <= period_start)
);
CREATE INDEX period_adjustments_tenant ON period_adjustments (tenant_id, period_start);
