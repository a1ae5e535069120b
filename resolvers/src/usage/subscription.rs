//! Live sessions and device readings as they are counted and stored.

use crate::context::{actor, services};
use crate::subscription::*;
use async_graphql::{Context, Subscription};
use futures::{Stream, StreamExt};
use ioto_domain::Error;
use std::sync::Arc;

/// The usage subscriptions.
#[derive(Default)]
pub struct UsageSubscription;

#[Subscription]
impl UsageSubscription {
    /// Each counted update of the data sessions of SIMs the caller may see, as the ingest worker
    /// writes it (seconds after the network reported it), optionally narrowed to one SIM or one
    /// sub-customer.
    async fn live_sessions(
        &self,
        ctx: &Context<'_>,
        iccid: Option<crate::scalars::IccidScalar>,
        customer_id: Option<async_graphql::ID>,
        #[graphql(desc = "Only this tenant's SIMs (for platform admins; others may name only their own).")]
        tenant_id: Option<async_graphql::ID>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<crate::usage::LiveSessionUpdateObject>>>
    {
        let filter = sim_stream_filter(ctx, iccid, customer_id, tenant_id).await?;
        let (tenant, recheck) = (filter.watched_tenant(), sees_sims(ctx, filter.actor.clone()));
        let stream = services(ctx).realtime.usage_events();
        let updates = stream.flat_map(move |e| {
            let now = chrono::Utc::now();
            let updates = match e {
                ioto_domain::events::UsageEvent::SessionsUpdated { updates, .. } => updates,
                ioto_domain::events::UsageEvent::TelemetryStored { .. } => Vec::new(),
            };
            let visible: Vec<_> = updates
                .into_iter()
                .filter(|u| filter.admits(u.tenant_id, u.customer_id, &u.iccid))
                .map(|u| crate::usage::LiveSessionUpdateObject::new(u, now))
                .collect();
            futures::stream::iter(visible)
        });
        following_rights(ctx, tenant, updates, recheck)
    }

    /// Readings of one device as they are stored (the device must be visible to the caller).
    /// Ends with `NOT_FOUND` once the device is no longer visible to the caller (moved to another
    /// sub-customer).
    async fn device_telemetry(
        &self,
        ctx: &Context<'_>,
        device_id: async_graphql::ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<crate::usage::TelemetryReadingObject>>>
    {
        let actor = actor(ctx)?.clone();
        let id = ioto_domain::DeviceId::parse(&device_id, "deviceId").map_err(crate::to_gql)?;
        let device = services(ctx)
            .fleet
            .device(&actor, id)
            .await
            .map_err(crate::to_gql)?
            .ok_or_else(|| crate::to_gql(ioto_domain::Error::not_found("device", id)))?;
        let fleet = services(ctx).fleet.clone();
        let recheck: Recheck = Arc::new(move || {
            let (fleet, actor) = (fleet.clone(), actor.clone());
            Box::pin(async move {
                match fleet.device(&actor, id).await? {
                    Some(_) => Ok(()),
                    None => Err(Error::not_found("device", id)),
                }
            })
        });
        let tenant = device.tenant_id;
        let stream = services(ctx).realtime.usage_events();
        let readings = stream.flat_map(move |e| {
            let readings = match e {
                ioto_domain::events::UsageEvent::TelemetryStored { readings, .. } => readings,
                ioto_domain::events::UsageEvent::SessionsUpdated { .. } => Vec::new(),
            };
            let mine: Vec<_> = readings
                .into_iter()
                .filter(|(tenant, r)| *tenant == device.tenant_id && r.device_id == device.id)
                .map(|(_, r)| crate::usage::TelemetryReadingObject::from(r))
                .collect();
            futures::stream::iter(mine)
        });
        following_rights(ctx, Some(tenant), readings, recheck)
    }
}
