//! A bulk job's progress.

use crate::context::{actor, services};
use crate::subscription::*;
use async_graphql::{Context, Subscription};
use futures::{Stream, StreamExt};

/// The bulk subscriptions.
#[derive(Default)]
pub struct BulkSubscription;

#[Subscription]
impl BulkSubscription {
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
}
