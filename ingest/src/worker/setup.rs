//! What a worker is set up with and what it tells: its topics, its settings, its counters, and the
//! dead-letter payload.

use super::*;
use ioto_app::DeadLetter;
use ioto_domain::ports::{EventBus, StartAt, TopicSpec};
use ioto_domain::Result;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

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

    pub(super) fn count_dead(&self, dead: &[DeadLetter]) {
        let mut m = self
            .dead_letters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for d in dead {
            *m.entry(d.rejection.code()).or_default() += 1;
        }
    }
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
        "payload": String::from_utf8_lossy(&d.payload)});
    if std::str::from_utf8(&d.payload).is_err() {
        use base64::Engine as _;
        v["payload_base64"] = base64::engine::general_purpose::STANDARD
            .encode(&d.payload)
            .into();
    }
    v
}

/// Backoff before the `attempt`-th retry: 100 ms doubling to 5 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(5))
}
