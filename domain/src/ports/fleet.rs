//! The transactional store of the fleet: SIMs, devices, bindings, labels, audit, schedules.
//!
//! Reads take the [`Scope`] like the directory does. Writes of single SIMs and devices come as a
//! [`Changeset`]: the service computes the new rows with the domain rules, and the adapter writes
//! them atomically, each checked against the version it was read at, together with the audit
//! entries. A row changed in between fails the whole changeset with `Conflict`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::directory::Customer;
use crate::fleet::audit::{AuditEntry, AuditQuery, AuditStamp, NewAuditEntry};
use crate::fleet::bulk::{BulkJob, BulkJobStatus, BulkRow, RowOutcome, RowResult, SimStateRow};
use crate::fleet::device::Device;
use crate::fleet::import::{Table, TableFormat, TakenIdentifiers};
use crate::fleet::labels::LabelSuggestion;
use crate::fleet::query::{DeviceFilter, DeviceSort, Page, SimFilter, SimSort};
use crate::fleet::schedule::{ScheduleStatus, ScheduledTransition};
use crate::fleet::sim::{NewSim, Sim};
use crate::fleet::FleetSettings;
use crate::identifiers::{Iccid, MccMnc};
use crate::notify::{
    Delivery, DeliveryAttempt, DeliveryQuery, DueDelivery, Notification, NotificationQuery, WebhookEndpoint,
};
use crate::{CustomerId, DeviceId, Result, Scope, SimId, TenantId};

pub use crate::fleet::Versioned;

/// Everything one coordinated operation writes, in order.
#[derive(Debug, Clone, Default)]
pub struct Changeset {
    pub sims: Vec<Versioned<Sim>>,
    pub devices: Vec<Versioned<Device>>,
    pub audit: Vec<NewAuditEntry>,
    pub schedules: Vec<ScheduledTransition>,
}

/// A SIM seen on a network at a time (a counted session update or CDR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub iccid: Iccid,
    pub network: MccMnc,
    pub at: DateTime<Utc>,
}

/// Which pending schedules a list shows.
#[derive(Debug, Clone, Default)]
pub struct ScheduleQuery {
    pub sim: Option<SimId>,
    pub statuses: Vec<ScheduleStatus>,
    pub limit: u64,
}

/// SIMs: reads, bulk creation, assignment, and sightings from the usage pipeline.
#[async_trait]
pub trait SimStore: Send + Sync + 'static {
    async fn sim(&self, scope: Scope, iccid: &Iccid) -> Result<Option<Sim>>;
    async fn sims_by_id(&self, scope: Scope, ids: &[SimId]) -> Result<Vec<Sim>>;
    /// SIMs by ICCID (the ingest worker resolves owners of a batch in one query).
    async fn sims_by_iccid(&self, scope: Scope, iccids: &[Iccid]) -> Result<Vec<Sim>>;
    /// Records where and when SIMs were last seen on the network (from the usage pipeline). A SIM
    /// keeps its latest sighting: older ones change nothing. Neither the version nor the audit
    /// trail changes (this is observation, not an edit).
    async fn record_activity(&self, seen: &[Sighting]) -> Result<()>;
    /// SIMs bound to any of `devices`.
    async fn sims_in_devices(&self, scope: Scope, devices: &[DeviceId]) -> Result<Vec<Sim>>;
    async fn list_sims(
        &self,
        scope: Scope,
        tenant: TenantId,
        filter: &SimFilter,
        page: &Page<SimSort>,
    ) -> Result<Vec<Sim>>;
    async fn count_sims(&self, scope: Scope, tenant: TenantId, filter: &SimFilter) -> Result<u64>;

    /// Creates SIMs in bulk (set-based, not row by row), each with an audit entry of `action`
    /// (`CREATED` or `IMPORTED`) stamped with `stamp` and `import_id`. All or nothing. Returns
    /// the new ids in input order. The SIMs are borrowed: an import keeps its rows to explain a
    /// conflict row by row.
    async fn insert_sims(
        &self,
        scope: Scope,
        sims: &[&NewSim],
        action: crate::fleet::AuditAction,
        stamp: &AuditStamp,
        import_id: Option<Uuid>,
    ) -> Result<Vec<SimId>>;

    /// Which of these identifiers are registered already, in any tenant (they are unique across
    /// the platform). Only the values are returned, never the owner.
    async fn taken_identifiers(
        &self,
        iccids: &[String],
        imsis: &[String],
        msisdns: &[String],
    ) -> Result<TakenIdentifiers>;

    /// Moves every SIM matching `filter` to `customer` (or back to the tenant), unbinding nothing;
    /// writes one `ASSIGNED` audit entry per SIM that changed. Returns how many changed.
    async fn assign_sims(
        &self,
        scope: Scope,
        tenant: TenantId,
        filter: &SimFilter,
        customer: Option<CustomerId>,
        stamp: &AuditStamp,
    ) -> Result<u64>;
}

/// Devices: reads and assignment.
#[async_trait]
pub trait DeviceStore: Send + Sync + 'static {
    async fn device(&self, scope: Scope, id: DeviceId) -> Result<Option<Device>>;
    async fn devices_by_id(&self, scope: Scope, ids: &[DeviceId]) -> Result<Vec<Device>>;
    async fn list_devices(
        &self,
        scope: Scope,
        tenant: TenantId,
        filter: &DeviceFilter,
        page: &Page<DeviceSort>,
    ) -> Result<Vec<Device>>;
    async fn count_devices(&self, scope: Scope, tenant: TenantId, filter: &DeviceFilter) -> Result<u64>;
    /// Like [`SimStore::assign_sims`], for devices.
    async fn assign_devices(
        &self,
        scope: Scope,
        tenant: TenantId,
        filter: &DeviceFilter,
        customer: Option<CustomerId>,
        stamp: &AuditStamp,
    ) -> Result<u64>;
}

/// Coordinated writes (SIMs, devices, audit and schedules in one changeset), the tenant's fleet
/// settings, and what every fleet read shares.
#[async_trait]
pub trait FleetChanges: Send + Sync + 'static {
    async fn settings(&self, scope: Scope, tenant: TenantId) -> Result<FleetSettings>;
    async fn set_settings(&self, scope: Scope, tenant: TenantId, settings: FleetSettings) -> Result<()>;

    /// Customers by id, for nested fields (one query for a whole page).
    async fn customers_by_id(&self, scope: Scope, ids: &[CustomerId]) -> Result<Vec<Customer>>;

    /// Writes a changeset atomically (see the module doc).
    async fn apply(&self, scope: Scope, changes: Changeset) -> Result<()>;

    /// Counts SQL statements sent so far (for tests and `/metrics`).
    fn statements(&self) -> u64;
}

/// The audit trail (written with changesets, read here).
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    async fn audit(&self, scope: Scope, tenant: TenantId, query: &AuditQuery) -> Result<Vec<AuditEntry>>;
}

/// The tenant's label catalogue (suggested keys and values).
#[async_trait]
pub trait LabelCatalogue: Send + Sync + 'static {
    async fn label_catalogue(&self, scope: Scope, tenant: TenantId) -> Result<Vec<LabelSuggestion>>;
    async fn put_label_suggestion(
        &self,
        scope: Scope,
        tenant: TenantId,
        suggestion: LabelSuggestion,
    ) -> Result<()>;
    /// `NotFound` when the key is not in the catalogue.
    async fn remove_label_suggestion(&self, scope: Scope, tenant: TenantId, key: &str) -> Result<()>;
}

/// Scheduled state transitions: listed by tenants, claimed and finished by the scheduler.
#[async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
    async fn schedules(
        &self,
        scope: Scope,
        tenant: TenantId,
        query: &ScheduleQuery,
    ) -> Result<Vec<ScheduledTransition>>;
    async fn schedule(&self, scope: Scope, id: Uuid) -> Result<Option<ScheduledTransition>>;
    /// Claims up to `limit` pending schedules due at `now` for this worker, across tenants, so
    /// that two workers never take the same one. A claim not finished within `lease` is taken
    /// again (its worker died).
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u64,
    ) -> Result<Vec<ScheduledTransition>>;
    /// Records the end of a claimed schedule (applied or failed, with why).
    async fn finish_schedule(&self, id: Uuid, status: ScheduleStatus, outcome: Option<String>) -> Result<()>;
}

/// Which of a tenant's bulk jobs a list shows, newest first.
#[derive(Debug, Clone, Default)]
pub struct BulkJobQuery {
    pub statuses: Vec<BulkJobStatus>,
    /// Jobs created before this one (cursor paging: created_at, id).
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u64,
}

/// Which rows of a job a list shows, in file order.
#[derive(Debug, Clone, Default)]
pub struct BulkRowQuery {
    pub outcomes: Vec<RowOutcome>,
    /// Rows after this position (cursor paging).
    pub after: Option<u64>,
    pub limit: u64,
}

/// How a job's status changes: from one of `from` to `to`, stamped.
#[derive(Debug, Clone)]
pub struct BulkStatusChange {
    pub from: Vec<BulkJobStatus>,
    pub to: BulkJobStatus,
    pub at: DateTime<Utc>,
    /// Who (confirming or cancelling), recorded with the change.
    pub by: Option<String>,
    /// Entering `PROCESSING`: claim the job for this worker until then, in the same
    /// transaction (the provisioning API runs small jobs itself, before any worker can take them).
    /// Such a job's caller waits for every outcome: its end is not notified.
    pub claim: Option<(String, DateTime<Utc>)>,
}

/// Bulk jobs and their rows. Jobs are claimed by workers like scheduled transitions: a claim
/// holds a lease that the worker renews with every write, and a lapsed lease lets another worker
/// take the job over at its first row without an outcome.
#[async_trait]
pub trait BulkJobStore: Send + Sync + 'static {
    /// The tenant's SIMs among these ICCIDs, as much as validation needs (never other tenants').
    async fn sim_states(&self, scope: Scope, iccids: &[Iccid]) -> Result<Vec<SimStateRow>>;
    /// Stores a new job with all its rows, atomically.
    async fn create_bulk_job(&self, scope: Scope, job: &BulkJob, rows: &[BulkRow]) -> Result<()>;
    async fn bulk_job(&self, scope: Scope, id: Uuid) -> Result<Option<BulkJob>>;
    async fn bulk_jobs(&self, scope: Scope, tenant: TenantId, query: &BulkJobQuery) -> Result<Vec<BulkJob>>;
    async fn bulk_rows(&self, scope: Scope, job: Uuid, query: &BulkRowQuery) -> Result<Vec<BulkRow>>;
    /// Moves a job's status, atomically checking where it stands: `CONFLICT` naming the current
    /// status when it is not one of `change.from`. Entering `CANCELLED` releases any claim.
    async fn change_bulk_status(&self, scope: Scope, id: Uuid, change: &BulkStatusChange) -> Result<BulkJob>;
    /// Claims up to `limit` jobs in `PROCESSING` whose lease is free or lapsed (oldest confirmed
    /// first, `exclude` left out) for `worker` until `until`.
    async fn claim_bulk_jobs(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
        exclude: &[Uuid],
    ) -> Result<Vec<BulkJob>>;
    /// The next rows to send of a job (`PENDING` or `SENT`) after position `after`, in file
    /// order.
    async fn open_bulk_rows(&self, job: Uuid, after: Option<u64>, limit: u64) -> Result<Vec<BulkRow>>;
    /// Marks the open rows of a range of positions `SENT` before they go to the network (a
    /// chunk of open rows is contiguous among the open rows: rows in between have outcomes and
    /// keep them); `CONFLICT` when the worker no longer holds the job (lease lost, job
    /// cancelled). The lease is renewed by written results.
    async fn mark_bulk_rows_sent(
        &self,
        job: Uuid,
        worker: &str,
        positions: std::ops::RangeInclusive<u64>,
    ) -> Result<()>;
    /// Records row results with their SIM changes and audit entries in one transaction, updates
    /// the job's counters and heartbeat and renews the lease. A SIM changed since it was read
    /// fails its row (nothing of it is written) instead of the batch. `CONFLICT` when the worker
    /// no longer holds the job (nothing is written). Returns the job as it is now and the
    /// positions of rows failed that way.
    async fn record_bulk_results(
        &self,
        job: Uuid,
        worker: &str,
        results: Vec<RowResult>,
        until: DateTime<Utc>,
    ) -> Result<(BulkJob, Vec<u64>)>;
    /// Has a job's end notified after all (a provisioning caller stopped waiting); writes the
    /// notification at once when the job has ended already.
    async fn notify_bulk_job(&self, scope: Scope, id: Uuid) -> Result<BulkJob>;
    /// Ends a job held by `worker` with `status` and releases it.
    async fn finish_bulk_job(
        &self,
        job: Uuid,
        worker: &str,
        status: BulkJobStatus,
        failure: Option<String>,
    ) -> Result<BulkJob>;
}

/// Notifications, webhook endpoints and deliveries. A notification is written by the store in
/// the transaction of the change it tells of (a bulk job reaching its final status); workers fan
/// it out into deliveries and send them, claimed with a lease like bulk jobs.
#[async_trait]
pub trait NotificationStore: Send + Sync + 'static {
    /// The caller's notifications (and the tenant-wide ones when asked), newest first.
    async fn notifications(&self, scope: Scope, query: &NotificationQuery) -> Result<Vec<Notification>>;
    /// How many of those are unread.
    async fn unread_notifications(&self, scope: Scope, query: &NotificationQuery) -> Result<u64>;
    /// Marks the listed notifications (all of the query's when `ids` is `None`) read at `at`;
    /// returns how many changed.
    async fn mark_notifications_read(
        &self,
        scope: Scope,
        query: &NotificationQuery,
        ids: Option<&[Uuid]>,
        at: DateTime<Utc>,
    ) -> Result<u64>;
    /// The notification about `subject` (a bulk job), if one was written.
    async fn notification_about(&self, scope: Scope, subject: Uuid) -> Result<Option<Notification>>;

    async fn webhook_endpoints(&self, scope: Scope, tenant: TenantId) -> Result<Vec<WebhookEndpoint>>;
    async fn create_webhook_endpoint(
        &self,
        scope: Scope,
        endpoint: &WebhookEndpoint,
        secret: &str,
    ) -> Result<()>;
    /// Enables or disables an endpoint (disabled ones get no new deliveries; pending ones stop).
    async fn set_webhook_endpoint_enabled(
        &self,
        scope: Scope,
        id: Uuid,
        enabled: bool,
    ) -> Result<WebhookEndpoint>;
    /// Removes an endpoint with its deliveries.
    async fn delete_webhook_endpoint(&self, scope: Scope, id: Uuid) -> Result<()>;
    async fn deliveries(&self, scope: Scope, query: &DeliveryQuery) -> Result<Vec<Delivery>>;

    /// Fans up to `limit` notifications not yet dispatched out into deliveries (one per enabled
    /// endpoint of their tenant; an e-mail to the recipient when `email`), atomically. Returns
    /// how many were dispatched.
    async fn dispatch_notifications(&self, email: bool, now: DateTime<Utc>, limit: u64) -> Result<u64>;
    /// Claims up to `limit` pending deliveries due at `now` for `worker` until `until`.
    async fn claim_deliveries(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<DueDelivery>>;
    /// Records an attempt of a delivery held by `worker` (ignored when the claim was lost).
    async fn record_delivery(&self, id: Uuid, worker: &str, attempt: &DeliveryAttempt) -> Result<()>;
}

/// The whole fleet store: every adapter that implements the parts is one.
pub trait Fleet:
    SimStore
    + DeviceStore
    + FleetChanges
    + AuditLog
    + LabelCatalogue
    + ScheduleStore
    + BulkJobStore
    + NotificationStore
    + crate::ports::export::ExportJobStore
{
}

impl<T> Fleet for T where
    T: SimStore
        + DeviceStore
        + FleetChanges
        + AuditLog
        + LabelCatalogue
        + ScheduleStore
        + BulkJobStore
        + NotificationStore
        + crate::ports::export::ExportJobStore
{
}

/// Reads an uploaded file into rows of text cells.
pub trait TableReader: Send + Sync + 'static {
    fn read(&self, bytes: &[u8], format: TableFormat) -> Result<Table>;
}

/// Where the fleet service announces committed changes (the realtime bus in the server).
pub trait FleetNotifier: Send + Sync + 'static {
    /// Called after the change committed; must not fail the operation.
    fn publish(&self, event: crate::events::FleetEvent);
}

/// A notifier that drops events (CLI tools, benchmarks).
pub struct NoNotifier;

impl FleetNotifier for NoNotifier {
    fn publish(&self, _event: crate::events::FleetEvent) {}
}
