//! The rules on what the forecast pass stores, evaluated on the clock once a minute:
//!
//! - `QUOTA_EXHAUSTION_FORECAST` (a level): a SIM whose latest forecast has its data quota run
//!   out within the rule's days fires, with the day in words; it clears when a later forecast no
//!   longer says so (a new period, a larger limit, usage slowing), or the SIM has no forecast.
//!   A quota pool the rule's target watches (every pool for every SIM, a sub-customer's pools
//!   for that sub-customer) fires and clears alike on its forecast against the pool's limit; its
//!   alert is keyed by the pool's id (renamed, it keeps its alert) and clears when the pool is
//!   deleted.
//! - `ANOMALY` (an event): an anomaly found (of the rule's kinds, at least its severity), not
//!   dismissed, fires on its SIM, the anomaly's sentence as the detail; a newer anomaly of the
//!   same SIM counts as a repeat. Its alert resolves after the rule's quiet time, as every
//!   event's, or at once when people dismiss the anomaly. Anomalies are heard of for the quiet
//!   time after they were found: one found while no server evaluated for longer is passed over.
//!
//! ```text
//! once a minute per rule ─► stored forecasts exhausting by today + N days (and those of SIMs
//!   with an open alert) ─► their SIMs (one read) ─► target ─► firing / clear ─► step
//!   └─► (a target of every SIM or a sub-customer) the tenant's pools, with their forecasts
//!       exhausting by then (one read) ─► target ─► firing / clear ─► step
//! once a minute per rule ─► the tenant's anomalies of the last days ─► newest admitted per SIM
//!   found within the quiet time ─► target ─► firing; dismissed or quiet ─► clear ─► step
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use ioto_domain::alert::lifecycle::{event_quiet, Alert, Subject};
use ioto_domain::alert::{AlertRule, AnomalyCondition, Condition, Observation};
use ioto_domain::forecast::{kind_words, AnomalyRecord, AnomalyStatus, ForecastQuota, ForecastSubject};
use ioto_domain::notify::bytes_text;
use ioto_domain::{Result, Scope, SimId};

use super::{key_of, subject_of, AlertEvaluator, Pass, SCAN_SIMS};

/// Whose quota a forecast was read against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuotaOf {
    Sim,
    Pool,
}

/// Most anomalies one evaluation of an `ANOMALY` rule reads (the newest days first).
const ANOMALY_READ: u64 = 10_000;

/// A day in words: "14 December".
fn day_words(d: NaiveDate) -> String {
    d.format("%-d %B").to_string()
}

/// What a forecast says of a quota running out, in words.
pub(crate) fn exhaustion_text(q: &ForecastQuota, likely: NaiveDate, of: QuotaOf) -> String {
    let range = match (q.exhaustion_earliest, q.exhaustion_latest) {
        (Some(a), Some(b)) if a != b && a.month() == b.month() => {
            format!(" (between {} and {})", a.day(), day_words(b))
        }
        (Some(a), Some(b)) if a != b => format!(" (between {} and {})", day_words(a), day_words(b)),
        (Some(a), None) if a != likely => format!(" (from {} on)", day_words(a)),
        _ => String::new(),
    };
    let quota = match of {
        QuotaOf::Sim => format!("its {} quota", bytes_text(q.limit_bytes)),
        QuotaOf::Pool => format!("the pool's {} limit", bytes_text(q.limit_bytes)),
    };
    format!(
        "{quota} runs out around {}{range} by the forecast; {} used so far this period",
        day_words(likely),
        bytes_text(q.used_bytes)
    )
}

/// What a quota's forecast is to a rule: firing, told in words, when it runs the quota out by
/// `by` and within the rule's days of `today`; clear otherwise (no forecast, or the quota lasts).
fn exhaustion_observed(
    c: &Condition,
    q: Option<&ForecastQuota>,
    today: NaiveDate,
    by: NaiveDate,
    of: QuotaOf,
) -> Observation {
    let running_out = q.and_then(|q| q.exhaustion_likely.filter(|d| *d <= by).map(|d| (q, d)));
    match running_out {
        Some((q, likely)) => {
            let days = u64::try_from((likely - today).num_days()).unwrap_or(0);
            match c.observe(days) {
                Observation::Firing { value, event, .. } => Observation::Firing {
                    value,
                    event,
                    detail: Some(exhaustion_text(q, likely, of)),
                },
                other => other,
            }
        }
        None => Observation::Clear {
            value: c.threshold.unwrap_or(0) + 1,
        },
    }
}

/// An anomaly as an alert tells it: "Usage spike on 28 November: 500 MB today, 10 × …".
pub(crate) fn anomaly_text(a: &AnomalyRecord) -> String {
    let kind = kind_words(a.anomaly.kind);
    let mut words = kind.chars();
    let kind = match words.next() {
        Some(first) => format!("{}{}", first.to_uppercase(), words.as_str()),
        None => String::new(),
    };
    format!(
        "{kind} on {} ({} severity): {}",
        day_words(a.anomaly.day),
        a.anomaly.severity.as_str().to_lowercase(),
        a.anomaly.sentence
    )
}

impl AlertEvaluator {
    /// A `QUOTA_EXHAUSTION_FORECAST` rule: the SIMs whose forecast runs their quota out within
    /// the rule's days fire, and the pools it watches whose forecast runs their limit out; those
    /// with an open alert whose forecast says otherwise clear, as do those that left the target
    /// (a pool deleted, too).
    pub(super) async fn quota_forecast_rule(
        &self,
        rule: &AlertRule,
        by_key: &BTreeMap<String, &Alert>,
        open: &[&Alert],
        now: DateTime<Utc>,
    ) -> Result<Pass> {
        let c = &rule.spec.condition;
        let today = now.date_naive();
        let by = today + Days::new(c.threshold.unwrap_or(1));
        let alerted: Vec<SimId> = open.iter().filter_map(|a| a.sim_id).collect();
        let forecasts = self
            .store
            .sim_quota_forecasts(rule.tenant_id, by, &alerted, SCAN_SIMS)
            .await?;
        let mut ids: Vec<SimId> = forecasts
            .iter()
            .filter_map(|f| match f.subject {
                ForecastSubject::Sim(s) => Some(s),
                _ => None,
            })
            .chain(alerted.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let sims = if ids.is_empty() {
            Vec::new()
        } else {
            self.fleet.sims_by_id(Scope::Platform, &ids).await?
        };
        let quota_of: HashMap<SimId, &ForecastQuota> = forecasts
            .iter()
            .filter_map(|f| match (f.subject, &f.quota) {
                (ForecastSubject::Sim(s), Some(q)) => Some((s, q)),
                _ => None,
            })
            .collect();
        let mut observed: Vec<(Subject, Observation)> = Vec::new();
        // The keys of the subjects observed.
        let mut seen: HashSet<String> = HashSet::new();
        for s in sims
            .iter()
            .filter(|s| s.tenant_id == rule.tenant_id && rule.spec.target.matches(s))
        {
            let q = quota_of.get(&s.id).copied();
            let subject = Subject::of(s);
            seen.insert(subject.key());
            observed.push((subject, exhaustion_observed(c, q, today, by, QuotaOf::Sim)));
        }
        // Every pool the target watches (a tenant has few), so that those with an open alert
        // are found again.
        if rule.spec.target.watches_pools() {
            for p in self.store.pool_quota_forecasts(rule.tenant_id, by).await? {
                if p.pool.tenant_id != rule.tenant_id || !rule.spec.target.watches_pool(&p.pool) {
                    continue;
                }
                let q = p.running_out.as_ref().and_then(|f| f.quota.as_ref());
                let subject = Subject::pool(&p.pool);
                seen.insert(subject.key());
                observed.push((subject, exhaustion_observed(c, q, today, by, QuotaOf::Pool)));
            }
        }
        // An open alert whose SIM or pool left the target (or the tenant, or is gone) clears.
        for a in open {
            if !seen.contains(&key_of(a)) {
                observed.push((subject_of(a), Observation::Clear { value: a.value }));
            }
        }
        self.apply_keyed(rule, by_key, observed, now).await
    }

    /// An `ANOMALY` rule: each SIM's newest admitted anomaly found within the rule's quiet time
    /// fires (a newer one repeats); an alert whose anomaly was dismissed, or gone quiet,
    /// resolves.
    pub(super) async fn anomaly_rule(
        &self,
        rule: &AlertRule,
        by_key: &BTreeMap<String, &Alert>,
        open: &[&Alert],
        scan: bool,
        now: DateTime<Utc>,
    ) -> Result<Pass> {
        let quiet_after = chrono::Duration::seconds(i64::from(rule.spec.pacing.resolve_after_seconds));
        let mut firing: HashMap<String, (Subject, Observation, String)> = HashMap::new();
        let mut dismissed: HashSet<String> = HashSet::new();
        if scan {
            let admits = rule
                .spec
                .condition
                .anomaly
                .clone()
                .unwrap_or_else(AnomalyCondition::any);
            // The days an anomaly found within the quiet time may be of (found on the day
            // after it, at the latest).
            let from = (now - quiet_after).date_naive() - Days::new(1);
            let found = self
                .store
                .anomalies_from(rule.tenant_id, from, ANOMALY_READ)
                .await?;
            for a in &found {
                if a.status == AnomalyStatus::Dismissed {
                    dismissed.insert(event_key(a));
                }
            }
            let mut newest: HashMap<SimId, &AnomalyRecord> = HashMap::new();
            for a in found.iter().filter(|a| {
                a.status != AnomalyStatus::Dismissed
                    && a.created_at > now - quiet_after
                    && admits.admits(a.anomaly.kind, a.anomaly.severity)
            }) {
                let e = newest.entry(a.sim_id).or_insert(a);
                if (a.created_at, a.anomaly.score) > (e.created_at, e.anomaly.score) {
                    *e = a;
                }
            }
            let mut ids: Vec<SimId> = newest.keys().copied().collect();
            ids.sort_unstable();
            if !ids.is_empty() {
                for s in self.fleet.sims_by_id(Scope::Platform, &ids).await? {
                    if s.tenant_id != rule.tenant_id || !rule.spec.target.matches(&s) {
                        continue;
                    }
                    let Some(a) = newest.get(&s.id) else {
                        continue;
                    };
                    let key = event_key(a);
                    let subject = Subject::of(&s);
                    let score = a.anomaly.score;
                    let obs = Observation::Firing {
                        value: if score.is_finite() && score > 0.0 {
                            score.round() as u64
                        } else {
                            0
                        },
                        event: Some(key.clone()),
                        detail: Some(anomaly_text(a)),
                    };
                    firing.insert(subject.key(), (subject, obs, key));
                }
            }
        }
        let mut observed: Vec<(Subject, Observation)> = Vec::new();
        // An alert resolves when its anomaly was dismissed or it went quiet — unless a newer
        // anomaly of its SIM repeats it.
        for a in open {
            let newer = firing
                .get(&key_of(a))
                .is_some_and(|(_, _, key)| a.event_key.as_deref() != Some(key.as_str()));
            let dismissed_now = a.event_key.as_ref().is_some_and(|k| dismissed.contains(k));
            if !newer && (dismissed_now || event_quiet(rule, a, now)) {
                firing.remove(&key_of(a));
                observed.push((subject_of(a), Observation::Clear { value: a.value }));
            }
        }
        observed.extend(firing.into_values().map(|(s, o, _)| (s, o)));
        self.apply_keyed(rule, by_key, observed, now).await
    }
}

/// The occurrence an anomaly is to an alert.
fn event_key(a: &AnomalyRecord) -> String {
    format!("anomaly:{}", a.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_running_out_is_told_in_words() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let q = ForecastQuota {
            limit_bytes: 500_000_000,
            used_bytes: 320_000_000,
            period_end: d(12, 31),
            exhaustion_likely: Some(d(12, 14)),
            exhaustion_earliest: Some(d(12, 11)),
            exhaustion_latest: Some(d(12, 19)),
            projected_period_bytes: 900_000_000,
            projected_period_bytes_hi80: 1_000_000_000,
        };
        assert_eq!(
            exhaustion_text(&q, d(12, 14), QuotaOf::Sim),
            "its 500 MB quota runs out around 14 December (between 11 and 19 December) by the \
             forecast; 320 MB used so far this period"
        );
        assert_eq!(
            exhaustion_text(&q, d(12, 14), QuotaOf::Pool),
            "the pool's 500 MB limit runs out around 14 December (between 11 and 19 December) \
             by the forecast; 320 MB used so far this period"
        );
    }
}
