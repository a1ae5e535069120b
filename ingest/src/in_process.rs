//! The in-process event bus: one process, no broker. Messages live in memory with bounded
//! retention (a count per topic, bytes for the whole bus); each consumer group keeps its own
//! offset.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::stream;
use std::time::Duration;

use ioto_domain::ports::{
    AssignmentHold, BatchConsumer, BusMessage, BusStream, Delivery, EngineInfo, Enough, EventBus, StartAt,
    TopicSpec,
};
use ioto_domain::{Error, Result};
use tokio::sync::Notify;

use crate::poll_wait::{next_arrival, Woken};

/// Messages kept per topic before the oldest are dropped for every group.
pub const DEFAULT_RETENTION: usize = 100_000;
/// Bytes (payload, key and topic) kept by the whole bus. Past it, messages every consumer group
/// of their topic has taken go first; only when that is not enough do the oldest messages of the
/// largest topic go, read or not (counted in [`InProcessBus::dropped_unread`]). This is what keeps
/// a long-running single-process server (the demo) from holding hours of traffic.
pub const DEFAULT_RETENTION_BYTES: usize = 16 << 20;
/// Bytes per topic of messages every consumer group of the topic has taken, kept for a group that
/// joins later; older ones go as soon as this much more has been published (the bus's bytes are
/// then mostly what some group has still to read, and a long-running demo does not carry
/// [`DEFAULT_RETENTION_BYTES`] of old traffic).
pub const DEFAULT_READ_RETENTION_BYTES: usize = 1 << 20;

#[derive(Default)]
struct Topic {
    /// Offset of `messages[0]`.
    base: u64,
    messages: VecDeque<BusMessage>,
    /// What `messages` hold, in bytes (see [`BusMessage::size`]).
    bytes: usize,
    /// Next offset per consumer group.
    groups: HashMap<String, u64>,
    /// Committed offset (next to deliver) per batch-consumer group.
    committed: HashMap<String, u64>,
}

impl Topic {
    /// The offset below which every group has taken (or committed) every message; `None` when
    /// no group reads the topic.
    fn taken_by_all(&self) -> Option<u64> {
        self.groups.values().chain(self.committed.values()).copied().min()
    }

    /// Whether some group reads this topic and has not read its oldest message yet.
    fn unread_at_front(&self) -> bool {
        self.taken_by_all().is_some_and(|floor| self.base >= floor)
    }

    fn drop_oldest(&mut self) -> usize {
        let freed = self.messages.pop_front().map_or(0, |m| m.size());
        self.bytes -= freed;
        self.base += 1;
        freed
    }
}

/// Drops, in every topic some group reads, the messages all its groups have taken beyond the
/// newest `keep` bytes of them (always keeping the topic's newest message).
fn sweep_read(topics: &mut HashMap<String, Topic>, keep: usize) {
    for t in topics.values_mut() {
        let Some(floor) = t.taken_by_all() else {
            continue;
        };
        let read = usize::try_from(floor.saturating_sub(t.base))
            .unwrap_or(usize::MAX)
            .min(t.messages.len().saturating_sub(1));
        // The newest read messages within `keep` bytes stay; everything before them goes.
        let mut kept = 0;
        let mut drop = 0;
        for i in (0..read).rev() {
            kept += t.messages[i].size();
            if kept > keep {
                drop = i + 1;
                break;
            }
        }
        for _ in 0..drop {
            t.drop_oldest();
        }
    }
}

/// What all topics hold, in bytes.
fn held(topics: &HashMap<String, Topic>) -> usize {
    topics.values().map(|t| t.bytes).sum()
}

/// Drops messages until the bus holds at most `limit` bytes: first what every group has read,
/// then the oldest of the largest topic (always keeping each topic's newest message). Returns the
/// unread messages dropped.
fn trim(topics: &mut HashMap<String, Topic>, limit: usize) -> u64 {
    let mut total = held(topics);
    if total <= limit {
        return 0;
    }
    for t in topics.values_mut() {
        let floor = t.taken_by_all().unwrap_or(0);
        while total > limit && t.base < floor && t.messages.len() > 1 {
            total -= t.drop_oldest();
        }
    }
    let mut unread = 0;
    while total > limit {
        let Some(t) = topics
            .values_mut()
            .filter(|t| t.messages.len() > 1)
            .max_by_key(|t| t.bytes)
        else {
            break;
        };
        unread += u64::from(t.unread_at_front());
        total -= t.drop_oldest();
    }
    unread
}

struct Shared {
    topics: Mutex<HashMap<String, Topic>>,
    /// Batch-consumer groups: the generation of the member that owns them. The last member to
    /// join a group takes its (single) partition over, as with a one-partition Kafka topic.
    generations: Mutex<HashMap<String, u64>>,
    /// Batches being written and committed, per group: a takeover waits for them.
    holds: Arc<Mutex<HashMap<String, usize>>>,
    notify: Notify,
    retention: usize,
    retention_bytes: usize,
    read_retention_bytes: usize,
    /// Bytes published since read messages were last swept (see [`sweep_read`]).
    since_sweep: std::sync::atomic::AtomicUsize,
    /// Messages dropped before every group had read them (retention too small for the load).
    dropped_unread: std::sync::atomic::AtomicU64,
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
        Self::with_limits(retention, DEFAULT_RETENTION_BYTES)
    }

    /// Keeps at most `retention` messages per topic and `bytes` bytes in all (at least each
    /// topic's newest message, whatever its size), of which messages every group has read at
    /// most [`DEFAULT_READ_RETENTION_BYTES`] per topic.
    pub fn with_limits(retention: usize, bytes: usize) -> Self {
        Self::with_read_retention(retention, bytes, DEFAULT_READ_RETENTION_BYTES)
    }

    /// [`Self::with_limits`] with `read_bytes` per topic for what every group has read.
    pub fn with_read_retention(retention: usize, bytes: usize, read_bytes: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                topics: Mutex::new(HashMap::new()),
                generations: Mutex::new(HashMap::new()),
                holds: Arc::default(),
                notify: Notify::new(),
                retention: retention.max(1),
                retention_bytes: bytes,
                read_retention_bytes: read_bytes.min(bytes),
                since_sweep: std::sync::atomic::AtomicUsize::new(0),
                dropped_unread: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// Messages dropped by retention before every consumer group of their topic had read them.
    pub fn dropped_unread(&self) -> u64 {
        self.shared
            .dropped_unread
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What the bus holds, in bytes (see [`DEFAULT_RETENTION_BYTES`]).
    pub fn held_bytes(&self) -> usize {
        held(&self.topics())
    }

    fn topics(&self) -> MutexGuard<'_, HashMap<String, Topic>> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        lock(&self.shared.topics)
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A batch consumer of the in-process bus: one partition (0) per topic.
struct InProcessConsumer {
    bus: InProcessBus,
    group: String,
    generation: u64,
    /// Next offset to deliver, per topic.
    positions: HashMap<String, u64>,
}

/// What [`BatchConsumer::generation`] reports once another member has taken the group over.
const REVOKED: u64 = u64::MAX;

impl InProcessConsumer {
    fn owns_group(&self) -> bool {
        lock(&self.bus.shared.generations).get(&self.group) == Some(&self.generation)
    }

    /// Takes up to `max` waiting messages into `out`.
    fn take(&mut self, max: usize, out: &mut Vec<Delivery>) {
        let topics = self.bus.topics();
        for (name, next) in &mut self.positions {
            let Some(t) = topics.get(name) else { continue };
            // Retention dropped what this group had not read yet: continue at the oldest kept.
            *next = (*next).max(t.base);
            while out.len() < max {
                let Some(msg) = usize::try_from(*next - t.base)
                    .ok()
                    .and_then(|i| t.messages.get(i))
                else {
                    break;
                };
                out.push(Delivery {
                    message: msg.clone(),
                    partition: 0,
                    offset: i64::try_from(*next).unwrap_or(i64::MAX),
                    generation: self.generation,
                });
                *next += 1;
            }
        }
    }
}

#[async_trait]
impl BatchConsumer for InProcessConsumer {
    async fn poll_until(&mut self, max: usize, wait: Duration, enough: Enough<'_>) -> Result<Vec<Delivery>> {
        let mut out = Vec::new();
        let shared = Arc::clone(&self.bus.shared);
        let mut deadline = tokio::time::Instant::now() + wait;
        let mut first_seen = false;
        let mut enough = enough;
        let mut stop = false;
        loop {
            if !self.owns_group() {
                return Ok(Vec::new());
            }
            let notified = shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.take(max, &mut out);
            if out.len() >= max.max(1) || stop {
                return Ok(out);
            }
            if !out.is_empty() && !first_seen {
                first_seen = true;
                deadline = tokio::time::Instant::now() + wait;
            }
            match next_arrival(deadline, notified, enough.as_mut()).await {
                Woken::Arrived(()) => {}
                Woken::TimedOut => return Ok(out),
                // Take what is there once more, then return.
                Woken::Enough => stop = true,
            }
        }
    }

    async fn commit(&mut self, done: &[Delivery]) -> Result<()> {
        // A member taken over may still commit what it holds: the successor waits for it.
        let held = lock(&self.bus.shared.holds)
            .get(&self.group)
            .copied()
            .unwrap_or(0)
            > 0;
        if !self.owns_group() && !held {
            return Err(Error::Conflict(format!(
                "consumer group '{}' was taken over by another member; not committed",
                self.group
            )));
        }
        let mut topics = self.bus.topics();
        for d in done {
            if let Some(t) = topics.get_mut(&d.message.topic) {
                let next = u64::try_from(d.offset).unwrap_or(0) + 1;
                let c = t.committed.entry(self.group.clone()).or_default();
                *c = (*c).max(next);
            }
        }
        Ok(())
    }

    fn generation(&self) -> u64 {
        if self.owns_group() {
            self.generation
        } else {
            REVOKED
        }
    }

    fn hold(&self, generation: u64) -> Option<AssignmentHold> {
        // Checked and counted under the generations lock, which a takeover takes to move on.
        let generations = lock(&self.bus.shared.generations);
        if generation != self.generation || generations.get(&self.group) != Some(&self.generation) {
            return None;
        }
        *lock(&self.bus.shared.holds)
            .entry(self.group.clone())
            .or_default() += 1;
        Some(Box::new(Hold {
            holds: Arc::clone(&self.bus.shared.holds),
            group: self.group.clone(),
        }))
    }
}

/// Releases one hold of a group when dropped.
struct Hold {
    holds: Arc<Mutex<HashMap<String, usize>>>,
    group: String,
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(n) = lock(&self.holds).get_mut(&self.group) {
            *n = n.saturating_sub(1);
        }
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

    async fn server_version(&self) -> Result<String> {
        Ok(format!("in-process (ioto {})", env!("CARGO_PKG_VERSION")))
    }

    /// Retention here is by count per topic and bytes for the whole bus, whatever the spec says.
    async fn ensure_topic(&self, topic: &str, _spec: TopicSpec) -> Result<()> {
        self.topics().entry(topic.to_owned()).or_default();
        Ok(())
    }

    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<()> {
        {
            let mut topics = self.topics();
            let t = topics.get_mut(topic).ok_or_else(|| unknown_topic(topic))?;
            let m = BusMessage {
                topic: topic.to_owned(),
                key: key.to_owned(),
                payload: payload.to_vec(),
                published_at: Some(chrono::Utc::now()),
            };
            let size = m.size();
            t.bytes += size;
            t.messages.push_back(m);
            let mut unread = 0;
            while t.messages.len() > self.shared.retention {
                if t.unread_at_front() {
                    unread += 1;
                }
                t.drop_oldest();
            }
            // Swept once per `read_retention_bytes` published, so each message is looked at a
            // bounded number of times.
            let keep = self.shared.read_retention_bytes;
            let since = self
                .shared
                .since_sweep
                .fetch_add(size, std::sync::atomic::Ordering::Relaxed)
                + size;
            if since >= keep {
                self.shared
                    .since_sweep
                    .store(0, std::sync::atomic::Ordering::Relaxed);
                sweep_read(&mut topics, keep);
            }
            unread += trim(&mut topics, self.shared.retention_bytes);
            if unread > 0 {
                let before = self
                    .shared
                    .dropped_unread
                    .fetch_add(unread, std::sync::atomic::Ordering::Relaxed);
                // Once per power of two, not once per message.
                if (before + unread).is_power_of_two() || before == 0 {
                    tracing::warn!(
                        dropped = before + unread,
                        "the in-process bus dropped messages not read by every group yet (retention too small for this load)"
                    );
                }
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

    async fn consume(
        &self,
        topics: &[String],
        group: &str,
        start: StartAt,
    ) -> Result<Box<dyn BatchConsumer>> {
        if let Some(missing) = topics.iter().find(|t| !self.topics().contains_key(*t)) {
            return Err(unknown_topic(missing));
        }
        let generation = {
            let mut generations = lock(&self.shared.generations);
            let g = generations.entry(group.to_owned()).or_insert(0);
            *g += 1;
            *g
        };
        // A member that lost the group stops waiting; what it is still writing finishes first.
        self.shared.notify.notify_waiters();
        while lock(&self.shared.holds).get(group).copied().unwrap_or(0) > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Start after the last commit, which now includes the previous member's last batch.
        let mut positions = HashMap::new();
        {
            let mut all = self.topics();
            for name in topics {
                let t = all.get_mut(name).ok_or_else(|| unknown_topic(name))?;
                let end = t.base + t.messages.len() as u64;
                // A group is a reader from the moment it joins: retention keeps what it has not
                // read yet ahead of what every group has.
                let next = *t.committed.entry(group.to_owned()).or_insert(match start {
                    StartAt::Earliest => t.base,
                    StartAt::Latest => end,
                });
                positions.insert(name.clone(), next);
            }
        }
        Ok(Box::new(InProcessConsumer {
            bus: self.clone(),
            group: group.to_owned(),
            generation,
            positions,
        }))
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

    #[tokio::test]
    async fn retention_is_bounded_by_bytes_too() {
        let bus = InProcessBus::with_limits(1_000, 2_500);
        bus.ensure_topic("t", TopicSpec::partitions(1)).await.unwrap();
        for k in ["a", "b", "c", "d"] {
            bus.publish("t", k, &[0u8; 1_000]).await.unwrap();
        }
        let mut s = bus.subscribe("t", "g").await.unwrap();
        assert_eq!(
            s.next().await.unwrap().unwrap().key,
            "c",
            "two of 1 KB fit in 2.5 KB"
        );
        assert_eq!(s.next().await.unwrap().unwrap().key, "d");
        // A message larger than the bound is still kept (the newest always is).
        bus.publish("t", "big", &[0u8; 10_000]).await.unwrap();
        assert_eq!(s.next().await.unwrap().unwrap().key, "big");
    }

    /// What every group has read is kept only up to the read retention (for a group joining
    /// later); what a group has still to read is kept up to the whole bound.
    #[tokio::test]
    async fn read_messages_are_kept_only_up_to_the_read_retention() {
        let bus = InProcessBus::with_read_retention(1_000, 1 << 20, 3_500);
        bus.ensure_topic("t", TopicSpec::partitions(1)).await.unwrap();
        let mut reader = bus
            .consume(&["t".to_owned()], "g", StartAt::Earliest)
            .await
            .unwrap();
        let publish = |i: usize| {
            let bus = bus.clone();
            async move { bus.publish("t", &i.to_string(), &[0u8; 1_000]).await.unwrap() }
        };
        for i in 0..10 {
            publish(i).await;
        }
        let got = reader.poll(100, Duration::from_millis(50)).await.unwrap();
        assert_eq!(got.len(), 10, "nothing unread was dropped");
        reader.commit(&got).await.unwrap();
        for i in 10..14 {
            publish(i).await;
        }
        // The three newest read messages fit in 3.5 KB; the four unread ones all stay.
        let mut late = bus
            .consume(&["t".to_owned()], "late", StartAt::Earliest)
            .await
            .unwrap();
        let keys: Vec<String> = late
            .poll(100, Duration::from_millis(50))
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.message.key)
            .collect();
        assert_eq!(keys, ["7", "8", "9", "10", "11", "12", "13"]);
        assert_eq!(bus.dropped_unread(), 0);
    }

    #[tokio::test]
    async fn the_byte_bound_is_for_the_whole_bus_and_read_messages_go_first() {
        let bus = InProcessBus::with_limits(1_000, 6_000);
        for t in ["read", "unread"] {
            bus.ensure_topic(t, TopicSpec::partitions(1)).await.unwrap();
        }
        let mut reader = bus
            .consume(&["read".to_owned()], "g", StartAt::Earliest)
            .await
            .unwrap();
        let mut waiting = bus
            .consume(&["unread".to_owned()], "h", StartAt::Earliest)
            .await
            .unwrap();
        for k in ["a", "b"] {
            bus.publish("unread", k, &[0u8; 1_000]).await.unwrap();
            bus.publish("read", k, &[0u8; 1_000]).await.unwrap();
        }
        let got = reader.poll(10, Duration::from_millis(50)).await.unwrap();
        assert_eq!(got.len(), 2);
        reader.commit(&got).await.unwrap();
        // About 4 KB held; two more of 1 KB exceed 6 KB: a read message of "read" makes room
        // (its newest is always kept), so everything "unread" still waits for its group.
        bus.publish("unread", "c", &[0u8; 1_000]).await.unwrap();
        bus.publish("unread", "d", &[0u8; 1_000]).await.unwrap();
        assert!(bus.held_bytes() <= 6_000, "{}", bus.held_bytes());
        assert_eq!(bus.dropped_unread(), 0);
        let keys: Vec<String> = waiting
            .poll(10, Duration::from_millis(50))
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.message.key)
            .collect();
        assert_eq!(keys, ["a", "b", "c", "d"]);
        // Nothing read is left to drop: now unread messages go, and are counted.
        for k in ["e", "f", "g"] {
            bus.publish("unread", k, &[0u8; 1_000]).await.unwrap();
        }
        assert!(bus.held_bytes() <= 6_000, "{}", bus.held_bytes());
        assert!(bus.dropped_unread() >= 1, "{}", bus.dropped_unread());
    }
}
