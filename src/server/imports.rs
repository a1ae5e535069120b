//! `POST /imports/sims`: inventory files too large for a GraphQL request (the body is the file).
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
use ioto_domain::fleet::import::TableFormat;
use ioto_domain::services::fleet::ImportRequest;
use ioto_domain::{CustomerId, Error, TenantId};
use serde::Deserialize;
use serde_json::json;

use crate::server::auth::authenticate;
use crate::server::auth::bearer;
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

fn format_of(params: &ImportParams, headers: &HeaderMap) -> Result<TableFormat, Error> {
    if let Some(f) = &params.format {
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

pub async fn import_sims(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<ImportParams>,
    body: Bytes,
) -> Response {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
    else {
        return error(Error::Unauthenticated(
            "send 'Authorization: Bearer <token>'".into(),
        ));
    };
    let actor = match authenticate(&st.jwt, &st.sessions, token).await {
        Ok(a) => a,
        Err(e) => return error(e),
    };
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
            format: format_of(&params, &headers)?,
            bytes: body.to_vec(),
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
