//! Quotas set from a file (`importSimQuotas`): the upload (GraphQL multipart `Upload`) read up to
//! the bulk file bound, checked row by row, and written only when asked.

use async_graphql::{Context, InputObject, SimpleObject, Upload, ID};
use ioto_app::quota::{QuotaImportReport, QuotaImportRequest};
use ioto_domain::fleet::import::TableFormat;
use ioto_domain::quota_import::QuotaRowError;
use ioto_domain::Error;

use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::scalars::parse_tenant;
use crate::to_gql;

/// A file of data quotas, one SIM per row.
#[derive(InputObject)]
pub struct ImportSimQuotasInput {
    /// Platform admins: the tenant whose SIMs the file names (default: your own).
    pub tenant_id: Option<ID>,
    /// A CSV (`,` or `;` between cells, UTF-8) or XLSX file (first sheet), told apart by its
    /// name (`.csv`, `.xlsx`); at most 20 MB and 100,000 rows. The first line names the
    /// columns (any case; other columns are ignored): `iccid` (required); `limit` (required
    /// unless the action is REMOVE: bytes as a whole number, or a number with a unit — B, KB,
    /// MB, GB, TB count in 1000s, KiB, MiB, GiB, TiB in 1024s, e.g. `1.5 GB`, `500 MiB` — from 1
    /// byte to 1 PiB); `stages` (warning percentages separated by `;`, e.g. `80;90;95`: up to
    /// 5, ascending, each 1–99; `NONE` for none; empty: 80;90); `action` (NOTIFY, the default;
    /// SUSPEND; or REMOVE, which removes the quota set on the SIM so that it follows its
    /// defaults again); `resume_next_period` (true/false, yes/no, 1/0; empty: false; only with
    /// SUSPEND).
    pub file: Upload,
    /// false (default): check the file and report, nothing is written. true: set and remove
    /// the rows' quotas — refused, and nothing written, when a row has errors unless
    /// `skipInvalid`.
    pub commit: Option<bool>,
    /// With `commit`: write the good rows and leave the bad ones out (default false).
    pub skip_invalid: Option<bool>,
}

/// What is wrong with one cell of a quota file.
#[derive(SimpleObject)]
#[graphql(name = "QuotaImportRowError")]
pub struct QuotaImportRowErrorObject {
    /// Line in the file; the header is line 1.
    pub line: i32,
    /// The column at fault: iccid, limit, stages, action or resume_next_period.
    pub column: String,
    /// The cell as given (cut to 100 characters).
    pub value: String,
    /// What is wrong, and what is allowed.
    pub message: String,
}

impl From<QuotaRowError> for QuotaImportRowErrorObject {
    fn from(e: QuotaRowError) -> Self {
        Self {
            line: count(e.line),
            column: e.column,
            value: e.value,
            message: e.message,
        }
    }
}

/// What checking, and perhaps applying, a quota file found and did.
#[derive(SimpleObject)]
#[graphql(name = "SimQuotaImportReport")]
pub struct SimQuotaImportReportObject {
    /// Data rows in the file (blank lines not counted).
    pub rows: i32,
    /// Rows without errors.
    pub valid: i32,
    /// Rows with at least one error.
    pub invalid: i32,
    /// Quotas set on SIMs (with `commit`), or that committing would set.
    pub set: i32,
    /// Quotas removed by REMOVE rows (with `commit`), or that committing would remove.
    pub removed: i32,
    /// REMOVE rows whose SIM has no quota of its own (nothing to remove; a quota it follows
    /// from a default stays).
    pub unchanged: i32,
    /// Whether the good rows were written.
    pub committed: bool,
    /// What is wrong with the bad rows, in file order: the first 1,000 (`invalid` counts every
    /// bad row). An ICCID that is not one of your SIMs in the tenant is "no such SIM in this
    /// tenant".
    pub errors: Vec<QuotaImportRowErrorObject>,
    /// What is wrong with the file as a whole (a missing or repeated column, no rows): no row
    /// was checked and nothing can be written until it is fixed.
    pub file_errors: Vec<String>,
}

fn count(v: usize) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn count64(v: u64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl From<QuotaImportReport> for SimQuotaImportReportObject {
    fn from(r: QuotaImportReport) -> Self {
        Self {
            rows: count(r.rows),
            valid: count(r.valid),
            invalid: count(r.invalid),
            set: count64(r.set),
            removed: count64(r.removed),
            unchanged: count64(r.unchanged),
            committed: r.committed,
            errors: r.errors.into_iter().map(Into::into).collect(),
            file_errors: r.file_errors,
        }
    }
}

/// `importSimQuotas`: reads the upload (stopping once more than the bound arrived, which the
/// service then refuses) and hands it to the quota service.
pub(super) async fn import_sim_quotas(
    ctx: &Context<'_>,
    input: ImportSimQuotasInput,
) -> async_graphql::Result<SimQuotaImportReportObject> {
    let tenant = parse_tenant(input.tenant_id.as_ref())?;
    let upload = input.file.value(ctx).map_err(|e| {
        to_gql(Error::invalid(
            "file",
            format!("could not be read from the request: {e}"),
        ))
    })?;
    let format = TableFormat::parse(&upload.filename).map_err(|_| {
        let name: String = upload
            .filename
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        to_gql(Error::invalid(
            "file",
            format!("cannot tell the format of '{name}': name the file .csv or .xlsx"),
        ))
    })?;
    let bytes = crate::bulk::read_bounded(upload)?;
    let req = QuotaImportRequest {
        tenant,
        format,
        bytes,
        commit: input.commit.unwrap_or(false),
        skip_invalid: input.skip_invalid.unwrap_or(false),
    };
    let report = services(ctx)
        .quotas
        .import_sim_quotas(actor(ctx)?, req)
        .await
        .gql()?;
    Ok(report.into())
}
