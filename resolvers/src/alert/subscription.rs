//! Alerts as they open, fire, change and resolve.

use async_graphql::{Context, Subscription};
use futures::{Stream, StreamExt};
use ioto_domain::alert::lifecycle::AlertState;
use ioto_domain::events::FleetEvent;
use ioto_domain::Role;

use super::{AlertObject, AlertStateKind};
use crate::context::{actor, services};
use crate::subscription::{following_rights, sees_sims};

#[derive(Default)]
pub struct AlertSubscription;

#[Subscription]
impl AlertSubscription {
    /// Alerts of the caller's tenant as they change (opened, fired, acknowledged, resolved),
    /// each as it stands then; optionally only those in `states`. A sub-customer's users get
    /// their own SIMs' alerts, while the tenant shares SIM data with them.
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] states: Vec<AlertStateKind>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<AlertObject>>> {
        let actor = actor(ctx)?.clone();
        // Refused at once when the caller may not read alerts at all.
        services(ctx)
            .alerts
            .open_alerts(&actor, None)
            .await
            .map_err(crate::to_gql)?;
        let states: Vec<AlertState> = states.into_iter().map(Into::into).collect();
        let alerts = services(ctx).alerts.clone();
        let tenant = actor.tenant_id;
        let customer = (actor.role == Role::CustomerUser)
            .then_some(actor.customer_id)
            .flatten();
        let reader = actor.clone();
        let changes = services(ctx)
            .realtime
            .fleet_events()
            .filter_map(move |e| {
                let hit = match e {
                    FleetEvent::AlertChanged(c)
                        if c.tenant_id == tenant && (customer.is_none() || c.customer_id == customer) =>
                    {
                        Some(c.alert_id)
                    }
                    _ => None,
                };
                std::future::ready(hit)
            })
            .then(move |id| {
                let (alerts, reader) = (alerts.clone(), reader.clone());
                async move { alerts.alert(&reader, id).await.ok().flatten() }
            })
            .filter_map(move |a| {
                let keep = a.filter(|a| states.is_empty() || states.contains(&a.state));
                std::future::ready(keep.map(AlertObject))
            });
        following_rights(ctx, Some(tenant), changes, sees_sims(ctx, actor))
    }
}
