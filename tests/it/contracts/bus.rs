use std::time::Duration;

use futures::StreamExt;
use ioto_domain::ports::{BusStream, EventBus, TopicSpec};
use ioto_domain::Error;
use ioto_ingest::InProcessBus;
use ioto_test_support::{kafka, unique};

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

#[tokio::test]
async fn bus_contract_in_process() {
    contract(&InProcessBus::default()).await;
}

#[tokio::test]
async fn bus_contract_on_kafka() {
    contract(&kafka::bus().await).await;
}
