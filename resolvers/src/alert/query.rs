//! The alert queries.

use async_graphql::{Context, Object, ID};
use ioto_domain::fleet::query::{check_page_size, Cursor};
use ioto_domain::ports::alerts::AlertQuery;
use ioto_domain::{CustomerId, Error};
use uuid::Uuid;

use super::*;
use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::scalars::parse_tenant;

#[derive(Default)]
pub struct AlertQueryRoot;

pub(crate) fn parse_uuid(id: &ID, field: &str) -> async_graphql::Result<Uuid> {
    Uuid::parse_str(id.trim())
        .map_err(|_| crate::to_gql(Error::invalid(field, "is not a valid id (expected a UUID)")))
}

#[Object]
impl AlertQueryRoot {
    /// The tenant's alert rules (at most 200), by name. The tenant's staff; not sub-customers'
    /// users.
    async fn alert_rules(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
    ) -> async_graphql::Result<Vec<AlertRuleObject>> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        Ok(services(ctx)
            .alerts
            .alert_rules(actor(ctx)?, tenant)
            .await
            .gql()?
            .into_iter()
            .map(AlertRuleObject)
            .collect())
    }

    async fn alert_rule(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<AlertRuleObject>> {
        let id = parse_uuid(&id, "id")?;
        Ok(services(ctx)
            .alerts
            .alert_rule(actor(ctx)?, id)
            .await
            .gql()?
            .map(AlertRuleObject))
    }

    /// Alerts, newest first. A sub-customer's users see their own SIMs' alerts, where the
    /// tenant shares SIM data with them. `after` is the `endCursor` of the previous page.
    #[graphql(complexity = "crate::limits::page_cost(first, 50, child_complexity)")]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        filter: Option<AlertFilterInput>,
        #[graphql(desc = "Page size (default 50).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AlertConnection> {
        let limit = check_page_size(first.unwrap_or(50).into()).gql()?;
        let after = after.map(|a| Cursor::decode(&a, "after")).transpose().gql()?;
        let f = filter.unwrap_or_default();
        let actor = actor(ctx)?;
        let sim_id = match &f.iccid {
            Some(iccid) => match services(ctx).fleet.sim(actor, &iccid.0).await.gql()? {
                Some(sim) => Some(sim.id),
                None => {
                    return Ok(AlertConnection {
                        edges: Vec::new(),
                        nodes: Vec::new(),
                        page_info: PageInfo {
                            has_next_page: false,
                            has_previous_page: after.is_some(),
                            start_cursor: None,
                            end_cursor: None,
                        },
                    })
                }
            },
            None => None,
        };
        let query = AlertQuery {
            tenant_id: parse_tenant(tenant_id.as_ref())?,
            states: f.states.into_iter().map(Into::into).collect(),
            severities: f.severities.into_iter().map(Into::into).collect(),
            rule_id: f
                .rule_id
                .as_ref()
                .map(|r| parse_uuid(r, "filter.ruleId"))
                .transpose()?,
            sim_id,
            customer_id: f
                .customer_id
                .as_ref()
                .map(|c| CustomerId::parse(c, "filter.customerId"))
                .transpose()
                .gql()?,
            from: f.from,
            to: f.to,
        };
        let rows = services(ctx)
            .alerts
            .alerts(actor, query, after.as_ref(), limit + 1)
            .await
            .gql()?;
        let (edges, has_next_page) = crate::paging::edges(rows, limit + 1, |a| Cursor {
            k: a.started_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            id: a.id,
        });
        Ok(AlertConnection {
            page_info: crate::paging::page_info(&edges, has_next_page, after.is_some()),
            nodes: edges.iter().map(|(_, a)| AlertObject(a.clone())).collect(),
            edges: edges
                .into_iter()
                .map(|(cursor, a)| AlertEdge {
                    cursor,
                    node: AlertObject(a),
                })
                .collect(),
        })
    }

    async fn alert(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<AlertObject>> {
        let id = parse_uuid(&id, "id")?;
        Ok(services(ctx)
            .alerts
            .alert(actor(ctx)?, id)
            .await
            .gql()?
            .map(AlertObject))
    }

    /// Open alerts by severity, most severe first.
    async fn open_alerts(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
    ) -> async_graphql::Result<Vec<OpenAlertCount>> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        Ok(services(ctx)
            .alerts
            .open_alerts(actor(ctx)?, tenant)
            .await
            .gql()?
            .into_iter()
            .map(OpenAlertCount::of)
            .collect())
    }

    /// The tenant's silences, latest ending first: those not ended (all, with `includeEnded`).
    async fn silences(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        #[graphql(default = false)] include_ended: bool,
    ) -> async_graphql::Result<Vec<SilenceObject>> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        Ok(services(ctx)
            .alerts
            .silences(actor(ctx)?, tenant, include_ended)
            .await
            .gql()?
            .into_iter()
            .map(SilenceObject)
            .collect())
    }
}
