//! Ports: the traits adapters implement. Only the binary picks which adapter backs each.

pub mod advice;
pub mod alerts;
pub mod analytics;
pub mod billing;
pub mod bus;
pub mod directory;
pub mod export;
pub mod fleet;
pub mod forecasts;
pub mod jobs;
pub mod network;
pub mod notifications;
pub mod quota_pools;
pub mod quotas;
pub mod telemetry;
pub mod usage;

pub use advice::AdviceStore;
pub use alerts::AlertStore;
pub use bus::{
    AssignmentHold, BatchConsumer, BusMessage, BusStream, Delivery, Enough, EventBus, StartAt, TopicSpec,
};
pub use directory::{
    ApiKeyStore, CustomerStore, Directory, DirectoryEngine, MfaStore, SessionStore, TenantStore, UserStore,
};
pub use fleet::{
    Activity, AuditLog, Changeset, DeviceStore, Fleet, FleetChanges, FleetNotifier, ImeiChange,
    LabelCatalogue, NoNotifier, ScheduleQuery, ScheduleStore, Sighting, SimImeiChange, SimStore, TableReader,
    Versioned,
};
pub use forecasts::ForecastStore;
pub use jobs::{
    BulkJobQuery, BulkJobStore, BulkRowQuery, BulkStatusChange, ExportEnd, ExportJobQuery, ExportJobStore,
    ExportProgressUpdate, Jobs,
};
pub use notifications::NotificationStore;
pub use quota_pools::QuotaPoolStore;
pub use quotas::QuotaStore;
pub use telemetry::{TelemetryAck, TelemetryMessage, TelemetrySource};
pub use usage::{
    period_start, CdrRecord, CustomerUsagePoint, EngineWork, Granularity, HistoryQuery, ReconciliationQuery,
    ReconciliationRow, SessionKey, SessionUpdate, TelemetryStore, UsageEngine, UsagePoint, UsageReader,
    UsageStore, UsageWriter, SESSION_RETENTION_DAYS, TELEMETRY_RETENTION_DAYS,
};

/// What every engine-backed port can say about itself, for start-up logs and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// `postgres`, `sqlite`, `clickhouse`, `embedded`, `kafka`, `in-process`, …
    pub engine: &'static str,
    /// Where it is (URL with the password redacted, or a file path).
    pub location: String,
}
