//! The exports mutations.

use super::*;
use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::to_gql;
use chrono::Utc;
use ioto_domain::export::ExportKind;
use ioto_domain::Error;

#[derive(Default)]
pub struct ExportMutation;

#[Object]
impl ExportMutation {
    /// Queues an export of `kind` as `format`, reading what the kind's query would read with
    /// `filter`, as the caller may see it. Checked now (permissions, filter); follow it with
    /// `exportJobProgress` or `exportJob`, then download through `downloadUrl`. At most 5 of a
    /// user's exports are queued or running at once.
    async fn request_export(
        &self,
        ctx: &Context<'_>,
        kind: ExportKindGql,
        format: ExportFormatGql,
        filter: Option<ExportFilterInput>,
    ) -> async_graphql::Result<ExportJobObject> {
        let kind: ExportKind = kind.into();
        let mut filter = filter.unwrap_or_default();
        filter.settle(kind, Utc::now());
        let request = export_request(kind, &filter)?;
        let stored = async_graphql::InputType::to_value(&filter)
            .into_json()
            .map_err(|e| to_gql(Error::Internal(format!("export filter as JSON: {e}"))))?;
        let job = services(ctx)
            .exports
            .request(actor(ctx)?, &request, format.into(), stored)
            .await
            .gql()?;
        Ok(ExportJobObject(job))
    }

    /// Cancels a queued or running export (`CONFLICT` once it has ended); no file is kept.
    async fn cancel_export(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ExportJobObject> {
        let id = job_id(&id)?;
        let job = services(ctx).exports.cancel(actor(ctx)?, id).await.gql()?;
        Ok(ExportJobObject(job))
    }
}
