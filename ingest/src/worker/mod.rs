//! The ingest worker: a consumer-group member that takes session rollups and CDRs off the bus in
//! batches, counts them into the usage store, sends what cannot be counted to the dead-letter
//! topic, and only then commits the batch.
//!
//! ```text
//! poll (≤ batch_max, ≤ batch_wait) ─► lookup + count ─► write (usage store acks) ─► dead letters ─► commit
//!   batch N+1 is polled and counted       └─ under a hold on the assignment: a rebalance waits
//!   while batch N is written                 store down: void N+1, count N again, retry
//! ```
//!
//! Effectively once: a batch is committed only after its writes were acknowledged, so a crash at
//! any point redelivers at most the uncommitted batches, and the counting core recognises what of
//! them had already landed (progress is recovered from the store). After a rebalance the cached
//! progress is dropped, because another member may have counted the same sessions meanwhile; the
//! hold keeps any other member from starting on a batch before it is committed.
//!
//! Poison-proof: an event the contract refuses is dead-lettered with its reason before anything
//! is written; a write the store refuses for its content (`InvalidInput`, never an outage) is
//! split in halves until the one event it cannot store is found, dead-lettered as `UNSTORABLE`,
//! while the rest of the batch counts. Only outages are retried.

mod poison;
mod setup;

pub use self::setup::{backoff, dead_letter_json, IngestStats, IngestTopics, WorkerConfig};

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ioto_app::ingest::Counted;
use ioto_app::{
    BatchOutcome, CdrIngest, CdrOutcome, DeadLetter, PreparedCdrs, PreparedSessions, SessionIngest,
};
use ioto_domain::ports::{AssignmentHold, BatchConsumer, Delivery, EventBus, SessionUpdate, UsageWriter};
use ioto_domain::Result;
use tokio::sync::watch;

/// Receives each batch's counted session updates once the batch is committed (live views).
pub type OnCounted = Arc<dyn Fn(&[SessionUpdate]) + Send + Sync>;

pub struct Worker {
    bus: Arc<dyn EventBus>,
    usage: Arc<dyn UsageWriter>,
    sessions: SessionIngest,
    cdrs: CdrIngest,
    config: WorkerConfig,
    stats: Arc<IngestStats>,
    on_counted: Option<OnCounted>,
    /// Bumped when SIMs or devices change sub-customer: the owners are looked up afresh.
    owners_changed: Option<watch::Receiver<u64>>,
}

/// How long an idle worker lets a batch fill after its first event.
const IDLE_WAIT: Duration = Duration::from_millis(5);

/// Waits `d`, or less when shutdown is asked; returns whether to stop.
pub async fn pause(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    let stop = tokio::select! {
    _ = shutdown.wait_for(|s| *s) => true,
    () = tokio::time::sleep(d) => false};
    stop || *shutdown.borrow()
}

impl Worker {
    pub fn new(
        bus: Arc<dyn EventBus>,
        sessions: SessionIngest,
        cdrs: CdrIngest,
        config: WorkerConfig,
        stats: Arc<IngestStats>,
    ) -> Self {
        Self {
            bus,
            usage: sessions.usage(),
            sessions,
            cdrs,
            config,
            stats,
            on_counted: None,
            owners_changed: None,
        }
    }

    pub fn on_counted(mut self, f: OnCounted) -> Self {
        self.on_counted = Some(f);
        self
    }

    /// Looks SIM owners up afresh whenever `changed` moves (SIMs or devices changed
    /// sub-customer), besides every [`OWNERS_FOR`]: usage is counted, and live sessions shown,
    /// for the sub-customer a SIM belongs to within about a second of a move.
    pub fn forget_owners_on(mut self, changed: watch::Receiver<u64>) -> Self {
        self.owners_changed = Some(changed);
        self
    }

    async fn join(&self, shutdown: &mut watch::Receiver<bool>) -> Option<Box<dyn BatchConsumer>> {
        let topics = [
            self.config.topics.sessions.clone(),
            self.config.topics.cdrs.clone(),
        ];
        let mut attempt = 0;
        loop {
            match self
                .bus
                .consume(&topics, &self.config.group, self.config.start)
                .await
            {
                Ok(c) => return Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, group = %self.config.group, "cannot join the ingest group; retrying");
                    attempt += 1;
                    if pause(backoff(attempt), shutdown).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Runs until `shutdown` turns true. A batch in progress at shutdown is not committed; the
    /// next worker counts it (once).
    ///
    /// One batch is written while the next is read and counted on top of it. A batch is written
    /// and committed under a hold on the assignment, so a rebalance waits until it is committed;
    /// when a write fails, the batch counted on top of it is thrown away and both are counted
    /// again from what the store holds.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        tracing::info!(group = %self.config.group, sessions = %self.config.topics.sessions,
            cdrs = %self.config.topics.cdrs, "ingest worker started");
        'member: loop {
            let Some(mut consumer) = self.join(&mut shutdown).await else {
                return Ok(());
            };
            let mut generation = consumer.generation();
            self.forget_progress();
            let mut owners_since = Instant::now();
            let mut inflight: Option<InFlight> = None;
            loop {
                if *shutdown.borrow() {
                    return Ok(());
                }
                let poll_started = Instant::now();
                let max = self.config.batch_max;
                let polled = tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return Ok(()),
                // While a write is in flight the next batch fills until it lands.
                p = async {
                    match &inflight {
                        Some(f) => consumer.poll_until(max, self.config.batch_wait, Box::pin(f.landed.notified())).await,
                        None => consumer.poll(max, IDLE_WAIT.min(self.config.batch_wait)).await}
                } => p};
                let batch = match polled {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(error = %e, "polling the ingest topics failed; retrying");
                        Vec::new()
                    }
                };
                if !batch.is_empty() {
                    self.stats.stages.poll.record(poll_started.elapsed());
                    let fetched = chrono::Utc::now();
                    for d in &batch {
                        self.stats
                            .stages
                            .in_broker
                            .record_since(d.message.published_at, fetched);
                    }
                }
                let batch_generation = batch.first().map_or(generation, |d| d.generation);
                if batch.is_empty() || batch_generation != generation {
                    if let Some(f) = inflight.take() {
                        if self.finish(f, consumer.as_mut(), &mut shutdown).await == Finish::GiveUp {
                            continue 'member;
                        }
                    }
                    if batch_generation != generation {
                        generation = batch_generation;
                        self.stats.rebalances.fetch_add(1, Ordering::Relaxed);
                        self.forget_progress();
                    }
                    if batch.is_empty() {
                        continue;
                    }
                }
                // Owners change when SIMs are reassigned: look them up afresh now and then (only
                // counting uses them, so the batch being written is not affected).
                let moved = self
                    .owners_changed
                    .as_mut()
                    .is_some_and(|rx| rx.has_changed().unwrap_or(false));
                if moved || owners_since.elapsed() > OWNERS_FOR {
                    if let Some(rx) = self.owners_changed.as_mut() {
                        rx.borrow_and_update();
                    }
                    self.sessions.forget_owners();
                    self.cdrs.forget_owners();
                    owners_since = Instant::now();
                }
                // Count the new batch on top of the one in flight (usually landed by now: the
                // poll ends when it lands, unless the batch filled or waited its longest first).
                let mut prepared = self.prepare(&batch).await;
                if let Some(f) = inflight.take() {
                    match self.finish(f, consumer.as_mut(), &mut shutdown).await {
                        Finish::GiveUp => continue 'member,
                        Finish::Landed => {}
                        // Counted on top of a batch that failed: count it again.
                        Finish::Redone => prepared = self.prepare(&batch).await,
                    }
                }
                let prepared = match prepared {
                    Ok(p) => p,
                    Err(_) => {
                        // The store could not be read: count this batch the slow way.
                        if !self
                            .count_until_committed(batch, generation, consumer.as_mut(), &mut shutdown)
                            .await
                        {
                            continue 'member;
                        }
                        continue;
                    }
                };
                let Some(hold) = consumer.hold(generation) else {
                    // The assignment moved on: this batch belongs to whoever owns it now.
                    self.forget_progress();
                    continue;
                };
                self.sessions.stage(&prepared.sessions);
                self.cdrs.stage(&prepared.cdrs);
                let usage = Arc::clone(&self.usage);
                let sessions = Arc::new(prepared.sessions);
                let cdrs = Arc::new(prepared.cdrs);
                let (s, c) = (Arc::clone(&sessions), Arc::clone(&cdrs));
                let landed = Arc::new(tokio::sync::Notify::new());
                let signal = Landed(Arc::clone(&landed));
                let task = tokio::spawn(async move {
                    let _signal = signal;
                    let started = Instant::now();
                    SessionIngest::write(&*usage, &s).await?;
                    CdrIngest::write(&*usage, &c).await?;
                    Ok((started.elapsed(), chrono::Utc::now()))
                });
                inflight = Some(InFlight {
                    task,
                    landed,
                    sessions,
                    cdrs,
                    batch,
                    generation,
                    _hold: hold,
                });
            }
        }
    }

    fn forget_progress(&mut self) {
        self.sessions.forget();
        self.sessions.forget_owners();
        self.cdrs.forget();
        self.cdrs.forget_owners();
    }

    /// Splits a batch by topic and counts both parts (nothing is written).
    async fn prepare(&mut self, batch: &[Delivery]) -> Result<Prepared> {
        let started = Instant::now();
        let (sessions, cdrs) = self.split(batch);
        let prepared = Prepared {
            sessions: self.sessions.prepare(&sessions).await?,
            cdrs: self.cdrs.prepare(&cdrs).await?,
        };
        self.stats
            .sessions_looked_up
            .fetch_add(prepared.sessions.looked_up as u64, Ordering::Relaxed);
        self.stats
            .sessions_known_new
            .fetch_add(prepared.sessions.known_new as u64, Ordering::Relaxed);
        // The store reads inside counting, apart from the counting itself.
        let lookup = prepared.sessions.lookup + prepared.cdrs.lookup;
        self.stats.stages.lookup.record(lookup);
        self.stats
            .stages
            .count
            .record(started.elapsed().saturating_sub(lookup));
        Ok(prepared)
    }

    /// `(source, payload)` of the session rollups and of the CDRs.
    fn split(&self, batch: &[Delivery]) -> (Vec<Sourced>, Vec<Sourced>) {
        let mut sessions = Vec::new();
        let mut cdrs = Vec::new();
        for d in batch {
            let item = (d.source(), d.message.payload.clone());
            if d.message.topic == self.config.topics.cdrs {
                cdrs.push(item);
            } else {
                sessions.push(item);
            }
        }
        (sessions, cdrs)
    }

    /// Waits for the batch being written; when it landed, dead-letters, commits and announces
    /// it. When it failed, counts it again the slow way.
    async fn finish(
        &mut self,
        f: InFlight,
        consumer: &mut dyn BatchConsumer,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Finish {
        let InFlight {
            task,
            landed: _,
            sessions,
            cdrs,
            batch,
            generation,
            _hold: hold,
        } = f;
        let written = match task.await {
            Ok(Ok((took, at))) => {
                self.stats.stages.write.record(took);
                Ok(at)
            }
            Ok(Err(e)) => Err(e),
            Err(e) => Err(ioto_domain::Error::Internal(format!("write task: {e}"))),
        };
        let written_at = match written {
            Ok(at) => at,
            Err(e) => {
                // It may or may not have landed: count it again from what the store holds.
                self.stats.write_retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, events = batch.len(), "writing the batch failed; counting it again");
                drop(hold);
                self.forget_progress();
                return if self
                    .count_until_committed(batch, generation, consumer, shutdown)
                    .await
                {
                    Finish::Redone
                } else {
                    Finish::GiveUp
                };
            }
        };
        let out = self
            .sessions
            .acknowledge(Arc::try_unwrap(sessions).unwrap_or_default());
        let c = self.cdrs.acknowledge(Arc::try_unwrap(cdrs).unwrap_or_default());
        self.visible(&batch, written_at);
        self.conclude(&batch, hold, &out, &c, consumer, shutdown).await
    }

    /// The usage store acknowledged `batch`'s writes at `at`: from then on queries see them.
    fn visible(&self, batch: &[Delivery], at: chrono::DateTime<chrono::Utc>) {
        for d in batch {
            self.stats.stages.visible.record_since(d.message.published_at, at);
        }
    }

    /// A batch's writes landed: publishes its dead letters, commits it (then lets the
    /// assignment go), counts it and announces what it counted.
    async fn conclude(
        &mut self,
        batch: &[Delivery],
        hold: AssignmentHold,
        sessions: &BatchOutcome,
        cdrs: &CdrOutcome,
        consumer: &mut dyn BatchConsumer,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Finish {
        let mut dead = sessions.dead.clone();
        dead.extend(cdrs.dead.iter().cloned());
        if !self.publish_dead(&dead, shutdown).await {
            return Finish::GiveUp;
        }
        let commit_started = Instant::now();
        let committed = consumer.commit(batch).await;
        drop(hold);
        self.stats.stages.commit.record(commit_started.elapsed());
        self.record(batch, sessions, cdrs);
        if let Err(e) = committed {
            // Counted but not committed: it comes again, and is then recognised as counted.
            self.stats.commit_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "commit failed; the batch will be redelivered and recognised");
            self.forget_progress();
            return Finish::Redone;
        }
        let now = chrono::Utc::now();
        for d in batch {
            self.stats
                .stages
                .counted
                .record_since(d.message.published_at, now);
        }
        if let Some(f) = &self.on_counted {
            f(&sessions.counted);
        }
        Finish::Landed
    }

    fn record(&self, batch: &[Delivery], sessions: &BatchOutcome, cdrs: &CdrOutcome) {
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.events.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.stats
            .session_updates_written
            .fetch_add(sessions.written as u64, Ordering::Relaxed);
        self.stats
            .cdrs_written
            .fetch_add(cdrs.written as u64, Ordering::Relaxed);
        self.stats.already_counted.fetch_add(
            (sessions.already_counted + cdrs.already_counted) as u64,
            Ordering::Relaxed,
        );
        self.stats.count_dead(&sessions.dead);
        self.stats.count_dead(&cdrs.dead);
    }

    /// Publishes dead letters, retrying until the broker takes them (before the commit: a crash
    /// in between repeats some, never loses one). `false` on shutdown.
    async fn publish_dead(&self, dead: &[DeadLetter], shutdown: &mut watch::Receiver<bool>) -> bool {
        for d in dead {
            let body = dead_letter_json(d).to_string();
            let mut attempt = 0;
            while let Err(e) = self
                .bus
                .publish(&self.config.topics.dead_letters, &d.source, body.as_bytes())
                .await
            {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "publishing a dead letter failed; retrying");
                if pause(backoff(attempt), shutdown).await {
                    return false;
                }
            }
        }
        true
    }
}

/// An event's payload with where it came from (`topic/partition/offset`).
type Sourced = (String, Vec<u8>);

/// How long SIM owners are cached before they are looked up again.
const OWNERS_FOR: Duration = Duration::from_secs(60);

/// A batch counted on top of the one being written.
struct Prepared {
    sessions: PreparedSessions,
    cdrs: PreparedCdrs,
}

/// How the batch being written ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
    /// Written and committed as counted.
    Landed,
    /// Counted again (after a failed write or commit): what was counted on top of it is void.
    Redone,
    /// Shutdown, or the store stayed away too long: leave the group.
    GiveUp,
}

/// The batch being written, holding the assignment until it is committed.
struct InFlight {
    /// The write, answering how long it took and when the store acknowledged it.
    task: tokio::task::JoinHandle<Result<(Duration, chrono::DateTime<chrono::Utc>)>>,
    /// Notified when the write ended, landed or not: the next batch goes then.
    landed: Arc<tokio::sync::Notify>,
    sessions: Arc<PreparedSessions>,
    cdrs: Arc<PreparedCdrs>,
    batch: Vec<Delivery>,
    generation: u64,
    _hold: AssignmentHold,
}

/// Tells the worker's poll that the write ended, however it ended (landed, failed, panicked).
struct Landed(Arc<tokio::sync::Notify>);

impl Drop for Landed {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::poison::{isolating, Counting};
    use super::*;

    /// Stands in for a usage store that refuses, for its content, any write holding an event
    /// whose payload is `poison` (what a real store does with a value it cannot hold), and is
    /// away once when `away` is set.
    #[derive(Default)]
    struct Refusing {
        written: Vec<String>,
        away: bool,
    }

    #[async_trait::async_trait]
    impl Counting for Refusing {
        type Outcome = CdrOutcome;
        async fn count(&mut self, part: &[Sourced]) -> Result<CdrOutcome> {
            if std::mem::take(&mut self.away) {
                return Err(ioto_domain::Error::Unavailable("away".into()));
            }
            if part.iter().any(|(_, p)| p == b"poison") {
                return Err(ioto_domain::Error::invalid("bytes", "cannot be stored"));
            }
            self.written.extend(part.iter().map(|(s, _)| s.clone()));
            Ok(CdrOutcome {
                written: part.len(),
                ..CdrOutcome::default()
            })
        }
        fn merge(into: &mut CdrOutcome, part: CdrOutcome) {
            into.merge(part);
        }
        fn dead(outcome: &mut CdrOutcome) -> &mut Vec<DeadLetter> {
            &mut outcome.dead
        }
    }

    fn batch(poison_at: &[usize], n: usize) -> Vec<Sourced> {
        (0..n)
            .map(|i| {
                let payload = if poison_at.contains(&i) { "poison" } else { "fine" };
                (format!("t/0/{i}"), payload.as_bytes().to_vec())
            })
            .collect()
    }

    #[tokio::test]
    async fn the_events_a_store_refuses_are_found_and_the_rest_written_in_order() {
        let mut store = Refusing::default();
        let out = isolating(&mut store, &batch(&[3, 4, 37], 50)).await.unwrap();
        assert_eq!(out.written, 47);
        let dead: Vec<&str> = out.dead.iter().map(|d| d.source.as_str()).collect();
        assert_eq!(dead, ["t/0/3", "t/0/4", "t/0/37"]);
        assert!(out.dead.iter().all(|d| d.rejection.code() == "UNSTORABLE"));
        let expected: Vec<String> = (0..50)
            .filter(|i| ![3, 4, 37].contains(i))
            .map(|i| format!("t/0/{i}"))
            .collect();
        assert_eq!(store.written, expected, "everything else, in batch order");
    }

    #[tokio::test]
    async fn an_outage_is_not_mistaken_for_poison() {
        let mut store = Refusing {
            away: true,
            ..Refusing::default()
        };
        let err = isolating(&mut store, &batch(&[], 10)).await.unwrap_err();
        assert!(matches!(err, ioto_domain::Error::Unavailable(_)), "{err}");
        assert!(store.written.is_empty());
    }
}
