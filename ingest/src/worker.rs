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

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ioto_app::{
    BatchOutcome, CdrIngest, CdrOutcome, DeadLetter, PreparedCdrs, PreparedSessions, SessionIngest,
};
use ioto_domain::ports::{
    AssignmentHold, BatchConsumer, Delivery, EventBus, SessionUpdate, StartAt, TopicSpec, UsageWriter,
};
use ioto_domain::Result;
use tokio::sync::watch;

/// The topics the worker reads and writes, with the deployment's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestTopics {
    pub sessions: String,
    pub cdrs: String,
    pub dead_letters: String,
}

impl IngestTopics {
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            sessions: format!("{prefix}ioto.sessions"),
            cdrs: format!("{prefix}ioto.cdrs"),
            dead_letters: format!("{prefix}ioto.dead-letters"),
        }
    }

    /// Creates the topics when missing (`partitions` for sessions and CDRs).
    pub async fn ensure(&self, bus: &dyn EventBus, partitions: i32) -> Result<()> {
        bus.ensure_topic(&self.sessions, TopicSpec::partitions(partitions))
            .await?;
        bus.ensure_topic(&self.cdrs, TopicSpec::partitions(partitions))
            .await?;
        bus.ensure_topic(&self.dead_letters, TopicSpec::partitions(1))
            .await
    }
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub topics: IngestTopics,
    /// Consumer group; workers of one deployment share it and split the partitions.
    pub group: String,
    /// Most events in one batch.
    pub batch_max: usize,
    /// The longest a batch waits to fill after its first event. The wait adapts below it: with
    /// no write in flight a batch goes as soon as its first events are there (nothing is gained
    /// by waiting); while a write is in flight it fills until that write lands and goes the
    /// moment it does, so batches grow with the load and the store's latency, never past this.
    pub batch_wait: Duration,
    /// Where a group that never committed starts.
    pub start: StartAt,
}

impl WorkerConfig {
    pub fn new(topic_prefix: &str) -> Self {
        Self {
            topics: IngestTopics::with_prefix(topic_prefix),
            group: format!("{topic_prefix}ioto-ingest"),
            batch_max: 20_000,
            batch_wait: Duration::from_millis(200),
            start: StartAt::Earliest,
        }
    }
}

/// Counters the worker keeps, for `/metrics` and the bench.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub batches: AtomicU64,
    pub events: AtomicU64,
    pub session_updates_written: AtomicU64,
    pub cdrs_written: AtomicU64,
    /// Redelivered events recognised and skipped.
    pub already_counted: AtomicU64,
    /// Sessions new to the worker whose progress was asked of the usage store.
    pub sessions_looked_up: AtomicU64,
    /// Sessions new to the worker that its filter showed were never stored (not asked).
    pub sessions_known_new: AtomicU64,
    /// Failed attempts to write a batch (each was retried).
    pub write_retries: AtomicU64,
    pub commit_failures: AtomicU64,
    pub rebalances: AtomicU64,
    /// Times the worker ended unexpectedly and was started again.
    pub restarts: AtomicU64,
    /// Where events' time goes, stage by stage (see [`crate::stages`]).
    pub stages: crate::stages::Stages,
    dead_letters: Mutex<BTreeMap<&'static str, u64>>,
    /// Why the worker is not running (`None` while it runs).
    down: Mutex<Option<String>>,
}

impl IngestStats {
    /// Records that the worker runs (`None`) or why it stopped.
    pub fn set_running(&self, down: Option<String>) {
        *self
            .down
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = down;
    }

    /// Why the worker is not running, if it is not.
    pub fn down(&self) -> Option<String> {
        self.down
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Dead letters so far, by reason code.
    pub fn dead_letters(&self) -> BTreeMap<&'static str, u64> {
        self.dead_letters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn count_dead(&self, dead: &[DeadLetter]) {
        let mut m = self
            .dead_letters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for d in dead {
            *m.entry(d.rejection.code()).or_default() += 1;
        }
    }
}

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

/// The dead-letter message: where the event was, why it was refused, and its bytes.
pub fn dead_letter_json(d: &DeadLetter) -> serde_json::Value {
    let mut parts = d.source.rsplitn(3, '/');
    let offset = parts.next().and_then(|o| o.parse::<i64>().ok());
    let partition = parts.next().and_then(|p| p.parse::<i32>().ok());
    let topic = parts.next().unwrap_or(&d.source);
    let mut v = serde_json::json!({
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "reason": d.rejection.code(),
        "detail": d.rejection.to_string(),
        "payload": String::from_utf8_lossy(&d.payload),
    });
    if std::str::from_utf8(&d.payload).is_err() {
        use base64::Engine as _;
        v["payload_base64"] = base64::engine::general_purpose::STANDARD
            .encode(&d.payload)
            .into();
    }
    v
}

/// Waits `d`, or less when shutdown is asked; returns whether to stop.
pub async fn pause(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    let stop = tokio::select! {
        _ = shutdown.wait_for(|s| *s) => true,
        () = tokio::time::sleep(d) => false,
    };
    stop || *shutdown.borrow()
}

/// Backoff before the `attempt`-th retry: 100 ms doubling to 5 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(5))
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
                            None => consumer.poll(max, IDLE_WAIT.min(self.config.batch_wait)).await,
                        }
                    } => p,
                };
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
                    usage.write_session_updates(&s.updates).await?;
                    if !c.records.is_empty() {
                        usage.write_cdrs(&c.records).await?;
                    }
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
        self.sessions.forget_progress();
        self.sessions.forget_owners();
        self.cdrs.forget_pending();
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

    /// The slow path: counts, writes and commits one batch on its own, retrying until the store
    /// takes it. `false`: shutdown, or retrying outlasted the group's patience.
    async fn count_until_committed(
        &mut self,
        batch: Vec<Delivery>,
        generation: u64,
        consumer: &mut dyn BatchConsumer,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let (sessions, cdrs) = self.split(&batch);
        let started = Instant::now();
        let patience = crate::kafka::MAX_POLL_INTERVAL.mul_f64(0.8);
        let mut attempt = 0;
        loop {
            let Some(hold) = consumer.hold(generation) else {
                // The assignment moved on: whoever owns the partitions now counts it.
                self.forget_progress();
                return true;
            };
            let counted = async {
                let s = isolating(&mut self.sessions, &sessions).await?;
                let c = isolating(&mut self.cdrs, &cdrs).await?;
                Ok::<_, ioto_domain::Error>((s, c))
            }
            .await;
            match counted {
                Ok((s, c)) => {
                    self.visible(&batch, chrono::Utc::now());
                    return self.conclude(&batch, hold, &s, &c, consumer, shutdown).await != Finish::GiveUp;
                }
                Err(e) => {
                    drop(hold);
                    self.forget_progress();
                    self.stats.write_retries.fetch_add(1, Ordering::Relaxed);
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, events = batch.len(),
                        "counting the batch failed; it is retried, nothing is committed meanwhile");
                    if pause(backoff(attempt), shutdown).await {
                        return false;
                    }
                    if started.elapsed() > patience {
                        tracing::warn!(
                            "the usage store stayed unreachable; rejoining the group from the last commit"
                        );
                        return false;
                    }
                }
            }
        }
    }
}

/// An event's payload with where it came from (`topic/partition/offset`).
type Sourced = (String, Vec<u8>);

/// What counts a part of a batch and writes it: session or CDR ingest.
#[async_trait::async_trait]
trait Counting: Send {
    type Outcome: Default + Send;
    async fn count(&mut self, part: &[Sourced]) -> Result<Self::Outcome>;
    fn merge(into: &mut Self::Outcome, part: Self::Outcome);
    fn dead(outcome: &mut Self::Outcome) -> &mut Vec<DeadLetter>;
}

#[async_trait::async_trait]
impl Counting for SessionIngest {
    type Outcome = BatchOutcome;
    async fn count(&mut self, part: &[Sourced]) -> Result<BatchOutcome> {
        self.process(part).await
    }
    fn merge(into: &mut BatchOutcome, part: BatchOutcome) {
        into.merge(part);
    }
    fn dead(outcome: &mut BatchOutcome) -> &mut Vec<DeadLetter> {
        &mut outcome.dead
    }
}

#[async_trait::async_trait]
impl Counting for CdrIngest {
    type Outcome = CdrOutcome;
    async fn count(&mut self, part: &[Sourced]) -> Result<CdrOutcome> {
        self.process(part).await
    }
    fn merge(into: &mut CdrOutcome, part: CdrOutcome) {
        into.merge(part);
    }
    fn dead(outcome: &mut CdrOutcome) -> &mut Vec<DeadLetter> {
        &mut outcome.dead
    }
}

/// Counts and writes `items` in order. When the store refuses a part for its content
/// (`InvalidInput`), the part is halved and each half tried in turn, so a single event the store
/// cannot hold is found and dead-lettered as `UNSTORABLE` while everything around it counts.
/// Any other error (an outage) ends the attempt: the caller retries the whole batch, and what
/// landed meanwhile is recognised as counted.
async fn isolating<C: Counting>(counting: &mut C, items: &[Sourced]) -> Result<C::Outcome> {
    let mut out = C::Outcome::default();
    if items.is_empty() {
        return Ok(out);
    }
    let mut parts: Vec<&[Sourced]> = vec![items];
    while let Some(part) = parts.pop() {
        match counting.count(part).await {
            Ok(o) => C::merge(&mut out, o),
            Err(ioto_domain::Error::InvalidInput { .. }) if part.len() > 1 => {
                let (first, second) = part.split_at(part.len() / 2);
                parts.push(second);
                parts.push(first);
            }
            Err(ioto_domain::Error::InvalidInput { field, reason }) => {
                let (source, payload) = &part[0];
                tracing::warn!(source = %source, field = %field, reason = %reason,
                    "the usage store refused one event; it goes to the dead-letter topic");
                C::dead(&mut out).push(DeadLetter {
                    source: source.clone(),
                    rejection: ioto_domain::usage::Rejection::Unstorable {
                        detail: format!("{field}: {reason}"),
                    },
                    payload: payload.clone(),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

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
