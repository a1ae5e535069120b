//! Cube reads on ClickHouse: one `GROUP BY` per query, the bucket found by `arrayFirstIndex` over
//! the bucket ends, SIMs counted with `uniqExact`.

use chrono::{DateTime, Utc};
use clickhouse::Row;
use ioto_domain::analytics::{Cube, CubeQuery, CubeRow};
use ioto_domain::billing::money::Cost;
use ioto_domain::{CustomerId, Result, TenantId};
use serde::Deserialize;
use uuid::Uuid;

use super::{into_cube_row, selects_nothing, table, CubeTable, GroupedRow};
use crate::ClickHouseUsage;

#[derive(Row, Deserialize)]
struct ChRow {
    bucket: u32,
    g_customer: String,
    g_iccid: String,
    g_network: String,
    g_rat: String,
    bytes_in: u64,
    bytes_out: u64,
    sessions: u64,
    rated_bytes: u64,
    cost: i128,
    sims: u64,
}

/// A bound as a ClickHouse literal of the period column's type (`Date` for days and months,
/// `DateTime` for hours); bounds are on the cube's grain, so a date loses nothing.
fn literal(cube: Cube, t: DateTime<Utc>) -> String {
    match cube {
        Cube::UsageHourly | Cube::SessionsHourly => format!("toDateTime({})", t.timestamp()),
        Cube::NetworkMonthly | Cube::UsageMonthly | Cube::UsageDaily | Cube::RatedDaily => {
            format!("toDate('{}')", t.date_naive())
        }
    }
}

/// The 1-based bucket of a row at `time` (the caller keeps rows within the bounds): by
/// arithmetic where the bounds are evenly spaced whole hours (hourly cubes) or whole days (daily
/// ones) — as the forecast pass's and the dashboard's are —, else the first bound after it
/// (months differ in length). Both agree on every row; the search costs a comparison per bound
/// and row, which on 90 daily or 700 hourly bounds over millions of rows is most of a read.
fn bucket_of(q: &CubeQuery, grain: Cube, time: &str) -> String {
    let Some((step, first)) = super::even_step(q, grain).zip(q.bounds.first()) else {
        let ends: Vec<String> = q.bounds[1..].iter().map(|b| literal(grain, *b)).collect();
        return format!(
            "toUInt32(arrayFirstIndex(b -> b > {time}, [{}]))",
            ends.join(", ")
        );
    };
    if grain.grain() == ioto_domain::usage::Granularity::Hour {
        format!(
            "toUInt32(intDiv(toUInt32({time}) - {}, {step}) + 1)",
            first.timestamp()
        )
    } else {
        format!(
            "toUInt32(intDiv(toRelativeDayNum({time}) - toRelativeDayNum(toDate('{}')), {}) + 1)",
            first.date_naive(),
            step / 86_400
        )
    }
}

/// ICCIDs per query: a list is sent inside the query text, which ClickHouse limits to 256 KiB.
const ICCIDS_PER_QUERY: usize = 5_000;

/// Reads a cube; a long ICCID filter is split into queries of [`ICCIDS_PER_QUERY`] (the SIM sets
/// do not overlap, so their rows, SIM counts included, add up).
pub(crate) async fn cube_rows(ch: &ClickHouseUsage, tenant: TenantId, q: &CubeQuery) -> Result<Vec<CubeRow>> {
    match &q.filter.iccids {
        Some(all) if all.len() > ICCIDS_PER_QUERY => {
            let mut out = Vec::new();
            for chunk in all.chunks(ICCIDS_PER_QUERY) {
                let mut part = q.clone();
                part.filter.iccids = Some(chunk.to_vec());
                out.extend(cube_rows_once(ch, tenant, &part).await?);
            }
            Ok(out)
        }
        _ => cube_rows_once(ch, tenant, q).await,
    }
}

/// SIMs of NETWORK_MONTHLY rows that are not split or filtered by network come from the
/// per-month SIM sets (`sims_monthly`: one set per month and sub-customer instead of one per
/// network), the bytes from the cube; both are read at once and joined here.
async fn cube_rows_once(ch: &ClickHouseUsage, tenant: TenantId, q: &CubeQuery) -> Result<Vec<CubeRow>> {
    if selects_nothing(q) {
        return Ok(Vec::new());
    }
    if q.cube == Cube::NetworkMonthly && q.count_sims && !q.group.network && q.filter.networks.is_none() {
        let bytes_only = CubeQuery {
            count_sims: false,
            ..q.clone()
        };
        let (mut rows, sims) =
            futures::try_join!(grouped_rows(ch, tenant, &bytes_only), monthly_sims(ch, tenant, q))?;
        for (bucket, customer, n) in sims {
            match rows
                .iter_mut()
                .find(|r| r.bucket == bucket && r.customer_id == customer)
            {
                Some(r) => r.sims = n,
                None => rows.push(CubeRow {
                    bucket,
                    customer_id: customer,
                    sims: n,
                    ..CubeRow::default()
                }),
            }
        }
        return Ok(rows);
    }
    grouped_rows(ch, tenant, q).await
}

#[derive(Row, Deserialize)]
struct SimsRow {
    bucket: u32,
    g_customer: String,
    sims: u64,
}

/// Distinct SIMs per bucket (and sub-customer when grouped by it) from `sims_monthly`.
async fn monthly_sims(
    ch: &ClickHouseUsage,
    tenant: TenantId,
    q: &CubeQuery,
) -> Result<Vec<(usize, Option<CustomerId>, u64)>> {
    let (Some(first), Some(last)) = (q.bounds.first(), q.bounds.last()) else {
        return Ok(Vec::new());
    };
    let ends: Vec<String> = q.bounds[1..].iter().map(|b| literal(q.cube, *b)).collect();
    let mut sql = format!(
        "SELECT toUInt32(arrayFirstIndex(b -> b > month, [{ends}])) AS bucket, {customer} AS g_customer, \
         uniqExactMerge(sims) AS sims FROM sims_monthly_store \
         WHERE tenant_id = ? AND month >= {from} AND month < {to}",
        ends = ends.join(", "),
        customer = if q.group.customer { "customer_id" } else { "''" },
        from = literal(q.cube, *first),
        to = literal(q.cube, *last),
    );
    if q.filter.customer.is_some() {
        sql.push_str(" AND customer_id = ?");
    }
    sql.push_str(" GROUP BY bucket, g_customer");
    let mut query = ch.client.query(&sql).bind(tenant.to_string());
    if let Some(c) = q.filter.customer {
        query = query.bind(c.to_string());
    }
    let rows = query.fetch_all::<SimsRow>().await.map_err(|e| ch.err(e))?;
    rows.into_iter()
        .map(|r| {
            let bucket = (r.bucket as usize).saturating_sub(1);
            if bucket + 1 >= q.bounds.len() {
                return Err(ioto_domain::Error::Internal(format!(
                    "sims_monthly: bucket {bucket} outside the query's bounds"
                )));
            }
            let customer = if q.group.customer {
                crate::stored::customer("sims_monthly", &r.g_customer)?
            } else {
                None
            };
            Ok((bucket, customer, r.sims))
        })
        .collect()
}

/// The daily cube and the hourly sessions cube by whole UTC days, sorted by SIM first
/// (migration 13): a read that names a few thousand SIMs reads their ranges of it, where the
/// cubes, sorted by time first, would be read whole over the query's days.
const SIM_DAILY: CubeTable = CubeTable {
    table: "sim_daily",
    time: "day",
    network: "mcc_mnc",
    bytes_in: "bytes_in",
    bytes_out: "bytes_out",
};

/// Where a query is read, and the grain of its period column: `sim_daily` for a query that
/// names its SIMs and asks what that table holds — the daily cube, or the sessions cube over
/// whole UTC days, not split or filtered by RAT —, else its cube.
fn source(q: &CubeQuery) -> (CubeTable, Cube) {
    let whole_days = || q.bounds.iter().all(|b| b.timestamp() % 86_400 == 0);
    let sim_daily = q.filter.iccids.is_some()
        && match q.cube {
            Cube::UsageDaily => true,
            Cube::SessionsHourly => !q.group.rat && q.filter.rats.is_none() && whole_days(),
            _ => false,
        };
    if sim_daily {
        (SIM_DAILY, Cube::UsageDaily)
    } else {
        (table(q.cube), q.cube)
    }
}

/// One `GROUP BY` over the cube (the caller has ruled out queries that select nothing).
async fn grouped_rows(ch: &ClickHouseUsage, tenant: TenantId, q: &CubeQuery) -> Result<Vec<CubeRow>> {
    let (Some(first), Some(last)) = (q.bounds.first(), q.bounds.last()) else {
        return Ok(Vec::new());
    };
    let (t, grain) = source(q);
    if !q.cube.has_sims() && (q.group.sim || q.filter.iccids.is_some()) {
        return Err(ioto_domain::Error::Internal(format!(
            "{} has no SIM column to group or filter by",
            q.cube.name()
        )));
    }
    let bucket = bucket_of(q, grain, t.time);
    let pick = |on: bool, col: &str| if on { col.to_owned() } else { "''".to_owned() };
    // NETWORK_MONTHLY holds aggregate states: sums and SIM sets are merged.
    let states = !q.cube.has_sims();
    let sum = if states { "sumMerge" } else { "sum" };
    let sims = match (q.count_sims, states) {
        (false, _) => "toUInt64(0)",
        (true, true) => "uniqExactMerge(sims)",
        (true, false) => "uniqExact(iccid)",
    };
    let mut sql = format!(
        "SELECT {bucket} AS bucket, \
         {customer} AS g_customer, {iccid} AS g_iccid, {network} AS g_network, {rat} AS g_rat, \
         {sum}({bin}) AS bytes_in, {sum}({bout}) AS bytes_out, {sessions} AS sessions, {rated} AS rated_bytes, \
         {cost} AS cost, {sims} AS sims \
         FROM {table} WHERE tenant_id = ? AND {time} >= {from} AND {time} < {to}",
        time = t.time,
        // The rated cube holds sub-customers as `UUID`s, the nil UUID for none.
        customer = pick(
            q.group.customer,
            if q.cube.is_rated() {
                crate::rating::CUSTOMER_TEXT
            } else {
                "customer_id"
            }
        ),
        iccid = pick(q.group.sim, "iccid"),
        network = pick(q.group.network, t.network),
        rat = pick(q.group.rat, "rat"),
        bin = t.bytes_in,
        bout = t.bytes_out,
        sessions = if q.cube.has_sessions() {
            "sum(sessions)"
        } else {
            "toUInt64(0)"
        },
        rated = if q.cube.is_rated() {
            "sum(rounded_bytes)"
        } else {
            "toUInt64(0)"
        },
        cost = if q.cube.is_rated() {
            "sum(cost)"
        } else {
            "toDecimal128(0, 12)"
        },
        table = crate::clickhouse::read_from(t.table),
        from = literal(grain, *first),
        to = literal(grain, *last),
    );
    let f = &q.filter;
    if f.customer.is_some() {
        sql.push_str(" AND customer_id = ?");
    }
    if f.iccids.is_some() {
        // A set built once per query: `has` on the array would search it for every row (5,000
        // ICCIDs against 90 days of a large tenant's rows ran minutes, not seconds).
        sql.push_str(" AND iccid IN (SELECT arrayJoin(?))");
    }
    if f.networks.is_some() {
        sql.push_str(&format!(" AND has(?, {})", t.network));
    }
    if f.rats.is_some() {
        sql.push_str(" AND has(?, rat)");
    }
    if q.cube.is_rated() {
        sql.push_str(" AND has(arrayMap(r -> toUUID(r), ?), run_id)");
    }
    sql.push_str(" GROUP BY bucket, g_customer, g_iccid, g_network, g_rat");
    let mut query = ch.client.query(&sql).bind(tenant.to_string());
    if let Some(c) = f.customer {
        query = query.bind(c.to_string());
    }
    if let Some(i) = &f.iccids {
        query = query.bind(i.iter().map(|i| i.as_str().to_owned()).collect::<Vec<_>>());
    }
    if let Some(n) = &f.networks {
        query = query.bind(n.iter().map(ToString::to_string).collect::<Vec<_>>());
    }
    if let Some(r) = &f.rats {
        query = query.bind(r.iter().map(|r| r.name().to_owned()).collect::<Vec<_>>());
    }
    if q.cube.is_rated() {
        query = query.bind(q.runs.iter().map(Uuid::to_string).collect::<Vec<_>>());
    }
    let rows = query.fetch_all::<ChRow>().await.map_err(|e| ch.err(e))?;
    rows.into_iter()
        .map(|r| {
            into_cube_row(
                q,
                GroupedRow {
                    bucket: (r.bucket as usize).saturating_sub(1),
                    customer: r.g_customer,
                    iccid: r.g_iccid,
                    network: r.g_network,
                    rat: r.g_rat,
                    bytes_in: r.bytes_in,
                    bytes_out: r.bytes_out,
                    sessions: r.sessions,
                    rated_bytes: r.rated_bytes,
                    cost: Cost::from_units(r.cost),
                    sims: r.sims,
                },
            )
        })
        .collect()
}

/// SIMs with a session whose latest state is not terminated and was updated at or after `since`.
/// Only rows written since then are read (a range of `session_activity`'s sort key): a session
/// updated since has its latest row among them.
pub(crate) async fn online_sims(
    ch: &ClickHouseUsage,
    tenant: TenantId,
    customer: Option<CustomerId>,
    since: DateTime<Utc>,
) -> Result<u64> {
    let mut sql = String::from(
        "SELECT uniqExact(iccid) FROM (SELECT iccid, session_id, max(terminated) AS ended, max(event_time) AS last, \
         argMax(customer_id, event_time) AS customer FROM session_activity \
         WHERE tenant_id = ? AND event_time >= toDateTime(?) AND started_at >= now() - 7 * 86400 \
         GROUP BY iccid, session_id) WHERE ended = 0",
    );
    if customer.is_some() {
        sql.push_str(" AND customer = ?");
    }
    let mut q = ch
        .client
        .query(&sql)
        .bind(tenant.to_string())
        .bind(since.timestamp().max(0));
    if let Some(c) = customer {
        q = q.bind(c.to_string());
    }
    q.fetch_one::<u64>().await.map_err(|e| ch.err(e))
}
