//! Bulk jobs: submit (validate), confirm or cancel, run against the network, and the
//! provisioning API that is a job inside.
//!
//! Running a job: rows are taken in file order in chunks, marked `SENT`, sent through the fair
//! gate with a window of requests in flight (answers come back in order), and their results are
//! written in batches — each batch one transaction with the SIM changes and audit entries — that
//! also renew the job's lease. A progress event goes out after every batch and at least every
//! [`BULK_HEARTBEAT`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

use super::{sim_entry, FleetService};
use crate::events::{BulkJobProgress, FleetEvent, BULK_HEARTBEAT};
use crate::fleet::audit::{parse_note, AuditStamp};
use crate::fleet::bulk::{
    check_lines, plan, table_lines, too_many_rows, BulkJob, BulkJobStatus, BulkLine, BulkRow, BulkSource,
    RowOutcome, RowResult, SimStateRow, ValidationReport, MAX_BULK_FILE_BYTES, MAX_BULK_ROWS,
};
use crate::fleet::import::TableFormat;
use crate::fleet::sim::{Sim, SimState};
use crate::fleet::AuditAction;
use crate::identifiers::Iccid;
use crate::ports::network::{NetworkAction, NetworkFailure, NetworkReceipt, NetworkRequest};
use crate::ports::{BulkJobQuery, BulkRowQuery, BulkStatusChange, Versioned};
use crate::{Actor, Error, Permission, Result, Role, Scope, TenantId};

/// Rows taken (and marked `SENT`) at a time.
const CHUNK: u64 = 500;
/// Results written per transaction at most; fewer when [`FLUSH_EVERY`] passes first.
const FLUSH_ROWS: usize = 250;
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// ICCIDs per lookup while validating.
const LOOKUP_CHUNK: usize = 5_000;
/// Lookups in flight at once while validating: the server only waits for them, and two keep
/// two database cores busy (each is its own read-only transaction under the caller's scope).
const LOOKUP_IN_FLIGHT: usize = 2;

/// The tenant's SIMs among `iccids`, by ICCID: [`LOOKUP_CHUNK`] per query, [`LOOKUP_IN_FLIGHT`]
/// queries at a time. What validation checks a file's rows against.
pub async fn look_up_sims(
    store: &dyn crate::ports::BulkJobStore,
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
        let lines = crate::blocking::FILES
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
        let sims = look_up_sims(&*self.store, scope, &parsed).await?;
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
        self.store.create_bulk_job(scope, &job, &rows).await?;
        self.publish_progress(&job);
        Ok(Submitted { job, report })
    }

    pub async fn bulk_job(&self, actor: &Actor, id: Uuid) -> Result<Option<BulkJob>> {
        self.require_bulk_read(actor)?;
        self.store.bulk_job(actor.scope(), id).await
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
        self.store.bulk_jobs(actor.scope(), tenant, query).await
    }

    pub async fn bulk_rows(&self, actor: &Actor, job: Uuid, query: &BulkRowQuery) -> Result<Vec<BulkRow>> {
        self.require_bulk_read(actor)?;
        super::check_limit(query.limit)?;
        self.store.bulk_rows(actor.scope(), job, query).await
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
            .store
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
        let job = self.store.change_bulk_status(actor.scope(), id, &change).await?;
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
        let job = self.store.change_bulk_status(actor.scope(), id, &change).await?;
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

    /// Claims runnable jobs for `worker` (see [`crate::ports::BulkJobStore::claim_bulk_jobs`]).
    pub async fn claim_bulk_jobs(
        &self,
        worker: &str,
        lease: Duration,
        limit: u64,
        exclude: &[Uuid],
    ) -> Result<Vec<BulkJob>> {
        let now = Utc::now();
        self.store
            .claim_bulk_jobs(worker, now, now + lease_of(lease), limit, exclude)
            .await
    }

    /// Runs a claimed job to its end (or until it is cancelled, or the claim is lost): rows in
    /// file order, results written in batches. Returns the job as it is at the end.
    pub async fn run_bulk_job(&self, job: BulkJob, worker: &str, lease: Duration) -> Result<BulkJob> {
        let stamp = stamp_of(&job);
        let run = RunState::default();
        self.publish_progress(&job);
        let window = self.gate.capacity().max(1);
        let job = &job;

        // Rows in file order, a chunk at a time, each chunk marked SENT and its SIMs read while
        // the rows before it are still with the network (no pause between chunks).
        let run = &run;
        // Boxed: the Send check of the nested futures trips over higher-ranked lifetimes otherwise.
        let chunks = futures::stream::unfold(Some(None::<u64>), move |after| {
            self.next_chunk(job, worker, run, after)
        })
        .boxed();
        // The next chunk is read while a chunk's worth of rows still waits to be sent, so the
        // network never waits for a read.
        let (ahead_tx, ahead_rx) = tokio::sync::mpsc::channel::<(BulkRow, Option<Sim>)>(CHUNK as usize);
        let read_ahead = async move {
            let mut rows = std::pin::pin!(chunks.flatten());
            while let Some(r) = rows.next().await {
                if ahead_tx.send(r).await.is_err() {
                    break;
                }
            }
        };
        let ahead =
            futures::stream::unfold(ahead_rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
        // Up to `window` rows with the network at once; answers are taken as they come (a slow
        // answer does not hold up the rows after it).
        let answers = ahead
            .map(|(row, sim)| self.execute_unless_stopped(job, row, sim, &stamp, run))
            .buffer_unordered(window)
            .boxed();

        // The answers are written in batches alongside, so sending never waits for a write.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<RowResult>(window * 4);
        let send = async move {
            let mut answers = std::pin::pin!(answers);
            while let Some(r) = answers.next().await {
                if tx.send(r).await.is_err() {
                    break;
                }
            }
        };
        let write = async {
            let mut current = job.clone();
            let mut batch: Vec<RowResult> = Vec::new();
            let mut last_event = tokio::time::Instant::now();
            let mut last_record = tokio::time::Instant::now();
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let (flush, done) = tokio::select! {
                    r = rx.recv() => match r {
                        Some(r) => {
                            batch.push(r);
                            (batch.len() >= FLUSH_ROWS, false)
                        }
                        None => (!batch.is_empty(), true),
                    },
                    _ = tick.tick() => (!batch.is_empty(), false),
                };
                // While no row is answered (a silent network), an empty batch renews the claim
                // before a third of the lease has passed, so the job is not taken over.
                let renew = !flush && !done && last_record.elapsed() >= lease / 3;
                if flush || renew {
                    last_record = tokio::time::Instant::now();
                    match self
                        .record(job, worker, std::mem::take(&mut batch), lease_end(lease))
                        .await
                    {
                        Ok(j) => current = j,
                        Err(e) => {
                            run.fail(e);
                            // Nothing more is written; what was sent is sent again by whoever
                            // resumes the job, with the same request ids.
                            rx.close();
                            while rx.recv().await.is_some() {}
                            break;
                        }
                    }
                    last_event = tokio::time::Instant::now();
                    if current.status != BulkJobStatus::Processing {
                        run.stop();
                    }
                } else if last_event.elapsed() >= BULK_HEARTBEAT {
                    let mut beat = current.clone();
                    beat.heartbeat_at = Some(Utc::now());
                    self.publish_progress(&beat);
                    last_event = tokio::time::Instant::now();
                }
                if done {
                    break;
                }
            }
            current
        };
        let ((), (), current) = tokio::join!(read_ahead, send, write);
        if let Some(e) = run.failure() {
            return Err(e);
        }
        // A lost claim ends this run without finishing the job (its new holder does).
        let current = match self.store.bulk_job(Scope::Platform, job.id).await? {
            Some(j) if j.status == BulkJobStatus::Cancelled => j,
            _ => current,
        };
        let status = match current.status {
            BulkJobStatus::Processing => current.final_status(),
            other => other,
        };
        let done = self.store.finish_bulk_job(job.id, worker, status, None).await?;
        self.publish_progress(&done);
        // A job cancelled while it ran was notified when it was cancelled.
        if current.status == BulkJobStatus::Processing && done.status != BulkJobStatus::Cancelled {
            self.job_ended(&done).await;
        }
        Ok(done)
    }

    /// The next chunk of rows to send after `after` (marked `SENT`, with their SIMs), and the
    /// position to go on from; `None` at the end, when the run stops, or on a failure (kept in
    /// `run`).
    async fn next_chunk(
        &self,
        job: &BulkJob,
        worker: &str,
        run: &RunState,
        after: Option<Option<u64>>,
    ) -> Option<(
        futures::stream::Iter<std::vec::IntoIter<(BulkRow, Option<Sim>)>>,
        Option<Option<u64>>,
    )> {
        let scope = tenant_scope(job.tenant_id);
        let after = after?;
        if run.stopped() {
            return None;
        }
        let rows = match self.store.open_bulk_rows(job.id, after, CHUNK).await {
            Ok(rows) if rows.is_empty() => return None,
            Ok(rows) => rows,
            Err(e) => {
                run.fail(e);
                return None;
            }
        };
        let (first, last) = match (rows.first(), rows.last()) {
            (Some(f), Some(l)) => (f.position, l.position),
            _ => return None,
        };
        match self.store.mark_bulk_rows_sent(job.id, worker, first..=last).await {
            Ok(()) => {}
            // Cancelled, or the claim went to another worker: send nothing more.
            Err(Error::Conflict(_)) => {
                run.stop();
                return None;
            }
            Err(e) => {
                run.fail(e);
                return None;
            }
        }
        let iccids: Vec<Iccid> = rows.iter().filter_map(|r| Iccid::parse(&r.iccid).ok()).collect();
        let sims: HashMap<Iccid, Sim> = match self.store.sims_by_iccid(scope, &iccids).await {
            Ok(sims) => sims.into_iter().map(|s| (s.iccid.clone(), s)).collect(),
            Err(e) => {
                run.fail(e);
                return None;
            }
        };
        let rows: Vec<(BulkRow, Option<Sim>)> = rows
            .into_iter()
            .map(|r| {
                let sim = Iccid::parse(&r.iccid).ok().and_then(|i| sims.get(&i).cloned());
                (r, sim)
            })
            .collect();
        Some((futures::stream::iter(rows), Some(Some(last))))
    }

    async fn record(
        &self,
        job: &BulkJob,
        worker: &str,
        batch: Vec<RowResult>,
        until: DateTime<Utc>,
    ) -> Result<BulkJob> {
        let effects: Vec<(u64, Vec<crate::fleet::NewAuditEntry>)> = batch
            .iter()
            .filter(|r| r.outcome == RowOutcome::Succeeded)
            .map(|r| (r.position, r.audit.clone()))
            .collect();
        let (current, refused) = self
            .store
            .record_bulk_results(job.id, worker, batch, until)
            .await?;
        // Rows whose SIM moved on meanwhile were written as failed; their effects did not happen.
        let announced: Vec<_> = effects
            .into_iter()
            .filter(|(p, _)| !refused.contains(p))
            .flat_map(|(_, e)| e)
            .collect();
        self.announce(&announced);
        self.publish_progress(&current);
        Ok(current)
    }

    async fn execute_unless_stopped(
        &self,
        job: &BulkJob,
        row: BulkRow,
        sim: Option<Sim>,
        stamp: &AuditStamp,
        run: &RunState,
    ) -> RowResult {
        if run.stopped() {
            return unsent(&row);
        }
        self.execute_row(job, &row, sim, stamp, run).await
    }

    /// Sends one row to the network (unless there is nothing to do) and says what to record.
    async fn execute_row(
        &self,
        job: &BulkJob,
        row: &BulkRow,
        sim: Option<Sim>,
        stamp: &AuditStamp,
        run: &RunState,
    ) -> RowResult {
        let result = |outcome, reason: String| RowResult {
            position: row.position,
            outcome,
            reason: Some(reason),
            reference: None,
            sim: None,
            audit: Vec::new(),
        };
        let Some(sim) = sim else {
            return result(
                RowOutcome::Failed,
                format!("SIM {} is no longer in your inventory", row.iccid),
            );
        };
        let Some(action) = row.action.or(job.action) else {
            return result(RowOutcome::Failed, "the row has no action".into());
        };
        let target = match plan(action, sim.state) {
            Err(reason) => {
                return result(
                    RowOutcome::Failed,
                    format!("{reason} (the SIM changed since validation)"),
                )
            }
            Ok(None) if action != NetworkAction::LocationUpdate => {
                return result(RowOutcome::Skipped, format!("already {}", sim.state.as_str()))
            }
            Ok(t) => t,
        };
        let network_action = match target {
            Some(to) => NetworkAction::for_transition(sim.state, to),
            None => action,
        };
        let request = NetworkRequest {
            id: row.request_id,
            tenant_id: sim.tenant_id,
            iccid: sim.iccid.clone(),
            imsi: sim.imsi.clone(),
            action: network_action,
        };
        let mut stamp = stamp.clone();
        let answer = match self.send_waiting_out(&request, run).await {
            Some(answer) => answer,
            // The run stopped while the network was silent: the row is sent again (with the
            // same request id) by whoever resumes the job.
            None => return unsent(row),
        };
        stamp.at = Utc::now();
        match answer {
            Err(failure) => {
                let kind = match failure {
                    NetworkFailure::Permanent(_) => "REFUSED",
                    NetworkFailure::Transient(_) => "NO_ANSWER",
                };
                let entry = sim_entry(
                    &sim,
                    AuditAction::NetworkFailed,
                    &stamp,
                    json!({ "state": sim.state.as_str() }),
                    json!({ "action": network_action.as_str(), "failure": kind, "reason": failure.to_string(), "requestId": request.id.to_string(), "bulkJobId": job.id.to_string() }),
                );
                RowResult {
                    audit: vec![entry],
                    ..result(RowOutcome::Failed, failure.to_string())
                }
            }
            Ok(receipt) => {
                let (sim_change, audit) = match target {
                    Some(to) => {
                        let (changed, effects) =
                            self.transition_effects(&sim, to, network_action, &receipt, &stamp, Some(job.id));
                        (
                            Some(Versioned {
                                expected_version: Some(sim.version),
                                row: changed,
                            }),
                            effects,
                        )
                    }
                    None => (
                        None,
                        vec![sim_entry(
                            &sim,
                            AuditAction::LocationUpdated,
                            &stamp,
                            json!(null),
                            json!({ "network": network_json(network_action, &receipt), "bulkJobId": job.id.to_string() }),
                        )],
                    ),
                };
                RowResult {
                    position: row.position,
                    outcome: RowOutcome::Succeeded,
                    reason: None,
                    reference: Some(receipt.reference),
                    sim: sim_change,
                    audit,
                }
            }
        }
    }

    /// Sends a bulk row's request, waiting out a network that does not answer: after the quick
    /// retries of [`Self::send_to_network`], the request is tried again after pauses growing
    /// from one second to thirty, until it is answered or `network_patience` has passed since
    /// the first silence (then the last failure is the answer). `None` when the run stops
    /// meanwhile (cancelled, or its claim lost). A job thus pauses through an HLR outage instead
    /// of failing every row it sends meanwhile.
    async fn send_waiting_out(
        &self,
        request: &NetworkRequest,
        run: &RunState,
    ) -> Option<std::result::Result<NetworkReceipt, NetworkFailure>> {
        let mut silent_since = None;
        let mut pause = Duration::from_secs(1);
        loop {
            let answer = self.send_to_network(request).await;
            if !matches!(answer, Err(NetworkFailure::Transient(_))) {
                return Some(answer);
            }
            let since = *silent_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() + pause > self.network_patience {
                return Some(answer);
            }
            tracing::debug!(iccid = %request.iccid, waited = ?since.elapsed(), "the network does not answer; the row waits for it");
            // Wakes early when the run stops.
            let deadline = tokio::time::Instant::now() + pause;
            while tokio::time::Instant::now() < deadline {
                if run.stopped() {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100).min(pause)).await;
            }
            if run.stopped() {
                return None;
            }
            pause = (pause * 2).min(Duration::from_secs(30));
        }
    }

    /// Sends a request through the fair gate, retrying transient failures
    /// ([`super::sims::NETWORK_ATTEMPTS`] attempts in all, backing off between them).
    pub(crate) async fn send_to_network(
        &self,
        request: &NetworkRequest,
    ) -> std::result::Result<NetworkReceipt, NetworkFailure> {
        let mut attempt = 1;
        loop {
            let answer = {
                let _slot = self.gate.acquire(request.tenant_id).await;
                self.network.send(request).await
            };
            match answer {
                Err(NetworkFailure::Transient(why)) if attempt < super::sims::NETWORK_ATTEMPTS => {
                    tracing::debug!(iccid = %request.iccid, attempt, %why, "network busy; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * 4_u64.pow(attempt - 1))).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The SIM after a confirmed transition, and the audit entries saying so (terminating
    /// unbinds the device).
    pub(crate) fn transition_effects(
        &self,
        current: &Sim,
        target: SimState,
        action: NetworkAction,
        receipt: &NetworkReceipt,
        stamp: &AuditStamp,
        job: Option<Uuid>,
    ) -> (Sim, Vec<crate::fleet::NewAuditEntry>) {
        let mut sim = current.clone();
        sim.state = target;
        let mut new = json!({ "state": target.as_str(), "network": network_json(action, receipt) });
        if let Some(job) = job {
            new["bulkJobId"] = json!(job.to_string());
        }
        let mut effects = vec![sim_entry(
            &sim,
            AuditAction::StateChanged,
            stamp,
            json!({ "state": current.state.as_str() }),
            new,
        )];
        if target == SimState::Terminated {
            if let Some(device) = sim.device_id.take() {
                effects.push(sim_entry(
                    &sim,
                    AuditAction::Unbound,
                    stamp,
                    json!({ "deviceId": device.to_string() }),
                    json!({ "deviceId": null }),
                ));
            }
        }
        (sim, effects)
    }
}

/// What `provisionSims` answers.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub job: BulkJob,
    pub report: ValidationReport,
    /// Every row's outcome, when the job finished within the wait.
    pub rows: Option<Vec<BulkRow>>,
}

/// How long the provisioning API waits, and for how many SIMs.
#[derive(Debug, Clone, Copy)]
pub struct ProvisionWait {
    pub limit: usize,
    pub timeout: Duration,
    pub lease: Duration,
}

impl FleetService {
    /// The provisioning API: the list becomes a job (validated like a file) that starts at once.
    /// Up to `wait.limit` SIMs it runs here and the answer carries every SIM's outcome (unless it
    /// takes longer than `wait.timeout`: then the job goes on and is returned running); larger
    /// lists are queued for the workers and the job is returned.
    pub async fn provision_sims(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        iccids: &[String],
        action: NetworkAction,
        note: Option<&str>,
        wait: ProvisionWait,
    ) -> Result<Provisioned> {
        let Submitted { job, report } = self.submit_bulk_list(actor, tenant, iccids, action, note).await?;
        let scope = actor.scope();
        if job.valid as usize > wait.limit {
            let job = self.confirm_bulk_job(actor, job.id).await?;
            return Ok(Provisioned {
                job,
                report,
                rows: None,
            });
        }
        let worker = format!("provision-{}", Uuid::new_v4());
        let until = Utc::now() + lease_of(wait.lease);
        let job = self.confirm(actor, job.id, Some((worker.clone(), until))).await?;
        let all_rows = |id: Uuid| {
            let query = BulkRowQuery {
                outcomes: Vec::new(),
                after: None,
                limit: MAX_BULK_ROWS as u64,
            };
            async move { self.store.bulk_rows(scope, id, &query).await }
        };
        if job.status.is_final() {
            let rows = all_rows(job.id).await?;
            return Ok(Provisioned {
                job,
                report,
                rows: Some(rows),
            });
        }
        // The run goes on by itself if the wait ends first (or the caller goes away).
        let runner = self.clone();
        let claimed = job.clone();
        let run = tokio::spawn(async move { runner.run_bulk_job(claimed, &worker, wait.lease).await });
        match tokio::time::timeout(wait.timeout, run).await {
            Ok(Ok(Ok(done))) => {
                let rows = all_rows(done.id).await?;
                Ok(Provisioned {
                    job: done,
                    report,
                    rows: Some(rows),
                })
            }
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(join)) => Err(Error::Internal(format!("provisioning task failed: {join}"))),
            Err(_) => {
                // The caller stops waiting: the job's end is notified after all.
                let job = self.store.notify_bulk_job(scope, job.id).await?;
                self.job_ended(&job).await;
                Ok(Provisioned {
                    job,
                    report,
                    rows: None,
                })
            }
        }
    }
}

/// What the audit trail keeps of a confirmed network request: the action, the network's
/// reference and how long the network took (milliseconds, to 0.1).
pub(crate) fn network_json(action: NetworkAction, receipt: &NetworkReceipt) -> serde_json::Value {
    json!({
        "action": action.as_str(),
        "reference": receipt.reference,
        "latencyMs": (receipt.latency.as_secs_f64() * 10_000.0).round() / 10.0,
    })
}

/// What the parts of a job's run share: whether to stop sending, and the first failure.
#[derive(Default)]
struct RunState {
    stop: AtomicBool,
    failure: std::sync::Mutex<Option<Error>>,
}

impl RunState {
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Stops the run, keeping the first failure to answer with.
    fn fail(&self, e: Error) {
        self.stop();
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert(e);
    }

    fn failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// Until when a claim renewed now lasts.
fn lease_end(lease: Duration) -> DateTime<Utc> {
    Utc::now() + lease_of(lease)
}

/// A row left unsent (the job was cancelled before its turn): back to `PENDING`.
fn unsent(row: &BulkRow) -> RowResult {
    RowResult {
        position: row.position,
        outcome: RowOutcome::Pending,
        reason: None,
        reference: None,
        sim: None,
        audit: Vec::new(),
    }
}

fn lease_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(60))
}
