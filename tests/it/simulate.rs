//! The session simulator against a real Kafka-protocol broker: what it publishes parses under the
//! contracts, keeps each session in order, and CDRs match the sessions; the history simulator
//! publishes the forecast crate's simulated days with the ground truth of what it injected.

use std::collections::{BTreeSet, HashMap};
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

/// One SIM's day as the history simulator published it.
#[derive(Default)]
struct PublishedDay {
    bytes: u64,
    sessions: usize,
    networks: BTreeSet<String>,
    imeis: BTreeSet<String>,
}

/// `ioto simulate history`: every simulated SIM-day reaches the bus as closed sessions (a rollup
/// and a CDR each, contract version 2 with the device's IMEI) carrying the simulator's bytes; the
/// ground truth is RFC 4180 CSV naming each injected anomaly, which the published days show (no
/// traffic on a silence, 50 sessions or more on a storm, another country, a network never seen
/// before, a device never seen before); arguments out of range, past the ingest window, an
/// unknown tenant or a truth file that cannot be written are refused naming the argument.
#[tokio::test]
async fn simulated_history_reaches_the_bus_with_its_ground_truth() {
    use ioto::tooling::simulate_history::{history, HistoryOptions};
    use ioto_domain::usage::{Networks, RequestType};
    use ioto_domain::MccMnc;
    use ioto_forecast::simulate::simulate_one;

    let (directory, fleet, f) = ioto_test_support::factory::postgres_ports().await;
    let tenant = f.tenant("History").await;
    // SIM i in ICCID order is the simulator's SIM i; never seen on a network, each is at home on
    // 262-01 (Germany).
    let sims = f.sims(&tenant, None, 4).await;
    let bus: Arc<dyn EventBus> = Arc::new(kafka::bus().await);
    let prefix = format!("{}.", unique("history"));
    let truth = ioto_test_support::temp_dir().join("truth.csv");
    let opts = HistoryOptions {
        tenant: tenant.slug.to_string(),
        sims: 4,
        days: 45,
        anomaly_rate: 1.0,
        seed: 9,
        truth: Some(truth.clone()),
        max_event_age_days: 60,
        progress: false,
    };

    let with = |change: &dyn Fn(&mut HistoryOptions)| {
        let mut changed = opts.clone();
        change(&mut changed);
        changed
    };
    let unwritable = truth.join("missing").join("truth.csv");
    for (refused, flag) in [
        (with(&|o: &mut HistoryOptions| o.days = 0), "--days"),
        (
            with(&|o: &mut HistoryOptions| (o.days, o.max_event_age_days) = (401, 3650)),
            "--days",
        ),
        (
            with(&|o: &mut HistoryOptions| o.days = 60),
            "ingest.max_event_age_days",
        ),
        (with(&|o: &mut HistoryOptions| o.sims = 100_001), "--sims"),
        (
            with(&|o: &mut HistoryOptions| o.anomaly_rate = f64::NAN),
            "--anomalies",
        ),
        (
            with(&|o: &mut HistoryOptions| o.anomaly_rate = 2.0),
            "--anomalies",
        ),
        (
            with(&|o: &mut HistoryOptions| o.tenant = "no-such-tenant".into()),
            "--tenant",
        ),
        (
            with(&|o: &mut HistoryOptions| o.truth = Some(unwritable.clone())),
            "--truth",
        ),
    ] {
        let err = history(&directory, &fleet, &bus, &prefix, &refused)
            .await
            .unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains(flag), "{refused:?}: {err}");
    }
    assert!(!truth.exists(), "nothing written by a refused run");

    let summary = history(&directory, &fleet, &bus, &prefix, &opts).await.unwrap();
    assert_eq!(summary.sims, 4);
    assert_eq!((summary.last_day - summary.first_day).num_days(), 44);
    assert_eq!(
        summary.first_day,
        chrono::Utc::now().date_naive() - chrono::Duration::days(45)
    );
    assert_eq!(
        (summary.rollups, summary.cdrs),
        (summary.sessions, summary.sessions)
    );

    // The rollups: one TERMINATE per session, with the device's IMEI.
    let topics = IngestTopics::with_prefix(&prefix);
    let mut rollups = bus.subscribe(&topics.sessions, &unique("g")).await.unwrap();
    let mut days: HashMap<(String, chrono::NaiveDate), PublishedDay> = HashMap::new();
    let mut sessions: HashMap<String, u64> = HashMap::new();
    for _ in 0..summary.rollups {
        let m = tokio::time::timeout(Duration::from_secs(30), rollups.next())
            .await
            .expect("rollups arrive")
            .unwrap()
            .unwrap();
        let r = SessionRollup::from_json(&m.payload).unwrap();
        assert_eq!(m.key, r.session_id);
        assert_eq!(r.request_type, RequestType::Terminate, "{r:?}");
        let imei = r.imei.as_ref().expect("contract version 2: the device's IMEI");
        let bytes = r.total_bytes_in + r.total_bytes_out;
        assert!(
            sessions.insert(r.session_id.clone(), bytes).is_none(),
            "one rollup per session"
        );
        let day = days
            .entry((r.iccid.to_string(), r.event_timestamp.date_naive()))
            .or_default();
        day.bytes += bytes;
        day.sessions += 1;
        day.networks.insert(r.mcc_mnc.to_string());
        day.imeis.insert(imei.as_str().to_owned());
    }
    // The CDRs: one per session, with its bytes.
    let mut cdrs = bus.subscribe(&topics.cdrs, &unique("g")).await.unwrap();
    for _ in 0..summary.cdrs {
        let m = tokio::time::timeout(Duration::from_secs(30), cdrs.next())
            .await
            .expect("CDRs arrive")
            .unwrap()
            .unwrap();
        let c = Cdr::from_json(&m.payload).unwrap();
        let session = c.cdr_id.strip_prefix("cdr-").expect("the CDR names its session");
        assert_eq!(sessions.get(session), Some(&(c.bytes_in + c.bytes_out)), "{c:?}");
    }

    // Every day carries the simulator's bytes; the truth is the simulator's labels.
    let mut expected = Vec::new();
    for (i, sim) in sims.iter().enumerate() {
        let (simulated, injected) = simulate_one(9, i, 45, summary.first_day, 1.0);
        for (d, bytes) in simulated.daily_bytes.iter().enumerate() {
            let date = summary.first_day + chrono::Duration::days(d as i64);
            let published = days
                .get(&(sim.iccid.to_string(), date))
                .map_or(0, |day| day.bytes);
            assert_eq!(published, bytes.round() as u64, "{} on {date}", sim.iccid);
        }
        expected.extend(
            injected
                .iter()
                .map(|a| (sim.iccid.to_string(), a.kind.as_str().to_owned(), a.day)),
        );
    }
    let text = std::fs::read_to_string(&truth).unwrap();
    assert!(
        text.starts_with("iccid,kind,anomaly_kind,day,detail\r\n"),
        "{text}"
    );
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), summary.anomalies);
    assert!(!rows.is_empty(), "a rate of 1 injects anomalies");
    let mut labelled: Vec<(String, String, chrono::NaiveDate)> = rows
        .iter()
        .map(|r| (r[0].to_owned(), r[2].to_owned(), r[3].parse().unwrap()))
        .collect();
    labelled.sort();
    expected.sort();
    assert_eq!(labelled, expected);
    for r in &rows {
        assert!(
            ["tracker", "meter", "camera", "gateway"].contains(&&r[1]),
            "{r:?}"
        );
        assert!(!r[4].is_empty(), "{r:?}");
    }

    // What each label says is in the published days.
    let country = |code: &str| {
        Networks::builtin()
            .get(&MccMnc::parse(code).unwrap())
            .map(|n| n.country_code.clone())
            .unwrap_or_default()
    };
    for (iccid, kind, day) in &labelled {
        let on = |date: chrono::NaiveDate| days.get(&(iccid.clone(), date));
        let before = |date: chrono::NaiveDate| {
            days.iter()
                .filter(move |((sim, d), _)| sim == iccid && *d < date)
                .map(|(_, published)| published)
        };
        match kind.as_str() {
            "SILENCE" => assert!(on(*day).is_none(), "{iccid} {kind} {day}"),
            "SESSION_STORM" => {
                assert!(on(*day).is_some_and(|d| d.sessions >= 50), "{iccid} {kind} {day}")
            }
            "NEW_COUNTRY" => {
                let published = on(*day).expect("a session abroad");
                assert!(
                    published.networks.iter().all(|n| country(n) != "DE"),
                    "{iccid} {kind} {day}: {:?}",
                    published.networks
                );
            }
            "NEW_NETWORK" => {
                let published = on(*day).expect("a session on the new network");
                for network in &published.networks {
                    assert_eq!(country(network), "DE", "{iccid} {kind} {day}: at home");
                    assert!(
                        before(*day).all(|earlier| !earlier.networks.contains(network)),
                        "{iccid} {kind} {day}: {network} is new"
                    );
                }
            }
            "IMEI_CHANGE" => {
                if let Some(published) = on(*day) {
                    for imei in &published.imeis {
                        assert!(
                            before(*day).all(|earlier| !earlier.imeis.contains(imei)),
                            "{iccid} {kind} {day}: a device never seen before"
                        );
                    }
                }
            }
            _ => {}
        }
    }
    // Each SIM ends in the device its live sessions report.
    for sim in &sims {
        let last = days
            .iter()
            .filter(|((iccid, _), _)| *iccid == sim.iccid.to_string())
            .max_by_key(|((_, date), _)| *date)
            .map(|(_, published)| published.imeis.clone())
            .expect("the SIM has traffic");
        let now = ioto_ingest::simulator::device_imei(&sim.iccid).unwrap();
        assert_eq!(last, BTreeSet::from([now.as_str().to_owned()]), "{}", sim.iccid);
    }
}
