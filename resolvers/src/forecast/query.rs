//! The anomaly and advice queries (a forecast is a field of what it forecasts: `Sim.forecast`,
//! `Customer.forecast`, `QuotaPool.forecast`, `Dashboard.forecast`).

use async_graphql::{Context, Object, ID};
use ioto_domain::fleet::query::{check_page_size, Cursor};
use ioto_domain::forecast::AnomalyFilter;
use ioto_domain::{CustomerId, Error};

use super::advice::{AdviceConnection, AdviceFilterInput};
use super::{parse_anomaly_id, AnomalyConnection, AnomalyFilterInput, AnomalyObject};
use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::scalars::parse_tenant;

#[derive(Default)]
pub struct ForecastQuery;

#[Object]
impl ForecastQuery {
    /// Anomalies the forecast pass found, by day (newest first), then score (highest first). A
    /// sub-customer's users see their own SIMs' anomalies, where the tenant shares SIM data with
    /// them. `after` is the `endCursor` of the previous page.
    #[graphql(complexity = "crate::limits::page_cost(first, 50, child_complexity)")]
    async fn anomalies(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        filter: Option<AnomalyFilterInput>,
        #[graphql(desc = "Page size (default 50, at most 500).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AnomalyConnection> {
        let limit = check_page_size(first.unwrap_or(50).into()).gql()?;
        if limit > ioto_app::forecast::MAX_PAGE {
            return Err(crate::to_gql(Error::invalid(
                "first",
                format!("must be between 1 and {}", ioto_app::forecast::MAX_PAGE),
            )));
        }
        let after = after.map(|a| Cursor::decode(&a, "after")).transpose().gql()?;
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let f = filter.unwrap_or_default();
        let actor = actor(ctx)?;
        let sim = match &f.iccid {
            Some(iccid) => match services(ctx).fleet.sim(actor, &iccid.0).await.gql()? {
                Some(sim) => Some(sim.id),
                // A SIM the caller does not see has no anomalies to show.
                None => return Ok(AnomalyConnection::of(Vec::new(), limit + 1, after.is_some())),
            },
            None => None,
        };
        let query = AnomalyFilter {
            kinds: f.kinds.into_iter().map(Into::into).collect(),
            min_severity: f.min_severity.map(Into::into),
            statuses: f.statuses.into_iter().map(Into::into).collect(),
            sim,
            customer: f
                .customer_id
                .as_ref()
                .map(|c| CustomerId::parse(c, "filter.customerId"))
                .transpose()
                .gql()?,
            from: f.from.map(|d| d.0),
            to: f.to.map(|d| d.0),
        };
        let rows = services(ctx)
            .forecasts
            .anomalies(actor, tenant, query, after.as_ref(), limit + 1)
            .await
            .gql()?;
        Ok(AnomalyConnection::of(rows, limit + 1, after.is_some()))
    }

    /// Quota and plan advice the forecast pass made from the last 90 days, by saving (highest
    /// first; advice without a saving, or saving nothing, last), then id. Read as anomalies are:
    /// a sub-customer's users see their own SIMs' advice (never a pool's), where the tenant
    /// shares SIM data with them. `after` is the `endCursor` of the previous page.
    #[graphql(complexity = "crate::limits::page_cost(first, 50, child_complexity)")]
    async fn advice(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        filter: Option<AdviceFilterInput>,
        #[graphql(desc = "Page size (default 50, at most 500).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AdviceConnection> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        super::advice::list(ctx, tenant, filter, first.unwrap_or(50), after).await
    }

    /// An anomaly by id; null when there is none the caller sees.
    async fn anomaly(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<AnomalyObject>> {
        let id = parse_anomaly_id(&id)?;
        Ok(services(ctx)
            .forecasts
            .anomaly(actor(ctx)?, id)
            .await
            .gql()?
            .map(AnomalyObject))
    }
}
