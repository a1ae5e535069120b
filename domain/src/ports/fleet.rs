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
use crate::fleet::device::Device;
use crate::fleet::import::{Table, TableFormat, TakenIdentifiers};
use crate::fleet::labels::LabelSuggestion;
use crate::fleet::query::{DeviceFilter, DeviceSort, Page, SimFilter, SimSort};
use crate::fleet::schedule::{ScheduleStatus, ScheduledTransition};
use crate::fleet::sim::{NewSim, Sim};
use crate::fleet::FleetSettings;
use crate::identifiers::{Iccid, MccMnc};
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
    /// The device's IMEI, when the session reported one (15 digits).
    pub imei: Option<String>,
}

/// What recording sightings found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// SIMs seen for the first time.
    pub first_seen: Vec<Iccid>,
    /// SIMs seen in another device than the last time: (ICCID, the IMEI before, the IMEI now,
    /// when).
    pub imei_changes: Vec<ImeiChange>,
}

/// A SIM seen with another IMEI than the one it was last seen with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImeiChange {
    pub iccid: Iccid,
    pub from: String,
    pub to: String,
    pub at: DateTime<Utc>,
}

/// A SIM's change of device as recorded: its sessions reported `to` after `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimImeiChange {
    pub sim_id: SimId,
    pub at: DateTime<Utc>,
    pub from: String,
    pub to: String,
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
    /// trail changes (this is observation, not an edit). Returns the ICCIDs of the SIMs seen for
    /// the first time (once each, however often a sighting is recorded).
    async fn record_activity(&self, seen: &[Sighting]) -> Result<Activity>;
    /// The changes of device recorded for `sims` of `tenant` at or after `since`, oldest first.
    async fn imei_changes(
        &self,
        tenant: TenantId,
        sims: &[SimId],
        since: DateTime<Utc>,
    ) -> Result<Vec<SimImeiChange>>;
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
    /// The sort keys of these SIMs of the tenant in [`SimSort::QuotaPercent`] order at `at`: per
    /// mille of the quota used in the period holding `at`, as last evaluated (-1 without a
    /// quota). SIMs not found (or outside the scope) are left out; the order is not kept.
    async fn sim_quota_keys(
        &self,
        scope: Scope,
        tenant: TenantId,
        sims: &[SimId],
        at: DateTime<Utc>,
    ) -> Result<Vec<(SimId, i64)>>;

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
    /// When each of these SIMs of the tenant was last made ACTIVE (created or imported ACTIVE,
    /// or changed into it from another state), as the trail records it; SIMs never activated
    /// are left out.
    async fn last_activations(
        &self,
        scope: Scope,
        tenant: TenantId,
        sims: &[crate::SimId],
    ) -> Result<std::collections::HashMap<crate::SimId, chrono::DateTime<chrono::Utc>>>;
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

/// The whole fleet store: every adapter that implements the parts is one. Bulk and export jobs
/// ([`crate::ports::jobs`]) and notifications ([`crate::ports::notifications`]) are ports of their
/// own.
pub trait Fleet: SimStore + DeviceStore + FleetChanges + AuditLog + LabelCatalogue + ScheduleStore {}

impl<T> Fleet for T where T: SimStore + DeviceStore + FleetChanges + AuditLog + LabelCatalogue + ScheduleStore {}

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
