//! Alert rules: what a tenant wants to hear about its SIMs, and when.
//!
//! A rule names the SIMs it watches (all, a sub-customer's, a label selection, a tariff plan's or
//! one), a condition on a metric (data used in a day, SIMs gone quiet, a device's reading over a
//! value as in [`telemetry`], …), a severity and the channels it speaks on. Evaluating a rule
//! gives, per SIM, an [`Observation`]; the lifecycle in [`lifecycle`] turns observations into
//! alerts — one open alert per rule and SIM — and alerts into grouped notifications.

pub mod lifecycle;
pub mod telemetry;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::fleet::query::LabelFilter;
use crate::fleet::{Sim, SimState};
pub use crate::forecast::{AnomalyKind, Severity as AnomalySeverity};
use crate::quota_pool::QuotaPool;
use crate::{CustomerId, Error, Result, SimId, TenantId};

pub use telemetry::{TelemetryField, TelemetryLimit, TelemetryValue};

/// Most rules one tenant may keep.
pub const MAX_RULES_PER_TENANT: u64 = 200;
/// Most e-mail addresses one rule sends to.
pub const MAX_EMAILS: usize = 10;
/// Most label conditions one rule's target holds.
pub const MAX_TARGET_LABELS: usize = 10;
/// The longest pending duration ("for 10 minutes"): a day.
pub const MAX_PENDING_SECONDS: u32 = 86_400;
/// The longest wait before a group's first notification.
pub const MAX_GROUP_WAIT_SECONDS: u32 = 3_600;
/// The group interval's bounds (between two notifications of one rule).
pub const GROUP_INTERVAL_SECONDS: std::ops::RangeInclusive<u32> = 10..=86_400;
/// The longest time between reminders (a week); 0 turns reminders off.
pub const MAX_REPEAT_SECONDS: u32 = 604_800;
/// The longest time an event's alert stays open without a repeat (a week).
pub const MAX_RESOLVE_AFTER_SECONDS: u32 = 604_800;
/// The largest byte threshold (1 PiB).
pub const MAX_BYTES: u64 = 1 << 50;

/// How bad an alert is, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Critical,
    Major,
    Minor,
    Warning,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Self::Critical,
        Self::Major,
        Self::Minor,
        Self::Warning,
        Self::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "CRITICAL",
            Self::Major => "MAJOR",
            Self::Minor => "MINOR",
            Self::Warning => "WARNING",
            Self::Info => "INFO",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| Error::invalid("severity", format!("'{s}' is not a severity")))
    }

    /// In words, for notifications.
    pub fn word(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Major => "major",
            Self::Minor => "minor",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }
}

/// The SIMs a rule watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertTarget {
    AllSims,
    Customer(CustomerId),
    /// SIMs carrying every one of these labels (a key, with a value when one is named).
    Labels(Vec<LabelFilter>),
    TariffPlan(String),
    Sim(SimId),
}

impl AlertTarget {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AllSims => "ALL_SIMS",
            Self::Customer(_) => "CUSTOMER",
            Self::Labels(_) => "LABELS",
            Self::TariffPlan(_) => "TARIFF_PLAN",
            Self::Sim(_) => "SIM",
        }
    }

    /// Whether the rule watches this SIM (of the rule's tenant).
    pub fn matches(&self, sim: &Sim) -> bool {
        match self {
            Self::AllSims => true,
            Self::Customer(c) => sim.customer_id == Some(*c),
            Self::Labels(filters) => LabelFilter::all_hold(filters, &sim.labels),
            Self::TariffPlan(p) => sim.tariff_plan.as_deref() == Some(p.as_str()),
            Self::Sim(id) => sim.id == *id,
        }
    }

    /// Whether it watches quota pools at all: every pool of the tenant for [`Self::AllSims`], a
    /// sub-customer's pools for [`Self::Customer`]. A target by labels, plan or SIM watches
    /// SIMs only (a pool is no SIM carrying labels or on a plan).
    pub fn watches_pools(&self) -> bool {
        matches!(self, Self::AllSims | Self::Customer(_))
    }

    /// Whether the rule watches this pool (of the rule's tenant): every pool for
    /// [`Self::AllSims`]; for [`Self::Customer`], the pools counting that sub-customer's SIMs.
    pub fn watches_pool(&self, pool: &QuotaPool) -> bool {
        match self {
            Self::AllSims => true,
            Self::Customer(c) => pool.members.customer() == Some(*c),
            Self::Labels(_) | Self::TariffPlan(_) | Self::Sim(_) => false,
        }
    }

    pub fn check(&self) -> Result<()> {
        match self {
            Self::Labels(filters) => {
                if filters.is_empty() {
                    return Err(Error::invalid(
                        "target.labels",
                        "name at least one label to select SIMs by",
                    ));
                }
                if filters.len() > MAX_TARGET_LABELS {
                    return Err(Error::invalid(
                        "target.labels",
                        format!("at most {MAX_TARGET_LABELS} label conditions"),
                    ));
                }
                for f in filters {
                    crate::fleet::labels::parse_key(&f.key)
                        .map_err(|e| Error::invalid("target.labels", e.to_string()))?;
                }
                Ok(())
            }
            Self::TariffPlan(p) if p.trim().is_empty() || p.chars().count() > 64 => Err(Error::invalid(
                "target.tariffPlan",
                "a tariff plan name of 1 to 64 characters",
            )),
            _ => Ok(()),
        }
    }
}

/// The largest cost threshold: 100 million in the currency.
pub const MAX_COST_CENTS: u64 = 10_000_000_000;

/// Hundredths of a currency written as an amount ("1234" → "12.34").
pub fn cents_text(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// What a rule measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Bytes (up and down) a SIM used today, in the tenant's time zone; over `threshold`.
    DataInDay,
    /// Bytes a SIM used in the billing period (the tenant's calendar month); over `threshold`.
    DataInPeriod,
    /// Hours since Ioto last saw a session of an active SIM; at least `threshold` (1–168).
    /// SIMs never seen are not offline.
    OfflineHours,
    /// Sessions of a SIM in the current hour (UTC); more than `threshold`.
    SessionsInHour,
    /// Bytes a SIM used today (UTC) against its median day of the 30 before (days with
    /// traffic, at least 7 of them); more than `threshold` times the median.
    UsageOverMedian,
    /// A SIM's traffic on a network it did not use in the 30 days before (a SIM without traffic
    /// in those days has no habit to break).
    NewNetwork,
    /// A SIM's traffic in a country (mobile country code) it did not use in the 30 days before.
    NewCountry,
    /// A SIM's first traffic ever, as Ioto counted it.
    FirstTraffic,
    /// One of the tenant's bulk jobs reached its final status.
    BulkJobFinished,
    /// A SIM changed state (to `state` when one is named).
    StateChanged,
    /// A SIM's data quota reached a stage of at least `threshold` percent.
    QuotaStage,
    /// What a SIM's traffic cost today (UTC), as the latest rating of the tenant's retail card
    /// priced it; over `threshold` hundredths of the card's currency.
    CostInDay,
    /// What a SIM's traffic cost in the retail card's current billing period, as the latest
    /// rating priced it; over `threshold` hundredths of the card's currency.
    CostInPeriod,
    /// Days since an active SIM was last activated without any traffic since (as Ioto counted
    /// it); at least `threshold` (1–90).
    NoTrafficAfterActivation,
    /// A SIM seen in another device: its sessions report another IMEI than its last.
    ImeiChanged,
    /// A reading of the condition's telemetry field by a device over its value (see
    /// [`telemetry`]), observed on the SIMs in the device; clears at or below the clear value.
    TelemetryAbove,
    /// A reading of the condition's telemetry field by a device under its value; clears at or
    /// above the clear value.
    TelemetryBelow,
    /// A SIM's data quota, or a quota pool's limit, runs out within `threshold` days (1–31) by
    /// its latest forecast (the day the expected usage reaches the limit); clears when the
    /// forecast no longer says so. Pools are watched by targets of every SIM or of a
    /// sub-customer ([`AlertTarget::watches_pool`]).
    QuotaExhaustionForecast,
    /// The anomaly detector found something about a SIM (of the condition's kinds and at least
    /// its severity; see [`AnomalyCondition`]).
    Anomaly,
}

impl Metric {
    pub const ALL: [Metric; 19] = [
        Self::DataInDay,
        Self::DataInPeriod,
        Self::OfflineHours,
        Self::SessionsInHour,
        Self::UsageOverMedian,
        Self::NewNetwork,
        Self::NewCountry,
        Self::FirstTraffic,
        Self::BulkJobFinished,
        Self::StateChanged,
        Self::QuotaStage,
        Self::CostInDay,
        Self::CostInPeriod,
        Self::NoTrafficAfterActivation,
        Self::ImeiChanged,
        Self::TelemetryAbove,
        Self::TelemetryBelow,
        Self::QuotaExhaustionForecast,
        Self::Anomaly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DataInDay => "DATA_IN_DAY",
            Self::DataInPeriod => "DATA_IN_PERIOD",
            Self::OfflineHours => "OFFLINE_HOURS",
            Self::SessionsInHour => "SESSIONS_IN_HOUR",
            Self::UsageOverMedian => "USAGE_OVER_MEDIAN",
            Self::NewNetwork => "NEW_NETWORK",
            Self::NewCountry => "NEW_COUNTRY",
            Self::FirstTraffic => "FIRST_TRAFFIC",
            Self::BulkJobFinished => "BULK_JOB_FINISHED",
            Self::StateChanged => "STATE_CHANGED",
            Self::QuotaStage => "QUOTA_STAGE",
            Self::CostInDay => "COST_IN_DAY",
            Self::CostInPeriod => "COST_IN_PERIOD",
            Self::NoTrafficAfterActivation => "NO_TRAFFIC_AFTER_ACTIVATION",
            Self::ImeiChanged => "IMEI_CHANGED",
            Self::TelemetryAbove => "TELEMETRY_ABOVE",
            Self::TelemetryBelow => "TELEMETRY_BELOW",
            Self::QuotaExhaustionForecast => "QUOTA_EXHAUSTION_FORECAST",
            Self::Anomaly => "ANOMALY",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| {
            Error::invalid(
                "condition.metric",
                format!(
                    "'{s}' is not a metric; one of {}",
                    Self::ALL.map(Self::as_str).join(", ")
                ),
            )
        })
    }

    /// An event: it happens (and repeats) rather than holds, so its alert opens at once and
    /// resolves after a quiet time (`resolveAfterSeconds`) or by hand.
    pub fn is_event(self) -> bool {
        matches!(
            self,
            Self::StateChanged
                | Self::QuotaStage
                | Self::NewNetwork
                | Self::NewCountry
                | Self::FirstTraffic
                | Self::BulkJobFinished
                | Self::ImeiChanged
                | Self::Anomaly
        )
    }

    /// Evaluated from the SIMs whose traffic was counted.
    pub fn is_streamed(self) -> bool {
        matches!(
            self,
            Self::DataInDay
                | Self::DataInPeriod
                | Self::SessionsInHour
                | Self::UsageOverMedian
                | Self::NewNetwork
                | Self::NewCountry
        )
    }

    /// Evaluated on the clock (a SIM that does nothing sends no event), not from the stream.
    pub fn is_timed(self) -> bool {
        matches!(self, Self::OfflineHours | Self::NoTrafficAfterActivation)
    }

    /// Read from what the forecast pass stored (forecasts, anomalies): evaluated on the clock,
    /// once a minute.
    pub fn is_forecast(self) -> bool {
        matches!(self, Self::QuotaExhaustionForecast | Self::Anomaly)
    }

    /// Measured from rated usage: evaluated on the clock, against the latest rating.
    pub fn is_rated(self) -> bool {
        matches!(self, Self::CostInDay | Self::CostInPeriod)
    }

    /// Evaluated on device readings as they are stored: the condition names a telemetry field
    /// and values rather than a threshold.
    pub fn is_telemetry(self) -> bool {
        matches!(self, Self::TelemetryAbove | Self::TelemetryBelow)
    }

    /// The threshold's allowed range and unit, `None` when the metric takes none.
    pub fn threshold_range(self) -> Option<(u64, u64, &'static str)> {
        match self {
            Self::DataInDay | Self::DataInPeriod => Some((1, MAX_BYTES, "bytes")),
            Self::OfflineHours => Some((1, 168, "hours")),
            Self::SessionsInHour => Some((1, 100_000, "sessions")),
            Self::UsageOverMedian => Some((2, 100, "times the median day")),
            Self::QuotaStage => Some((1, 100, "percent")),
            Self::CostInDay | Self::CostInPeriod => {
                Some((1, MAX_COST_CENTS, "hundredths of the currency (500 = 5.00)"))
            }
            Self::NoTrafficAfterActivation => Some((1, 90, "days")),
            Self::QuotaExhaustionForecast => Some((1, 31, "days ahead")),
            Self::StateChanged
            | Self::NewNetwork
            | Self::NewCountry
            | Self::FirstTraffic
            | Self::ImeiChanged
            | Self::BulkJobFinished
            // Its condition is the anomalies' kinds and least severity.
            | Self::Anomaly
            // Their limit is the condition's `telemetry` (a field and values with decimals).
            | Self::TelemetryAbove
            | Self::TelemetryBelow => None,
        }
    }

    /// A value of this metric in words ("1.5 MB", "26 hours").
    pub fn value_text(self, v: u64) -> String {
        match self {
            Self::DataInDay | Self::DataInPeriod | Self::UsageOverMedian => crate::notify::bytes_text(v),
            Self::OfflineHours => format!("{v} hours"),
            Self::SessionsInHour => format!("{v} sessions"),
            Self::QuotaStage => format!("{v} %"),
            Self::CostInDay | Self::CostInPeriod => cents_text(v),
            Self::NoTrafficAfterActivation => format!("{v} days"),
            Self::QuotaExhaustionForecast => match v {
                0 => "today".to_owned(),
                1 => "1 day".to_owned(),
                _ => format!("{v} days"),
            },
            // The anomaly's score.
            Self::Anomaly => v.to_string(),
            Self::StateChanged
            | Self::NewNetwork
            | Self::NewCountry
            | Self::FirstTraffic
            | Self::ImeiChanged
            | Self::BulkJobFinished => v.to_string(),
            // The reading in hundredths of the field's unit (the unit is the rule's field's:
            // `Condition::reading_text` says it).
            Self::TelemetryAbove | Self::TelemetryBelow => TelemetryValue::from_alert_value(v).to_string(),
        }
    }
}

/// When a rule fires and when it clears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub metric: Metric,
    /// Fires above it (at it, for hours offline and quota stages).
    pub threshold: Option<u64>,
    /// Clears only below it (hysteresis); without it, as soon as the firing condition no longer
    /// holds. Only for metrics that can fall (hours offline).
    pub clear_threshold: Option<u64>,
    /// `StateChanged`: only changes into this state.
    pub state: Option<SimState>,
    /// `TelemetryAbove` and `TelemetryBelow`: the field read, its value and clear value.
    pub telemetry: Option<TelemetryLimit>,
    /// `Anomaly`: the kinds and least severity heard of (`None`: every kind, any severity).
    pub anomaly: Option<AnomalyCondition>,
}

/// Which anomalies an `ANOMALY` rule hears of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyCondition {
    /// The kinds; empty: every kind.
    pub kinds: Vec<AnomalyKind>,
    /// At least this severity.
    pub min_severity: AnomalySeverity,
}

impl AnomalyCondition {
    /// Every kind, any severity.
    pub fn any() -> Self {
        Self {
            kinds: Vec::new(),
            min_severity: AnomalySeverity::Low,
        }
    }

    pub fn admits(&self, kind: AnomalyKind, severity: AnomalySeverity) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&kind)) && severity >= self.min_severity
    }

    pub fn check(&self) -> Result<()> {
        let mut seen = Vec::new();
        for (i, k) in self.kinds.iter().enumerate() {
            if seen.contains(k) {
                return Err(Error::invalid(
                    format!("condition.anomalyKinds[{i}]"),
                    format!("{} is named twice", k.as_str()),
                ));
            }
            seen.push(*k);
        }
        Ok(())
    }
}

impl Condition {
    pub fn check(&self) -> Result<()> {
        let m = self.metric;
        match (m.threshold_range(), self.threshold) {
            (Some((lo, hi, unit)), Some(t)) if t < lo || t > hi => {
                return Err(Error::invalid(
                    "condition.threshold",
                    format!("{t} is out of range for {}: {lo} to {hi} {unit}", m.as_str()),
                ))
            }
            (Some((lo, hi, unit)), None) => {
                return Err(Error::invalid(
                    "condition.threshold",
                    format!("{} needs a threshold: {lo} to {hi} {unit}", m.as_str()),
                ))
            }
            (None, Some(_)) => {
                let instead = if m.is_telemetry() {
                    "; its limit is `value` (and `clearValue`) of its `field`"
                } else {
                    ""
                };
                return Err(Error::invalid(
                    "condition.threshold",
                    format!("{} takes no threshold{instead}", m.as_str()),
                ));
            }
            _ => {}
        }
        if let Some(c) = self.clear_threshold {
            if m != Metric::OfflineHours {
                return Err(Error::invalid(
                    "condition.clearThreshold",
                    format!(
                        "{} clears when its condition no longer holds; a clear threshold applies to OFFLINE_HOURS",
                        m.as_str()
                    ),
                ));
            }
            let t = self.threshold.unwrap_or(0);
            if c == 0 || c >= t {
                return Err(Error::invalid(
                    "condition.clearThreshold",
                    format!("{c} must lie between 1 and the threshold ({t}), exclusive of the threshold"),
                ));
            }
        }
        if self.state.is_some() && m != Metric::StateChanged {
            return Err(Error::invalid(
                "condition.state",
                format!("only STATE_CHANGED takes a state, not {}", m.as_str()),
            ));
        }
        match (m.is_telemetry(), &self.telemetry) {
            (true, Some(limit)) => limit.check(m)?,
            (true, None) => {
                return Err(Error::invalid(
                    "condition.field",
                    format!(
                        "{} needs the sensor it reads: {}",
                        m.as_str(),
                        TelemetryField::names()
                    ),
                ))
            }
            (false, Some(_)) => {
                return Err(Error::invalid(
                    "condition.field",
                    format!(
                        "only TELEMETRY_ABOVE and TELEMETRY_BELOW take a telemetry field, not {}",
                        m.as_str()
                    ),
                ))
            }
            (false, None) => {}
        }
        match (m == Metric::Anomaly, &self.anomaly) {
            (true, Some(a)) => a.check()?,
            (false, Some(_)) => {
                return Err(Error::invalid(
                    "condition.anomalyKinds",
                    format!(
                        "only ANOMALY takes anomaly kinds and a least severity, not {}",
                        m.as_str()
                    ),
                ))
            }
            _ => {}
        }
        Ok(())
    }
}

/// Where a rule's notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    /// The tenant's notification inbox.
    pub in_app: bool,
    /// Every enabled webhook endpoint of the tenant, signed.
    pub webhook: bool,
    /// These addresses (when SMTP is configured).
    pub emails: Vec<String>,
}

impl Default for Channels {
    fn default() -> Self {
        Self {
            in_app: true,
            webhook: false,
            emails: Vec::new(),
        }
    }
}

impl Channels {
    pub fn check(&self) -> Result<()> {
        if !self.in_app && !self.webhook && self.emails.is_empty() {
            return Err(Error::invalid(
                "channels",
                "choose at least one channel: in-app, webhook or an e-mail address",
            ));
        }
        if self.emails.len() > MAX_EMAILS {
            return Err(Error::invalid(
                "channels.emails",
                format!("at most {MAX_EMAILS} addresses"),
            ));
        }
        for (i, e) in self.emails.iter().enumerate() {
            if !plausible_email(e) {
                return Err(Error::invalid(
                    format!("channels.emails[{i}]"),
                    format!("'{}' is not an e-mail address (name@domain)", shorten(e)),
                ));
            }
        }
        Ok(())
    }
}

/// A mailbox as rules accept it: `local@domain.tld`, at most 254 characters, no spaces or angle
/// brackets (a display name is not allowed here).
pub fn plausible_email(e: &str) -> bool {
    let Some((local, domain)) = e.rsplit_once('@') else {
        return false;
    };
    e.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '<' | '>' | ',' | ';' | '"' | '(' | ')' | '[' | ']' | '\\')
        })
}

/// At most 40 characters of a refused value, for error messages.
pub fn shorten(s: &str) -> String {
    if s.chars().count() <= 40 {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(40).collect::<String>())
    }
}

/// How a rule's notifications are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// The condition must hold this long before the alert fires (0: at once).
    pub pending_seconds: u32,
    /// The first notification of a group waits this long for more alerts to join it.
    pub group_wait_seconds: u32,
    /// Between two notifications of the rule; a resolved alert is announced once it stayed
    /// resolved this long (it reopens, unannounced, when it fires again sooner).
    pub group_interval_seconds: u32,
    /// Reminders of alerts still firing and not acknowledged, this often (0: none).
    pub repeat_seconds: u32,
    /// An event's alert resolves after this long without a repeat.
    pub resolve_after_seconds: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            pending_seconds: 0,
            group_wait_seconds: 30,
            group_interval_seconds: 300,
            repeat_seconds: 4 * 3600,
            resolve_after_seconds: 3600,
        }
    }
}

impl Pacing {
    pub fn check(&self, metric: Metric) -> Result<()> {
        if self.pending_seconds > MAX_PENDING_SECONDS {
            return Err(Error::invalid(
                "pendingSeconds",
                format!("at most {MAX_PENDING_SECONDS} (a day)"),
            ));
        }
        if self.pending_seconds > 0 && metric.is_event() {
            return Err(Error::invalid(
                "pendingSeconds",
                format!("{} is an event: it has no duration to wait for", metric.as_str()),
            ));
        }
        if self.group_wait_seconds > MAX_GROUP_WAIT_SECONDS {
            return Err(Error::invalid(
                "groupWaitSeconds",
                format!("at most {MAX_GROUP_WAIT_SECONDS} (an hour)"),
            ));
        }
        if !GROUP_INTERVAL_SECONDS.contains(&self.group_interval_seconds) {
            return Err(Error::invalid(
                "groupIntervalSeconds",
                format!(
                    "{} to {} seconds",
                    GROUP_INTERVAL_SECONDS.start(),
                    GROUP_INTERVAL_SECONDS.end()
                ),
            ));
        }
        if self.repeat_seconds != 0 && (self.repeat_seconds < 60 || self.repeat_seconds > MAX_REPEAT_SECONDS)
        {
            return Err(Error::invalid(
                "repeatSeconds",
                format!("0 (no reminders) or 60 to {MAX_REPEAT_SECONDS} seconds"),
            ));
        }
        if !(60..=MAX_RESOLVE_AFTER_SECONDS).contains(&self.resolve_after_seconds) {
            return Err(Error::invalid(
                "resolveAfterSeconds",
                format!("60 to {MAX_RESOLVE_AFTER_SECONDS} seconds"),
            ));
        }
        Ok(())
    }
}

/// A rule as a tenant defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub severity: Severity,
    pub target: AlertTarget,
    pub condition: Condition,
    pub channels: Channels,
    pub pacing: Pacing,
}

impl RuleSpec {
    /// Checks every field, naming the first one refused.
    pub fn check(&self) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "name",
                "a name of 1 to 100 characters, without control characters",
            ));
        }
        if let Some(d) = &self.description {
            if d.chars().count() > 1000 {
                return Err(Error::invalid("description", "at most 1000 characters"));
            }
        }
        self.target.check()?;
        self.condition.check()?;
        if self.condition.metric == Metric::BulkJobFinished && self.target != AlertTarget::AllSims {
            return Err(Error::invalid(
                "target",
                "BULK_JOB_FINISHED watches the tenant's bulk jobs, not SIMs: its target is ALL_SIMS",
            ));
        }
        self.channels.check()?;
        self.pacing.check(self.condition.metric)
    }
}

/// A stored rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRule {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub spec: RuleSpec,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic concurrency: every update checks and bumps it.
    pub version: i64,
}

/// What a rule's condition says about one SIM at one evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The firing condition holds, with the measured value; `event` names the occurrence for
    /// event metrics (a redelivered event carries the same key and counts once).
    Firing {
        value: u64,
        event: Option<String>,
        /// What the value does not say (the new network, the job's summary).
        detail: Option<String>,
    },
    /// Between the firing and the clear threshold: an open alert stays open, none opens.
    Holding { value: u64 },
    /// The condition no longer holds.
    Clear { value: u64 },
}

impl Observation {
    pub fn value(&self) -> u64 {
        match self {
            Self::Firing { value, .. } | Self::Holding { value } | Self::Clear { value } => *value,
        }
    }
}

impl Condition {
    /// What a measured value means for a level metric (not an event's): firing above the
    /// threshold (at it for hours), clear below the clear threshold when there is one.
    pub fn observe(&self, value: u64) -> Observation {
        let t = self.threshold.unwrap_or(0);
        let fires = match self.metric {
            // Days until the forecast runs the quota out: fires at or under the threshold.
            Metric::QuotaExhaustionForecast => value <= t,
            Metric::DataInDay
            | Metric::DataInPeriod
            | Metric::SessionsInHour
            | Metric::CostInDay
            | Metric::CostInPeriod => value > t,
            _ => value >= t,
        };
        if fires {
            return Observation::Firing {
                value,
                event: None,
                detail: None,
            };
        }
        match self.clear_threshold {
            Some(c) if value >= c => Observation::Holding { value },
            _ => Observation::Clear { value },
        }
    }
}

/// A silence: alerts it covers open and resolve as usual but notify no one until it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub matcher: SilenceMatcher,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub comment: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// What a silence covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SilenceMatcher {
    Rule(Uuid),
    Sim(SimId),
    Label(LabelFilter),
    Customer(CustomerId),
}

/// The longest silence: 90 days.
pub const MAX_SILENCE_DAYS: i64 = 90;

impl Silence {
    pub fn check(&self, now: DateTime<Utc>) -> Result<()> {
        if self.ends_at <= now {
            return Err(Error::invalid("endsAt", "a silence must end in the future"));
        }
        if self.ends_at <= self.starts_at {
            return Err(Error::invalid("endsAt", "a silence must end after it starts"));
        }
        if self.ends_at - self.starts_at.max(now) > chrono::Duration::days(MAX_SILENCE_DAYS) {
            return Err(Error::invalid(
                "endsAt",
                format!("a silence lasts at most {MAX_SILENCE_DAYS} days"),
            ));
        }
        if let Some(c) = &self.comment {
            if c.chars().count() > 500 {
                return Err(Error::invalid("comment", "at most 500 characters"));
            }
        }
        if let SilenceMatcher::Label(f) = &self.matcher {
            crate::fleet::labels::parse_key(&f.key).map_err(|e| Error::invalid("label", e.to_string()))?;
        }
        Ok(())
    }

    pub fn active(&self, at: DateTime<Utc>) -> bool {
        self.starts_at <= at && at < self.ends_at
    }

    /// Whether it covers an alert of `rule` about the SIM `sim_id` (`None` for alerts about no
    /// SIM); `sim` is that SIM as it is now, when known (for silences by label or sub-customer).
    pub fn covers(&self, rule: Uuid, sim_id: Option<SimId>, sim: Option<&Sim>) -> bool {
        match (&self.matcher, sim) {
            (SilenceMatcher::Rule(r), _) => *r == rule,
            (SilenceMatcher::Sim(id), _) => sim_id == Some(*id),
            (SilenceMatcher::Customer(c), Some(s)) => s.customer_id == Some(*c),
            (SilenceMatcher::Label(f), Some(s)) => AlertTarget::Labels(vec![f.clone()]).matches(s),
            (_, None) => false,
        }
    }
}

#[cfg(test)]
mod tests;
