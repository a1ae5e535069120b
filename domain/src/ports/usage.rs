//! The usage store: counted data sessions, CDRs, the cubes built from them and device readings.
//!
//! Split by role: the ingest worker writes through [`UsageWriter`], the API reads through
//! [`UsageReader`], device readings go through [`TelemetryStore`], and start-up, health and
//! retention use [`UsageEngine`]. An adapter implements all four, which makes it a [`UsageStore`].

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ports::EngineInfo;
pub use crate::usage::session::{period_start, Granularity, SessionKey, SessionUpdate};
use crate::usage::TelemetryReading;
use crate::{CustomerId, DeviceId, Iccid, MccMnc, Result, TenantId};

/// Which session updates of a SIM to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only this network.
    pub mcc_mnc: Option<MccMnc>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// After this `(event_time, session_id)`: the last row of the previous page.
    pub before: Option<(DateTime<Utc>, String)>,
    pub limit: u64,
}

/// Bytes of one period on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsagePoint {
    /// Start of the period (UTC).
    pub period: DateTime<Utc>,
    pub mcc_mnc: MccMnc,
    /// The sub-customer the SIM belonged to when the bytes were counted (a SIM moved between
    /// sub-customers has a point per owner).
    pub customer_id: Option<CustomerId>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// A CDR as stored for billing, with the SIM's owner when it was counted. Its bytes count on the
/// day (UTC) its charging period starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CdrRecord {
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub cdr_id: String,
    pub iccid: Iccid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub mcc_mnc: MccMnc,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub rating_group: u32,
}

/// Which SIM-days to compare between the session view and the CDR view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconciliationQuery {
    /// First and last day, inclusive.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub iccid: Option<Iccid>,
    pub customer: Option<CustomerId>,
    /// Only SIM-days whose totals differ.
    pub only_differences: bool,
    /// After this `(day, iccid)`: the last row of the previous page (rows are ordered by day,
    /// then ICCID).
    pub after: Option<(NaiveDate, Iccid)>,
    pub limit: u64,
}

/// One SIM on one day: bytes counted from sessions and bytes billed by CDRs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationRow {
    pub iccid: Iccid,
    pub day: NaiveDate,
    pub session_in: u64,
    pub session_out: u64,
    pub cdr_in: u64,
    pub cdr_out: u64,
}

/// Bytes of one sub-customer (or of SIMs assigned to none) in one period on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerUsagePoint {
    pub period: DateTime<Utc>,
    pub customer_id: Option<CustomerId>,
    pub mcc_mnc: MccMnc,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// How long session updates and live sessions are kept.
pub const SESSION_RETENTION_DAYS: i64 = 7;

/// The usage engine's own work since the server started, over every database on it: what its
/// inserts and its background merges cost. Benches take the difference of two readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineWork {
    /// INSERT statements.
    pub inserts: u64,
    /// Parts written by inserts (one per table and partition an insert reaches, views' tables
    /// included).
    pub parts_written: u64,
    /// Rows in those parts.
    pub rows_written: u64,
    /// Rows read and rewritten by background merges.
    pub merged_rows: u64,
    /// Time merges ran, summed over the merge threads.
    pub merge_time: std::time::Duration,
    /// CPU time (user and system) of the threads answering statements, inserts included.
    pub statement_cpu: std::time::Duration,
}

impl EngineWork {
    /// The work done between `before` and this reading.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            inserts: self.inserts.saturating_sub(before.inserts),
            parts_written: self.parts_written.saturating_sub(before.parts_written),
            rows_written: self.rows_written.saturating_sub(before.rows_written),
            merged_rows: self.merged_rows.saturating_sub(before.merged_rows),
            merge_time: self.merge_time.saturating_sub(before.merge_time),
            statement_cpu: self.statement_cpu.saturating_sub(before.statement_cpu),
        }
    }
}

/// Start-up, health and retention of the usage engine.
#[async_trait]
pub trait UsageEngine: Send + Sync + 'static {
    fn info(&self) -> EngineInfo;
    /// The engine's own work counters (`None` where it keeps none, as the embedded store).
    async fn work(&self) -> Result<Option<EngineWork>> {
        Ok(None)
    }
    async fn ping(&self) -> Result<()>;
    /// The engine's version string (`18.16.1`, `24.8.4.13`, or the embedded adapter's own).
    async fn server_version(&self) -> Result<String>;
    /// Applies pending schema migrations; returns the versions applied now.
    async fn migrate(&self) -> Result<Vec<u32>>;
    /// Writes what the engine holds in memory on its way to the usage views now, for a caller
    /// that reads back what it has just written in every view at once (a benchmark's merge, a
    /// test). Without it the views show a write within about a second (ClickHouse's cubes take
    /// their rows through buffers); the embedded store holds nothing back.
    async fn flush_pending(&self) -> Result<()> {
        Ok(())
    }
    /// Drops session updates, live sessions and readings older than their retention where the
    /// engine does not expire them itself; returns what was dropped (partitions or rows), for the log.
    async fn drop_expired(&self, now: DateTime<Utc>) -> Result<Vec<String>>;
}

/// What the ingest worker writes: counted session updates and CDRs, and the state it recovers
/// its progress from.
#[async_trait]
pub trait UsageWriter: Send + Sync + 'static {
    /// Writes counted session updates (one insert; the cubes and live state follow from it).
    async fn write_session_updates(&self, updates: &[SessionUpdate]) -> Result<()>;
    /// The latest written state of each of these sessions; sessions never written are absent.
    /// The ingest worker recovers its progress from this after a restart.
    async fn session_states(&self, keys: &[SessionKey]) -> Result<Vec<SessionUpdate>>;
    /// Calls `visit` with the SIM and session id of every session whose state is stored (a
    /// session may come more than once). The ingest worker builds its filter of stored sessions
    /// from this, so it asks [`Self::session_states`] only for sessions that may be stored.
    async fn visit_stored_sessions(
        &self,
        visit: &mut (dyn for<'s> FnMut(&'s str, &'s str) + Send),
    ) -> Result<()>;
    /// Which of these CDR ids are stored already.
    async fn known_cdrs(&self, ids: &[String]) -> Result<Vec<String>>;
    /// Stores CDRs (the billing cubes follow from them). Callers leave out known ids.
    async fn write_cdrs(&self, cdrs: &[CdrRecord]) -> Result<()>;
}

/// What the API reads: one tenant's sessions, usage cubes and reconciliation.
#[async_trait]
pub trait UsageReader: Send + Sync + 'static {
    /// Makes what was counted so far visible to the reads that follow (a store that shows
    /// writes late writes its buffers now). Rules and quotas evaluated right after a count call
    /// it first.
    async fn settle(&self) -> Result<()> {
        Ok(())
    }
    /// The SIM's most recent session within the retention (7 days), as last updated.
    async fn live_session(&self, tenant: TenantId, iccid: &Iccid) -> Result<Option<SessionUpdate>>;
    /// The SIM's counted session updates in `[from, to)` (within the retention), newest first,
    /// optionally on one network, after `before` (the `(event_time, session_id)` of the last row
    /// of the previous page), at most `limit`.
    async fn session_history(
        &self,
        tenant: TenantId,
        iccid: &Iccid,
        query: &HistoryQuery,
    ) -> Result<Vec<SessionUpdate>>;
    /// Usage of one SIM in `[from, to)`, per period and network, oldest first.
    async fn sim_usage(
        &self,
        tenant: TenantId,
        iccid: &Iccid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<UsagePoint>>;
    /// Session bytes against CDR bytes per SIM and day, ordered by day then ICCID.
    async fn reconciliation(
        &self,
        tenant: TenantId,
        query: &ReconciliationQuery,
    ) -> Result<Vec<ReconciliationRow>>;
    /// Usage per sub-customer (`customer` alone when given), period and network in `[from, to)`,
    /// oldest first (session view).
    async fn customer_usage(
        &self,
        tenant: TenantId,
        customer: Option<CustomerId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<CustomerUsagePoint>>;
    /// Sums one cube per time bucket and group (the analytics query layer plans the query).
    async fn cube_rows(
        &self,
        tenant: TenantId,
        query: &crate::analytics::CubeQuery,
    ) -> Result<Vec<crate::analytics::CubeRow>>;
    /// Distinct SIMs (of one sub-customer when given) with a session that is not terminated and
    /// was updated at or after `since`.
    async fn online_sims(
        &self,
        tenant: TenantId,
        customer: Option<CustomerId>,
        since: DateTime<Utc>,
    ) -> Result<u64>;
}

/// Device readings from the telemetry source.
#[async_trait]
pub trait TelemetryStore: Send + Sync + 'static {
    /// Stores device readings; a reading repeated for the same device and time is kept once.
    async fn write_telemetry(&self, readings: &[(TenantId, TelemetryReading)]) -> Result<()>;
    /// A device's readings in `[from, to)`, oldest first, at most `limit` (the newest `limit`
    /// when there are more).
    async fn device_telemetry(
        &self,
        tenant: TenantId,
        device: DeviceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<TelemetryReading>>;
}

/// A whole usage adapter: the binary wires one and hands each part the role it needs
/// (`Arc<dyn UsageStore>` coerces to `Arc<dyn UsageReader>` and the others).
pub trait UsageStore:
    UsageEngine + UsageWriter + UsageReader + TelemetryStore + crate::ports::billing::RatingEngine
{
}

impl<T: UsageEngine + UsageWriter + UsageReader + TelemetryStore + crate::ports::billing::RatingEngine>
    UsageStore for T
{
}

/// How long device readings are kept.
pub const TELEMETRY_RETENTION_DAYS: i64 = 90;
