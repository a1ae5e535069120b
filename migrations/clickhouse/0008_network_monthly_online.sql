-- Bytes and the set of SIMs per tenant, month, sub-customer and network: the analytics layer's
-- cube for requests that group by nothing finer than network and sub-customer. The SIM set is a
-- uniqExact state of the ICCIDs' 64-bit hashes (twice as fast to merge as the strings' 128-bit
-- ones; uniqExact hashes strings too), so active SIMs of a month (per network, or over every
-- network) are merged from a few rows instead of counted over every SIM's row.
CREATE TABLE IF NOT EXISTS network_usage_monthly (
    tenant_id    String,
    month        Date,
    customer_id  String,
    mcc_mnc      String,
    bytes_in     AggregateFunction(sum, UInt64),
    bytes_out    AggregateFunction(sum, UInt64),
    sims         AggregateFunction(uniqExact, UInt64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(month)
ORDER BY (tenant_id, month, customer_id, mcc_mnc);

CREATE MATERIALIZED VIEW IF NOT EXISTS network_usage_monthly_mv TO network_usage_monthly AS
SELECT tenant_id, month, customer_id, mcc_mnc, sumState(delta_in) AS bytes_in,
       sumState(delta_out) AS bytes_out, uniqExactState(cityHash64(iccid)) AS sims
FROM session_updates
GROUP BY tenant_id, month, customer_id, mcc_mnc;

-- History: the monthly cube fills it once (see 0007 for why a re-run adds nothing).
INSERT INTO network_usage_monthly
SELECT tenant_id, month, customer_id, mcc_mnc, sumState(bytes_in), sumState(bytes_out), uniqExactState(cityHash64(iccid))
FROM usage_monthly
WHERE (SELECT count() FROM network_usage_monthly) = 0
GROUP BY tenant_id, month, customer_id, mcc_mnc;

-- The set of SIMs per tenant, month and sub-customer, over every network: active SIMs of a
-- month merge one set of the month's SIMs instead of one per network.
CREATE TABLE IF NOT EXISTS sims_monthly (
    tenant_id    String,
    month        Date,
    customer_id  String,
    sims         AggregateFunction(uniqExact, UInt64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(month)
ORDER BY (tenant_id, month, customer_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS sims_monthly_mv TO sims_monthly AS
SELECT tenant_id, month, customer_id, uniqExactState(cityHash64(iccid)) AS sims
FROM session_updates
GROUP BY tenant_id, month, customer_id;

INSERT INTO sims_monthly
SELECT tenant_id, month, customer_id, uniqExactState(cityHash64(iccid))
FROM usage_monthly
WHERE (SELECT count() FROM sims_monthly) = 0
GROUP BY tenant_id, month, customer_id;

-- Session activity by time: "online now" reads the updates of the last minutes of one tenant, a
-- range of this table's sort key, instead of every session's latest state.
CREATE TABLE IF NOT EXISTS session_activity (
    tenant_id    String,
    customer_id  String,
    iccid        String,
    session_id   String,
    started_at   DateTime,
    event_time   DateTime,
    terminated   UInt8
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (tenant_id, event_time)
{{TTL event_time + INTERVAL 1 DAY}};

CREATE MATERIALIZED VIEW IF NOT EXISTS session_activity_mv TO session_activity AS
SELECT tenant_id, customer_id, iccid, session_id, started_at, event_time, terminated
FROM session_updates;

INSERT INTO session_activity
SELECT tenant_id, customer_id, iccid, session_id, started_at, event_time, terminated
FROM session_updates
WHERE event_time >= now() - 86400 AND (SELECT count() FROM session_activity) = 0;
