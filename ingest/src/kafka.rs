//! The event bus on Kafka (any Kafka-protocol broker) through rdkafka.

mod consumer;

use consumer::{bus_message, pump, KafkaConsumer, BUFFERED, BUFFERED_BYTES, PREFETCH_KIB};

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream;
use ioto_domain::ports::{BatchConsumer, BusMessage, BusStream, EngineInfo, EventBus, StartAt, TopicSpec};
use ioto_domain::{Error, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::mpsc;

use crate::budget::ByteBudget;
use crate::kafka_log::{GroupContext, QuietContext};

/// How long a group member may spend on one batch (including waiting for the usage store to come
/// back) before the group gives its partitions to another member.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(3600);

/// How to reach the brokers.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub brokers: String,
    /// Replication factor for topics this process creates (1 for a single broker).
    pub replication_factor: i32,
    /// Consumer session timeout; about 6 s makes group joins quick.
    pub session_timeout_ms: u32,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            replication_factor: 1,
            session_timeout_ms: 6000,
        }
    }
}

/// The producer in use and its generation: a producer that hit a fatal error (librdkafka's
/// idempotent producer is fenced when a restarted broker no longer knows its producer id) is
/// unusable for good, so the first publish that sees it puts a new one in its place.
struct Producers {
    generation: u64,
    producer: FutureProducer<QuietContext>,
}

#[derive(Clone)]
pub struct KafkaBus {
    config: KafkaConfig,
    producers: Arc<Mutex<Producers>>,
    admin: Arc<AdminClient<QuietContext>>,
    /// Topics seen to exist, so publish checks metadata once per topic.
    known_topics: Arc<Mutex<HashSet<String>>>,
}

fn kafka_err(brokers: &str, e: KafkaError) -> Error {
    match e.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::MessageTimedOut
            | RDKafkaErrorCode::OperationTimedOut,
        ) => Error::Unavailable(format!("Kafka at {brokers} ({e})")),
        _ => Error::Internal(format!("Kafka: {e}")),
    }
}

/// Whether any of the comma-separated `host:port` brokers accepts a TCP connection.
async fn reachable(brokers: &str) -> std::result::Result<(), String> {
    let mut last = String::from("no brokers given");
    for addr in brokers.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        match tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: no answer within 3 s"),
        }
    }
    Err(last)
}

/// The producer every publish goes through: acknowledged by all replicas, idempotent (a retry
/// inside librdkafka does not write twice), ten seconds to deliver.
fn new_producer(base: &ClientConfig) -> std::result::Result<FutureProducer<QuietContext>, KafkaError> {
    base.clone()
        .set("message.timeout.ms", "10000")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create_with_context(QuietContext::default())
}

impl KafkaBus {
    /// Checks that a broker accepts connections, then creates the clients and asks for metadata.
    pub async fn connect(config: KafkaConfig) -> Result<Self> {
        let unreachable =
            |detail: String| Error::Unavailable(format!("Kafka at {} ({detail})", config.brokers));
        // A plain TCP check first: librdkafka itself would retry (and log) for seconds.
        reachable(&config.brokers).await.map_err(unreachable)?;
        let mut base = ClientConfig::new();
        base.set("bootstrap.servers", &config.brokers)
            .set("client.id", "ioto");
        let producer = new_producer(&base).map_err(|e| unreachable(e.to_string()))?;
        let admin: AdminClient<QuietContext> = base
            .create_with_context(QuietContext::default())
            .map_err(|e| unreachable(e.to_string()))?;
        let bus = Self {
            config,
            producers: Arc::new(Mutex::new(Producers {
                generation: 0,
                producer,
            })),
            admin: Arc::new(admin),
            known_topics: Arc::default(),
        };
        bus.ping().await?;
        Ok(bus)
    }

    /// The producer in use, with its generation.
    fn producer(&self) -> (u64, FutureProducer<QuietContext>) {
        let p = self
            .producers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (p.generation, p.producer.clone())
    }

    /// Puts a new producer in place of generation `failed` (unless another caller already
    /// did) and returns the one in use.
    fn replace_producer(&self, failed: u64, reason: &str) -> Result<FutureProducer<QuietContext>> {
        let mut p = self
            .producers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if p.generation == failed {
            let mut base = ClientConfig::new();
            base.set("bootstrap.servers", &self.config.brokers)
                .set("client.id", "ioto");
            p.producer = new_producer(&base).map_err(|e| kafka_err(&self.config.brokers, e))?;
            p.generation += 1;
            tracing::warn!(%reason, "the Kafka producer failed for good; a new one takes over");
        }
        Ok(p.producer.clone())
    }

    /// Fails, naming the topic, when the broker does not know it.
    async fn require_topic(&self, topic: &str) -> Result<()> {
        if self.topic_exists(topic).await? {
            Ok(())
        } else {
            Err(Error::invalid(
                "topic",
                format!("topic '{topic}' does not exist; create it first"),
            ))
        }
    }

    /// Whether the broker knows `topic` (metadata request, off the async threads).
    async fn topic_exists(&self, topic: &str) -> Result<bool> {
        if self
            .known_topics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(topic)
        {
            return Ok(true);
        }
        let producer = self.producer().1;
        let name = topic.to_owned();
        let brokers = self.config.brokers.clone();
        let exists = tokio::task::spawn_blocking(move || {
            let md = producer
                .client()
                .fetch_metadata(Some(&name), Duration::from_secs(5))
                .map_err(|e| kafka_err(&brokers, e))?;
            Ok::<_, Error>(
                md.topics()
                    .iter()
                    .any(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty()),
            )
        })
        .await
        .map_err(|e| Error::Internal(format!("metadata task: {e}")))??;
        if exists {
            self.known_topics
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(topic.to_owned());
        }
        Ok(exists)
    }
}

#[async_trait]
impl EventBus for KafkaBus {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            engine: "kafka",
            location: self.config.brokers.clone(),
        }
    }

    async fn ping(&self) -> Result<()> {
        let producer = self.producer().1;
        let brokers = self.config.brokers.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Duration::from_secs(5))
                .map(|_| ())
                .map_err(|e| kafka_err(&brokers, e))
        })
        .await
        .map_err(|e| Error::Internal(format!("metadata task: {e}")))?
    }

    /// The client library and the brokers the cluster reports (the Kafka protocol does not
    /// carry the broker's software or version).
    async fn server_version(&self) -> Result<String> {
        let producer = self.producer().1;
        let brokers = self.config.brokers.clone();
        tokio::task::spawn_blocking(move || {
            let metadata = producer
                .client()
                .fetch_metadata(None, Duration::from_secs(5))
                .map_err(|e| kafka_err(&brokers, e))?;
            let (_, library) = rdkafka::util::get_rdkafka_version();
            let hosts: Vec<String> = metadata
                .brokers()
                .iter()
                .map(|b| format!("{}:{}", b.host(), b.port()))
                .collect();
            Ok(format!(
                "Kafka protocol (librdkafka {library}; {} broker(s): {})",
                hosts.len(),
                hosts.join(", ")
            ))
        })
        .await
        .map_err(|e| Error::Internal(format!("metadata task: {e}")))?
    }

    async fn ensure_topic(&self, topic: &str, spec: TopicSpec) -> Result<()> {
        if self.topic_exists(topic).await? {
            return Ok(());
        }
        let retention_ms = spec.retention.map(|r| r.as_millis().to_string());
        let mut new = NewTopic::new(
            topic,
            spec.partitions.max(1),
            TopicReplication::Fixed(self.config.replication_factor),
        );
        if let Some(ms) = &retention_ms {
            new = new.set("retention.ms", ms);
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = self
            .admin
            .create_topics([&new], &opts)
            .await
            .map_err(|e| kafka_err(&self.config.brokers, e))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(Error::Internal(format!("creating Kafka topic {name}: {code}")))
                }
            }
        }
        // Metadata propagates asynchronously; wait until the broker lists the topic.
        for _ in 0..50 {
            if self.topic_exists(topic).await? {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::Unavailable(format!(
            "Kafka topic {topic} (created, but not visible after 5 s)"
        )))
    }

    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<()> {
        self.require_topic(topic).await?;
        let (generation, producer) = self.producer();
        let record = FutureRecord::to(topic).key(key).payload(payload);
        let Err((e, _)) = producer.send(record, Duration::from_secs(10)).await else {
            return Ok(());
        };
        // Fatal for librdkafka, or fenced by the broker (a restarted broker that no longer
        // accepts this producer's id or epoch refuses every later batch of it too).
        let fenced = matches!(
            e.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
                    | RDKafkaErrorCode::UnknownProducerId
                    | RDKafkaErrorCode::OutOfOrderSequenceNumber
                    | RDKafkaErrorCode::InvalidProducerIdMapping
            )
        );
        let Some(reason) = producer
            .client()
            .fatal_error()
            .map(|(_, reason)| reason)
            .or_else(|| fenced.then(|| e.to_string()))
        else {
            return Err(kafka_err(&self.config.brokers, e));
        };
        // Fatal: this producer sends nothing more. Replace it (once, whoever sees it first) and
        // send the event with the new one.
        let fresh = self.replace_producer(generation, &reason)?;
        let record = FutureRecord::to(topic).key(key).payload(payload);
        fresh
            .send(record, Duration::from_secs(10))
            .await
            .map(|_| ())
            .map_err(|(e, _)| kafka_err(&self.config.brokers, e))
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<BusStream> {
        self.require_topic(topic).await?;
        let consumer: StreamConsumer<QuietContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.config.brokers)
            .set("group.id", group)
            .set("client.id", "ioto")
            .set("enable.auto.commit", "true")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", self.config.session_timeout_ms.to_string())
            .create_with_context(QuietContext::default())
            .map_err(|e| kafka_err(&self.config.brokers, e))?;
        consumer
            .subscribe(&[topic])
            .map_err(|e| kafka_err(&self.config.brokers, e))?;
        let (tx, rx) = mpsc::channel::<Result<BusMessage>>(256);
        let brokers = self.config.brokers.clone();
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    // The subscriber went away: leave the group by dropping the consumer.
                    () = tx.closed() => break,
                    r = consumer.recv() => r,
                };
                let item = match received {
                    Ok(m) => Ok(bus_message(&m)),
                    Err(e) => {
                        // Back off so a broker outage does not spin; the subscriber sees the error.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        Err(kafka_err(&brokers, e))
                    }
                };
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        });
        Ok(Box::pin(stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|m| (m, rx))
        })))
    }

    async fn consume(
        &self,
        topics: &[String],
        group: &str,
        start: StartAt,
    ) -> Result<Box<dyn BatchConsumer>> {
        for t in topics {
            self.require_topic(t).await?;
        }
        let consumer: BaseConsumer<GroupContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.config.brokers)
            .set("group.id", group)
            .set("client.id", "ioto-ingest")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.offset.reset",
                match start {
                    StartAt::Earliest => "earliest",
                    StartAt::Latest => "latest",
                },
            )
            .set("session.timeout.ms", self.config.session_timeout_ms.to_string())
            .set("max.poll.interval.ms", MAX_POLL_INTERVAL.as_millis().to_string())
            // Fetch in large chunks: the worker takes batches of thousands.
            .set("fetch.min.bytes", "1")
            // A broker that holds every fetch for its full wait (tansu 0.6 sleeps half of it, or
            // all of it below 250 ms, even with data there) delivers an event no sooner than
            // this; Kafka answers as soon as `fetch.min.bytes` are there, so a short wait costs it
            // only idle fetches (ten a second). librdkafka's default is 500 ms.
            .set("fetch.wait.max.ms", "100")
            .set("max.partition.fetch.bytes", "8388608")
            .set("queued.min.messages", "200000")
            .set("queued.max.messages.kbytes", PREFETCH_KIB)
            .create_with_context(GroupContext::default())
            .map_err(|e| kafka_err(&self.config.brokers, e))?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&names)
            .map_err(|e| kafka_err(&self.config.brokers, e))?;
        let consumer = Arc::new(consumer);
        let (tx, incoming) = mpsc::channel(BUFFERED);
        let budget = Arc::new(ByteBudget::new(BUFFERED_BYTES));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, bytes, s, b) = (
            Arc::clone(&consumer),
            Arc::clone(&budget),
            Arc::clone(&stop),
            self.config.brokers.clone(),
        );
        std::thread::Builder::new()
            .name("ioto-kafka-consumer".into())
            .spawn(move || pump(c, tx, bytes, s, b))
            .map_err(|e| Error::Internal(format!("starting the consumer thread: {e}")))?;
        Ok(Box::new(KafkaConsumer {
            consumer,
            incoming,
            budget,
            brokers: self.config.brokers.clone(),
            stop,
        }))
    }
}
