//! Quota pools: one data limit per period shared by a group of SIMs — a sub-customer's SIMs, or
//! the SIMs carrying some labels — with the warning stages and the action at the limit a SIM's
//! quota has (see [`crate::quota`]).
//!
//! A pool's usage in a period is the sum of what its member SIMs used in it, read from the usage
//! store when the pool is evaluated; its stage, like a SIM quota's, is a level that only moves
//! up within a period, each move written with its notification in one transaction. At the limit
//! of a pool that suspends, its active member SIMs are suspended as one bulk job; when the next
//! period starts, a pool that resumes has the SIMs that job suspended resumed as another.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use crate::fleet::query::{CustomerFilter, LabelFilter, SimFilter};
use crate::fleet::Sim;
use crate::quota::{period_of, ActionState, QuotaAction, QuotaRule, QuotaStep, EXCEEDED};
use crate::{CustomerId, Error, Result, TenantId};

/// Most pools a tenant keeps.
pub const MAX_POOLS_PER_TENANT: u64 = 100;
/// Most SIMs a pool counts: past it the pool is not evaluated (and one bulk job takes no more).
pub const MAX_POOL_SIMS: u64 = 100_000;
/// Most label conditions a pool's members are selected by.
pub const MAX_POOL_LABELS: usize = 10;
/// The longest pool name.
pub const MAX_POOL_NAME_CHARS: usize = 100;

/// The SIMs a pool counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolMembers {
    /// Every SIM assigned to the sub-customer.
    Customer(CustomerId),
    /// Every SIM of the tenant matching each condition (the key present, with the value when one
    /// is named).
    Labels(Vec<LabelFilter>),
}

impl PoolMembers {
    /// The SIM list's filter selecting the members.
    pub fn filter(&self) -> SimFilter {
        match self {
            Self::Customer(c) => SimFilter {
                customer: Some(CustomerFilter::Is(*c)),
                ..SimFilter::default()
            },
            Self::Labels(labels) => SimFilter {
                labels: labels.clone(),
                ..SimFilter::default()
            },
        }
    }

    /// Whether the SIM (of the pool's tenant) counts toward the pool.
    pub fn matches(&self, sim: &Sim) -> bool {
        match self {
            Self::Customer(c) => sim.customer_id == Some(*c),
            Self::Labels(filters) => LabelFilter::all_hold(filters, &sim.labels),
        }
    }

    /// The sub-customer whose SIMs the pool counts, for a pool of one.
    pub fn customer(&self) -> Option<CustomerId> {
        match self {
            Self::Customer(c) => Some(*c),
            Self::Labels(_) => None,
        }
    }

    /// Checks the label conditions: 1 to [`MAX_POOL_LABELS`], each key a label key, each value
    /// a label value.
    pub fn check(&self) -> Result<()> {
        let Self::Labels(filters) = self else {
            return Ok(());
        };
        if filters.is_empty() {
            return Err(Error::invalid(
                "labels",
                "name at least one label to select SIMs by",
            ));
        }
        if filters.len() > MAX_POOL_LABELS {
            return Err(Error::invalid(
                "labels",
                format!(
                    "at most {MAX_POOL_LABELS} label conditions, {} given",
                    filters.len()
                ),
            ));
        }
        for f in filters {
            let key =
                crate::fleet::labels::parse_key(&f.key).map_err(|e| Error::invalid("labels", reason(e)))?;
            if let Some(v) = &f.value {
                crate::fleet::labels::parse_value(&key, v)
                    .map_err(|e| Error::invalid("labels", reason(e)))?;
            }
        }
        Ok(())
    }
}

/// What an error says, without the field it named.
fn reason(e: Error) -> String {
    match e {
        Error::InvalidInput { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// A pool: its members, and the limit they share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaPool {
    pub id: Uuid,
    pub tenant_id: TenantId,
    /// Unique in the tenant, 1 to [`MAX_POOL_NAME_CHARS`] characters.
    pub name: String,
    pub members: PoolMembers,
    pub rule: QuotaRule,
    /// Who set it last (as the audit trail names them).
    pub set_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl QuotaPool {
    /// Checks the pool as given, naming the field at fault (`name`, `labels`, or the rule's
    /// own). That a named sub-customer is the tenant's is checked where customers are known.
    pub fn check(&self) -> Result<()> {
        check_pool_name(&self.name)?;
        self.members.check()?;
        self.rule.check()
    }
}

/// Checks a pool's name: 1 to [`MAX_POOL_NAME_CHARS`] characters without control characters,
/// without leading or trailing spaces (the service trims what it is given).
pub fn check_pool_name(name: &str) -> Result<()> {
    let count = name.chars().count();
    if name.trim() != name
        || name.is_empty()
        || count > MAX_POOL_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "name",
            format!("a name of 1 to {MAX_POOL_NAME_CHARS} characters, without control characters"),
        ));
    }
    Ok(())
}

/// A pool's standing in one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolPeriod {
    pub pool_id: Uuid,
    pub tenant_id: TenantId,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Bytes the members used in the period when last evaluated.
    pub used_bytes: u64,
    /// Member SIMs when last evaluated.
    pub sims: u64,
    /// The highest stage reached (0: none, [`EXCEEDED`]: the limit).
    pub stage: u8,
    pub exceeded_at: Option<DateTime<Utc>>,
    /// Where the suspension of the pool's active SIMs stands.
    pub action_state: ActionState,
    /// Why the action failed (or why the pool was not evaluated), in words.
    pub action_reason: Option<String>,
    /// The bulk job suspending the pool's SIMs.
    pub bulk_job_id: Option<Uuid>,
    /// Where the resume at the period's end of the SIMs that job suspended stands.
    pub resume_state: ActionState,
    pub resume_reason: Option<String>,
    pub resume_job_id: Option<Uuid>,
    pub evaluated_at: DateTime<Utc>,
}

impl PoolPeriod {
    /// What the period has to send through the network, where it stands and its bulk job: the
    /// resume once the period has ended and one is under way, else the suspension.
    pub fn step(&self) -> (QuotaStep, ActionState, Option<Uuid>) {
        crate::quota::step_of(
            (self.action_state, self.bulk_job_id),
            (self.resume_state, self.resume_job_id),
        )
    }
}

/// What `used` bytes of `sims` members in the period holding `at` (in `tz`) make of `pool`: the
/// stage they reach and, at the limit of a pool that suspends, the action waiting to be sent.
pub fn pool_standing(pool: &QuotaPool, tz: Tz, used: u64, sims: u64, at: DateTime<Utc>) -> PoolPeriod {
    let (start, end) = period_of(tz, at);
    let stage = pool.rule.stage_of(used);
    let exceeded = stage >= EXCEEDED;
    let suspends = exceeded && pool.rule.action == QuotaAction::Suspend;
    PoolPeriod {
        pool_id: pool.id,
        tenant_id: pool.tenant_id,
        start,
        end,
        used_bytes: used,
        sims,
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

/// What a pool shows now: its period's usage and stage as last evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStatus {
    pub pool: QuotaPool,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// Bytes the members used this period, as last evaluated (0 before the first evaluation).
    pub used_bytes: u64,
    /// Member SIMs when last evaluated.
    pub sims: u64,
    /// The highest stage reached in the period (0 when none).
    pub stage: u8,
    pub action_state: ActionState,
    pub action_reason: Option<String>,
    /// When the period was last evaluated; `None` before its first evaluation.
    pub evaluated_at: Option<DateTime<Utc>>,
    /// Where the resume of the period before stands (SIMs the pool suspended then, when it
    /// resumes): `None` when there was nothing to resume.
    pub last_resume: Option<(ActionState, Option<String>)>,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::fleet::{Labels, SimState, SimType};
    use crate::identifiers::{Iccid, Imsi};
    use crate::SimId;

    fn rule(limit: u64, stages: &[u8], action: QuotaAction) -> QuotaRule {
        QuotaRule {
            limit_bytes: limit,
            stages: stages.to_vec(),
            action,
            resume_next_period: false,
        }
    }

    fn pool(members: PoolMembers) -> QuotaPool {
        QuotaPool {
            id: Uuid::new_v4(),
            tenant_id: TenantId(Uuid::nil()),
            name: "Fleet A".into(),
            members,
            rule: rule(1_000, &[50], QuotaAction::Suspend),
            set_by: "alice".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn label(key: &str, value: Option<&str>) -> LabelFilter {
        LabelFilter {
            key: key.into(),
            value: value.map(str::to_owned),
        }
    }

    fn sim(customer: Option<CustomerId>, labels: &[(&str, &str)]) -> Sim {
        let mut set = Labels::new();
        for (k, v) in labels {
            set.set(k, v).unwrap();
        }
        Sim {
            id: SimId(Uuid::new_v4()),
            tenant_id: TenantId(Uuid::nil()),
            customer_id: customer,
            iccid: Iccid::with_check_digit("898822800000000001").unwrap(),
            imsi: Imsi::parse("262010000000001").unwrap(),
            msisdn: None,
            sim_type: SimType::default(),
            tariff_plan: None,
            state: SimState::Active,
            labels: set,
            device_id: None,
            pin: None,
            puk: None,
            activation_code: None,
            last_network: None,
            last_activity_at: None,
            version: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn members_are_a_customers_sims_or_those_carrying_every_label() {
        let c = CustomerId(Uuid::new_v4());
        let of_c = PoolMembers::Customer(c);
        assert!(of_c.matches(&sim(Some(c), &[])));
        assert!(!of_c.matches(&sim(Some(CustomerId(Uuid::new_v4())), &[])));
        assert!(!of_c.matches(&sim(None, &[])));
        assert_eq!(of_c.filter().customer, Some(CustomerFilter::Is(c)));
        assert_eq!(of_c.customer(), Some(c));

        let north = PoolMembers::Labels(vec![label("site", Some("north")), label("fleet", None)]);
        assert!(north.matches(&sim(None, &[("site", "north"), ("fleet", "a")])));
        assert!(!north.matches(&sim(None, &[("site", "south"), ("fleet", "a")])));
        assert!(!north.matches(&sim(None, &[("site", "north")])));
        assert_eq!(north.filter().labels.len(), 2);
        assert_eq!(north.filter().customer, None);
        assert_eq!(north.customer(), None);
    }

    #[test]
    fn a_pool_is_refused_naming_its_field() {
        let field = |p: QuotaPool| match p.check() {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let c = PoolMembers::Customer(CustomerId(Uuid::new_v4()));
        let named = |name: &str| QuotaPool {
            name: name.into(),
            ..pool(c.clone())
        };
        assert_eq!(field(named("")), "name");
        assert_eq!(field(named(" Fleet")), "name");
        assert_eq!(field(named(&"x".repeat(101))), "name");
        assert_eq!(field(named("Fleet\u{7}")), "name");
        assert!(named(&"x".repeat(100)).check().is_ok());

        let labels = |n: usize| {
            pool(PoolMembers::Labels(
                (0..n).map(|i| label(&format!("k{i}"), None)).collect(),
            ))
        };
        assert_eq!(field(labels(0)), "labels");
        assert_eq!(field(labels(11)), "labels");
        assert!(labels(10).check().is_ok());
        assert_eq!(
            field(pool(PoolMembers::Labels(vec![label("bad key!", None)]))),
            "labels"
        );
        let long_value = "v".repeat(256);
        assert_eq!(
            field(pool(PoolMembers::Labels(vec![label("site", Some(&long_value))]))),
            "labels"
        );

        let limitless = QuotaPool {
            rule: rule(0, &[], QuotaAction::Notify),
            ..pool(c.clone())
        };
        assert_eq!(field(limitless), "limitBytes");
        let resumes = QuotaPool {
            rule: QuotaRule {
                resume_next_period: true,
                ..rule(10, &[], QuotaAction::Notify)
            },
            ..pool(c)
        };
        assert_eq!(field(resumes), "resumeNextPeriod");
    }

    #[test]
    fn a_standing_reaches_the_stage_of_the_shared_usage() {
        let p = pool(PoolMembers::Customer(CustomerId(Uuid::new_v4())));
        let at = Utc.with_ymd_and_hms(2026, 3, 15, 12, 0, 0).unwrap();
        let half = pool_standing(&p, Tz::UTC, 660, 2, at);
        assert_eq!(
            (half.stage, half.sims, half.action_state),
            (50, 2, ActionState::None)
        );
        assert_eq!(half.start, Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap());
        assert_eq!(half.exceeded_at, None);
        let full = pool_standing(&p, Tz::UTC, 1_210, 2, at);
        assert_eq!((full.stage, full.action_state), (EXCEEDED, ActionState::Pending));
        assert_eq!(full.exceeded_at, Some(at));
        assert_eq!(full.step(), (QuotaStep::Suspend, ActionState::Pending, None));
        let notify = QuotaPool {
            rule: rule(1_000, &[], QuotaAction::Notify),
            ..p
        };
        let told = pool_standing(&notify, Tz::UTC, 1_210, 2, at);
        assert_eq!((told.stage, told.action_state), (EXCEEDED, ActionState::None));
        let resuming = PoolPeriod {
            resume_state: ActionState::Pending,
            ..full
        };
        assert_eq!(resuming.step(), (QuotaStep::Resume, ActionState::Pending, None));
    }

    #[test]
    fn a_pools_notification_names_the_pool_and_never_a_sims_quota() {
        use crate::notify::{Notification, NotificationKind};
        let p = QuotaPool {
            rule: rule(1_000_000, &[50], QuotaAction::Suspend),
            ..pool(PoolMembers::Customer(CustomerId(Uuid::new_v4())))
        };
        let at = Utc.with_ymd_and_hms(2026, 3, 15, 12, 0, 0).unwrap();
        let half = pool_standing(&p, Tz::UTC, 660_000, 2, at);
        let n = Notification::pool_stage(&p, Tz::UTC, &half, at);
        assert_eq!(n.title, "Pool 'Fleet A' reached 50 % of its data limit");
        assert_eq!(n.kind, NotificationKind::QuotaStage);
        assert_eq!(n.subject_id, p.id);
        assert!(n.payload.get("quota").is_none(), "{}", n.payload);
        let facts = &n.payload["pool"];
        assert_eq!(
            (
                &facts["name"],
                &facts["stage"],
                &facts["usedBytes"],
                &facts["sims"]
            ),
            (
                &serde_json::json!("Fleet A"),
                &serde_json::json!(50),
                &serde_json::json!(660_000),
                &serde_json::json!(2)
            )
        );
        let full = pool_standing(&p, Tz::UTC, 1_210_000, 2, at);
        let n = Notification::pool_stage(&p, Tz::UTC, &full, at);
        assert_eq!(n.title, "Pool 'Fleet A' reached its data limit");
        assert!(
            n.body.contains("by 2 SIMs") && n.body.contains("being suspended"),
            "{}",
            n.body
        );
        assert_eq!(n.payload["pool"]["overshootBytes"], 210_000);
    }
}
