//! What every HTTP handler shares.

use std::sync::Arc;

use ioto_schema::IotoSchema;

use crate::engines::Engines;
use crate::server::auth::Jwt;
use crate::server::metrics::Metrics;
use crate::server::session::SessionCheck;

#[derive(Clone)]
pub struct AppState {
    pub schema: IotoSchema,
    pub jwt: Arc<Jwt>,
    pub engines: Engines,
    pub metrics: Arc<Metrics>,
    pub pipeline: crate::server::pipeline::Pipeline,
    pub sessions: Arc<SessionCheck>,
    pub playground: bool,
    pub console: bool,
    /// `http.web_dir`: the browser pages read from here instead of the binary.
    pub web_dir: Option<std::path::PathBuf>,
    pub fleet: ioto_app::FleetService,
    pub exports: ioto_app::ExportService,
    pub export_storage: Arc<dyn ioto_domain::ports::export::ExportStorage>,
    pub export_links: Arc<crate::server::exports::LinkSigner>,
    /// The same limiter the GraphQL schema charges: uploads are charged to it too.
    pub rate_limiter: Arc<ioto_resolvers::rate_limit::RateLimiter>,
    /// `http.trusted_proxies`: peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<[crate::server::caller::Cidr]>,
    /// The largest upload any route takes (what an upload without a length is charged as).
    pub upload_max_bytes: u64,
    pub ws: WsBounds,
}

/// What one WebSocket may do.
#[derive(Debug, Clone, Copy)]
pub struct WsBounds {
    /// How long it may stay open without a valid `connection_init`.
    pub init_timeout: std::time::Duration,
    /// Subscriptions open at once.
    pub max_subscriptions: usize,
    /// The largest message (and frame) read.
    pub max_message_bytes: usize,
}
