//! `ioto-bench rating`: rating a month of CDRs end to end on the configured usage store — read
//! from the store, rate in Polars, write the results — with the time of each stage and the
//! process's peak memory; on ClickHouse also the same rating written as one SQL statement, with
//! both results compared.
//!
//! The CDRs (`--cdrs` over `--sims` SIMs and the days of last month, on the networks of a card of
//! `--zones` zones plus networks no zone lists) are loaded once through the usage store's CDR
//! insert; each run then rates them under a fresh run id.

use std::time::Instant;

use anyhow::{bail, Context};
use chrono::{Months, NaiveDate, TimeZone, Utc};
use ioto_domain::billing::money::{Currency, Price};
use ioto_domain::billing::rate_card::{
    BillingPeriod, RateCard, RateCardKind, RateCardTerms, RateCardVersion, Zone,
};
use ioto_domain::billing::rating::{BillableSim, RatingJob, RatingStages, RatingTotals};
use ioto_domain::identifiers::{Iccid, MccMnc};
use ioto_domain::ports::billing::{RatedDimension, RatedQuery};
use ioto_domain::ports::CdrRecord;
use ioto_domain::usage::networks::Networks;
use ioto_domain::{CustomerId, TenantId};

use crate::common::{median_spread, peak_rss_mb};
use ioto::config::Config;
use ioto::engines;

/// CDRs per insert while loading.
const LOAD_CHUNK: usize = 200_000;

pub struct RatingRunFigures {
    pub seconds: f64,
    pub stages: RatingStages,
    pub peak_rss_mb: f64,
    /// The same rating as one ClickHouse statement, and whether its sums equal Polars'.
    pub sql_seconds: Option<f64>,
    pub sql_equal: Option<bool>,
    /// ClickHouse: how long the background mutation removing the replaced runs' rows took (the
    /// bench waits for it, so each run starts on a settled store).
    pub discard_seconds: Option<f64>,
    pub totals: RatingTotals,
}

pub struct RatingBench {
    pub cdrs: usize,
    pub runs: Vec<RatingRunFigures>,
}

/// The bench card: `zones - 1` zones of one network each (networks of the reference table, in
/// code order) and the default zone; one version from the first day of the period.
pub(crate) fn card(
    tenant: TenantId,
    zones: usize,
    from: NaiveDate,
) -> anyhow::Result<(RateCard, Vec<MccMnc>)> {
    let mut networks: Vec<MccMnc> = (200..800)
        .flat_map(|mcc| (0..100).map(move |mnc| format!("{mcc:03}-{mnc:02}")))
        .filter_map(|c| MccMnc::parse(&c).ok())
        .filter(|n| {
            Networks::builtin()
                .get(n)
                .is_some_and(|x| !x.country_code.is_empty())
        })
        .collect();
    if networks.len() < zones + 50 {
        bail!(
            "the network table has {} networks, fewer than the {zones} zones need",
            networks.len()
        );
    }
    networks.truncate(zones - 1 + 50);
    let priced = &networks[..zones - 1];
    let mut z: Vec<Zone> = priced
        .iter()
        .enumerate()
        .map(|(i, n)| {
            Ok(Zone {
                name: format!("Z{i:03}"),
                networks: vec![n.clone()],
                countries: vec![],
                price_per_mb: Price::from_micros(1_000 + (i as i64 * 37) % 50_000)?,
                is_default: false,
            })
        })
        .collect::<ioto_domain::Result<_>>()?;
    z.push(Zone {
        name: "World".into(),
        networks: vec![],
        countries: vec![],
        price_per_mb: Price::parse("pricePerMb", "0.25")?,
        is_default: true,
    });
    let terms = RateCardTerms {
        effective_from: from,
        rounding_increment_bytes: 1_024,
        access_fee: Price::parse("accessFee", "1.00")?,
        zones: z,
        overrides: vec![],
    };
    terms.validate(Networks::builtin())?;
    let card = RateCard {
        id: uuid::Uuid::new_v4(),
        tenant_id: tenant,
        kind: RateCardKind::Retail,
        name: "bench".into(),
        currency: Currency::parse("currency", "EUR")?,
        billing_period: BillingPeriod::Monthly,
        retired_from: None,
        created_at: Utc::now(),
        versions: vec![RateCardVersion {
            id: uuid::Uuid::new_v4(),
            terms,
            created_at: Utc::now(),
            created_by: "bench".into(),
        }],
    };
    Ok((card, networks))
}

pub async fn rating(
    config: &Config,
    cdr_count: usize,
    sim_count: usize,
    zones: usize,
    runs: usize,
) -> anyhow::Result<RatingBench> {
    engines::migrate(config).await?;
    let engines = engines::connect(config).await?;
    println!("{}", engines.versions().await?);
    let usage = engines.usage.clone();
    let tenant = TenantId(uuid::Uuid::new_v4());
    let customers: Vec<CustomerId> = (0..4).map(|_| CustomerId(uuid::Uuid::new_v4())).collect();
    let this_month = BillingPeriod::Monthly.period_of(Utc::now().date_naive()).0;
    let (from, to) = (this_month - Months::new(1), this_month);
    let days = (to - from).num_days() as usize;
    let (card, networks) = card(tenant, zones, from)?;
    let seed = (uuid::Uuid::new_v4().as_u128() % 1_000_000) as u64;
    let sims: Vec<Iccid> = (0..sim_count as u64)
        .map(|i| Iccid::with_check_digit(&format!("8988{:014}", seed * 100_000_000 + i)))
        .collect::<ioto_domain::Result<_>>()?;

    // Load: every SIM each day, records spread over the networks (one in eight on a network no
    // zone lists), sizes from a fixed sequence.
    let started = Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = Vec::with_capacity(LOAD_CHUNK);
    for i in 0..cdr_count {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let sim = i % sim_count;
        let day = from + chrono::Days::new(((i / sim_count) % days) as u64);
        let start = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
            + chrono::Duration::seconds((x % 86_000) as i64);
        chunk.push(CdrRecord {
            tenant_id: tenant,
            customer_id: Some(customers[sim % customers.len()]),
            cdr_id: format!("{seed}-{i}"),
            iccid: sims[sim].clone(),
            start,
            end: start + chrono::Duration::seconds(60),
            mcc_mnc: networks[(x >> 20) as usize % networks.len()].clone(),
            bytes_in: x % 2_000_000,
            bytes_out: (x >> 32) % 200_000,
            rating_group: 0,
        });
        if chunk.len() == LOAD_CHUNK || i + 1 == cdr_count {
            usage.write_cdrs(&chunk).await.context("loading CDRs")?;
            chunk.clear();
        }
    }
    let load_seconds = started.elapsed().as_secs_f64();
    println!("loaded {cdr_count} CDRs of {sim_count} SIMs over {days} days in {load_seconds:.1} s");

    let billable: Vec<BillableSim> = sims
        .iter()
        .enumerate()
        .map(|(i, s)| BillableSim {
            iccid: s.clone(),
            customer_id: Some(customers[i % customers.len()]),
            tariff_plan: None,
        })
        .collect();
    // On ClickHouse, a client of its own for the SQL rating and for waiting on mutations.
    let clickhouse = if engines.usage.info().engine == "clickhouse" {
        Some(
            ioto_analytics::ClickHouseUsage::connect(
                engines::clickhouse_config(config).context("ClickHouse is configured")?,
            )
            .await?,
        )
    } else {
        None
    };
    let mut out = Vec::new();
    for run in 0..runs {
        let job = RatingJob {
            run_id: uuid::Uuid::new_v4(),
            tenant_id: tenant,
            from,
            to,
            card: card.clone(),
            sims: billable.clone(),
            active: vec![],
        };
        let started = Instant::now();
        let (totals, stages) = usage.rate_with_stages(&job).await?;
        let seconds = started.elapsed().as_secs_f64();
        let peak = peak_rss_mb();
        if totals.records as usize != cdr_count {
            bail!("rated {} records of {cdr_count}", totals.records);
        }
        let (mut sql_seconds, mut sql_equal, mut discard_seconds) = (None, None, None);
        if let Some(ch) = &clickhouse {
            let sql_run = uuid::Uuid::new_v4();
            let started = Instant::now();
            ch.rate_in_sql(&job, sql_run).await?;
            sql_seconds = Some(started.elapsed().as_secs_f64());
            let sums = |run: uuid::Uuid| {
                let usage = usage.clone();
                async move {
                    usage
                        .rated_usage(&RatedQuery {
                            tenant,
                            runs: vec![run],
                            customer: None,
                            by: RatedDimension::Zone,
                        })
                        .await
                }
            };
            sql_equal = Some(sums(job.run_id).await? == sums(sql_run).await?);
            usage.discard_runs(tenant, &[sql_run]).await?;
        }
        usage.discard_runs(tenant, &[job.run_id]).await?;
        if let Some(ch) = &clickhouse {
            let started = Instant::now();
            ch.settle_mutations().await?;
            discard_seconds = Some(started.elapsed().as_secs_f64());
        }
        println!(
            "run {}: {seconds:.2} s (read {:.2}, rate {:.2}, write {:.2}), peak RSS {peak:.0} MB{}{}",
            run + 1,
            stages.read.as_secs_f64(),
            stages.rate.as_secs_f64(),
            stages.write.as_secs_f64(),
            sql_seconds.map_or(String::new(), |s| format!(", ClickHouse SQL {s:.2} s")),
            discard_seconds.map_or(String::new(), |s| format!(", removing both runs' rows {s:.2} s"))
        );
        out.push(RatingRunFigures {
            seconds,
            stages,
            peak_rss_mb: peak,
            sql_seconds,
            sql_equal,
            discard_seconds,
            totals,
        });
    }
    Ok(RatingBench {
        cdrs: cdr_count,
        runs: out,
    })
}

pub fn print(b: &RatingBench) {
    let cell = |values: Vec<f64>, digits: usize| {
        let (m, lo, hi) = median_spread(&values);
        format!("{m:.digits$} ({lo:.digits$}–{hi:.digits$})")
    };
    let r = &b.runs;
    println!("rating {} CDRs: median (min–max) of {} runs", b.cdrs, r.len());
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| end to end, s | {} |",
        cell(r.iter().map(|f| f.seconds).collect(), 2)
    );
    println!(
        "| CDRs rated per second | {} |",
        cell(r.iter().map(|f| b.cdrs as f64 / f.seconds).collect(), 0)
    );
    println!(
        "| read from the store, s | {} |",
        cell(r.iter().map(|f| f.stages.read.as_secs_f64()).collect(), 2)
    );
    println!(
        "| rate in Polars, s | {} |",
        cell(r.iter().map(|f| f.stages.rate.as_secs_f64()).collect(), 2)
    );
    println!(
        "| write results, s | {} |",
        cell(r.iter().map(|f| f.stages.write.as_secs_f64()).collect(), 2)
    );
    println!(
        "| peak RSS of the process, MB | {} |",
        cell(r.iter().map(|f| f.peak_rss_mb).collect(), 0)
    );
    let sql: Vec<f64> = r.iter().filter_map(|f| f.sql_seconds).collect();
    if !sql.is_empty() {
        println!("| the same rating as ClickHouse SQL, s | {} |", cell(sql, 2));
        println!(
            "| Polars end to end ÷ ClickHouse SQL | {} |",
            cell(
                r.iter()
                    .filter_map(|f| f.sql_seconds.map(|s| f.seconds / s))
                    .collect(),
                2
            )
        );
        println!(
            "| removing the two runs' rows afterwards (background mutation, waited for), s | {} |",
            cell(r.iter().filter_map(|f| f.discard_seconds).collect(), 2)
        );
        let equal = r.iter().all(|f| f.sql_equal == Some(true));
        println!(
            "| ClickHouse SQL sums equal Polars' (by zone, to the last digit) | {} |",
            if equal { "yes" } else { "NO" }
        );
    }
    if let Some(f) = r.first() {
        println!(
            "rated bytes {} → {} after rounding; cost {} ({} rows)",
            f.totals.bytes, f.totals.rounded_bytes, f.totals.usage_cost, f.totals.records
        );
    }
}
