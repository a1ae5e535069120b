use async_graphql::{ComplexObject, Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ioto_domain::fleet::audit::EntityKind;
use ioto_domain::fleet::Sim;
use ioto_domain::ports::ScheduleQuery;

use super::types::{labels_of, AuditEntryObject, LabelObject, ScheduledTransitionObject};
use super::DeviceObject;
use crate::context::{actor, loaders, services};
use crate::directory::CustomerObject;
use crate::enums::{SimStateKind, SimTypeKind};
use crate::error::GqlResult;
use crate::loaders::gql_err;
use crate::scalars::{IccidScalar, MccMncScalar};
use crate::usage::{GranularityKind, LiveSessionObject, UsagePointObject};

/// A SIM card.
pub struct SimObject(pub Sim);

impl SimObject {
    /// The SIM `id` as the caller sees it: `None` when there is no such SIM or the caller's scope
    /// does not reach it (another tenant's, another sub-customer's).
    pub(crate) async fn seen_by(
        ctx: &Context<'_>,
        id: ioto_domain::SimId,
    ) -> async_graphql::Result<Option<Self>> {
        let actor = actor(ctx)?;
        let sims = services(ctx)
            .fleet
            .store()
            .sims_by_id(actor.scope(), &[id])
            .await
            .gql()?;
        Ok(sims.into_iter().next().map(SimObject))
    }
}

#[Object(name = "Sim")]
impl SimObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn tenant_id(&self) -> ID {
        ID(self.0.tenant_id.to_string())
    }
    /// 19 or 20 digits, Luhn-checked.
    async fn iccid(&self) -> IccidScalar {
        IccidScalar(self.0.iccid.clone())
    }
    async fn imsi(&self) -> &str {
        self.0.imsi.as_str()
    }
    /// E.164 with leading '+'.
    async fn msisdn(&self) -> Option<&str> {
        self.0.msisdn.as_ref().map(|m| m.as_str())
    }
    #[graphql(name = "type")]
    async fn sim_type(&self) -> SimTypeKind {
        self.0.sim_type.into()
    }
    async fn tariff_plan(&self) -> Option<&str> {
        self.0.tariff_plan.as_deref()
    }
    async fn state(&self) -> SimStateKind {
        self.0.state.into()
    }
    /// Pass it back as `expectedVersion` to be told when someone else changed the SIM meanwhile.
    async fn version(&self) -> i64 {
        self.0.version
    }
    async fn customer_id(&self) -> Option<ID> {
        self.0.customer_id.map(|c| ID(c.to_string()))
    }
    /// The sub-customer the SIM is assigned to (none: held by the tenant).
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<CustomerObject>> {
        let Some(id) = self.0.customer_id else {
            return Ok(None);
        };
        Ok(loaders(ctx)?
            .fleet
            .load_one(id)
            .await
            .map_err(gql_err)?
            .map(CustomerObject))
    }
    async fn device_id(&self) -> Option<ID> {
        self.0.device_id.map(|d| ID(d.to_string()))
    }
    /// The device the SIM sits in.
    async fn device(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DeviceObject>> {
        let Some(id) = self.0.device_id else {
            return Ok(None);
        };
        Ok(loaders(ctx)?
            .fleet
            .load_one(id)
            .await
            .map_err(gql_err)?
            .map(DeviceObject))
    }
    /// Labels, ordered by key.
    async fn labels(&self) -> Vec<LabelObject> {
        labels_of(&self.0.labels)
    }
    /// In clear for TENANT_ADMIN, masked for everyone else.
    async fn pin(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        services(ctx).fleet.sim_secret(actor(ctx)?, &self.0, "pin").gql()
    }
    /// In clear for TENANT_ADMIN, masked for everyone else.
    async fn puk(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        services(ctx).fleet.sim_secret(actor(ctx)?, &self.0, "puk").gql()
    }
    async fn activation_code(&self) -> Option<&str> {
        self.0.activation_code.as_deref()
    }
    /// MCC-MNC of the network of the last session.
    async fn last_network(&self) -> Option<MccMncScalar> {
        self.0.last_network.clone().map(MccMncScalar)
    }
    async fn last_activity_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_activity_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The SIM's data quota and where it stands this period; null when it has none.
    #[graphql(complexity = "crate::limits::backend_call(child_complexity)")]
    async fn quota(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<crate::quota::SimQuotaObject>> {
        Ok(services(ctx)
            .quotas
            .quota_of(actor(ctx)?, &self.0, Utc::now())
            .await
            .gql()?
            .map(crate::quota::SimQuotaObject))
    }
    /// The quota pools the SIM counts toward: its sub-customer's, and those whose labels it carries.
    #[graphql(complexity = "crate::limits::backend_call(child_complexity)")]
    async fn quota_pools(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::quota::QuotaPoolObject>> {
        crate::quota::pools_of_sim(ctx, &self.0).await
    }
    /// The SIM's daily usage forecast from today on, `days` days of it (1–90; a forecast holds
    /// 31, so asking more answers those), with its quota's exhaustion date when it has a quota.
    /// Null for a SIM without usage in the last 90 days (or before the first forecast pass).
    #[graphql(complexity = "crate::limits::backend_call(child_complexity)")]
    async fn forecast(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] days: i32,
    ) -> async_graphql::Result<Option<crate::forecast::UsageForecastObject>> {
        crate::forecast::forecast_of_sim(ctx, &self.0, days).await
    }
    /// The SIM's latest anomalies, by day (newest first) then score.
    #[graphql(complexity = "crate::limits::page_cost(Some(first), 20, child_complexity)")]
    async fn anomalies(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> async_graphql::Result<Vec<crate::forecast::AnomalyObject>> {
        crate::forecast::anomalies_of_sim(ctx, &self.0, first).await
    }
    /// Quota and plan advice for the SIM from its last 90 days (made by the forecast pass), by
    /// saving; amounts null for callers who may not see costs.
    #[graphql(complexity = "crate::limits::backend_call(child_complexity)")]
    async fn advice(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<crate::forecast::AdviceObject>> {
        crate::forecast::advice_of_sim(ctx, &self.0).await
    }
    /// What the SIM is doing now: its latest data session within the last 7 days.
    #[graphql(complexity = "crate::limits::backend_call(child_complexity)")]
    async fn live_session(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<LiveSessionObject>> {
        Ok(services(ctx)
            .usage
            .live_session(actor(ctx)?, &self.0)
            .await
            .gql()?
            .map(Into::into))
    }
    /// Bytes per period and network in `[from, to)` (UTC periods; at most 2,000 of them).
    #[graphql(complexity = "crate::limits::usage_cost(&from, &to, granularity, child_complexity)")]
    async fn usage(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        #[graphql(desc = "Period size (default DAY).")] granularity: Option<GranularityKind>,
    ) -> async_graphql::Result<Vec<UsagePointObject>> {
        let g = granularity.unwrap_or(GranularityKind::Day).into();
        let points = services(ctx)
            .usage
            .sim_usage(actor(ctx)?, &self.0, from, to, g)
            .await
            .gql()?;
        Ok(points.into_iter().map(Into::into).collect())
    }
    /// The SIM's audit trail, newest first.
    #[graphql(complexity = "crate::limits::page_cost(first, 50, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size (default 50).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<AuditEntryObject>> {
        let limit = ioto_domain::fleet::query::check_page_size(first.unwrap_or(50).into()).gql()?;
        let list = services(ctx)
            .fleet
            .events(actor(ctx)?, self.0.tenant_id, EntityKind::Sim, self.0.id.0, limit)
            .await
            .gql()?;
        Ok(list.into_iter().map(AuditEntryObject).collect())
    }
    /// Transitions scheduled for this SIM (pending ones first by time, then the finished ones).
    #[graphql(complexity = "crate::limits::page_cost(None, 100, child_complexity)")]
    async fn scheduled_transitions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ScheduledTransitionObject>> {
        let list = services(ctx)
            .fleet
            .schedules(
                actor(ctx)?,
                Some(self.0.tenant_id),
                &ScheduleQuery {
                    sim: Some(self.0.id),
                    statuses: Vec::new(),
                    limit: 100,
                },
            )
            .await
            .gql()?;
        Ok(list.into_iter().map(ScheduledTransitionObject).collect())
    }
}

/// What a change to one SIM did.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct SimPayload {
    pub sim: SimObject,
    #[graphql(skip)]
    pub effects: Vec<ioto_domain::fleet::NewAuditEntry>,
}

#[ComplexObject]
impl SimPayload {
    /// Every effect of the operation, in the order applied (empty when nothing changed).
    async fn effects(&self) -> Vec<super::types::EffectObject> {
        super::types::effects(&self.effects)
    }
}
