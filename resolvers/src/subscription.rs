//! Subscriptions. Each holds one of its connection's subscription slots for as long as it is
//! open, and follows its caller's current rights: besides the token, which the connection
//! checks, those streaming what a visibility change can take away (a device's or SIM's
//! sub-customer, what the tenant lets customers see) check it again at every such change
//! announced on the bus ([`FleetEvent::VisibilityChanged`]) and at a steady cadence, and end
//! with the reason once the caller no longer sees what they stream.

use std::future::{ready, Future};
use std::pin::Pin;
use std::sync::Arc;

use async_graphql::Context;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use ioto_domain::events::FleetEvent;
use ioto_domain::{Error, ErrorCode, TenantId};
use tokio::sync::OwnedSemaphorePermit;

use crate::context::{actor, services};

// Every subscription: each feature's merged into one type (no description in the schema).
#[derive(async_graphql::MergedSubscription, Default)]
#[graphql(name = "Subscription")]
pub struct SubscriptionRoot(
    crate::directory::DirectorySubscription,
    crate::fleet::FleetSubscription,
    crate::notify::NotifySubscription,
    crate::alert::AlertSubscription,
    crate::bulk::BulkSubscription,
    crate::exports::ExportSubscription,
    crate::usage::UsageSubscription,
);

/// Takes one of the connection's subscription slots (none to take outside a WebSocket).
pub(crate) fn take_slot(ctx: &Context<'_>) -> async_graphql::Result<Option<OwnedSemaphorePermit>> {
    let Some(slots) = ctx
        .data_opt::<crate::RequestContext>()
        .and_then(|r| r.subscription_slots.clone())
    else {
        return Ok(None);
    };
    slots.permits.try_acquire_owned().map(Some).map_err(|_| {
        crate::to_gql(Error::RateLimited(format!(
            "this connection has {} subscriptions open, the most one connection may have; complete one first",
            slots.most
        )))
    })
}

/// `stream`, holding a subscription slot until it ends or is dropped.
pub(crate) fn holding_slot<T: Send + 'static>(
    ctx: &Context<'_>,
    stream: impl Stream<Item = T> + Send + 'static,
) -> async_graphql::Result<impl Stream<Item = T>> {
    let slot = take_slot(ctx)?;
    Ok(stream.map(move |item| {
        let _held = &slot;
        item
    }))
}

/// Checks again that the caller sees what a subscription streams: `Ok` while they do.
pub(crate) type Recheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ioto_domain::Result<()>> + Send>> + Send + Sync>;

enum Step<T> {
    Item(T),
    Check,
    End,
}

/// `data` as a subscription that holds a slot and follows the caller's current rights:
/// `recheck` runs at every visibility change of `tenant` (any tenant: `None`) and every
/// `subscription_recheck`; once it answers that the caller may no longer see what is streamed,
/// the subscription answers that error and ends. A check that cannot be made (a store away)
/// changes nothing.
pub(crate) fn following_rights<T: Send + 'static>(
    ctx: &Context<'_>,
    tenant: Option<TenantId>,
    data: impl Stream<Item = T> + Send + 'static,
    recheck: Recheck,
) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<T>>> {
    let slot = take_slot(ctx)?;
    let svc = services(ctx);
    let every = svc.subscription_recheck;
    let announced = svc.realtime.fleet_events().filter_map(move |e| {
        ready(match e {
            FleetEvent::VisibilityChanged(v) if tenant.is_none_or(|t| t == v.tenant_id) => Some(Step::Check),
            _ => None,
        })
    });
    let ticks = futures::stream::unfold((), move |()| async move {
        tokio::time::sleep(every).await;
        Some((Step::Check, ()))
    });
    let data = data
        .map(Step::Item)
        .chain(futures::stream::once(ready(Step::End)));
    let steps = futures::stream::select(data, futures::stream::select(announced, ticks)).boxed();
    Ok(
        futures::stream::unfold(Some((steps, recheck, slot)), |state| async move {
            let (mut steps, recheck, slot) = state?;
            loop {
                match steps.next().await? {
                    Step::Item(item) => return Some((Ok(item), Some((steps, recheck, slot)))),
                    Step::End => return None,
                    Step::Check => match recheck().await {
                        Ok(()) => {}
                        Err(e) if matches!(e.code(), ErrorCode::Unavailable | ErrorCode::Internal) => {
                            tracing::warn!(error = %e, "checking a subscription's rights again");
                        }
                        Err(e) => return Some((Err(crate::to_gql(e)), None)),
                    },
                }
            }
        })
        .boxed(),
    )
}

/// The check of SIM streams: the caller still sees SIMs (a tenant may stop sharing them with
/// its customers).
pub(crate) fn sees_sims(ctx: &Context<'_>, actor: ioto_domain::Actor) -> Recheck {
    let fleet = services(ctx).fleet.clone();
    Arc::new(move || {
        let (fleet, actor) = (fleet.clone(), actor.clone());
        Box::pin(async move {
            if fleet.sees_sims(&actor).await? {
                Ok(())
            } else {
                Err(Error::Forbidden(NO_SIMS_FOR_CUSTOMERS.into()))
            }
        })
    })
}

pub(crate) const NO_SIMS_FOR_CUSTOMERS: &str =
    "your provider shares device data only; SIM events and sessions are not visible to customers";

/// The caller and the optional SIM and sub-customer a SIM stream is narrowed to. Refuses callers
/// who may not see SIMs at all (customer users of tenants that share device data only).
/// Who follows SIM events, and which: one SIM, one sub-customer, one tenant (a platform admin's
/// choice; anyone else may name only their own tenant).
pub(crate) struct SimStreamFilter {
    pub(crate) actor: ioto_domain::Actor,
    pub(crate) iccid: Option<ioto_domain::Iccid>,
    pub(crate) customer: Option<ioto_domain::CustomerId>,
    pub(crate) tenant: Option<ioto_domain::TenantId>,
}

impl SimStreamFilter {
    /// The tenant whose visibility changes matter (any, for a platform admin following all).
    pub(crate) fn watched_tenant(&self) -> Option<TenantId> {
        self.tenant.or(self.actor.scope().tenant_id())
    }

    pub(crate) fn admits(
        &self,
        tenant: ioto_domain::TenantId,
        customer: Option<ioto_domain::CustomerId>,
        iccid: &ioto_domain::Iccid,
    ) -> bool {
        self.actor.scope().admits(tenant, customer)
            && self.tenant.is_none_or(|t| t == tenant)
            && self.iccid.as_ref().is_none_or(|i| i == iccid)
            && self.customer.is_none_or(|c| customer == Some(c))
    }
}

pub(crate) async fn sim_stream_filter(
    ctx: &Context<'_>,
    iccid: Option<crate::scalars::IccidScalar>,
    customer_id: Option<async_graphql::ID>,
    tenant_id: Option<async_graphql::ID>,
) -> async_graphql::Result<SimStreamFilter> {
    let actor = actor(ctx)?.clone();
    let iccid = iccid.map(|i| i.0);
    let customer = customer_id
        .map(|c| ioto_domain::CustomerId::parse(&c, "customerId"))
        .transpose()
        .map_err(crate::to_gql)?;
    let tenant = tenant_id
        .map(|t| ioto_domain::TenantId::parse(&t, "tenantId"))
        .transpose()
        .map_err(crate::to_gql)?;
    if let (Some(t), Some(own)) = (tenant, actor.scope().tenant_id()) {
        if t != own {
            return Err(crate::to_gql(ioto_domain::Error::Forbidden(
                "tenantId: only a platform admin follows another tenant's events".into(),
            )));
        }
    }
    if !services(ctx)
        .fleet
        .sees_sims(&actor)
        .await
        .map_err(crate::to_gql)?
    {
        return Err(crate::to_gql(ioto_domain::Error::Forbidden(
            NO_SIMS_FOR_CUSTOMERS.into(),
        )));
    }
    Ok(SimStreamFilter {
        actor,
        iccid,
        customer,
        tenant,
    })
}

/// A job's progress: its current state first, then its updates, ending right after the final
/// one (not at the next event, which may never come); nothing but the first when that is final.
pub(crate) fn until_final<P: Send + 'static>(
    first: P,
    updates: impl Stream<Item = P> + Send + 'static,
    is_final: fn(&P) -> bool,
) -> impl Stream<Item = P> {
    let rest = if is_final(&first) {
        futures::stream::empty().boxed()
    } else {
        updates.boxed()
    };
    let all = futures::stream::iter([first]).chain(rest).boxed();
    futures::stream::unfold(Some(all), move |rest| async move {
        let mut rest = rest?;
        let p = rest.next().await?;
        let more = (!is_final(&p)).then_some(rest);
        Some((p, more))
    })
}
