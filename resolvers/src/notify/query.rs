//! The notify queries.

use super::*;
use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::fleet::{parse_time_id_cursor, time_id_cursor, PageInfo};
use crate::scalars::parse_tenant;

#[derive(Default)]
pub struct NotifyQuery;

#[Object]
impl NotifyQuery {
    /// The caller's notifications, newest first: their own, and — for those who manage the
    /// fleet — the tenant's ones for no user in particular. `after` is the `endCursor` of the
    /// previous page.
    #[graphql(complexity = "crate::limits::page_cost(first, 20, child_complexity)")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] unread_only: bool,
        #[graphql(desc = "Page size (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<NotificationConnection> {
        let limit = ioto_domain::fleet::query::check_page_size(first.unwrap_or(20).into()).gql()?;
        let before = after.as_deref().map(parse_time_id_cursor).transpose()?;
        let actor = actor(ctx)?;
        let fleet = &services(ctx).fleet;
        let mut nodes = fleet
            .notifications(actor, unread_only, before, limit + 1)
            .await
            .gql()?;
        let unread = fleet.unread_notifications(actor).await.gql()?;
        let has_next_page = nodes.len() as u64 > limit;
        nodes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(NotificationConnection {
            page_info: PageInfo {
                has_next_page,
                has_previous_page: before.is_some(),
                start_cursor: nodes.first().map(|n| time_id_cursor(n.created_at, n.id)),
                end_cursor: nodes.last().map(|n| time_id_cursor(n.created_at, n.id)),
            },
            nodes: nodes.into_iter().map(NotificationObject).collect(),
            unread_count: i32::try_from(unread).unwrap_or(i32::MAX),
        })
    }

    /// The tenant's webhook endpoints (at most 10), oldest first. Tenant and platform admins.
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
    ) -> async_graphql::Result<Vec<WebhookEndpointObject>> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        Ok(services(ctx)
            .fleet
            .webhook_endpoints(actor(ctx)?, tenant)
            .await
            .gql()?
            .into_iter()
            .map(WebhookEndpointObject)
            .collect())
    }
}
