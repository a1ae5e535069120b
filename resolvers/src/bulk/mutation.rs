//! The bulk mutations.

use super::*;
use crate::context::{actor, services};
pub use crate::enums::BulkActionKind;
use crate::error::GqlResult;
use crate::scalars::parse_tenant;
use crate::to_gql;
use ioto_app::fleet::BulkFile;
use ioto_domain::fleet::import::TableFormat;
use ioto_domain::Error;

#[derive(Default)]
pub struct BulkMutation;

#[Object]
impl BulkMutation {
    /// Uploads a bulk file (GraphQL multipart request) and validates it; nothing runs until
    /// `confirmBulkJob`. At most 100,000 rows and 20 MB; CSV (`,` or `;`, UTF-8, BOM allowed) or
    /// XLSX (first sheet; formulas are read as their cached text, never evaluated).
    async fn submit_bulk_job(
        &self,
        ctx: &Context<'_>,
        input: SubmitBulkJobInput,
    ) -> async_graphql::Result<BulkJobSubmission> {
        let upload = input.file.value(ctx).map_err(|e| {
            to_gql(Error::invalid(
                "file",
                format!("could not be read from the request: {e}"),
            ))
        })?;
        let file_name: String = upload.filename.chars().filter(|c| !c.is_control()).collect();
        let format = match input.format {
            Some(BulkFileFormat::Csv) => TableFormat::Csv,
            Some(BulkFileFormat::Xlsx) => TableFormat::Xlsx,
            None => TableFormat::parse(&upload.filename).map_err(|_| {
                to_gql(Error::invalid(
                    "format",
                    format!(
                        "cannot tell the format of '{}': name the file .csv or .xlsx, or give format",
                        upload.filename
                    ),
                ))
            })?,
        };
        let bytes = read_bounded(upload)?;
        let file = BulkFile {
            tenant_id: parse_tenant(input.tenant_id.as_ref())?,
            file_name: Some(file_name),
            format,
            bytes,
            action: input.action.map(Into::into),
            note: input.note,
        };
        let fleet = services(ctx).fleet.clone();
        let actor = actor(ctx)?.clone();
        Ok(fleet.submit_bulk_file(&actor, file).await.gql()?.into())
    }

    /// Starts a validated job. `CONFLICT` when it is not awaiting confirmation (confirmed twice,
    /// cancelled, finished).
    async fn confirm_bulk_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<BulkJobObject> {
        let id = job_id(&id)?;
        Ok(BulkJobObject(
            services(ctx)
                .fleet
                .confirm_bulk_job(actor(ctx)?, id)
                .await
                .gql()?,
        ))
    }

    /// Cancels a job awaiting confirmation or running (rows not yet sent are not sent).
    /// `CONFLICT` once it has finished.
    async fn cancel_bulk_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<BulkJobObject> {
        let id = job_id(&id)?;
        Ok(BulkJobObject(
            services(ctx).fleet.cancel_bulk_job(actor(ctx)?, id).await.gql()?,
        ))
    }

    /// Changes the state of SIMs through the network: always a bulk job inside, validated like a
    /// file and started at once. Small lists (up to the server's `bulk.provision_wait_limit`,
    /// 100 by default) wait for every SIM's outcome; larger ones return the running job.
    async fn provision_sims(
        &self,
        ctx: &Context<'_>,
        iccids: Vec<String>,
        action: BulkActionKind,
        options: Option<ProvisionOptions>,
    ) -> async_graphql::Result<ProvisionResult> {
        let options = options.unwrap_or_default();
        let svc = services(ctx);
        let tenant = parse_tenant(options.tenant_id.as_ref())?;
        let done = match iccids.as_slice() {
            // One SIM: run alone, or held with the caller's other rapid single calls.
            [one] => {
                let out = svc
                    .fleet
                    .provision_one(
                        actor(ctx)?,
                        tenant,
                        one,
                        action.into(),
                        options.note.as_deref(),
                        svc.provision_wait,
                    )
                    .await
                    .gql()?;
                if let (Some(w), Some(rc)) = (out.warning, ctx.data_opt::<crate::RequestContext>()) {
                    rc.warn(w);
                }
                out.provisioned
            }
            _ => svc
                .fleet
                .provision_sims(
                    actor(ctx)?,
                    tenant,
                    &iccids,
                    action.into(),
                    options.note.as_deref(),
                    svc.provision_wait,
                )
                .await
                .gql()?,
        };
        Ok(ProvisionResult {
            completed: done.job.status.is_final(),
            job: BulkJobObject(done.job),
            report: done.report.into(),
            results: done.rows.map(|rows| rows.into_iter().map(Into::into).collect()),
        })
    }
}

/// The bytes of an uploaded file, read up to one past [`MAX_BULK_FILE_BYTES`]: what arrived is
/// bounded here, whatever the request declared, and the service refuses a file past the bound
/// naming `file`.
///
/// [`MAX_BULK_FILE_BYTES`]: ioto_domain::fleet::bulk::MAX_BULK_FILE_BYTES
pub(crate) fn read_bounded(upload: async_graphql::UploadValue) -> async_graphql::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            upload.into_read(),
            ioto_domain::fleet::bulk::MAX_BULK_FILE_BYTES as u64 + 1,
        ),
        &mut bytes,
    )
    .map_err(|e| to_gql(Error::invalid("file", format!("could not be read: {e}"))))?;
    Ok(bytes)
}
