//! Data quotas: a limit on the bytes a SIM may use in a billing period, with stages that warn
//! on the way (80 %, 90 %, …) and an action when the limit is reached — notify only, or suspend
//! the SIM through the network — and, if asked, a resume when the next period starts.
//!
//! A quota's period is the calendar month in the tenant's time zone. What a SIM used in it is
//! read from the usage store (the hourly cube), so the stage a period has reached is a level, not
//! a running sum of events: evaluating the same usage again, after a redelivered event, a
//! restart or on a second instance, finds the stage already reached and does nothing. A stage
//! only ever moves up within a period; each move up is written with its notification in one
//! transaction.

use chrono::{DateTime, Datelike, Duration, Months, Timelike, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use crate::analytics::plan::local_midnight;
use crate::{Error, Result, SimId, TenantId};

/// Most warning stages a quota may have.
pub const MAX_STAGES: usize = 5;
/// The largest limit a quota may set: 1 PB, far above any SIM's month, far below `i64::MAX`.
pub const MAX_LIMIT_BYTES: u64 = 1 << 50;
/// The stage a period is at once its limit is reached.
pub const EXCEEDED: u8 = 100;

/// What happens when a SIM reaches its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaAction {
    /// A notification, nothing else: the SIM keeps its service.
    Notify,
    /// A notification, and the SIM is suspended through the network (audited like any bulk
    /// change; a refusal or no answer is recorded and shown).
    Suspend,
}

impl QuotaAction {
    pub const ALL: [QuotaAction; 2] = [QuotaAction::Notify, QuotaAction::Suspend];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notify => "NOTIFY",
            Self::Suspend => "SUSPEND",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| Error::invalid("action", format!("'{s}' is not a quota action (NOTIFY, SUSPEND)")))
    }
}

/// What a quota asks: its limit, its warning stages and what happens at the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRule {
    pub limit_bytes: u64,
    /// Percentages of the limit that notify when reached, ascending, each 1–99.
    pub stages: Vec<u8>,
    pub action: QuotaAction,
    /// Whether a SIM suspended by the quota is resumed when the next period starts.
    pub resume_next_period: bool,
}

impl QuotaRule {
    /// Checks a rule as given, naming the field at fault and what is allowed.
    pub fn check(&self) -> Result<()> {
        if self.limit_bytes == 0 || self.limit_bytes > MAX_LIMIT_BYTES {
            return Err(Error::invalid(
                "limitBytes",
                format!("must be between 1 and {MAX_LIMIT_BYTES} bytes (1 PiB)"),
            ));
        }
        if self.stages.len() > MAX_STAGES {
            return Err(Error::invalid(
                "stages",
                format!("at most {MAX_STAGES} stages, {} given", self.stages.len()),
            ));
        }
        if let Some(s) = self.stages.iter().find(|s| !(1..EXCEEDED).contains(*s)) {
            return Err(Error::invalid(
                "stages",
                format!("{s} is not a percentage between 1 and 99 (the limit itself is 100)"),
            ));
        }
        if self.stages.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::invalid("stages", "must be ascending, each once"));
        }
        if self.resume_next_period && self.action != QuotaAction::Suspend {
            return Err(Error::invalid(
                "resumeNextPeriod",
                "only a quota that suspends can resume (action SUSPEND)",
            ));
        }
        Ok(())
    }

    /// The highest stage `used` bytes reach: [`EXCEEDED`] at or past the limit, else the highest
    /// warning stage at or below the percentage used, else 0.
    pub fn stage_of(&self, used: u64) -> u8 {
        if used >= self.limit_bytes {
            return EXCEEDED;
        }
        // used < limit ≤ 2^50, so the product fits a u128 and the percentage is below 100.
        let percent = (u128::from(used) * 100 / u128::from(self.limit_bytes)) as u8;
        self.stages
            .iter()
            .copied()
            .filter(|s| *s <= percent)
            .max()
            .unwrap_or(0)
    }

    /// Bytes left before the limit after `used` (0 past it).
    pub fn remaining(&self, used: u64) -> u64 {
        self.limit_bytes.saturating_sub(used)
    }

    /// Bytes `used` past the limit.
    pub fn overshoot(&self, used: u64) -> u64 {
        used.saturating_sub(self.limit_bytes)
    }

    /// Percentage of the limit `used` is, to two decimals (above 100 past the limit).
    pub fn percent(&self, used: u64) -> f64 {
        let basis = u128::from(used) * 10_000 / u128::from(self.limit_bytes.max(1));
        basis as f64 / 100.0
    }

    /// Where `used` stands: within, past a warning stage, or at the limit.
    pub fn standing(&self, used: u64) -> Standing {
        match self.stage_of(used) {
            EXCEEDED => Standing::Exceeded,
            0 => Standing::Within,
            _ => Standing::Warning,
        }
    }
}

/// Where usage stands against a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Below every warning stage.
    Within,
    /// Past a warning stage, below the limit.
    Warning,
    /// At or past the limit.
    Exceeded,
}

/// Where a SIM's quota comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QuotaSource {
    /// Set on the SIM itself (one by one, by filter or in a bulk job): it stays whatever the
    /// defaults say.
    Sim,
    /// The default of the SIM's tariff plan (the default's id).
    TariffPlan(Uuid),
    /// The tenant's default, for SIMs whose tariff plan has none (the default's id).
    Tenant(Uuid),
}

impl QuotaSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sim => "SIM",
            Self::TariffPlan(_) => "TARIFF_PLAN",
            Self::Tenant(_) => "TENANT",
        }
    }

    /// The default the quota follows, when it follows one.
    pub fn default_id(&self) -> Option<Uuid> {
        match self {
            Self::Sim => None,
            Self::TariffPlan(id) | Self::Tenant(id) => Some(*id),
        }
    }
}

/// A default quota: the tenant's (for every SIM without a quota of its own or of its tariff
/// plan), or a tariff plan's (for the plan's SIMs without a quota of their own). SIMs follow their
/// default: when it changes, their quota changes; when a SIM moves to another plan, it takes that
/// plan's default; a quota set on the SIM itself overrides both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaDefault {
    pub id: Uuid,
    pub tenant_id: TenantId,
    /// The tariff plan whose SIMs it applies to; `None`: the tenant's default.
    pub tariff_plan: Option<String>,
    pub rule: QuotaRule,
    pub set_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The longest tariff plan name a default names (as SIMs carry it).
pub const MAX_TARIFF_PLAN_CHARS: usize = 100;

/// Checks the tariff plan a default names: not blank, at most [`MAX_TARIFF_PLAN_CHARS`].
pub fn check_tariff_plan(plan: &str) -> Result<()> {
    if plan.trim().is_empty() || plan.trim() != plan {
        return Err(Error::invalid(
            "tariffPlan",
            "must name a tariff plan without leading or trailing spaces (leave it out for the tenant's default)",
        ));
    }
    if plan.chars().count() > MAX_TARIFF_PLAN_CHARS {
        return Err(Error::invalid(
            "tariffPlan",
            format!("must be at most {MAX_TARIFF_PLAN_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Which default a SIM of `plan` follows among `defaults` (of its tenant): its plan's, else the
/// tenant's, else none.
pub fn default_for<'a>(defaults: &'a [QuotaDefault], plan: Option<&str>) -> Option<&'a QuotaDefault> {
    plan.and_then(|p| defaults.iter().find(|d| d.tariff_plan.as_deref() == Some(p)))
        .or_else(|| defaults.iter().find(|d| d.tariff_plan.is_none()))
}

impl QuotaDefault {
    /// The source a SIM following this default shows.
    pub fn source(&self) -> QuotaSource {
        match self.tariff_plan {
            Some(_) => QuotaSource::TariffPlan(self.id),
            None => QuotaSource::Tenant(self.id),
        }
    }
}

/// A SIM's quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimQuota {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub sim_id: SimId,
    pub rule: QuotaRule,
    pub source: QuotaSource,
    /// Who set it (as the audit trail names them).
    pub set_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where the action at the limit stands in a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionState {
    /// Nothing to do (limit not reached, or the action only notifies).
    None,
    /// The SIM is to be suspended; a server will send it.
    Pending,
    /// The suspension was handed to the network (as a bulk job).
    Requested,
    /// The network suspended the SIM (or it was not active any more).
    Done,
    /// The network refused or did not answer; the reason says which.
    Failed,
}

impl ActionState {
    pub const ALL: [ActionState; 5] = [
        ActionState::None,
        ActionState::Pending,
        ActionState::Requested,
        ActionState::Done,
        ActionState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Pending => "PENDING",
            Self::Requested => "REQUESTED",
            Self::Done => "DONE",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| Error::Internal(format!("'{s}' is not a quota action state")))
    }
}

/// The two things a quota does to a SIM through the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaStep {
    /// At the limit: suspended.
    Suspend,
    /// When the next period starts: a SIM the quota suspended is resumed (when the quota asks).
    Resume,
}

/// A quota's standing in one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaPeriod {
    pub quota_id: Uuid,
    pub tenant_id: TenantId,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Bytes used in the period when last evaluated.
    pub used_bytes: u64,
    /// The highest stage reached (0: none, [`EXCEEDED`]: the limit).
    pub stage: u8,
    pub exceeded_at: Option<DateTime<Utc>>,
    pub action_state: ActionState,
    /// Why the action failed, as the network said.
    pub action_reason: Option<String>,
    /// The bulk job that carries the action.
    pub bulk_job_id: Option<Uuid>,
    /// Where the resume at the period's end stands (a SIM this period suspended, of a quota
    /// that resumes).
    pub resume_state: ActionState,
    pub resume_reason: Option<String>,
    pub resume_job_id: Option<Uuid>,
    pub evaluated_at: DateTime<Utc>,
}

impl QuotaPeriod {
    /// What the period has to send through the network, where it stands and its bulk job.
    pub fn step(&self) -> (QuotaStep, ActionState, Option<Uuid>) {
        step_of(
            (self.action_state, self.bulk_job_id),
            (self.resume_state, self.resume_job_id),
        )
    }
}

/// What a period (of a SIM's quota or a pool) has to send through the network, from where its
/// suspension and its resume stand (each with its bulk job): the resume once the period has
/// ended and one is under way, else the suspension.
pub fn step_of(
    suspension: (ActionState, Option<Uuid>),
    resume: (ActionState, Option<Uuid>),
) -> (QuotaStep, ActionState, Option<Uuid>) {
    match resume {
        (ActionState::None, _) => (QuotaStep::Suspend, suspension.0, suspension.1),
        (s, job) => (QuotaStep::Resume, s, job),
    }
}

/// What `used` bytes in the period holding `at` (in `tz`) make of `quota`: the stage they
/// reach and, at the limit of a quota that suspends, the action waiting to be sent.
pub fn standing(quota: &SimQuota, tz: Tz, used: u64, at: DateTime<Utc>) -> QuotaPeriod {
    let (start, end) = period_of(tz, at);
    let stage = quota.rule.stage_of(used);
    let exceeded = stage >= EXCEEDED;
    let suspends = exceeded && quota.rule.action == QuotaAction::Suspend;
    QuotaPeriod {
        quota_id: quota.id,
        tenant_id: quota.tenant_id,
        start,
        end,
        used_bytes: used,
        stage,
        exceeded_at: exceeded.then_some(at),
        action_state: if suspends {
            ActionState::Pending
        } else {
            ActionState::None
        },
        action_reason: None,
        bulk_job_id: None,
        resume_state: ActionState::None,
        resume_reason: None,
        resume_job_id: None,
        evaluated_at: at,
    }
}

/// The period holding `at` in `tz`: its first hour and the next period's. A calendar month,
/// from local midnight on the 1st; in a zone whose offset is not a whole number of hours the
/// start is taken at the hour before (usage is kept by hour), so a period may count up to
/// 45 minutes of the previous month.
pub fn period_of(tz: Tz, at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let local = at.with_timezone(&tz).date_naive();
    let first = local.with_day(1).unwrap_or(local);
    let start = local_midnight(tz, first);
    let end = local_midnight(tz, first + Months::new(1));
    (floor_hour(start), floor_hour(end))
}

fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t - Duration::minutes(i64::from(t.minute()))
        - Duration::seconds(i64::from(t.second()))
        - Duration::nanoseconds(i64::from(t.nanosecond()))
}

/// What a SIM's quota shows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaStatus {
    pub quota: SimQuota,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub used_bytes: u64,
    /// The highest stage reached in the period (0 when none).
    pub stage: u8,
    pub action_state: ActionState,
    pub action_reason: Option<String>,
    /// Where the resume of the period before stands (a SIM the quota suspended then, when the
    /// quota resumes): `None` when there was nothing to resume.
    pub last_resume: Option<(ActionState, Option<String>)>,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn rule(limit: u64, stages: &[u8]) -> QuotaRule {
        QuotaRule {
            limit_bytes: limit,
            stages: stages.to_vec(),
            action: QuotaAction::Notify,
            resume_next_period: false,
        }
    }

    #[test]
    fn the_stage_reached_is_the_highest_at_or_below_the_share_used() {
        let r = rule(1_000, &[50, 80, 90]);
        let stages: Vec<u8> = [0, 499, 500, 799, 800, 899, 900, 999, 1_000, 5_000]
            .into_iter()
            .map(|u| r.stage_of(u))
            .collect();
        assert_eq!(stages, [0, 0, 50, 50, 80, 80, 90, 90, 100, 100]);
        assert_eq!(rule(1, &[]).stage_of(0), 0);
        assert_eq!(rule(MAX_LIMIT_BYTES, &[99]).stage_of(MAX_LIMIT_BYTES - 1), 99);
    }

    #[test]
    fn a_rule_is_refused_naming_its_field() {
        let field = |r: QuotaRule| match r.check() {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(rule(0, &[])), "limitBytes");
        assert_eq!(field(rule(MAX_LIMIT_BYTES + 1, &[])), "limitBytes");
        assert_eq!(field(rule(10, &[0])), "stages");
        assert_eq!(field(rule(10, &[100])), "stages");
        assert_eq!(field(rule(10, &[80, 50])), "stages");
        assert_eq!(field(rule(10, &[50, 50])), "stages");
        assert_eq!(field(rule(10, &[10, 20, 30, 40, 50, 60])), "stages");
        let resume = QuotaRule {
            resume_next_period: true,
            ..rule(10, &[])
        };
        assert_eq!(field(resume), "resumeNextPeriod");
        assert!(rule(10, &[80, 90]).check().is_ok());
    }

    #[test]
    fn a_period_is_the_local_calendar_month() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let at = Utc.with_ymd_and_hms(2026, 3, 31, 22, 30, 0).unwrap(); // 1 April, 00:30 in Berlin
        let (start, end) = period_of(berlin, at);
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 3, 31, 22, 0, 0).unwrap());
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 4, 30, 22, 0, 0).unwrap());
        let december = Utc.with_ymd_and_hms(2026, 12, 15, 12, 0, 0).unwrap();
        let (start, end) = period_of(berlin, december);
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 11, 30, 23, 0, 0).unwrap());
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0).unwrap());
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap(); // +05:30: the hour before
        let (start, _) = period_of(kolkata, december);
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 11, 30, 18, 0, 0).unwrap());
        let (start, end) = period_of(Tz::UTC, december);
        assert_eq!((start.day(), end.month()), (1, 1));
    }

    #[test]
    fn a_sim_follows_its_plans_default_else_the_tenants() {
        let default = |plan: Option<&str>| QuotaDefault {
            id: Uuid::new_v4(),
            tenant_id: TenantId(Uuid::nil()),
            tariff_plan: plan.map(str::to_owned),
            rule: rule(1_000, &[]),
            set_by: "alice".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let (tenant, iot) = (default(None), default(Some("IoT 1 GB")));
        let both = [iot.clone(), tenant.clone()];
        assert_eq!(default_for(&both, Some("IoT 1 GB")).map(|d| d.id), Some(iot.id));
        assert_eq!(default_for(&both, Some("Other")).map(|d| d.id), Some(tenant.id));
        assert_eq!(default_for(&both, None).map(|d| d.id), Some(tenant.id));
        assert_eq!(default_for(std::slice::from_ref(&iot), Some("Other")), None);
        assert_eq!(iot.source(), QuotaSource::TariffPlan(iot.id));
        assert!(check_tariff_plan(" IoT").is_err() && check_tariff_plan("").is_err());
        assert!(check_tariff_plan(&"x".repeat(101)).is_err() && check_tariff_plan("IoT 1 GB").is_ok());
    }

    #[test]
    fn a_rule_says_what_is_left_what_went_past_and_where_usage_stands() {
        let r = rule(3_000, &[80]);
        let at = |s: u64| (r.remaining(s), r.overshoot(s), r.percent(s), r.standing(s));
        assert_eq!(at(1_000), (2_000, 0, 33.33, Standing::Within));
        assert_eq!(at(2_400), (600, 0, 80.0, Standing::Warning));
        assert_eq!(at(3_000), (0, 0, 100.0, Standing::Exceeded));
        assert_eq!(at(4_500), (0, 1_500, 150.0, Standing::Exceeded));
    }
}
