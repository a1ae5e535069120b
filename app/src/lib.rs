//! The use cases, one module per feature, written against the domain's ports. Each checks the
//! caller's permissions before touching a port, applies the domain's rules, and hands the port one
//! change. The runtime machinery the use cases need — bounded blocking lanes, the network's fair
//! gate, the provisioning coalescer, the ingest caches — lives here too, beside the use case it
//! serves; the domain below holds only the model and the ports.

pub mod alert;
pub mod analytics;
pub mod billing;
pub mod directory;
pub mod export;
pub mod fleet;
pub mod forecast;
pub mod ingest;
pub mod lanes;
pub mod quota;
pub mod usage;

pub use alert::{AlertEvaluator, AlertService};
pub use analytics::AnalyticsService;
pub use directory::{
    ActiveSession, CreateApiKey, CreateUser, CreatedApiKey, DirectoryService, Enrollee, MfaStatus,
    SessionPolicy, SignIn, TotpSetup,
};
pub use export::ExportService;
pub use fleet::FleetService;
pub use forecast::{ForecastPass, ForecastPorts, ForecastService, PassPhases};
pub use ingest::{
    BatchOutcome, CdrIngest, CdrOutcome, DeadLetter, Owners, PreparedCdrs, PreparedSessions, SessionIngest,
    TelemetryIngest, TelemetryOutcome,
};
pub use quota::{QuotaEvaluator, QuotaService};
pub use usage::UsageService;
