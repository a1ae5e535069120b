//! The event bus: topics of keyed messages, consumer groups that share a topic's messages.
//!
//! Semantics every adapter keeps (the contract suite checks them):
//! - messages with the same key arrive in the order they were published;
//! - each consumer group sees every message published to the topic (a new group starts from the
//!   earliest retained message); consumers in one group share the messages between them, and
//!   delivery is at least once (a consumer that joins a group may see messages again that an
//!   earlier member had not yet committed);
//! - publishing to a topic that was never created is an error naming the topic (production Kafka
//!   usually runs with auto-creation off).

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;

use crate::ports::EngineInfo;
use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    /// When the broker took the message (its timestamp), if it keeps one.
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl BusMessage {
    /// What the message holds in memory, in bytes (payload, key and topic): what buses bound
    /// their buffers and retention by.
    pub fn size(&self) -> usize {
        self.payload.len() + self.key.len() + self.topic.len()
    }
}

/// How a topic is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicSpec {
    pub partitions: i32,
    /// How long messages are kept; `None` takes the broker's default. Realtime topics keep
    /// little, so a consumer group that starts at the earliest message replays little.
    pub retention: Option<Duration>,
}

impl TopicSpec {
    pub fn partitions(partitions: i32) -> Self {
        Self {
            partitions,
            retention: None,
        }
    }
}

pub type BusStream = Pin<Box<dyn Stream<Item = Result<BusMessage>> + Send>>;

#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    fn info(&self) -> EngineInfo;
    async fn ping(&self) -> Result<()>;
    /// What the bus runs on (client library and brokers), printed by every bench.
    async fn server_version(&self) -> Result<String>;
    /// Creates the topic when missing; an existing topic is left as it is.
    async fn ensure_topic(&self, topic: &str, spec: TopicSpec) -> Result<()>;
    /// Returns once the broker has acknowledged the message.
    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<()>;
    /// Joins `group` on `topic`. The stream ends only when the bus shuts down.
    async fn subscribe(&self, topic: &str, group: &str) -> Result<BusStream>;
    /// Joins `group` on `topics` (which must exist) as a batch consumer with manual commits.
    async fn consume(&self, topics: &[String], group: &str, start: StartAt)
        -> Result<Box<dyn BatchConsumer>>;
}

/// A message with its place in the log, as a batch consumer receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message: BusMessage,
    pub partition: i32,
    pub offset: i64,
    /// The consumer's [`BatchConsumer::generation`] when the message was received.
    pub generation: u64,
}

/// Keeps a consumer's partitions assigned while held (see [`BatchConsumer::hold`]).
pub type AssignmentHold = Box<dyn Send + Sync>;

impl Delivery {
    /// `topic/partition/offset`, for people tracing an event.
    pub fn source(&self) -> String {
        format!("{}/{}/{}", self.message.topic, self.partition, self.offset)
    }
}

/// Completes when the caller of [`BatchConsumer::poll_until`] has enough: the poll then returns
/// what has arrived without waiting further.
pub type Enough<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// A consumer-group member that takes messages in batches and says itself when they are done.
///
/// Nothing is marked done until [`BatchConsumer::commit`]: after a crash, or when partitions move
/// to another member, delivery resumes after the last commit, so work that was not committed is
/// delivered again (at least once). Callers that cache per-partition state drop it whenever
/// [`BatchConsumer::generation`] changes: another member may have moved the same partitions on
/// in between.
#[async_trait]
pub trait BatchConsumer: Send {
    /// Waits for a first message up to `wait`, then collects more until `max` are there or `wait`
    /// has passed since the first. Returns what arrived, possibly nothing, all of one generation.
    /// Messages received before a change of assignment are left out (they are delivered again,
    /// from the last commit, to whoever owns their partition now).
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        self.poll_until(max, wait, Box::pin(std::future::pending())).await
    }
    /// As [`BatchConsumer::poll`], but returns what has arrived as soon as `enough` completes
    /// (looked at before each wait), without waiting out `wait`: a worker ends a batch the moment
    /// the write before it lands.
    async fn poll_until(&mut self, max: usize, wait: Duration, enough: Enough<'_>) -> Result<Vec<Delivery>>;
    /// Marks `done` (and everything before them in their partitions) as processed for the group.
    /// Fails when this member no longer owns a partition of them.
    async fn commit(&mut self, done: &[Delivery]) -> Result<()>;
    /// Changes whenever this member's assigned partitions change.
    fn generation(&self) -> u64;
    /// Keeps the partitions of `generation` assigned to this member until the returned hold is
    /// dropped: a rebalance waits for it, so no other member starts on a batch this one is still
    /// writing and committing. `None` when the assignment has already changed since.
    fn hold(&self, generation: u64) -> Option<AssignmentHold>;
}

/// Where a batch consumer starts in a topic its group has never committed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Earliest,
    Latest,
}
