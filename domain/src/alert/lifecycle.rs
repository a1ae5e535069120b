//! An alert's life: one open alert per rule and SIM, from the condition first holding (PENDING,
//! while a pending duration runs) to FIRING and RESOLVED; and how alerts become notifications.
//!
//! ```text
//!             firing, pending 0 ───────────────┐
//!   (none) ── firing ──► PENDING ── held for ──► FIRING ── clear ──► RESOLVED
//!                          │ clear: dropped      ▲   repeats update it    │
//!                          ▼                     └── fires again within ──┘
//!                                                    the group interval: reopened (a flap)
//! ```
//!
//! Notifications are grouped per rule: the first after the group wait, then at most one per
//! group interval, each telling of every alert that fired, still fires (a reminder) or resolved
//! since. A resolved alert is announced only once it stayed resolved for the group interval; if
//! it fires again sooner it reopens without a word. So a flapping condition tells its people
//! twice per incident: once that it fires, once that it resolved.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{AlertRule, Observation, Silence};
use crate::fleet::Sim;
use crate::notify::{Audience, Notification, NotificationKind};
use crate::quota_pool::QuotaPool;
use crate::{CustomerId, Error, Result, SimId, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertState {
    /// The condition holds; the pending duration has not passed yet.
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub const ALL: [AlertState; 3] = [Self::Pending, Self::Firing, Self::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Firing => "FIRING",
            Self::Resolved => "RESOLVED",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| Error::invalid("state", format!("'{s}' is not an alert state")))
    }

    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Firing)
    }
}

/// What people were last told of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Announced {
    Nothing,
    Firing,
    Resolved,
}

impl Announced {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nothing => "NONE",
            Self::Firing => "FIRING",
            Self::Resolved => "RESOLVED",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "NONE" => Ok(Self::Nothing),
            "FIRING" => Ok(Self::Firing),
            "RESOLVED" => Ok(Self::Resolved),
            _ => Err(Error::Internal(format!(
                "stored alert: '{s}' is not an announcement"
            ))),
        }
    }
}

/// Who acknowledged an alert, when, and what they said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    pub by: String,
    pub at: DateTime<Utc>,
    pub comment: Option<String>,
}

/// One alert: a rule's condition on one SIM, over one incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub rule_id: Uuid,
    pub sim_id: Option<SimId>,
    /// What the alert is about, in words people know (the SIM's ICCID, "pool 'Cameras'").
    pub subject: String,
    /// The key the store keeps one open alert per rule and subject by ([`Subject::key`]).
    pub subject_key: String,
    /// The SIM's sub-customer when the alert opened (customer users see their own).
    pub customer_id: Option<CustomerId>,
    pub severity: super::Severity,
    pub state: AlertState,
    /// The metric's value when last evaluated.
    pub value: u64,
    /// When the condition began to hold.
    pub started_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// When the condition was last seen holding (an event's last occurrence).
    pub last_seen_at: DateTime<Utc>,
    /// Occurrences of an event after the first.
    pub repeats: u32,
    /// Times it fired again soon after resolving.
    pub flaps: u32,
    /// The last event counted (a redelivered one carries the same key).
    pub event_key: Option<String>,
    /// What the value does not say (the new network, the job's summary).
    pub detail: Option<String>,
    pub acknowledged: Option<Acknowledgement>,
    pub announced: Announced,
    pub announced_at: Option<DateTime<Utc>>,
    /// When it is next to be told of (its news, or a reminder); `None`: nothing to tell.
    pub announce_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic concurrency: every write checks and bumps it.
    pub version: i64,
}

/// What an observation is about: a SIM, or something that is no SIM (a bulk job, a quota pool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub sim_id: Option<SimId>,
    pub name: String,
    pub customer_id: Option<CustomerId>,
    /// What keys a subject whose name may change (a quota pool: `pool:<id>`); `None`: its
    /// SIM's id, or else its name.
    pub stable_key: Option<String>,
}

impl Subject {
    pub fn of(sim: &Sim) -> Self {
        Self {
            sim_id: Some(sim.id),
            name: sim.iccid.to_string(),
            customer_id: sim.customer_id,
            stable_key: None,
        }
    }

    /// A quota pool, named in words ("pool 'Cameras'") and keyed by its id: renamed, it keeps
    /// its alert. Its sub-customer's users see it, as they see the pool.
    pub fn pool(pool: &QuotaPool) -> Self {
        Self {
            sim_id: None,
            name: format!("pool '{}'", pool.name),
            customer_id: pool.members.customer(),
            stable_key: Some(format!("pool:{}", pool.id)),
        }
    }

    /// The key the store keeps one open alert per (with the rule's id).
    pub fn key(&self) -> String {
        match (&self.stable_key, self.sim_id) {
            (Some(key), _) => key.clone(),
            (None, Some(id)) => id.0.to_string(),
            (None, None) => self.name.clone(),
        }
    }
}

/// A change to store: checked against the version read, so two evaluations racing write once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertWrite {
    /// A new alert (refused, silently, when the rule and subject have an open one already).
    Insert(Alert),
    /// The alert as it becomes; written only where the stored version is `version - 1`.
    Update(Alert),
    /// A pending alert whose condition stopped holding before it fired.
    Delete(Alert),
}

impl AlertWrite {
    pub fn alert(&self) -> &Alert {
        match self {
            Self::Insert(a) | Self::Update(a) | Self::Delete(a) => a,
        }
    }
}

fn secs(s: u32) -> Duration {
    Duration::seconds(i64::from(s))
}

/// The next step of the alert `current` of `rule` on `subject` given an observation at `now`.
/// `current` is the subject's open alert, or its last one when that resolved within the group
/// interval (a firing observation reopens it: a flap, not a new incident). `None`: nothing to
/// write.
pub fn step(
    rule: &AlertRule,
    subject: &Subject,
    current: Option<&Alert>,
    observation: &Observation,
    now: DateTime<Utc>,
) -> Option<AlertWrite> {
    let pacing = &rule.spec.pacing;
    let wait = secs(pacing.group_wait_seconds);
    let value = observation.value();
    // A write names the subject as it is now (a pool renamed while its alert is open).
    let bumped = |a: &Alert| {
        let mut a = a.clone();
        a.version += 1;
        a.updated_at = now;
        a.value = value;
        a.subject.clone_from(&subject.name);
        a
    };
    let mut write = match (current, observation) {
        (None, Observation::Firing { event, detail, .. }) => {
            let firing = pacing.pending_seconds == 0;
            Some(AlertWrite::Insert(Alert {
                id: Uuid::new_v4(),
                tenant_id: rule.tenant_id,
                rule_id: rule.id,
                sim_id: subject.sim_id,
                subject: subject.name.clone(),
                subject_key: subject.key(),
                customer_id: subject.customer_id,
                severity: rule.spec.severity,
                state: if firing {
                    AlertState::Firing
                } else {
                    AlertState::Pending
                },
                value,
                started_at: now,
                fired_at: firing.then_some(now),
                resolved_at: None,
                last_seen_at: now,
                repeats: 0,
                flaps: 0,
                event_key: event.clone(),
                detail: detail.clone(),
                acknowledged: None,
                announced: Announced::Nothing,
                announced_at: None,
                announce_at: firing.then_some(now + wait),
                updated_at: now,
                version: 1,
            }))
        }
        (None, _) => None,
        (Some(a), Observation::Firing { event, detail, .. }) => match a.state {
            AlertState::Pending => {
                if now - a.started_at >= secs(pacing.pending_seconds) {
                    let mut b = bumped(a);
                    b.state = AlertState::Firing;
                    b.fired_at = Some(now);
                    b.last_seen_at = now;
                    b.announce_at = Some(now + wait);
                    Some(AlertWrite::Update(b))
                } else if a.value != value {
                    let mut b = bumped(a);
                    b.last_seen_at = now;
                    Some(AlertWrite::Update(b))
                } else {
                    None
                }
            }
            AlertState::Firing => {
                let repeat = event.is_some() && *event != a.event_key;
                if !repeat
                    && a.value == value
                    && (detail.is_none() || *detail == a.detail)
                    && a.subject == subject.name
                {
                    return None;
                }
                let mut b = bumped(a);
                b.last_seen_at = now;
                if repeat {
                    b.repeats += 1;
                    b.event_key = event.clone();
                }
                if detail.is_some() {
                    b.detail = detail.clone();
                }
                Some(AlertWrite::Update(b))
            }
            AlertState::Resolved => {
                if event.is_some() && *event == a.event_key {
                    // The event that opened it, delivered again.
                    return None;
                }
                let mut b = bumped(a);
                b.state = AlertState::Firing;
                b.resolved_at = None;
                b.last_seen_at = now;
                b.flaps += 1;
                if detail.is_some() {
                    b.detail = detail.clone();
                }
                if event.is_some() {
                    b.repeats += 1;
                    b.event_key = event.clone();
                }
                b.announce_at = match a.announced {
                    // People know it fires: only a reminder is due, if any.
                    Announced::Firing => reminder_at(rule, &b, now),
                    _ => Some(now + wait),
                };
                Some(AlertWrite::Update(b))
            }
        },
        (Some(a), Observation::Holding { .. }) => {
            (a.state == AlertState::Firing && a.value != value).then(|| AlertWrite::Update(bumped(a)))
        }
        (Some(a), Observation::Clear { .. }) => match a.state {
            AlertState::Pending => Some(AlertWrite::Delete(a.clone())),
            AlertState::Firing => {
                let mut b = bumped(a);
                b.state = AlertState::Resolved;
                b.resolved_at = Some(now);
                b.announce_at = match a.announced {
                    // Told once it stayed resolved for the group interval (it may flap back).
                    Announced::Firing => Some(now + secs(pacing.group_interval_seconds)),
                    _ => None,
                };
                Some(AlertWrite::Update(b))
            }
            AlertState::Resolved => None,
        },
    };
    // A telemetry alert's detail is its latest reading in words against the rule's limit,
    // whatever the observation (firing, holding or clear).
    if let Some(text) = rule.spec.condition.reading_text(value) {
        if let Some(AlertWrite::Insert(a) | AlertWrite::Update(a)) = &mut write {
            a.detail = Some(text);
        }
    }
    write
}

/// When a firing alert people were told of is next reminded of: never once acknowledged, or
/// when the rule sends no reminders.
pub fn reminder_at(rule: &AlertRule, alert: &Alert, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let repeat = rule.spec.pacing.repeat_seconds;
    (repeat > 0 && alert.acknowledged.is_none() && alert.state == AlertState::Firing)
        .then(|| now + secs(repeat))
}

/// Whether a resolved alert may still reopen (its group interval has not passed).
pub fn may_reopen(rule: &AlertRule, alert: &Alert, now: DateTime<Utc>) -> bool {
    alert.state == AlertState::Resolved
        && alert
            .resolved_at
            .is_some_and(|r| now - r < secs(rule.spec.pacing.group_interval_seconds))
}

/// Whether an event's firing alert has been quiet long enough to resolve.
pub fn event_quiet(rule: &AlertRule, alert: &Alert, now: DateTime<Utc>) -> bool {
    alert.state == AlertState::Firing
        && now - alert.last_seen_at >= secs(rule.spec.pacing.resolve_after_seconds)
}

/// Most subjects one notification lists by name in its body (its payload lists up to
/// [`MAX_PAYLOAD_ALERTS`]; both give the full count).
pub const MAX_NAMED: usize = 10;
pub const MAX_PAYLOAD_ALERTS: usize = 100;

/// What one pass over a rule's due alerts tells and writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announcement {
    pub notifications: Vec<Notification>,
    /// The alerts as they become (each checked against the version read).
    pub alerts: Vec<Alert>,
    /// Whether the rule spoke (its group interval starts again).
    pub spoke: bool,
}

/// Plans the announcement of a rule's due alerts (`announce_at` passed) at `now`, given when
/// the rule last spoke, the tenant's active silences and the SIMs the alerts are about (for
/// silences by label or sub-customer).
pub fn announce(
    rule: &AlertRule,
    due: &[Alert],
    last_spoke: Option<DateTime<Utc>>,
    silences: &[Silence],
    sims: &[Sim],
    now: DateTime<Utc>,
) -> Announcement {
    let interval = secs(rule.spec.pacing.group_interval_seconds);
    let mut out = Announcement::default();
    // The group spoke lately: everything waits for its interval to pass.
    if let Some(last) = last_spoke.filter(|l| now - *l < interval) {
        for a in due {
            let mut b = a.clone();
            b.announce_at = Some(last + interval);
            b.version += 1;
            out.alerts.push(b);
        }
        return out;
    }
    let (mut firing, mut reminded, mut resolved) = (Vec::new(), Vec::new(), Vec::new());
    for a in due {
        let mut b = a.clone();
        b.version += 1;
        b.updated_at = now;
        let sim = a.sim_id.and_then(|id| sims.iter().find(|s| s.id == id));
        let silenced = silences
            .iter()
            .filter(|s| s.active(now) && s.covers(rule.id, a.sim_id, sim))
            .map(|s| s.ends_at)
            .max();
        match (a.state, a.announced) {
            (AlertState::Firing, _) if silenced.is_some() => {
                b.announce_at = silenced;
            }
            (AlertState::Firing, Announced::Firing) => {
                if a.acknowledged.is_some() {
                    b.announce_at = None;
                } else {
                    b.announce_at = reminder_at(rule, &b, now);
                    reminded.push(b.clone());
                }
            }
            (AlertState::Firing, _) => {
                b.announced = Announced::Firing;
                b.announced_at = Some(now);
                b.announce_at = reminder_at(rule, &b, now);
                firing.push(b.clone());
            }
            (AlertState::Resolved, Announced::Firing) => {
                b.announced = Announced::Resolved;
                b.announced_at = Some(now);
                b.announce_at = None;
                if silenced.is_none() {
                    resolved.push(b.clone());
                }
            }
            _ => b.announce_at = None,
        }
        out.alerts.push(b);
    }
    if !firing.is_empty() || !reminded.is_empty() {
        out.notifications.push(alert_notification(
            rule,
            NotificationKind::AlertFiring,
            &firing,
            &reminded,
            now,
        ));
    }
    if !resolved.is_empty() {
        out.notifications.push(alert_notification(
            rule,
            NotificationKind::AlertResolved,
            &resolved,
            &[],
            now,
        ));
    }
    out.spoke = !out.notifications.is_empty();
    out
}

fn named(rule: &AlertRule, alerts: &[Alert]) -> String {
    let metric = rule.spec.condition.metric;
    let mut parts: Vec<String> = alerts
        .iter()
        .take(MAX_NAMED)
        .map(|a| match (&a.detail, metric.threshold_range()) {
            (Some(d), _) => format!("{} ({d})", a.subject),
            (None, Some(_)) => format!("{} ({})", a.subject, metric.value_text(a.value)),
            (None, None) => a.subject.clone(),
        })
        .collect();
    if alerts.len() > MAX_NAMED {
        parts.push(format!("and {} more", alerts.len() - MAX_NAMED));
    }
    parts.join(", ")
}

fn sims_word(n: usize) -> String {
    if n == 1 {
        "1 SIM".to_owned()
    } else {
        format!("{n} SIMs")
    }
}

/// One notification of a rule: the alerts that fired (and those still firing, reminded of), or
/// those that resolved.
pub fn alert_notification(
    rule: &AlertRule,
    kind: NotificationKind,
    alerts: &[Alert],
    reminded: &[Alert],
    now: DateTime<Utc>,
) -> Notification {
    let name = rule.spec.name.trim();
    let severity = rule.spec.severity;
    let (title, body) = match kind {
        NotificationKind::AlertResolved => (
            format!("Resolved: {name} ({})", sims_word(alerts.len())),
            format!("No longer firing: {}.", named(rule, alerts)),
        ),
        _ => {
            let mut body = Vec::new();
            if !alerts.is_empty() {
                body.push(format!("Firing: {}.", named(rule, alerts)));
            }
            if !reminded.is_empty() {
                body.push(format!(
                    "Still firing, not acknowledged: {}.",
                    named(rule, reminded)
                ));
            }
            let title = if alerts.is_empty() {
                format!("Still firing: {name} ({})", sims_word(reminded.len()))
            } else {
                format!(
                    "{}: {name} ({})",
                    capitalised(severity.word()),
                    sims_word(alerts.len())
                )
            };
            (title, body.join(" "))
        }
    };
    // A telemetry alert's value is signed hundredths of its unit (`Alert.value` in the API).
    let telemetry = rule.spec.condition.metric.is_telemetry();
    let value_of = |a: &Alert| -> serde_json::Value {
        if telemetry {
            json!(super::TelemetryValue::from_alert_value(a.value).hundredths())
        } else {
            json!(a.value)
        }
    };
    let list = |v: &[Alert]| -> Vec<serde_json::Value> {
        v.iter()
            .take(MAX_PAYLOAD_ALERTS)
            .map(|a| {
                json!({
                    "id": a.id,
                    "subject": a.subject,
                    "simId": a.sim_id.map(|s| s.0),
                    "state": a.state.as_str(),
                    "value": value_of(a),
                    "detail": a.detail,
                    "startedAt": a.started_at,
                    "firedAt": a.fired_at,
                    "resolvedAt": a.resolved_at,
                })
            })
            .collect()
    };
    let payload = json!({
        "rule": {
            "id": rule.id,
            "tenantId": rule.tenant_id.to_string(),
            "name": name,
            "severity": severity.as_str(),
            "metric": rule.spec.condition.metric.as_str(),
            "threshold": rule.spec.condition.threshold,
        },
        "alerts": list(alerts),
        "alertCount": alerts.len(),
        "reminded": list(reminded),
        "remindedCount": reminded.len(),
    });
    let channels = &rule.spec.channels;
    Notification {
        id: Uuid::new_v4(),
        tenant_id: rule.tenant_id,
        recipient: None,
        kind,
        subject_id: rule.id,
        title,
        body,
        payload,
        created_at: now,
        read_at: None,
        audience: Audience {
            in_app: channels.in_app,
            webhook: channels.webhook,
            emails: channels.emails.clone(),
        },
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
