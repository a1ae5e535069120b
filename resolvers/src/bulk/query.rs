//! The bulk queries.

use super::*;
use crate::context::{actor, services};
pub use crate::enums::BulkJobStatusKind;
use crate::error::GqlResult;
use crate::fleet::{parse_time_id_cursor, time_id_cursor, PageInfo};
use crate::scalars::parse_tenant;
use ioto_domain::ports::BulkJobQuery;

#[derive(Default)]
pub struct BulkQuery;

#[Object]
impl BulkQuery {
    /// One bulk job; null when it does not exist or is not the caller's tenant's.
    async fn bulk_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<BulkJobObject>> {
        let id = job_id(&id)?;
        Ok(services(ctx)
            .fleet
            .bulk_job(actor(ctx)?, id)
            .await
            .gql()?
            .map(BulkJobObject))
    }

    /// The tenant's bulk jobs, newest first, optionally only some statuses; `after` is the
    /// `endCursor` of the previous page.
    #[graphql(complexity = "crate::limits::page_cost(first, 20, child_complexity)")]
    async fn bulk_jobs(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        statuses: Option<Vec<BulkJobStatusKind>>,
        #[graphql(desc = "Page size (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<BulkJobConnection> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let limit = ioto_domain::fleet::query::check_page_size(first.unwrap_or(20).into()).gql()?;
        let before = after.as_deref().map(parse_time_id_cursor).transpose()?;
        let query = BulkJobQuery {
            statuses: statuses.unwrap_or_default().into_iter().map(Into::into).collect(),
            before,
            limit: limit + 1,
        };
        let mut jobs = services(ctx)
            .fleet
            .bulk_jobs(actor(ctx)?, tenant, &query)
            .await
            .gql()?;
        let has_next_page = jobs.len() as u64 > limit;
        jobs.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(BulkJobConnection {
            page_info: PageInfo {
                has_next_page,
                has_previous_page: before.is_some(),
                start_cursor: jobs.first().map(|j| time_id_cursor(j.created_at, j.id)),
                end_cursor: jobs.last().map(|j| time_id_cursor(j.created_at, j.id)),
            },
            nodes: jobs.into_iter().map(BulkJobObject).collect(),
        })
    }
}
