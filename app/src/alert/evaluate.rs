//! Evaluating alert rules: from the stream (SIMs that carried traffic, state changes, quota
//! stages) and on the clock (SIMs gone quiet, pending durations passing, alerts to resolve and
//! to announce). Every pass reads the alerts it may change and writes them with a version check,
//! so two servers evaluating the same thing, or an event delivered twice, change an alert once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ioto_domain::alert::lifecycle::{event_quiet, may_reopen, step, Alert, AlertWrite, Subject};
use ioto_domain::alert::{AlertRule, Metric, Observation};
use ioto_domain::analytics::{Cube, CubeFilter, CubeGroup, CubeQuery};
use ioto_domain::events::{AlertChanged, FleetEvent, NotificationCreated};
use ioto_domain::fleet::query::{Page, SimFilter, SimSort};
use ioto_domain::fleet::{Sim, SimState};
use ioto_domain::identifiers::{Iccid, MccMnc};
use ioto_domain::notify::NotificationKind;
use ioto_domain::ports::{AlertStore, Fleet, FleetNotifier, UsageReader};
use ioto_domain::quota::period_of;

use crate::quota::hourly_bytes;
use ioto_domain::{Result, Scope, SimId, TenantId};

/// Most alerts one announcing pass tells of.
const ANNOUNCE_BATCH: u64 = 1_000;
/// Most SIMs one clock pass looks at per rule.
pub const SCAN_SIMS: u64 = 200_000;
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
    /// When the last clock pass ran (data rules look again at SIMs active since).
    last_tick: Arc<Mutex<Option<DateTime<Utc>>>>,
}

/// How far back a clock pass looks for SIMs with traffic, beyond its last run: a SIM's activity
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
            last_tick: Arc::new(Mutex::new(None)),
        }
    }

    /// Tells subscribers that an alert changed (acknowledged).
    pub fn changed(&self, alert: &Alert) {
        self.notifier
            .publish(FleetEvent::AlertChanged(AlertChanged::of(alert)));
    }

    /// Forgets the copy of the rules (a rule changed here).
    pub fn rules_changed(&self) {
        *self
            .rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
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

    /// Evaluates the stream's rules for SIMs that carried traffic, each with the network it
    /// was seen on: data used, sessions, usage against the SIM's habit, new networks and
    /// countries.
    pub async fn on_traffic(&self, seen: &[(Iccid, MccMnc)], now: DateTime<Utc>) -> Result<Pass> {
        let rules = self.rules().await?;
        let stream: Vec<&AlertRule> = rules
            .iter()
            .filter(|r| r.spec.condition.metric.is_streamed())
            .collect();
        if stream.is_empty() || seen.is_empty() {
            return Ok(Pass::default());
        }
        let mut iccids: Vec<Iccid> = seen.iter().map(|(i, _)| i.clone()).collect();
        iccids.sort_unstable();
        iccids.dedup();
        let sims = self.fleet.sims_by_iccid(Scope::Platform, &iccids).await?;
        let mut pass = Pass::default();
        for rule in stream {
            let watched: Vec<&Sim> = sims
                .iter()
                .filter(|s| s.tenant_id == rule.tenant_id && rule.spec.target.matches(s))
                .collect();
            if watched.is_empty() {
                continue;
            }
            let observed = match rule.spec.condition.metric {
                Metric::NewNetwork | Metric::NewCountry => {
                    self.new_networks(rule, &watched, seen, now).await?
                }
                _ => self.measure(rule, &watched, now).await?,
            };
            pass += self.apply(rule, observed, now).await?;
        }
        Ok(pass)
    }

    /// Evaluates the first-traffic rules for SIMs Ioto saw for the first time.
    pub async fn on_first_traffic(&self, iccids: &[Iccid], now: DateTime<Utc>) -> Result<Pass> {
        let rules = self.rules().await?;
        let first: Vec<&AlertRule> = rules
            .iter()
            .filter(|r| r.spec.condition.metric == Metric::FirstTraffic)
            .collect();
        if first.is_empty() || iccids.is_empty() {
            return Ok(Pass::default());
        }
        let sims = self.fleet.sims_by_iccid(Scope::Platform, iccids).await?;
        let mut pass = Pass::default();
        for rule in first {
            let observed: Vec<(Subject, Observation)> = sims
                .iter()
                .filter(|s| s.tenant_id == rule.tenant_id && rule.spec.target.matches(s))
                .map(|s| {
                    let obs = Observation::Firing {
                        value: 0,
                        event: Some(format!("first:{}", s.id.0)),
                        detail: s.last_network.as_ref().map(|n| format!("on network {n}")),
                    };
                    (Subject::of(s), obs)
                })
                .collect();
            pass += self.apply(rule, observed, now).await?;
        }
        Ok(pass)
    }

    /// Evaluates rules on what the fleet tells: a SIM's state changed, a quota reached a stage,
    /// a bulk job finished.
    pub async fn on_event(&self, event: &FleetEvent, now: DateTime<Utc>) -> Result<Pass> {
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

    /// New networks (or countries) of the SIMs seen: those they had no traffic on in the 30
    /// days before today (UTC), when they had traffic in those days at all.
    async fn new_networks(
        &self,
        rule: &AlertRule,
        sims: &[&Sim],
        seen: &[(Iccid, MccMnc)],
        now: DateTime<Utc>,
    ) -> Result<Vec<(Subject, Observation)>> {
        let today = utc_day(now);
        let query = CubeQuery {
            cube: Cube::UsageDaily,
            bounds: vec![today - chrono::Duration::days(HABIT_DAYS), today],
            group: CubeGroup {
                sim: true,
                network: true,
                ..CubeGroup::default()
            },
            filter: CubeFilter {
                iccids: Some(sims.iter().map(|s| s.iccid.clone()).collect()),
                ..CubeFilter::default()
            },
            runs: Vec::new(),
            count_sims: false,
        };
        let mut used: HashMap<Iccid, HashSet<MccMnc>> = HashMap::new();
        for r in self.usage.cube_rows(rule.tenant_id, &query).await? {
            if let (Some(i), Some(n)) = (r.iccid, r.mcc_mnc) {
                used.entry(i).or_default().insert(n);
            }
        }
        let country = rule.spec.condition.metric == Metric::NewCountry;
        let mut out = Vec::new();
        for s in sims {
            let Some(habit) = used.get(&s.iccid) else {
                continue;
            };
            for (_, net) in seen.iter().filter(|(i, _)| *i == s.iccid) {
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
                        format!("country code {} (network {net})", net.mcc()),
                    )
                } else {
                    (
                        format!("{}:{net}:{}", s.id.0, today.date_naive()),
                        format!("network {net}"),
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
        Ok(out)
    }

    /// The clock's pass: SIMs gone quiet, SIMs with traffic since the last pass (what the
    /// evaluation after a counted batch missed: a usage store slow to show the count, a server
    /// stopped in between), open alerts evaluated again (pending durations passing, conditions
    /// clearing, events gone quiet), then what is due announced.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Pass> {
        let rules = self.store.enabled_alert_rules().await?;
        let since = self
            .last_tick
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace(now)
            .unwrap_or(now)
            - ACTIVE_OVERLAP;
        let mut active: HashMap<TenantId, Vec<Sim>> = HashMap::new();
        let mut pass = Pass::default();
        for rule in &rules {
            pass.rules += 1;
            let metric = rule.spec.condition.metric;
            let data = metric.is_streamed() && !metric.is_event();
            if data && !active.contains_key(&rule.tenant_id) {
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
                active.insert(rule.tenant_id, sims);
            }
            let recent = if data {
                active.get(&rule.tenant_id).map(Vec::as_slice).unwrap_or_default()
            } else {
                &[]
            };
            pass += self.tick_rule(rule, recent, now).await?;
        }
        pass.notifications += self.announce(now).await?;
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

    async fn tick_rule(&self, rule: &AlertRule, recent: &[Sim], now: DateTime<Utc>) -> Result<Pass> {
        let metric = rule.spec.condition.metric;
        let reopen_since =
            now - chrono::Duration::seconds(i64::from(rule.spec.pacing.group_interval_seconds));
        let current = self.store.current_alerts(rule.id, None, reopen_since).await?;
        let open: Vec<&Alert> = current.iter().filter(|a| a.state.is_open()).collect();
        if metric.is_event() {
            let quiet: Vec<(Subject, Observation)> = open
                .iter()
                .filter(|a| event_quiet(rule, a, now))
                .map(|a| (subject_of(a), Observation::Clear { value: a.value }))
                .collect();
            return self.apply_known(rule, &current, quiet, now).await;
        }
        // The SIMs to observe: those with an open alert, and for clock metrics every SIM the
        // condition may hold for.
        let mut sims: Vec<Sim> = recent.to_vec();
        if metric == Metric::OfflineHours {
            let hours = i64::try_from(rule.spec.condition.threshold.unwrap_or(1)).unwrap_or(1);
            sims.extend(
                self.quiet_sims(rule, now - chrono::Duration::hours(hours))
                    .await?,
            );
        }
        let have: HashSet<SimId> = sims.iter().map(|s| s.id).collect();
        let ids: Vec<SimId> = open
            .iter()
            .filter_map(|a| a.sim_id)
            .filter(|id| !have.contains(id))
            .collect();
        if !ids.is_empty() {
            sims.extend(self.fleet.sims_by_id(Scope::Platform, &ids).await?);
        }
        let watched: Vec<&Sim> = sims
            .iter()
            .filter(|s| s.tenant_id == rule.tenant_id && rule.spec.target.matches(s))
            .collect();
        let mut observed = self.measure(rule, &watched, now).await?;
        // An open alert whose SIM left the target (or the tenant) clears.
        let kept: HashSet<SimId> = watched.iter().map(|s| s.id).collect();
        for a in &open {
            if !a.sim_id.is_some_and(|id| kept.contains(&id)) {
                observed.push((subject_of(a), Observation::Clear { value: a.value }));
            }
        }
        self.apply_known(rule, &current, observed, now).await
    }

    /// Active SIMs of the rule's tenant last seen before `cutoff` (never-seen SIMs are not
    /// offline: they have not been online).
    async fn quiet_sims(&self, rule: &AlertRule, cutoff: DateTime<Utc>) -> Result<Vec<Sim>> {
        let filter = SimFilter {
            states: vec![SimState::Active],
            last_activity_to: Some(cutoff),
            ..SimFilter::default()
        };
        let page = Page::<SimSort>::first(SCAN_SIMS);
        let sims = self
            .fleet
            .list_sims(Scope::tenant(rule.tenant_id), rule.tenant_id, &filter, &page)
            .await?;
        Ok(sims
            .into_iter()
            .filter(|s| s.last_activity_at.is_some_and(|at| at < cutoff))
            .collect())
    }

    /// The observation of the rule's level metric for each SIM.
    async fn measure(
        &self,
        rule: &AlertRule,
        sims: &[&Sim],
        now: DateTime<Utc>,
    ) -> Result<Vec<(Subject, Observation)>> {
        let c = &rule.spec.condition;
        match c.metric {
            Metric::DataInDay | Metric::DataInPeriod => {
                if sims.is_empty() {
                    return Ok(Vec::new());
                }
                let zone = self
                    .fleet
                    .settings(Scope::Platform, rule.tenant_id)
                    .await?
                    .time_zone;
                let (start, end) = if c.metric == Metric::DataInDay {
                    day_of(zone, now)
                } else {
                    period_of(zone, now)
                };
                let iccids = sims.iter().map(|s| s.iccid.clone()).collect();
                let used = hourly_bytes(self.usage.as_ref(), rule.tenant_id, iccids, start, end).await?;
                Ok(sims
                    .iter()
                    .map(|s| {
                        let v = used.get(&s.iccid).copied().unwrap_or(0);
                        (Subject::of(s), c.observe(v))
                    })
                    .collect())
            }
            Metric::OfflineHours => Ok(sims
                .iter()
                .map(|s| {
                    let hours = match (s.state, s.last_activity_at) {
                        (SimState::Active, Some(at)) => u64::try_from((now - at).num_hours()).unwrap_or(0),
                        // Not active: not expected online, so not offline.
                        _ => 0,
                    };
                    (Subject::of(s), c.observe(hours))
                })
                .collect()),
            Metric::SessionsInHour => {
                if sims.is_empty() {
                    return Ok(Vec::new());
                }
                let hour = now - chrono::Duration::seconds(now.timestamp().rem_euclid(3600));
                let query = by_sim(
                    Cube::SessionsHourly,
                    vec![hour, hour + chrono::Duration::hours(1)],
                    sims,
                );
                let mut count: HashMap<Iccid, u64> = HashMap::new();
                for r in self.usage.cube_rows(rule.tenant_id, &query).await? {
                    if let Some(i) = r.iccid {
                        *count.entry(i).or_default() += r.sessions;
                    }
                }
                Ok(sims
                    .iter()
                    .map(|s| {
                        (
                            Subject::of(s),
                            c.observe(count.get(&s.iccid).copied().unwrap_or(0)),
                        )
                    })
                    .collect())
            }
            Metric::UsageOverMedian => self.over_median(rule, sims, now).await,
            Metric::StateChanged
            | Metric::QuotaStage
            | Metric::NewNetwork
            | Metric::NewCountry
            | Metric::FirstTraffic
            | Metric::BulkJobFinished => Ok(Vec::new()),
        }
    }

    /// Today's bytes (UTC) of each SIM against its median day of the 30 before (days with
    /// traffic only; fewer than 7 such days: no habit yet, the condition does not hold).
    async fn over_median(
        &self,
        rule: &AlertRule,
        sims: &[&Sim],
        now: DateTime<Utc>,
    ) -> Result<Vec<(Subject, Observation)>> {
        if sims.is_empty() {
            return Ok(Vec::new());
        }
        let today = utc_day(now);
        let days = usize::try_from(HABIT_DAYS).unwrap_or(30);
        let bounds: Vec<DateTime<Utc>> = (0..=HABIT_DAYS + 1)
            .map(|d| today - chrono::Duration::days(HABIT_DAYS) + chrono::Duration::days(d))
            .collect();
        let query = by_sim(Cube::UsageDaily, bounds, sims);
        let mut per_day: HashMap<Iccid, Vec<u64>> = HashMap::new();
        for r in self.usage.cube_rows(rule.tenant_id, &query).await? {
            if let Some(i) = r.iccid {
                let row = per_day.entry(i).or_insert_with(|| vec![0; days + 1]);
                if let Some(v) = row.get_mut(r.bucket) {
                    *v += r.bytes_in + r.bytes_out;
                }
            }
        }
        let factor = rule.spec.condition.threshold.unwrap_or(2);
        Ok(sims
            .iter()
            .map(|s| {
                let row = per_day
                    .get(&s.iccid)
                    .cloned()
                    .unwrap_or_else(|| vec![0; days + 1]);
                let today_bytes = row.get(days).copied().unwrap_or(0);
                let obs = match median_day(&row[..days]) {
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
            .collect())
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
        let current = self
            .store
            .current_alerts(rule.id, Some(&keys), reopen_since)
            .await?;
        self.apply_known(rule, &current, observed, now).await
    }

    async fn apply_known(
        &self,
        rule: &AlertRule,
        current: &[Alert],
        observed: Vec<(Subject, Observation)>,
        now: DateTime<Utc>,
    ) -> Result<Pass> {
        let by_key: BTreeMap<String, &Alert> = current.iter().map(|a| (key_of(a), a)).collect();
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
        let applied = self.store.write_alerts(&writes).await?;
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
    subject_of(a).key()
}

fn subject_of(a: &Alert) -> Subject {
    Subject {
        sim_id: a.sim_id,
        name: a.subject.clone(),
        customer_id: a.customer_id,
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

/// A query of `cube` per SIM over `bounds`, for these SIMs.
fn by_sim(cube: Cube, bounds: Vec<DateTime<Utc>>, sims: &[&Sim]) -> CubeQuery {
    CubeQuery {
        cube,
        bounds,
        group: CubeGroup {
            sim: true,
            ..CubeGroup::default()
        },
        filter: CubeFilter {
            iccids: Some(sims.iter().map(|s| s.iccid.clone()).collect()),
            ..CubeFilter::default()
        },
        runs: Vec::new(),
        count_sims: false,
    }
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
