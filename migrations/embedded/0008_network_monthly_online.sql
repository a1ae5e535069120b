-- Mirrors ClickHouse's 0008. The embedded store serves NETWORK_MONTHLY from usage_monthly (SQLite
-- counts a month's distinct SIMs in one pass) and "online now" from live_sessions, which holds one
-- row per session. This index covers what NETWORK_MONTHLY reads, so a month by network or
-- sub-customer is answered from the index without visiting the table.
CREATE INDEX IF NOT EXISTS usage_monthly_networks
    ON usage_monthly (tenant_id, month, customer_id, mcc_mnc, iccid, bytes_in, bytes_out);
