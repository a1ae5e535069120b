//! The telemetry source inside one process: what `ioto demo`'s device simulator publishes to
//! when no MQTT broker is configured.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use ioto_domain::ports::{EngineInfo, TelemetryMessage, TelemetrySource};
use ioto_domain::{Error, Result};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// Messages a group may have waiting; publishing waits when a group is this far behind.
const QUEUE: usize = 4096;

/// Bytes (topics and payloads) a group may have waiting; publishing also waits when a group
/// holds this much, so what the queue keeps is bounded by bytes as well as by messages. A
/// message larger than this waits until the group's queue is empty, then goes alone.
const QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// One queue per group, shared by the group's subscribers. Messages published before a group
/// subscribes are not kept for it (as on a broker without persistent sessions).
#[derive(Default)]
pub struct InProcessTelemetry {
    groups: Mutex<HashMap<String, Group>>,
}

/// A message waiting in a group's queue, with the bytes it holds of the group's budget
/// (returned when a subscriber takes it).
type Queued = (TelemetryMessage, OwnedSemaphorePermit);

#[derive(Clone)]
struct Group {
    tx: mpsc::Sender<Queued>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Queued>>>,
    budget: Arc<Semaphore>,
}

impl InProcessTelemetry {
    fn group(&self, name: &str) -> Group {
        let mut groups = self
            .groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        groups
            .entry(name.to_owned())
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel(QUEUE);
                Group {
                    tx,
                    rx: Arc::new(tokio::sync::Mutex::new(rx)),
                    budget: Arc::new(Semaphore::new(QUEUE_BYTES)),
                }
            })
            .clone()
    }

    fn senders(&self) -> Vec<(mpsc::Sender<Queued>, Arc<Semaphore>)> {
        self.groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .map(|g| (g.tx.clone(), Arc::clone(&g.budget)))
            .collect()
    }
}

#[async_trait]
impl TelemetrySource for InProcessTelemetry {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            engine: "in-process",
            location: "simulated feed".into(),
        }
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn subscribe(&self, group: &str) -> Result<BoxStream<'static, TelemetryMessage>> {
        let rx = self.group(group).rx;
        // Each subscriber takes the next message of its group's queue.
        Ok(futures::stream::unfold(rx, |rx| async move {
            let next = rx.lock().await.recv().await;
            // Taken off the queue: its bytes go back to the group's budget.
            next.map(|(m, _bytes)| (m, rx))
        })
        .boxed())
    }

    async fn publish(&self, messages: &[(String, Vec<u8>)]) -> Result<()> {
        let closed = || Error::Internal("in-process telemetry queue closed".into());
        for (tx, budget) in self.senders() {
            for (topic, payload) in messages {
                let bytes = (topic.len() + payload.len()).clamp(1, QUEUE_BYTES);
                let held = Arc::clone(&budget)
                    .acquire_many_owned(u32::try_from(bytes).unwrap_or(u32::MAX))
                    .await
                    .map_err(|_| closed())?;
                tx.send((TelemetryMessage::new(topic.clone(), payload.clone(), None), held))
                    .await
                    .map_err(|_| closed())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A group that does not keep up holds at most `QUEUE_BYTES` of messages: publishing waits
    /// beyond it and goes on once a subscriber takes a message.
    #[tokio::test]
    async fn a_group_behind_holds_at_most_its_bytes() {
        let source = Arc::new(InProcessTelemetry::default());
        let mut slow = source.subscribe("slow").await.unwrap();
        let mib = vec![7u8; 1024 * 1024 - 16];
        for i in 0..4 {
            source
                .publish(&[(format!("t/{i:02}"), mib.clone())])
                .await
                .unwrap();
        }
        let fifth = {
            let source = Arc::clone(&source);
            let mib = mib.clone();
            tokio::spawn(async move { source.publish(&[("t/04".into(), mib)]).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!fifth.is_finished(), "a fifth MiB waits: four are held");
        let first = slow.next().await.unwrap();
        assert_eq!(first.topic, "t/00");
        tokio::time::timeout(Duration::from_secs(10), fifth)
            .await
            .expect("taking one lets the fifth in")
            .unwrap()
            .unwrap();
        for i in 1..5 {
            assert_eq!(slow.next().await.unwrap().topic, format!("t/{i:02}"));
        }
    }
}
