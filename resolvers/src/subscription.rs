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

    /// SIM state changes the caller may see, as they commit (by users, coordinated operations
    /// or the scheduler), optionally narrowed to one SIM or one sub-customer.
    async fn sim_state_changed(
        &self,
        ctx: &Context<'_>,
        iccid: Option<String>,
        customer_id: Option<async_graphql::ID>,
    ) -> async_graphql::Result<impl Stream<Item = crate::types::fleet::SimStateChangeObject>> {
        let actor = actor(ctx)?.clone();
        let iccid = iccid
            .map(|i| crate::fleet_query::parse_iccid(&i, "iccid"))
            .transpose()?
            .map(|i| i.to_string());
        let customer = customer_id
            .map(|c| ioto_domain::CustomerId::parse(&c, "customerId"))
            .transpose()
            .map_err(crate::to_gql)?;
        // Refuses callers who may not see SIMs at all (customer users of device-only tenants).
        if !services(ctx)
            .fleet
            .sees_sims(&actor)
            .await
            .map_err(crate::to_gql)?
        {
            return Err(crate::to_gql(ioto_domain::Error::Forbidden(
                "your provider shares device data only; SIM events are not visible to customers".into(),
            )));
        }
        let stream = services(ctx).realtime.fleet_events();
        Ok(stream.filter_map(move |e| {
            let ioto_domain::events::FleetEvent::SimStateChanged(e) = e;
            let visible = actor.scope().admits(e.tenant_id, e.customer_id)
                && iccid.as_ref().is_none_or(|i| *i == e.iccid)
                && customer.is_none_or(|c| e.customer_id == Some(c));
            std::future::ready(visible.then(|| e.into()))
        }))
    }
}
