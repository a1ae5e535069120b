//! The pass: every tenant claimed in turn; its SIMs read twice from the usage cubes, a page at a
//! time — first their daily bytes, for the sums of the groups and what each cohort lends its new
//! SIMs; then, for the SIMs with usage, their networks and sessions too, forecast and examined
//! for anomalies a chunk at a time on the blocking pool (the next chunk read and the last one
//! written meanwhile) — and the groups (the tenant, its sub-customers, its quota pools) forecast
//! from their sums. Where the tenant has a retail card, the second read also reads each SIM's
//! bytes per network, priced for its plan advice and the projected cost of its forecast (the
//! groups' costs summed from their SIMs'); every SIM and pool gets its quota advice. What a pass
//! writes replaces what the last one wrote; forecasts of subjects no longer forecast are removed.
//! Both reads name their SIMs, which the ClickHouse store answers from its SIM-sorted daily
//! table (`sim_daily`): a page's rows, not the tenant's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, SubsecRound, Utc};
use ioto_domain::advice::NetworkDayBytes;
use ioto_domain::analytics::Cube;
use ioto_domain::events::{FleetEvent, ForecastsChanged, NotificationCreated};
use ioto_domain::fleet::query::{sim_cursor, Cursor, Page, SimFilter, SimSort};
use ioto_domain::fleet::Sim;
use ioto_domain::forecast::{Dismissal, ForecastSubject, StoredForecast, Unwritten};
use ioto_domain::identifiers::{Iccid, MccMnc};
use ioto_domain::notify::Notification;
use ioto_domain::ports::quota_pools::PoolTarget;
use ioto_domain::quota::QuotaAction;
use ioto_domain::usage::Networks;
use ioto_domain::{CustomerId, Result, Scope, SimId, TenantId};
use ioto_forecast::anomaly::{cohort_stats, ImeiSeen, NetworkDay};
use ioto_forecast::{DailySeries, WeeklyShape};

use super::advice::{self, CostSums, GroupCosts, Pricing};
use super::compute::{self, ChunkOutput, Cohorts, ForecastInput, QuotaInput, SimActivity, SimJob, Window};
use super::hourly::{self, HourlySums};
use super::memory::{Digest, PassMemory, Remembered, OWN_HISTORY_MIN_DAYS};
use super::ForecastService;
use crate::quota::by_sim;

/// SIMs read, forecast and examined at a time: what bounds a pass's memory.
const SIM_CHUNK: usize = 5_000;
/// Forecasts written per call.
const PUT_CHUNK: usize = 1_000;
/// Established SIMs per cohort whose series make its weekly shape.
const SHAPE_SAMPLE: usize = 500;
/// Days of history a SIM needs to lend its shape to its cohort (four whole weeks).
const SHAPE_MIN_DAYS: usize = 28;
/// How long a tenant's pass is claimed: a server that dies in a pass holds it no longer.
const LEASE: chrono::Duration = chrono::Duration::minutes(30);
/// A scheduled pass passes a tenant whose last pass finished at least its interval ago, less this
/// (passes that start a little early are not put off by a whole interval).
const FRESH_SLACK: chrono::Duration = chrono::Duration::minutes(1);

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForecastPass {
    /// Tenants passed.
    pub tenants: usize,
    /// Tenants passed over: held by another server, or (a scheduled pass) passed recently.
    pub skipped: usize,
    /// SIMs with usage in the window, forecast and examined (now, or unchanged since).
    pub sims: usize,
    /// Of those, the SIMs whose inputs had not changed since this server's last pass of their
    /// tenant that day: what it stored stands.
    pub unchanged: usize,
    /// Tenants passed in part: only their SIMs whose inputs changed computed again.
    pub partial: usize,
    /// Forecasts written (SIMs, sub-customers, tenants, pools).
    pub forecasts: usize,
    /// Anomalies found for the first time.
    pub anomalies_new: usize,
    /// Pieces of advice written (plans and quotas, SIMs and pools).
    pub advice: usize,
    /// Tenants whose pass failed, with why (logged; tried again at the next pass).
    pub failed: Vec<(TenantId, String)>,
    pub duration: std::time::Duration,
    /// Where the time of the tenants' passes went.
    pub phases: PassPhases,
}

/// Where a pass's time went, summed over its tenants. The second read, the computing and the
/// writes of the SIMs overlap (one chunk each), so the phases add up to more than the pass took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassPhases {
    /// The first read: the SIM list page by page and each page's daily bytes.
    pub census: std::time::Duration,
    /// The second read of the SIMs with usage: networks, sessions, devices, quotas, dismissals.
    pub reads: std::time::Duration,
    /// Forecasts, anomalies and advice computed on the blocking pool.
    pub compute: std::time::Duration,
    /// Forecasts, anomalies and advice written, and what was not written again removed.
    pub writes: std::time::Duration,
}

impl PassPhases {
    fn add(&mut self, other: &PassPhases) {
        self.census += other.census;
        self.reads += other.reads;
        self.compute += other.compute;
        self.writes += other.writes;
    }
}

/// What one tenant's pass did.
#[derive(Debug, Default)]
struct TenantPass {
    sims: usize,
    unchanged: usize,
    /// Whether it went by the last pass's memory.
    partial: bool,
    forecasts: usize,
    anomalies_new: usize,
    advice: usize,
    phases: PassPhases,
    /// What the next pass goes by.
    memory: Option<PassMemory>,
}

impl TenantPass {
    /// Adds a chunk's forecasts, new anomalies and pieces of advice written.
    fn add_written(&mut self, (forecasts, anomalies_new, advice): (usize, usize, usize)) {
        self.forecasts += forecasts;
        self.anomalies_new += anomalies_new;
        self.advice += advice;
    }
}

/// A SIM with usage in the window, as the second read needs it.
struct SimEntry {
    id: SimId,
    customer: Option<CustomerId>,
    iccid: Iccid,
    cohort: usize,
    /// The pools it counts toward, by their index among the tenant's.
    pools: Vec<usize>,
    /// The digest of its days' bytes and sessions, plan, sub-customer and pools.
    usage: u64,
    /// Too young to be judged against its own history: computed every pass ([`memory`]).
    young: bool,
}

/// What the second read of a chunk of SIMs gives: the SIMs to compute, and those whose inputs
/// are what the last pass computed them from.
struct ChunkRead {
    jobs: Vec<SimJob>,
    kept: Vec<Kept>,
}

/// A SIM left as the last pass stored it.
struct Kept {
    sim: SimId,
    customer: Option<CustomerId>,
    pools: Vec<usize>,
    remembered: Remembered,
}

/// Daily usage summed per group over the window.
struct Groups {
    tenant: Vec<f64>,
    customers: HashMap<CustomerId, Vec<f64>>,
    /// In the order of the tenant's pools.
    pools: Vec<Vec<f64>>,
}

fn add_into(sum: &mut [f64], values: &[f64]) {
    for (s, v) in sum.iter_mut().zip(values) {
        *s += v;
    }
}

impl Groups {
    fn new(days: usize, pools: usize) -> Self {
        Self {
            tenant: vec![0.0; days],
            customers: HashMap::new(),
            pools: vec![vec![0.0; days]; pools],
        }
    }

    /// Adds a SIM's usage to the tenant, its sub-customer and the pools it counts toward (as the
    /// pools' member filter selects them); returns those pools' indices.
    fn add(&mut self, sim: &Sim, pools: &[PoolTarget], values: &[f64]) -> Vec<usize> {
        add_into(&mut self.tenant, values);
        if let Some(c) = sim.customer_id {
            let days = values.len();
            add_into(self.customers.entry(c).or_insert_with(|| vec![0.0; days]), values);
        }
        let mut counted = Vec::new();
        for (i, (sum, target)) in self.pools.iter_mut().zip(pools).enumerate() {
            if target.pool.members.matches(sim) {
                add_into(sum, values);
                counted.push(i);
            }
        }
        counted
    }
}

/// What a tenant's cohorts (the SIMs of one tariff plan, or of none) lend their new SIMs, as the
/// first read gathers it: a sample of established SIMs' series per cohort (its weekly shape) and
/// every SIM's usage yesterday and today (the days' statistics).
#[derive(Default)]
struct CohortMaterial {
    keys: HashMap<Option<String>, usize>,
    samples: Vec<Vec<DailySeries>>,
    days: Vec<[Vec<f64>; 2]>,
}

impl CohortMaterial {
    /// The cohort of a tariff plan (of no plan for `None`).
    fn index(&mut self, plan: Option<&str>) -> usize {
        let key = plan.map(str::to_owned);
        if let Some(i) = self.keys.get(&key) {
            return *i;
        }
        let i = self.samples.len();
        self.keys.insert(key, i);
        self.samples.push(Vec::new());
        self.days.push([Vec::new(), Vec::new()]);
        i
    }

    /// Adds a SIM's daily usage (the window's, today last) to its cohort.
    fn add(&mut self, cohort: usize, w: &Window, values: &[f64]) {
        let Some(first) = values.iter().position(|v| *v > 0.0) else {
            return;
        };
        let today = w.today_index();
        if let Some(days) = self.days.get_mut(cohort) {
            for (list, index) in days.iter_mut().zip([today.saturating_sub(1), today]) {
                // A SIM counts on the days since its first usage.
                if first <= index {
                    list.extend(values.get(index).copied());
                }
            }
        }
        if let Some(sample) = self.samples.get_mut(cohort) {
            if sample.len() < SHAPE_SAMPLE {
                sample.extend(compute::completed_series(w, values).filter(|s| s.len() >= SHAPE_MIN_DAYS));
            }
        }
    }

    /// Each cohort's tariff plan, by its index.
    fn plans(&self) -> Vec<Option<String>> {
        let mut plans = vec![None; self.samples.len()];
        for (plan, i) in &self.keys {
            if let Some(slot) = plans.get_mut(*i) {
                slot.clone_from(plan);
            }
        }
        plans
    }

    fn cohorts(&self) -> Cohorts {
        Cohorts {
            shapes: self
                .samples
                .iter()
                .map(|sample| {
                    let parts: Vec<&DailySeries> = sample.iter().collect();
                    (!parts.is_empty()).then(|| WeeklyShape::from_series(&parts))
                })
                .collect(),
            stats: self
                .days
                .iter()
                .map(|[yesterday, today]| [cohort_stats(yesterday), cohort_stats(today)])
                .collect(),
        }
    }
}

/// What the first read of a tenant's SIMs leaves.
struct Census {
    sims: Vec<SimEntry>,
    groups: Groups,
    cohorts: CohortMaterial,
}

/// A group's forecast to make.
struct GroupInput {
    subject: ForecastSubject,
    values: Vec<f64>,
    quota: Option<QuotaInput>,
    /// Its SIMs' costs together (where the tenant has a card).
    costs: CostSums,
    /// Its usage per hour (the tenant and its sub-customers), as [`HourlySums`] holds it.
    hours: Option<Vec<f64>>,
}

/// What every chunk of a tenant's pass shares.
struct TenantRun {
    tenant: TenantId,
    w: Window,
    cohorts: Arc<Cohorts>,
    /// Each cohort's tariff plan, by the cohort's index.
    plans: Vec<Option<String>>,
    /// The tenant's retail card; `None`: no plan advice, no costs.
    pricing: Option<Arc<Pricing>>,
    now: DateTime<Utc>,
    /// What this server's last pass left, when this pass goes by it ([`memory`]).
    base: Option<PassMemory>,
}

/// A network's country as sentences name it ("France"); its MCC for a code not in the catalogue.
fn country_of(networks: &Networks, net: &MccMnc) -> String {
    networks
        .get(net)
        .map(|n| n.country_name.clone())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| format!("MCC {}", net.mcc()))
}

impl ForecastService {
    /// Forecasts every SIM, sub-customer, tenant and quota pool, and finds the SIMs' anomalies,
    /// as at `now`: every tenant not held by another server's pass. Safe to repeat: forecasts are
    /// replaced, an anomaly found before is not stored again. A tenant whose pass fails is
    /// logged, listed in [`ForecastPass::failed`] and passed again next time.
    pub async fn pass(&self, now: DateTime<Utc>) -> Result<ForecastPass> {
        self.run(now, None).await
    }

    /// [`Self::pass`] for the scheduler, every `every`: a tenant passed by any server within
    /// that time is passed over, so that servers running it side by side share the work instead
    /// of repeating it.
    pub async fn scheduled_pass(&self, now: DateTime<Utc>, every: chrono::Duration) -> Result<ForecastPass> {
        self.run(now, Some(now - every + FRESH_SLACK)).await
    }

    async fn run(&self, now: DateTime<Utc>, fresh_after: Option<DateTime<Utc>>) -> Result<ForecastPass> {
        let started = Instant::now();
        // Whole seconds: the forecasts a pass did not write again are told apart by
        // `computed_at < now`, and both stores keep times to the microsecond only.
        let now = now.trunc_subsecs(0);
        let mut pass = ForecastPass::default();
        let tenants = self.ports.directory.list_tenants(Scope::Platform).await?;
        self.memories.retain(&tenants.iter().map(|t| t.id).collect());
        if !tenants.is_empty() {
            // What was counted is read as counted.
            self.ports.usage.settle().await?;
        }
        let mut pools: HashMap<TenantId, Vec<PoolTarget>> = HashMap::new();
        for p in self.ports.pools.all_pools().await? {
            pools.entry(p.pool.tenant_id).or_default().push(p);
        }
        for t in tenants {
            let claimed = self
                .ports
                .store
                .claim_forecast_run(t.id, now, now + LEASE, fresh_after)
                .await?;
            if !claimed {
                pass.skipped += 1;
                continue;
            }
            let tenant_pools = pools.remove(&t.id).unwrap_or_default();
            match self.tenant_pass(t.id, &tenant_pools, now).await {
                Ok(mut done) => {
                    // To the microsecond, as both stores keep it: the next pass tells by it
                    // whether its memory is of the last pass.
                    let finished = Utc::now().trunc_subsecs(6);
                    self.ports.store.end_forecast_run(t.id, Some(finished)).await?;
                    if let Some(mut memory) = done.memory.take() {
                        memory.finished_at = finished;
                        self.memories.keep(t.id, memory);
                    }
                    // The rules on forecasts and anomalies look again (on every server).
                    self.ports
                        .notifier
                        .publish(FleetEvent::ForecastsChanged(ForecastsChanged {
                            tenant_id: t.id,
                            at: Utc::now(),
                        }));
                    pass.tenants += 1;
                    pass.sims += done.sims;
                    pass.unchanged += done.unchanged;
                    pass.partial += usize::from(done.partial);
                    pass.forecasts += done.forecasts;
                    pass.anomalies_new += done.anomalies_new;
                    pass.advice += done.advice;
                    pass.phases.add(&done.phases);
                }
                Err(e) => {
                    tracing::warn!(tenant = %t.id, error = %e, "a tenant's forecast pass failed; again at the next pass");
                    // Released, so that the next pass (here or on another server) takes it.
                    if let Err(release) = self.ports.store.end_forecast_run(t.id, None).await {
                        tracing::warn!(tenant = %t.id, error = %release, "a forecast claim could not be released; it lapses");
                    }
                    pass.failed.push((t.id, e.to_string()));
                }
            }
        }
        pass.duration = started.elapsed();
        Ok(pass)
    }

    async fn tenant_pass(
        &self,
        tenant: TenantId,
        pools: &[PoolTarget],
        now: DateTime<Utc>,
    ) -> Result<TenantPass> {
        let w = Window::at(now);
        let cards = self.ports.cards.rate_cards(Scope::Platform, Some(tenant)).await?;
        let pricing = Pricing::of(cards.clone(), w.today).map(Arc::new);
        // Taken: a pass that fails leaves no memory behind.
        let remembered = self.memories.take(tenant);
        let finished = match remembered {
            Some(_) => self.ports.store.forecast_run_finished(tenant).await?,
            None => None,
        };
        let base = remembered.filter(|m| m.holds(w.today, finished, &cards, pools));
        let census_started = Instant::now();
        let Census {
            sims,
            groups,
            cohorts,
        } = self.census(tenant, pools, &w).await?;
        let mut phases = PassPhases {
            census: census_started.elapsed(),
            ..PassPhases::default()
        };
        let base = base.filter(|m| m.covered_by(sims.iter().map(|e| &e.id)));
        let run = TenantRun {
            tenant,
            w,
            plans: cohorts.plans(),
            cohorts: Arc::new(cohorts.cohorts()),
            pricing,
            now,
            base,
        };
        let mut done = TenantPass {
            sims: sims.len(),
            partial: run.base.is_some(),
            ..TenantPass::default()
        };
        let (written, costs, remembered) = self.sims_pass(&run, &sims, GroupCosts::new(pools.len())).await?;
        done.unchanged = written.unchanged;
        done.forecasts += written.forecasts;
        done.anomalies_new += written.anomalies_new;
        done.advice += written.advice;
        phases.add(&written.phases);
        let reading = Instant::now();
        let hours = self.hourly_sums(tenant, now).await?;
        phases.reads += reading.elapsed();
        let (forecasts, advised, group_phases) = self.groups_pass(&run, groups, hours, pools, costs).await?;
        done.forecasts += forecasts;
        done.advice += advised;
        phases.add(&group_phases);
        // What was not written again is no longer forecast or advised: of every subject after a
        // whole pass, of the groups after one that kept SIMs (a group with no usage left, a pool
        // whose advice is not given any more; each SIM computed again had its own removed).
        let which = match run.base {
            Some(_) => Unwritten::Groups,
            None => Unwritten::All,
        };
        let removing = Instant::now();
        self.ports
            .store
            .delete_forecasts_before(tenant, now, which)
            .await?;
        self.ports.store.delete_advice_before(tenant, now, which).await?;
        phases.writes += removing.elapsed();
        done.phases = phases;
        done.memory = Some(PassMemory {
            day: w.today,
            // Set when the pass is recorded as finished.
            finished_at: now,
            cards,
            pools: pools.to_vec(),
            sims: remembered,
        });
        Ok(done)
    }

    /// The first read: the tenant's SIMs page by page with their daily bytes; the SIMs with
    /// usage in the window, the groups' sums and the cohorts' material.
    async fn census(&self, tenant: TenantId, pools: &[PoolTarget], w: &Window) -> Result<Census> {
        let scope = Scope::tenant(tenant);
        let mut census = Census {
            sims: Vec::new(),
            groups: Groups::new(w.len(), pools.len()),
            cohorts: CohortMaterial::default(),
        };
        let mut after: Option<Cursor> = None;
        loop {
            let page = Page::<SimSort> {
                after: after.take(),
                ..Page::first(SIM_CHUNK as u64)
            };
            let sims = self
                .fleet
                .store()
                .list_sims(scope, tenant, &SimFilter::default(), &page)
                .await?;
            let next = if sims.len() >= SIM_CHUNK {
                sims.last().map(|s| sim_cursor(s, SimSort::Iccid))
            } else {
                None
            };
            if !sims.is_empty() {
                let iccids = sims.iter().map(|s| s.iccid.clone()).collect();
                let daily = self.daily_usage(tenant, w, iccids).await?;
                for s in &sims {
                    let Some((values, sessions)) = daily.get(&s.iccid) else {
                        continue;
                    };
                    let Some(first) = values.iter().position(|v| *v > 0.0) else {
                        continue;
                    };
                    let cohort = census.cohorts.index(s.tariff_plan.as_deref());
                    census.cohorts.add(cohort, w, values);
                    let in_pools = census.groups.add(s, pools, values);
                    let usage = Digest::new()
                        .figures(values)
                        .add(sessions)
                        .add(&s.tariff_plan)
                        .add(&s.customer_id)
                        .add(&in_pools)
                        .finish();
                    census.sims.push(SimEntry {
                        id: s.id,
                        customer: s.customer_id,
                        iccid: s.iccid.clone(),
                        cohort,
                        pools: in_pools,
                        usage,
                        // Judged against its own history yesterday too (its index there one less).
                        young: w.today_index().saturating_sub(first) <= OWN_HISTORY_MIN_DAYS,
                    });
                }
            }
            match next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        Ok(census)
    }

    /// Bytes and sessions per day over the window of each of these SIMs that used any, from the
    /// sessions cube read by whole days (its bytes are the daily cube's).
    async fn daily_usage(
        &self,
        tenant: TenantId,
        w: &Window,
        iccids: Vec<Iccid>,
    ) -> Result<HashMap<Iccid, (Vec<f64>, Vec<u32>)>> {
        let query = by_sim(Cube::SessionsHourly, w.bounds(), iccids, false);
        let mut out: HashMap<Iccid, (Vec<f64>, Vec<u32>)> = HashMap::new();
        for r in self.ports.usage.cube_rows(tenant, &query).await? {
            let bytes = r.bytes_in.saturating_add(r.bytes_out);
            let Some(iccid) = r.iccid else {
                continue;
            };
            if (bytes == 0 && r.sessions == 0) || r.bucket >= w.len() {
                continue;
            }
            let (values, sessions) = out
                .entry(iccid)
                .or_insert_with(|| (vec![0.0; w.len()], vec![0; w.len()]));
            if let Some(slot) = values.get_mut(r.bucket) {
                *slot += bytes as f64;
            }
            if let Some(slot) = sessions.get_mut(r.bucket) {
                *slot = slot.saturating_add(u32::try_from(r.sessions).unwrap_or(u32::MAX));
            }
        }
        Ok(out)
    }

    /// The second read of a chunk of SIMs: bytes, networks and sessions per day, from the
    /// sessions cube read by whole days and split by network (its bytes are the daily cube's);
    /// with `priced`, the completed days' bytes per network too (to price).
    async fn activity(
        &self,
        tenant: TenantId,
        w: &Window,
        iccids: Vec<Iccid>,
        priced: bool,
    ) -> Result<HashMap<Iccid, SimActivity>> {
        let query = by_sim(Cube::SessionsHourly, w.bounds(), iccids, true);
        let rows = self.ports.usage.cube_rows(tenant, &query).await?;
        let networks = Networks::builtin();
        let mut out: HashMap<Iccid, SimActivity> = HashMap::new();
        for r in rows {
            let (Some(iccid), Some(day)) = (r.iccid, w.day_of_bucket(r.bucket)) else {
                continue;
            };
            let a = out.entry(iccid).or_insert_with(|| SimActivity::empty(w.len()));
            let bytes = r.bytes_in.saturating_add(r.bytes_out);
            if let Some(slot) = a.bytes.get_mut(r.bucket) {
                *slot += bytes as f64;
            }
            if let Some(slot) = a.sessions.get_mut(r.bucket) {
                *slot = slot.saturating_add(u32::try_from(r.sessions).unwrap_or(u32::MAX));
            }
            let network = r.mcc_mnc;
            if let Some(net) = &network {
                a.networks.push(NetworkDay {
                    day,
                    country: country_of(networks, net),
                    mcc_mnc: net.to_string(),
                });
            }
            if priced && bytes > 0 && r.bucket < w.today_index() {
                a.traffic.push(NetworkDayBytes { day, network, bytes });
            }
        }
        Ok(out)
    }

    /// The devices each SIM of the chunk was seen in over the window, from its recorded changes
    /// of device (a SIM that never changed device has none to compare).
    async fn devices(
        &self,
        tenant: TenantId,
        w: &Window,
        chunk: &[SimEntry],
    ) -> Result<HashMap<SimId, Vec<ImeiSeen>>> {
        let ids: Vec<SimId> = chunk.iter().map(|e| e.id).collect();
        let since = w.bounds().first().copied().unwrap_or_default();
        let mut out: HashMap<SimId, Vec<ImeiSeen>> = HashMap::new();
        for c in self.fleet.store().imei_changes(tenant, &ids, since).await? {
            let day = c.at.date_naive();
            let seen = out.entry(c.sim_id).or_default();
            seen.push(ImeiSeen {
                at: day.pred_opt().unwrap_or(day),
                imei: c.from,
            });
            seen.push(ImeiSeen { at: day, imei: c.to });
        }
        Ok(out)
    }

    /// The second read of a chunk of SIMs with usage: their quotas, devices and dismissals; then,
    /// for those whose inputs changed since the pass the run goes by (every SIM without one),
    /// their networks and sessions — what their forecasts, anomalies and advice are computed from.
    async fn chunk_jobs(&self, run: &TenantRun, chunk: &[SimEntry]) -> Result<ChunkRead> {
        let (tenant, w, now) = (run.tenant, &run.w, run.now);
        let iccids: Vec<Iccid> = chunk.iter().map(|e| e.iccid.clone()).collect();
        let ids: Vec<SimId> = chunk.iter().map(|e| e.id).collect();
        let mut devices = self.devices(tenant, w, chunk).await?;
        let mut quotas: HashMap<SimId, (QuotaInput, (u64, QuotaAction))> = self
            .ports
            .quotas
            .quotas_of(&iccids)
            .await?
            .into_iter()
            .filter(|t| t.quota.tenant_id == tenant)
            .map(|t| {
                let rule = &t.quota.rule;
                let quota = QuotaInput::monthly(rule.limit_bytes, t.time_zone, now);
                (t.quota.sim_id, (quota, (rule.limit_bytes, rule.action)))
            })
            .collect();
        let mut dismissed: HashMap<SimId, Vec<Dismissal>> = HashMap::new();
        for (sim, d) in self.ports.store.dismissals_of(tenant, &ids).await? {
            dismissed.entry(sim).or_default().push(d);
        }
        let mut read = ChunkRead {
            jobs: Vec::new(),
            kept: Vec::new(),
        };
        let mut changed = Vec::new();
        for e in chunk {
            let quota = quotas.remove(&e.id);
            let dismissed = dismissed.remove(&e.id).unwrap_or_default();
            let imeis = devices.remove(&e.id).unwrap_or_default();
            let inputs = Digest::new()
                .add(&e.usage)
                .add(&quota)
                .json(&dismissed)
                .json(&imeis)
                .finish();
            let unchanged = match &run.base {
                Some(base) if !e.young => base.unchanged(e.id, inputs),
                _ => None,
            };
            match unchanged {
                Some(remembered) => read.kept.push(Kept {
                    sim: e.id,
                    customer: e.customer,
                    pools: e.pools.clone(),
                    remembered: remembered.clone(),
                }),
                None => changed.push((e, quota, dismissed, imeis, inputs)),
            }
        }
        if changed.is_empty() {
            return Ok(read);
        }
        let iccids = changed.iter().map(|(e, ..)| e.iccid.clone()).collect();
        let mut activity = self.activity(tenant, w, iccids, run.pricing.is_some()).await?;
        read.jobs = changed
            .into_iter()
            .filter_map(|(e, quota, dismissed, imeis, inputs)| {
                let mut activity = activity.remove(&e.iccid)?;
                activity.imeis = imeis;
                Some(SimJob {
                    activity,
                    sim: (e.id, e.customer, e.iccid.clone()),
                    cohort: e.cohort,
                    plan: run.plans.get(e.cohort).cloned().flatten(),
                    pools: e.pools.clone(),
                    dismissed,
                    quota: quota.map(|(q, _)| q),
                    limit: quota.map(|(_, l)| l),
                    inputs,
                })
            })
            .collect();
        Ok(read)
    }

    /// Forecasts, examines and advises the SIMs with usage, a chunk at a time, in three stages
    /// that overlap: while one chunk is computed (on the forecasts' lane), the next is read and
    /// the one before is written. A SIM whose inputs are those the base pass computed it from is
    /// kept as stored. Every SIM's costs are added to the groups' `costs`. Returns how many SIMs
    /// were kept and how many forecasts, anomalies and pieces of advice were written, where the
    /// time went (each stage's own time: they overlap, so the phases add up to more than the time
    /// taken), the groups' costs and what the next pass goes by.
    async fn sims_pass(
        &self,
        run: &TenantRun,
        sims: &[SimEntry],
        mut costs: GroupCosts,
    ) -> Result<(TenantPass, GroupCosts, HashMap<SimId, Remembered>)> {
        let mut done = TenantPass::default();
        let mut remembered: HashMap<SimId, Remembered> = HashMap::with_capacity(sims.len());
        let mut kept_costs = GroupCosts::new(costs.pools.len());
        let mut chunks = sims.chunks(SIM_CHUNK);
        let (mut next, read) = self.read_chunk(run, chunks.next()).await?;
        done.phases.reads += read;
        let mut written: Option<ChunkOutput> = None;
        while let Some(ChunkRead { jobs, kept }) = next.take() {
            done.unchanged += kept.len();
            for k in kept {
                if let Some(c) = &k.remembered.costs {
                    kept_costs.add(k.customer, &k.pools, c);
                }
                remembered.insert(k.sim, k.remembered);
            }
            let compute = async {
                let computing = Instant::now();
                let (tenant, window, now) = (run.tenant, run.w, run.now);
                let (cohorts, pricing) = (Arc::clone(&run.cohorts), run.pricing.clone());
                let out = crate::lanes::FORECASTS
                    .run(move || {
                        compute::run_chunk(tenant, window, jobs, &cohorts, pricing.as_deref(), costs, now)
                    })
                    .await?;
                Ok::<_, ioto_domain::Error>((out, computing.elapsed()))
            };
            let ((mut out, computed), (chunk, read), (counts, wrote)) = futures::try_join!(
                compute,
                self.read_chunk(run, chunks.next()),
                self.write_chunk(run, written.take())
            )?;
            done.phases.compute += computed;
            done.phases.reads += read;
            done.phases.writes += wrote;
            done.add_written(counts);
            next = chunk;
            costs = std::mem::take(&mut out.costs);
            remembered.extend(std::mem::take(&mut out.remembered));
            written = Some(out);
        }
        let (counts, wrote) = self.write_chunk(run, written).await?;
        done.phases.writes += wrote;
        done.add_written(counts);
        costs.merge(kept_costs);
        Ok((done, costs, remembered))
    }

    /// The second read of a chunk (none: nothing to read), and how long it took.
    async fn read_chunk(
        &self,
        run: &TenantRun,
        chunk: Option<&[SimEntry]>,
    ) -> Result<(Option<ChunkRead>, std::time::Duration)> {
        let reading = Instant::now();
        let read = match chunk {
            Some(chunk) => Some(self.chunk_jobs(run, chunk).await?),
            None => None,
        };
        Ok((read, reading.elapsed()))
    }

    /// Writes a chunk's forecasts, new anomalies (telling of those that notify) and advice (none:
    /// nothing to write); in a pass that goes by an earlier one, removes the advice of its SIMs
    /// that was not given again. Returns how many forecasts, new anomalies and pieces of advice
    /// were written, and how long it took.
    async fn write_chunk(
        &self,
        run: &TenantRun,
        out: Option<ChunkOutput>,
    ) -> Result<((usize, usize, usize), std::time::Duration)> {
        let writing = Instant::now();
        let Some(out) = out else {
            return Ok(((0, 0, 0), writing.elapsed()));
        };
        for part in out.forecasts.chunks(PUT_CHUNK) {
            self.ports.store.put_forecasts(part).await?;
        }
        let stored = self.ports.store.put_anomalies(&out.anomalies).await?;
        self.tell(&stored.notifications);
        self.ports.store.put_advice(&out.advice).await?;
        if run.base.is_some() {
            self.ports
                .store
                .delete_sims_advice_before(run.tenant, &out.computed, run.now)
                .await?;
        }
        Ok((
            (out.forecasts.len(), stored.new.len(), out.advice.len()),
            writing.elapsed(),
        ))
    }

    /// Forecasts the groups from their sums: the tenant, each sub-customer with usage, each
    /// pool (read against its limit), with their projected costs (their SIMs' `costs` summed)
    /// and, for the tenant and the sub-customers, their outlook hour by hour from `hours`;
    /// advises each pool on its limit. Returns how many forecasts and pieces of advice were
    /// written, and where the time went.
    async fn groups_pass(
        &self,
        run: &TenantRun,
        groups: Groups,
        mut hours: HourlySums,
        pools: &[PoolTarget],
        mut costs: GroupCosts,
    ) -> Result<(usize, usize, PassPhases)> {
        let computing = Instant::now();
        let (tenant, now) = (run.tenant, run.now);
        let currency = run.pricing.as_ref().map(|p| p.currency());
        let advised: Vec<_> = pools
            .iter()
            .zip(&groups.pools)
            .zip(&costs.pools)
            .filter_map(|((target, values), sums)| {
                advice::pool_advice(&run.w, tenant, target, values, currency.map(|c| (sums, c)), now)
            })
            .collect();
        let mut inputs = vec![GroupInput {
            subject: ForecastSubject::Tenant,
            values: groups.tenant,
            quota: None,
            costs: std::mem::take(&mut costs.tenant),
            hours: Some(std::mem::take(&mut hours.tenant)),
        }];
        inputs.extend(groups.customers.into_iter().map(|(c, values)| GroupInput {
            subject: ForecastSubject::Customer(c),
            values,
            quota: None,
            costs: costs.customers.remove(&c).unwrap_or_default(),
            hours: hours.customers.remove(&c),
        }));
        let pool_costs = std::mem::take(&mut costs.pools);
        inputs.extend(
            pools
                .iter()
                .zip(groups.pools)
                .zip(
                    pool_costs
                        .into_iter()
                        .chain(std::iter::repeat_with(CostSums::default)),
                )
                .map(|((target, values), sums)| GroupInput {
                    subject: ForecastSubject::Pool(target.pool.id),
                    values,
                    quota: Some(QuotaInput::monthly(
                        target.pool.rule.limit_bytes,
                        target.time_zone,
                        now,
                    )),
                    costs: sums,
                    hours: None,
                }),
        );
        let (window, pricing) = (run.w, run.pricing.clone());
        let (hours_start, today_hour) = (hours.start, hours.today);
        let forecasts: Vec<StoredForecast> = crate::lanes::FORECASTS
            .run(move || {
                inputs
                    .iter()
                    .filter_map(|g| {
                        let input = ForecastInput {
                            tenant,
                            subject: g.subject,
                            values: &g.values,
                            cohort: None,
                            quota: g.quota.as_ref(),
                        };
                        let mut f = compute::forecast_of(&window, &input, now)?;
                        if let Some(p) = pricing.as_deref() {
                            f.projected_cost = Some(p.projected(&window, &g.costs, None, &f.days));
                        }
                        f.hourly = g
                            .hours
                            .as_deref()
                            .and_then(|h| hourly::outlook(h, hours_start, today_hour));
                        Some(f)
                    })
                    .collect::<Vec<StoredForecast>>()
            })
            .await?;
        let compute = computing.elapsed();
        let writing = Instant::now();
        for part in forecasts.chunks(PUT_CHUNK) {
            self.ports.store.put_forecasts(part).await?;
        }
        self.ports.store.put_advice(&advised).await?;
        let phases = PassPhases {
            compute,
            writes: writing.elapsed(),
            ..PassPhases::default()
        };
        Ok((forecasts.len(), advised.len(), phases))
    }

    /// Tells subscribers of the notifications written, and wakes the delivery workers.
    fn tell(&self, notes: &[Notification]) {
        for n in notes {
            self.ports
                .notifier
                .publish(FleetEvent::Notification(NotificationCreated::of(n)));
        }
        if !notes.is_empty() {
            if let Some(w) = &self.ports.delivery_wakeup {
                w.notify_one();
            }
        }
    }
}
