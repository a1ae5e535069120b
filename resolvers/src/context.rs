//! What resolvers get from the server: the services (schema data) and the caller (request data).

use std::sync::Arc;

use async_graphql::Context;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use ioto_app::{DirectoryService, FleetService, UsageService};
use ioto_domain::account::SessionId;
use ioto_domain::directory::User;
use ioto_domain::events::{DirectoryEvent, FleetEvent};
use ioto_domain::{Actor, Error, Result};

/// Mints the access tokens of sign-in sessions. The server implements it with its JWT
/// configuration.
pub trait TokenIssuer: Send + Sync + 'static {
    /// `Forbidden` when this server does not issue tokens (an external identity provider does).
    fn issues_tokens(&self) -> Result<()>;
    /// A short-lived access token for `user` in `session`, and when it expires.
    fn issue(&self, user: &User, session: SessionId) -> Result<(String, DateTime<Utc>)>;
}

/// Realtime fan-out of events to subscribers, across server instances.
pub trait Realtime: Send + Sync + 'static {
    /// Publishes after a change committed. Never fails the mutation: delivery problems are the
    /// bus's to report.
    fn directory_changed(&self, event: DirectoryEvent);
    fn directory_events(&self) -> BoxStream<'static, DirectoryEvent>;
    /// Fleet events (SIM state changes) committed on any instance.
    fn fleet_events(&self) -> BoxStream<'static, FleetEvent>;
    /// Session updates counted and device readings stored, by any ingest worker.
    fn usage_events(&self) -> BoxStream<'static, ioto_domain::events::UsageEvent>;
}

/// Shared by every request (schema data).
#[derive(Clone)]
pub struct Services {
    pub directory: DirectoryService,
    pub fleet: FleetService,
    pub quotas: ioto_app::QuotaService,
    pub alerts: ioto_app::AlertService,
    /// Forecasts and anomalies (computed by a scheduled pass; read here).
    pub forecasts: ioto_app::ForecastService,
    pub usage: UsageService,
    pub billing: ioto_app::billing::BillingService,
    pub analytics: ioto_app::AnalyticsService,
    pub exports: ioto_app::ExportService,
    /// Signs the download links of finished exports.
    pub export_links: Arc<dyn ExportLinks>,
    pub tokens: Arc<dyn TokenIssuer>,
    pub realtime: Arc<dyn Realtime>,
    /// Rate limits of this instance (charged before an operation runs).
    pub rate_limiter: Arc<crate::rate_limit::RateLimiter>,
    /// How long `provisionSims` waits, and for how many SIMs.
    pub provision_wait: ioto_app::fleet::ProvisionWait,
    /// How often an open subscription checks again that its caller still sees what it streams
    /// (besides at every visibility change announced on the bus).
    pub subscription_recheck: std::time::Duration,
}

pub use crate::loaders::TaskScope;

/// Per request (request data): who is calling, and the id echoed in `x-request-id`.
#[derive(Clone, Default)]
pub struct RequestContext {
    pub actor: Option<Actor>,
    pub request_id: String,
    /// The client's address: the peer, or what a trusted proxy names (`http.trusted_proxies`).
    pub client: Option<std::net::IpAddr>,
    /// The client's `User-Agent`, as sent (kept with the sessions it starts).
    pub user_agent: Option<String>,
    /// Subscriptions the connection may still open (a WebSocket's); none: no limit here.
    pub subscription_slots: Option<SubscriptionSlots>,
    /// Applied to every task the request spawns; none: spawned as they are.
    pub task_scope: Option<TaskScope>,
    /// Batching loaders for nested fields, made on first use for this request's caller.
    pub loaders: Arc<std::sync::OnceLock<crate::loaders::Loaders>>,
    /// Advice for the client, answered in `extensions.warnings`.
    pub warnings: Arc<std::sync::Mutex<Vec<String>>>,
    /// What the request costs and the store queries it ran, for `extensions.cost` and metrics.
    pub meter: RequestMeter,
}

/// What one request costs: its complexity, set once it passed validation, and the store queries
/// it ran (counted by the store adapters through the metering crate).
#[derive(Clone, Debug, Default)]
pub struct RequestMeter {
    pub cost: Arc<std::sync::atomic::AtomicU64>,
    pub store_queries: Arc<std::sync::atomic::AtomicU64>,
}

impl RequestMeter {
    pub fn cost(&self) -> u64 {
        self.cost.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn store_queries(&self) -> u64 {
        self.store_queries.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The subscriptions one connection may have open at once.
#[derive(Clone, Debug)]
pub struct SubscriptionSlots {
    pub permits: Arc<tokio::sync::Semaphore>,
    pub most: usize,
}

impl SubscriptionSlots {
    pub fn new(most: usize) -> Self {
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(most)),
            most,
        }
    }
}

impl RequestContext {
    /// Adds a warning to the answer's `extensions.warnings`.
    pub fn warn(&self, warning: String) {
        self.warnings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(warning);
    }

    /// The warnings so far, taken out.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .warnings
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("actor", &self.actor)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

pub(crate) fn services<'a>(ctx: &Context<'a>) -> &'a Services {
    // The schema is always built with Services; its absence is a wiring bug found by every test.
    ctx.data_unchecked::<Services>()
}

/// The authenticated caller, or `UNAUTHENTICATED`.
pub(crate) fn actor<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Actor> {
    ctx.data_opt::<RequestContext>()
        .and_then(|r| r.actor.as_ref())
        .ok_or_else(|| {
            crate::to_gql(Error::Unauthenticated(
                "sign in first: send 'Authorization: Bearer <token>' (get one with the login mutation)"
                    .into(),
            ))
        })
}

/// This request's loaders (created on first use).
pub(crate) fn loaders<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a crate::loaders::Loaders> {
    let actor = actor(ctx)?;
    let req = ctx
        .data_opt::<RequestContext>()
        .ok_or_else(|| async_graphql::Error::new("no request context"))?;
    Ok(req.loaders.get_or_init(|| {
        crate::loaders::Loaders::new(services(ctx).fleet.clone(), actor.clone(), req.task_scope.clone())
    }))
}

/// Signs download links (the server, with its key).
pub trait ExportLinks: Send + Sync + 'static {
    /// A path (`/exports/{id}/download?…`) that downloads the job's file until `expires`.
    fn link(&self, job: &ioto_domain::export::ExportJob, expires: chrono::DateTime<chrono::Utc>) -> String;
}
