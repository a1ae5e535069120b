//! Quota pools: one data limit per period shared by a sub-customer's SIMs or by the SIMs
//! carrying some labels (`quotaPools`, `quotaPool`, `Sim.quotaPools`), and the mutations that
//! keep them. Errors in a pool's input name the field as `input.<field>`.

use async_graphql::{Context, InputObject, Object, ID};
use chrono::{DateTime, Utc};
use ioto_domain::fleet::Sim;
use ioto_domain::quota::QuotaRule;
use ioto_domain::quota_pool::{PoolMembers, PoolStatus, QuotaPool};
use ioto_domain::{CustomerId, Error};
use uuid::Uuid;

use super::{big, QuotaStateKind, SimQuotaInput};
use crate::context::{actor, services};
use crate::enums::{QuotaActionKind, QuotaActionStateKind};
use crate::error::{to_gql, GqlResult};
use crate::fleet::{label_filters, LabelInput, LabelObject};
use crate::scalars::{parse_tenant, BigInt};

/// A domain error as an answer; a refused field is named inside the input (`input.<field>`).
fn in_input(e: Error) -> async_graphql::Error {
    match e {
        Error::InvalidInput { field, reason } => to_gql(Error::invalid(format!("input.{field}"), reason)),
        other => to_gql(other),
    }
}

/// An answer naming a refused field, renamed to name it inside the input (`input.<field>`), its
/// message with it.
fn answer_in_input(mut e: async_graphql::Error) -> async_graphql::Error {
    let field = e.extensions.as_ref().and_then(|x| match x.get("field") {
        Some(async_graphql::Value::String(f)) => Some(f.clone()),
        _ => None,
    });
    if let Some(f) = field {
        let named = format!("input.{f}");
        let message = e
            .message
            .strip_prefix(&format!("{f}: "))
            .map(|rest| format!("{named}: {rest}"));
        if let Some(m) = message {
            e.message = m;
        }
        if let Some(x) = e.extensions.as_mut() {
            x.set("field", named);
        }
    }
    e
}

/// A field's error under another field's name (a label condition is refused as `labels`).
fn named(e: Error, field: &str) -> Error {
    match e {
        Error::InvalidInput { reason, .. } => Error::invalid(field, reason),
        other => other,
    }
}

fn parse_id(id: &ID) -> async_graphql::Result<Uuid> {
    Uuid::parse_str(id.trim())
        .map_err(|_| to_gql(Error::invalid("id", "is not a valid id (expected a UUID)")))
}

/// A quota pool as written: its members (`customerId` or `labels`, exactly one) and the limit
/// they share. Every field is checked; an error names the first refused.
#[derive(InputObject)]
pub struct QuotaPoolInput {
    /// 1 to 100 characters, unique in the tenant.
    pub name: String,
    /// The sub-customer whose SIMs share the limit (or `labels`, not both).
    pub customer_id: Option<ID>,
    /// The SIMs carrying every one of these labels share the limit (a label without a value:
    /// any value of its key); 1 to 10 conditions (or `customerId`, not both).
    pub labels: Option<Vec<LabelInput>>,
    /// Bytes (up and down) the pool's SIMs may use together per period: 1 to 2^50 (1 PiB).
    pub limit_bytes: BigInt,
    /// Percentages of the limit that notify when reached: up to 5, ascending, each 1–99
    /// (default 80 and 90).
    pub stages: Option<Vec<i32>>,
    /// What happens at the limit (default NOTIFY; SUSPEND suspends the pool's active SIMs).
    pub action: Option<QuotaActionKind>,
    /// Resume the SIMs the pool suspended when the next period starts (only with SUSPEND;
    /// default false).
    pub resume_next_period: Option<bool>,
}

impl QuotaPoolInput {
    /// The pool's name, members and rule; the rule as a SIM's quota input reads it.
    fn parse(self) -> async_graphql::Result<(String, PoolMembers, QuotaRule)> {
        let members = match (self.customer_id, self.labels) {
            (Some(_), Some(_)) => {
                return Err(in_input(Error::invalid(
                    "customerId",
                    "give customerId or labels, not both",
                )))
            }
            (None, None) => {
                return Err(in_input(Error::invalid(
                    "customerId",
                    "give customerId (a sub-customer's SIMs) or labels (the SIMs carrying them)",
                )))
            }
            (Some(id), None) => {
                PoolMembers::Customer(CustomerId::parse(&id, "customerId").map_err(in_input)?)
            }
            (None, Some(labels)) => {
                PoolMembers::Labels(label_filters(&labels).map_err(|e| in_input(named(e, "labels")))?)
            }
        };
        let rule = SimQuotaInput {
            limit_bytes: self.limit_bytes,
            stages: self.stages,
            action: self.action,
            resume_next_period: self.resume_next_period,
        }
        .rule()
        .map_err(answer_in_input)?;
        Ok((self.name, members, rule))
    }
}

pub struct QuotaPoolObject(pub QuotaPool);

/// A quota pool: one data limit per period (the tenant's calendar month, in its time zone)
/// shared by a sub-customer's SIMs or by the SIMs carrying some labels, with warning stages and
/// an action at the limit.
#[Object(name = "QuotaPool")]
impl QuotaPoolObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The sub-customer whose SIMs share the limit; null for a pool selected by labels.
    async fn customer_id(&self) -> Option<ID> {
        self.0.members.customer().map(|c| ID(c.0.to_string()))
    }
    /// The label conditions selecting the pool's SIMs, every one to hold (an empty value: any
    /// value of the key); empty for a sub-customer's pool.
    async fn labels(&self) -> Vec<LabelObject> {
        match &self.0.members {
            PoolMembers::Labels(list) => list
                .iter()
                .map(|f| LabelObject {
                    key: f.key.clone(),
                    value: f.value.clone().unwrap_or_default(),
                })
                .collect(),
            PoolMembers::Customer(_) => Vec::new(),
        }
    }
    /// SIMs counting toward the pool now.
    #[graphql(complexity = "crate::limits::backend_call(child_complexity)")]
    async fn sim_count(&self, ctx: &Context<'_>) -> async_graphql::Result<BigInt> {
        let n = services(ctx)
            .quotas
            .pool_sim_count(actor(ctx)?, &self.0)
            .await
            .gql()?;
        Ok(big(n))
    }
    /// Who set the pool last.
    async fn set_by(&self) -> &str {
        &self.0.set_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The limit and where the pool stands against it this period, as last evaluated (every
    /// quota sweep, a minute by default, and when the pool is set).
    #[graphql(complexity = "crate::limits::backend_call(child_complexity)")]
    async fn quota(&self, ctx: &Context<'_>) -> async_graphql::Result<PoolQuotaObject> {
        let status = services(ctx)
            .quotas
            .pool_status(actor(ctx)?, &self.0, Utc::now())
            .await
            .gql()?;
        Ok(PoolQuotaObject(status))
    }
    /// The daily usage forecast of the pool's SIMs together, `days` days of it from today
    /// (1–90; a forecast holds 31), read against the pool's limit. Null without usage in the
    /// last 90 days.
    #[graphql(complexity = "crate::limits::backend_call(child_complexity)")]
    async fn forecast(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] days: i32,
    ) -> async_graphql::Result<Option<crate::forecast::UsageForecastObject>> {
        crate::forecast::forecast_of_pool(ctx, &self.0, days).await
    }
    /// Advice on the pool's limit from its SIMs' last 90 days together (made by the forecast
    /// pass); for the tenant's own users (a sub-customer's get none); amounts null for callers
    /// who may not see costs.
    #[graphql(complexity = "crate::limits::backend_call(child_complexity)")]
    async fn advice(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<crate::forecast::AdviceObject>> {
        crate::forecast::advice_of_pool(ctx, &self.0).await
    }
}

pub struct PoolQuotaObject(pub PoolStatus);

/// A pool's limit per period and what its SIMs used of it together.
#[Object(name = "PoolQuota")]
impl PoolQuotaObject {
    /// Bytes (up and down) the pool's SIMs may use together in a period.
    async fn limit_bytes(&self) -> BigInt {
        big(self.0.pool.rule.limit_bytes)
    }
    /// Bytes the pool's SIMs used in the current period, as last evaluated.
    async fn used_bytes(&self) -> BigInt {
        big(self.0.used_bytes)
    }
    /// Bytes left before the limit (0 past it).
    async fn remaining_bytes(&self) -> BigInt {
        big(self.0.pool.rule.remaining(self.0.used_bytes))
    }
    /// Bytes used past the limit (traffic counted before the SIMs were stopped).
    async fn overshoot_bytes(&self) -> BigInt {
        big(self.0.pool.rule.overshoot(self.0.used_bytes))
    }
    /// Share of the limit used, in percent with two decimals (above 100 past the limit).
    async fn percent(&self) -> f64 {
        self.0.pool.rule.percent(self.0.used_bytes)
    }
    async fn state(&self) -> QuotaStateKind {
        self.0.pool.rule.standing(self.0.used_bytes).into()
    }
    /// Percentages of the limit that notify when reached.
    async fn stages(&self) -> Vec<i32> {
        self.0.pool.rule.stages.iter().map(|s| i32::from(*s)).collect()
    }
    /// The highest stage reached this period and notified: 0 none, a warning percentage, or
    /// 100 (the limit).
    async fn stage_reached(&self) -> i32 {
        i32::from(self.0.stage)
    }
    /// What happens at the limit.
    async fn action(&self) -> QuotaActionKind {
        self.0.pool.rule.action.into()
    }
    /// Whether the SIMs the pool suspended are resumed when the next period starts.
    async fn resume_next_period(&self) -> bool {
        self.0.pool.rule.resume_next_period
    }
    /// Where the suspension of the pool's active SIMs stands this period.
    async fn action_state(&self) -> QuotaActionStateKind {
        self.0.action_state.into()
    }
    /// Why the action failed (how many SIMs, and the first one's reason), or why the pool was
    /// not evaluated.
    async fn action_reason(&self) -> Option<&str> {
        self.0.action_reason.as_deref()
    }
    /// SIMs counted when the pool was last evaluated.
    async fn sims(&self) -> BigInt {
        big(self.0.sims)
    }
    /// When the pool was last evaluated this period (null before its first evaluation).
    async fn evaluated_at(&self) -> Option<DateTime<Utc>> {
        self.0.evaluated_at
    }
    async fn period_start(&self) -> DateTime<Utc> {
        self.0.period_start
    }
    /// When the next period starts (the usage counts from zero again).
    async fn period_end(&self) -> DateTime<Utc> {
        self.0.period_end
    }
    /// Where the resume at the start of this period stands, for SIMs the pool suspended in the
    /// period before (null when there was nothing to resume).
    async fn last_resume_state(&self) -> Option<QuotaActionStateKind> {
        self.0.last_resume.as_ref().map(|(s, _)| (*s).into())
    }
    /// Why that resume failed.
    async fn last_resume_reason(&self) -> Option<&str> {
        self.0.last_resume.as_ref().and_then(|(_, r)| r.as_deref())
    }
}

/// The pools a SIM counts toward, for `Sim.quotaPools` (one read of its tenant's pools).
pub(crate) async fn pools_of_sim(
    ctx: &Context<'_>,
    sim: &Sim,
) -> async_graphql::Result<Vec<QuotaPoolObject>> {
    Ok(services(ctx)
        .quotas
        .pools_of_sim(actor(ctx)?, sim)
        .await
        .gql()?
        .into_iter()
        .map(QuotaPoolObject)
        .collect())
}

#[derive(Default)]
pub struct QuotaPoolQuery;

#[Object]
impl QuotaPoolQuery {
    /// The tenant's quota pools (at most 100), by name (a sub-customer's users: their
    /// sub-customer's).
    #[graphql(complexity = "crate::limits::rows_cost(100, child_complexity)")]
    async fn quota_pools(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
    ) -> async_graphql::Result<Vec<QuotaPoolObject>> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        Ok(services(ctx)
            .quotas
            .quota_pools(actor(ctx)?, tenant)
            .await
            .gql()?
            .into_iter()
            .map(QuotaPoolObject)
            .collect())
    }

    /// A quota pool by id; null when there is none the caller sees.
    async fn quota_pool(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<QuotaPoolObject>> {
        let id = parse_id(&id)?;
        Ok(services(ctx)
            .quotas
            .quota_pool(actor(ctx)?, id)
            .await
            .gql()?
            .map(QuotaPoolObject))
    }
}

#[derive(Default)]
pub struct QuotaPoolMutation;

#[Object]
impl QuotaPoolMutation {
    /// Creates a quota pool (at most 100 per tenant). The limit applies to what its SIMs used
    /// already this period. Fleet managers of the tenant.
    async fn create_quota_pool(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        input: QuotaPoolInput,
    ) -> async_graphql::Result<QuotaPoolObject> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let (name, members, rule) = input.parse()?;
        let pool = services(ctx)
            .quotas
            .create_quota_pool(actor(ctx)?, tenant, name, members, rule)
            .await
            .map_err(in_input)?;
        Ok(QuotaPoolObject(pool))
    }

    /// Replaces a pool's name, members and rule; the period in progress is measured against
    /// them at once (a stage reached stays reached).
    async fn update_quota_pool(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: QuotaPoolInput,
    ) -> async_graphql::Result<QuotaPoolObject> {
        let id = parse_id(&id)?;
        let (name, members, rule) = input.parse()?;
        let pool = services(ctx)
            .quotas
            .update_quota_pool(actor(ctx)?, id, name, members, rule)
            .await
            .map_err(in_input)?;
        Ok(QuotaPoolObject(pool))
    }

    /// Deletes a pool with its periods. Returns whether it existed. SIMs it suspended stay
    /// suspended.
    async fn delete_quota_pool(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let id = parse_id(&id)?;
        services(ctx)
            .quotas
            .delete_quota_pool(actor(ctx)?, id)
            .await
            .gql()
    }
}
