//! The pass: every tenant claimed in turn; its SIMs read twice from the usage cubes, a page at a
//! time — first their daily bytes, for the sums of the groups and what each cohort lends its new
//! SIMs; then, for the SIMs with usage, their networks and sessions too, forecast and examined
//! for anomalies a chunk at a time on the blocking pool — and the groups (the tenant, its
//! sub-customers, its quota pools) forecast from their sums. What a pass writes replaces what the
//! last one wrote; forecasts of subjects no longer forecast are removed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, SubsecRound, Utc};
use ioto_domain::analytics::Cube;
use ioto_domain::events::{FleetEvent, NotificationCreated};
use ioto_domain::fleet::query::{sim_cursor, Cursor, Page, SimFilter, SimSort};
use ioto_domain::fleet::Sim;
use ioto_domain::forecast::{Dismissal, ForecastSubject, StoredForecast};
use ioto_domain::identifiers::{Iccid, MccMnc};
use ioto_domain::notify::Notification;
use ioto_domain::ports::quota_pools::PoolTarget;
use ioto_domain::usage::Networks;
use ioto_domain::{CustomerId, Result, Scope, SimId, TenantId};
use ioto_forecast::anomaly::{cohort_stats, NetworkDay};
use ioto_forecast::{DailySeries, WeeklyShape};

use super::compute::{self, Cohorts, ForecastInput, QuotaInput, SimActivity, SimJob, Window};
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
    /// SIMs with usage in the window, forecast and examined.
    pub sims: usize,
    /// Forecasts written (SIMs, sub-customers, tenants, pools).
    pub forecasts: usize,
    /// Anomalies found for the first time.
    pub anomalies_new: usize,
    /// Tenants whose pass failed, with why (logged; tried again at the next pass).
    pub failed: Vec<(TenantId, String)>,
    pub duration: std::time::Duration,
}

/// What one tenant's pass did.
#[derive(Debug, Default)]
struct TenantPass {
    sims: usize,
    forecasts: usize,
    anomalies_new: usize,
}

/// A SIM with usage in the window, as the second read needs it.
struct SimEntry {
    id: SimId,
    customer: Option<CustomerId>,
    iccid: Iccid,
    cohort: usize,
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
    /// pools' member filter selects them).
    fn add(&mut self, sim: &Sim, pools: &[PoolTarget], values: &[f64]) {
        add_into(&mut self.tenant, values);
        if let Some(c) = sim.customer_id {
            let days = values.len();
            add_into(self.customers.entry(c).or_insert_with(|| vec![0.0; days]), values);
        }
        for (sum, target) in self.pools.iter_mut().zip(pools) {
            if target.pool.members.matches(sim) {
                add_into(sum, values);
            }
        }
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
                Ok(done) => {
                    self.ports.store.end_forecast_run(t.id, Some(Utc::now())).await?;
                    pass.tenants += 1;
                    pass.sims += done.sims;
                    pass.forecasts += done.forecasts;
                    pass.anomalies_new += done.anomalies_new;
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
        let Census {
            sims,
            groups,
            cohorts,
        } = self.census(tenant, pools, &w).await?;
        let cohorts = Arc::new(cohorts.cohorts());
        let mut done = TenantPass {
            sims: sims.len(),
            ..TenantPass::default()
        };
        for chunk in sims.chunks(SIM_CHUNK) {
            let (forecasts, anomalies) = self.sims_pass(tenant, &w, chunk, &cohorts, now).await?;
            done.forecasts += forecasts;
            done.anomalies_new += anomalies;
        }
        done.forecasts += self.groups_pass(tenant, &w, groups, pools, now).await?;
        self.ports.store.delete_forecasts_before(tenant, now).await?;
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
                let daily = self.daily_bytes(tenant, w, iccids).await?;
                for s in &sims {
                    let Some(values) = daily.get(&s.iccid) else {
                        continue;
                    };
                    let cohort = census.cohorts.index(s.tariff_plan.as_deref());
                    census.cohorts.add(cohort, w, values);
                    census.groups.add(s, pools, values);
                    census.sims.push(SimEntry {
                        id: s.id,
                        customer: s.customer_id,
                        iccid: s.iccid.clone(),
                        cohort,
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

    /// Bytes per day over the window of each of these SIMs that used any, from the daily cube.
    async fn daily_bytes(
        &self,
        tenant: TenantId,
        w: &Window,
        iccids: Vec<Iccid>,
    ) -> Result<HashMap<Iccid, Vec<f64>>> {
        let query = by_sim(Cube::UsageDaily, w.bounds(), iccids, false);
        let mut out: HashMap<Iccid, Vec<f64>> = HashMap::new();
        for r in self.ports.usage.cube_rows(tenant, &query).await? {
            let bytes = r.bytes_in.saturating_add(r.bytes_out);
            let Some(iccid) = r.iccid else {
                continue;
            };
            if bytes == 0 || r.bucket >= w.len() {
                continue;
            }
            let values = out.entry(iccid).or_insert_with(|| vec![0.0; w.len()]);
            if let Some(slot) = values.get_mut(r.bucket) {
                *slot += bytes as f64;
            }
        }
        Ok(out)
    }

    /// The second read of a chunk of SIMs: bytes and networks per day from the daily cube,
    /// sessions per day from the hourly sessions cube (read by whole days).
    async fn activity(
        &self,
        tenant: TenantId,
        w: &Window,
        iccids: Vec<Iccid>,
    ) -> Result<HashMap<Iccid, SimActivity>> {
        let bounds = w.bounds();
        let by_network = by_sim(Cube::UsageDaily, bounds.clone(), iccids.clone(), true);
        let sessions = by_sim(Cube::SessionsHourly, bounds, iccids, false);
        let (usage_rows, session_rows) = futures::try_join!(
            self.ports.usage.cube_rows(tenant, &by_network),
            self.ports.usage.cube_rows(tenant, &sessions)
        )?;
        let networks = Networks::builtin();
        let mut out: HashMap<Iccid, SimActivity> = HashMap::new();
        for r in usage_rows {
            let (Some(iccid), Some(day)) = (r.iccid, w.day_of_bucket(r.bucket)) else {
                continue;
            };
            let a = out.entry(iccid).or_insert_with(|| SimActivity::empty(w.len()));
            if let Some(slot) = a.bytes.get_mut(r.bucket) {
                *slot += r.bytes_in.saturating_add(r.bytes_out) as f64;
            }
            if let Some(net) = r.mcc_mnc {
                a.networks.push(NetworkDay {
                    day,
                    country: country_of(networks, &net),
                    mcc_mnc: net.to_string(),
                });
            }
        }
        for r in session_rows {
            let Some(a) = r.iccid.as_ref().and_then(|i| out.get_mut(i)) else {
                continue;
            };
            if let Some(slot) = a.sessions.get_mut(r.bucket) {
                *slot = slot.saturating_add(u32::try_from(r.sessions).unwrap_or(u32::MAX));
            }
        }
        Ok(out)
    }

    /// Forecasts and examines a chunk of SIMs with usage; writes the forecasts and the new
    /// anomalies and tells of those that notify. Returns how many of each were written.
    async fn sims_pass(
        &self,
        tenant: TenantId,
        w: &Window,
        chunk: &[SimEntry],
        cohorts: &Arc<Cohorts>,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize)> {
        let iccids: Vec<Iccid> = chunk.iter().map(|e| e.iccid.clone()).collect();
        let ids: Vec<SimId> = chunk.iter().map(|e| e.id).collect();
        let mut activity = self.activity(tenant, w, iccids.clone()).await?;
        let quotas: HashMap<SimId, QuotaInput> = self
            .ports
            .quotas
            .quotas_of(&iccids)
            .await?
            .into_iter()
            .filter(|t| t.quota.tenant_id == tenant)
            .map(|t| {
                let quota = QuotaInput::monthly(t.quota.rule.limit_bytes, t.time_zone, now);
                (t.quota.sim_id, quota)
            })
            .collect();
        let mut dismissed: HashMap<SimId, Vec<Dismissal>> = HashMap::new();
        for (sim, d) in self.ports.store.dismissals_of(tenant, &ids).await? {
            dismissed.entry(sim).or_default().push(d);
        }
        let jobs: Vec<SimJob> = chunk
            .iter()
            .filter_map(|e| {
                Some(SimJob {
                    activity: activity.remove(&e.iccid)?,
                    sim: (e.id, e.customer, e.iccid.clone()),
                    cohort: e.cohort,
                    dismissed: dismissed.remove(&e.id).unwrap_or_default(),
                    quota: quotas.get(&e.id).copied(),
                })
            })
            .collect();
        let (window, cohorts) = (*w, Arc::clone(cohorts));
        let (forecasts, anomalies) = crate::lanes::FORECASTS
            .run(move || compute::run_chunk(tenant, window, jobs, &cohorts, now))
            .await?;
        for part in forecasts.chunks(PUT_CHUNK) {
            self.ports.store.put_forecasts(part).await?;
        }
        let stored = self.ports.store.put_anomalies(&anomalies).await?;
        self.tell(&stored.notifications);
        Ok((forecasts.len(), stored.new.len()))
    }

    /// Forecasts the groups from their sums: the tenant, each sub-customer with usage, each
    /// pool (read against its limit). Returns how many were written.
    async fn groups_pass(
        &self,
        tenant: TenantId,
        w: &Window,
        groups: Groups,
        pools: &[PoolTarget],
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let mut inputs = vec![GroupInput {
            subject: ForecastSubject::Tenant,
            values: groups.tenant,
            quota: None,
        }];
        inputs.extend(groups.customers.into_iter().map(|(c, values)| GroupInput {
            subject: ForecastSubject::Customer(c),
            values,
            quota: None,
        }));
        inputs.extend(pools.iter().zip(groups.pools).map(|(target, values)| GroupInput {
            subject: ForecastSubject::Pool(target.pool.id),
            values,
            quota: Some(QuotaInput::monthly(
                target.pool.rule.limit_bytes,
                target.time_zone,
                now,
            )),
        }));
        let window = *w;
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
                        compute::forecast_of(&window, &input, now)
                    })
                    .collect::<Vec<StoredForecast>>()
            })
            .await?;
        for part in forecasts.chunks(PUT_CHUNK) {
            self.ports.store.put_forecasts(part).await?;
        }
        Ok(forecasts.len())
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
