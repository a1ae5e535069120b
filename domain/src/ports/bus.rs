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
    /// Creates the topic when missing; an existing topic is left as it is.
    async fn ensure_topic(&self, topic: &str, spec: TopicSpec) -> Result<()>;
    /// Returns once the broker has acknowledged the message.
    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<()>;
    /// Joins `group` on `topic`. The stream ends only when the bus shuts down.
    async fn subscribe(&self, topic: &str, group: &str) -> Result<BusStream>;
}
