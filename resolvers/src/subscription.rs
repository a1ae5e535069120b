use async_graphql::{Context, Subscription};
use futures::{Stream, StreamExt};

use crate::context::{actor, services};
use crate::types::DirectoryEventObject;

pub struct SubscriptionRoot;

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
            "your provider shares device data only; SIM events and sessions are not visible to customers"
                .into(),
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
        #[graphql(desc = "Only this tenant's SIMs (for platform admins; others may name only their own).")]
        tenant_id: Option<async_graphql::ID>,
    ) -> async_graphql::Result<impl Stream<Item = crate::types::fleet::SimStateChangeObject>> {
        let filter = sim_stream_filter(ctx, iccid, customer_id, tenant_id).await?;
        let stream = services(ctx).realtime.fleet_events();
        Ok(stream.filter_map(move |e| {
            let ioto_domain::events::FleetEvent::SimStateChanged(e) = e else {
                return std::future::ready(None);
            };
            let visible = filter.admits(e.tenant_id, e.customer_id, &e.iccid);
            std::future::ready(visible.then(|| e.into()))
        }))
    }

    /// The caller's new notifications as they are written (on any instance): their own, and —
    /// for those who manage the fleet — the tenant's ones for no user in particular.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = crate::notify::NotificationObject>> {
        let actor = actor(ctx)?.clone();
        let stream = services(ctx).realtime.fleet_events();
        Ok(stream.filter_map(move |e| {
            let hit = match e {
                ioto_domain::events::FleetEvent::Notification(n)
                    if ioto_domain::services::FleetService::sees_notification(&actor, &n) =>
                {
                    n.notification().ok().map(crate::notify::NotificationObject)
                }
                _ => None,
            };
            std::future::ready(hit)
        }))
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
        Ok(until_final(first, updates, |p| p.status.is_final()).map(crate::bulk::BulkJobProgressObject))
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
        Ok(until_final(first, updates, |p| p.status.is_final()).map(crate::exports::ExportJobProgressObject))
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
    ) -> async_graphql::Result<impl Stream<Item = crate::types::usage::LiveSessionUpdateObject>> {
        let filter = sim_stream_filter(ctx, iccid, customer_id, tenant_id).await?;
        let stream = services(ctx).realtime.usage_events();
        Ok(stream.flat_map(move |e| {
            let now = chrono::Utc::now();
            let updates = match e {
                ioto_domain::events::UsageEvent::SessionsUpdated { updates, .. } => updates,
                ioto_domain::events::UsageEvent::TelemetryStored { .. } => Vec::new(),
            };
            let visible: Vec<_> = updates
                .into_iter()
                .filter(|u| filter.admits(u.tenant_id, u.customer_id, &u.iccid))
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
