//! Notifications as they are written.

use crate::context::{actor, services};
use crate::subscription::*;
use async_graphql::{Context, Subscription};
use futures::{Stream, StreamExt};

/// The notify subscriptions.
#[derive(Default)]
pub struct NotifySubscription;

#[Subscription]
impl NotifySubscription {
    /// The caller's new notifications as they are written (on any instance): their own, and —
    /// for those who manage the fleet — the tenant's ones for no user in particular.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = crate::notify::NotificationObject>> {
        let actor = actor(ctx)?.clone();
        let stream = services(ctx).realtime.fleet_events();
        holding_slot(
            ctx,
            stream.filter_map(move |e| {
                let hit = match e {
                    ioto_domain::events::FleetEvent::Notification(n)
                        if ioto_app::FleetService::sees_notification(&actor, &n) =>
                    {
                        n.notification().ok().map(crate::notify::NotificationObject)
                    }
                    _ => None,
                };
                std::future::ready(hit)
            }),
        )
    }
}
