use async_graphql::{Context, Subscription};
use futures::{Stream, StreamExt};

use crate::context::{actor, services};
use crate::types::DirectoryEventObject;

pub struct SubscriptionRoot;

/// The caller and the optional SIM and sub-customer a SIM stream is narrowed to. Refuses callers
/// who may not see SIMs at all (customer users of tenants that share device data only).
async fn sim_stream_filter(
    ctx: &Context<'_>,
    iccid: Option<crate::scalars::IccidScalar>,
    customer_id: Option<async_graphql::ID>,
) -> async_graphql::Result<(
    ioto_domain::Actor,
    Option<ioto_domain::Iccid>,
    Option<ioto_domain::CustomerId>,
)> {
    let actor = actor(ctx)?.clone();
    let iccid = iccid.map(|i| i.0);
    let customer = customer_id
        .map(|c| ioto_domain::CustomerId::parse(&c, "customerId"))
        .transpose()
        .map_err(crate::to_gql)?;
    if !services(ctx)
        .fleet
        .sees_sims(&actor)
        .await
        .map_err(crate::to_gql)?
    {
        return Err(crate::to_gql(ioto_domain::Error::Forbidden(
            "your provider shares device data only; SIM events and sessions are not visible to customers"
                .into(),
        )));
    }
    Ok((actor, iccid, customer))
}

#[Subscription(name = "Subscription")]
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
        iccid: Option<crate::scalars::IccidScalar>,
        customer_id: Option<async_graphql::ID>,
    ) -> async_graphql::Result<impl Stream<Item = crate::types::fleet::SimStateChangeObject>> {
        let (actor, iccid, customer) = sim_stream_filter(ctx, iccid, customer_id).await?;
        let stream = services(ctx).realtime.fleet_events();
        Ok(stream.filter_map(move |e| {
            let ioto_domain::events::FleetEvent::SimStateChanged(e) = e;
            let visible = actor.scope().admits(e.tenant_id, e.customer_id)
                && iccid.as_ref().is_none_or(|i| *i == e.iccid)
                && customer.is_none_or(|c| e.customer_id == Some(c));
            std::future::ready(visible.then(|| e.into()))
        }))
    }

    /// Each counted update of the data sessions of SIMs the caller may see, as the ingest worker
    /// writes it (seconds after the network reported it), optionally narrowed to one SIM or one
    /// sub-customer.
    async fn live_sessions(
        &self,
        ctx: &Context<'_>,
        iccid: Option<crate::scalars::IccidScalar>,
        customer_id: Option<async_graphql::ID>,
    ) -> async_graphql::Result<impl Stream<Item = crate::types::usage::LiveSessionUpdateObject>> {
        let (actor, iccid, customer) = sim_stream_filter(ctx, iccid, customer_id).await?;
        let scope = actor.scope();
        let stream = services(ctx).realtime.usage_events();
        Ok(stream.flat_map(move |e| {
            let now = chrono::Utc::now();
            let updates = match e {
                ioto_domain::events::UsageEvent::SessionsUpdated { updates, .. } => updates,
                ioto_domain::events::UsageEvent::TelemetryStored { .. } => Vec::new(),
            };
            let visible: Vec<_> = updates
                .into_iter()
                .filter(|u| {
                    scope.admits(u.tenant_id, u.customer_id)
                        && iccid.as_ref().is_none_or(|i| *i == u.iccid)
                        && customer.is_none_or(|c| u.customer_id == Some(c))
                })
                .map(|u| crate::types::usage::LiveSessionUpdateObject::new(u, now))
                .collect();
            futures::stream::iter(visible)
        }))
    }

    /// Readings of one device as they are stored (the device must be visible to the caller).
    async fn device_telemetry(
        &self,
        ctx: &Context<'_>,
        device_id: async_graphql::ID,
    ) -> async_graphql::Result<impl Stream<Item = crate::types::usage::TelemetryReadingObject>> {
        let actor = actor(ctx)?.clone();
        let id = ioto_domain::DeviceId::parse(&device_id, "deviceId").map_err(crate::to_gql)?;
        let device = services(ctx)
            .fleet
            .device(&actor, id)
            .await
            .map_err(crate::to_gql)?
            .ok_or_else(|| crate::to_gql(ioto_domain::Error::not_found("device", id)))?;
        let stream = services(ctx).realtime.usage_events();
        Ok(stream.flat_map(move |e| {
            let readings = match e {
                ioto_domain::events::UsageEvent::TelemetryStored { readings, .. } => readings,
                ioto_domain::events::UsageEvent::SessionsUpdated { .. } => Vec::new(),
            };
            let mine: Vec<_> = readings
                .into_iter()
                .filter(|(tenant, r)| *tenant == device.tenant_id && r.device_id == device.id)
                .map(|(_, r)| crate::types::usage::TelemetryReadingObject::from(r))
                .collect();
            futures::stream::iter(mine)
        }))
    }
}
