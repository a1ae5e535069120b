//! Ports of exports: the durable jobs (transactional store), where finished files are kept
//! (storage), and the rows a job writes (sources).

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use uuid::Uuid;

use crate::export::{ExportBatch, ExportColumn, ExportJob, ExportStatus};
use crate::{Result, Scope, TenantId, UserId};

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

/// Where finished export files are kept: the data directory, or an object store.
#[async_trait]
pub trait ExportStorage: Send + Sync + 'static {
    /// Stores the finished file at `local` under `key`, whole or not at all (a reader never sees
    /// a part of it).
    async fn put(&self, key: &str, local: &Path) -> Result<()>;
    /// The file's bytes, streamed; `NotFound` when there is none.
    async fn get(&self, key: &str) -> Result<BoxStream<'static, std::io::Result<Vec<u8>>>>;
    /// Removes the file; nothing when it is gone already.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Where files go, for start-up logs (`file:///…`, `s3://bucket/prefix`).
    fn location(&self) -> String;
}

/// The rows of one export, read in batches in the requester's scope.
#[async_trait]
pub trait ExportSource: Send {
    fn columns(&self) -> &[ExportColumn];
    /// Rows the export will hold, when known beforehand (for progress and ETA).
    async fn expected_rows(&mut self) -> Result<Option<u64>>;
    /// The next batch; `None` once every row was read.
    async fn next_batch(&mut self) -> Result<Option<ExportBatch>>;
}
