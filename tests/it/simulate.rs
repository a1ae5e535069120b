//! The session simulator against a real Kafka-protocol broker: what it publishes parses under the
//! contracts, keeps each session in order, and CDRs match the sessions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ioto::tooling::simulate::SessionOptions;
use ioto_domain::ports::EventBus;
use ioto_domain::usage::{Cdr, SessionRollup};
use ioto_ingest::worker::IngestTopics;
use ioto_test_support::{kafka, unique};

#[tokio::test]
async fn simulated_sessions_reach_the_bus_in_order_and_match_their_cdrs() {
    let (directory, fleet, f) = ioto_test_support::factory::postgres_ports().await;
    let tenant = f.tenant("Sim").await;
    f.sims(&tenant, None, 6).await;
    let bus: Arc<dyn EventBus> = Arc::new(kafka::bus().await);
    let prefix = format!("{}.", unique("sim"));
    let now = chrono::Utc::now();
    let opts = SessionOptions {
        tenant: tenant.slug.to_string(),
        sims: 4,
        from: now - chrono::Duration::hours(6),
        to: now,
        bytes_min: 1_000,
        bytes_max: 1_000_000,
        sessions_per_sim: 2,
        rate: 0,
        seed: 42,
        progress: false,
    };
    let summary = ioto::tooling::simulate::sessions(&directory, &fleet, &bus, &prefix, &opts)
        .await
        .unwrap();
    assert_eq!(summary.sims, 4);
    assert!(
        summary.cdrs >= 8,
        "a CDR per session, two for a session across midnight"
    );

    let mut rollups = bus
        .subscribe(&IngestTopics::with_prefix(&prefix).sessions, &unique("g"))
        .await
        .unwrap();
    let mut last: HashMap<String, (u64, bool)> = HashMap::new();
    for _ in 0..summary.rollups {
        let m = tokio::time::timeout(Duration::from_secs(30), rollups.next())
            .await
            .expect("rollups arrive")
            .unwrap()
            .unwrap();
        let r = SessionRollup::from_json(&m.payload).unwrap();
        assert_eq!(m.key, r.session_id);
        let (prev, terminated) = last.get(&r.session_id).copied().unwrap_or((0, false));
        assert!(!terminated, "an update after TERMINATE in {}", r.session_id);
        assert!(r.total_bytes_in >= prev, "session {} out of order", r.session_id);
        last.insert(
            r.session_id.clone(),
            (
                r.total_bytes_in,
                r.request_type == ioto_domain::usage::RequestType::Terminate,
            ),
        );
    }
    assert_eq!(last.len(), 8);
    let mut cdrs = bus
        .subscribe(&IngestTopics::with_prefix(&prefix).cdrs, &unique("g"))
        .await
        .unwrap();
    let mut billed: HashMap<String, u64> = HashMap::new();
    for _ in 0..summary.cdrs {
        let m = tokio::time::timeout(Duration::from_secs(30), cdrs.next())
            .await
            .expect("CDRs arrive")
            .unwrap()
            .unwrap();
        let c = Cdr::from_json(&m.payload).unwrap();
        // `cdr-{session}-{day the charging period starts}`
        let session = c
            .cdr_id
            .strip_prefix("cdr-")
            .and_then(|s| s.strip_suffix(&format!("-{}", c.start.date_naive())))
            .expect("CDR id names session and day");
        *billed.entry(session.to_owned()).or_default() += c.bytes_in;
    }
    assert_eq!(billed.len(), 8);
    for (session, bytes) in billed {
        assert_eq!(
            last[&session].0, bytes,
            "the CDRs of {session} add up to its final counters"
        );
    }
}

#[tokio::test]
async fn simulated_devices_publish_valid_readings_over_mqtt() {
    use ioto_domain::usage::{TelemetryReading, TELEMETRY_FILTER};
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

    let (directory, fleet, f) = ioto_test_support::factory::postgres_ports().await;
    let tenant = f.tenant("Devices").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let d = f.device(&tenant, None, &format!("sensor {n}")).await;
        let mut row = d.clone();
        row.state = ioto_domain::fleet::DeviceState::InService;
        fleet
            .apply(
                ioto_domain::Scope::Platform,
                ioto_domain::ports::Changeset {
                    devices: vec![ioto_domain::ports::Versioned {
                        expected_version: Some(1),
                        row,
                    }],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        ids.push(d.id);
    }
    // A listener on the broker first, so no reading is missed.
    let (listener, mut events) = AsyncClient::new(MqttOptions::new(unique("listen"), "127.0.0.1", 1883), 64);
    listener
        .subscribe(TELEMETRY_FILTER, QoS::AtLeastOnce)
        .await
        .unwrap();
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), events.poll())
            .await
            .expect("Mosquitto at 127.0.0.1:1883 answers")
            .expect("Mosquitto at 127.0.0.1:1883 is reachable");
        if matches!(e, Event::Incoming(Packet::SubAck(_))) {
            break;
        }
    }
    let opts = ioto::tooling::simulate::DeviceOptions {
        tenant: tenant.slug.to_string(),
        devices: 10,
        interval: Duration::from_millis(10),
        count: Some(2),
        seed: 5,
        progress: false,
    };
    let source: std::sync::Arc<dyn ioto_domain::ports::TelemetrySource> =
        std::sync::Arc::new(ioto_ingest::telemetry::MqttTelemetry::new(
            ioto_ingest::telemetry::MqttConfig::parse("mqtt://127.0.0.1:1883").unwrap(),
        ));
    let acked = ioto::tooling::simulate::devices(&directory, &fleet, &source, &opts)
        .await
        .unwrap();
    assert_eq!(acked, 6, "two readings of each of the three devices in service");
    let mut mine = 0;
    while mine < 6 {
        let e = tokio::time::timeout(Duration::from_secs(10), events.poll())
            .await
            .expect("readings arrive")
            .unwrap();
        if let Event::Incoming(Packet::Publish(p)) = e {
            let r = TelemetryReading::from_json(&p.payload).unwrap();
            if ids.contains(&r.device_id) {
                assert_eq!(p.topic, ioto_domain::usage::telemetry_topic(r.device_id));
                assert!(r.battery_pct.is_some() && r.latitude.is_some());
                mine += 1;
            }
        }
    }
    let _ = listener.disconnect().await;
}
