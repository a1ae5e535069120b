//! The yardstick for `ioto-bench api`: plain axum handlers doing the reads the GraphQL operations
//! do — same token check, same scoped transaction on the same database (`BEGIN`, the row-level
//! security settings, the queries, `COMMIT`), JSON out — without GraphQL, the domain services or
//! the request pipeline. GraphQL's figure divided by this one is the cost of everything Ioto adds.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use ioto_domain::Actor;
use ioto_store::entities::{sim, tenant, user};
use ioto_store::SqlStore;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use ioto::config::Config;
use ioto::engines;
use ioto::server::auth::{bearer, Jwt};

#[derive(Clone)]
struct Bare {
    store: SqlStore,
    jwt: Arc<Jwt>,
}

type Answer = Result<Json<Value>, (StatusCode, String)>;

fn failed(e: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

impl Bare {
    async fn actor(&self, headers: &HeaderMap) -> Result<Actor, (StatusCode, String)> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .ok_or((StatusCode::UNAUTHORIZED, "no token".to_owned()))?;
        self.jwt
            .verify(token)
            .await
            .map_err(|e| (StatusCode::UNAUTHORIZED, e.to_string()))
    }
}

async fn me(State(b): State<Bare>, headers: HeaderMap) -> Answer {
    let actor = b.actor(&headers).await?;
    let user_id = actor
        .user_id
        .ok_or((StatusCode::BAD_REQUEST, "no user".to_owned()))?;
    let txn = b.store.begin(actor.scope()).await.map_err(failed)?;
    let u = user::Entity::find_by_id(user_id.0)
        .one(&txn)
        .await
        .map_err(failed)?;
    let t = tenant::Entity::find_by_id(actor.tenant_id.0)
        .one(&txn)
        .await
        .map_err(failed)?;
    txn.commit().await.map_err(failed)?;
    let (u, t) = u.zip(t).ok_or((StatusCode::NOT_FOUND, "gone".to_owned()))?;
    Ok(Json(
        json!({ "data": { "me": { "email": u.email, "role": u.role, "tenant": { "id": t.id, "name": t.name } } } }),
    ))
}

async fn one_sim(State(b): State<Bare>, headers: HeaderMap, Json(body): Json<Value>) -> Answer {
    let actor = b.actor(&headers).await?;
    let iccid = body["iccid"].as_str().unwrap_or_default().to_owned();
    let txn = b.store.begin(actor.scope()).await.map_err(failed)?;
    let s = sim::Entity::find()
        .filter(sim::Column::TenantId.eq(actor.tenant_id.0))
        .filter(sim::Column::Iccid.eq(iccid))
        .one(&txn)
        .await
        .map_err(failed)?;
    txn.commit().await.map_err(failed)?;
    Ok(Json(
        json!({ "data": { "sim": s.map(|s| json!({ "iccid": s.iccid, "imsi": s.imsi, "state": s.state })) } }),
    ))
}

async fn sims(State(b): State<Bare>, headers: HeaderMap) -> Answer {
    let actor = b.actor(&headers).await?;
    let txn = b.store.begin(actor.scope()).await.map_err(failed)?;
    let mut rows = sim::Entity::find()
        .filter(sim::Column::TenantId.eq(actor.tenant_id.0))
        .order_by_asc(sim::Column::Iccid)
        .limit(101)
        .all(&txn)
        .await
        .map_err(failed)?;
    txn.commit().await.map_err(failed)?;
    let has_next_page = rows.len() > 100;
    rows.truncate(100);
    let nodes: Vec<Value> = rows
        .into_iter()
        .map(|s| json!({ "iccid": s.iccid, "imsi": s.imsi, "state": s.state }))
        .collect();
    Ok(Json(
        json!({ "data": { "sims": { "nodes": nodes, "pageInfo": { "hasNextPage": has_next_page } } } }),
    ))
}

/// The bare server, running until [`BareServer::stop`].
pub struct BareServer {
    pub url: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl BareServer {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Serves the bare handlers on an ephemeral port, on their own pool to `config`'s store.
pub async fn serve(config: &Config, jwt: Arc<Jwt>) -> anyhow::Result<BareServer> {
    let store =
        ioto_store::connect(&engines::store_location(config), config.database.max_connections).await?;
    let router = Router::new()
        .route("/me", post(me))
        .route("/sim", post(one_sim))
        .route("/sims", post(sims))
        .with_state(Bare { store, jwt });
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(BareServer { url, stop, task })
}
