//! Realtime fan-out: mutations publish events to the bus; every server instance consumes the
//! topics in its own consumer group and hands events to its WebSocket subscribers. A subscriber
//! connected to any instance therefore sees changes made through any other.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream};
use futures::StreamExt;
use ioto_domain::events::{
    DirectoryEvent, FleetEvent, UsageEvent, DIRECTORY_TOPIC, FLEET_TOPIC, USAGE_EVENTS_TOPIC,
};
use ioto_domain::ports::{EventBus, FleetNotifier, TopicSpec};
use ioto_resolvers::Realtime;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

/// Version of the realtime messages instances exchange (`docs/events.md`, "Realtime topics").
/// Bumped when a message's shape changes; an instance skips (and logs) messages of another
/// version, so a rolling upgrade degrades to missed live events, never to misread ones.
pub const REALTIME_VERSION: u32 = 1;

/// What goes on a realtime topic: `{"v": 1, "event": {…}}`.
#[derive(Serialize)]
struct Outgoing<'a, T> {
    v: u32,
    event: &'a T,
}

#[derive(serde::Deserialize)]
struct Incoming<T> {
    v: u32,
    event: serde_json::Value,
    #[serde(skip)]
    _kind: std::marker::PhantomData<T>,
}

/// Reads one realtime message: the event, or why it was skipped.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, String> {
    let m: Incoming<T> =
        serde_json::from_slice(payload).map_err(|e| format!("not a realtime message ({e})"))?;
    if m.v != REALTIME_VERSION {
        return Err(format!(
            "version {} (this instance reads version {REALTIME_VERSION})",
            m.v
        ));
    }
    serde_json::from_value(m.event).map_err(|e| format!("undecodable event ({e})"))
}

/// Writes one realtime message.
pub fn encode<T: Serialize>(event: &T) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&Outgoing {
        v: REALTIME_VERSION,
        event,
    })
}

/// One topic's live events on this instance.
struct Channel<T> {
    topic: String,
    local: broadcast::Sender<T>,
}

pub struct BusRealtime {
    bus: Arc<dyn EventBus>,
    directory: Channel<DirectoryEvent>,
    fleet: Channel<FleetEvent>,
    usage: Channel<UsageEvent>,
    /// Usage events (key, payload) to the one task that publishes them, one after the other.
    usage_out: tokio::sync::mpsc::UnboundedSender<(String, Vec<u8>)>,
    /// The key of every usage event this instance publishes: one partition, so its events reach
    /// every consumer in the order they were announced. A message holds many SIMs' updates;
    /// keyed by its first SIM, a SIM's later update could travel in another partition than its
    /// earlier one and overtake it.
    usage_key: String,
    shutdown: watch::Receiver<bool>,
}

/// Creates the topic if needed and, when `consume`, starts this instance's consumer of it.
async fn channel<T>(
    bus: &Arc<dyn EventBus>,
    topic: String,
    at: fn(&T) -> DateTime<Utc>,
    shutdown: &watch::Receiver<bool>,
    consume: bool,
) -> anyhow::Result<Channel<T>>
where
    T: DeserializeOwned + Clone + Send + 'static,
{
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
    if !consume {
        return Ok(Channel { topic, local });
    }
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
                    Some(Ok(m)) => match decode::<T>(&m.payload) {
                        // A new group starts at the earliest retained event; only live ones matter.
                        Ok(ev) if at(&ev) >= started => { let _ = tx.send(ev); }
                        Ok(_) => {}
                        Err(why) => tracing::warn!(topic = %m.topic, %why, "realtime message skipped"),
                    },
                },
            }
        }
    });
    Ok(Channel { topic, local })
}

impl BusRealtime {
    /// Creates the topics if needed and starts this instance's consumers.
    pub async fn start(
        bus: Arc<dyn EventBus>,
        topic_prefix: &str,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Arc<Self>> {
        Self::open(bus, topic_prefix, shutdown, true).await
    }

    /// Publishing, and following fleet events only (`ioto ingest` has no subscribers; its
    /// worker looks SIM owners up afresh when SIMs or devices change sub-customer).
    pub async fn publisher(
        bus: Arc<dyn EventBus>,
        topic_prefix: &str,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Arc<Self>> {
        Self::open(bus, topic_prefix, shutdown, false).await
    }

    async fn open(
        bus: Arc<dyn EventBus>,
        topic_prefix: &str,
        shutdown: watch::Receiver<bool>,
        consume: bool,
    ) -> anyhow::Result<Arc<Self>> {
        let directory = channel(
            &bus,
            format!("{topic_prefix}{DIRECTORY_TOPIC}"),
            |e: &DirectoryEvent| e.at,
            &shutdown,
            consume,
        )
        .await?;
        let fleet = channel(
            &bus,
            format!("{topic_prefix}{FLEET_TOPIC}"),
            FleetEvent::at,
            &shutdown,
            true,
        )
        .await?;
        let usage = channel(
            &bus,
            format!("{topic_prefix}{USAGE_EVENTS_TOPIC}"),
            UsageEvent::at,
            &shutdown,
            consume,
        )
        .await?;
        // Usage events are published one at a time, in the order they were announced: a task per
        // event raced, and a SIM's later update could reach subscribers before its earlier one.
        let (usage_out, mut queue) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<u8>)>();
        {
            let (bus, topic) = (Arc::clone(&bus), usage.topic.clone());
            tokio::spawn(async move {
                while let Some((key, payload)) = queue.recv().await {
                    if let Err(e) = bus.publish(&topic, &key, &payload).await {
                        tracing::error!(error = %e, %key, "realtime usage event not published; subscribers will miss it");
                    }
                }
            });
        }
        Ok(Arc::new(Self {
            bus,
            directory,
            fleet,
            usage,
            usage_out,
            usage_key: format!("instance-{}", uuid::Uuid::new_v4().simple()),
            shutdown,
        }))
    }

    /// Queues a usage event for the ordered publisher (see `open`).
    fn publish_usage(&self, key: String, event: UsageEvent) {
        match encode(&event) {
            Ok(payload) => {
                if self.usage_out.send((key, payload)).is_err() {
                    tracing::error!(
                        ?event,
                        "realtime usage publisher stopped; subscribers will miss it"
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "encoding realtime event"),
        }
    }

    fn publish<T: Serialize + std::fmt::Debug + Send + 'static>(&self, topic: &str, key: String, event: T) {
        let bus = Arc::clone(&self.bus);
        let topic = topic.to_owned();
        tokio::spawn(async move {
            let payload = match encode(&event) {
                Ok(p) => p,
                Err(e) => return tracing::error!(error = %e, "encoding realtime event"),
            };
            if let Err(e) = bus.publish(&topic, &key, &payload).await {
                tracing::error!(error = %e, ?event, "realtime event not published; subscribers will miss it");
            }
        });
    }

    fn follow<T: Clone + Send + 'static>(&self, channel: &Channel<T>) -> BoxStream<'static, T> {
        let rx = channel.local.subscribe();
        let mut stop = self.shutdown.clone();
        let events = stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => return Some((ev, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "a slow subscriber skipped realtime events");
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

impl Realtime for BusRealtime {
    fn directory_changed(&self, event: DirectoryEvent) {
        self.publish(&self.directory.topic, event.tenant_id.to_string(), event);
    }

    fn directory_events(&self) -> BoxStream<'static, DirectoryEvent> {
        self.follow(&self.directory)
    }

    fn fleet_events(&self) -> BoxStream<'static, FleetEvent> {
        self.follow(&self.fleet)
    }

    fn usage_events(&self) -> BoxStream<'static, UsageEvent> {
        self.follow(&self.usage)
    }
}

/// Session updates per bus message: keeps messages well under Kafka's 1 MB default.
const UPDATES_PER_MESSAGE: usize = 500;

impl BusRealtime {
    /// Announces counted session updates (from the ingest worker) to every instance.
    pub fn sessions_updated(&self, updates: &[ioto_domain::ports::SessionUpdate]) {
        for chunk in updates.chunks(UPDATES_PER_MESSAGE) {
            self.publish_usage(
                self.usage_key.clone(),
                UsageEvent::SessionsUpdated {
                    at: Utc::now(),
                    updates: chunk.to_vec(),
                },
            );
        }
    }

    /// Announces stored device readings to every instance.
    pub fn telemetry_stored(
        &self,
        readings: &[(ioto_domain::TenantId, ioto_domain::usage::TelemetryReading)],
    ) {
        for chunk in readings.chunks(UPDATES_PER_MESSAGE) {
            self.publish_usage(
                self.usage_key.clone(),
                UsageEvent::TelemetryStored {
                    at: Utc::now(),
                    readings: chunk.to_vec(),
                },
            );
        }
    }
}

impl FleetNotifier for BusRealtime {
    fn publish(&self, event: FleetEvent) {
        // Keyed by tenant: one tenant's events stay in order.
        BusRealtime::publish(self, &self.fleet.topic, event.tenant_id().to_string(), event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ioto_domain::events::DirectoryChange;
    use ioto_domain::TenantId;

    /// A SIM's counted updates reach subscribers in the order the worker announced them, however
    /// close together (each was published by a task of its own, and they raced).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn usage_events_reach_subscribers_in_the_order_announced() {
        use futures::StreamExt;
        use ioto_domain::ports::SessionUpdate;

        let bus: Arc<dyn EventBus> = Arc::new(ioto_ingest::InProcessBus::default());
        let (_stop, shutdown) = watch::channel(false);
        let realtime = BusRealtime::start(bus, "order.", shutdown).await.unwrap();
        let mut events = realtime.usage_events();
        let now = Utc::now();
        let update = |total: u64| SessionUpdate {
            tenant_id: TenantId::new(),
            customer_id: None,
            iccid: ioto_domain::Iccid::with_check_digit("894900000000000001").unwrap(),
            session_id: "s".into(),
            started_at: now,
            event_time: now,
            hour: now,
            mcc_mnc: ioto_domain::MccMnc::parse("262-01").unwrap(),
            rat: ioto_domain::usage::RadioAccessType::Lte,
            ip_address: None,
            cell_id: None,
            terminated: false,
            total_in: total,
            total_out: 0,
            delta_in: 1,
            delta_out: 0,
            imei: None,
        };
        for total in 1..=300 {
            realtime.sessions_updated(&[update(total)]);
        }
        let mut seen = Vec::new();
        while seen.len() < 300 {
            match tokio::time::timeout(std::time::Duration::from_secs(10), events.next()).await {
                Ok(Some(UsageEvent::SessionsUpdated { updates, .. })) => {
                    seen.extend(updates.iter().map(|u| u.total_in));
                }
                Ok(other) => panic!("unexpected {other:?} after {seen:?}"),
                Err(_) => panic!("only {} of 300 updates arrived: {seen:?}", seen.len()),
            }
        }
        assert_eq!(seen, (1..=300).collect::<Vec<u64>>());
    }

    #[test]
    fn messages_carry_their_version_and_other_versions_are_skipped() {
        let ev = DirectoryEvent::now(
            TenantId::new(),
            DirectoryChange::CustomerCreated,
            uuid::Uuid::new_v4(),
        );
        let bytes = encode(&ev).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(decode::<DirectoryEvent>(&bytes).unwrap(), ev);
        let mut future = v.clone();
        future["v"] = 2.into();
        let why = decode::<DirectoryEvent>(&serde_json::to_vec(&future).unwrap()).unwrap_err();
        assert!(why.contains("version 2"), "{why}");
        // A bare event (what instances before the envelope sent) is refused, not misread.
        let bare = serde_json::to_vec(&ev).unwrap();
        assert!(decode::<DirectoryEvent>(&bare).is_err());
        assert!(decode::<DirectoryEvent>(b"\xff garbage").is_err());
    }

    #[test]
    fn bulk_job_progress_travels_as_a_fleet_event() {
        let ev = FleetEvent::BulkJobProgress(ioto_domain::events::BulkJobProgress {
            tenant_id: TenantId::new(),
            job_id: uuid::Uuid::new_v4(),
            status: ioto_domain::fleet::bulk::BulkJobStatus::Processing,
            counts: ioto_domain::fleet::bulk::BulkCounts {
                total: 10,
                valid: 8,
                invalid: 1,
                already_in_state: 1,
                processed: 4,
                succeeded: 3,
                failed: 1,
                skipped: 1,
            },
            eta_seconds: Some(2),
            summary: "Working".into(),
            at: Utc::now(),
        });
        let bytes = encode(&ev).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["event"]["type"], "BulkJobProgress", "{v}");
        // The counts travel as fields of the event itself.
        assert_eq!(v["event"]["alreadyInState"], 1, "{v}");
        assert_eq!(v["event"]["processed"], 4, "{v}");
        assert_eq!(decode::<FleetEvent>(&bytes), Ok(ev));
    }
}
