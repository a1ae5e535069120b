//! Jobs the platform runs on its own: bulk jobs (their rows, applied to SIMs with their audit
//! entries as they are answered) and export jobs. Both are claimed by workers under a lease that
//! every write renews, so several instances share them and a dead instance's job is taken over.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::export::{ExportJob, ExportStatus};
use crate::fleet::bulk::{BulkJob, BulkJobStatus, BulkRow, RowOutcome, RowResult, SimStateRow};
use crate::identifiers::Iccid;
use crate::{Result, Scope, TenantId, UserId};

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
/// take the job over at its first row without an outcome (until one does, the job is still its
/// first worker's: a worker that was only slow goes on).
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
    /// status when it is not one of `change.from`. Entering `CANCELLED` stops the job: its
    /// holder sends no more rows (`mark_bulk_rows_sent` answers `CONFLICT`) but still records
    /// the rows in flight and ends it (the job stays `CANCELLED`), and no worker claims it.
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
    /// no longer holds the job (nothing is written). A row that has an outcome already keeps it
    /// (a batch recorded twice counts once). Returns the job as it is now and the positions of
    /// rows failed that way.
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

/// Which export jobs a list shows: a tenant's, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportJobQuery {
    pub tenant: Option<TenantId>,
    /// Only the jobs this user requested (everyone but administrators sees only their own).
    pub requested_by: Option<UserId>,
    /// Only the jobs requested by tokens that name no local user, with this subject.
    pub requested_by_subject: Option<String>,
    pub statuses: Vec<ExportStatus>,
    /// Leaves out the jobs platform admins requested (they are the platform's to see).
    pub hide_platform: bool,
    /// Older than this `(created_at, id)`: the last row of the previous page.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u64,
}

/// A running job's progress, written by the worker holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportProgressUpdate {
    pub rows: u64,
    pub bytes: u64,
    pub expected_rows: Option<u64>,
    pub at: DateTime<Utc>,
    /// The lease runs until then.
    pub until: DateTime<Utc>,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportEnd {
    pub status: ExportStatus,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: Option<String>,
    pub failure: Option<String>,
    pub at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Export jobs, claimed like bulk jobs: `FOR UPDATE SKIP LOCKED` and a lease that every
/// progress write renews, so several instances share them and a dead instance's job restarts.
#[async_trait]
pub trait ExportJobStore: Send + Sync + 'static {
    async fn create_export_job(&self, scope: Scope, job: &ExportJob) -> Result<()>;
    async fn export_job(&self, scope: Scope, id: Uuid) -> Result<Option<ExportJob>>;
    async fn export_jobs(&self, scope: Scope, query: &ExportJobQuery) -> Result<Vec<ExportJob>>;
    /// Cancels a queued or running job; `Conflict` when it has ended.
    async fn cancel_export_job(&self, scope: Scope, id: Uuid, at: DateTime<Utc>) -> Result<ExportJob>;
    /// Claims up to `limit` jobs that are queued, or running with a lapsed lease (their file
    /// restarts from the first row), oldest first.
    async fn claim_export_jobs(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<ExportJob>>;
    /// Writes progress and renews the lease. `false` when the job is no longer this worker's to
    /// run (cancelled, or its lease lapsed and another took it): the worker stops.
    async fn export_progress(&self, id: Uuid, worker: &str, update: &ExportProgressUpdate) -> Result<bool>;
    /// Ends a job held by `worker`; `None` when it no longer held it (nothing is changed).
    async fn finish_export_job(&self, id: Uuid, worker: &str, end: &ExportEnd) -> Result<Option<ExportJob>>;
    /// Completed jobs whose file expired before `now` (oldest first).
    async fn expired_exports(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<ExportJob>>;
    /// Marks a completed job `EXPIRED` (its file was deleted).
    async fn expire_export_job(&self, id: Uuid) -> Result<()>;
}

/// Every job store: an adapter that implements both is one.
pub trait Jobs: BulkJobStore + ExportJobStore {}

impl<T> Jobs for T where T: BulkJobStore + ExportJobStore {}
