-- Rating results (see the ClickHouse migration of the same number). Costs are whole 10^-12 of
-- a currency unit as INTEGER (a row above 9.2 million currency units is refused by the writer);
-- sums are taken in the adapter with 128-bit integers.
CREATE TABLE IF NOT EXISTS rated_usage (
    run_id TEXT NOT NULL, tenant_id TEXT NOT NULL, kind TEXT NOT NULL, customer_id TEXT NOT NULL,
    iccid TEXT NOT NULL, day TEXT NOT NULL, mcc_mnc TEXT NOT NULL, zone TEXT NOT NULL,
    tariff_plan TEXT NOT NULL, records INTEGER NOT NULL, bytes_in INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL, rounded_bytes INTEGER NOT NULL, cost_units INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rated_usage_run ON rated_usage (tenant_id, run_id, day);
CREATE TABLE IF NOT EXISTS rated_fees (
    run_id TEXT NOT NULL, tenant_id TEXT NOT NULL, kind TEXT NOT NULL, customer_id TEXT NOT NULL,
    iccid TEXT NOT NULL, month TEXT NOT NULL, tariff_plan TEXT NOT NULL, fee_units INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rated_fees_run ON rated_fees (tenant_id, run_id, month);
