//! `ioto-bench forecast-pass`: the product's forecast pass — what `ioto serve` runs every
//! `fleet.forecast_minutes` ([`ForecastService::pass`]) — over one tenant of `--sims` SIMs with
//! `--days` days of simulated usage, on the configured engines, each run in fresh data (a data
//! dir of its own and, with ClickHouse, a database of its own):
//!
//! 1. seeding, not part of the figures: the tenant, the demo's retail and supplier cards (so that
//!    plan advice and projected costs are made), `--customers` sub-customers owning the SIMs in
//!    turn, the demo's three tariff plans in turn, a monthly data quota on one SIM in
//!    `--quota-every` (a limit near its usual month, so that some run out), one quota pool per
//!    sub-customer; then each SIM's history as `ioto simulate history` plans it (the forecast
//!    crate's simulated fleet, anomalies injected) written straight into the usage store as the
//!    ingest worker counts it, today up to now. CDRs are not written: the pass does not read them.
//! 2. the first pass: every forecast, anomaly and piece of advice written for the first time;
//!    its time, the process's peak resident memory while it ran (the peak reset before it) and
//!    what it wrote;
//! 3. a second pass right after by a server that did not make the first (nothing to go by): what
//!    every whole pass costs — the first of each day — everything replaced;
//! 4. a third pass, by the second's server, after an hour of usage of one SIM in
//!    `--changed-every`: what the hourly passes of a day cost, only the SIMs whose inputs changed
//!    computed again.
//!
//! With the embedded usage store the cubes are read inside this process, so its memory is in the
//! peak; with ClickHouse the server's is not.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{ensure, Context as _};
use chrono::{Days, Utc};
use ioto_app::{FleetService, ForecastService};
use ioto_domain::directory::NewCustomer;
use ioto_domain::fleet::{AuditStamp, NewSim, SimState};
use ioto_domain::forecast::HISTORY_DAYS;
use ioto_domain::identifiers::{Iccid, Imsi, MccMnc, Name};
use ioto_domain::ports::{NoNotifier, SessionUpdate};
use ioto_domain::quota::{QuotaAction, QuotaRule, QuotaSource, SimQuota};
use ioto_domain::quota_pool::{PoolMembers, QuotaPool, MAX_POOLS_PER_TENANT};
use ioto_domain::usage::RadioAccessType;
use ioto_domain::{CustomerId, Scope, SimId, TenantId};
use ioto_forecast::simulate::simulate_one;

use crate::common::{median_spread, peak_rss_mb};
use ioto::config::Config;
use ioto::engines;
use ioto::tooling::demo_history::write_plans;
use ioto::tooling::simulate_history::{Catalogue, PlannedSim};

/// The home networks SIMs are spread over.
const NETWORKS: [&str; 4] = ["262-01", "262-02", "208-01", "234-15"];
/// The demo's tariff plans, the retail card's override among them.
const PLANS: [&str; 3] = ["IoT Basic 10MB", "IoT Pro 1GB", "IoT Unlimited"];
/// SIMs inserted, simulated and written to the usage store at a time.
const CHUNK: usize = 10_000;
/// The simulator's seed of run 1 (run r: + r − 1).
const SEED: u64 = 55;
/// Chance of an injected anomaly per SIM and 10 days of the last 30 (as `ioto simulate`).
const ANOMALY_RATE: f64 = 0.05;

/// What the bench is asked.
#[derive(Debug, Clone)]
pub struct Options {
    pub sims: usize,
    pub days: usize,
    pub customers: usize,
    pub quota_every: usize,
    pub changed_every: usize,
}

/// One pass's figures.
#[derive(Debug, Clone, Default)]
pub struct PassFigures {
    pub seconds: f64,
    /// The process's peak resident memory during the pass, MB (NaN when the peak could not be
    /// reset: then the peak of the whole run).
    pub peak_mb: f64,
    pub peak_reset: bool,
    pub sims: usize,
    pub forecasts: usize,
    pub anomalies_new: usize,
    pub advice: usize,
    /// SIMs kept as the pass before stored them.
    pub unchanged: usize,
    pub phases: ioto_app::PassPhases,
}

/// One run's figures.
#[derive(Debug, Clone, Default)]
pub struct PassRun {
    pub engines: String,
    pub seed_seconds: f64,
    pub session_updates: usize,
    /// The process's resident memory before the first pass, MB.
    pub rss_before_mb: f64,
    pub first: PassFigures,
    pub second: PassFigures,
    /// SIMs that used data between the second pass and the third.
    pub changed: usize,
    pub third: PassFigures,
}

/// The process's resident memory now, MB (`VmRSS`).
fn rss_mb() -> f64 {
    crate::forecast::rss_mb()
}

/// The monthly quota of a SIM whose usual day is `usual`: 25 days of it, so that about half of
/// the SIMs with a quota run out before a month's end and the rest do not.
fn quota_limit(usual_day: f64) -> u64 {
    ((usual_day * 25.0).round() as u64).max(1_000_000)
}

/// One run: seeding, then two passes.
pub async fn run(config: &Config, o: &Options, run: u32) -> anyhow::Result<PassRun> {
    engines::migrate(config).await?;
    let engines = engines::connect(config).await?;
    let described = engines
        .describe()
        .iter()
        .filter(|(port, _)| *port == "transactional store" || *port == "usage store")
        .map(|(port, info)| format!("{port} {}", info.engine))
        .collect::<Vec<_>>()
        .join(", ");
    let seeding = Instant::now();
    let (tenant_id, _actor, _) =
        crate::bulk::tenant(&engines, &format!("bench-forecast-{run}"), "Bench Forecast").await?;
    let tenant = engines
        .directory
        .tenant(Scope::Platform, tenant_id)
        .await?
        .context("the bench's tenant, just created")?;
    ioto::tooling::demo_billing::seed(&engines.billing_service(), &tenant).await?;
    let scope = Scope::tenant(tenant_id);
    let mut customers: Vec<CustomerId> = Vec::with_capacity(o.customers);
    for c in 0..o.customers {
        let customer = engines
            .directory
            .create_customer(
                scope,
                NewCustomer {
                    tenant_id,
                    name: Name::parse(&format!("Customer {:02}", c + 1), "name")?,
                    external_ref: None,
                },
            )
            .await?;
        customers.push(customer.id);
    }
    let now = Utc::now();
    for (c, customer) in customers.iter().enumerate() {
        let pool = QuotaPool {
            id: uuid::Uuid::new_v4(),
            tenant_id,
            name: format!("Pool of customer {:02}", c + 1),
            members: PoolMembers::Customer(*customer),
            rule: QuotaRule {
                limit_bytes: 1 << 40,
                stages: vec![80],
                action: QuotaAction::Notify,
                resume_next_period: false,
            },
            set_by: "bench".into(),
            created_at: now,
            updated_at: now,
        };
        engines
            .quota_pools
            .insert_pool(scope, &pool, MAX_POOLS_PER_TENANT)
            .await?;
    }

    let networks = NETWORKS
        .iter()
        .map(|c| MccMnc::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let today = now.date_naive();
    let days = o.days + 1;
    let first_day = today
        .checked_sub_days(Days::new(o.days as u64))
        .context("the history's first day")?;
    let seed = SEED + u64::from(run) - 1;
    let stamp = AuditStamp {
        actor: "bench".into(),
        actor_user_id: None,
        at: now,
        note: None,
    };
    let mut catalogue = Catalogue::default();
    let mut session_updates = 0;
    let mut start = 0;
    while start < o.sims {
        let end = (start + CHUNK).min(o.sims);
        let mut rows = Vec::with_capacity(end - start);
        let mut owners: HashMap<Iccid, (TenantId, Option<CustomerId>)> = HashMap::new();
        let mut plans = Vec::with_capacity(end - start);
        let mut usual = Vec::with_capacity(end - start);
        for k in start..end {
            let iccid = crate::bulk::iccid(run, k)?;
            let mut s = NewSim::basic(
                tenant_id,
                iccid.clone(),
                Imsi::parse(&format!("9{run:05}{k:09}"))?,
            );
            s.state = SimState::Active;
            s.customer_id = (!customers.is_empty()).then(|| customers[k % customers.len()]);
            s.tariff_plan = Some(PLANS[k % PLANS.len()].to_owned());
            owners.insert(iccid.clone(), (tenant_id, s.customer_id));
            let (simulated, injected) = simulate_one(seed, k, days, first_day, ANOMALY_RATE);
            let typical = simulated.usual_bytes.iter().rev().take(30).sum::<f64>() / 30.0;
            usual.push(typical);
            plans.push(PlannedSim::new(
                iccid,
                &networks[k % networks.len()],
                &simulated,
                &injected,
                first_day,
                seed,
                &mut catalogue,
            ));
            rows.push(s);
        }
        let ids: Vec<SimId> = crate::bulk::insert_sims(&engines, &rows, &stamp).await?;
        let quotas: Vec<SimQuota> = ids
            .iter()
            .zip(&usual)
            .enumerate()
            .filter(|(i, _)| (start + i) % o.quota_every == 0)
            .map(|(_, (id, typical))| SimQuota {
                id: uuid::Uuid::new_v4(),
                tenant_id,
                sim_id: *id,
                rule: QuotaRule {
                    limit_bytes: quota_limit(*typical),
                    stages: vec![80],
                    action: QuotaAction::Notify,
                    resume_next_period: false,
                },
                source: QuotaSource::Sim,
                set_by: "bench".into(),
                created_at: now,
                updated_at: now,
            })
            .collect();
        if !quotas.is_empty() {
            engines.quotas.put_sim_quotas(scope, &quotas).await?;
        }
        session_updates +=
            write_plans(engines.usage.as_ref(), &plans, &owners, days, Some(now), false).await?;
        start = end;
        eprint!(
            "\rrun {run}: {end} of {} SIMs seeded ({session_updates} session updates, {:.0} s)",
            o.sims,
            seeding.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    ioto_store::analyze(&engines::store_location(config)).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();

    let fleet = FleetService::new(
        Arc::clone(&engines.fleet),
        Arc::clone(&engines.bulk_jobs),
        Arc::clone(&engines.notifications),
        Arc::new(ioto::server::fleet_cipher(config)?),
        Arc::new(ioto_imports::TableFiles),
        Arc::new(NoNotifier),
        engines.network.clone(),
    );
    let server = || ForecastService::new(engines.forecast_ports(Arc::new(NoNotifier), None), fleet.clone());
    let rss_before_mb = rss_mb();
    let first = timed_pass(&server()).await?;
    let service = server();
    let second = timed_pass(&service).await?;
    let changed = use_data(&engines, tenant_id, &customers, run, o).await?;
    let third = timed_pass(&service).await?;
    Ok(PassRun {
        engines: described,
        seed_seconds,
        session_updates,
        rss_before_mb,
        first,
        second,
        changed,
        third,
    })
}

/// An hour of usage, now, of one SIM in `--changed-every` on its home network: a session of
/// 1 MB in and out. Returns how many SIMs used data.
async fn use_data(
    engines: &engines::Engines,
    tenant_id: TenantId,
    customers: &[CustomerId],
    run: u32,
    o: &Options,
) -> anyhow::Result<usize> {
    let now = Utc::now();
    let hour = ioto_domain::ports::period_start(now, ioto_domain::ports::Granularity::Hour);
    let mut updates = Vec::new();
    let mut changed = 0;
    for k in (0..o.sims).step_by(o.changed_every) {
        updates.push(SessionUpdate {
            tenant_id,
            customer_id: (!customers.is_empty()).then(|| customers[k % customers.len()]),
            iccid: crate::bulk::iccid(run, k)?,
            session_id: format!("bench-changed-{k}"),
            started_at: now,
            event_time: now,
            hour,
            mcc_mnc: MccMnc::parse(NETWORKS[k % NETWORKS.len()])?,
            rat: RadioAccessType::Lte,
            ip_address: None,
            cell_id: None,
            terminated: true,
            total_in: 1_000_000,
            total_out: 1_000_000,
            delta_in: 1_000_000,
            delta_out: 1_000_000,
            imei: None,
        });
        changed += 1;
        if updates.len() >= CHUNK {
            engines.usage.write_session_updates(&updates).await?;
            updates.clear();
        }
    }
    engines.usage.write_session_updates(&updates).await?;
    Ok(changed)
}

/// One pass, timed, with the peak resident memory while it ran.
async fn timed_pass(service: &ForecastService) -> anyhow::Result<PassFigures> {
    let peak_reset = crate::forecast::reset_peak();
    let started = Instant::now();
    let pass = service.pass(Utc::now()).await?;
    let seconds = started.elapsed().as_secs_f64();
    ensure!(
        pass.failed.is_empty(),
        "the pass failed for {} tenant(s): {:?}",
        pass.failed.len(),
        pass.failed
    );
    Ok(PassFigures {
        seconds,
        peak_mb: peak_rss_mb(),
        peak_reset,
        sims: pass.sims,
        forecasts: pass.forecasts,
        anomalies_new: pass.anomalies_new,
        advice: pass.advice,
        unchanged: pass.unchanged,
        phases: pass.phases,
    })
}

fn pass_line(name: &str, p: &PassFigures) {
    println!(
        "  {name:<12} {:>7.2} s   peak RSS {:>6.0} MB{}   {} SIMs forecast ({} kept as stored), {} \
         forecasts, {} new anomalies, {} pieces of advice",
        p.seconds,
        p.peak_mb,
        if p.peak_reset { "" } else { " (of the whole run)" },
        p.sims,
        p.unchanged,
        p.forecasts,
        p.anomalies_new,
        p.advice
    );
    println!(
        "  {:<12} census (SIM list and daily bytes) {:.2} s, second read {:.2} s, compute {:.2} s, \
         writes {:.2} s (the last three overlap)",
        "",
        p.phases.census.as_secs_f64(),
        p.phases.reads.as_secs_f64(),
        p.phases.compute.as_secs_f64(),
        p.phases.writes.as_secs_f64()
    );
}

/// A run's figures.
pub fn print(r: &PassRun, o: &Options) {
    println!(
        "{}; {} SIMs × {} days and today, {} session updates seeded in {:.1} s; RSS before the \
         first pass {:.0} MB",
        r.engines, o.sims, o.days, r.session_updates, r.seed_seconds, r.rss_before_mb
    );
    pass_line("first pass", &r.first);
    pass_line("second pass", &r.second);
    println!("  then {} SIMs used data", r.changed);
    pass_line("third pass", &r.third);
}

/// The median and spread of each figure over the runs.
pub fn print_summary(runs: &[PassRun], o: &Options) {
    let line = |name: &str, values: Vec<f64>, unit: &str| {
        let (median, lo, hi) = median_spread(&values);
        println!("  {name:<32} {median:>8.2} {unit} ({lo:.2}–{hi:.2})");
    };
    println!(
        "\nforecast pass over {} SIMs × {} days, {} runs (median, range):",
        o.sims,
        o.days,
        runs.len()
    );
    line("first pass", runs.iter().map(|r| r.first.seconds).collect(), "s");
    line(
        "first pass, peak RSS",
        runs.iter().map(|r| r.first.peak_mb).collect(),
        "MB",
    );
    line(
        "second pass (whole)",
        runs.iter().map(|r| r.second.seconds).collect(),
        "s",
    );
    line(
        "second pass, peak RSS",
        runs.iter().map(|r| r.second.peak_mb).collect(),
        "MB",
    );
    let phase = |f: fn(&ioto_app::PassPhases) -> std::time::Duration| -> Vec<f64> {
        runs.iter().map(|r| f(&r.second.phases).as_secs_f64()).collect()
    };
    line("second pass: census", phase(|p| p.census), "s");
    line("second pass: second read", phase(|p| p.reads), "s");
    line("second pass: compute", phase(|p| p.compute), "s");
    line("second pass: writes", phase(|p| p.writes), "s");
    line(
        &format!("third pass (1 SIM in {} changed)", o.changed_every),
        runs.iter().map(|r| r.third.seconds).collect(),
        "s",
    );
    let met = runs.iter().all(|r| {
        r.first.seconds.max(r.second.seconds) < 60.0 && r.first.peak_mb.max(r.second.peak_mb) < 1024.0
    });
    println!(
        "  target (every whole pass < 60 s, peak RSS < 1 GiB): {}",
        if met { "met" } else { "missed" }
    );
}

/// The days of history asked for: 28 (four whole weeks) up to what a pass reads.
pub fn check(o: &Options) -> anyhow::Result<()> {
    ensure!(
        (28..=HISTORY_DAYS as usize).contains(&o.days),
        "--days: 28 to {HISTORY_DAYS} (what a pass reads)"
    );
    ensure!(o.quota_every >= 1, "--quota-every: at least 1");
    ensure!(o.changed_every >= 1, "--changed-every: at least 1");
    ensure!(
        u64::try_from(o.customers).is_ok_and(|c| c <= MAX_POOLS_PER_TENANT),
        "--customers: at most {MAX_POOLS_PER_TENANT} (each has a quota pool)"
    );
    Ok(())
}
