//! `POST /imports/sims` and `POST /bulk-jobs`: files for scripts, the body being the file.
//!
//! Query parameters: `format` (`csv` or `xlsx`; default from the `Content-Type`), `commit`
//! (`true` to create the SIMs; default: preview only), `skipInvalid`, `customerId`, `tenantId`
//! (platform admins), `note`. The answer is the same report `importSims` gives, as JSON; errors
//! are `{"error": {"code", "message", "field"}}` with the matching HTTP status.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ioto_app::fleet::ImportRequest;
use ioto_domain::fleet::import::TableFormat;
use ioto_domain::{CustomerId, Error, TenantId};
use serde::Deserialize;
use serde_json::json;

use crate::server::caller::Uploader;
use crate::server::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportParams {
    format: Option<String>,
    #[serde(default)]
    commit: bool,
    #[serde(default)]
    skip_invalid: bool,
    customer_id: Option<String>,
    tenant_id: Option<String>,
    note: Option<String>,
}

fn error(e: Error) -> Response {
    crate::server::rest::rest_error(&e)
}

/// The file's format: the `format` parameter, else the `Content-Type`.
fn format_of(format: Option<&str>, headers: &HeaderMap) -> Result<TableFormat, Error> {
    if let Some(f) = format {
        return TableFormat::parse(f);
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("text/csv") || ct.starts_with("text/plain") {
        Ok(TableFormat::Csv)
    } else if ct.contains("spreadsheetml") {
        Ok(TableFormat::Xlsx)
    } else {
        Err(Error::invalid(
            "format",
            "say ?format=csv or ?format=xlsx (or send Content-Type text/csv or the XLSX type)",
        ))
    }
}

/// The caller ([`Uploader`]) is known, and the upload charged to it, before the body is read.
pub async fn import_sims(
    State(st): State<AppState>,
    Uploader { actor }: Uploader,
    headers: HeaderMap,
    Query(params): Query<ImportParams>,
    body: Bytes,
) -> Response {
    let request = (|| -> Result<ImportRequest, Error> {
        Ok(ImportRequest {
            tenant_id: params
                .tenant_id
                .as_deref()
                .map(|t| TenantId::parse(t, "tenantId"))
                .transpose()?,
            customer_id: params
                .customer_id
                .as_deref()
                .map(|c| CustomerId::parse(c, "customerId"))
                .transpose()?,
            format: format_of(params.format.as_deref(), &headers)?,
            bytes: Vec::from(body),
            commit: params.commit,
            skip_invalid: params.skip_invalid,
            note: params.note.clone(),
        })
    })();
    let request = match request {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    match st.fleet.import_sims(&actor, request).await {
        Ok(r) => Json(json!({
            "rows": r.rows,
            "valid": r.valid,
            "committed": r.committed(),
            "importId": r.import_id.map(|i| i.to_string()),
            "created": r.created,
            "errors": r.errors,
        }))
        .into_response(),
        Err(e) => error(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkParams {
    format: Option<String>,
    /// One action for every row (`ACTIVATE`, `SUSPEND`, …); rows name their own otherwise.
    action: Option<String>,
    tenant_id: Option<String>,
    note: Option<String>,
    file_name: Option<String>,
    /// `true`: start the job at once when validation found nothing to refuse.
    #[serde(default)]
    confirm: bool,
}

/// `POST /bulk-jobs`: the body is a bulk file (CSV or XLSX). Validates it into a job, as
/// `submitBulkJob` does, and answers `{job, report}`; with `confirm=true` a file without invalid
/// rows starts at once (one with invalid rows waits: confirm it after reading the report).
pub async fn submit_bulk_job(
    State(st): State<AppState>,
    Uploader { actor }: Uploader,
    headers: HeaderMap,
    Query(params): Query<BulkParams>,
    body: Bytes,
) -> Response {
    let file = (|| -> Result<ioto_app::fleet::BulkFile, Error> {
        let format = match (&params.format, &params.file_name) {
            (None, Some(name)) if TableFormat::parse(name).is_ok() => TableFormat::parse(name)?,
            (f, _) => format_of(f.as_deref(), &headers)?,
        };
        Ok(ioto_app::fleet::BulkFile {
            tenant_id: params
                .tenant_id
                .as_deref()
                .map(|t| TenantId::parse(t, "tenantId"))
                .transpose()?,
            file_name: params.file_name.clone(),
            format,
            bytes: Vec::from(body),
            action: params
                .action
                .as_deref()
                .map(|a| ioto_domain::fleet::bulk::parse_action(a, "action"))
                .transpose()?,
            note: params.note.clone(),
        })
    })();
    let file = match file {
        Ok(f) => f,
        Err(e) => return error(e),
    };
    let submitted = match st.fleet.submit_bulk_file(&actor, file).await {
        Ok(s) => s,
        Err(e) => return error(e),
    };
    let mut job = submitted.job;
    if params.confirm && submitted.report.invalid == 0 {
        job = match st.fleet.confirm_bulk_job(&actor, job.id).await {
            Ok(j) => j,
            Err(e) => return error(e),
        };
    }
    let r = &submitted.report;
    Json(json!({
        "job": {
            "id": job.id.to_string(),
            "status": job.status.as_str(),
            "total": job.total,
            "summary": job.summary(chrono::Utc::now()),
        },
        "report": {
            "validRecords": r.valid,
            "invalidRecords": r.invalid,
            "alreadyInState": r.already_in_state,
            "errors": r.errors,
        },
    }))
    .into_response()
}
