//! The telemetry-source contract, on Mosquitto and on the in-process feed: what is published
//! after a group subscribed reaches it intact, each message reaches one subscriber of a group and
//! every group, acknowledging is possible for every message, and an unreachable broker is named
//! without its password.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use ioto_domain::ports::{TelemetryMessage, TelemetrySource};
use ioto_domain::usage::telemetry_topic;
use ioto_domain::{DeviceId, Error};
use ioto_ingest::telemetry::{InProcessTelemetry, MqttConfig, MqttTelemetry};
use ioto_test_support::unique;

const MOSQUITTO: &str = "mqtt://127.0.0.1:1883";

/// Messages from `stream` until `n` arrived or nothing came for `quiet`.
async fn take(
    stream: &mut BoxStream<'static, TelemetryMessage>,
    n: usize,
    quiet: Duration,
) -> Vec<(String, Vec<u8>)> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(quiet, stream.next()).await {
            Ok(Some(m)) => {
                got.push((m.topic.clone(), m.payload.clone()));
                m.ack().await;
            }
            Ok(None) | Err(_) => break,
        }
    }
    got
}

fn messages(n: usize) -> Vec<(String, Vec<u8>)> {
    let devices: Vec<DeviceId> = (0..3).map(|_| DeviceId(uuid::Uuid::new_v4())).collect();
    (0..n)
        .map(|i| {
            (
                telemetry_topic(devices[i % devices.len()]),
                format!("{{\"n\":{i},\"text\":\"é ✓\"}}").into_bytes(),
            )
        })
        .collect()
}

async fn contract(source: Arc<dyn TelemetrySource>) {
    source.ping().await.unwrap();
    // Subscribers first: a source keeps nothing for groups that did not subscribe yet.
    let group = unique("contract");
    let mut a = source.subscribe(&group).await.unwrap();
    let mut b = source.subscribe(&group).await.unwrap();
    let mut other = source.subscribe(&unique("other")).await.unwrap();
    // A broker needs a moment to register the subscriptions.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let sent = messages(40);
    source.publish(&sent).await.unwrap();
    source.publish(&[]).await.unwrap();

    // Every group gets every message, intact.
    let mut all = take(&mut other, sent.len(), Duration::from_secs(10)).await;
    all.sort();
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(all, expected, "the other group receives every message once");

    // Within a group each message reaches one subscriber.
    let mut got = Vec::new();
    loop {
        let from_a = take(&mut a, 1, Duration::from_millis(300)).await;
        let from_b = take(&mut b, 1, Duration::from_millis(300)).await;
        if from_a.is_empty() && from_b.is_empty() {
            break;
        }
        got.extend(from_a);
        got.extend(from_b);
    }
    got.sort();
    assert_eq!(
        got, expected,
        "the two subscribers of a group share the messages, none twice"
    );
    let topics: BTreeSet<_> = got.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(topics.len(), 3);
}

#[tokio::test]
async fn in_process_feed() {
    contract(Arc::new(InProcessTelemetry::default())).await;
}

#[tokio::test]
async fn mosquitto() {
    contract(Arc::new(MqttTelemetry::new(
        MqttConfig::parse(MOSQUITTO).unwrap(),
    )))
    .await;
}

#[tokio::test]
async fn an_unreachable_broker_is_named_without_its_password() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let source =
        MqttTelemetry::new(MqttConfig::parse(&format!("mqtt://ioto:hunter2@127.0.0.1:{port}")).unwrap());
    let e = source.ping().await.unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && !text.contains("hunter2"),
        "{text}"
    );
    assert!(source.publish(&messages(1)).await.is_err());
}
