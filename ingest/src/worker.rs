//! The ingest worker: a consumer-group member that takes session rollups and CDRs off the bus in
//! batches, counts them into the usage store, sends what cannot be counted to the dead-letter
//! topic, and only then commits the batch.
//!
//! ```text
//! poll (≤ batch_max, ≤ batch_wait) ─► count (usage store acks) ─► dead letters (broker acks) ─► commit
//!        ▲                                   │ store down: wait and retry the same batch
//!        └── rebalance: drop cached progress ┘
//! ```
//!
//! Effectively once: a batch is committed only after its writes were acknowledged, so a crash at
//! any point redelivers at most the uncommitted batch, and the counting core recognises what of it
//! had already landed (progress is recovered from the store). After a rebalance the cached progress
//! is dropped, because another member may have counted the same sessions meanwhile.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ioto_domain::ports::{BatchConsumer, Delivery, EventBus, SessionUpdate, StartAt, TopicSpec};
use ioto_domain::services::{BatchOutcome, CdrIngest, DeadLetter, SessionIngest};
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
    /// How long a batch waits to fill after its first event.
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
    /// Failed attempts to write a batch (each was retried).
    pub write_retries: AtomicU64,
    pub commit_failures: AtomicU64,
    pub rebalances: AtomicU64,
    dead_letters: Mutex<BTreeMap<&'static str, u64>>,
}

impl IngestStats {
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
    sessions: SessionIngest,
    cdrs: CdrIngest,
    config: WorkerConfig,
    stats: Arc<IngestStats>,
    on_counted: Option<OnCounted>,
}

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
async fn pause(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    let stop = tokio::select! {
        _ = shutdown.wait_for(|s| *s) => true,
        () = tokio::time::sleep(d) => false,
    };
    stop || *shutdown.borrow()
}

/// Backoff before the `attempt`-th retry: 100 ms doubling to 5 s.
fn backoff(attempt: u32) -> Duration {
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
            sessions,
            cdrs,
            config,
            stats,
            on_counted: None,
        }
    }

    pub fn on_counted(mut self, f: OnCounted) -> Self {
        self.on_counted = Some(f);
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
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        tracing::info!(group = %self.config.group, sessions = %self.config.topics.sessions,
            cdrs = %self.config.topics.cdrs, "ingest worker started");
        'member: loop {
            let Some(mut consumer) = self.join(&mut shutdown).await else {
                return Ok(());
            };
            let mut generation = consumer.generation();
            self.forget_progress();
            loop {
                if *shutdown.borrow() {
                    return Ok(());
                }
                let polled = tokio::select! {
                    _ = shutdown.wait_for(|s| *s) => return Ok(()),
                    p = consumer.poll(self.config.batch_max, self.config.batch_wait) => p,
                };
                if consumer.generation() != generation {
                    generation = consumer.generation();
                    self.stats.rebalances.fetch_add(1, Ordering::Relaxed);
                    self.forget_progress();
                }
                let batch = match polled {
                    Ok(b) if b.is_empty() => continue,
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(error = %e, "polling the ingest topics failed; retrying");
                        continue;
                    }
                };
                let Some(counted) = self.count_until_written(&batch, &mut shutdown).await else {
                    if *shutdown.borrow() {
                        return Ok(());
                    }
                    // Waited so long that the group may have moved on: join again from the last commit.
                    tracing::warn!(
                        "the usage store stayed unreachable; rejoining the group from the last commit"
                    );
                    continue 'member;
                };
                if let Err(e) = consumer.commit(&batch).await {
                    // Counted but not committed: it comes again, and is then recognised as counted.
                    self.stats.commit_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "commit failed; the batch will be redelivered and recognised");
                    self.forget_progress();
                    continue;
                }
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                self.stats.events.fetch_add(batch.len() as u64, Ordering::Relaxed);
                if let Some(f) = &self.on_counted {
                    f(&counted);
                }
            }
        }
    }

    fn forget_progress(&mut self) {
        self.sessions.forget_progress();
        self.sessions.forget_owners();
        self.cdrs.forget_owners();
    }

    /// Counts the batch and dead-letters what cannot be counted, retrying until both are
    /// acknowledged. `None` on shutdown, or when retrying outlasted the group's patience.
    async fn count_until_written(
        &mut self,
        batch: &[Delivery],
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<Vec<SessionUpdate>> {
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
        let started = Instant::now();
        let patience = crate::kafka::MAX_POLL_INTERVAL.mul_f64(0.8);
        let mut attempt = 0;
        loop {
            match self.count_once(&sessions, &cdrs).await {
                Ok(updates) => return Some(updates),
                Err(e) => {
                    self.stats.write_retries.fetch_add(1, Ordering::Relaxed);
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, events = batch.len(),
                        "counting the batch failed; it is retried, nothing is committed meanwhile");
                    if pause(backoff(attempt), shutdown).await || started.elapsed() > patience {
                        return None;
                    }
                }
            }
        }
    }

    async fn count_once(
        &mut self,
        sessions: &[(String, Vec<u8>)],
        cdrs: &[(String, Vec<u8>)],
    ) -> Result<Vec<SessionUpdate>> {
        let mut dead = Vec::new();
        let mut updates = Vec::new();
        if !sessions.is_empty() {
            let BatchOutcome {
                written,
                already_counted,
                dead: d,
                counted,
            } = self.sessions.process(sessions).await?;
            self.stats
                .session_updates_written
                .fetch_add(written as u64, Ordering::Relaxed);
            self.stats
                .already_counted
                .fetch_add(already_counted as u64, Ordering::Relaxed);
            dead.extend(d);
            updates = counted;
        }
        if !cdrs.is_empty() {
            let out = self.cdrs.process(cdrs).await?;
            self.stats
                .cdrs_written
                .fetch_add(out.written as u64, Ordering::Relaxed);
            self.stats
                .already_counted
                .fetch_add(out.already_counted as u64, Ordering::Relaxed);
            dead.extend(out.dead);
        }
        // Dead letters are published before the commit: a crash in between repeats some, never
        // loses one.
        for d in &dead {
            let body = dead_letter_json(d).to_string();
            self.bus
                .publish(&self.config.topics.dead_letters, &d.source, body.as_bytes())
                .await?;
        }
        self.stats.count_dead(&dead);
        Ok(updates)
    }
}
