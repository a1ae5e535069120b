//! The rating computation, in Polars: CDR columns in, rated rows and access fees out.
//!
//! ```text
//! CDRs (sim, customer, day, network, bytes in/out)      one row per cdr_id
//!   ⋈ days      (day → version in force)                 small, built from the card
//!   ⋈ sims      (sim → tariff plan)                      small, from the fleet
//!   ⋈ prices    ((version, network, plan) → zone, increment, price per byte as Decimal(38,12))
//!   → rounded  = ceil(bytes / increment) × increment     per record, integers
//!   → cost     = rounded × price                         Decimal(38,12), exact
//!   → group by SIM × customer × day × network × zone × plan: records, bytes, rounded, cost
//! ```
//!
//! A price per MB with 6 decimals is a price per byte with 12, so `rounded × price` needs no
//! rounding at all and sums stay exact. Strings are replaced by dictionary indexes before the
//! frame is built: the large frame holds integers only.

use std::collections::HashMap;

use chrono::{Datelike, Months, NaiveDate};
use ioto_domain::billing::money::{Cost, COST_SCALE};
use ioto_domain::billing::rate_card::RateCard;
use ioto_domain::billing::rating::{RatingJob, RatingTotals};
use ioto_domain::identifiers::MccMnc;
use ioto_domain::usage::networks::Networks;
use ioto_domain::{Error, Result};
use polars::prelude::*;

/// Strings of one column, each stored once; rows hold their index.
#[derive(Debug, Default, Clone)]
pub struct Dictionary {
    index: HashMap<String, u32>,
    values: Vec<String>,
}

impl Dictionary {
    /// The index of `value`, added when new.
    pub fn id(&mut self, value: &str) -> u32 {
        if let Some(&i) = self.index.get(value) {
            return i;
        }
        let i = self.values.len() as u32;
        self.index.insert(value.to_owned(), i);
        self.values.push(value.to_owned());
        i
    }

    pub fn get(&self, value: &str) -> Option<u32> {
        self.index.get(value).copied()
    }

    pub fn value(&self, id: u32) -> &str {
        self.values.get(id as usize).map(String::as_str).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Days since 1970-01-01, as Polars and the stores count them.
pub fn epoch_days(day: NaiveDate) -> i32 {
    (day - NaiveDate::default()).num_days() as i32
}

pub fn from_epoch_days(days: i32) -> NaiveDate {
    NaiveDate::default() + chrono::Duration::days(i64::from(days))
}

/// The CDRs of one tenant and period, as columns.
#[derive(Debug, Default)]
pub struct CdrColumns {
    pub sims: Dictionary,
    pub customers: Dictionary,
    pub networks: Dictionary,
    pub sim: Vec<u32>,
    pub customer: Vec<u32>,
    pub day: Vec<i32>,
    pub network: Vec<u32>,
    pub bytes_in: Vec<u64>,
    pub bytes_out: Vec<u64>,
}

impl CdrColumns {
    pub fn push(
        &mut self,
        iccid: &str,
        customer: &str,
        day: i32,
        mcc_mnc: &str,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        let sim = self.sims.id(iccid);
        let customer = self.customers.id(customer);
        let network = self.networks.id(mcc_mnc);
        self.sim.push(sim);
        self.customer.push(customer);
        self.day.push(day);
        self.network.push(network);
        self.bytes_in.push(bytes_in);
        self.bytes_out.push(bytes_out);
    }

    pub fn len(&self) -> usize {
        self.sim.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sim.is_empty()
    }
}

/// One SIM × customer × day × network × zone row of a run; strings by dictionary index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatedRow {
    pub sim: u32,
    pub customer: u32,
    pub day: i32,
    pub network: u32,
    pub zone: u32,
    pub plan: u32,
    pub records: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub rounded_bytes: u64,
    pub cost: Cost,
}

/// An access fee of one SIM for one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeRow {
    pub iccid: String,
    pub customer_id: String,
    pub month: NaiveDate,
    pub tariff_plan: String,
    pub fee: Cost,
}

/// What a run produced.
#[derive(Debug, Default)]
pub struct Rated {
    pub sims: Dictionary,
    pub customers: Dictionary,
    pub networks: Dictionary,
    pub zones: Dictionary,
    pub plans: Dictionary,
    pub rows: Vec<RatedRow>,
    pub fees: Vec<FeeRow>,
    pub totals: RatingTotals,
}

fn polars(e: PolarsError) -> Error {
    Error::Internal(format!("rating: {e}"))
}

/// Rates `cdrs` under the job's card.
pub fn rate(cdrs: CdrColumns, job: &RatingJob) -> Result<Rated> {
    let card = &job.card;
    let catalogue = Networks::builtin();

    // Tariff plans: index 0 is "no plan".
    let mut plans = Dictionary::default();
    plans.id("");
    let mut sim_plan: Vec<u32> = vec![0; cdrs.sims.len()];
    for s in &job.sims {
        if let Some(i) = cdrs.sims.get(s.iccid.as_str()) {
            sim_plan[i as usize] = plans.id(s.tariff_plan.as_deref().unwrap_or(""));
        }
    }

    // The version in force on each day of the period (none: unpriced).
    let mut day_keys = Vec::new();
    let mut day_versions: Vec<Option<u32>> = Vec::new();
    let mut d = job.from;
    while d < job.to {
        day_keys.push(epoch_days(d));
        day_versions.push(
            card.version_on(d)
                .and_then(|v| card.versions.iter().position(|x| x.id == v.id))
                .map(|i| i as u32),
        );
        d = d.succ_opt().unwrap_or(job.to);
    }

    // Records on days no version prices are counted, not rated.
    let first_day = epoch_days(job.from);
    let unpriced_records = cdrs
        .day
        .iter()
        .filter(|&&d| {
            usize::try_from(d - first_day)
                .ok()
                .and_then(|i| day_versions.get(i))
                .is_none_or(|v| v.is_none())
        })
        .count() as u64;

    // Zone, increment and price per byte of every (version, network, plan) combination.
    let mut zones = Dictionary::default();
    let (mut p_version, mut p_network, mut p_plan, mut p_zone, mut p_increment, mut p_price) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (vi, version) in card.versions.iter().enumerate() {
        let terms = &version.terms;
        for ni in 0..cdrs.networks.len() as u32 {
            let zone = MccMnc::parse(cdrs.networks.value(ni))
                .map(|n| terms.zone_of(&n, catalogue))
                .unwrap_or_else(|_| terms.zones.iter().position(|z| z.is_default).unwrap_or(0));
            for pi in 0..plans.len() as u32 {
                let plan = plans.value(pi);
                let price = terms.price(zone, (!plan.is_empty()).then_some(plan));
                p_version.push(vi as u32);
                p_network.push(ni);
                p_plan.push(pi);
                p_zone.push(zones.id(&terms.zones[zone].name));
                p_increment.push(terms.rounding_increment_bytes.max(1));
                // Micros per MB are 10⁻¹² per byte: the same integer at scale 12.
                p_price.push(i128::from(price.micros()));
            }
        }
    }

    let records = cdrs.len();
    let frame = DataFrame::new(
        records,
        vec![
            Column::new("sim".into(), cdrs.sim),
            Column::new("customer".into(), cdrs.customer),
            Column::new("day".into(), cdrs.day),
            Column::new("network".into(), cdrs.network),
            Column::new("bytes_in".into(), cdrs.bytes_in),
            Column::new("bytes_out".into(), cdrs.bytes_out),
        ],
    )
    .map_err(polars)?;
    let days = DataFrame::new(
        day_keys.len(),
        vec![
            Column::new("day".into(), day_keys),
            Column::new("version".into(), day_versions),
        ],
    )
    .map_err(polars)?;
    let sim_count = sim_plan.len();
    let sims = DataFrame::new(
        sim_count,
        vec![
            Column::new("sim".into(), (0..sim_count as u32).collect::<Vec<u32>>()),
            Column::new("plan".into(), sim_plan),
        ],
    )
    .map_err(polars)?;
    let price_rows = p_version.len();
    let prices = DataFrame::new(
        price_rows,
        vec![
            Column::new("version".into(), p_version),
            Column::new("network".into(), p_network),
            Column::new("plan".into(), p_plan),
            Column::new("zone".into(), p_zone),
            Column::new("increment".into(), p_increment),
            Int128Chunked::from_vec("price".into(), p_price)
                .into_decimal(38, COST_SCALE as usize)
                .map_err(polars)?
                .into_column(),
        ],
    )
    .map_err(polars)?;

    let with_versions = frame.lazy().join(
        days.lazy(),
        [col("day")],
        [col("day")],
        JoinArgs::new(JoinType::Left),
    );
    let rated = with_versions
        .filter(col("version").is_not_null())
        .join(
            sims.lazy(),
            [col("sim")],
            [col("sim")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            prices.lazy(),
            [col("version"), col("network"), col("plan")],
            [col("version"), col("network"), col("plan")],
            JoinArgs::new(JoinType::Inner),
        )
        .with_column((col("bytes_in") + col("bytes_out")).alias("bytes"))
        .with_column(
            ((col("bytes") + col("increment") - lit(1u64)).floor_div(col("increment")) * col("increment"))
                .alias("rounded"),
        )
        .with_column((col("rounded").cast(DataType::Decimal(38, 0)) * col("price")).alias("cost"))
        .group_by([
            col("sim"),
            col("customer"),
            col("day"),
            col("network"),
            col("zone"),
            col("plan"),
        ])
        .agg([
            len().cast(DataType::UInt64).alias("records"),
            col("bytes_in").sum(),
            col("bytes_out").sum(),
            col("rounded").sum(),
            col("cost").sum(),
        ])
        .collect()
        .map_err(polars)?;

    let rows = rows_of(&rated).map_err(polars)?;
    let mut totals = RatingTotals {
        unpriced_records,
        ..RatingTotals::default()
    };
    for r in &rows {
        totals.records += r.records;
        totals.bytes += r.bytes_in + r.bytes_out;
        totals.rounded_bytes += r.rounded_bytes;
        totals.usage_cost = totals.usage_cost + r.cost;
    }
    let fees = access_fees(card, job);
    totals.access_fee_sims = fees.len() as u64;
    totals.access_fees = fees.iter().map(|f| f.fee).sum();
    Ok(Rated {
        sims: cdrs.sims,
        customers: cdrs.customers,
        networks: cdrs.networks,
        zones,
        plans,
        rows,
        fees,
        totals,
    })
}

fn rows_of(df: &DataFrame) -> PolarsResult<Vec<RatedRow>> {
    let u32s = |name: &str| -> PolarsResult<Vec<u32>> {
        Ok(df.column(name)?.u32()?.iter().map(|v| v.unwrap_or(0)).collect())
    };
    let u64s = |name: &str| -> PolarsResult<Vec<u64>> {
        Ok(df.column(name)?.u64()?.iter().map(|v| v.unwrap_or(0)).collect())
    };
    let (sim, customer, network, zone, plan) = (
        u32s("sim")?,
        u32s("customer")?,
        u32s("network")?,
        u32s("zone")?,
        u32s("plan")?,
    );
    let day: Vec<i32> = df.column("day")?.i32()?.iter().map(|v| v.unwrap_or(0)).collect();
    let (records, bytes_in, bytes_out, rounded) = (
        u64s("records")?,
        u64s("bytes_in")?,
        u64s("bytes_out")?,
        u64s("rounded")?,
    );
    let cost = df.column("cost")?.decimal()?;
    polars_ensure!(cost.scale() == COST_SCALE as usize, ComputeError: "cost came back at scale {}, not {COST_SCALE}", cost.scale());
    let cost: Vec<i128> = cost.physical().iter().map(|v| v.unwrap_or(0)).collect();
    Ok((0..df.height())
        .map(|i| RatedRow {
            sim: sim[i],
            customer: customer[i],
            day: day[i],
            network: network[i],
            zone: zone[i],
            plan: plan[i],
            records: records[i],
            bytes_in: bytes_in[i],
            bytes_out: bytes_out[i],
            rounded_bytes: rounded[i],
            cost: Cost::from_units(cost[i]),
        })
        .collect())
}

/// Monthly access fees: each SIM active in a month of the period pays the fee of the version in
/// force on the first day of that month the card prices.
fn access_fees(card: &RateCard, job: &RatingJob) -> Vec<FeeRow> {
    let mut fees = Vec::new();
    for a in &job.active {
        if a.month < job.from || a.month >= job.to {
            continue;
        }
        let month_end = a.month + Months::new(1);
        let first_priced = card.starts().map_or(a.month, |s| s.max(a.month));
        if first_priced >= month_end || a.month.day() != 1 {
            continue;
        }
        let Some(version) = card.version_on(first_priced) else {
            continue;
        };
        let plan = a.sim.tariff_plan.as_deref();
        fees.push(FeeRow {
            iccid: a.sim.iccid.to_string(),
            customer_id: a.sim.customer_id.map(|c| c.to_string()).unwrap_or_default(),
            month: a.month,
            tariff_plan: plan.unwrap_or("").to_owned(),
            fee: version.terms.access_fee(plan).as_cost(),
        });
    }
    fees
}
