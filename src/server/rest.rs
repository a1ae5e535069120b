//! Answers of the plain HTTP (non-GraphQL) endpoints.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A REST error answer: `{"error": {"code", "message", "field"}}` with the code's HTTP status.
/// Details of `UNAVAILABLE` and `INTERNAL` go to the log, never to the caller.
pub fn rest_error(e: &ioto_domain::Error) -> Response {
    if e.is_private() {
        tracing::error!(code = e.code().as_str(), detail = %e, "request failed");
    }
    let p = e.public();
    let status = StatusCode::from_u16(p.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({ "error": { "code": p.code.as_str(), "message": p.message, "field": p.field } })),
    )
        .into_response()
}
