//! Bulk jobs and the provisioning API: upload (GraphQL multipart `Upload`), validation report,
//! confirm or cancel, lists with per-row results, and `provisionSims`.

mod mutation;
mod query;
mod subscription;

pub(crate) use self::mutation::{read_bounded, BulkMutation};
pub(crate) use self::query::BulkQuery;
pub(crate) use self::subscription::BulkSubscription;

use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject, Upload, ID};
use chrono::{DateTime, Utc};
use ioto_app::fleet::Submitted;
use ioto_domain::fleet::bulk::{BulkCounts, BulkJob, BulkJobStatus, BulkRow, ValidationReport};
use ioto_domain::ports::BulkRowQuery;
use ioto_domain::Error;
use uuid::Uuid;

use crate::context::{actor, services};
pub use crate::enums::{BulkActionKind, BulkJobStatusKind, BulkRowOutcomeKind};
use crate::error::GqlResult;
use crate::fleet::PageInfo;
use crate::to_gql;

/// Validation errors returned with a report at most; every invalid row is in `rows(outcomes:
/// [INVALID])`.
const REPORT_ERRORS: usize = 1_000;

/// The format of an uploaded bulk file; by default from the file name.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(name = "BulkFileFormat")]
pub enum BulkFileFormat {
    Csv,
    Xlsx,
}

/// Share of the rows to send that have an outcome (a job with nothing to send is done when final).
fn progress(valid: u64, processed: u64, status: BulkJobStatus) -> f64 {
    if valid == 0 {
        return if status.is_final() { 1.0 } else { 0.0 };
    }
    processed as f64 / valid as f64
}

fn count(v: u64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// The counts of a job, flattened into `BulkJob` and `BulkJobProgress` alike.
pub struct BulkCountsFields(BulkCounts, BulkJobStatus);

#[Object(name = "BulkCounts", visible = false)]
impl BulkCountsFields {
    /// Rows in the file.
    async fn total(&self) -> i32 {
        count(self.0.total)
    }
    /// Rows to send to the network.
    async fn valid_records(&self) -> i32 {
        count(self.0.valid)
    }
    async fn invalid_records(&self) -> i32 {
        count(self.0.invalid)
    }
    /// Rows whose SIM was already in the asked state at validation (skipped).
    async fn already_in_state(&self) -> i32 {
        count(self.0.already_in_state)
    }
    /// Rows to send that have an outcome (X of `validRecords`).
    async fn processed(&self) -> i32 {
        count(self.0.processed)
    }
    async fn succeeded(&self) -> i32 {
        count(self.0.succeeded)
    }
    async fn failed(&self) -> i32 {
        count(self.0.failed)
    }
    /// Rows that needed nothing (already in state at validation or when their turn came).
    async fn skipped(&self) -> i32 {
        count(self.0.skipped)
    }
    /// Share of the rows to send that have an outcome, 0 to 1.
    async fn progress(&self) -> f64 {
        progress(self.0.valid, self.0.processed, self.1)
    }
}

/// A bulk job: progress, counts, a plain-language summary and its rows.
pub struct BulkJobObject(pub BulkJob);

#[Object(name = "BulkJob")]
impl BulkJobObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn status(&self) -> BulkJobStatusKind {
        self.0.status.into()
    }
    /// FILE (an upload) or API (`provisionSims`).
    async fn source(&self) -> &str {
        self.0.source.as_str()
    }
    async fn file_name(&self) -> Option<&str> {
        self.0.file_name.as_deref()
    }
    /// The action of the whole file (null when rows name their own).
    async fn action(&self) -> Option<BulkActionKind> {
        self.0.action.map(Into::into)
    }
    #[graphql(flatten)]
    async fn counts(&self) -> BulkCountsFields {
        BulkCountsFields(self.0.counts(), self.0.status)
    }
    /// Seconds left at the pace so far (null until the first outcome, and once done).
    async fn eta_seconds(&self) -> Option<i32> {
        self.0
            .eta(Utc::now())
            .map(|d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX))
    }
    /// One sentence on where the job stands.
    async fn summary(&self) -> String {
        self.0.summary(Utc::now())
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn confirmed_by(&self) -> Option<&str> {
        self.0.confirmed_by.as_deref()
    }
    async fn cancelled_by(&self) -> Option<&str> {
        self.0.cancelled_by.as_deref()
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    /// Why the job failed as a whole, when it did.
    async fn failure(&self) -> Option<&str> {
        self.0.failure.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn confirmed_at(&self) -> Option<DateTime<Utc>> {
        self.0.confirmed_at
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// The last sign of life of the worker running it.
    async fn heartbeat_at(&self) -> Option<DateTime<Utc>> {
        self.0.heartbeat_at
    }

    /// The job's rows in file order, optionally only some outcomes; `after` is the `endCursor`
    /// of the previous page.
    #[graphql(complexity = "crate::limits::page_cost(first, 100, child_complexity)")]
    async fn rows(
        &self,
        ctx: &Context<'_>,
        outcomes: Option<Vec<BulkRowOutcomeKind>>,
        #[graphql(desc = "Page size (default 100, at most 1000).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<BulkJobRowConnection> {
        let limit = ioto_domain::fleet::query::check_page_size(first.unwrap_or(100).into()).gql()?;
        let after = after
            .map(|a| {
                a.parse::<u64>()
                    .map_err(|_| to_gql(Error::invalid("after", "is not a cursor this list returned")))
            })
            .transpose()?;
        let query = BulkRowQuery {
            outcomes: outcomes.unwrap_or_default().into_iter().map(Into::into).collect(),
            after,
            limit: limit + 1,
        };
        let mut rows = services(ctx)
            .fleet
            .bulk_rows(actor(ctx)?, self.0.id, &query)
            .await
            .gql()?;
        let has_next_page = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(BulkJobRowConnection {
            page_info: PageInfo {
                has_next_page,
                has_previous_page: after.is_some(),
                start_cursor: rows.first().map(|r| r.position.to_string()),
                end_cursor: rows.last().map(|r| r.position.to_string()),
            },
            nodes: rows.into_iter().map(Into::into).collect(),
        })
    }
}

/// One row of a bulk job.
#[derive(SimpleObject)]
#[graphql(name = "BulkJobRow")]
pub struct BulkJobRowObject {
    /// Line in the file, counting the header as line 1 (for `provisionSims`: index + 1).
    pub row: i32,
    /// Order of execution, from 0.
    pub position: i32,
    /// As written in the file.
    pub iccid: String,
    pub action: Option<BulkActionKind>,
    pub outcome: BulkRowOutcomeKind,
    pub reason: Option<String>,
    /// The network's reference of the transaction, once confirmed.
    pub network_reference: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<BulkRow> for BulkJobRowObject {
    fn from(r: BulkRow) -> Self {
        Self {
            row: count(r.line),
            position: count(r.position),
            iccid: r.iccid,
            action: r.action.map(Into::into),
            outcome: r.outcome.into(),
            reason: r.reason,
            network_reference: r.reference,
            finished_at: r.finished_at,
        }
    }
}

/// A page of a job's rows, in file order.
#[derive(SimpleObject)]
#[graphql(name = "BulkJobRowConnection")]
pub struct BulkJobRowConnection {
    pub nodes: Vec<BulkJobRowObject>,
    pub page_info: PageInfo,
}

/// A page of bulk jobs, newest first.
#[derive(SimpleObject)]
#[graphql(name = "BulkJobConnection")]
pub struct BulkJobConnection {
    pub nodes: Vec<BulkJobObject>,
    pub page_info: PageInfo,
}

/// A row refused by validation.
#[derive(SimpleObject)]
#[graphql(name = "BulkRowError")]
pub struct BulkRowErrorObject {
    pub row: i32,
    pub iccid: String,
    pub reason: String,
}

/// What validation found, before anything runs.
#[derive(SimpleObject)]
#[graphql(name = "BulkValidationReport", complex)]
pub struct BulkValidationReportObject {
    /// Rows that will be sent once the job is confirmed.
    pub valid_records: i32,
    pub invalid_records: i32,
    /// Rows whose SIM is already in the asked state (skipped).
    pub already_in_state: i32,
    /// The first 1,000 invalid rows; all of them: the job's `rows(outcomes: [INVALID])`.
    pub errors: Vec<BulkRowErrorObject>,
    #[graphql(skip)]
    pub total_errors: usize,
}

#[ComplexObject]
impl BulkValidationReportObject {
    /// Whether `errors` holds only the first 1,000.
    async fn errors_truncated(&self) -> bool {
        self.total_errors > self.errors.len()
    }
}

impl From<ValidationReport> for BulkValidationReportObject {
    fn from(r: ValidationReport) -> Self {
        let total_errors = r.errors.len();
        Self {
            valid_records: count(r.valid),
            invalid_records: count(r.invalid),
            already_in_state: count(r.already_in_state),
            errors: r
                .errors
                .into_iter()
                .take(REPORT_ERRORS)
                .map(|e| BulkRowErrorObject {
                    row: count(e.row),
                    iccid: e.iccid,
                    reason: e.reason,
                })
                .collect(),
            total_errors,
        }
    }
}

/// A job just submitted and what validation found.
#[derive(SimpleObject)]
#[graphql(name = "BulkJobSubmission")]
pub struct BulkJobSubmission {
    pub job: BulkJobObject,
    pub report: BulkValidationReportObject,
}

impl From<Submitted> for BulkJobSubmission {
    fn from(s: Submitted) -> Self {
        Self {
            job: BulkJobObject(s.job),
            report: s.report.into(),
        }
    }
}

#[derive(InputObject)]
pub struct SubmitBulkJobInput {
    /// A CSV or XLSX file with an ICCID column and, unless `action` is given, an ACTION column.
    pub file: Upload,
    /// One action for every row (rows may name their own in an `action` column otherwise).
    pub action: Option<BulkActionKind>,
    /// Default: from the file name (`.csv`, `.xlsx`).
    pub format: Option<BulkFileFormat>,
    /// Platform admins: the tenant the job is for.
    pub tenant_id: Option<ID>,
    pub note: Option<String>,
}

#[derive(InputObject, Default)]
pub struct ProvisionOptions {
    /// Platform admins: the tenant the SIMs belong to.
    pub tenant_id: Option<ID>,
    pub note: Option<String>,
}

/// What `provisionSims` did: the job inside, its validation, and — when it finished within the
/// wait — every SIM's outcome.
#[derive(SimpleObject)]
#[graphql(name = "ProvisionResult")]
pub struct ProvisionResult {
    pub job: BulkJobObject,
    pub report: BulkValidationReportObject,
    /// Whether the job finished before the answer (small requests); otherwise follow it with
    /// `bulkJobProgress(id)`.
    pub completed: bool,
    /// Every row's outcome, when completed.
    pub results: Option<Vec<BulkJobRowObject>>,
}

fn job_id(id: &ID) -> async_graphql::Result<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| to_gql(Error::invalid("id", "is not a bulk job id")))
}

/// Where a bulk job stands, as `bulkJobProgress` streams it.
pub struct BulkJobProgressObject(pub ioto_domain::events::BulkJobProgress);

#[Object(name = "BulkJobProgress")]
impl BulkJobProgressObject {
    async fn job_id(&self) -> ID {
        ID(self.0.job_id.to_string())
    }
    async fn status(&self) -> BulkJobStatusKind {
        self.0.status.into()
    }
    #[graphql(flatten)]
    async fn counts(&self) -> BulkCountsFields {
        BulkCountsFields(self.0.counts, self.0.status)
    }
    async fn eta_seconds(&self) -> Option<i32> {
        self.0.eta_seconds.map(|s| i32::try_from(s).unwrap_or(i32::MAX))
    }
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    /// When this update was made (heartbeats carry the time they were sent).
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}
