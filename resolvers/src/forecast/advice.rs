//! Quota and plan advice, as the forecast pass stored it: `advice(tenantId, filter, first,
//! after)` for the fleet, sorted by saving; `Sim.advice` and `QuotaPool.advice`. Amounts (and
//! the sentences that name them) are shown only to callers who may see costs — the check the
//! dashboard's `costSoFar` makes.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ioto_domain::advice::{Advice, AdviceAction, AdviceFilter, AdviceKind, AdviceSubject};
use ioto_domain::fleet::query::Cursor;
use ioto_domain::fleet::Sim;
use ioto_domain::quota_pool::QuotaPool;
use ioto_domain::{CustomerId, Error, TenantId};

use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::fleet::{PageInfo, SimObject};
use crate::quota::QuotaPoolObject;
use crate::scalars::{BigInt, Date, Decimal, IccidScalar};

crate::enums::mirror_enum!(
    /// What an advice is about.
    AdviceKindGql, "AdviceKind", AdviceKind, [
        /// The SIM's tariff plan on the tenant's retail card.
        Plan,
        /// The data quota of a SIM or a pool.
        Quota,
    ]
);

crate::enums::mirror_enum!(
    /// What an advice says to do.
    AdviceActionGql, "AdviceAction", AdviceAction, [
        /// Move the SIM to the plan its last 90 days would have cost least on.
        SwitchPlan,
        /// Give a SIM without a data quota one (it has a usage habit: 28 days with traffic).
        Set,
        /// Raise a limit below the usual month: it keeps stopping the SIM.
        Raise,
        /// Lower a limit more than 4 × what the usage needs: a runaway would be caught late.
        Lower,
    ]
);

/// Whether the caller may see the tenant's costs: the dashboard's check (a customer user only
/// where the tenant shares costs and SIM data with its customers).
pub(crate) async fn sees_costs(ctx: &Context<'_>, tenant: TenantId) -> async_graphql::Result<bool> {
    let actor = actor(ctx)?;
    Ok(services(ctx)
        .billing
        .cost_scope(actor, Some(tenant))
        .await
        .is_ok())
}

/// An advice as answered: with its amounts, or (for a caller who may not see costs) without.
#[derive(Clone)]
pub struct AdviceObject {
    pub advice: Advice,
    /// Whether the caller sees the amounts.
    pub money: bool,
}

impl AdviceObject {
    fn money<T>(&self, v: Option<T>) -> Option<T> {
        v.filter(|_| self.money)
    }
}

/// Quota or plan advice from the last 90 days of usage, made by the forecast pass (replaced by
/// every pass). Amounts are estimates that leave out the card's per-record rounding; they are
/// null for callers who may not see costs, and null without a retail card.
#[Object(name = "Advice")]
impl AdviceObject {
    async fn id(&self) -> ID {
        ID(self.advice.id.to_string())
    }
    async fn kind(&self) -> AdviceKindGql {
        self.advice.kind.into()
    }
    async fn action(&self) -> AdviceActionGql {
        self.advice.action.into()
    }
    /// The SIM's ICCID; null for a pool's advice.
    async fn iccid(&self) -> Option<IccidScalar> {
        self.advice.iccid.clone().map(IccidScalar)
    }
    /// The SIM, as the caller sees it; null for a pool's advice.
    async fn sim(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SimObject>> {
        let AdviceSubject::Sim(id) = self.advice.subject else {
            return Ok(None);
        };
        SimObject::seen_by(ctx, id).await
    }
    /// The pool's id; null for a SIM's advice.
    async fn pool_id(&self) -> Option<ID> {
        match self.advice.subject {
            AdviceSubject::Pool(id) => Some(ID(id.to_string())),
            AdviceSubject::Sim(_) => None,
        }
    }
    /// The pool, as the caller sees it; null for a SIM's advice.
    async fn pool(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<QuotaPoolObject>> {
        let AdviceSubject::Pool(id) = self.advice.subject else {
            return Ok(None);
        };
        Ok(services(ctx)
            .quotas
            .quota_pool(actor(ctx)?, id)
            .await
            .gql()?
            .map(QuotaPoolObject))
    }
    /// The SIM's tariff plan (null: none).
    async fn current_plan(&self) -> Option<&str> {
        self.advice.current_plan.as_deref()
    }
    /// The plan advised (`SWITCH_PLAN`; null there: the card's base prices, without a plan).
    async fn recommended_plan(&self) -> Option<&str> {
        self.advice.recommended_plan.as_deref()
    }
    /// The data limit now (`RAISE`, `LOWER`).
    async fn current_limit_bytes(&self) -> Option<BigInt> {
        self.advice.current_limit_bytes.map(BigInt::from)
    }
    /// The limit advised (quota advice): a step of 1, 2, 5 × 10^k bytes at or above 1.25 × the
    /// usual month.
    async fn recommended_limit_bytes(&self) -> Option<BigInt> {
        self.advice.recommended_limit_bytes.map(BigInt::from)
    }
    /// What the last 90 days cost on the current plan (`SWITCH_PLAN`).
    async fn current_cost(&self) -> Option<Decimal> {
        self.money(self.advice.current_cost).map(Decimal)
    }
    /// What they would have cost on the recommended plan (`SWITCH_PLAN`).
    async fn recommended_cost(&self) -> Option<Decimal> {
        self.money(self.advice.recommended_cost).map(Decimal)
    }
    /// What following the advice would have saved over the 90 days: the plans' difference
    /// (`SWITCH_PLAN`); the cost of the traffic the recommended limit would have stopped (`SET`,
    /// `LOWER`); 0 for `RAISE` (what it avoids is the interruption).
    async fn saving(&self) -> Option<Decimal> {
        self.money(self.advice.saving).map(Decimal)
    }
    /// The retail card's currency.
    async fn currency(&self) -> Option<String> {
        self.money(self.advice.currency).map(|c| c.code().to_owned())
    }
    /// The advice in a sentence ("On plan fleet-xl this SIM's last 90 days would have cost
    /// 12.40 EUR instead of 31.10 EUR (save 18.70 EUR)"); without amounts for callers who may
    /// not see costs.
    async fn sentence(&self) -> &str {
        if self.money {
            &self.advice.sentence
        } else {
            &self.advice.plain_sentence
        }
    }
    /// The first day of the 90 completed days the advice reads (UTC).
    async fn window_from(&self) -> Date {
        Date(self.advice.window_from)
    }
    /// The last (yesterday, at the pass).
    async fn window_to(&self) -> Date {
        Date(self.advice.window_to)
    }
    /// When the pass made it.
    async fn computed_at(&self) -> DateTime<Utc> {
        self.advice.computed_at
    }
}

/// A page of advice, by saving (highest first; none, and nothing saved, last) (Relay
/// connection).
#[derive(SimpleObject)]
pub struct AdviceConnection {
    pub edges: Vec<AdviceEdge>,
    pub nodes: Vec<AdviceObject>,
    pub page_info: PageInfo,
}

#[derive(SimpleObject)]
pub struct AdviceEdge {
    pub cursor: String,
    pub node: AdviceObject,
}

impl AdviceConnection {
    /// The page of `rows` read with `limit` (one more than shown, see `crate::paging::edges`).
    fn of(rows: Vec<Advice>, limit: u64, after: bool, money: bool) -> Self {
        let (edges, has_next_page) = crate::paging::edges(rows, limit, Advice::cursor);
        let object = |advice: Advice| AdviceObject { advice, money };
        Self {
            page_info: crate::paging::page_info(&edges, has_next_page, after),
            nodes: edges.iter().map(|(_, a)| object(a.clone())).collect(),
            edges: edges
                .into_iter()
                .map(|(cursor, a)| AdviceEdge {
                    cursor,
                    node: object(a),
                })
                .collect(),
        }
    }
}

/// Which advice to list (every condition holds).
#[derive(InputObject, Clone, Default)]
#[graphql(name = "AdviceFilter")]
pub struct AdviceFilterInput {
    #[graphql(default)]
    pub kinds: Vec<AdviceKindGql>,
    #[graphql(default)]
    pub actions: Vec<AdviceActionGql>,
    pub customer_id: Option<ID>,
    pub iccid: Option<IccidScalar>,
    /// A saving of at least this much (compared to the millionth); advice without a saving (no
    /// retail card) is left out. Refused to callers who may not see costs.
    pub min_saving: Option<Decimal>,
}

/// `advice`: a tenant's advice, a page of it.
pub(crate) async fn list(
    ctx: &Context<'_>,
    tenant: Option<TenantId>,
    filter: Option<AdviceFilterInput>,
    first: i32,
    after: Option<String>,
) -> async_graphql::Result<AdviceConnection> {
    let limit = ioto_domain::fleet::query::check_page_size(first.into()).gql()?;
    if limit > ioto_app::forecast::MAX_PAGE {
        return Err(crate::to_gql(Error::invalid(
            "first",
            format!("must be between 1 and {}", ioto_app::forecast::MAX_PAGE),
        )));
    }
    let after = after.map(|a| Cursor::decode(&a, "after")).transpose().gql()?;
    if let Some(c) = &after {
        ioto_domain::advice::cursor_rank(c, "after").gql()?;
    }
    let f = filter.unwrap_or_default();
    let query = AdviceFilter {
        kinds: f.kinds.into_iter().map(Into::into).collect(),
        actions: f.actions.into_iter().map(Into::into).collect(),
        customer: f
            .customer_id
            .as_ref()
            .map(|c| CustomerId::parse(c, "filter.customerId"))
            .transpose()
            .gql()?,
        iccid: f.iccid.map(|i| i.0),
        subject: None,
        min_saving: f.min_saving.map(|d| d.0),
    };
    let actor = actor(ctx)?;
    let tenant_id = actor.target_tenant(tenant).gql()?;
    let money = sees_costs(ctx, tenant_id).await?;
    if query.min_saving.is_some() && !money {
        return Err(crate::to_gql(Error::Forbidden(
            "costs are not shared with you, so advice cannot be filtered by saving (filter.minSaving)".into(),
        )));
    }
    let rows = services(ctx)
        .forecasts
        .advice(actor, Some(tenant_id), query, after.as_ref(), limit + 1)
        .await
        .gql()?;
    Ok(AdviceConnection::of(rows, limit + 1, after.is_some(), money))
}

/// `Sim.advice`: the SIM's advice.
pub(crate) async fn advice_of_sim(ctx: &Context<'_>, sim: &Sim) -> async_graphql::Result<Vec<AdviceObject>> {
    let rows = services(ctx)
        .forecasts
        .advice_of_sim(actor(ctx)?, sim)
        .await
        .gql()?;
    objects(ctx, sim.tenant_id, rows).await
}

/// `QuotaPool.advice`: the pool's advice (for the tenant's own users).
pub(crate) async fn advice_of_pool(
    ctx: &Context<'_>,
    pool: &QuotaPool,
) -> async_graphql::Result<Vec<AdviceObject>> {
    let rows = services(ctx)
        .forecasts
        .advice_of_pool(actor(ctx)?, pool)
        .await
        .gql()?;
    objects(ctx, pool.tenant_id, rows).await
}

async fn objects(
    ctx: &Context<'_>,
    tenant: TenantId,
    rows: Vec<Advice>,
) -> async_graphql::Result<Vec<AdviceObject>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let money = sees_costs(ctx, tenant).await?;
    Ok(rows
        .into_iter()
        .map(|advice| AdviceObject { advice, money })
        .collect())
}
