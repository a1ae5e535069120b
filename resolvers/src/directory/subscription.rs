//! Directory changes as they happen.

use crate::context::{actor, services};
use crate::directory::DirectoryEventObject;
use crate::subscription::*;
use async_graphql::{Context, Subscription};
use futures::{Stream, StreamExt};

/// The directory subscriptions.
#[derive(Default)]
pub struct DirectorySubscription;

#[Subscription]
impl DirectorySubscription {
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
        holding_slot(
            ctx,
            stream
                .filter(move |e| std::future::ready(actor.sees_tenant(e.tenant_id)))
                .map(DirectoryEventObject),
        )
    }
}
