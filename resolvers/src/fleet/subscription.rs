//! SIM state changes as they happen.

use crate::context::services;
use crate::subscription::*;
use async_graphql::{Context, Subscription};
use futures::{Stream, StreamExt};

/// The fleet subscriptions.
#[derive(Default)]
pub struct FleetSubscription;

#[Subscription]
impl FleetSubscription {
    /// SIM state changes the caller may see, as they commit (by users, coordinated operations
    /// or the scheduler), optionally narrowed to one SIM or one sub-customer.
    async fn sim_state_changed(
        &self,
        ctx: &Context<'_>,
        iccid: Option<crate::scalars::IccidScalar>,
        customer_id: Option<async_graphql::ID>,
        #[graphql(desc = "Only this tenant's SIMs (for platform admins; others may name only their own).")]
        tenant_id: Option<async_graphql::ID>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<crate::fleet::SimStateChangeObject>>>
    {
        let filter = sim_stream_filter(ctx, iccid, customer_id, tenant_id).await?;
        let (tenant, recheck) = (filter.watched_tenant(), sees_sims(ctx, filter.actor.clone()));
        let stream = services(ctx).realtime.fleet_events();
        let changes = stream.filter_map(move |e| {
            let ioto_domain::events::FleetEvent::SimStateChanged(e) = e else {
                return std::future::ready(None);
            };
            let visible = filter.admits(e.tenant_id, e.customer_id, &e.iccid);
            std::future::ready(visible.then(|| e.into()))
        });
        following_rights(ctx, tenant, changes, recheck)
    }
}
