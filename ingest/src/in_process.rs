//! The in-process event bus: one process, no broker. Messages live in memory with bounded
//! retention per topic; each consumer group keeps its own offset.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::stream;
use ioto_domain::ports::{BusMessage, BusStream, EngineInfo, EventBus, TopicSpec};
use ioto_domain::{Error, Result};
use tokio::sync::Notify;

/// Messages kept per topic before the oldest are dropped for every group.
pub const DEFAULT_RETENTION: usize = 100_000;

#[derive(Default)]
struct Topic {
    /// Offset of `messages[0]`.
    base: u64,
    messages: VecDeque<BusMessage>,
    /// Next offset per consumer group.
    groups: HashMap<String, u64>,
}

struct Shared {
    topics: Mutex<HashMap<String, Topic>>,
    notify: Notify,
    retention: usize,
}

#[derive(Clone)]
pub struct InProcessBus {
    shared: Arc<Shared>,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::with_retention(DEFAULT_RETENTION)
    }
}

impl InProcessBus {
    pub fn with_retention(retention: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                topics: Mutex::new(HashMap::new()),
                notify: Notify::new(),
                retention: retention.max(1),
            }),
        }
    }

    fn topics(&self) -> MutexGuard<'_, HashMap<String, Topic>> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.shared
            .topics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the next message for `group`, if one is waiting.
    fn take(&self, topic: &str, group: &str) -> Option<BusMessage> {
        let mut topics = self.topics();
        let t = topics.get_mut(topic)?;
        let base = t.base;
        let next = t.groups.entry(group.to_owned()).or_insert(base);
        if *next < base {
            *next = base;
        }
        let idx = usize::try_from(*next - base).ok()?;
        let msg = t.messages.get(idx)?.clone();
        *next += 1;
        Some(msg)
    }
}

fn unknown_topic(topic: &str) -> Error {
    Error::invalid(
        "topic",
        format!("topic '{topic}' does not exist; create it first"),
    )
}

#[async_trait]
impl EventBus for InProcessBus {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            engine: "in-process",
            location: "this process".into(),
        }
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    /// Retention here is by count (`retention` messages per topic), whatever the spec says.
    async fn ensure_topic(&self, topic: &str, _spec: TopicSpec) -> Result<()> {
        self.topics().entry(topic.to_owned()).or_default();
        Ok(())
    }

    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<()> {
        {
            let mut topics = self.topics();
            let t = topics.get_mut(topic).ok_or_else(|| unknown_topic(topic))?;
            t.messages.push_back(BusMessage {
                topic: topic.to_owned(),
                key: key.to_owned(),
                payload: payload.to_vec(),
            });
            while t.messages.len() > self.shared.retention {
                t.messages.pop_front();
                t.base += 1;
            }
        }
        self.shared.notify.notify_waiters();
        Ok(())
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<BusStream> {
        {
            let mut topics = self.topics();
            let t = topics.get_mut(topic).ok_or_else(|| unknown_topic(topic))?;
            let base = t.base;
            t.groups.entry(group.to_owned()).or_insert(base);
        }
        let state = (self.clone(), topic.to_owned(), group.to_owned());
        Ok(Box::pin(stream::unfold(
            state,
            |(bus, topic, group)| async move {
                loop {
                    let shared = Arc::clone(&bus.shared);
                    let notified = shared.notify.notified();
                    tokio::pin!(notified);
                    // Register before looking, so a publish between the look and the wait is not missed.
                    notified.as_mut().enable();
                    if let Some(msg) = bus.take(&topic, &group) {
                        return Some((Ok(msg), (bus, topic, group)));
                    }
                    notified.await;
                }
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn retention_drops_the_oldest_for_every_group() {
        let bus = InProcessBus::with_retention(2);
        bus.ensure_topic("t", TopicSpec::partitions(1)).await.unwrap();
        for k in ["a", "b", "c"] {
            bus.publish("t", k, k.as_bytes()).await.unwrap();
        }
        let mut s = bus.subscribe("t", "g").await.unwrap();
        assert_eq!(s.next().await.unwrap().unwrap().key, "b");
        assert_eq!(s.next().await.unwrap().unwrap().key, "c");
    }
}
