//! Alert rules, alerts and silences: the types, and the inputs rules are written with.

mod mutation;
mod query;
mod subscription;

pub(crate) use self::mutation::AlertMutation;
pub(crate) use self::query::AlertQueryRoot;
pub(crate) use self::subscription::AlertSubscription;

use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ioto_domain::alert::lifecycle::{Alert, AlertState};
use ioto_domain::alert::{
    AlertRule, AlertTarget, AnomalyCondition, AnomalySeverity, Channels, Condition, Metric, Pacing, RuleSpec,
    Severity, Silence, SilenceMatcher, TelemetryField, TelemetryLimit,
};
use ioto_domain::fleet::SimState;
use ioto_domain::{CustomerId, Error};

use crate::context::{actor, services};
use crate::enums::SimStateKind;
use crate::error::GqlResult;
use crate::fleet::{label_filters, LabelInput, PageInfo, SimObject};
use crate::forecast::{AnomalyKindGql, AnomalySeverityKind};
use crate::scalars::{BigInt, IccidScalar};

fn big(v: u64) -> BigInt {
    BigInt(i64::try_from(v).unwrap_or(i64::MAX))
}

fn count(v: BigInt, field: &str) -> async_graphql::Result<u64> {
    u64::try_from(v.0).map_err(|_| crate::to_gql(Error::invalid(field, "must not be negative")))
}

crate::enums::mirror_enum!(
    /// How bad an alert is.
    AlertSeverityKind, "AlertSeverity", Severity, [
        Critical,
        Major,
        Minor,
        Warning,
        Info,
    ]
);

crate::enums::mirror_enum!(
    /// What a rule measures.
    AlertMetricKind, "AlertMetric", Metric, [
        /// Bytes (up and down) a SIM used today, in the tenant's time zone; fires over
        /// `threshold` bytes, clears at the day's end.
        DataInDay,
        /// Bytes a SIM used this billing period (the tenant's calendar month); fires over
        /// `threshold` bytes.
        DataInPeriod,
        /// Hours since Ioto last saw a session of an active SIM; fires at `threshold` (1–168)
        /// hours, clears when the SIM is seen again (or below `clearThreshold` hours). SIMs never
        /// seen are not offline.
        OfflineHours,
        /// Sessions a SIM started in the current hour (UTC); fires over `threshold`.
        SessionsInHour,
        /// Bytes a SIM used today (UTC) against its median day of the 30 before (days with
        /// traffic, at least 7); fires over `threshold` (2–100) times the median.
        UsageOverMedian,
        /// Traffic on a network the SIM did not use in the 30 days before (a SIM without traffic
        /// in those days has no habit to break). An event.
        NewNetwork,
        /// Traffic in a country (mobile country code) the SIM did not use in the 30 days before.
        /// An event.
        NewCountry,
        /// A SIM's first traffic ever, as Ioto counted it. An event.
        FirstTraffic,
        /// One of the tenant's bulk jobs reached its final status (the rule's target is
        /// ALL_SIMS). An event.
        BulkJobFinished,
        /// A SIM changed state (into `state`, when named). An event: its alert resolves after
        /// `resolveAfterSeconds` without another.
        StateChanged,
        /// A SIM's data quota reached a stage of at least `threshold` percent. An event.
        QuotaStage,
        /// What a SIM's traffic cost today (UTC), as the latest rating of the tenant's retail
        /// card priced it; fires over `threshold` hundredths of the card's currency (500: 5.00).
        /// Evaluated on the clock against each new rating; a tenant without a retail card has no
        /// cost to watch.
        CostInDay,
        /// What a SIM's traffic cost in the retail card's current billing period, as the latest
        /// rating priced it; fires over `threshold` hundredths of the card's currency.
        CostInPeriod,
        /// Days since an active SIM was last activated (as the audit trail records it) without
        /// any traffic since; fires at `threshold` (1–90) days, clears with the SIM's first
        /// traffic (or when it leaves ACTIVE).
        NoTrafficAfterActivation,
        /// A SIM seen in another device: its sessions report another IMEI than the one it was
        /// last seen with (session contract version 2). An event.
        ImeiChanged,
        /// A device's reading of `field` over `value` (decimals allowed, below zero for
        /// temperatures), observed on the SIMs bound to the device (a device without a SIM is
        /// passed over); clears once the reading is at or below `clearValue` (hysteresis), or
        /// `value` without one. Evaluated on each reading as it is stored.
        TelemetryAbove,
        /// A device's reading of `field` under `value`, observed on the SIMs bound to the
        /// device; clears once the reading is at or above `clearValue`, or `value` without one.
        TelemetryBelow,
        /// A SIM's data quota runs out within `threshold` (1–31) days by its latest forecast
        /// (the day its expected usage reaches the limit, `Sim.forecast.quota.exhaustionDate`);
        /// clears when a later forecast no longer says so. A rule on every SIM also watches
        /// every quota pool, a rule on a sub-customer's SIMs that sub-customer's pools: a pool
        /// whose limit runs out within `threshold` days by its forecast
        /// (`QuotaPool.forecast.quota.exhaustionDate`) fires too, its alert about no SIM, and
        /// clears as a SIM's does or when the pool is deleted. Evaluated once a minute against
        /// the forecasts the hourly pass stores (`docs/forecasts.md`).
        QuotaExhaustionForecast,
        /// The anomaly detector found something about a SIM: of `anomalyKinds` (every kind when
        /// none is named) and at least `anomalyMinSeverity` (LOW by default). An event, one per
        /// anomaly, heard of once a minute after the hourly pass stores it; its alert resolves
        /// after `resolveAfterSeconds` without another, or when the anomaly is dismissed.
        Anomaly,
    ]
);

crate::enums::mirror_enum!(
    /// The sensor of a device a telemetry rule reads (the device's readings, `docs/events.md`).
    TelemetryFieldKind, "TelemetryField", TelemetryField, [
        /// `temperature_c`, in °C: -80 to 150.
        Temperature,
        /// `humidity_pct`, relative humidity in %: 0 to 100.
        Humidity,
        /// `battery_pct`, the battery's charge in %: 0 to 100.
        Battery,
        /// `light_lux`, illuminance in lx: 0 to 200,000.
        Light,
    ]
);

crate::enums::mirror_enum!(
    /// Where an alert stands.
    AlertStateKind, "AlertState", AlertState, [
        /// The condition holds; the rule's pending duration has not passed yet.
        Pending,
        /// The condition holds (and held for the pending duration).
        Firing,
        /// The condition no longer holds.
        Resolved,
    ]
);

/// Which SIMs a rule watches.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(name = "AlertTargetKind")]
pub enum AlertTargetKindGql {
    /// Every SIM of the tenant.
    AllSims,
    /// The SIMs of one sub-customer (`customerId`).
    Customer,
    /// SIMs carrying every label named (`labels`; a label without a value matches any value).
    Labels,
    /// SIMs on one tariff plan (`tariffPlan`).
    TariffPlan,
    /// One SIM (`iccid`).
    Sim,
}

#[derive(InputObject, Clone)]
pub struct AlertTargetInput {
    pub kind: AlertTargetKindGql,
    pub customer_id: Option<ID>,
    pub labels: Option<Vec<LabelInput>>,
    pub tariff_plan: Option<String>,
    pub iccid: Option<IccidScalar>,
}

#[derive(InputObject, Clone)]
pub struct AlertConditionInput {
    pub metric: AlertMetricKind,
    /// In the metric's unit: bytes, hours or percent.
    pub threshold: Option<BigInt>,
    /// OFFLINE_HOURS: clears only below this many hours (hysteresis).
    pub clear_threshold: Option<BigInt>,
    /// STATE_CHANGED: only changes into this state.
    pub state: Option<SimStateKind>,
    /// TELEMETRY_ABOVE and TELEMETRY_BELOW: the sensor read.
    pub field: Option<TelemetryFieldKind>,
    /// TELEMETRY_ABOVE and TELEMETRY_BELOW: fires beyond this reading, in the field's unit (°C,
    /// %, lx), at most two decimals, within the range devices report.
    pub value: Option<f64>,
    /// TELEMETRY_ABOVE and TELEMETRY_BELOW: clears only once the reading is back at or past this
    /// (below `value` for TELEMETRY_ABOVE, above it for TELEMETRY_BELOW): hysteresis.
    pub clear_value: Option<f64>,
    /// ANOMALY: the kinds heard of (none named: every kind; at most one of each).
    pub anomaly_kinds: Option<Vec<AnomalyKindGql>>,
    /// ANOMALY: the least severity heard of (LOW when not named).
    pub anomaly_min_severity: Option<AnomalySeverityKind>,
}

#[derive(InputObject, Clone)]
pub struct AlertChannelsInput {
    /// The tenant's notification inbox (and the `notifications` subscription).
    #[graphql(default = true)]
    pub in_app: bool,
    /// Every enabled webhook endpoint of the tenant, signed.
    #[graphql(default = false)]
    pub webhook: bool,
    /// Up to 10 addresses (sent when the server has SMTP configured).
    #[graphql(default)]
    pub emails: Vec<String>,
}

/// A rule as written. Every field is checked; an error names the first refused.
#[derive(InputObject, Clone)]
pub struct AlertRuleInput {
    /// 1 to 100 characters, unique in the tenant.
    pub name: String,
    pub description: Option<String>,
    #[graphql(default = true)]
    pub enabled: bool,
    #[graphql(default_with = "AlertSeverityKind::Warning")]
    pub severity: AlertSeverityKind,
    /// Default: every SIM of the tenant.
    pub target: Option<AlertTargetInput>,
    pub condition: AlertConditionInput,
    /// Default: the inbox only.
    pub channels: Option<AlertChannelsInput>,
    /// The condition must hold this long before the alert fires (0 to 86,400).
    #[graphql(default = 0)]
    pub pending_seconds: i32,
    /// The first notification waits this long for more alerts of the rule (0 to 3,600).
    #[graphql(default = 30)]
    pub group_wait_seconds: i32,
    /// At most one notification of the rule per this many seconds (10 to 86,400); a resolved
    /// alert is told of once it stayed resolved this long.
    #[graphql(default = 300)]
    pub group_interval_seconds: i32,
    /// Reminders of alerts still firing and not acknowledged (0: none; 60 to 604,800).
    #[graphql(default = 14400)]
    pub repeat_seconds: i32,
    /// An event's alert resolves after this long without another (60 to 604,800).
    #[graphql(default = 3600)]
    pub resolve_after_seconds: i32,
}

fn seconds(v: i32, field: &str) -> async_graphql::Result<u32> {
    u32::try_from(v).map_err(|_| crate::to_gql(Error::invalid(field, "must not be negative")))
}

impl AlertRuleInput {
    /// The rule's definition; the target's SIM is looked up by ICCID.
    pub async fn spec(self, ctx: &Context<'_>) -> async_graphql::Result<RuleSpec> {
        let target = match self.target {
            None => AlertTarget::AllSims,
            Some(t) => match t.kind {
                AlertTargetKindGql::AllSims => AlertTarget::AllSims,
                AlertTargetKindGql::Customer => {
                    let id = t.customer_id.ok_or_else(|| {
                        crate::to_gql(Error::invalid("target.customerId", "name the sub-customer"))
                    })?;
                    AlertTarget::Customer(CustomerId::parse(&id, "target.customerId").gql()?)
                }
                AlertTargetKindGql::Labels => {
                    AlertTarget::Labels(label_filters(&t.labels.unwrap_or_default()).gql()?)
                }
                AlertTargetKindGql::TariffPlan => {
                    AlertTarget::TariffPlan(t.tariff_plan.ok_or_else(|| {
                        crate::to_gql(Error::invalid("target.tariffPlan", "name the tariff plan"))
                    })?)
                }
                AlertTargetKindGql::Sim => {
                    let iccid = t
                        .iccid
                        .ok_or_else(|| crate::to_gql(Error::invalid("target.iccid", "name the SIM")))?;
                    let sim = services(ctx)
                        .fleet
                        .sim(actor(ctx)?, &iccid.0)
                        .await
                        .gql()?
                        .ok_or_else(|| {
                            crate::to_gql(Error::invalid("target.iccid", "no such SIM in this tenant"))
                        })?;
                    AlertTarget::Sim(sim.id)
                }
            },
        };
        let c = self.condition;
        let metric: Metric = c.metric.into();
        let telemetry =
            TelemetryLimit::from_parts(metric, c.field.map(TelemetryField::from), c.value, c.clear_value)
                .gql()?;
        let anomaly = match (metric, c.anomaly_kinds, c.anomaly_min_severity) {
            (Metric::Anomaly, kinds, least) => Some(AnomalyCondition {
                kinds: kinds.unwrap_or_default().into_iter().map(Into::into).collect(),
                min_severity: least.map_or(AnomalySeverity::Low, Into::into),
            }),
            (_, None, None) => None,
            (other, _, _) => {
                return Err(crate::to_gql(Error::invalid(
                    "condition.anomalyKinds",
                    format!(
                        "only ANOMALY takes anomaly kinds and a least severity, not {}",
                        other.as_str()
                    ),
                )))
            }
        };
        let channels = self.channels.map_or_else(Channels::default, |c| Channels {
            in_app: c.in_app,
            webhook: c.webhook,
            emails: c.emails.into_iter().map(|e| e.trim().to_owned()).collect(),
        });
        Ok(RuleSpec {
            name: self.name,
            description: self.description.filter(|d| !d.trim().is_empty()),
            enabled: self.enabled,
            severity: self.severity.into(),
            target,
            condition: Condition {
                metric,
                threshold: c.threshold.map(|t| count(t, "condition.threshold")).transpose()?,
                clear_threshold: c
                    .clear_threshold
                    .map(|t| count(t, "condition.clearThreshold"))
                    .transpose()?,
                state: c.state.map(SimState::from),
                telemetry,
                anomaly,
            },
            channels,
            pacing: Pacing {
                pending_seconds: seconds(self.pending_seconds, "pendingSeconds")?,
                group_wait_seconds: seconds(self.group_wait_seconds, "groupWaitSeconds")?,
                group_interval_seconds: seconds(self.group_interval_seconds, "groupIntervalSeconds")?,
                repeat_seconds: seconds(self.repeat_seconds, "repeatSeconds")?,
                resolve_after_seconds: seconds(self.resolve_after_seconds, "resolveAfterSeconds")?,
            },
        })
    }
}

/// The SIMs a rule watches.
#[derive(SimpleObject)]
#[graphql(name = "AlertTarget", complex)]
pub struct AlertTargetObject {
    pub kind: AlertTargetKindGql,
    pub customer_id: Option<ID>,
    pub labels: Vec<crate::fleet::LabelObject>,
    pub tariff_plan: Option<String>,
    #[graphql(skip)]
    sim_id: Option<ioto_domain::SimId>,
}

#[ComplexObject]
impl AlertTargetObject {
    /// The SIM watched (kind SIM), when the caller sees it.
    async fn sim(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SimObject>> {
        let Some(id) = self.sim_id else {
            return Ok(None);
        };
        SimObject::seen_by(ctx, id).await
    }
}

pub struct AlertRuleObject(pub AlertRule);

/// A rule: which SIMs it watches, what fires it, how loud it is and whom it tells.
#[Object(name = "AlertRule")]
impl AlertRuleObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.spec.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.spec.description.as_deref()
    }
    async fn enabled(&self) -> bool {
        self.0.spec.enabled
    }
    async fn severity(&self) -> AlertSeverityKind {
        self.0.spec.severity.into()
    }
    async fn target(&self) -> AlertTargetObject {
        let t = &self.0.spec.target;
        AlertTargetObject {
            kind: match t {
                AlertTarget::AllSims => AlertTargetKindGql::AllSims,
                AlertTarget::Customer(_) => AlertTargetKindGql::Customer,
                AlertTarget::Labels(_) => AlertTargetKindGql::Labels,
                AlertTarget::TariffPlan(_) => AlertTargetKindGql::TariffPlan,
                AlertTarget::Sim(_) => AlertTargetKindGql::Sim,
            },
            customer_id: match t {
                AlertTarget::Customer(c) => Some(ID(c.0.to_string())),
                _ => None,
            },
            labels: match t {
                AlertTarget::Labels(l) => l
                    .iter()
                    .map(|f| crate::fleet::LabelObject {
                        key: f.key.clone(),
                        value: f.value.clone().unwrap_or_default(),
                    })
                    .collect(),
                _ => Vec::new(),
            },
            tariff_plan: match t {
                AlertTarget::TariffPlan(p) => Some(p.clone()),
                _ => None,
            },
            sim_id: match t {
                AlertTarget::Sim(id) => Some(*id),
                _ => None,
            },
        }
    }
    async fn metric(&self) -> AlertMetricKind {
        self.0.spec.condition.metric.into()
    }
    async fn threshold(&self) -> Option<BigInt> {
        self.0.spec.condition.threshold.map(big)
    }
    async fn clear_threshold(&self) -> Option<BigInt> {
        self.0.spec.condition.clear_threshold.map(big)
    }
    async fn state(&self) -> Option<SimStateKind> {
        self.0.spec.condition.state.map(Into::into)
    }
    /// TELEMETRY_ABOVE and TELEMETRY_BELOW: the sensor read.
    async fn field(&self) -> Option<TelemetryFieldKind> {
        self.0.spec.condition.telemetry.map(|t| t.field.into())
    }
    /// TELEMETRY_ABOVE and TELEMETRY_BELOW: the reading it fires beyond, in the field's unit.
    async fn value(&self) -> Option<f64> {
        self.0.spec.condition.telemetry.map(|t| t.value.as_f64())
    }
    /// TELEMETRY_ABOVE and TELEMETRY_BELOW: the reading it clears at (hysteresis), if any.
    async fn clear_value(&self) -> Option<f64> {
        self.0
            .spec
            .condition
            .telemetry
            .and_then(|t| t.clear_value)
            .map(|v| v.as_f64())
    }
    /// ANOMALY: the kinds heard of (empty: every kind).
    async fn anomaly_kinds(&self) -> Vec<AnomalyKindGql> {
        self.0
            .spec
            .condition
            .anomaly
            .as_ref()
            .map(|a| a.kinds.iter().map(|k| (*k).into()).collect())
            .unwrap_or_default()
    }
    /// ANOMALY: the least severity heard of.
    async fn anomaly_min_severity(&self) -> Option<AnomalySeverityKind> {
        self.0
            .spec
            .condition
            .anomaly
            .as_ref()
            .map(|a| a.min_severity.into())
    }
    /// The condition in words ("Data used in a day over 50.0 MB").
    async fn condition_text(&self) -> String {
        condition_text(&self.0.spec.condition)
    }
    async fn in_app(&self) -> bool {
        self.0.spec.channels.in_app
    }
    async fn webhook(&self) -> bool {
        self.0.spec.channels.webhook
    }
    async fn emails(&self) -> &[String] {
        &self.0.spec.channels.emails
    }
    async fn pending_seconds(&self) -> i32 {
        i32::try_from(self.0.spec.pacing.pending_seconds).unwrap_or(i32::MAX)
    }
    async fn group_wait_seconds(&self) -> i32 {
        i32::try_from(self.0.spec.pacing.group_wait_seconds).unwrap_or(i32::MAX)
    }
    async fn group_interval_seconds(&self) -> i32 {
        i32::try_from(self.0.spec.pacing.group_interval_seconds).unwrap_or(i32::MAX)
    }
    async fn repeat_seconds(&self) -> i32 {
        i32::try_from(self.0.spec.pacing.repeat_seconds).unwrap_or(i32::MAX)
    }
    async fn resolve_after_seconds(&self) -> i32 {
        i32::try_from(self.0.spec.pacing.resolve_after_seconds).unwrap_or(i32::MAX)
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Pass to `updateAlertRule` to change the rule only if no one changed it meanwhile.
    async fn version(&self) -> BigInt {
        BigInt(self.0.version)
    }
}

/// A condition in words.
pub fn condition_text(c: &Condition) -> String {
    let t = c.threshold.unwrap_or(0);
    match c.metric {
        Metric::DataInDay => format!("Data used in a day over {}", c.metric.value_text(t)),
        Metric::DataInPeriod => format!("Data used in the billing period over {}", c.metric.value_text(t)),
        Metric::OfflineHours => match c.clear_threshold {
            Some(clear) => format!("No session for {t} hours or more (clears under {clear} hours)"),
            None => format!("No session for {t} hours or more"),
        },
        Metric::StateChanged => match c.state {
            Some(s) => format!(
                "SIM changed state to {}",
                s.as_str().to_lowercase().replace('_', " ")
            ),
            None => "SIM changed state".to_owned(),
        },
        Metric::QuotaStage => format!("Data quota reached {t} % or more"),
        Metric::SessionsInHour => format!("More than {t} sessions in an hour"),
        Metric::UsageOverMedian => format!("Data used today over {t} times the SIM's median day"),
        Metric::NewNetwork => "Traffic on a network not used in 30 days".to_owned(),
        Metric::NewCountry => "Traffic in a country not visited in 30 days".to_owned(),
        Metric::FirstTraffic => "A SIM's first traffic".to_owned(),
        Metric::BulkJobFinished => "A bulk job finished".to_owned(),
        Metric::CostInDay => format!("Traffic cost today over {}", c.metric.value_text(t)),
        Metric::CostInPeriod => format!(
            "Traffic cost in the billing period over {}",
            c.metric.value_text(t)
        ),
        Metric::NoTrafficAfterActivation => format!("No traffic {t} days or more after activation"),
        Metric::ImeiChanged => "A SIM seen in another device (IMEI changed)".to_owned(),
        Metric::QuotaExhaustionForecast => match t {
            1 => "Data quota forecast to run out within a day".to_owned(),
            _ => format!("Data quota forecast to run out within {t} days"),
        },
        Metric::Anomaly => {
            let a = c.anomaly.clone().unwrap_or_else(AnomalyCondition::any);
            let kinds = if a.kinds.is_empty() {
                "An anomaly".to_owned()
            } else {
                let words: Vec<&str> = a
                    .kinds
                    .iter()
                    .map(|k| ioto_domain::forecast::kind_words(*k))
                    .collect();
                format!("An anomaly ({})", words.join(", "))
            };
            match a.min_severity {
                AnomalySeverity::Low => format!("{kinds} found"),
                least => format!(
                    "{kinds} of {} severity or more found",
                    least.as_str().to_lowercase()
                ),
            }
        }
        Metric::TelemetryAbove | Metric::TelemetryBelow => match c.telemetry {
            Some(t) => {
                let f = t.field;
                let (beyond, back) = if c.metric == Metric::TelemetryAbove {
                    ("above", "at or below")
                } else {
                    ("below", "at or above")
                };
                let word = f.word();
                let mut text = format!(
                    "{}{} {beyond} {}",
                    word.get(..1).unwrap_or_default().to_uppercase(),
                    word.get(1..).unwrap_or_default(),
                    f.text(t.value)
                );
                if let Some(clear) = t.clear_value {
                    text.push_str(&format!(" (clears {back} {})", f.text(clear)));
                }
                text
            }
            None => "A device's reading".to_owned(),
        },
    }
}

pub struct AlertObject(pub Alert);

/// One alert: a rule's condition on one SIM, over one incident.
#[Object(name = "Alert")]
impl AlertObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn rule_id(&self) -> ID {
        ID(self.0.rule_id.to_string())
    }
    /// The rule, when the caller may read rules (sub-customers' users may not).
    async fn rule(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<AlertRuleObject>> {
        let actor = actor(ctx)?;
        if actor.role == ioto_domain::Role::CustomerUser {
            return Ok(None);
        }
        Ok(services(ctx)
            .alerts
            .alert_rule(actor, self.0.rule_id)
            .await
            .gql()?
            .map(AlertRuleObject))
    }
    async fn severity(&self) -> AlertSeverityKind {
        self.0.severity.into()
    }
    async fn state(&self) -> AlertStateKind {
        self.0.state.into()
    }
    /// What it is about: the SIM's ICCID, the bulk job's name, or the quota pool's ("pool
    /// 'Cameras'").
    async fn subject(&self) -> &str {
        &self.0.subject
    }
    /// The SIM's ICCID (null for alerts about no SIM: a bulk job, a quota pool).
    async fn iccid(&self) -> Option<&str> {
        self.0.sim_id.map(|_| self.0.subject.as_str())
    }
    async fn sim(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SimObject>> {
        let Some(id) = self.0.sim_id else {
            return Ok(None);
        };
        SimObject::seen_by(ctx, id).await
    }
    /// The metric's value when last evaluated (bytes, hours, sessions or percent; for a bulk
    /// job, its failed rows; for a telemetry rule, the reading in hundredths of its field's unit:
    /// 3850 is 38.5 °C, -1250 is -12.5 °C — `detail` says it in words).
    async fn value(&self) -> BigInt {
        // Signed: a telemetry alert keeps a reading below zero in two's complement (see
        // `ioto_domain::alert::telemetry`); the other metrics' values are never negative.
        BigInt(self.0.value as i64)
    }
    /// What the value does not say: the new network, the change of state, the job's summary,
    /// today's usage against the median.
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    async fn fired_at(&self) -> Option<DateTime<Utc>> {
        self.0.fired_at
    }
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }
    async fn last_seen_at(&self) -> DateTime<Utc> {
        self.0.last_seen_at
    }
    /// Occurrences of its event after the first.
    async fn repeats(&self) -> i32 {
        i32::try_from(self.0.repeats).unwrap_or(i32::MAX)
    }
    /// Times it fired again soon after resolving (kept as one incident).
    async fn flaps(&self) -> i32 {
        i32::try_from(self.0.flaps).unwrap_or(i32::MAX)
    }
    async fn acknowledged(&self) -> bool {
        self.0.acknowledged.is_some()
    }
    async fn acknowledged_by(&self) -> Option<&str> {
        self.0.acknowledged.as_ref().map(|a| a.by.as_str())
    }
    async fn acknowledged_at(&self) -> Option<DateTime<Utc>> {
        self.0.acknowledged.as_ref().map(|a| a.at)
    }
    async fn acknowledge_comment(&self) -> Option<&str> {
        self.0.acknowledged.as_ref().and_then(|a| a.comment.as_deref())
    }
    /// When people were last told of it.
    async fn notified_at(&self) -> Option<DateTime<Utc>> {
        self.0.announced_at
    }
}

/// A page of alerts, newest first (Relay connection).
#[derive(SimpleObject)]
pub struct AlertConnection {
    pub edges: Vec<AlertEdge>,
    pub nodes: Vec<AlertObject>,
    pub page_info: PageInfo,
}

#[derive(SimpleObject)]
pub struct AlertEdge {
    pub cursor: String,
    pub node: AlertObject,
}

/// Open alerts of one severity.
#[derive(SimpleObject)]
pub struct OpenAlertCount {
    pub severity: AlertSeverityKind,
    pub firing: i32,
    pub pending: i32,
}

impl OpenAlertCount {
    pub fn of(c: ioto_domain::ports::alerts::OpenCount) -> Self {
        Self {
            severity: c.severity.into(),
            firing: i32::try_from(c.firing).unwrap_or(i32::MAX),
            pending: i32::try_from(c.pending).unwrap_or(i32::MAX),
        }
    }
}

#[derive(InputObject, Clone, Default)]
pub struct AlertFilterInput {
    #[graphql(default)]
    pub states: Vec<AlertStateKind>,
    #[graphql(default)]
    pub severities: Vec<AlertSeverityKind>,
    pub rule_id: Option<ID>,
    pub iccid: Option<IccidScalar>,
    pub customer_id: Option<ID>,
    /// Started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    pub to: Option<DateTime<Utc>>,
}

/// What a silence covers: exactly one of a rule, a SIM, a label or a sub-customer.
#[derive(InputObject, Clone)]
pub struct SilenceInput {
    pub rule_id: Option<ID>,
    pub iccid: Option<IccidScalar>,
    pub label: Option<LabelInput>,
    pub customer_id: Option<ID>,
    /// Default: now.
    pub starts_at: Option<DateTime<Utc>>,
    /// At most 90 days ahead.
    pub ends_at: DateTime<Utc>,
    pub comment: Option<String>,
}

pub struct SilenceObject(pub Silence);

/// A silence: alerts it covers open and resolve as usual but notify no one until it ends.
#[Object(name = "Silence")]
impl SilenceObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn rule_id(&self) -> Option<ID> {
        match &self.0.matcher {
            SilenceMatcher::Rule(r) => Some(ID(r.to_string())),
            _ => None,
        }
    }
    async fn sim(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SimObject>> {
        let SilenceMatcher::Sim(id) = &self.0.matcher else {
            return Ok(None);
        };
        SimObject::seen_by(ctx, *id).await
    }
    async fn label(&self) -> Option<crate::fleet::LabelObject> {
        match &self.0.matcher {
            SilenceMatcher::Label(f) => Some(crate::fleet::LabelObject {
                key: f.key.clone(),
                value: f.value.clone().unwrap_or_default(),
            }),
            _ => None,
        }
    }
    async fn customer_id(&self) -> Option<ID> {
        match &self.0.matcher {
            SilenceMatcher::Customer(c) => Some(ID(c.0.to_string())),
            _ => None,
        }
    }
    async fn starts_at(&self) -> DateTime<Utc> {
        self.0.starts_at
    }
    async fn ends_at(&self) -> DateTime<Utc> {
        self.0.ends_at
    }
    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
