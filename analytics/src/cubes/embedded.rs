//! Cube reads on the embedded store: the buckets as a JSON list joined by range, the filters as
//! JSON lists (one bound value each, whatever their length), costs summed in two halves so that
//! no sum outgrows SQLite's 64-bit integers.

use chrono::{DateTime, Utc};
use ioto_domain::analytics::{Cube, CubeQuery, CubeRow};
use ioto_domain::billing::money::Cost;
use ioto_domain::usage::Granularity;
use ioto_domain::{CustomerId, Result, TenantId};
use serde_json::Value;
use sqlx::Row;

use super::{into_cube_row, selects_nothing, table, GroupedRow};
use crate::embedded::{db_err, EmbeddedUsage};

/// Costs are summed as `units / SPLIT` and `units % SPLIT`.
const SPLIT: i64 = 1_000_000;

/// A bound as the period column stores it: seconds, or the day's `YYYY-MM-DD` text.
fn stored(cube: Cube, t: DateTime<Utc>) -> Value {
    match cube {
        Cube::UsageDaily | Cube::RatedDaily => Value::String(t.date_naive().to_string()),
        Cube::NetworkMonthly | Cube::UsageMonthly | Cube::UsageHourly | Cube::SessionsHourly => {
            Value::from(t.timestamp())
        }
    }
}

fn json_list<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    Value::Array(items.iter().map(|i| Value::String(f(i))).collect()).to_string()
}

pub(crate) async fn cube_rows(
    store: &EmbeddedUsage,
    tenant: TenantId,
    q: &CubeQuery,
) -> Result<Vec<CubeRow>> {
    if selects_nothing(q) {
        return Ok(Vec::new());
    }
    // One monthly table serves both monthly cubes here: SQLite counts SIMs of a month's rows
    // in one pass, which ClickHouse needs the SIM sets of NETWORK_MONTHLY for.
    let t = table(q.cube.with_sim_column());
    let buckets = Value::Array(
        q.bounds
            .windows(2)
            .map(|w| Value::Array(vec![stored(q.cube, w[0]), stored(q.cube, w[1])]))
            .collect(),
    )
    .to_string();
    let pick = |on: bool, col: &str| if on { format!("u.{col}") } else { "''".to_owned() };
    // Evenly spaced bounds: the bucket by arithmetic on the row's time; else the row joined to
    // its bucket by range (a comparison per bound and row, most of a read over many bounds).
    let (bucket, join) = match (super::even_step(q, q.cube), q.bounds.first()) {
        (Some(step), Some(first)) if q.cube.grain() == Granularity::Day => (
            format!(
                "CAST(julianday(u.{time}) - julianday('{}') AS INTEGER) / {}",
                first.date_naive(),
                step / 86_400,
                time = t.time
            ),
            String::new(),
        ),
        (Some(step), Some(first)) => (
            format!("(u.{} - {}) / {step}", t.time, first.timestamp()),
            String::new(),
        ),
        _ => (
            "b.i".to_owned(),
            format!("JOIN b ON u.{time} >= b.s AND u.{time} < b.e", time = t.time),
        ),
    };
    let mut sql = format!(
        "WITH b(i, s, e) AS (SELECT CAST(key AS INTEGER), json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)) \
         SELECT {bucket} AS bucket, {customer} AS g_customer, {iccid} AS g_iccid, {network} AS g_network, {rat} AS g_rat, \
         SUM(u.{bin}) AS bytes_in, SUM(u.{bout}) AS bytes_out, {sessions} AS sessions, {rated} AS rated_bytes, \
         {cost_hi} AS cost_hi, {cost_lo} AS cost_lo, {sims} AS sims \
         FROM {table} u {join} WHERE u.tenant_id = ? \
         AND u.{time} >= json_extract(?, '$[0][0]') AND u.{time} < json_extract(?, '$[#-1][1]')",
        customer = pick(q.group.customer, "customer_id"),
        iccid = pick(q.group.sim, "iccid"),
        network = pick(q.group.network, t.network),
        rat = pick(q.group.rat, "rat"),
        bin = t.bytes_in,
        bout = t.bytes_out,
        sessions = if q.cube.has_sessions() { "SUM(u.sessions)" } else { "0" },
        sims = if q.count_sims { "COUNT(DISTINCT u.iccid)" } else { "0" },
        rated = if q.cube.is_rated() { "SUM(u.rounded_bytes)" } else { "0" },
        cost_hi = if q.cube.is_rated() { "SUM(u.cost_units / 1000000)" } else { "0" },
        cost_lo = if q.cube.is_rated() { "SUM(u.cost_units % 1000000)" } else { "0" },
        table = t.table,
        time = t.time,
    );
    let f = &q.filter;
    let mut lists: Vec<String> = Vec::new();
    if let Some(c) = f.customer {
        sql.push_str(" AND u.customer_id = ?");
        lists.push(c.to_string());
    }
    if let Some(i) = &f.iccids {
        sql.push_str(" AND u.iccid IN (SELECT value FROM json_each(?))");
        lists.push(json_list(i, |i| i.as_str().to_owned()));
    }
    if let Some(n) = &f.networks {
        sql.push_str(&format!(
            " AND u.{} IN (SELECT value FROM json_each(?))",
            t.network
        ));
        lists.push(json_list(n, ToString::to_string));
    }
    if let Some(r) = &f.rats {
        sql.push_str(" AND u.rat IN (SELECT value FROM json_each(?))");
        lists.push(json_list(r, |r| r.name().to_owned()));
    }
    if q.cube.is_rated() {
        sql.push_str(" AND u.run_id IN (SELECT value FROM json_each(?))");
        lists.push(json_list(&q.runs, ToString::to_string));
    }
    sql.push_str(" GROUP BY bucket, g_customer, g_iccid, g_network, g_rat");
    let mut query = sqlx::query(&sql)
        .bind(buckets.clone())
        .bind(tenant.to_string())
        .bind(buckets.clone())
        .bind(buckets);
    for l in lists {
        query = query.bind(l);
    }
    let rows = query.fetch_all(&store.pool).await.map_err(db_err)?;
    rows.iter()
        .map(|r| {
            let cost = i128::from(r.get::<i64, _>("cost_hi")) * i128::from(SPLIT)
                + i128::from(r.get::<i64, _>("cost_lo"));
            into_cube_row(
                q,
                GroupedRow {
                    bucket: usize::try_from(r.get::<i64, _>("bucket")).unwrap_or(usize::MAX),
                    customer: r.get("g_customer"),
                    iccid: r.get("g_iccid"),
                    network: r.get("g_network"),
                    rat: r.get("g_rat"),
                    bytes_in: r.get::<i64, _>("bytes_in").unsigned_abs(),
                    bytes_out: r.get::<i64, _>("bytes_out").unsigned_abs(),
                    sessions: r.get::<i64, _>("sessions").unsigned_abs(),
                    rated_bytes: r.get::<i64, _>("rated_bytes").unsigned_abs(),
                    cost: Cost::from_units(cost),
                    sims: r.get::<i64, _>("sims").unsigned_abs(),
                },
            )
        })
        .collect()
}

/// SIMs with a session that is not terminated and was updated at or after `since`.
pub(crate) async fn online_sims(
    store: &EmbeddedUsage,
    tenant: TenantId,
    customer: Option<CustomerId>,
    since: DateTime<Utc>,
) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT iccid) FROM live_sessions WHERE tenant_id = ? AND terminated = 0 AND event_time >= ?
           AND (? IS NULL OR customer_id = ?)",
    )
    .bind(tenant.to_string())
    .bind(since.timestamp())
    .bind(customer.map(|c| c.to_string()))
    .bind(customer.map(|c| c.to_string()))
    .fetch_one(&store.pool)
    .await
    .map_err(db_err)?;
    Ok(n.unsigned_abs())
}
