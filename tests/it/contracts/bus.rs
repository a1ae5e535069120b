use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use ioto_domain::ports::{BatchConsumer, BusStream, Delivery, EventBus, StartAt, TopicSpec};
use ioto_domain::Error;
use ioto_ingest::InProcessBus;
use ioto_test_support::{kafka, unique};
use tokio::sync::Notify;

async fn next(stream: &mut BusStream) -> ioto_domain::ports::BusMessage {
    tokio::time::timeout(Duration::from_secs(60), stream.next())
        .await
        .expect("no message within 60 s")
        .expect("stream ended")
        .expect("bus error")
}

async fn contract(bus: &dyn EventBus) {
    bus.ping().await.unwrap();
    let topic = unique("contract");
    let missing = bus.publish(&topic, "k", b"x").await.unwrap_err();
    assert!(
        matches!(missing, Error::InvalidInput { ref reason, .. } if reason.contains(&topic)),
        "{missing:?}"
    );

    bus.ensure_topic(
        &topic,
        TopicSpec {
            partitions: 1,
            retention: Some(Duration::from_secs(3600)),
        },
    )
    .await
    .unwrap();
    bus.ensure_topic(&topic, TopicSpec::partitions(1)).await.unwrap();
    for i in 0..10 {
        bus.publish(&topic, "sim-1", format!("m{i}").as_bytes())
            .await
            .unwrap();
    }
    // Two groups each see every message, in publish order for the key.
    for group in [unique("g1"), unique("g2")] {
        let mut s = bus.subscribe(&topic, &group).await.unwrap();
        for i in 0..10 {
            let m = next(&mut s).await;
            assert_eq!(
                (m.key.as_str(), m.payload.as_slice()),
                ("sim-1", format!("m{i}").as_bytes())
            );
            assert_eq!(m.topic, topic);
        }
    }
    // A live subscriber receives what is published after it joined.
    let mut live = bus.subscribe(&topic, &unique("g3")).await.unwrap();
    for _ in 0..10 {
        next(&mut live).await;
    }
    bus.publish(&topic, "sim-2", b"late").await.unwrap();
    assert_eq!(next(&mut live).await.payload, b"late");
}

/// Polls until `n` deliveries arrived (or 60 s passed).
async fn take(consumer: &mut Box<dyn BatchConsumer>, n: usize, max: usize) -> Vec<Delivery> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while got.len() < n && tokio::time::Instant::now() < deadline {
        got.extend(
            consumer
                .poll(max.min(n - got.len()), Duration::from_millis(200))
                .await
                .unwrap(),
        );
    }
    got
}

/// Batch consumers: batches bounded by size, nothing done until committed, a successor resumes
/// after the last commit, and a member that lost its partitions cannot commit them.
async fn batch_contract(bus: &dyn EventBus) {
    let topic = unique("batch");
    bus.ensure_topic(&topic, TopicSpec::partitions(1)).await.unwrap();
    let group = unique("g");
    let missing = bus
        .consume(&[unique("never-created")], &group, StartAt::Earliest)
        .await;
    assert!(missing.is_err(), "consuming a missing topic is an error");
    for i in 0..10 {
        bus.publish(&topic, "k", format!("m{i}").as_bytes())
            .await
            .unwrap();
    }
    let topics = [topic.clone()];
    let mut first = bus.consume(&topics, &group, StartAt::Earliest).await.unwrap();
    let batch = take(&mut first, 4, 4).await;
    assert_eq!(batch.len(), 4);
    assert_eq!(batch[0].message.payload, b"m0");
    assert!(
        batch.windows(2).all(|w| w[0].offset < w[1].offset),
        "offsets grow"
    );
    assert!(batch[0].source().starts_with(&format!("{topic}/")));
    // A batch is written under a hold on the assignment it was polled under.
    let generation = batch[0].generation;
    assert!(batch.iter().all(|d| d.generation == generation));
    let hold = first
        .hold(generation)
        .expect("the current assignment can be held");
    assert!(
        first.hold(generation.wrapping_add(7)).is_none(),
        "a stale generation cannot"
    );
    first.commit(&batch[..3]).await.unwrap();
    drop(hold);
    drop(first);

    // A successor in the group starts right after the last commit: m3 comes again.
    let mut second = bus.consume(&topics, &group, StartAt::Earliest).await.unwrap();
    let rest = take(&mut second, 7, 100).await;
    let payloads: Vec<_> = rest.iter().map(|d| d.message.payload.clone()).collect();
    assert_eq!(
        payloads.first().map(Vec::as_slice),
        Some(&b"m3"[..]),
        "uncommitted work is delivered again"
    );
    assert_eq!(payloads.len(), 7);
    second.commit(&rest).await.unwrap();
    assert!(
        second
            .poll(10, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty(),
        "nothing more"
    );
    drop(second);

    // Everything was committed: a third member has nothing to do; a new group starts over.
    let mut third = bus.consume(&topics, &group, StartAt::Earliest).await.unwrap();
    bus.publish(&topic, "k", b"m10").await.unwrap();
    let after = take(&mut third, 1, 10).await;
    assert_eq!(after[0].message.payload, b"m10");
    let mut other = bus
        .consume(&topics, &unique("g"), StartAt::Earliest)
        .await
        .unwrap();
    assert_eq!(
        take(&mut other, 11, 100).await.len(),
        11,
        "another group reads everything"
    );
    let mut latest = bus.consume(&topics, &unique("g"), StartAt::Latest).await.unwrap();
    // A group starting at the end sees only what comes after it joined (allow it to join first).
    let _ = latest.poll(1, Duration::from_secs(3)).await.unwrap();
    bus.publish(&topic, "k", b"m11").await.unwrap();
    let fresh = take(&mut latest, 1, 10).await;
    assert_eq!(fresh[0].message.payload, b"m11");

    // A poll told it has enough (as the worker is when its write lands) returns without waiting
    // out its minute, and what it did not take comes with the next poll.
    let enough = Arc::new(Notify::new());
    bus.publish(&topic, "k", b"m12").await.unwrap();
    let signal = Arc::clone(&enough);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        signal.notify_one();
    });
    let started = Instant::now();
    let mut got = latest
        .poll_until(100, Duration::from_secs(60), Box::pin(enough.notified()))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30) && took >= Duration::from_secs(2),
        "the poll collected until the signal (3 s), not after its 60 s nor before: {took:?}"
    );
    if got.is_empty() {
        got = take(&mut latest, 1, 10).await;
    }
    assert_eq!(
        got.iter()
            .map(|d| d.message.payload.as_slice())
            .collect::<Vec<_>>(),
        [&b"m12"[..]]
    );
    // Told before it starts (the write landed first): it returns at once with what is there.
    enough.notify_one();
    let started = Instant::now();
    let nothing = latest
        .poll_until(100, Duration::from_secs(60), Box::pin(enough.notified()))
        .await
        .unwrap();
    assert!(nothing.is_empty(), "nothing was published since m12");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a signal given before the poll counts: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn bus_contract_in_process() {
    contract(&InProcessBus::default()).await;
    batch_contract(&InProcessBus::default()).await;
}

#[tokio::test]
async fn in_process_takeover_revokes_the_previous_member() {
    let bus = InProcessBus::default();
    bus.ensure_topic("t", TopicSpec::partitions(1)).await.unwrap();
    bus.publish("t", "k", b"a").await.unwrap();
    let topics = ["t".to_owned()];
    let mut old = bus.consume(&topics, "g", StartAt::Earliest).await.unwrap();
    let batch = take(&mut old, 1, 10).await;
    let before = old.generation();
    let _new = bus.consume(&topics, "g", StartAt::Earliest).await.unwrap();
    assert_ne!(
        old.generation(),
        before,
        "the old member sees its assignment change"
    );
    assert!(old.commit(&batch).await.is_err(), "and may not commit any more");
}

#[tokio::test]
async fn bus_contract_on_kafka() {
    let bus = kafka::bus().await;
    contract(&bus).await;
    batch_contract(&bus).await;
}
