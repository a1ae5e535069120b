//! Running a bulk job: claimed under a lease, its rows sent through the fair gate in chunks and
//! their results written in batches with the SIM changes and audit entries.

use super::*;
use crate::fleet::{sim_entry, FleetService};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use ioto_domain::events::BULK_HEARTBEAT;
use ioto_domain::fleet::audit::AuditStamp;
use ioto_domain::fleet::bulk::{plan, BulkJob, BulkJobStatus, BulkRow, RowOutcome, RowResult};
use ioto_domain::fleet::sim::Sim;
use ioto_domain::fleet::AuditAction;
use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::network::{NetworkAction, NetworkFailure, NetworkReceipt, NetworkRequest};
use ioto_domain::ports::Versioned;
use ioto_domain::{Error, Result, Scope};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// Rows taken (and marked `SENT`) at a time.
const CHUNK: u64 = 500;

/// Results written per transaction at most; fewer when [`FLUSH_EVERY`] passes first.
const FLUSH_ROWS: usize = 250;

const FLUSH_EVERY: Duration = Duration::from_millis(250);

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

impl FleetService {
    /// Claims runnable jobs for `worker` (see [`ioto_domain::ports::BulkJobStore::claim_bulk_jobs`]).
    pub async fn claim_bulk_jobs(
        &self,
        worker: &str,
        lease: Duration,
        limit: u64,
        exclude: &[Uuid],
    ) -> Result<Vec<BulkJob>> {
        let now = Utc::now();
        self.jobs
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
                    None => (!batch.is_empty(), true)},
                _ = tick.tick() => (!batch.is_empty(), false)};
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
        let current = match self.jobs.bulk_job(Scope::Platform, job.id).await? {
            Some(j) if j.status == BulkJobStatus::Cancelled => j,
            _ => current,
        };
        let status = match current.status {
            BulkJobStatus::Processing => current.final_status(),
            other => other,
        };
        let done = self.jobs.finish_bulk_job(job.id, worker, status, None).await?;
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
        let rows = match self.jobs.open_bulk_rows(job.id, after, CHUNK).await {
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
        match self.jobs.mark_bulk_rows_sent(job.id, worker, first..=last).await {
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
        let effects: Vec<(u64, Vec<ioto_domain::fleet::NewAuditEntry>)> = batch
            .iter()
            .filter(|r| r.outcome == RowOutcome::Succeeded)
            .map(|r| (r.position, r.audit.clone()))
            .collect();
        let (current, refused) = self
            .jobs
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
                            json!({ "network": crate::fleet::network::network_json(network_action, &receipt), "bulkJobId": job.id.to_string() }),
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
}
