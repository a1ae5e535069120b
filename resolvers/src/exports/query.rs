//! The exports queries.

use super::*;
use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::fleet::{parse_time_id_cursor, time_id_cursor, PageInfo};
use crate::scalars::parse_tenant;
use ioto_domain::ports::jobs::ExportJobQuery;
use ioto_domain::TenantId;

#[derive(Default)]
pub struct ExportQuery;

#[Object]
impl ExportQuery {
    /// Export jobs, newest first: the caller's own (a tenant's administrators: all of the
    /// tenant's). `after` is the `endCursor` of the previous page.
    #[graphql(complexity = "crate::limits::page_cost(first, 20, child_complexity)")]
    async fn export_jobs(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        statuses: Option<Vec<ExportStatusGql>>,
        #[graphql(desc = "Page size (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ExportJobConnection> {
        let tenant: Option<TenantId> = parse_tenant(tenant_id.as_ref())?;
        let limit = ioto_domain::fleet::query::check_page_size(first.unwrap_or(20).into()).gql()?;
        let before = after.as_deref().map(parse_time_id_cursor).transpose()?;
        let mut nodes = services(ctx)
            .exports
            .jobs(
                actor(ctx)?,
                tenant,
                ExportJobQuery {
                    statuses: statuses.into_iter().flatten().map(Into::into).collect(),
                    before,
                    limit: limit + 1,
                    ..ExportJobQuery::default()
                },
            )
            .await
            .gql()?;
        let has_next_page = nodes.len() as u64 > limit;
        nodes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(ExportJobConnection {
            page_info: PageInfo {
                has_next_page,
                has_previous_page: before.is_some(),
                start_cursor: nodes.first().map(|j| time_id_cursor(j.created_at, j.id)),
                end_cursor: nodes.last().map(|j| time_id_cursor(j.created_at, j.id)),
            },
            nodes: nodes.into_iter().map(ExportJobObject).collect(),
        })
    }

    /// One export job; null when it does not exist or is not the caller's to see.
    async fn export_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<ExportJobObject>> {
        let id = job_id(&id)?;
        Ok(services(ctx)
            .exports
            .job(actor(ctx)?, id)
            .await
            .gql()?
            .map(ExportJobObject))
    }
}
