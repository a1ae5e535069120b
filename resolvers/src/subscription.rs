//! Subscriptions. Each holds one of its connection's subscription slots for as long as it is
//! open, and follows its caller's current rights: besides the token, which the connection
//! checks, those streaming what a visibility change can take away (a device's or SIM's
//! sub-customer, what the tenant lets customers see) check it again at every such change
//! announced on the bus ([`FleetEvent::VisibilityChanged`]) and at a steady cadence, and end
//! with the reason once the caller no longer sees what they stream.

use std::future::{ready, Future};
use std::pin::Pin;
use std::sync::Arc;

use async_graphql::{Context, Subscription};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use ioto_domain::events::FleetEvent;
use ioto_domain::{Error, ErrorCode, TenantId};
use tokio::sync::OwnedSemaphorePermit;

use crate::context::{actor, services};
use crate::directory::DirectoryEventObject;

pub struct SubscriptionRoot;

/// Takes one of the connection's subscription slots (none to take outside a WebSocket).
fn take_slot(ctx: &Context<'_>) -> async_graphql::Result<Option<OwnedSemaphorePermit>> {
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
fn holding_slot<T: Send + 'static>(
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
type Recheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ioto_domain::Result<()>> + Send>> + Send + Sync>;

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
fn following_rights<T: Send + 'static>(
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
fn sees_sims(ctx: &Context<'_>, actor: ioto_domain::Actor) -> Recheck {
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

const NO_SIMS_FOR_CUSTOMERS: &str =
    "your provider shares device data only; SIM events and sessions are not visible to customers";

/// The caller and the optional SIM and sub-customer a SIM stream is narrowed to. Refuses callers
/// who may not see SIMs at all (customer users of tenants that share device data only).
/// Who follows SIM events, and which: one SIM, one sub-customer, one tenant (a platform admin's
/// choice; anyone else may name only their own tenant).
struct SimStreamFilter {
    actor: ioto_domain::Actor,
    iccid: Option<ioto_domain::Iccid>,
    customer: Option<ioto_domain::CustomerId>,
    tenant: Option<ioto_domain::TenantId>,
}

impl SimStreamFilter {
    /// The tenant whose visibility changes matter (any, for a platform admin following all).
    fn watched_tenant(&self) -> Option<TenantId> {
        self.tenant.or(self.actor.scope().tenant_id())
    }

    fn admits(
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

async fn sim_stream_filter(
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
        holding_slot(
            ctx,
            stream
                .filter(move |e| std::future::ready(actor.sees_tenant(e.tenant_id)))
                .map(DirectoryEventObject),
        )
    }

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

    /// Progress of one bulk job: after every batch of row outcomes, at least every second while
    /// it runs (a heartbeat), and on every status change — from whichever instance runs it. The
    /// current state comes first; the stream ends after the job's final status.
    async fn bulk_job_progress(
        &self,
        ctx: &Context<'_>,
        id: async_graphql::ID,
    ) -> async_graphql::Result<impl Stream<Item = crate::bulk::BulkJobProgressObject>> {
        let actor = actor(ctx)?.clone();
        let job_id = uuid::Uuid::parse_str(id.as_str())
            .map_err(|_| crate::to_gql(ioto_domain::Error::invalid("id", "is not a bulk job id")))?;
        let svc = services(ctx);
        // Follow first, then read, so that nothing between the two is missed.
        let events = svc.realtime.fleet_events();
        let job = svc
            .fleet
            .bulk_job(&actor, job_id)
            .await
            .map_err(crate::to_gql)?
            .ok_or_else(|| crate::to_gql(ioto_domain::Error::not_found("bulk job", job_id)))?;
        let first = ioto_domain::events::BulkJobProgress::of(&job, chrono::Utc::now());
        let updates = events.filter_map(move |e| {
            std::future::ready(match e {
                ioto_domain::events::FleetEvent::BulkJobProgress(p)
                    if p.job_id == job_id && actor.sees_tenant(p.tenant_id) =>
                {
                    Some(p)
                }
                _ => None,
            })
        });
        holding_slot(
            ctx,
            until_final(first, updates, |p| p.status.is_final()).map(crate::bulk::BulkJobProgressObject),
        )
    }

    /// Progress of one export: on every status change and after every written batch (rows,
    /// bytes, ETA), from whichever instance runs it. The current state comes first; the stream
    /// ends after the job's final status.
    async fn export_job_progress(
        &self,
        ctx: &Context<'_>,
        id: async_graphql::ID,
    ) -> async_graphql::Result<impl Stream<Item = crate::exports::ExportJobProgressObject>> {
        let actor = actor(ctx)?.clone();
        let job_id = uuid::Uuid::parse_str(id.as_str())
            .map_err(|_| crate::to_gql(ioto_domain::Error::invalid("id", "is not an export job id")))?;
        let svc = services(ctx);
        // Follow first, then read, so that nothing between the two is missed.
        let events = svc.realtime.fleet_events();
        let job = svc
            .exports
            .job(&actor, job_id)
            .await
            .map_err(crate::to_gql)?
            .ok_or_else(|| crate::to_gql(ioto_domain::Error::not_found("export job", job_id)))?;
        let first = ioto_domain::events::ExportJobProgress::of(&job, chrono::Utc::now());
        let updates = events.filter_map(move |e| {
            std::future::ready(match e {
                ioto_domain::events::FleetEvent::ExportJobProgress(p)
                    if p.job_id == job_id && actor.sees_tenant(p.tenant_id) =>
                {
                    Some(p)
                }
                _ => None,
            })
        });
        holding_slot(
            ctx,
            until_final(first, updates, |p| p.status.is_final()).map(crate::exports::ExportJobProgressObject),
        )
    }

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

/// A job's progress: its current state first, then its updates, ending right after the final
/// one (not at the next event, which may never come); nothing but the first when that is final.
fn until_final<P: Send + 'static>(
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
