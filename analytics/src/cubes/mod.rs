//! The analytics layer's cube reads on both engines: which table and columns hold a cube, and
//! turning the engines' grouped rows back into [`CubeRow`]s.

pub(crate) mod clickhouse;
pub(crate) mod embedded;
pub mod synthetic;

use ioto_domain::analytics::{Cube, CubeQuery, CubeRow};
use ioto_domain::billing::money::Cost;
use ioto_domain::usage::Granularity;
use ioto_domain::usage::RadioAccessType;
use ioto_domain::{Error, Result};

use crate::stored;

/// Where a cube lives; the same names on both engines.
pub(crate) struct CubeTable {
    pub table: &'static str,
    /// The period column.
    pub time: &'static str,
    pub network: &'static str,
    pub bytes_in: &'static str,
    pub bytes_out: &'static str,
}

pub(crate) fn table(cube: Cube) -> CubeTable {
    let (table, time) = match cube {
        Cube::NetworkMonthly => ("network_usage_monthly", "month"),
        Cube::UsageMonthly => ("usage_monthly", "month"),
        Cube::UsageDaily => ("usage_daily", "day"),
        Cube::UsageHourly => ("usage_hourly", "hour"),
        Cube::SessionsHourly => ("sessions_hourly", "hour"),
        Cube::RatedDaily => ("rated_usage", "day"),
    };
    let daily = cube == Cube::UsageDaily;
    CubeTable {
        table,
        time,
        network: if daily { "network" } else { "mcc_mnc" },
        bytes_in: if daily { "bytes_up" } else { "bytes_in" },
        bytes_out: if daily { "bytes_down" } else { "bytes_out" },
    }
}

/// The spacing of a query's bounds, in seconds, where they are evenly spaced whole units of the
/// period column's grain (hours for the hourly cubes, days for the daily ones) from a whole
/// unit: a row's bucket is then arithmetic on its time, where otherwise it is searched among
/// the bounds (months differ in length).
pub(crate) fn even_step(q: &CubeQuery, grain: Cube) -> Option<i64> {
    let (first, second) = (q.bounds.first()?, q.bounds.get(1)?);
    let step = (*second - *first).num_seconds();
    let unit = match grain.grain() {
        Granularity::Hour => 3_600,
        Granularity::Day => 86_400,
        Granularity::Month | Granularity::Year => return None,
    };
    let even = step > 0 && q.bounds.windows(2).all(|w| (w[1] - w[0]).num_seconds() == step);
    (even && step % unit == 0 && first.timestamp() % unit == 0).then_some(step)
}

/// Whether a filter list is empty, so no row can match (answered without asking the engine).
pub(crate) fn selects_nothing(q: &CubeQuery) -> bool {
    let f = &q.filter;
    f.iccids.as_ref().is_some_and(Vec::is_empty)
        || f.networks.as_ref().is_some_and(Vec::is_empty)
        || f.rats.as_ref().is_some_and(Vec::is_empty)
        || (q.cube.is_rated() && q.runs.is_empty())
        || q.bounds.len() < 2
}

/// A grouped row as both engines return it: group columns as text ('' when not grouped).
pub(crate) struct GroupedRow {
    /// 0-based.
    pub bucket: usize,
    pub customer: String,
    pub iccid: String,
    pub network: String,
    pub rat: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub sessions: u64,
    pub rated_bytes: u64,
    pub cost: Cost,
    pub sims: u64,
}

pub(crate) fn into_cube_row(q: &CubeQuery, r: GroupedRow) -> Result<CubeRow> {
    let t = table(q.cube).table;
    if r.bucket + 1 >= q.bounds.len() {
        return Err(Error::Internal(format!(
            "{t}: bucket {} outside the query's bounds",
            r.bucket
        )));
    }
    Ok(CubeRow {
        bucket: r.bucket,
        customer_id: if q.group.customer {
            stored::customer(t, &r.customer)?
        } else {
            None
        },
        iccid: q.group.sim.then(|| stored::iccid(t, &r.iccid)).transpose()?,
        mcc_mnc: q
            .group
            .network
            .then(|| stored::mcc_mnc(t, &r.network))
            .transpose()?,
        rat: q
            .group
            .rat
            .then(|| {
                RadioAccessType::parse(&r.rat)
                    .map_err(|e| Error::Internal(format!("stored {t}.rat '{}': {e}", r.rat)))
            })
            .transpose()?,
        bytes_in: r.bytes_in,
        bytes_out: r.bytes_out,
        sessions: r.sessions,
        rated_bytes: r.rated_bytes,
        cost: r.cost,
        sims: r.sims,
    })
}
