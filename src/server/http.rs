//! The HTTP surface: GraphQL over HTTP and WebSocket, the browser pages, health, readiness, metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::extract::{MatchedPath, Request, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ioto_resolvers::RequestContext;
use serde_json::json;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::config::Config;
use crate::server::auth::{authenticate, authenticate_open, bearer};
use crate::server::caller::GraphQlCaller;
use crate::server::state::AppState;
use crate::server::web;

pub fn router(state: AppState, config: &Config) -> Router {
    let cors = cors_layer(&config.http.cors_origins);
    // A body that stalls this long between two chunks fails its request.
    let body_timeout = tower_http::timeout::RequestBodyTimeoutLayer::new(Duration::from_secs(
        config.http.body_read_timeout_seconds,
    ));
    // Inventory files have their own, larger body limit.
    let imports = Router::new()
        .route("/imports/sims", post(crate::server::imports::import_sims))
        .layer(axum::extract::DefaultBodyLimit::max(
            config.fleet.import_max_bytes,
        ))
        .layer(RequestBodyLimitLayer::new(config.fleet.import_max_bytes))
        .layer(body_timeout.clone());
    // Bulk files and scripts' bulk requests: up to the bulk file limit.
    let bulk_max = ioto_domain::fleet::bulk::MAX_BULK_FILE_BYTES + 1024 * 1024;
    let bulk = Router::new()
        .route("/bulk-jobs", post(crate::server::imports::submit_bulk_job))
        .layer(axum::extract::DefaultBodyLimit::max(bulk_max))
        .layer(RequestBodyLimitLayer::new(bulk_max))
        .layer(body_timeout.clone());
    // GraphQL: JSON bodies up to `graphql.body_limit_bytes`; multipart requests (uploads) up to
    // the bulk file limit.
    let graphql_post = Router::new()
        .route("/graphql", post(graphql))
        .layer(axum::extract::DefaultBodyLimit::max(bulk_max))
        .layer(RequestBodyLimitLayer::new(bulk_max))
        .layer(middleware::from_fn_with_state(
            (config.graphql.body_limit_bytes, bulk_max),
            graphql_body_limit,
        ))
        .layer(body_timeout);
    let api = Router::new()
        .route("/", get(|| async { Redirect::temporary("/playground") }))
        .route("/graphql/ws", get(graphql_ws))
        .route("/playground", get(web::playground))
        .route("/playground/operations.graphql", get(web::playground_operations))
        .route("/playground/assets/{file}", get(web::playground_asset))
        .route("/console", get(web::console))
        .route("/console/", get(web::console))
        .route("/console/assets/{file}", get(web::console_asset))
        .route("/exports/{id}/download", get(crate::server::exports::download))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(RequestBodyLimitLayer::new(config.graphql.body_limit_bytes));
    Router::new()
        .merge(api)
        .merge(graphql_post)
        .merge(bulk)
        .merge(imports)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(CompressionLayer::new())
        .layer(cors)
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        })
        // One access-log line per response, carrying the span's request id.
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::HeaderName::from_static("x-request-id")])
        .max_age(Duration::from_secs(600));
    if origins.iter().any(|o| o == "*") {
        base.allow_origin(AllowOrigin::any())
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        base.allow_origin(AllowOrigin::list(list))
    }
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A request refused before it ran, as a GraphQL-shaped answer: 401 for a missing or bad token,
/// else the error's code (details of `UNAVAILABLE` and `INTERNAL` go to the log only).
pub(crate) fn graphql_error_response(e: &ioto_domain::Error) -> Response {
    if e.code() == ioto_domain::ErrorCode::Unauthenticated {
        return unauthenticated(&e.to_string());
    }
    let resp = async_graphql::Response::from_errors(vec![
        ioto_resolvers::to_gql(e.clone()).into_server_error(async_graphql::Pos::default())
    ]);
    GraphQLResponse::from(resp).into_response()
}

/// 401 with a GraphQL-shaped body, so clients handle it like any other error.
fn unauthenticated(message: &str) -> Response {
    let body = json!({ "data": null, "errors": [{ "message": message, "extensions": { "code": "UNAUTHENTICATED" } }] });
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(body),
    )
        .into_response()
}

/// The reason a WebSocket is closed with: `CODE: message`, cut on a character boundary to the
/// 123 bytes a close frame can carry.
fn close_reason(e: &ioto_domain::Error) -> String {
    let p = e.public();
    let mut reason = format!("{}: {}", p.code.as_str(), p.message);
    if reason.len() > 123 {
        let mut cut = 120;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        reason.push('…');
    }
    reason
}

/// A refused `connection_init`. graphql-transport-ws can only close the socket (async-graphql
/// uses code 1002), with the [`close_reason`].
fn ws_init_error(e: &ioto_domain::Error) -> async_graphql::Error {
    if e.is_private() {
        tracing::error!(code = e.code().as_str(), detail = %e, "connection_init failed");
    }
    async_graphql::Error::new(close_reason(e))
}

/// Holds a GraphQL request to its limit: JSON bodies to `graphql.body_limit_bytes`, multipart
/// uploads to the bulk file limit. A request that says it is larger is answered `413` with a
/// GraphQL error saying what is allowed; a JSON body without a length is cut off at the limit.
async fn graphql_body_limit(
    State((json_limit, upload_limit)): State<(usize, usize)>,
    req: Request,
    next: Next,
) -> Response {
    let multipart = crate::server::caller::is_multipart(req.headers());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let (limit, what) = if multipart {
        (
            upload_limit,
            format!(
                "an upload may be at most {} MB (a bulk file at most {} MB)",
                upload_limit / (1024 * 1024),
                ioto_domain::fleet::bulk::MAX_BULK_FILE_BYTES / (1024 * 1024)
            ),
        )
    } else {
        (
            json_limit,
            format!("a request body may be at most {json_limit} bytes (graphql.body_limit_bytes); files go as a multipart upload"),
        )
    };
    if declared.is_some_and(|n| n > limit) {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({ "errors": [{ "message": format!("too large: {what}"), "extensions": { "code": "BAD_USER_INPUT", "field": "file" } }] })),
        )
            .into_response();
    }
    if multipart {
        return next.run(req).await;
    }
    let req = req.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, limit)));
    next.run(req).await
}

/// The caller ([`GraphQlCaller`]) is known before the body is read: a request with a bad token,
/// or an upload without one, is answered without reading it.
async fn graphql(
    State(st): State<AppState>,
    caller: GraphQlCaller,
    headers: HeaderMap,
    req: GraphQLRequest,
) -> Response {
    let GraphQlCaller { actor, client } = caller;
    let req = req.into_inner();
    // A query's reads share one transaction (see `ioto_store::ReadSession`); mutations don't.
    let session = is_query(&req).then(ioto_store::ReadSession::new);
    let meter = ioto_resolvers::RequestMeter::default();
    let queries = Arc::clone(&meter.store_queries);
    let ctx = RequestContext {
        actor,
        request_id: request_id(&headers),
        client,
        user_agent: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.chars()
                    .take(ioto_domain::account::MAX_USER_AGENT_CHARS)
                    .collect()
            }),
        subscription_slots: None,
        loaders: Default::default(),
        warnings: Default::default(),
        meter: meter.clone(),
        // Work spawned for the request (dataloader batches) counts its store queries against
        // it, and a query's reads in its session.
        task_scope: Some({
            let (session, queries) = (session.clone(), Arc::clone(&queries));
            Arc::new(move |fut| {
                let fut = match &session {
                    Some(s) => s.wrap(fut),
                    None => fut,
                };
                Box::pin(ioto_metering::metered(Arc::clone(&queries), fut))
            })
        }),
    };
    let execute = async {
        match &session {
            Some(s) => {
                let resp = s.run(st.schema.execute(req.data(ctx))).await;
                // Nothing was written: a failed commit loses nothing, but is worth knowing about.
                if let Err(e) = s.finish().await {
                    tracing::warn!(error = %e, "closing the read session");
                }
                resp
            }
            None => st.schema.execute(req.data(ctx)).await,
        }
    };
    let resp = ioto_metering::metered(queries, execute).await;
    st.metrics.record_operation(meter.cost(), meter.store_queries());
    let limited = resp.errors.iter().find_map(|e| {
        let ext = e.extensions.as_ref()?;
        match ext.get("code") {
            Some(async_graphql::Value::String(c)) if c == "RATE_LIMITED" => Some(ext.clone()),
            _ => None,
        }
    });
    for e in &resp.errors {
        let code = e
            .extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .and_then(|v| match v {
                async_graphql::Value::String(s) => Some(s.clone()),
                async_graphql::Value::Enum(s) => Some(s.to_string()),
                _ => None,
            })
            .unwrap_or_else(|| "INTERNAL".into());
        st.metrics.record_graphql_error(&code);
    }
    let mut response = GraphQLResponse::from(resp).into_response();
    // Refused by a rate limit: 429 with when to come back, and the bucket's state.
    if let Some(ext) = limited {
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        let headers = response.headers_mut();
        if let Some(async_graphql::Value::Number(n)) = ext.get("retryAfter") {
            let secs = n.as_f64().unwrap_or(1.0).ceil().max(1.0) as u64;
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        for k in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
            if let Some(async_graphql::Value::String(v)) = ext.get(k) {
                if let Ok(v) = HeaderValue::from_str(v) {
                    headers.insert(k, v);
                }
            }
        }
    }
    response
}

/// Whether the operation the request runs is a query (a parse error or an unknown operation name
/// is answered by the schema; here it only means "not a query").
fn is_query(req: &async_graphql::Request) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Ok(doc) = async_graphql::parser::parse_query(&req.query) else {
        return false;
    };
    let ty = match (&doc.operations, req.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    };
    ty == Some(OperationType::Query)
}

/// graphql-transport-ws (and the legacy graphql-ws) with the token in `connection_init`:
/// `{"authorization": "Bearer <token>"}` (or `{"token": "<token>"}`).
///
/// The token is checked again for as long as the socket is open, at the cadence HTTP requests
/// are (`auth.session_check_seconds`): once it has expired, or its user was deleted or demoted,
/// the server closes the socket with 4401 and the reason, ending its subscriptions and any
/// further queries or mutations sent over it. A socket without a valid `connection_init` within
/// `graphql.ws_init_timeout_seconds` is closed with 4408; one socket has at most
/// `graphql.max_subscriptions_per_connection` subscriptions open and reads messages of at most
/// `graphql.body_limit_bytes`.
async fn graphql_ws(
    State(st): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let request_id = request_id(&headers);
    let client = crate::server::caller::client_address(peer.map(|p| p.0 .0), &headers, &st.trusted_proxies);
    let schema = st.schema.clone();
    let jwt = Arc::clone(&st.jwt);
    let sessions = Arc::clone(&st.sessions);
    let bounds = st.ws;
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(bounds.max_message_bytes)
        .max_frame_size(bounds.max_message_bytes)
        .on_upgrade(move |socket| async move {
            let (mut sink, stream) = futures::StreamExt::split(socket);
            // The token accepted at connection_init, then why the socket is closed (code, reason).
            let (token_tx, mut token_rx) = tokio::sync::watch::channel::<Option<String>>(None);
            let (revoked_tx, mut revoked_rx) = tokio::sync::watch::channel::<Option<(u16, String)>>(None);
            let (check_jwt, check_sessions) = (Arc::clone(&jwt), Arc::clone(&sessions));
            let watcher = tokio::spawn(async move {
                let token =
                    match tokio::time::timeout(bounds.init_timeout, token_rx.wait_for(Option::is_some)).await
                    {
                        Ok(Ok(t)) => t.clone().unwrap_or_default(),
                        Ok(Err(_)) => return,
                        Err(_) => {
                            let _ = revoked_tx.send(Some((4408, "Connection initialisation timeout".into())));
                            return;
                        }
                    };
                let every = check_sessions.every().max(Duration::from_secs(1));
                loop {
                    tokio::time::sleep(every).await;
                    match authenticate_open(&check_jwt, &check_sessions, &token, client).await {
                        Ok(_) => {}
                        Err(e) if e.code() == ioto_domain::ErrorCode::Unauthenticated => {
                            let _ = revoked_tx.send(Some((4401, close_reason(&e))));
                            return;
                        }
                        // The user store could not be read: not a reason to drop the client.
                        Err(e) => tracing::warn!(error = %e, "re-checking a WebSocket session"),
                    }
                }
            });
            // The client's messages end when the session is revoked (a watcher that ended
            // without revoking, at the socket's close, ends nothing).
            let mut revoked = revoked_rx.clone();
            let input = futures::StreamExt::take_until(stream, async move {
                if revoked.wait_for(Option::is_some).await.is_err() {
                    std::future::pending::<()>().await;
                }
            });
            GraphQLWebSocket::new_with_pair(&mut sink, input, schema, protocol)
                .on_connection_init(move |payload: serde_json::Value| async move {
                    let raw = ["authorization", "Authorization", "token"]
                        .iter()
                        .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
                        .ok_or_else(|| {
                            ws_init_error(&ioto_domain::Error::Unauthenticated(
                                "connection_init must carry {\"authorization\": \"Bearer <token>\"}".into(),
                            ))
                        })?;
                    let token = bearer(raw).unwrap_or(raw);
                    let actor = authenticate(&jwt, &sessions, token, client)
                        .await
                        .map_err(|e| ws_init_error(&e))?;
                    let _ = token_tx.send(Some(token.to_owned()));
                    let mut data = async_graphql::Data::default();
                    data.insert(RequestContext {
                        actor: Some(actor),
                        request_id,
                        client,
                        user_agent: None,
                        subscription_slots: Some(ioto_resolvers::SubscriptionSlots::new(
                            bounds.max_subscriptions,
                        )),
                        loaders: Default::default(),
                        warnings: Default::default(),
                        meter: Default::default(),
                        task_scope: None,
                    });
                    Ok(data)
                })
                .serve()
                .await;
            watcher.abort();
            let reason = revoked_rx.borrow_and_update().clone();
            if let Some((code, reason)) = reason {
                let frame = axum::extract::ws::CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ =
                    futures::SinkExt::send(&mut sink, axum::extract::ws::Message::Close(Some(frame))).await;
            }
        })
}

async fn readyz(State(st): State<AppState>) -> Response {
    let timeout = Duration::from_secs(3);
    let e = &st.engines;
    let checks = [
        (
            "transactional store",
            e.directory.info(),
            tokio::time::timeout(timeout, e.directory.ping()).await,
        ),
        (
            "usage store",
            e.usage.info(),
            tokio::time::timeout(timeout, e.usage.ping()).await,
        ),
        (
            "event bus",
            e.bus.info(),
            tokio::time::timeout(timeout, e.bus.ping()).await,
        ),
        (
            "device telemetry",
            e.telemetry.info(),
            tokio::time::timeout(timeout, e.telemetry.ping()).await,
        ),
    ];
    let mut all_ok = true;
    // Anyone may ask: the answer says which engine is down, never the engine's own words (host
    // names, addresses, credentials in a URL); those go to the server's log.
    let worker = st.pipeline.ingest.as_ref().map(|s| match s.down() {
        None => json!({ "ok": true }),
        Some(why) => {
            tracing::warn!(reason = %why, "readiness: the ingest worker is down");
            json!({ "ok": false, "error": "stopped (the server's log says why)" })
        }
    });
    if let Some(w) = &worker {
        all_ok &= w["ok"] == true;
    }
    let engines: Vec<_> = checks
        .into_iter()
        .map(|(port, info, result)| {
            let error = match result {
                Ok(Ok(())) => None,
                Ok(Err(err)) => {
                    tracing::warn!(port, engine = info.engine, error = %err, "readiness: an engine failed its check");
                    Some("failed its check (the server's log says why)".to_owned())
                }
                Err(_) => Some(format!("no answer within {}s", timeout.as_secs())),
            };
            all_ok &= error.is_none();
            st.metrics.set_engine_up(port, info.engine, error.is_none());
            json!({ "port": port, "engine": info.engine, "ok": error.is_none(), "error": error })
        })
        .collect();
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if all_ok { "ready" } else { "unavailable" },
            "engines": engines,
            "ingestWorker": worker,
        })),
    )
        .into_response()
}

async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::server::metrics::CONTENT_TYPE)],
        st.metrics.render(),
    )
}

async fn track(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    // Methods are a bounded label: anything outside the standard ones is counted as "other", so
    // a client inventing methods cannot grow the metrics without bound.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "HEAD" | "OPTIONS" | "PUT" | "PATCH" | "DELETE") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    st.metrics
        .record_request(&method, &route, resp.status().as_u16(), start.elapsed());
    resp
}
