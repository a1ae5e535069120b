//! Use cases, written against the ports. Each checks the caller's permissions before touching a port.

pub mod analytics;
pub mod billing;
pub mod directory;
pub mod export;
pub mod fleet;
pub mod ingest;
pub mod stored_sessions;
pub mod throttle;
pub mod usage;

pub use analytics::AnalyticsService;
pub use directory::{CreateUser, DirectoryService};
pub use export::ExportService;
pub use fleet::FleetService;
pub use ingest::{
    BatchOutcome, CdrIngest, CdrOutcome, DeadLetter, Owners, PreparedCdrs, PreparedSessions, SessionIngest,
    TelemetryIngest, TelemetryOutcome,
};
pub use usage::UsageService;
