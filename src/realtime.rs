//! Realtime fan-out: mutations publish events to the bus; every server instance consumes the topic
//! in its own consumer group and hands events to its WebSocket subscribers. A subscriber connected
//! to any instance therefore sees changes made through any other.

use std::sync::Arc;

use chrono::Utc;
use futures::stream::{self, BoxStream};
use futures::StreamExt;
use ioto_domain::events::{DirectoryEvent, DIRECTORY_TOPIC};
use ioto_domain::ports::{EventBus, TopicSpec};
use ioto_resolvers::Realtime;
use tokio::sync::{broadcast, watch};

pub struct BusRealtime {
    bus: Arc<dyn EventBus>,
    topic: String,
    local: broadcast::Sender<DirectoryEvent>,
    shutdown: watch::Receiver<bool>,
}

impl BusRealtime {
    /// Creates the topic if needed and starts this instance's consumer.
    pub async fn start(
        bus: Arc<dyn EventBus>,
        topic_prefix: &str,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Arc<Self>> {
        let topic = format!("{topic_prefix}{DIRECTORY_TOPIC}");
        // Live events only: an hour of retention bounds what a new instance's group replays.
        bus.ensure_topic(
            &topic,
            TopicSpec {
                partitions: 3,
                retention: Some(std::time::Duration::from_secs(3600)),
            },
        )
        .await?;
        let (local, _) = broadcast::channel(1024);
        let group = format!("ioto-realtime-{}", uuid::Uuid::new_v4());
        let mut incoming = bus.subscribe(&topic, &group).await?;
        let started = Utc::now() - chrono::Duration::seconds(5);
        let tx = local.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    msg = incoming.next() => match msg {
                        None => break,
                        Some(Err(e)) => tracing::warn!(error = %e, "realtime consumer error"),
                        Some(Ok(m)) => match serde_json::from_slice::<DirectoryEvent>(&m.payload) {
                            // A new group starts at the earliest retained event; only live ones matter.
                            Ok(ev) if ev.at >= started => { let _ = tx.send(ev); }
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, topic = %m.topic, "undecodable directory event skipped"),
                        },
                    },
                }
            }
        });
        Ok(Arc::new(Self {
            bus,
            topic,
            local,
            shutdown,
        }))
    }
}

impl Realtime for BusRealtime {
    fn directory_changed(&self, event: DirectoryEvent) {
        let bus = Arc::clone(&self.bus);
        let topic = self.topic.clone();
        tokio::spawn(async move {
            let payload = match serde_json::to_vec(&event) {
                Ok(p) => p,
                Err(e) => return tracing::error!(error = %e, "encoding directory event"),
            };
            if let Err(e) = bus.publish(&topic, &event.tenant_id.to_string(), &payload).await {
                tracing::error!(error = %e, ?event, "directory event not published; subscribers will miss it");
            }
        });
    }

    fn directory_events(&self) -> BoxStream<'static, DirectoryEvent> {
        let rx = self.local.subscribe();
        let mut stop = self.shutdown.clone();
        let events = stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => return Some((ev, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "a slow subscriber skipped directory events");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        // Shutdown completes every subscription, so clients get `complete` rather than a cut socket.
        events
            .take_until(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .boxed()
    }
}
