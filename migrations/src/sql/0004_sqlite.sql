-- Rate cards, their versions, rating runs and closed billing periods (see 0004_postgres.sql).
CREATE TABLE rate_cards (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('RETAIL', 'SUPPLIER')),
    name           TEXT NOT NULL,
    currency       TEXT NOT NULL,
    billing_period TEXT NOT NULL CHECK (billing_period IN ('MONTHLY', 'QUARTERLY', 'ANNUAL')),
    retired_from   TEXT,
    created_at     TEXT NOT NULL,
    UNIQUE (tenant_id, kind)
);

CREATE TABLE rate_card_versions (
    id             BLOB PRIMARY KEY,
    rate_card_id   BLOB NOT NULL REFERENCES rate_cards (id) ON DELETE CASCADE,
    tenant_id      BLOB NOT NULL,
    kind           TEXT NOT NULL,
    effective_from TEXT NOT NULL,
    terms          TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    UNIQUE (rate_card_id, effective_from)
);

CREATE TABLE rating_runs (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    rate_card_id   BLOB NOT NULL REFERENCES rate_cards (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    period_start   TEXT NOT NULL,
    period_end     TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('RUNNING', 'CURRENT', 'SUPERSEDED', 'FAILED')),
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    totals         TEXT,
    error          TEXT,
    requested_by   TEXT NOT NULL
);
CREATE UNIQUE INDEX rating_runs_current ON rating_runs (rate_card_id, period_start) WHERE status = 'CURRENT';
CREATE INDEX rating_runs_tenant ON rating_runs (tenant_id, period_start DESC, started_at DESC);

CREATE TABLE closed_periods (
    rate_card_id   BLOB NOT NULL REFERENCES rate_cards (id) ON DELETE CASCADE,
    period_start   TEXT NOT NULL,
    tenant_id      BLOB NOT NULL,
    kind           TEXT NOT NULL,
    run_id         BLOB NOT NULL REFERENCES rating_runs (id),
    closed_at      TEXT NOT NULL,
    closed_by      TEXT NOT NULL,
    PRIMARY KEY (rate_card_id, period_start)
);

CREATE TABLE invoice_charges (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period_start   TEXT NOT NULL,
    description    TEXT NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_micros INTEGER NOT NULL CHECK (unit_price_micros >= 0),
    credit         INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL
);
CREATE INDEX invoice_charges_period ON invoice_charges (tenant_id, period_start, created_at);

ALTER TABLE tenants ADD COLUMN customers_see_costs INTEGER NOT NULL DEFAULT 0;
