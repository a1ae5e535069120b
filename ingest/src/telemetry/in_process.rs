//! The telemetry source inside one process: what `ioto demo`'s device simulator publishes to
//! when no MQTT broker is configured.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use ioto_domain::ports::{EngineInfo, TelemetryMessage, TelemetrySource};
use ioto_domain::{Error, Result};
use tokio::sync::mpsc;

/// Messages a group may have waiting; publishing waits when a group is this far behind.
const QUEUE: usize = 4096;

/// One queue per group, shared by the group's subscribers. Messages published before a group
/// subscribes are not kept for it (as on a broker without persistent sessions).
#[derive(Default)]
pub struct InProcessTelemetry {
    groups: Mutex<HashMap<String, Group>>,
}

#[derive(Clone)]
struct Group {
    tx: mpsc::Sender<TelemetryMessage>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<TelemetryMessage>>>,
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
                }
            })
            .clone()
    }

    fn senders(&self) -> Vec<mpsc::Sender<TelemetryMessage>> {
        self.groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .map(|g| g.tx.clone())
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
            next.map(|m| (m, rx))
        })
        .boxed())
    }

    async fn publish(&self, messages: &[(String, Vec<u8>)]) -> Result<()> {
        for tx in self.senders() {
            for (topic, payload) in messages {
                tx.send(TelemetryMessage::new(topic.clone(), payload.clone(), None))
                    .await
                    .map_err(|_| Error::Internal("in-process telemetry queue closed".into()))?;
            }
        }
        Ok(())
    }
}
