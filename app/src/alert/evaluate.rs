//! Evaluating alert rules: from the stream (SIMs that carried traffic, state changes, quota
//! stages) and on the clock (SIMs gone quiet, pending durations passing, alerts to resolve and
//! to announce). Every pass reads the alerts it may change and writes them with a version check,
//! so two servers evaluating the same thing, or an event delivered twice, change an alert once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ioto_domain::alert::lifecycle::{event_quiet, may_reopen, step, Alert, AlertWrite, Subject};
use ioto_domain::alert::{cents_text, AlertRule, Metric, Observation};
use ioto_domain::analytics::{Cube, CubeFilter, CubeGroup, CubeQuery};
use ioto_domain::events::{AlertChanged, FleetEvent, NotificationCreated};
use ioto_domain::fleet::query::{sim_cursor, Cursor, Page, SimFilter, SimSort};
use ioto_domain::fleet::{Sim, SimState};
use ioto_domain::identifiers::{Iccid, MccMnc};
use ioto_domain::notify::NotificationKind;
use ioto_domain::ports::{Activity, AlertStore, Fleet, FleetNotifier, UsageReader};
use ioto_domain::quota::period_of;
use ioto_domain::usage::Networks;

use crate::quota::{by_sim, hourly_bytes};
use ioto_domain::{Result, Scope, SimId, TenantId};
use uuid::Uuid;

/// The rules on stored forecasts and anomalies.
mod forecast;
/// The telemetry rules, on device readings as they are stored.
mod telemetry;

/// How often rules measured in days are evaluated (the audit trail read for each).
const SLOW_EVERY: Duration = Duration::from_secs(60);
/// Most subjects whose current alerts a pass reads by key (more: the rule's are read whole).
const KEYED_READ_MAX: usize = 1_000;
/// Most alerts one announcing pass tells of.
const ANNOUNCE_BATCH: u64 = 1_000;
/// Most SIMs one clock pass looks at per rule.
pub const SCAN_SIMS: u64 = 200_000;
/// SIMs gone quiet that a clock pass reads, observes and writes at a time.
const QUIET_PAGE: u64 = 10_000;
/// How long the evaluator trusts its copy of the rules.
const RULES_TTL: Duration = Duration::from_secs(2);

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub rules: usize,
    pub observed: usize,
    pub written: usize,
    pub notifications: usize,
}

impl std::ops::AddAssign for Pass {
    fn add_assign(&mut self, o: Self) {
        self.rules += o.rules;
        self.observed += o.observed;
        self.written += o.written;
        self.notifications += o.notifications;
    }
}

/// The enabled rules as read at a time.
type HeldRules = (Instant, Arc<Vec<AlertRule>>);

/// Evaluates alert rules. Cheap to clone.
#[derive(Clone)]
pub struct AlertEvaluator {
    store: Arc<dyn AlertStore>,
    fleet: Arc<dyn Fleet>,
    usage: Arc<dyn UsageReader>,
    notifier: Arc<dyn FleetNotifier>,
    delivery_wakeup: Option<Arc<tokio::sync::Notify>>,
    rules: Arc<Mutex<Option<HeldRules>>>,
    /// Since when counted traffic may not have been evaluated from the stream (what a server
    /// stopped before this one started left; a stream pass that failed): the clock's next pass
    /// evaluates the data rules for the SIMs active since.
    missed: Arc<Mutex<Option<DateTime<Utc>>>>,
    /// When the rules evaluated at most once a minute last were (days after activation).
    slow: Arc<Mutex<HashMap<Uuid, Instant>>>,
    /// Rated usage, for the cost rules (none: no cost rule is evaluated here).
    billing: Option<crate::billing::BillingService>,
    /// The latest rated costs per tenant and window, kept until a new rating or a new day.
    rated: Arc<Mutex<RatedByWindow>>,
}

/// The latest rated costs per tenant and window.
type RatedByWindow = HashMap<(TenantId, Need), Arc<RatedCosts>>;

/// What SIMs' traffic cost in a window as one set of rating runs priced it.
struct RatedCosts {
    runs: Vec<Uuid>,
    bounds: (DateTime<Utc>, DateTime<Utc>),
    currency: ioto_domain::billing::money::Currency,
    /// Per SIM, in hundredths of the currency (rounded down).
    cents: HashMap<Iccid, u64>,
}

/// How far back the clock's pass looks for SIMs with traffic the stream missed: a SIM's activity
/// is recorded a few seconds after its traffic is counted, and the usage store may show the
/// count a second after that.
const ACTIVE_OVERLAP: chrono::Duration = chrono::Duration::minutes(2);

impl AlertEvaluator {
    pub fn new(
        store: Arc<dyn AlertStore>,
        fleet: Arc<dyn Fleet>,
        usage: Arc<dyn UsageReader>,
        notifier: Arc<dyn FleetNotifier>,
        delivery_wakeup: Option<Arc<tokio::sync::Notify>>,
    ) -> Self {
        Self {
            store,
            fleet,
            usage,
            notifier,
            delivery_wakeup,
            rules: Arc::new(Mutex::new(None)),
            missed: Arc::new(Mutex::new(Some(Utc::now() - ACTIVE_OVERLAP))),
            billing: None,
            rated: Arc::new(Mutex::new(HashMap::new())),
            slow: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Whether a rule evaluated at most once a minute is due (and if so, marks it evaluated).
    fn slow_due(&self, rule: Uuid) -> bool {
        let mut slow = self
            .slow
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match slow.get(&rule) {
            Some(at) if at.elapsed() < SLOW_EVERY => false,
            _ => {
                slow.insert(rule, Instant::now());
                true
            }
        }
    }

    /// Evaluates the cost rules against what `billing` rated.
    #[must_use]
    pub fn with_billing(mut self, billing: crate::billing::BillingService) -> Self {
        self.billing = Some(billing);
        self
    }

    /// What the SIMs of `tenant` cost in the window of `need` (today or the billing period, UTC
    /// days as rating counts them), as the current rating runs priced it; `None` when the tenant
    /// has no retail card or nothing of the window was rated. Read again only when the runs or
    /// the window changed.
    async fn rated_costs(
        &self,
        tenant: TenantId,
        need: Need,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<RatedCosts>>> {
        let Some(billing) = &self.billing else {
            return Ok(None);
        };
        let today = now.date_naive();
        let tomorrow = today + chrono::Duration::days(1);
        let Some((currency, runs)) = billing.current_retail_rated(tenant, today, tomorrow).await? else {
            return Ok(None);
        };
        let midnight = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        let bounds = match (need, runs.first()) {
            (_, None) => return Ok(None),
            (Need::DayCost, Some(_)) => (midnight(today), midnight(tomorrow)),
            (_, Some(r)) => (midnight(r.period_start), midnight(r.period_end)),
        };
        let mut ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        let key = (tenant, need);
        if let Some(have) = self
            .rated
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            if have.runs == ids && have.bounds == bounds {
                return Ok(Some(Arc::clone(have)));
            }
        }
        let query = CubeQuery {
            cube: Cube::RatedDaily,
            bounds: vec![bounds.0, bounds.1],
            group: CubeGroup {
                sim: true,
                ..CubeGroup::default()
            },
            filter: CubeFilter::default(),
            runs: ids.clone(),
            count_sims: false,
        };
        let mut units: HashMap<Iccid, i128> = HashMap::new();
        for r in self.usage.cube_rows(tenant, &query).await? {
            if let Some(i) = r.iccid {
                *units.entry(i).or_default() += r.cost.units();
            }
        }
        let cents = units
            .into_iter()
            .map(|(i, u)| (i, u64::try_from(u / 10_000_000_000).unwrap_or(0)))
            .collect();
        let costs = Arc::new(RatedCosts {
            runs: ids,
            bounds,
            currency,
            cents,
        });
        self.rated
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, Arc::clone(&costs));
        Ok(Some(costs))
    }

    /// Tells subscribers that an alert changed (acknowledged).
    pub fn changed(&self, alert: &Alert) {
        self.notifier
            .publish(FleetEvent::AlertChanged(AlertChanged::of(alert)));
    }

    /// Forgets the copy of the rules (a rule changed here). A data rule written now is
    /// evaluated at the clock's next pass for the SIMs active in the day before (the others at
    /// their next traffic).
    pub fn rules_changed(&self, metric: Option<Metric>) {
        *self
            .rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        if metric.is_some_and(|m| m.is_streamed() && !m.is_event()) {
            self.missed_since(Utc::now() - chrono::Duration::days(1));
        }
    }

    async fn rules(&self) -> Result<Arc<Vec<AlertRule>>> {
        {
            let held = self
                .rules
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, rules)) = held.as_ref() {
                if at.elapsed() < RULES_TTL {
                    return Ok(Arc::clone(rules));
                }
            }
        }
        let rules = Arc::new(self.store.enabled_alert_rules().await?);
        *self
            .rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Instant::now(), Arc::clone(&rules)));
        Ok(rules)
    }

    /// Marks SIMs active since `at` as not evaluated from the stream.
    fn missed_since(&self, at: DateTime<Utc>) {
        let mut m = self
            .missed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *m = Some(m.map_or(at, |have| have.min(at)));
    }

    /// Evaluates the stream's rules for SIMs that carried traffic, each with the network it
    /// was seen on: data used, sessions, usage against the SIM's habit, new networks and
    /// countries. The caller offers the SIMs of a pass that failed again.
    pub async fn on_traffic(&self, seen: &[(Iccid, MccMnc)], now: DateTime<Utc>) -> Result<Pass> {
        let rules = self.rules().await?;
        let stream: Vec<&AlertRule> = rules
            .iter()
            .filter(|r| r.spec.condition.metric.is_streamed())
            .collect();
        if stream.is_empty() || seen.is_empty() {
            return Ok(Pass::default());
        }
        // What was counted is read as counted.
        self.usage.settle().await?;
        let mut iccids: Vec<Iccid> = seen.iter().map(|(i, _)| i.clone()).collect();
        iccids.sort_unstable();
        iccids.dedup();
        let sims = self.fleet.sims_by_iccid(Scope::Platform, &iccids).await?;
        let watched: Vec<(&AlertRule, Vec<&Sim>)> = stream
            .into_iter()
            .map(|rule| {
                let w = sims
                    .iter()
                    .filter(|s| s.tenant_id == rule.tenant_id && rule.spec.target.matches(s))
                    .collect::<Vec<_>>();
                (rule, w)
            })
            .filter(|(_, w)| !w.is_empty())
            .collect();
        // One read per tenant and need, for the SIMs of all its rules together.
        let mut together: HashMap<(TenantId, Need), Vec<&Sim>> = HashMap::new();
        for (rule, w) in &watched {
            if let Some(need) = Need::of(rule.spec.condition.metric) {
                together
                    .entry((rule.tenant_id, need))
                    .or_default()
                    .extend(w.iter().copied());
            }
        }
        let mut reads = Reads::new(now);
        for ((tenant, need), sims) in &together {
            reads.ensure(self, *tenant, *need, sims).await?;
        }
        let mut pass = Pass::default();
        for (rule, w) in watched {
            let observed = match rule.spec.condition.metric {
                Metric::NewNetwork | Metric::NewCountry => {
                    let read = reads.ensure(self, rule.tenant_id, Need::Networks, &w).await?;
                    new_networks(rule, &w, seen, read, now)
                }
                _ => self.measure(rule, &w, &mut reads).await?,
            };
            pass += self.apply(rule, observed, now).await?;
        }
        Ok(pass)
    }

    /// Evaluates what recording SIM activity found: the first-traffic rules for SIMs seen for
    /// the first time, the IMEI rules for SIMs seen in another device.
    pub async fn on_activity(&self, seen: &Activity, now: DateTime<Utc>) -> Result<Pass> {
        if seen.first_seen.is_empty() && seen.imei_changes.is_empty() {
            return Ok(Pass::default());
        }
        let rules = self.rules().await?;
        let wanted = |m: Metric, any: bool| any && rules.iter().any(|r| r.spec.condition.metric == m);
        let first = wanted(Metric::FirstTraffic, !seen.first_seen.is_empty());
        let moved = wanted(Metric::ImeiChanged, !seen.imei_changes.is_empty());
        if !first && !moved {
            return Ok(Pass::default());
        }
        let mut iccids: Vec<Iccid> = Vec::new();
        if first {
            iccids.extend(seen.first_seen.iter().cloned());
        }
        if moved {
            iccids.extend(seen.imei_changes.iter().map(|c| c.iccid.clone()));
        }
        iccids.sort_unstable();
        iccids.dedup();
        let sims = self.fleet.sims_by_iccid(Scope::Platform, &iccids).await?;
        let by_iccid: HashMap<&Iccid, &Sim> = sims.iter().map(|s| (&s.iccid, s)).collect();
        let mut pass = Pass::default();
        for rule in rules.iter() {
            let observed: Vec<(Subject, Observation)> = match rule.spec.condition.metric {
                Metric::FirstTraffic if first => seen
                    .first_seen
                    .iter()
                    .filter_map(|i| by_iccid.get(i).copied())
                    .filter(|s| s.tenant_id == rule.tenant_id && rule.spec.target.matches(s))
                    .map(|s| {
                        let obs = Observation::Firing {
                            value: 0,
                            event: Some(format!("first:{}", s.id.0)),
                            detail: s.last_network.as_ref().map(|n| format!("on network {n}")),
                        };
                        (Subject::of(s), obs)
                    })
                    .collect(),
                Metric::ImeiChanged if moved => seen
                    .imei_changes
                    .iter()
                    .filter_map(|c| by_iccid.get(&c.iccid).map(|s| (c, *s)))
                    .filter(|(_, s)| s.tenant_id == rule.tenant_id && rule.spec.target.matches(s))
                    .map(|(c, s)| {
                        let obs = Observation::Firing {
                            value: 0,
                            event: Some(format!("imei:{}:{}:{}", s.id.0, c.to, c.at.timestamp_micros())),
                            detail: Some(format!("IMEI {} → {}", c.from, c.to)),
                        };
                        (Subject::of(s), obs)
                    })
                    .collect(),
                _ => continue,
            };
            pass += self.apply(rule, observed, now).await?;
        }
        Ok(pass)
    }

    /// Evaluates rules on what the fleet tells: a SIM's state changed, a quota reached a stage,
    /// a bulk job finished. New forecasts or an anomaly decided make the tenant's rules on them
    /// due at the next tick.
    pub async fn on_event(&self, event: &FleetEvent, now: DateTime<Utc>) -> Result<Pass> {
        if let FleetEvent::ForecastsChanged(e) = event {
            let rules = self.rules().await?;
            let mut slow = self
                .slow
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for r in rules
                .iter()
                .filter(|r| r.tenant_id == e.tenant_id && r.spec.condition.metric.is_forecast())
            {
                slow.remove(&r.id);
            }
            return Ok(Pass::default());
        }
        let (tenant, metric) = match event {
            FleetEvent::SimStateChanged(e) => (e.tenant_id, Metric::StateChanged),
            FleetEvent::Notification(n) if n.kind == NotificationKind::QuotaStage.as_str() => {
                (n.tenant_id, Metric::QuotaStage)
            }
            FleetEvent::Notification(n) if n.kind == NotificationKind::BulkJobFinished.as_str() => {
                (n.tenant_id, Metric::BulkJobFinished)
            }
            _ => return Ok(Pass::default()),
        };
        let rules = self.rules().await?;
        let matching: Vec<&AlertRule> = rules
            .iter()
            .filter(|r| r.tenant_id == tenant && r.spec.condition.metric == metric)
            .collect();
        if matching.is_empty() {
            return Ok(Pass::default());
        }
        if let FleetEvent::Notification(n) = event {
            if metric == Metric::BulkJobFinished {
                let Some((subject, obs)) = bulk_job(n) else {
                    return Ok(Pass::default());
                };
                let mut pass = Pass::default();
                for rule in matching {
                    pass += self
                        .apply(rule, vec![(subject.clone(), obs.clone())], now)
                        .await?;
                }
                return Ok(pass);
            }
        }
        let (iccid, value, key, to, detail) = match event {
            FleetEvent::SimStateChanged(e) => (
                e.iccid.clone(),
                0,
                format!("{}:{}:{}", e.sim_id.0, e.to.as_str(), e.at.timestamp_micros()),
                Some(e.to),
                Some(format!(
                    "{} → {}",
                    e.from.as_str().to_lowercase().replace('_', " "),
                    e.to.as_str().to_lowercase().replace('_', " ")
                )),
            ),
            FleetEvent::Notification(n) => match quota_stage(n) {
                Some((iccid, stage, key)) => {
                    (iccid, stage, key, None, Some(format!("{stage} % of its quota")))
                }
                None => return Ok(Pass::default()),
            },
            _ => return Ok(Pass::default()),
        };
        let Some(sim) = self
            .fleet
            .sims_by_iccid(Scope::Platform, std::slice::from_ref(&iccid))
            .await?
            .into_iter()
            .find(|s| s.tenant_id == tenant)
        else {
            return Ok(Pass::default());
        };
        let mut pass = Pass::default();
        for rule in matching {
            if !rule.spec.target.matches(&sim) {
                continue;
            }
            let c = &rule.spec.condition;
            let fires = match metric {
                Metric::StateChanged => c.state.is_none() || c.state == to,
                _ => value >= c.threshold.unwrap_or(0),
            };
            if !fires {
                continue;
            }
            let obs = Observation::Firing {
                value,
                event: Some(key.clone()),
                detail: detail.clone(),
            };
            pass += self.apply(rule, vec![(Subject::of(&sim), obs)], now).await?;
        }
        Ok(pass)
    }

    /// The clock's pass: SIMs gone quiet, open alerts evaluated again (pending durations
    /// passing, conditions clearing, events gone quiet), SIMs whose counted traffic the stream
    /// did not evaluate (a failed stream pass; what a server stopped before it left), then what
    /// is due announced.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Pass> {
        let rules = self.store.enabled_alert_rules().await?;
        let missed = self
            .missed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let done = self.tick_rules(&rules, missed, now).await;
        if done.is_err() {
            if let Some(at) = missed {
                self.missed_since(at);
            }
        }
        let mut pass = done?;
        pass.notifications += self.announce(now).await?;
        Ok(pass)
    }

    async fn tick_rules(
        &self,
        rules: &[AlertRule],
        missed: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Pass> {
        let mut active: HashMap<TenantId, Vec<Sim>> = HashMap::new();
        let mut reads = Reads::new(now);
        let mut pass = Pass::default();
        for rule in rules {
            pass.rules += 1;
            let metric = rule.spec.condition.metric;
            let data = metric.is_streamed() && !metric.is_event();
            if let (true, Some(since), std::collections::hash_map::Entry::Vacant(slot)) =
                (data, missed, active.entry(rule.tenant_id))
            {
                let filter = SimFilter {
                    last_activity_from: Some(since),
                    ..SimFilter::default()
                };
                let sims = self
                    .fleet
                    .list_sims(
                        Scope::tenant(rule.tenant_id),
                        rule.tenant_id,
                        &filter,
                        &Page::<SimSort>::first(SCAN_SIMS),
                    )
                    .await?;
                slot.insert(sims);
            }
            let recent = if data {
                active.get(&rule.tenant_id).map(Vec::as_slice).unwrap_or_default()
            } else {
                &[]
            };
            // Rules measured in days look for new SIMs once a minute, at their open alerts on
            // every pass.
            let scan = !(metric == Metric::NoTrafficAfterActivation || metric.is_forecast())
                || self.slow_due(rule.id);
            // One rule failing (a store refusing a read) does not hold back the others.
            match self.tick_rule(rule, recent, scan, &mut reads, now).await {
                Ok(p) => pass += p,
                Err(e) => {
                    tracing::warn!(rule = %rule.id, error = %e, "alert rule not evaluated on the clock; the next pass will")
                }
            }
        }
        Ok(pass)
    }

    /// Tells of what is due: grouped notifications written, published and sent.
    pub async fn announce(&self, now: DateTime<Utc>) -> Result<usize> {
        let told = self.store.announce_alerts(now, ANNOUNCE_BATCH).await?;
        for n in &told {
            self.notifier
                .publish(FleetEvent::Notification(NotificationCreated::of(n)));
        }
        if !told.is_empty() {
            if let Some(w) = &self.delivery_wakeup {
                w.notify_one();
            }
        }
        Ok(told.len())
    }

    async fn tick_rule(
        &self,
        rule: &AlertRule,
        recent: &[Sim],
        scan: bool,
        reads: &mut Reads,
        now: DateTime<Utc>,
    ) -> Result<Pass> {
        let metric = rule.spec.condition.metric;
        let reopen_since =
            now - chrono::Duration::seconds(i64::from(rule.spec.pacing.group_interval_seconds));
        let current = self.store.current_alerts(rule.id, None, reopen_since).await?;
        let open: Vec<&Alert> = current.iter().filter(|a| a.state.is_open()).collect();
        match metric {
            Metric::Anomaly => return self.anomaly_rule(rule, &keyed(&current), &open, scan, now).await,
            Metric::QuotaExhaustionForecast if scan => {
                return self.quota_forecast_rule(rule, &keyed(&current), &open, now).await
            }
            Metric::QuotaExhaustionForecast => return Ok(Pass::default()),
            _ => {}
        }
        if metric.is_event() {
            let quiet: Vec<(Subject, Observation)> = open
                .iter()
                .filter(|a| event_quiet(rule, a, now))
                .map(|a| (subject_of(a), Observation::Clear { value: a.value }))
                .collect();
            return self.apply_known(rule, &current, quiet, now).await;
        }
        let by_key = keyed(&current);
        let mut pass = Pass::default();
        // The SIMs observed already (offline SIMs are observed page by page, as they are read).
        let mut have: HashSet<SimId> = HashSet::new();
        if metric == Metric::OfflineHours {
            let hours = i64::try_from(rule.spec.condition.threshold.unwrap_or(1)).unwrap_or(1);
            let cutoff = now - chrono::Duration::hours(hours);
            let mut after = None;
            loop {
                let (page, next) = self.quiet_sims(rule, cutoff, after).await?;
                let watched: Vec<&Sim> = page
                    .iter()
                    .filter(|s| s.tenant_id == rule.tenant_id && rule.spec.target.matches(s))
                    .collect();
                have.extend(watched.iter().map(|s| s.id));
                let observed = self.measure(rule, &watched, reads).await?;
                pass += self.apply_keyed(rule, &by_key, observed, now).await?;
                match next {
                    Some(c) => after = Some(c),
                    None => break,
                }
            }
        }
        // The SIMs to observe: those with an open alert, and for clock metrics every SIM the
        // condition may hold for.
        let mut sims: Vec<Sim> = recent.iter().filter(|s| !have.contains(&s.id)).cloned().collect();
        if metric == Metric::NoTrafficAfterActivation && scan {
            // Activated at least that long ago and quiet since: not seen in that time.
            let days = i64::try_from(rule.spec.condition.threshold.unwrap_or(1)).unwrap_or(1);
            let filter = SimFilter {
                states: vec![SimState::Active],
                quiet_since: Some(now - chrono::Duration::days(days)),
                ..SimFilter::default()
            };
            sims.extend(
                self.fleet
                    .list_sims(
                        Scope::tenant(rule.tenant_id),
                        rule.tenant_id,
                        &filter,
                        &Page::<SimSort>::first(SCAN_SIMS),
                    )
                    .await?,
            );
        }
        if let (true, Some(need)) = (metric.is_rated(), Need::of(metric)) {
            // The SIMs whose rated cost is over the threshold (the others only clear).
            if let Some(costs) = reads.rated(self, rule.tenant_id, need).await? {
                let t = rule.spec.condition.threshold.unwrap_or(0);
                let mut over: Vec<Iccid> = costs
                    .cents
                    .iter()
                    .filter(|(_, c)| **c > t)
                    .map(|(i, _)| i.clone())
                    .collect();
                over.sort_unstable();
                if !over.is_empty() {
                    sims.extend(self.fleet.sims_by_iccid(Scope::Platform, &over).await?);
                }
            }
        }
        let listed: HashSet<SimId> = sims.iter().map(|s| s.id).collect();
        let ids: Vec<SimId> = open
            .iter()
            .filter_map(|a| a.sim_id)
            .filter(|id| !have.contains(id) && !listed.contains(id))
            .collect();
        if !ids.is_empty() {
            sims.extend(self.fleet.sims_by_id(Scope::Platform, &ids).await?);
        }
        let watched: Vec<&Sim> = sims
            .iter()
            .filter(|s| s.tenant_id == rule.tenant_id && rule.spec.target.matches(s))
            .collect();
        let mut observed = self.measure(rule, &watched, reads).await?;
        // An open alert whose SIM left the target (or the tenant) clears.
        have.extend(watched.iter().map(|s| s.id));
        for a in &open {
            if !a.sim_id.is_some_and(|id| have.contains(&id)) {
                observed.push((subject_of(a), Observation::Clear { value: a.value }));
            }
        }
        pass += self.apply_keyed(rule, &by_key, observed, now).await?;
        Ok(pass)
    }

    /// A page of the active SIMs of the rule's tenant last seen before `cutoff` (never-seen SIMs
    /// are not offline: they have not been online), after `after`, with the cursor of the next
    /// page when there is one. A pass holds one page at a time: opening an alert for every SIM
    /// of a large fleet at once does not hold them all in memory.
    async fn quiet_sims(
        &self,
        rule: &AlertRule,
        cutoff: DateTime<Utc>,
        after: Option<Cursor>,
    ) -> Result<(Vec<Sim>, Option<Cursor>)> {
        let filter = SimFilter {
            states: vec![SimState::Active],
            last_activity_to: Some(cutoff),
            ..SimFilter::default()
        };
        let page = Page::<SimSort> {
            after,
            ..Page::first(QUIET_PAGE)
        };
        let sims = self
            .fleet
            .list_sims(Scope::tenant(rule.tenant_id), rule.tenant_id, &filter, &page)
            .await?;
        let next = (sims.len() as u64 >= QUIET_PAGE)
            .then(|| sims.last().map(|s| sim_cursor(s, SimSort::default())))
            .flatten();
        Ok((
            sims.into_iter()
                .filter(|s| s.last_activity_at.is_some_and(|at| at < cutoff))
                .collect(),
            next,
        ))
    }

    /// The observation of the rule's level metric for each SIM.
    async fn measure(
        &self,
        rule: &AlertRule,
        sims: &[&Sim],
        reads: &mut Reads,
    ) -> Result<Vec<(Subject, Observation)>> {
        let c = &rule.spec.condition;
        let now = reads.now;
        if c.metric == Metric::OfflineHours {
            return Ok(sims
                .iter()
                .map(|s| {
                    let hours = match (s.state, s.last_activity_at) {
                        (SimState::Active, Some(at)) => u64::try_from((now - at).num_hours()).unwrap_or(0),
                        // Not active: not expected online, so not offline.
                        _ => 0,
                    };
                    (Subject::of(s), c.observe(hours))
                })
                .collect());
        }
        if c.metric == Metric::NoTrafficAfterActivation {
            let activated = reads
                .activations(self.fleet.as_ref(), rule.tenant_id, sims)
                .await?;
            return Ok(sims
                .iter()
                .map(|s| {
                    let since = activated.get(&s.id).filter(|at| {
                        s.state == SimState::Active && s.last_activity_at.is_none_or(|l| l < **at)
                    });
                    let days = since.map_or(0, |at| u64::try_from((now - *at).num_days()).unwrap_or(0));
                    let obs = match (c.observe(days), since) {
                        (Observation::Firing { value, event, .. }, Some(at)) => Observation::Firing {
                            value,
                            event,
                            detail: Some(format!(
                                "activated {} UTC, no traffic since",
                                at.format("%Y-%m-%d %H:%M")
                            )),
                        },
                        (other, _) => other,
                    };
                    (Subject::of(s), obs)
                })
                .collect());
        }
        let Some(need) = Need::of(c.metric).filter(|_| !c.metric.is_event()) else {
            return Ok(Vec::new());
        };
        if sims.is_empty() {
            return Ok(Vec::new());
        }
        if c.metric.is_rated() {
            let costs = reads.rated(self, rule.tenant_id, need).await?;
            let window = if need == Need::DayCost {
                "today"
            } else {
                "in the billing period"
            };
            return Ok(sims
                .iter()
                .map(|s| {
                    let cents = costs
                        .as_ref()
                        .and_then(|k| k.cents.get(&s.iccid).copied())
                        .unwrap_or(0);
                    let obs = match c.observe(cents) {
                        Observation::Firing { value, event, .. } => Observation::Firing {
                            value,
                            event,
                            detail: costs
                                .as_ref()
                                .map(|k| format!("{} {} {window}, as rated", cents_text(value), k.currency)),
                        },
                        other => other,
                    };
                    (Subject::of(s), obs)
                })
                .collect());
        }
        let read = reads.ensure(self, rule.tenant_id, need, sims).await?;
        Ok(match need {
            Need::DailyBytes => over_median(rule, sims, read),
            _ => sims
                .iter()
                .map(|s| (Subject::of(s), c.observe(read.sum(&s.iccid))))
                .collect(),
        })
    }

    /// Steps each observed subject's alert, reading the alerts first.
    async fn apply(
        &self,
        rule: &AlertRule,
        observed: Vec<(Subject, Observation)>,
        now: DateTime<Utc>,
    ) -> Result<Pass> {
        if observed.is_empty() {
            return Ok(Pass::default());
        }
        let keys: Vec<String> = observed.iter().map(|(s, _)| s.key()).collect();
        let reopen_since =
            now - chrono::Duration::seconds(i64::from(rule.spec.pacing.group_interval_seconds));
        // Many subjects: the rule's current alerts read whole, in one read (a rule has few open
        // at a time), rather than a read per thousand subjects.
        let by_key = (keys.len() <= KEYED_READ_MAX).then_some(keys.as_slice());
        let current = self.store.current_alerts(rule.id, by_key, reopen_since).await?;
        self.apply_known(rule, &current, observed, now).await
    }

    async fn apply_known(
        &self,
        rule: &AlertRule,
        current: &[Alert],
        observed: Vec<(Subject, Observation)>,
        now: DateTime<Utc>,
    ) -> Result<Pass> {
        self.apply_keyed(rule, &keyed(current), observed, now).await
    }

    /// Steps each observed subject's alert against the rule's current alerts by subject key.
    async fn apply_keyed(
        &self,
        rule: &AlertRule,
        by_key: &BTreeMap<String, &Alert>,
        observed: Vec<(Subject, Observation)>,
        now: DateTime<Utc>,
    ) -> Result<Pass> {
        if observed.is_empty() {
            return Ok(Pass::default());
        }
        let mut writes: Vec<AlertWrite> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (subject, obs) in &observed {
            let key = subject.key();
            if !seen.insert(key.clone()) {
                continue;
            }
            let cur = by_key
                .get(&key)
                .copied()
                .filter(|a| a.state.is_open() || may_reopen(rule, a, now));
            if let Some(w) = step(rule, subject, cur, obs, now) {
                writes.push(w);
            }
        }
        let applied: HashSet<Uuid> = self.store.write_alerts(&writes).await?.into_iter().collect();
        for w in &writes {
            if !matches!(w, AlertWrite::Delete(_)) && applied.contains(&w.alert().id) {
                self.notifier
                    .publish(FleetEvent::AlertChanged(AlertChanged::of(w.alert())));
            }
        }
        let written = applied.len();
        let due_now = writes
            .iter()
            .any(|w| w.alert().announce_at.is_some_and(|t| t <= now));
        let mut pass = Pass {
            rules: 0,
            observed: observed.len(),
            written,
            notifications: 0,
        };
        if due_now {
            pass.notifications += self.announce(now).await?;
        }
        Ok(pass)
    }
}

fn key_of(a: &Alert) -> String {
    a.subject_key.clone()
}

/// Alerts by their subject's key.
fn keyed(current: &[Alert]) -> BTreeMap<String, &Alert> {
    current.iter().map(|a| (key_of(a), a)).collect()
}

fn subject_of(a: &Alert) -> Subject {
    Subject {
        sim_id: a.sim_id,
        name: a.subject.clone(),
        customer_id: a.customer_id,
        stable_key: Some(a.subject_key.clone()),
    }
}

/// The days a SIM's habits are read from (networks used, its median day).
const HABIT_DAYS: i64 = 30;
/// Days with traffic a SIM needs before its median day means something.
const MIN_HABIT_DAYS: usize = 7;

/// The median of the days with traffic, when there are enough of them.
fn median_day(days: &[u64]) -> Option<u64> {
    let mut used: Vec<u64> = days.iter().copied().filter(|b| *b > 0).collect();
    if used.len() < MIN_HABIT_DAYS {
        return None;
    }
    used.sort_unstable();
    let mid = used.len() / 2;
    Some(if used.len() % 2 == 0 {
        (used[mid - 1] + used[mid]) / 2
    } else {
        used[mid]
    })
}

/// A network as people know it: "Orange (208-01)", its code alone when the reference data does
/// not name it.
fn network_words(net: &MccMnc) -> String {
    match Networks::builtin().get(net) {
        Some(n) if !n.name.is_empty() => format!("{} ({net})", n.name),
        _ => net.to_string(),
    }
}

/// A network's country in words: "France (network Orange (208-01))"; its mobile country code when
/// the reference data names no country for it.
fn country_words(net: &MccMnc) -> String {
    let networks = Networks::builtin();
    let country = networks
        .get(net)
        .filter(|n| !n.country_name.is_empty())
        .or_else(|| {
            networks
                .all()
                .find(|n| n.mcc_mnc.mcc() == net.mcc() && !n.country_name.is_empty())
        })
        .map(|n| n.country_name.as_str());
    match country {
        Some(c) => format!("{c} (network {})", network_words(net)),
        None => format!("country code {} (network {})", net.mcc(), network_words(net)),
    }
}

/// New networks (or countries) of the SIMs seen: those they had no traffic on in the 30 days
/// before today (UTC), when they had traffic in those days at all.
fn new_networks(
    rule: &AlertRule,
    sims: &[&Sim],
    seen: &[(Iccid, MccMnc)],
    read: &Read,
    now: DateTime<Utc>,
) -> Vec<(Subject, Observation)> {
    let today = utc_day(now);
    let country = rule.spec.condition.metric == Metric::NewCountry;
    let mut on: HashMap<&Iccid, Vec<&MccMnc>> = HashMap::new();
    for (i, net) in seen {
        on.entry(i).or_default().push(net);
    }
    let mut out = Vec::new();
    for s in sims {
        let Some(habit) = read.networks.get(&s.iccid) else {
            continue;
        };
        for net in on.get(&s.iccid).map(Vec::as_slice).unwrap_or_default() {
            let net = *net;
            let new = if country {
                !habit.iter().any(|h| h.mcc() == net.mcc())
            } else {
                !habit.contains(net)
            };
            if !new {
                continue;
            }
            let (key, detail) = if country {
                (
                    format!("{}:{}:{}", s.id.0, net.mcc(), today.date_naive()),
                    country_words(net),
                )
            } else {
                (
                    format!("{}:{net}:{}", s.id.0, today.date_naive()),
                    format!("network {}", network_words(net)),
                )
            };
            out.push((
                Subject::of(s),
                Observation::Firing {
                    value: 0,
                    event: Some(key),
                    detail: Some(detail),
                },
            ));
        }
    }
    out
}

/// Today's bytes (UTC) of each SIM against its median day of the 30 before (days with traffic
/// only; fewer than 7 such days: no habit yet, the condition does not hold).
fn over_median(rule: &AlertRule, sims: &[&Sim], read: &Read) -> Vec<(Subject, Observation)> {
    let days = usize::try_from(HABIT_DAYS).unwrap_or(30);
    let factor = rule.spec.condition.threshold.unwrap_or(2);
    let none = vec![0; days + 1];
    sims.iter()
        .map(|s| {
            let row = read.values.get(&s.iccid).unwrap_or(&none);
            let today_bytes = row.get(days).copied().unwrap_or(0);
            let obs = match median_day(row.get(..days).unwrap_or_default()) {
                Some(median) if today_bytes > median.saturating_mul(factor) => Observation::Firing {
                    value: today_bytes,
                    event: None,
                    detail: Some(format!(
                        "{} today, {:.1} × its median day of {}",
                        ioto_domain::notify::bytes_text(today_bytes),
                        today_bytes as f64 / median.max(1) as f64,
                        ioto_domain::notify::bytes_text(median)
                    )),
                },
                _ => Observation::Clear { value: today_bytes },
            };
            (Subject::of(s), obs)
        })
        .collect()
}

/// What one read of the usage store serves: the rules of one tenant whose metrics need the same
/// figures share it within a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Need {
    /// Bytes in the tenant's day so far.
    DayBytes,
    /// Bytes in the tenant's billing period so far.
    PeriodBytes,
    /// Sessions in the current hour.
    HourSessions,
    /// Bytes per UTC day, the 30 days before today and today.
    DailyBytes,
    /// Networks used in the 30 days before today (UTC).
    Networks,
    /// Rated cost today (UTC).
    DayCost,
    /// Rated cost in the retail card's current billing period.
    PeriodCost,
}

impl Need {
    fn of(metric: Metric) -> Option<Self> {
        match metric {
            Metric::DataInDay => Some(Self::DayBytes),
            Metric::DataInPeriod => Some(Self::PeriodBytes),
            Metric::SessionsInHour => Some(Self::HourSessions),
            Metric::UsageOverMedian => Some(Self::DailyBytes),
            Metric::NewNetwork | Metric::NewCountry => Some(Self::Networks),
            Metric::CostInDay => Some(Self::DayCost),
            Metric::CostInPeriod => Some(Self::PeriodCost),
            Metric::NoTrafficAfterActivation
            | Metric::ImeiChanged
            | Metric::OfflineHours
            | Metric::StateChanged
            | Metric::QuotaStage
            | Metric::FirstTraffic
            | Metric::BulkJobFinished
            // Read from the device readings as they are stored (`on_telemetry`).
            | Metric::TelemetryAbove
            | Metric::TelemetryBelow
            // Read from what the forecast pass stored (`evaluate::forecast`).
            | Metric::QuotaExhaustionForecast
            | Metric::Anomaly => None,
        }
    }
}

/// The figures read for one need: per SIM a sum (one value) or a series (days), or the
/// networks it used; `covered` the SIMs asked for so far (a SIM without traffic has no entry).
#[derive(Default)]
struct Read {
    covered: HashSet<Iccid>,
    values: HashMap<Iccid, Vec<u64>>,
    networks: HashMap<Iccid, HashSet<MccMnc>>,
}

impl Read {
    fn sum(&self, iccid: &Iccid) -> u64 {
        self.values
            .get(iccid)
            .and_then(|v| v.first())
            .copied()
            .unwrap_or(0)
    }
}

/// A pass's reads: each tenant's time zone read once, each need read once for all the SIMs the
/// pass's rules asked for together (and again only for SIMs not asked for yet).
struct Reads {
    now: DateTime<Utc>,
    zones: HashMap<TenantId, chrono_tz::Tz>,
    read: HashMap<(TenantId, Need), Read>,
    /// When SIMs were last activated (`None`: never), per SIM asked for.
    activated: HashMap<SimId, Option<DateTime<Utc>>>,
    /// Rated costs as read in this pass.
    rated: HashMap<(TenantId, Need), Option<Arc<RatedCosts>>>,
}

impl Reads {
    fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            zones: HashMap::new(),
            read: HashMap::new(),
            activated: HashMap::new(),
            rated: HashMap::new(),
        }
    }

    /// The rated costs of the need's window, read once per pass.
    async fn rated(
        &mut self,
        ev: &AlertEvaluator,
        tenant: TenantId,
        need: Need,
    ) -> Result<Option<Arc<RatedCosts>>> {
        if let Some(have) = self.rated.get(&(tenant, need)) {
            return Ok(have.clone());
        }
        let costs = ev.rated_costs(tenant, need, self.now).await?;
        self.rated.insert((tenant, need), costs.clone());
        Ok(costs)
    }

    /// When each of these SIMs of `tenant` was last activated (those never activated left out).
    async fn activations(
        &mut self,
        fleet: &dyn Fleet,
        tenant: TenantId,
        sims: &[&Sim],
    ) -> Result<HashMap<SimId, DateTime<Utc>>> {
        let missing: Vec<SimId> = sims
            .iter()
            .map(|s| s.id)
            .filter(|id| !self.activated.contains_key(id))
            .collect();
        if !missing.is_empty() {
            let found = fleet.last_activations(Scope::Platform, tenant, &missing).await?;
            for id in missing {
                self.activated.insert(id, found.get(&id).copied());
            }
        }
        Ok(sims
            .iter()
            .filter_map(|s| self.activated.get(&s.id).copied().flatten().map(|at| (s.id, at)))
            .collect())
    }

    async fn zone(&mut self, fleet: &dyn Fleet, tenant: TenantId) -> Result<chrono_tz::Tz> {
        if let Some(z) = self.zones.get(&tenant) {
            return Ok(*z);
        }
        let zone = fleet.settings(Scope::Platform, tenant).await?.time_zone;
        self.zones.insert(tenant, zone);
        Ok(zone)
    }

    /// The need's figures, covering at least `sims`.
    async fn ensure(
        &mut self,
        ev: &AlertEvaluator,
        tenant: TenantId,
        need: Need,
        sims: &[&Sim],
    ) -> Result<&Read> {
        let missing: Vec<Iccid> = {
            let have = self.read.get(&(tenant, need));
            let mut m: Vec<Iccid> = sims
                .iter()
                .filter(|s| !have.is_some_and(|r| r.covered.contains(&s.iccid)))
                .map(|s| s.iccid.clone())
                .collect();
            m.sort_unstable();
            m.dedup();
            m
        };
        if !missing.is_empty() {
            let now = self.now;
            let zone = match need {
                Need::DayBytes | Need::PeriodBytes => Some(self.zone(ev.fleet.as_ref(), tenant).await?),
                _ => None,
            };
            let fresh = read_need(ev.usage.as_ref(), tenant, need, zone, missing.clone(), now).await?;
            let entry = self.read.entry((tenant, need)).or_default();
            entry.covered.extend(missing);
            entry.values.extend(fresh.values);
            entry.networks.extend(fresh.networks);
        }
        Ok(self.read.entry((tenant, need)).or_default())
    }
}

/// One read of the usage store for `need`, for these SIMs.
async fn read_need(
    usage: &dyn UsageReader,
    tenant: TenantId,
    need: Need,
    zone: Option<chrono_tz::Tz>,
    iccids: Vec<Iccid>,
    now: DateTime<Utc>,
) -> Result<Read> {
    let mut out = Read::default();
    let today = utc_day(now);
    match need {
        Need::DayBytes | Need::PeriodBytes => {
            let zone = zone.unwrap_or(chrono_tz::UTC);
            let (start, end) = if need == Need::DayBytes {
                day_of(zone, now)
            } else {
                period_of(zone, now)
            };
            for (i, v) in hourly_bytes(usage, tenant, iccids, start, end).await? {
                out.values.insert(i, vec![v]);
            }
        }
        Need::HourSessions => {
            let hour = now - chrono::Duration::seconds(now.timestamp().rem_euclid(3600));
            let query = by_sim(
                Cube::SessionsHourly,
                vec![hour, hour + chrono::Duration::hours(1)],
                iccids,
                false,
            );
            for r in usage.cube_rows(tenant, &query).await? {
                if let Some(i) = r.iccid {
                    let e = out.values.entry(i).or_insert_with(|| vec![0]);
                    e[0] += r.sessions;
                }
            }
        }
        Need::DailyBytes => {
            let days = usize::try_from(HABIT_DAYS).unwrap_or(30);
            let bounds: Vec<DateTime<Utc>> = (0..=HABIT_DAYS + 1)
                .map(|d| today - chrono::Duration::days(HABIT_DAYS) + chrono::Duration::days(d))
                .collect();
            let query = by_sim(Cube::UsageDaily, bounds, iccids, false);
            for r in usage.cube_rows(tenant, &query).await? {
                if let Some(i) = r.iccid {
                    let row = out.values.entry(i).or_insert_with(|| vec![0; days + 1]);
                    if let Some(v) = row.get_mut(r.bucket) {
                        *v += r.bytes_in + r.bytes_out;
                    }
                }
            }
        }
        // Costs are read for the whole tenant at once (`AlertEvaluator::rated_costs`).
        Need::DayCost | Need::PeriodCost => {}
        Need::Networks => {
            let query = by_sim(
                Cube::UsageDaily,
                vec![today - chrono::Duration::days(HABIT_DAYS), today],
                iccids,
                true,
            );
            for r in usage.cube_rows(tenant, &query).await? {
                if let (Some(i), Some(n)) = (r.iccid, r.mcc_mnc) {
                    out.networks.entry(i).or_default().insert(n);
                }
            }
        }
    }
    Ok(out)
}

/// Midnight (UTC) of the day of `at`.
fn utc_day(at: DateTime<Utc>) -> DateTime<Utc> {
    day_of(chrono_tz::UTC, at).0
}

/// A bulk job's end as an alert's subject and occurrence.
fn bulk_job(n: &NotificationCreated) -> Option<(Subject, Observation)> {
    let j = n.payload.get("bulkJob")?;
    let id = j.get("id")?.as_str()?;
    let name = match j.get("fileName").and_then(|f| f.as_str()) {
        Some(f) => format!("bulk job '{f}'"),
        None => format!("bulk job {}", id.get(..8).unwrap_or(id)),
    };
    let subject = Subject {
        sim_id: None,
        name,
        customer_id: None,
        stable_key: None,
    };
    let obs = Observation::Firing {
        value: j.get("failed").and_then(serde_json::Value::as_u64).unwrap_or(0),
        event: Some(format!("job:{id}")),
        detail: j.get("summary").and_then(|s| s.as_str()).map(str::to_owned),
    };
    Some((subject, obs))
}

/// The tenant's calendar day around `at`.
pub fn day_of(zone: chrono_tz::Tz, at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    use chrono::{Duration as D, TimeZone};
    let local = at.with_timezone(&zone).date_naive();
    let start_of = |d: chrono::NaiveDate| {
        let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
        zone.from_local_datetime(&midnight)
            .earliest()
            // A day that starts in a gap (no local midnight): its first hour.
            .unwrap_or_else(|| zone.from_utc_datetime(&midnight))
            .with_timezone(&Utc)
    };
    let start = start_of(local);
    let end = start_of(local + D::days(1));
    // The hourly cube is floored to hours: a zone off by 30 or 45 minutes reads from the hour
    // before its midnight (as quota periods do).
    let floor = |t: DateTime<Utc>| t - D::seconds(t.timestamp().rem_euclid(3600));
    (floor(start), floor(end))
}

/// A quota-stage notification's SIM, stage and the key naming that occurrence.
fn quota_stage(n: &NotificationCreated) -> Option<(Iccid, u64, String)> {
    let q = n.payload.get("quota")?;
    let iccid = Iccid::parse(q.get("iccid")?.as_str()?).ok()?;
    let stage = q.get("stage")?.as_u64()?;
    let key = format!(
        "{}:{}:{stage}",
        q.get("id")?.as_str()?,
        q.get("periodStart")?.as_str().unwrap_or_default()
    );
    Some((iccid, stage, key))
}
