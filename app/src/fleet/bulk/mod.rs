//! Bulk jobs: submit (validate), confirm or cancel, run against the network, and the
//! provisioning API that is a job inside.
//!
//! Running a job: rows are taken in file order in chunks, marked `SENT`, sent through the fair
//! gate with a window of requests in flight (answers come back in order), and their results are
//! written in batches — each batch one transaction with the SIM changes and audit entries — that
//! also renew the job's lease. A progress event goes out after every batch and at least every
//! [`BULK_HEARTBEAT`].

mod provision;
mod run;

pub use self::provision::{ProvisionWait, Provisioned};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use uuid::Uuid;

use crate::fleet::FleetService;
use ioto_domain::events::{BulkJobProgress, FleetEvent};
use ioto_domain::fleet::audit::{parse_note, AuditStamp};
use ioto_domain::fleet::bulk::{
    check_lines, table_lines, too_many_rows, BulkJob, BulkJobStatus, BulkLine, BulkRow, BulkSource,
    SimStateRow, ValidationReport, MAX_BULK_FILE_BYTES, MAX_BULK_ROWS,
};
use ioto_domain::fleet::import::TableFormat;
use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::network::NetworkAction;
use ioto_domain::ports::{BulkJobQuery, BulkRowQuery, BulkStatusChange};
use ioto_domain::{Actor, Error, Permission, Result, Role, Scope, TenantId};

/// ICCIDs per lookup while validating.
const LOOKUP_CHUNK: usize = 5_000;
/// Lookups in flight at once while validating: the server only waits for them, and two keep
/// two database cores busy (each is its own read-only transaction under the caller's scope).
const LOOKUP_IN_FLIGHT: usize = 2;

/// The tenant's SIMs among `iccids`, by ICCID: [`LOOKUP_CHUNK`] per query, [`LOOKUP_IN_FLIGHT`]
/// queries at a time. What validation checks a file's rows against.
pub async fn look_up_sims(
    store: &dyn ioto_domain::ports::BulkJobStore,
    scope: Scope,
    iccids: &[Iccid],
) -> Result<HashMap<Iccid, SimStateRow>> {
    let mut sims = HashMap::with_capacity(iccids.len());
    // Owned chunks: a future borrowing its chunk would not be `Send` for every lifetime, which
    // the GraphQL resolvers awaiting this need.
    let chunks: Vec<Vec<Iccid>> = iccids.chunks(LOOKUP_CHUNK).map(<[Iccid]>::to_vec).collect();
    let mut lookups = futures::stream::iter(chunks)
        .map(|chunk| async move { store.sim_states(scope, &chunk).await })
        .buffer_unordered(LOOKUP_IN_FLIGHT);
    while let Some(found) = lookups.next().await {
        for s in found? {
            sims.insert(s.iccid.clone(), s);
        }
    }
    Ok(sims)
}

/// A file to run as a bulk job.
#[derive(Debug, Clone)]
pub struct BulkFile {
    pub tenant_id: Option<TenantId>,
    pub file_name: Option<String>,
    pub format: TableFormat,
    pub bytes: Vec<u8>,
    /// One action for every row; rows name their own in an `action` column otherwise.
    pub action: Option<NetworkAction>,
    pub note: Option<String>,
}

/// A job just submitted, with its validation report.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub job: BulkJob,
    pub report: ValidationReport,
}

/// How a job is identified to its rows' audit entries and the network.
fn stamp_of(job: &BulkJob) -> AuditStamp {
    AuditStamp {
        actor: format!(
            "bulk job {} (by {})",
            job.id,
            job.confirmed_by.as_deref().unwrap_or(&job.created_by)
        ),
        actor_user_id: job.created_by_user,
        at: Utc::now(),
        note: job.note.clone(),
    }
}

fn tenant_scope(tenant: TenantId) -> Scope {
    Scope::Tenant {
        tenant_id: tenant,
        customer_id: None,
    }
}

impl FleetService {
    /// Who may run a job of `rows` SIMs: tenant and platform admins any, operators up to the
    /// tenant's `operatorBulkLimit`.
    async fn require_bulk(&self, actor: &Actor, tenant: TenantId, rows: u64) -> Result<()> {
        if actor.role.allows(Permission::RunBulkJobs) {
            return Ok(());
        }
        if actor.role != Role::Operator {
            return Err(Error::forbidden("run bulk jobs"));
        }
        let limit = self
            .store
            .settings(actor.scope(), tenant)
            .await?
            .operator_bulk_limit;
        if rows > u64::from(limit) {
            return Err(Error::Forbidden(format!(
                "an OPERATOR may change up to {limit} SIMs in one job in this tenant (operatorBulkLimit); this one has {rows}: ask a TENANT_ADMIN, or split the file"
            )));
        }
        Ok(())
    }

    fn require_bulk_read(&self, actor: &Actor) -> Result<()> {
        actor.require(Permission::ReadAudit, "see bulk jobs")
    }

    /// Reads a bulk file and validates it into a job awaiting confirmation.
    pub async fn submit_bulk_file(&self, actor: &Actor, file: BulkFile) -> Result<Submitted> {
        actor.require(Permission::ManageFleet, "run bulk jobs")?;
        let tenant = actor.target_tenant(file.tenant_id)?;
        if file.bytes.is_empty() {
            return Err(Error::invalid("file", "is empty"));
        }
        if file.bytes.len() > MAX_BULK_FILE_BYTES {
            return Err(Error::invalid(
                "file",
                format!(
                    "is {:.1} MB; a bulk file may be at most {} MB",
                    file.bytes.len() as f64 / 1_048_576.0,
                    MAX_BULK_FILE_BYTES / 1_048_576
                ),
            ));
        }
        // Reading a file of up to a million rows is CPU work: off the async runtime, in the
        // lane imports share, a bounded number of files at a time.
        let (reader, bytes, format) = (Arc::clone(&self.reader), file.bytes, file.format);
        let lines = crate::lanes::FILES
            .run(move || reader.read(&bytes, format).and_then(|table| table_lines(&table)))
            .await??;
        self.create_job(
            actor,
            tenant,
            BulkSource::File,
            file.file_name,
            file.action,
            lines,
            file.note.as_deref(),
        )
        .await
    }

    /// A list of ICCIDs as a job (the provisioning API's path), validated, awaiting confirmation.
    pub async fn submit_bulk_list(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        iccids: &[String],
        action: NetworkAction,
        note: Option<&str>,
    ) -> Result<Submitted> {
        actor.require(Permission::ManageFleet, "provision SIMs")?;
        let tenant = actor.target_tenant(tenant)?;
        if iccids.is_empty() {
            return Err(Error::invalid("iccids", "give at least one ICCID"));
        }
        if iccids.len() > MAX_BULK_ROWS {
            return Err(Error::invalid(
                "iccids",
                format!("{} ICCIDs; at most {MAX_BULK_ROWS} per call", iccids.len()),
            ));
        }
        let lines = iccids
            .iter()
            .enumerate()
            .map(|(i, s)| BulkLine {
                line: i as u64 + 1,
                iccid: s.clone(),
                action: None,
            })
            .collect();
        self.create_job(actor, tenant, BulkSource::Api, None, Some(action), lines, note)
            .await
    }

    #[expect(clippy::too_many_arguments, reason = "one job's facts, each used once")]
    async fn create_job(
        &self,
        actor: &Actor,
        tenant: TenantId,
        source: BulkSource,
        file_name: Option<String>,
        action: Option<NetworkAction>,
        lines: Vec<BulkLine>,
        note: Option<&str>,
    ) -> Result<Submitted> {
        if lines.len() > MAX_BULK_ROWS {
            return Err(too_many_rows(lines.len()));
        }
        let note = parse_note(note)?;
        let file_name = file_name
            .map(|f| {
                f.chars()
                    .filter(|c| !c.is_control())
                    .take(255)
                    .collect::<String>()
            })
            .filter(|f| !f.trim().is_empty());
        let scope = tenant_scope(tenant);
        let parsed: Vec<Iccid> = lines.iter().filter_map(|l| Iccid::parse(&l.iccid).ok()).collect();
        let sims = look_up_sims(&*self.jobs, scope, &parsed).await?;
        let checked = check_lines(&lines, action, &sims);
        let report = ValidationReport::of(&checked);
        self.require_bulk(actor, tenant, report.valid).await?;
        let now = Utc::now();
        let job = BulkJob {
            id: Uuid::new_v4(),
            tenant_id: tenant,
            source,
            file_name,
            action,
            status: BulkJobStatus::AwaitingConfirmation,
            total: checked.len() as u64,
            valid: report.valid,
            invalid: report.invalid,
            already_in_state: report.already_in_state,
            processed: 0,
            succeeded: 0,
            failed: 0,
            skipped: report.already_in_state,
            created_by: actor.subject.clone(),
            created_by_user: actor.user_id,
            created_by_role: actor.role,
            confirmed_by: None,
            cancelled_by: None,
            note,
            // Until its caller runs it and waits for every outcome (see `confirm`).
            notify: true,
            failure: None,
            created_at: now,
            confirmed_at: None,
            started_at: None,
            finished_at: None,
            heartbeat_at: None,
        };
        let rows: Vec<BulkRow> = checked
            .into_iter()
            .enumerate()
            .map(|(i, c)| BulkRow {
                job_id: job.id,
                position: i as u64,
                line: c.line,
                iccid: c.iccid,
                sim_id: c.sim,
                action: c.action,
                finished_at: (!c.outcome.is_open()).then_some(now),
                outcome: c.outcome,
                reason: c.reason,
                request_id: Uuid::new_v4(),
                reference: None,
            })
            .collect();
        self.jobs.create_bulk_job(scope, &job, &rows).await?;
        self.publish_progress(&job);
        Ok(Submitted { job, report })
    }

    pub async fn bulk_job(&self, actor: &Actor, id: Uuid) -> Result<Option<BulkJob>> {
        self.require_bulk_read(actor)?;
        self.jobs.bulk_job(actor.scope(), id).await
    }

    pub async fn bulk_jobs(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        query: &BulkJobQuery,
    ) -> Result<Vec<BulkJob>> {
        self.require_bulk_read(actor)?;
        let tenant = actor.target_tenant(tenant)?;
        super::check_limit(query.limit)?;
        self.jobs.bulk_jobs(actor.scope(), tenant, query).await
    }

    pub async fn bulk_rows(&self, actor: &Actor, job: Uuid, query: &BulkRowQuery) -> Result<Vec<BulkRow>> {
        self.require_bulk_read(actor)?;
        super::check_limit(query.limit)?;
        self.jobs.bulk_rows(actor.scope(), job, query).await
    }

    /// Starts a job awaiting confirmation: `CONFLICT` when it is anywhere else (confirmed
    /// already, cancelled, finished).
    pub async fn confirm_bulk_job(&self, actor: &Actor, id: Uuid) -> Result<BulkJob> {
        let job = self.confirm(actor, id, None).await?;
        self.bulk_wakeup.notify_waiters();
        Ok(job)
    }

    /// Confirms, claiming the job for `claim` when given (no worker gets it in between).
    async fn confirm(
        &self,
        actor: &Actor,
        id: Uuid,
        claim: Option<(String, DateTime<Utc>)>,
    ) -> Result<BulkJob> {
        actor.require(Permission::ManageFleet, "run bulk jobs")?;
        let job = self
            .jobs
            .bulk_job(actor.scope(), id)
            .await?
            .ok_or_else(|| Error::not_found("bulk job", id))?;
        self.require_bulk(actor, job.tenant_id, job.valid).await?;
        let change = BulkStatusChange {
            from: vec![BulkJobStatus::AwaitingConfirmation],
            to: if job.valid == 0 {
                job.final_status()
            } else {
                BulkJobStatus::Processing
            },
            at: Utc::now(),
            by: Some(actor.subject.clone()),
            claim,
        };
        let job = self.jobs.change_bulk_status(actor.scope(), id, &change).await?;
        self.publish_progress(&job);
        self.job_ended(&job).await;
        Ok(job)
    }

    /// Cancels a job before or while it runs (rows not yet sent are not sent); `CONFLICT` once
    /// it has finished.
    pub async fn cancel_bulk_job(&self, actor: &Actor, id: Uuid) -> Result<BulkJob> {
        actor.require(Permission::ManageFleet, "cancel bulk jobs")?;
        let change = BulkStatusChange {
            from: vec![
                BulkJobStatus::Validating,
                BulkJobStatus::AwaitingConfirmation,
                BulkJobStatus::Processing,
            ],
            to: BulkJobStatus::Cancelled,
            at: Utc::now(),
            by: Some(actor.subject.clone()),
            claim: None,
        };
        let job = self.jobs.change_bulk_status(actor.scope(), id, &change).await?;
        self.publish_progress(&job);
        self.job_ended(&job).await;
        Ok(job)
    }

    /// Wakes when a job was confirmed on this instance (workers also poll for other instances').
    pub fn bulk_wakeup(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.bulk_wakeup)
    }

    pub(crate) fn publish_progress(&self, job: &BulkJob) {
        self.notifier
            .publish(FleetEvent::BulkJobProgress(BulkJobProgress::of(job, Utc::now())));
    }
}

fn lease_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(60))
}
