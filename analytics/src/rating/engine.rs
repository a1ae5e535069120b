//! The rating computation, in Polars: CDR columns in, rated rows and access fees out.
//!
//! ```text
//! CDRs (sim, customer, day, network, bytes in/out)      one row per cdr_id
//!   → version  by day             (the version in force; none: unpriced, counted not rated)
//!   → plan     by SIM             (its tariff plan)
//!   → price row by (version, network, plan): increment and price per byte as Decimal(38,12),
//!              taken from a dense table (a Polars `take`, not a join)
//!   → rounded  = ceil(bytes / increment) × increment     per record, integers
//!   → sort and group by one u64 key packing day, ICCID rank, network rank (and customer when it
//!              fits): records, bytes, rounded; zone, plan and price follow from the key
//!   → cost     = Σ rounded × price                       Decimal(38,12), exact, per row
//! ```
//!
//! A price per MB with 6 decimals is a price per byte with 12, so `rounded × price` needs no
//! rounding at all and sums stay exact; the records of a row share its price, so the row's
//! rounded bytes × price is exactly the sum of its records' costs. Strings are replaced by
//! dictionary indexes before the frame is built: the large frame holds integers only.

use std::ops::Range;
use std::sync::Arc;

use chrono::{Datelike, Months};
use ioto_domain::billing::money::{Cost, COST_SCALE};
use ioto_domain::billing::rate_card::RateCard;
use ioto_domain::billing::rating::{RatingJob, RatingTotals};
use ioto_domain::identifiers::MccMnc;
use ioto_domain::usage::networks::Networks;
use ioto_domain::{Error, Result};
use polars::prelude::*;

use super::columns::{epoch_days, CdrColumns, Dictionary, FeeRow, Names, Rated, RatedRow};
use super::key::KeyLayout;

/// Records rated together: whole days, about this many records (a day is never split, so no
/// SIM × day × network row spans two slices). A slice's frames are what the rating holds in
/// memory beside the CDR columns.
pub const SLICE_RECORDS: usize = 1 << 20;

fn polars(e: PolarsError) -> Error {
    Error::Internal(format!("rating: {e}"))
}

/// The CDRs of a period with everything they are rated against, rated a slice of days at a
/// time so that a store can write one slice while the next is rated.
///
/// What a record is rated against comes from small dense tables — the version in force by day,
/// the tariff plan by SIM, zone, increment and price by (version, network, plan) — so each
/// lookup is an index into a column (a Polars `take`), not a join. The rows a slice groups into
/// are keyed by one integer packing day, ICCID rank and network rank (and the customer, when it
/// fits), whose order is the stored key's order.
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
    slices: Vec<Range<usize>>,
    /// The first day of the period and the version index in force on each day (none: unpriced).
    first_day: i32,
    day_versions: Vec<Option<u32>>,
    /// The tariff plan index of each SIM.
    sim_plan: Vec<u32>,
    /// Price rows, dense by (version, network, plan): row = (version × networks + network) ×
    /// plans + plan.
    network_count: usize,
    plan_count: usize,
    price_zone: Vec<u32>,
    prices: DataFrame,
    key: KeyLayout,
    unpriced_records: u64,
}

impl Rater {
    /// Prepares `cdrs` for rating under the job's card, in slices of about `slice_records`.
    pub fn new(cdrs: CdrColumns, job: &RatingJob, slice_records: usize) -> Result<Self> {
        Self::with_key_bits(cdrs, job, slice_records, u64::BITS)
    }

    fn with_key_bits(cdrs: CdrColumns, job: &RatingJob, slice_records: usize, key_bits: u32) -> Result<Self> {
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
        let mut day_versions: Vec<Option<u32>> = Vec::new();
        let mut d = job.from;
        while d < job.to {
            day_versions.push(
                card.version_on(d)
                    .and_then(|v| card.versions.iter().position(|x| x.id == v.id))
                    .map(|i| i as u32),
            );
            d = d.succ_opt().unwrap_or(job.to);
        }

        // Records on days no version prices are counted, not rated.
        let first_day = epoch_days(job.from);
        let version_of = |day: i32| {
            usize::try_from(day - first_day)
                .ok()
                .and_then(|i| day_versions.get(i).copied().flatten())
        };
        let unpriced_records = cdrs.day.iter().filter(|&&d| version_of(d).is_none()).count() as u64;

        // Zone, increment and price per byte of every (version, network, plan) combination.
        let mut zones = Dictionary::default();
        let (mut p_zone, mut p_increment, mut p_price) = (Vec::new(), Vec::new(), Vec::new());
        for version in &card.versions {
            let terms = &version.terms;
            for ni in 0..cdrs.networks.len() as u32 {
                let zone = MccMnc::parse(cdrs.networks.value(ni))
                    .map(|n| terms.zone_of(&n, catalogue))
                    .unwrap_or_else(|_| terms.zones.iter().position(|z| z.is_default).unwrap_or(0));
                for pi in 0..plans.len() as u32 {
                    let plan = plans.value(pi);
                    let price = terms.price(zone, (!plan.is_empty()).then_some(plan));
                    p_zone.push(zones.id(&terms.zones[zone].name));
                    p_increment.push(terms.rounding_increment_bytes.max(1));
                    // Micros per MB are 10⁻¹² per byte: the same integer at scale 12.
                    p_price.push(i128::from(price.micros()));
                }
            }
        }
        let prices = DataFrame::new(
            p_zone.len(),
            vec![
                Column::new("increment".into(), p_increment),
                Int128Chunked::from_vec("price".into(), p_price)
                    .into_decimal(38, COST_SCALE as usize)
                    .map_err(polars)?
                    .into_column(),
            ],
        )
        .map_err(polars)?;

        let (order, slices) = day_slices(&cdrs.day, slice_records.max(1));
        let key = KeyLayout::new(
            &cdrs.sims,
            &cdrs.networks,
            cdrs.customers.len(),
            day_versions.len(),
            key_bits,
        )?;
        Ok(Self {
            network_count: cdrs.networks.len(),
            plan_count: plans.len(),
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
            first_day,
            day_versions,
            sim_plan,
            price_zone: p_zone,
            prices,
            key,
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

    /// The price row of a record on `day_offset` of the period, SIM and network; `None` on a
    /// day no version prices.
    fn price_row(&self, day_offset: usize, sim: u32, network: u32) -> Option<usize> {
        let version = self.day_versions.get(day_offset).copied().flatten()? as usize;
        let plan = self.sim_plan[sim as usize] as usize;
        Some((version * self.network_count + network as usize) * self.plan_count + plan)
    }

    /// Rates slice `i`: its rows, one per SIM × customer × day × network (zone and plan follow
    /// from them), in the stored key's order (day, ICCID, network — slices follow each other in
    /// day order), so a store receives them sorted: ClickHouse then skips sorting each block it
    /// writes (the greater part of its insert time for these rows when they arrive in hash
    /// order).
    pub fn rate_slice(&self, i: usize) -> Result<Vec<RatedRow>> {
        let Some(range) = self.slices.get(i) else {
            return Ok(Vec::new());
        };
        let idx = &self.order[range.clone()];
        let n = idx.len();
        let (mut key, mut customer, mut price_row) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut bytes_in, mut bytes_out) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for &r in idx {
            let r = r as usize;
            let day_offset = (self.day[r] - self.first_day) as usize;
            let (sim, network) = (self.sim[r], self.network[r]);
            let Some(row) = self.price_row(day_offset, sim, network) else {
                continue;
            };
            key.push(self.key.pack(day_offset as u32, sim, network, self.customer[r]));
            customer.push(self.customer[r]);
            price_row.push(row as IdxSize);
            bytes_in.push(self.bytes_in[r]);
            bytes_out.push(self.bytes_out[r]);
        }
        let height = price_row.len();
        let price_row = IdxCa::from_vec("row".into(), price_row);
        let mut columns = vec![
            Column::new("key".into(), key),
            Column::new("bytes_in".into(), bytes_in),
            Column::new("bytes_out".into(), bytes_out),
            self.prices
                .column("increment")
                .map_err(polars)?
                .take(&price_row)
                .map_err(polars)?,
        ];
        let mut by = vec!["key"];
        if !self.key.customer_packed {
            columns.push(Column::new("customer".into(), customer));
            by.push("customer");
        }
        let group: Vec<Expr> = by.iter().map(|c| col(*c)).collect();
        columns.push(price_row.into_column());
        let frame = DataFrame::new(height, columns).map_err(polars)?;
        // Rounded per record; then the records sorted by their row's key, so the grouping
        // walks runs of equal keys (no hash table) and yields the rows in key order.
        let mut grouped = frame
            .lazy()
            .with_column(
                ((col("bytes_in") + col("bytes_out") + col("increment") - lit(1u64))
                    .floor_div(col("increment"))
                    * col("increment"))
                .alias("rounded"),
            )
            .sort(by, SortMultipleOptions::default())
            .group_by_stable(group)
            .agg([
                len().cast(DataType::UInt64).alias("records"),
                col("bytes_in").sum(),
                col("bytes_out").sum(),
                col("rounded").sum(),
                col("row").first(),
            ])
            .collect()
            .map_err(polars)?;
        // A row's records share its price (the key fixes day, SIM and network, hence version,
        // plan and zone), so its cost is its rounded bytes × that price: the same exact sum as
        // pricing each record, with one Decimal product per row instead of per record.
        let rows = grouped.column("row").map_err(polars)?.idx().map_err(polars)?;
        let price = self
            .prices
            .column("price")
            .map_err(polars)?
            .take(rows)
            .map_err(polars)?;
        grouped.with_column(price).map_err(polars)?;
        let rated = grouped
            .lazy()
            .with_column((col("rounded").cast(DataType::Decimal(38, 0)) * col("price")).alias("cost"))
            .collect()
            .map_err(polars)?;
        self.rows_of(&rated).map_err(polars)
    }

    fn rows_of(&self, df: &DataFrame) -> PolarsResult<Vec<RatedRow>> {
        let u64s = |name: &str| -> PolarsResult<Vec<u64>> {
            Ok(df.column(name)?.u64()?.iter().map(|v| v.unwrap_or(0)).collect())
        };
        let key = u64s("key")?;
        let customer: Option<Vec<u32>> = if self.key.customer_packed {
            None
        } else {
            Some(
                df.column("customer")?
                    .u32()?
                    .iter()
                    .map(|v| v.unwrap_or(0))
                    .collect(),
            )
        };
        let (records, bytes_in, bytes_out, rounded) = (
            u64s("records")?,
            u64s("bytes_in")?,
            u64s("bytes_out")?,
            u64s("rounded")?,
        );
        let cost = df.column("cost")?.decimal()?;
        polars_ensure!(cost.scale() == COST_SCALE as usize, ComputeError: "cost came back at scale {}, not {COST_SCALE}", cost.scale());
        let cost: Vec<i128> = cost.physical().iter().map(|v| v.unwrap_or(0)).collect();
        (0..df.height())
            .map(|i| {
                let (day_offset, sim, network, packed_customer) = self.key.unpack(key[i]);
                let row = self
                    .price_row(day_offset as usize, sim, network)
                    .ok_or_else(|| polars_err!(ComputeError: "a rated row on an unpriced day"))?;
                Ok(RatedRow {
                    sim,
                    customer: packed_customer.or(customer.as_ref().map(|c| c[i])).unwrap_or(0),
                    day: self.first_day + day_offset as i32,
                    network,
                    zone: self.price_zone[row],
                    plan: self.sim_plan[sim as usize],
                    records: records[i],
                    bytes_in: bytes_in[i],
                    bytes_out: bytes_out[i],
                    rounded_bytes: rounded[i],
                    cost: Cost::from_units(cost[i]),
                })
            })
            .collect()
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
    use chrono::{NaiveDate, Utc};

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
                // Mostly one customer per SIM; now and then another (a SIM moved mid-day).
                ["", "c-1", "c-2"][(((x >> 20) % 7 + u64::from((x >> 50) % 16 == 0)) % 3) as usize],
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

    /// Whether the customer is packed into the row key or grouped as a column of its own (when
    /// the SIMs, networks and days leave too few bits), the rows are the same.
    #[test]
    fn customers_in_the_key_or_beside_it_rate_alike() {
        let (cdrs, job) = fixture();
        let rows = |key_bits: u32| {
            let rater = Rater::with_key_bits(cdrs.clone(), &job, 450, key_bits).unwrap();
            let packed = rater.key.customer_packed;
            let rows: Vec<RatedRow> = (0..rater.slice_count())
                .flat_map(|i| rater.rate_slice(i).unwrap())
                .collect();
            (packed, rows)
        };
        // 5 bits of days, 3 of SIMs, 2 of networks: 10, and 2 more for the three customers.
        let (packed, in_key) = rows(64);
        let (beside, as_column) = rows(11);
        assert!(packed && !beside);
        assert_eq!(in_key, as_column);
        let customers: std::collections::HashSet<u32> = in_key.iter().map(|r| r.customer).collect();
        assert_eq!(customers.len(), 3);
        // A SIM, day and network with two customers is two rows.
        assert!(in_key
            .windows(2)
            .any(|w| (w[0].sim, w[0].day, w[0].network) == (w[1].sim, w[1].day, w[1].network)));
        assert!(Rater::with_key_bits(cdrs, &job, 450, 9).is_err());
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
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "rows out of key order");
        // The fixture's first network is not the first in byte order, so the ranks mattered.
        assert_ne!(names.networks.value(0), "208-01");
    }
}
