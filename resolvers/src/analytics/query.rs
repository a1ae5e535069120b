//! The analytics queries: usageAnalytics, its drill-down, carriers and the dashboard.

use super::*;
use crate::context::{actor, services};
use crate::error::{to_gql, GqlResult};
use crate::scalars::parse_tenant;
use crate::scalars::Decimal;
use crate::scalars::IccidScalar;
use async_graphql::{Context, Object, ID};
use ioto_domain::analytics::{Measure, Measures};
use ioto_domain::identifiers::Iccid;
use ioto_domain::Error;

#[derive(Default)]
pub struct AnalyticsQueryRoot;

#[Object]
impl AnalyticsQueryRoot {
    /// Usage and cost summed by any of the dimensions over a time range, answered from the
    /// coarsest cube that serves it exactly (`source`), or `unserved` with the reason.
    #[graphql(complexity = "crate::limits::analytics_cost(&input, child_complexity)")]
    async fn usage_analytics(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        input: UsageAnalyticsInput,
    ) -> async_graphql::Result<UsageAnalyticsObject> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let q = input.parse()?;
        let (dims, measures) = (q.dimensions.clone(), q.measures.clone());
        let a = services(ctx)
            .analytics
            .usage_analytics(actor(ctx)?, tenant, q)
            .await
            .gql()?;
        Ok(answer_object(dims, &measures, a))
    }

    /// The SIMs behind one row of `usageAnalytics` (same input, the row's dimension values),
    /// most bytes first.
    // Sized at most 500 (larger pages are refused by the resolver, naming `first`).
    #[graphql(complexity = "crate::limits::page_cost(first.map(|f| f.min(500)), 50, child_complexity)")]
    async fn usage_analytics_sims(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        input: UsageAnalyticsInput,
        row: AnalyticsRowInput,
        #[graphql(desc = "Page size (default 50, at most 500).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AnalyticsSimConnection> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let first = usize::try_from(first.unwrap_or(50))
            .ok()
            .filter(|f| (1..=500).contains(f))
            .ok_or_else(|| to_gql(Error::invalid("first", "must be between 1 and 500")))?;
        let offset = match &after {
            None => 0,
            Some(c) => c
                .strip_prefix("sim:")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| to_gql(Error::invalid("after", "is not a cursor of this list")))?,
        };
        let q = input.parse()?;
        let mut measures = q.measures.clone();
        if !measures.contains(&Measure::BytesTotal) {
            measures.push(Measure::BytesTotal);
        }
        let asked: HashSet<Measure> = measures.into_iter().collect();
        let (answer, sims) = services(ctx)
            .analytics
            .drill_down(actor(ctx)?, tenant, q, row.parse()?)
            .await
            .gql()?;
        let total = sims.len();
        let page: Vec<(usize, (Iccid, Measures))> =
            sims.into_iter().enumerate().skip(offset).take(first).collect();
        let end = page.last().map(|(i, _)| *i);
        let edges: Vec<AnalyticsSimEdge> = page
            .into_iter()
            .map(|(i, (iccid, values))| AnalyticsSimEdge {
                cursor: format!("sim:{}", i + 1),
                node: AnalyticsSimObject {
                    iccid: IccidScalar(iccid),
                    measures: MeasuresObject {
                        values,
                        asked: asked.clone(),
                    },
                },
            })
            .collect();
        Ok(AnalyticsSimConnection {
            page_info: crate::fleet::PageInfo {
                has_next_page: end.is_some_and(|e| e + 1 < total),
                has_previous_page: after.is_some(),
                start_cursor: edges.first().map(|e| e.cursor.clone()),
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
            total_count: (total as u64).into(),
            source: answer.source.map(Into::into),
            unserved: answer.unserved.map(|(reason, message)| UnservedObject {
                reason: reason.into(),
                message,
            }),
        })
    }

    /// Every network with traffic or cost in the range: bytes, data cost and their shares.
    #[graphql(complexity = "crate::limits::carriers_cost(child_complexity)")]
    async fn carrier_breakdown(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        sub_customer_id: Option<ID>,
        time_range: TimeRangeInput,
        time_zone: Option<String>,
    ) -> async_graphql::Result<CarrierBreakdownObject> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let customer = customer_id("subCustomerId", sub_customer_id.as_ref())?;
        let (list, currency) = services(ctx)
            .analytics
            .carrier_breakdown(actor(ctx)?, tenant, customer, time_range.parse()?, time_zone)
            .await
            .gql()?;
        let with_cost = currency.is_some();
        let (carriers, total_bytes, total_cost) = carriers(list, with_cost);
        Ok(CarrierBreakdownObject {
            currency: currency.map(|c| c.code().to_owned()),
            total_bytes: total_bytes.into(),
            total_cost: with_cost.then_some(Decimal(total_cost)),
            carriers,
        })
    }

    /// The dashboard of the tenant, or of one sub-customer.
    #[graphql(complexity = "crate::limits::dashboard_cost(child_complexity)")]
    async fn dashboard(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        sub_customer_id: Option<ID>,
        time_zone: Option<String>,
    ) -> async_graphql::Result<DashboardObject> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let customer = customer_id("subCustomerId", sub_customer_id.as_ref())?;
        let d = services(ctx)
            .analytics
            .dashboard(actor(ctx)?, tenant, customer, time_zone)
            .await
            .gql()?;
        Ok(dashboard_object(d, (tenant, customer)))
    }
}
