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
use std::ops::Range;
use std::sync::Arc;

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

    /// Each index's position in the values' byte order (what a store's `ORDER BY` on the
    /// string column sorts by).
    pub fn ranks(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = (0..self.values.len() as u32).collect();
        ids.sort_unstable_by(|&a, &b| self.values[a as usize].cmp(&self.values[b as usize]));
        let mut ranks = vec![0; ids.len()];
        for (rank, id) in ids.into_iter().enumerate() {
            ranks[id as usize] = rank as u32;
        }
        ranks
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
#[derive(Debug, Default, Clone)]
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

    /// Adds `other`'s records, its dictionary indexes mapped onto this one's.
    pub fn append(&mut self, other: CdrColumns) {
        if self.is_empty() {
            *self = other;
            return;
        }
        let remap = |into: &mut Dictionary, from: &Dictionary| -> Vec<u32> {
            from.values.iter().map(|v| into.id(v)).collect()
        };
        let sims = remap(&mut self.sims, &other.sims);
        let customers = remap(&mut self.customers, &other.customers);
        let networks = remap(&mut self.networks, &other.networks);
        self.sim.extend(other.sim.iter().map(|&i| sims[i as usize]));
        self.customer
            .extend(other.customer.iter().map(|&i| customers[i as usize]));
        self.network
            .extend(other.network.iter().map(|&i| networks[i as usize]));
        self.day.extend(other.day);
        self.bytes_in.extend(other.bytes_in);
        self.bytes_out.extend(other.bytes_out);
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

/// The strings behind a run's dictionary indexes.
#[derive(Debug, Default)]
pub struct Names {
    pub sims: Dictionary,
    pub customers: Dictionary,
    pub networks: Dictionary,
    pub zones: Dictionary,
    pub plans: Dictionary,
}

/// What a run produced.
#[derive(Debug, Default)]
pub struct Rated {
    pub names: Names,
    pub rows: Vec<RatedRow>,
    pub fees: Vec<FeeRow>,
    pub totals: RatingTotals,
}

/// Records rated together: whole days, about this many records (a day is never split, so no
/// SIM × day × network row spans two slices). A slice's frames are what the rating holds in
/// memory beside the CDR columns.
pub const SLICE_RECORDS: usize = 1 << 20;

fn polars(e: PolarsError) -> Error {
    Error::Internal(format!("rating: {e}"))
}

/// The CDRs of a period with everything they are rated against, rated a slice of days at a
/// time so that a store can write one slice while the next is rated.
pub struct Rater {
    names: Arc<Names>,
    sim: Vec<u32>,
    customer: Vec<u32>,
    day: Vec<i32>,
    network: Vec<u32>,
    bytes_in: Vec<u64>,
    bytes_out: Vec<u64>,
    /// Record indexes ordered by day; each slice is a range of it.
    order: Vec<u32>,
    /// Byte-order ranks of the ICCIDs and networks, to hand rows out in the stored key's order.
    sim_rank: Vec<u32>,
    network_rank: Vec<u32>,
    slices: Vec<Range<usize>>,
    days: DataFrame,
    sim_plans: DataFrame,
    prices: DataFrame,
    unpriced_records: u64,
}

impl Rater {
    /// Prepares `cdrs` for rating under the job's card, in slices of about `slice_records`.
    pub fn new(cdrs: CdrColumns, job: &RatingJob, slice_records: usize) -> Result<Self> {
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

        let days = DataFrame::new(
            day_keys.len(),
            vec![
                Column::new("day".into(), day_keys),
                Column::new("version".into(), day_versions),
            ],
        )
        .map_err(polars)?;
        let sim_count = sim_plan.len();
        let sim_plans = DataFrame::new(
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

        let (order, slices) = day_slices(&cdrs.day, slice_records.max(1));
        let (sim_rank, network_rank) = (cdrs.sims.ranks(), cdrs.networks.ranks());
        Ok(Self {
            names: Arc::new(Names {
                sims: cdrs.sims,
                customers: cdrs.customers,
                networks: cdrs.networks,
                zones,
                plans,
            }),
            sim: cdrs.sim,
            customer: cdrs.customer,
            day: cdrs.day,
            network: cdrs.network,
            bytes_in: cdrs.bytes_in,
            bytes_out: cdrs.bytes_out,
            order,
            slices,
            sim_rank,
            network_rank,
            days,
            sim_plans,
            prices,
            unpriced_records,
        })
    }

    /// The strings behind the rows' indexes, for the writer.
    pub fn names(&self) -> Arc<Names> {
        Arc::clone(&self.names)
    }

    pub fn slice_count(&self) -> usize {
        self.slices.len()
    }

    /// Records on days the card does not price.
    pub fn unpriced_records(&self) -> u64 {
        self.unpriced_records
    }

    /// Rates slice `i`: its rows, one per SIM × customer × day × network × zone × plan, in the
    /// stored key's order (day, ICCID, network — slices follow each other in day order), so a
    /// store receives them sorted: ClickHouse then skips sorting each block it writes (the
    /// greater part of its insert time for these rows when they arrive in hash order).
    pub fn rate_slice(&self, i: usize) -> Result<Vec<RatedRow>> {
        let Some(range) = self.slices.get(i) else {
            return Ok(Vec::new());
        };
        let idx = &self.order[range.clone()];
        fn gather<T: Copy>(column: &[T], idx: &[u32]) -> Vec<T> {
            idx.iter().map(|&i| column[i as usize]).collect()
        }
        let frame = DataFrame::new(
            idx.len(),
            vec![
                Column::new("sim".into(), gather(&self.sim, idx)),
                Column::new("customer".into(), gather(&self.customer, idx)),
                Column::new("day".into(), gather(&self.day, idx)),
                Column::new("network".into(), gather(&self.network, idx)),
                Column::new("bytes_in".into(), gather(&self.bytes_in, idx)),
                Column::new("bytes_out".into(), gather(&self.bytes_out, idx)),
            ],
        )
        .map_err(polars)?;

        let with_versions = frame.lazy().join(
            self.days.clone().lazy(),
            [col("day")],
            [col("day")],
            JoinArgs::new(JoinType::Left),
        );
        let rated = with_versions
            .filter(col("version").is_not_null())
            .join(
                self.sim_plans.clone().lazy(),
                [col("sim")],
                [col("sim")],
                JoinArgs::new(JoinType::Left),
            )
            .join(
                self.prices.clone().lazy(),
                [col("version"), col("network"), col("plan")],
                [col("version"), col("network"), col("plan")],
                JoinArgs::new(JoinType::Inner),
            )
            .with_column((col("bytes_in") + col("bytes_out")).alias("bytes"))
            .with_column(
                ((col("bytes") + col("increment") - lit(1u64)).floor_div(col("increment"))
                    * col("increment"))
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
        let mut rows = rows_of(&rated).map_err(polars)?;
        rows.sort_unstable_by_key(|r| {
            (
                r.day,
                self.sim_rank[r.sim as usize],
                self.network_rank[r.network as usize],
            )
        });
        Ok(rows)
    }
}

/// Record indexes ordered by day (a counting sort), and ranges of it holding whole days of
/// about `slice_records` records each.
fn day_slices(days: &[i32], slice_records: usize) -> (Vec<u32>, Vec<Range<usize>>) {
    let (Some(&lo), Some(&hi)) = (days.iter().min(), days.iter().max()) else {
        return (Vec::new(), Vec::new());
    };
    let span = (i64::from(hi) - i64::from(lo) + 1) as usize;
    let mut starts = vec![0usize; span + 1];
    for &d in days {
        starts[(d - lo) as usize + 1] += 1;
    }
    let mut running = 0;
    for s in &mut starts {
        running += *s;
        *s = running;
    }
    let mut next = starts.clone();
    let mut order = vec![0u32; days.len()];
    for (i, &d) in days.iter().enumerate() {
        let slot = &mut next[(d - lo) as usize];
        order[*slot] = i as u32;
        *slot += 1;
    }
    let mut slices = Vec::new();
    let mut from = 0;
    for &end in &starts[1..] {
        if end - from >= slice_records {
            slices.push(from..end);
            from = end;
        }
    }
    if from < days.len() {
        slices.push(from..days.len());
    }
    (order, slices)
}

/// Adds rated rows to a run's totals.
pub fn add_rows(totals: &mut RatingTotals, rows: &[RatedRow]) {
    for r in rows {
        totals.records += r.records;
        totals.bytes += r.bytes_in + r.bytes_out;
        totals.rounded_bytes += r.rounded_bytes;
        totals.usage_cost = totals.usage_cost + r.cost;
    }
}

/// The access fees of the job's period, added to `totals`.
pub fn fees(job: &RatingJob, totals: &mut RatingTotals) -> Vec<FeeRow> {
    let fees = access_fees(&job.card, job);
    totals.access_fee_sims = fees.len() as u64;
    totals.access_fees = fees.iter().map(|f| f.fee).sum();
    fees
}

/// Rates `cdrs` under the job's card, the whole period at once in memory.
pub fn rate(cdrs: CdrColumns, job: &RatingJob) -> Result<Rated> {
    rate_in_slices(cdrs, job, SLICE_RECORDS)
}

fn rate_in_slices(cdrs: CdrColumns, job: &RatingJob, slice_records: usize) -> Result<Rated> {
    let rater = Rater::new(cdrs, job, slice_records)?;
    let mut totals = RatingTotals {
        unpriced_records: rater.unpriced_records(),
        ..RatingTotals::default()
    };
    let mut rows = Vec::new();
    for i in 0..rater.slice_count() {
        let slice = rater.rate_slice(i)?;
        add_rows(&mut totals, &slice);
        rows.extend(slice);
    }
    let fees = fees(job, &mut totals);
    let names = rater.names();
    drop(rater);
    let names = Arc::try_unwrap(names)
        .map_err(|_| Error::Internal("rating: the run's names are still shared".into()))?;
    Ok(Rated {
        names,
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    use ioto_domain::billing::money::{Currency, Price};
    use ioto_domain::billing::rate_card::{
        BillingPeriod, RateCardKind, RateCardTerms, RateCardVersion, Zone,
    };
    use ioto_domain::billing::rating::BillableSim;
    use ioto_domain::identifiers::Iccid;
    use ioto_domain::TenantId;
    use uuid::Uuid;

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    fn terms(from: NaiveDate, home: &str, world: &str, increment: u64) -> RateCardTerms {
        let price = |s: &str| Price::parse("price", s).unwrap();
        RateCardTerms {
            effective_from: from,
            rounding_increment_bytes: increment,
            access_fee: price("1.00"),
            zones: vec![
                Zone {
                    name: "Home".into(),
                    networks: vec![MccMnc::parse("262-01").unwrap()],
                    countries: vec![],
                    price_per_mb: price(home),
                    is_default: false,
                },
                Zone {
                    name: "World".into(),
                    networks: vec![],
                    countries: vec![],
                    price_per_mb: price(world),
                    is_default: true,
                },
            ],
            overrides: vec![],
        }
    }

    /// Two rate-card versions (nothing priced on the 1st), seven SIMs and three networks whose
    /// first appearance is not their byte order; 2,000 records on unordered days, several per
    /// SIM × day × network.
    fn fixture() -> (CdrColumns, RatingJob) {
        let version = |terms| RateCardVersion {
            id: Uuid::new_v4(),
            terms,
            created_at: Utc::now(),
            created_by: "test".into(),
        };
        let tenant = TenantId(Uuid::new_v4());
        let card = RateCard {
            id: Uuid::new_v4(),
            tenant_id: tenant,
            kind: RateCardKind::Retail,
            name: "Standard".into(),
            currency: Currency::parse("currency", "EUR").unwrap(),
            billing_period: BillingPeriod::Monthly,
            retired_from: None,
            created_at: Utc::now(),
            // Nothing priced on the 1st; a new version from the 10th.
            versions: vec![
                version(terms(day(3, 2), "0.010", "0.100", 1_024)),
                version(terms(day(3, 10), "0.012", "0.080", 1_000)),
            ],
        };
        let sims: Vec<Iccid> = (0..7)
            .map(|i| Iccid::with_check_digit(&format!("89490000000000{i:04}")).unwrap())
            .collect();
        let mut cdrs = CdrColumns::default();
        let networks = ["262-01", "208-01", "310-260"];
        // Unordered days, several records per SIM × day × network.
        let mut x: u64 = 12_345;
        for _ in 0..2_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let d = (x >> 33) % 31;
            let sim = &sims[((x >> 20) % 7) as usize];
            cdrs.push(
                sim.as_str(),
                "",
                epoch_days(day(3, 1)) + d as i32,
                networks[((x >> 10) % 3) as usize],
                (x >> 40) % 3_000_000,
                (x >> 45) % 100_000,
            );
        }
        let job = RatingJob {
            run_id: Uuid::new_v4(),
            tenant_id: tenant,
            from: day(3, 1),
            to: day(4, 1),
            card,
            sims: sims
                .iter()
                .map(|i| BillableSim {
                    iccid: i.clone(),
                    customer_id: None,
                    tariff_plan: None,
                })
                .collect(),
            active: vec![],
        };
        (cdrs, job)
    }

    #[test]
    fn appended_columns_keep_each_records_strings() {
        let mut a = CdrColumns::default();
        a.push("sim-1", "cust-a", 1, "262-01", 10, 1);
        a.push("sim-2", "cust-b", 1, "262-02", 20, 2);
        let mut b = CdrColumns::default();
        b.push("sim-3", "cust-b", 2, "262-02", 30, 3);
        b.push("sim-1", "cust-c", 3, "208-01", 40, 4);
        a.append(b);
        let records: Vec<(&str, &str, i32, &str, u64, u64)> = (0..a.len())
            .map(|i| {
                (
                    a.sims.value(a.sim[i]),
                    a.customers.value(a.customer[i]),
                    a.day[i],
                    a.networks.value(a.network[i]),
                    a.bytes_in[i],
                    a.bytes_out[i],
                )
            })
            .collect();
        assert_eq!(
            records,
            vec![
                ("sim-1", "cust-a", 1, "262-01", 10, 1),
                ("sim-2", "cust-b", 1, "262-02", 20, 2),
                ("sim-3", "cust-b", 2, "262-02", 30, 3),
                ("sim-1", "cust-c", 3, "208-01", 40, 4),
            ]
        );
        assert_eq!((a.sims.len(), a.customers.len(), a.networks.len()), (3, 3, 3));
        // Appending to nothing takes the other side as it is.
        let mut empty = CdrColumns::default();
        empty.append(a.clone());
        assert_eq!(empty.sim, a.sim);
    }

    /// Rating a slice of days at a time gives the rows and totals of rating the whole period
    /// at once: a day's records (several per SIM, day and network) are never split.
    #[test]
    fn slices_of_days_rate_like_the_whole_period() {
        let (cdrs, job) = fixture();
        let sorted = |mut rated: Rated| {
            rated.rows.sort_by_key(|r| (r.day, r.sim, r.network));
            rated
        };
        let whole = sorted(rate_in_slices(cdrs.clone(), &job, usize::MAX).unwrap());
        let by_day = sorted(rate_in_slices(cdrs.clone(), &job, 1).unwrap());
        let by_week = sorted(rate_in_slices(cdrs, &job, 450).unwrap());
        assert!(whole.totals.records > 0 && whole.totals.unpriced_records > 0);
        assert_eq!(
            whole.totals.records + whole.totals.unpriced_records,
            2_000,
            "every record rated or counted as unpriced"
        );
        assert!(whole.rows.iter().any(|r| r.records > 1), "records were summed");
        for other in [&by_day, &by_week] {
            assert_eq!(other.rows, whole.rows);
            assert_eq!(other.totals, whole.totals);
        }
    }

    /// The rows of all slices, one after the other, come in the stored key's order (day, ICCID,
    /// network by their bytes), which is what lets ClickHouse skip sorting what it writes.
    #[test]
    fn slices_hand_out_rows_in_the_stored_keys_order() {
        let (cdrs, job) = fixture();
        let rater = Rater::new(cdrs, &job, 450).unwrap();
        assert!(rater.slice_count() > 2);
        let names = rater.names();
        let keys: Vec<(i32, String, String)> = (0..rater.slice_count())
            .flat_map(|i| rater.rate_slice(i).unwrap())
            .map(|r| {
                (
                    r.day,
                    names.sims.value(r.sim).to_owned(),
                    names.networks.value(r.network).to_owned(),
                )
            })
            .collect();
        assert!(keys.len() > 100);
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "rows out of key order");
        // The fixture's first network is not the first in byte order, so the ranks mattered.
        assert_ne!(names.networks.value(0), "208-01");
    }
}
