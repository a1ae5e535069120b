//! Data quotas: each SIM's limit with its standing in the current period (`Sim.quota`), and
//! the mutations that set and remove it.

mod import;
mod mutation;
mod pools;
mod query;

pub(crate) use self::mutation::QuotaMutation;
pub(crate) use self::pools::{pools_of_sim, QuotaPoolMutation, QuotaPoolObject, QuotaPoolQuery};
pub(crate) use self::query::QuotaQuery;

use async_graphql::{InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use ioto_domain::quota::{QuotaDefault, QuotaRule, QuotaSource, QuotaStatus, Standing, EXCEEDED};
use ioto_domain::Error;

use crate::enums::{QuotaActionKind, QuotaActionStateKind};
use crate::scalars::BigInt;
use crate::to_gql;

fn big(v: u64) -> BigInt {
    BigInt(i64::try_from(v).unwrap_or(i64::MAX))
}

/// Where a SIM stands against its quota this period.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(name = "QuotaState")]
pub enum QuotaStateKind {
    /// Below every warning stage.
    Within,
    /// Past a warning stage, below the limit.
    Warning,
    /// At or past the limit.
    Exceeded,
}

impl From<Standing> for QuotaStateKind {
    fn from(s: Standing) -> Self {
        match s {
            Standing::Within => Self::Within,
            Standing::Warning => Self::Warning,
            Standing::Exceeded => Self::Exceeded,
        }
    }
}

/// Where a SIM's quota comes from.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(name = "QuotaSource")]
pub enum QuotaSourceKind {
    /// Set on the SIM itself: it stays whatever the defaults say.
    Sim,
    /// The default of the SIM's tariff plan.
    TariffPlan,
    /// The tenant's default (the SIM's tariff plan has none).
    Tenant,
}

impl From<&QuotaSource> for QuotaSourceKind {
    fn from(s: &QuotaSource) -> Self {
        match s {
            QuotaSource::Sim => Self::Sim,
            QuotaSource::TariffPlan(_) => Self::TariffPlan,
            QuotaSource::Tenant(_) => Self::Tenant,
        }
    }
}

pub struct SimQuotaObject(pub QuotaStatus);

/// A SIM's data quota: its limit per billing period (the tenant's calendar month, in its time
/// zone), what it used of it so far and what happens at the limit.
#[Object(name = "SimQuota")]
impl SimQuotaObject {
    /// Bytes (up and down) the SIM may use in a period.
    async fn limit_bytes(&self) -> BigInt {
        big(self.0.quota.rule.limit_bytes)
    }
    /// Bytes used in the current period.
    async fn used_bytes(&self) -> BigInt {
        big(self.0.used_bytes)
    }
    /// Bytes left before the limit (0 past it).
    async fn remaining_bytes(&self) -> BigInt {
        big(self.0.quota.rule.remaining(self.0.used_bytes))
    }
    /// Bytes used past the limit (traffic counted before the SIM was stopped).
    async fn overshoot_bytes(&self) -> BigInt {
        big(self.0.quota.rule.overshoot(self.0.used_bytes))
    }
    /// Share of the limit used, in percent with two decimals (above 100 past the limit).
    async fn percent(&self) -> f64 {
        self.0.quota.rule.percent(self.0.used_bytes)
    }
    async fn state(&self) -> QuotaStateKind {
        self.0.quota.rule.standing(self.0.used_bytes).into()
    }
    /// Percentages of the limit that notify when reached.
    async fn stages(&self) -> Vec<i32> {
        self.0.quota.rule.stages.iter().map(|s| i32::from(*s)).collect()
    }
    /// The highest stage reached this period and notified: 0 none, a warning percentage, or
    /// 100 (the limit).
    async fn stage_reached(&self) -> i32 {
        i32::from(self.0.stage)
    }
    /// What happens at the limit.
    async fn action(&self) -> QuotaActionKind {
        self.0.quota.rule.action.into()
    }
    /// Whether a SIM the quota suspended is resumed when the next period starts.
    async fn resume_next_period(&self) -> bool {
        self.0.quota.rule.resume_next_period
    }
    /// Where the quota comes from: set on the SIM, or a default it follows.
    async fn source(&self) -> QuotaSourceKind {
        (&self.0.quota.source).into()
    }
    /// Where the resume at the start of this period stands, for a SIM the quota suspended in
    /// the period before (null when there was nothing to resume).
    async fn last_resume_state(&self) -> Option<QuotaActionStateKind> {
        self.0.last_resume.as_ref().map(|(s, _)| (*s).into())
    }
    /// Why that resume failed, as the network said.
    async fn last_resume_reason(&self) -> Option<&str> {
        self.0.last_resume.as_ref().and_then(|(_, r)| r.as_deref())
    }
    /// Where the action at the limit stands this period.
    async fn action_state(&self) -> QuotaActionStateKind {
        self.0.action_state.into()
    }
    /// Why the action failed, as the network said.
    async fn action_reason(&self) -> Option<&str> {
        self.0.action_reason.as_deref()
    }
    async fn period_start(&self) -> DateTime<Utc> {
        self.0.period_start
    }
    /// When the next period starts (the usage counts from zero again).
    async fn period_end(&self) -> DateTime<Utc> {
        self.0.period_end
    }
    /// Who set the quota last.
    async fn set_by(&self) -> &str {
        &self.0.quota.set_by
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.quota.updated_at
    }
}

/// A SIM's data quota as set.
#[derive(InputObject)]
pub struct SimQuotaInput {
    /// Bytes (up and down) the SIM may use per period: 1 to 2^50 (1 PiB).
    pub limit_bytes: BigInt,
    /// Percentages of the limit that notify when reached: up to 5, ascending, each 1–99
    /// (default 80 and 90).
    pub stages: Option<Vec<i32>>,
    /// What happens at the limit (default NOTIFY).
    pub action: Option<QuotaActionKind>,
    /// Resume a SIM the quota suspended when the next period starts (only with SUSPEND;
    /// default false).
    pub resume_next_period: Option<bool>,
}

impl SimQuotaInput {
    pub fn rule(&self) -> async_graphql::Result<QuotaRule> {
        let limit_bytes = u64::try_from(self.limit_bytes.0)
            .map_err(|_| to_gql(Error::invalid("limitBytes", "must be positive")))?;
        let stages = match &self.stages {
            None => vec![80, 90],
            Some(list) => list
                .iter()
                .map(|s| {
                    u8::try_from(*s).ok().filter(|s| *s < EXCEEDED).ok_or_else(|| {
                        to_gql(Error::invalid(
                            "stages",
                            format!("{s} is not a percentage between 1 and 99 (the limit itself is 100)"),
                        ))
                    })
                })
                .collect::<async_graphql::Result<Vec<u8>>>()?,
        };
        let rule = QuotaRule {
            limit_bytes,
            stages,
            action: self
                .action
                .map(Into::into)
                .unwrap_or(ioto_domain::quota::QuotaAction::Notify),
            resume_next_period: self.resume_next_period.unwrap_or(false),
        };
        rule.check().map_err(to_gql)?;
        Ok(rule)
    }
}

pub struct QuotaDefaultObject(pub QuotaDefault);

/// A default data quota: the tenant's (for SIMs whose tariff plan has none) or a tariff
/// plan's. SIMs without a quota of their own follow it; a quota set on a SIM overrides it.
#[Object(name = "QuotaDefault")]
impl QuotaDefaultObject {
    async fn id(&self) -> async_graphql::ID {
        async_graphql::ID(self.0.id.to_string())
    }
    /// The tariff plan whose SIMs follow it; null for the tenant's default.
    async fn tariff_plan(&self) -> Option<&str> {
        self.0.tariff_plan.as_deref()
    }
    /// Bytes (up and down) a SIM may use per period.
    async fn limit_bytes(&self) -> BigInt {
        big(self.0.rule.limit_bytes)
    }
    /// Percentages of the limit that notify when reached.
    async fn stages(&self) -> Vec<i32> {
        self.0.rule.stages.iter().map(|s| i32::from(*s)).collect()
    }
    async fn action(&self) -> QuotaActionKind {
        self.0.rule.action.into()
    }
    async fn resume_next_period(&self) -> bool {
        self.0.rule.resume_next_period
    }
    /// Who set it last.
    async fn set_by(&self) -> &str {
        &self.0.set_by
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A default set, and what following it changed.
#[derive(SimpleObject)]
pub struct QuotaDefaultPayload {
    pub quota_default: QuotaDefaultObject,
    /// SIMs that took a quota from it (or from the tenant's default) they did not have.
    pub sims_added: BigInt,
    /// SIMs whose default quota changed.
    pub sims_changed: BigInt,
    /// SIMs that lost a default quota.
    pub sims_removed: BigInt,
}

/// Quotas set or removed by filter.
#[derive(SimpleObject)]
pub struct QuotasByFilterPayload {
    /// SIMs the filter matched.
    pub matched: BigInt,
    /// Quotas set (or removed).
    pub changed: BigInt,
}
