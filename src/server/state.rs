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
    pub fleet: ioto_domain::services::FleetService,
    pub exports: ioto_domain::services::ExportService,
    pub export_storage: Arc<dyn ioto_domain::ports::export::ExportStorage>,
    pub export_links: Arc<crate::server::exports::LinkSigner>,
}
