use async_graphql::{Context, Subscription};
use futures::{Stream, StreamExt};

use crate::context::{actor, services};
use crate::types::DirectoryEventObject;

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Changes to tenants, customers and users that the caller may see, as they commit — on any
    /// server instance (events travel over the bus).
    async fn directory_events(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = DirectoryEventObject>> {
        let actor = actor(ctx)?.clone();
        actor
            .require(ioto_domain::Permission::ReadUsers, "follow directory events")
            .map_err(crate::to_gql)?;
        let stream = services(ctx).realtime.directory_events();
        Ok(stream
            .filter(move |e| std::future::ready(actor.sees_tenant(e.tenant_id)))
            .map(DirectoryEventObject))
    }
}
