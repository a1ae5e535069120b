//! The batch consumer on Kafka: a thread of its own polls librdkafka and hands messages over, bounded in count and bytes, tagged with the group generation they were read in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ioto_domain::ports::{AssignmentHold, BatchConsumer, BusMessage, Delivery, Enough};
use ioto_domain::{Error, Result};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::kafka_err;
use crate::budget::ByteBudget;
use crate::kafka_log::GroupContext;
use crate::poll_wait::{next_arrival, Woken};

/// A batch consumer on Kafka: a thread of its own polls librdkafka (serving rebalances there,
/// which wait for held batches) and hands messages over, tagged with their generation.
pub(super) struct KafkaConsumer {
    pub(super) consumer: Arc<BaseConsumer<GroupContext>>,
    pub(super) incoming: mpsc::Receiver<Result<Delivery>>,
    /// The bytes of the deliveries in `incoming`.
    pub(super) budget: Arc<ByteBudget>,
    pub(super) brokers: String,
    pub(super) stop: Arc<AtomicBool>,
}

/// Releases a hold on the assignment when dropped.
struct KafkaHold(Arc<BaseConsumer<GroupContext>>);

impl Drop for KafkaHold {
    fn drop(&mut self) {
        self.0.context().release();
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Messages buffered between the polling thread and the worker, at most …
pub(super) const BUFFERED: usize = 100_000;
/// … and at most this many bytes of keys and payloads.
pub(super) const BUFFERED_BYTES: usize = 32 << 20;
/// What librdkafka itself pre-fetches for the consumer, in KiB (its default is 64 MiB).
pub(super) const PREFETCH_KIB: &str = "32768";

/// The bytes a delivery holds in the buffer.
fn held(d: &Result<Delivery>) -> usize {
    d.as_ref().map_or(0, |d| d.message.size())
}

/// A Kafka message as the bus hands it out, with the broker's timestamp.
pub(super) fn bus_message(m: &impl rdkafka::Message) -> BusMessage {
    BusMessage {
        topic: m.topic().to_owned(),
        key: m
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default(),
        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        published_at: m
            .timestamp()
            .to_millis()
            .and_then(chrono::DateTime::from_timestamp_millis),
    }
}

pub(super) fn pump(
    consumer: Arc<BaseConsumer<GroupContext>>,
    tx: mpsc::Sender<Result<Delivery>>,
    budget: Arc<ByteBudget>,
    stop: Arc<AtomicBool>,
    brokers: String,
) {
    'polling: while !stop.load(Ordering::SeqCst) {
        let Some(received) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let item = match received {
            Ok(m) => Ok(Delivery {
                message: bus_message(&m),
                partition: m.partition(),
                offset: m.offset(),
                // Rebalance callbacks ran inside `poll`, before this message was handed out.
                generation: consumer.context().generation(),
            }),
            Err(e) => {
                std::thread::sleep(Duration::from_millis(200));
                Err(kafka_err(&brokers, e))
            }
        };
        let bytes = held(&item);
        while !budget.take(bytes, Duration::from_millis(100)) {
            if stop.load(Ordering::SeqCst) || tx.is_closed() {
                break 'polling;
            }
        }
        if tx.blocking_send(item).is_err() {
            break;
        }
    }
    // Leaving the group promptly: unsubscribe before the consumer is dropped.
    consumer.unsubscribe();
}

#[async_trait]
impl BatchConsumer for KafkaConsumer {
    async fn poll_until(&mut self, max: usize, wait: Duration, enough: Enough<'_>) -> Result<Vec<Delivery>> {
        let mut out: Vec<Delivery> = Vec::new();
        let mut deadline = tokio::time::Instant::now() + wait;
        let mut enough = enough;
        let mut stop = false;
        while out.len() < max.max(1) {
            let next = match self.incoming.try_recv() {
                Ok(d) => Some(d),
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    return Err(Error::Unavailable(format!(
                        "Kafka at {} (consumer stopped)",
                        self.brokers
                    )))
                }
                // Told it has enough: what was already received goes along, nothing is awaited.
                Err(mpsc::error::TryRecvError::Empty) if stop => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match next_arrival(deadline, self.incoming.recv(), enough.as_mut()).await {
                        Woken::Arrived(d) => d,
                        Woken::TimedOut => break,
                        Woken::Enough => {
                            stop = true;
                            continue;
                        }
                    }
                }
            };
            let Some(received) = next else {
                return Err(Error::Unavailable(format!(
                    "Kafka at {} (consumer stopped)",
                    self.brokers
                )));
            };
            self.budget.give(held(&received));
            match received {
                Ok(d) => {
                    // What came before a change of assignment is delivered again, from the last
                    // commit, to whoever owns those partitions now.
                    let current = self.consumer.context().generation();
                    if d.generation != current {
                        continue;
                    }
                    if out.first().is_some_and(|f| f.generation != d.generation) {
                        out.clear();
                    }
                    if out.is_empty() {
                        deadline = tokio::time::Instant::now() + wait;
                    }
                    out.push(d);
                }
                Err(e) if out.is_empty() => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "Kafka consumer error; returning the batch so far");
                    break;
                }
            }
        }
        let current = self.consumer.context().generation();
        out.retain(|d| d.generation == current);
        Ok(out)
    }

    async fn commit(&mut self, done: &[Delivery]) -> Result<()> {
        let mut next: HashMap<(&str, i32), i64> = HashMap::new();
        for d in done {
            let e = next.entry((d.message.topic.as_str(), d.partition)).or_insert(0);
            *e = (*e).max(d.offset + 1);
        }
        if next.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(|e| kafka_err(&self.brokers, e))?;
        }
        let consumer = Arc::clone(&self.consumer);
        let brokers = self.brokers.clone();
        tokio::task::spawn_blocking(move || {
            consumer
                .commit(&tpl, CommitMode::Sync)
                .map_err(|e| kafka_err(&brokers, e))
        })
        .await
        .map_err(|e| Error::Internal(format!("commit task: {e}")))?
    }

    fn generation(&self) -> u64 {
        self.consumer.context().generation()
    }

    fn hold(&self, generation: u64) -> Option<AssignmentHold> {
        self.consumer
            .context()
            .hold(generation)
            .then(|| Box::new(KafkaHold(Arc::clone(&self.consumer))) as AssignmentHold)
    }
}
