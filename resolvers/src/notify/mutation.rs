//! The notify mutations.

use super::*;
use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::scalars::parse_tenant;

#[derive(Default)]
pub struct NotifyMutation;

#[Object]
impl NotifyMutation {
    /// Marks the caller's notifications read: the listed ones, or all when `ids` is left out.
    /// Returns how many were unread. Ids that are not the caller's are ignored.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        ids: Option<Vec<ID>>,
    ) -> async_graphql::Result<i32> {
        let ids = ids
            .map(|ids| {
                ids.iter()
                    .map(|id| uuid_of(id, "ids", "notification"))
                    .collect::<async_graphql::Result<Vec<_>>>()
            })
            .transpose()?;
        let n = services(ctx)
            .fleet
            .mark_notifications_read(actor(ctx)?, ids.as_deref())
            .await
            .gql()?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Adds a webhook endpoint; its signing secret is in the answer, and only there.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> async_graphql::Result<CreatedWebhookEndpoint> {
        let tenant = parse_tenant(input.tenant_id.as_ref())?;
        Ok(services(ctx)
            .fleet
            .create_webhook_endpoint(actor(ctx)?, tenant, &input.url, input.description.as_deref())
            .await
            .gql()?
            .into())
    }

    /// Enables or disables an endpoint; disabling gives up its pending deliveries.
    async fn set_webhook_endpoint_enabled(
        &self,
        ctx: &Context<'_>,
        id: ID,
        enabled: bool,
    ) -> async_graphql::Result<WebhookEndpointObject> {
        let id = uuid_of(&id, "id", "webhook endpoint")?;
        Ok(WebhookEndpointObject(
            services(ctx)
                .fleet
                .set_webhook_endpoint_enabled(actor(ctx)?, id, enabled)
                .await
                .gql()?,
        ))
    }

    /// Removes an endpoint with its deliveries; returns its id.
    async fn delete_webhook_endpoint(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let uuid = uuid_of(&id, "id", "webhook endpoint")?;
        services(ctx)
            .fleet
            .delete_webhook_endpoint(actor(ctx)?, uuid)
            .await
            .gql()?;
        Ok(id)
    }
}
