//! Export jobs: requested through the API, run by a worker in the requester's name, downloaded
//! through a short-lived signed link.
//!
//! A request is checked when it is made (the kind's permission, its filter, a first read in the
//! requester's scope), so a job that is queued can run. The worker reads the rows with the
//! requester's permissions as they were when asked ([`ExportJob::actor`]), in batches, and writes
//! them as the job's format says (the `ioto-exports` crate).

mod sources;

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use uuid::Uuid;

use crate::analytics::AnalyticsQuery;
use crate::billing::BillingService;
use crate::{AnalyticsService, FleetService, UsageService};
use ioto_domain::events::{ExportJobProgress, FleetEvent};
use ioto_domain::export::{ExportFormat, ExportJob, ExportKind, ExportStatus};
use ioto_domain::fleet::audit::AuditQuery;
use ioto_domain::fleet::query::{DeviceFilter, SimFilter};
use ioto_domain::ports::export::ExportSource;
use ioto_domain::ports::fleet::FleetNotifier;
use ioto_domain::ports::jobs::{ExportEnd, ExportJobQuery, ExportJobStore, ExportProgressUpdate};
use ioto_domain::ports::{HistoryQuery, ReconciliationQuery};
use ioto_domain::{Actor, Error, Iccid, Result, Role, Scope, TenantId};

pub use sources::BATCH_ROWS;

/// Exports one requester may have queued or running at once.
pub const MAX_OPEN_EXPORTS: usize = 5;

/// What to export, with the filter of the kind's matching query.
#[derive(Debug, Clone)]
pub enum ExportRequest {
    SimInventory {
        tenant: Option<TenantId>,
        filter: SimFilter,
    },
    Devices {
        tenant: Option<TenantId>,
        filter: DeviceFilter,
    },
    /// `query.limit` and `query.before` are the source's own (it pages through every entry).
    AuditLog {
        tenant: Option<TenantId>,
        query: AuditQuery,
    },
    /// `query.limit` and `query.before` are the source's own.
    SessionHistory { iccid: Iccid, query: HistoryQuery },
    /// `query.limit` and `query.after` are the source's own.
    UsageReconciliation {
        tenant: Option<TenantId>,
        query: ReconciliationQuery,
    },
    /// The retail rating of the billing period holding `day`, per sub-customer.
    CustomerBilling {
        tenant: Option<TenantId>,
        day: NaiveDate,
    },
    /// The stored rating rows (SIM × day × network) of the period holding `day`.
    RatedUsage {
        tenant: Option<TenantId>,
        kind: ioto_domain::billing::rate_card::RateCardKind,
        day: NaiveDate,
    },
    /// The tenant's invoice lines of the period holding `day` (platform administrators).
    InvoiceLines { tenant: TenantId, day: NaiveDate },
    UsageAnalytics {
        tenant: Option<TenantId>,
        query: AnalyticsQuery,
    },
}

impl ExportRequest {
    pub fn kind(&self) -> ExportKind {
        match self {
            Self::SimInventory { .. } => ExportKind::SimInventory,
            Self::Devices { .. } => ExportKind::Devices,
            Self::AuditLog { .. } => ExportKind::AuditLog,
            Self::SessionHistory { .. } => ExportKind::SessionHistory,
            Self::CustomerBilling { .. } => ExportKind::CustomerBilling,
            Self::RatedUsage { .. } => ExportKind::RatedUsage,
            Self::InvoiceLines { .. } => ExportKind::InvoiceLines,
            Self::UsageAnalytics { .. } => ExportKind::UsageAnalytics,
            Self::UsageReconciliation { .. } => ExportKind::UsageReconciliation,
        }
    }

    /// The tenant whose data it reads (the requester's unless a platform admin named one).
    fn tenant(&self, actor: &Actor) -> Result<TenantId> {
        let named = match self {
            Self::SimInventory { tenant, .. }
            | Self::Devices { tenant, .. }
            | Self::AuditLog { tenant, .. }
            | Self::CustomerBilling { tenant, .. }
            | Self::RatedUsage { tenant, .. }
            | Self::UsageAnalytics { tenant, .. }
            | Self::UsageReconciliation { tenant, .. } => *tenant,
            Self::InvoiceLines { tenant, .. } => Some(*tenant),
            Self::SessionHistory { .. } => None,
        };
        actor.target_tenant(named)
    }
}

/// How long finished files are kept.
#[derive(Debug, Clone, Copy)]
pub struct ExportSettings {
    pub retention: Duration,
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// Export jobs and the sources of their rows.
#[derive(Clone)]
pub struct ExportService {
    store: Arc<dyn ExportJobStore>,
    notifier: Arc<dyn FleetNotifier>,
    pub(crate) fleet: FleetService,
    pub(crate) usage: UsageService,
    pub(crate) billing: BillingService,
    pub(crate) analytics: AnalyticsService,
    settings: ExportSettings,
    /// Notified when a job is queued here, so a worker starts it at once.
    wake: Arc<tokio::sync::Notify>,
}

impl ExportService {
    pub fn new(
        store: Arc<dyn ExportJobStore>,
        notifier: Arc<dyn FleetNotifier>,
        fleet: FleetService,
        usage: UsageService,
        billing: BillingService,
        analytics: AnalyticsService,
        settings: ExportSettings,
    ) -> Self {
        Self {
            store,
            notifier,
            fleet,
            usage,
            billing,
            analytics,
            settings,
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// What this instance's worker waits on besides its poll.
    pub fn wakeup(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.wake)
    }

    /// Queues an export after checking that the requester may read what it holds and that its
    /// filter is valid (a first read in the requester's scope). `filter` is the request's
    /// filter as JSON, kept with the job and written into the file's metadata.
    pub async fn request(
        &self,
        actor: &Actor,
        request: &ExportRequest,
        format: ExportFormat,
        filter: serde_json::Value,
    ) -> Result<ExportJob> {
        let tenant = request.tenant(actor)?;
        let kind = request.kind();
        // A first read in the requester's name: permissions and the filter are checked now,
        // not when the worker gets to it.
        let mut source = self.source(actor, request.clone());
        let expected_rows = source.expected_rows().await?;
        let open = self
            .store
            .export_jobs(
                actor.scope(),
                &ExportJobQuery {
                    tenant: Some(tenant),
                    statuses: vec![ExportStatus::Queued, ExportStatus::Running],
                    limit: MAX_OPEN_EXPORTS as u64 + 1,
                    ..requested_by(actor)
                },
            )
            .await?;
        if open.len() >= MAX_OPEN_EXPORTS {
            return Err(Error::Conflict(format!(
                "{} of your exports are queued or running, the most one user may have; wait for one to finish or cancel one",
                open.len()
            )));
        }
        let job = ExportJob {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            kind,
            format,
            filter,
            status: ExportStatus::Queued,
            rows: 0,
            bytes: 0,
            expected_rows,
            created_by: actor.subject.clone(),
            created_by_user: actor.user_id,
            created_by_role: actor.role,
            created_by_customer: actor.customer_id,
            failure: None,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            heartbeat_at: None,
            expires_at: None,
            sha256: None,
        };
        self.store.create_export_job(actor.scope(), &job).await?;
        self.publish(&job);
        self.wake.notify_one();
        Ok(job)
    }

    /// Whether `actor` may see `job`: its requester, and the tenant's administrators — but
    /// what a platform admin exported (supplier costs, invoice lines, another tenant's data)
    /// only platform admins.
    pub fn sees(&self, actor: &Actor, job: &ExportJob) -> bool {
        if !actor.sees_tenant(job.tenant_id) {
            return false;
        }
        if job.created_by_role == Role::PlatformAdmin && actor.role != Role::PlatformAdmin {
            return false;
        }
        if matches!(actor.role, Role::PlatformAdmin | Role::TenantAdmin) {
            return true;
        }
        match (actor.user_id, job.created_by_user) {
            (Some(a), Some(b)) => a == b,
            (None, None) => actor.subject == job.created_by,
            _ => false,
        }
    }

    /// One job; `None` when it does not exist or is not the caller's to see.
    pub async fn job(&self, actor: &Actor, id: Uuid) -> Result<Option<ExportJob>> {
        Ok(self
            .store
            .export_job(actor.scope(), id)
            .await?
            .filter(|j| self.sees(actor, j)))
    }

    /// A job read in `scope` (a download link's tenant), whoever asked for it.
    pub async fn job_in(&self, scope: Scope, id: Uuid) -> Result<Option<ExportJob>> {
        self.store.export_job(scope, id).await
    }

    /// The caller's jobs (a tenant's administrators: every job of the tenant), newest first.
    pub async fn jobs(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        mut query: ExportJobQuery,
    ) -> Result<Vec<ExportJob>> {
        query.tenant = Some(actor.target_tenant(tenant)?);
        query.hide_platform = actor.role != Role::PlatformAdmin;
        if !matches!(actor.role, Role::PlatformAdmin | Role::TenantAdmin) {
            let own = requested_by(actor);
            query.requested_by = own.requested_by;
            query.requested_by_subject = own.requested_by_subject;
        }
        self.store.export_jobs(actor.scope(), &query).await
    }

    /// Cancels a queued or running job the caller sees; a running one stops at its next batch
    /// and leaves no file.
    pub async fn cancel(&self, actor: &Actor, id: Uuid) -> Result<ExportJob> {
        self.job(actor, id)
            .await?
            .ok_or_else(|| Error::not_found("export job", id))?;
        let job = self
            .store
            .cancel_export_job(actor.scope(), id, Utc::now())
            .await?;
        self.publish(&job);
        Ok(job)
    }

    /// The source of a job's rows, read as its requester.
    pub fn source(&self, actor: &Actor, request: ExportRequest) -> Box<dyn ExportSource> {
        sources::open(self.clone(), actor.clone(), request)
    }

    // ---- the worker's side ----

    /// Claims jobs to run (queued, or running with a lapsed lease), marking them running.
    pub async fn claim(&self, worker: &str, lease: Duration, limit: u64) -> Result<Vec<ExportJob>> {
        let now = Utc::now();
        let jobs = self
            .store
            .claim_export_jobs(worker, now, now + lease_of(lease), limit)
            .await?;
        for job in &jobs {
            self.publish(job);
        }
        Ok(jobs)
    }

    /// Records progress and renews the lease; `false`: stop (cancelled, or no longer held).
    pub async fn progress(&self, job: &mut ExportJob, worker: &str, lease: Duration) -> Result<bool> {
        let now = Utc::now();
        let held = self
            .store
            .export_progress(
                job.id,
                worker,
                &ExportProgressUpdate {
                    rows: job.rows,
                    bytes: job.bytes,
                    expected_rows: job.expected_rows,
                    at: now,
                    until: now + lease_of(lease),
                },
            )
            .await?;
        job.heartbeat_at = Some(now);
        if held {
            self.publish(job);
        }
        Ok(held)
    }

    /// Ends a job: completed with its file stored, or failed with the reason.
    pub async fn finish(
        &self,
        job: &ExportJob,
        worker: &str,
        outcome: std::result::Result<(u64, String), String>,
    ) -> Result<Option<ExportJob>> {
        let now = Utc::now();
        let end = match outcome {
            Ok((bytes, sha256)) => ExportEnd {
                status: ExportStatus::Completed,
                rows: job.rows,
                bytes,
                sha256: Some(sha256),
                failure: None,
                at: now,
                expires_at: Some(now + lease_of(self.settings.retention)),
            },
            Err(why) => ExportEnd {
                status: ExportStatus::Failed,
                rows: job.rows,
                bytes: 0,
                sha256: None,
                failure: Some(why),
                at: now,
                expires_at: None,
            },
        };
        let done = self.store.finish_export_job(job.id, worker, &end).await?;
        if let Some(done) = &done {
            self.publish(done);
        }
        Ok(done)
    }

    /// Completed jobs whose files are due for deletion.
    pub async fn expired(&self, limit: u64) -> Result<Vec<ExportJob>> {
        self.store.expired_exports(Utc::now(), limit).await
    }

    /// Marks a job expired once its file is deleted.
    pub async fn expire(&self, job: &ExportJob) -> Result<()> {
        self.store.expire_export_job(job.id).await?;
        let mut job = job.clone();
        job.status = ExportStatus::Expired;
        self.publish(&job);
        Ok(())
    }

    fn publish(&self, job: &ExportJob) {
        self.notifier
            .publish(FleetEvent::ExportJobProgress(ExportJobProgress::of(
                job,
                Utc::now(),
            )));
    }
}

fn requested_by(actor: &Actor) -> ExportJobQuery {
    ExportJobQuery {
        requested_by: actor.user_id,
        requested_by_subject: actor.user_id.is_none().then(|| actor.subject.clone()),
        ..ExportJobQuery::default()
    }
}

fn lease_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
