//! The pipeline as users see it, on the real engines with the worker running inside the server:
//! `liveSessions` pushing counted updates to the subscribers allowed to see them, `sim.liveSession`,
//! reconciliation and sub-customer usage through GraphQL, device telemetry from MQTT to
//! `device.telemetry` and `deviceTelemetry`, and the pipeline's metrics.

use std::time::Duration;

use chrono::Utc;
use ioto_domain::Role;
use ioto_ingest::worker::IngestTopics;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::json;

use crate::http::{ws_next, ws_subscribe};

pub(crate) async fn app_with_pipeline(mqtt: bool) -> TestApp {
    let mut config = TestApp::config(Engines::Real).await;
    config.ingest.enabled = true;
    config.ingest.batch_wait_ms = 20;
    if mqtt {
        config.mqtt.url = Some(ioto::config::SecretUrl::new("mqtt://127.0.0.1:1883"));
    } else {
        config.ingest.telemetry = false;
    }
    TestApp::spawn_with(config).await
}

pub(crate) fn rollup(session: &str, iccid: &str, at: chrono::DateTime<Utc>, total_in: u64) -> String {
    json!({"v": 1, "session_id": session, "iccid": iccid, "event_timestamp": at.to_rfc3339(),
        "mcc_mnc": "262-01", "radio_access_type": "LTE-M", "ip_address": "10.9.8.7",
        "total_bytes_in": total_in, "total_bytes_out": total_in / 10, "request_type": "UPDATE"})
    .to_string()
}

/// Polls `/metrics` until `line` appears (the worker is asynchronous).
async fn wait_for_metric(app: &TestApp, line: &str) {
    for _ in 0..100 {
        if app.get_text("/metrics").await.lines().any(|l| l == line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "/metrics never showed {line}:\n{}",
        app.get_text("/metrics").await
    );
}

#[tokio::test]
async fn live_sessions_reach_the_subscribers_allowed_to_see_them() {
    let app = app_with_pipeline(false).await;
    let f = &app.factory;
    let tenant = f.tenant("Live").await;
    let (a, b) = (f.customer(&tenant, "A").await, f.customer(&tenant, "B").await);
    let x = f.sims(&tenant, Some(a.id), 1).await.remove(0).iccid.to_string();
    let y = f.sims(&tenant, Some(b.id), 1).await.remove(0).iccid.to_string();
    let login = |u: ioto_domain::directory::User| {
        let app = &app;
        async move { app.login(u.email.as_str(), TEST_PASSWORD).await }
    };
    let admin = login(f.user(&tenant, Role::TenantAdmin, None).await).await;
    let cu_b = login(f.user(&tenant, Role::CustomerUser, Some(b.id)).await).await;
    let other_tenant = f.tenant("Elsewhere").await;
    let stranger = login(f.user(&other_tenant, Role::TenantAdmin, None).await).await;

    let fields = "iccid customerId addedBytesIn terminated session { online bytesIn bytesOut radioAccessType ipAddress network { name country } }";
    let mut on_x = ws_subscribe(
        &app,
        &admin,
        &format!("subscription {{ liveSessions(iccid: \"{x}\") {{ {fields} }} }}"),
    )
    .await;
    let mut of_b = ws_subscribe(
        &app,
        &cu_b,
        &format!("subscription {{ liveSessions {{ {fields} }} }}"),
    )
    .await;
    let mut foreign = ws_subscribe(
        &app,
        &stranger,
        &format!("subscription {{ liveSessions {{ {fields} }} }}"),
    )
    .await;

    // A platform admin follows one tenant by naming it; a tenant admin may name only its own.
    let platform = login(f.user(&tenant, Role::PlatformAdmin, None).await).await;
    let following = |t: &ioto_domain::directory::Tenant| {
        format!(
            "subscription {{ liveSessions(tenantId: \"{}\") {{ iccid }} }}",
            t.id
        )
    };
    let mut platform_here = ws_subscribe(&app, &platform, &following(&tenant)).await;
    let mut platform_elsewhere = ws_subscribe(&app, &platform, &following(&other_tenant)).await;
    let mut refused = ws_subscribe(&app, &admin, &following(&other_tenant)).await;
    let msg = ws_next(&mut refused).await.unwrap();
    let error = &msg["payload"]["errors"][0];
    assert_eq!(error["extensions"]["code"], "FORBIDDEN", "{msg}");
    assert!(
        error["message"].as_str().unwrap().contains("tenantId"),
        "the refusal names the argument: {msg}"
    );

    let topics = IngestTopics::with_prefix(&app.config.kafka.topic_prefix);
    let bus = &app.app_engines.bus;
    let now = Utc::now();
    for (session, iccid, at, total) in [
        ("sx", x.as_str(), now - chrono::Duration::minutes(10), 100),
        ("sy", y.as_str(), now - chrono::Duration::minutes(9), 7),
        ("sx", x.as_str(), now - chrono::Duration::minutes(5), 250),
    ] {
        bus.publish(
            &topics.sessions,
            session,
            rollup(session, iccid, at, total).as_bytes(),
        )
        .await
        .unwrap();
    }
    bus.publish(&topics.sessions, "junk", b"not json").await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..2 {
        let msg = ws_next(&mut on_x).await.unwrap();
        let u = msg["payload"]["data"]["liveSessions"].clone();
        assert_eq!(u["iccid"], x.as_str(), "{msg}");
        seen.push((u["session"]["bytesIn"].as_i64(), u["addedBytesIn"].as_i64()));
        assert_eq!(u["customerId"], a.id.to_string());
        assert_eq!(u["session"]["online"], true);
        assert_eq!(u["session"]["radioAccessType"], "LTE-M");
        assert_eq!(u["session"]["network"]["country"], "Germany");
    }
    assert_eq!(
        seen,
        vec![(Some(100), Some(100)), (Some(250), Some(150))],
        "in order, with what each added"
    );
    let msg = ws_next(&mut of_b).await.unwrap();
    assert_eq!(
        msg["payload"]["data"]["liveSessions"]["iccid"],
        y.as_str(),
        "the customer user sees its own SIM: {msg}"
    );
    let more = tokio::time::timeout(Duration::from_secs(1), ws_next(&mut of_b)).await;
    assert!(more.is_err(), "and nothing of customer A: {more:?}");
    let silent = tokio::time::timeout(Duration::from_secs(1), ws_next(&mut foreign)).await;
    assert!(silent.is_err(), "another tenant hears nothing: {silent:?}");
    let mut heard = Vec::new();
    for _ in 0..3 {
        let msg = ws_next(&mut platform_here).await.unwrap();
        heard.push(
            msg["payload"]["data"]["liveSessions"]["iccid"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    heard.sort();
    let mut want = vec![x.clone(), x.clone(), y.clone()];
    want.sort();
    assert_eq!(heard, want, "the platform admin hears the tenant it follows");
    let silent = tokio::time::timeout(Duration::from_secs(1), ws_next(&mut platform_elsewhere)).await;
    assert!(
        silent.is_err(),
        "and nothing when following another tenant: {silent:?}"
    );

    // The same numbers through queries.
    let q = "query($i: Iccid!) { sim(iccid: $i) { liveSession { bytesIn online } } }";
    let body = app.gql(Some(&admin), q, json!({"i": x})).await;
    assert_eq!(body["data"]["sim"]["liveSession"]["bytesIn"], 250, "{body}");
    wait_for_metric(
        &app,
        "ioto_ingest_dead_letters_total{reason=\"MALFORMED_JSON\"} 1",
    )
    .await;
    // Where the events' time went, stage by stage.
    let m = app.get_text("/metrics").await;
    for stage in crate::INGEST_STAGES {
        let count = m
            .lines()
            .find_map(|l| l.strip_prefix(&format!("ioto_ingest_stage_seconds_count{{stage=\"{stage}\"}} ")))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {stage} histogram:\n{m}"));
        assert!(count > 0, "{stage}: {m}");
    }
    // The SIM's last network and activity follow the sessions (written every few seconds).
    let seen = "query($i: Iccid!) { sim(iccid: $i) { lastNetwork lastActivityAt } }";
    let mut body = serde_json::Value::Null;
    for _ in 0..60 {
        body = app.gql(Some(&admin), seen, json!({"i": x})).await;
        if !body["data"]["sim"]["lastActivityAt"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(body["data"]["sim"]["lastNetwork"], "262-01", "{body}");

    // Billing: no CDR yet, so the SIM-day shows sessions only; the CDR makes it match. (The
    // sessions above are counted; their usage is written out of ClickHouse's buffers at once.)
    app.app_engines.usage.flush_pending().await.unwrap();
    let recon = "query($d: Date!, $i: Iccid) { usageReconciliation(from: $d, to: $d, iccid: $i) { iccid status sessionBytesIn cdrBytesIn difference } }";
    let today = (now - chrono::Duration::minutes(5)).date_naive();
    let vars = json!({"d": today.to_string(), "i": x});
    let body = app.gql(Some(&admin), recon, vars.clone()).await;
    assert_eq!(
        body["data"]["usageReconciliation"][0]["status"], "SESSIONS_ONLY",
        "{body}"
    );
    let cdr = json!({"v": 1, "cdr_id": "c-1", "iccid": x, "start": (now - chrono::Duration::minutes(10)).to_rfc3339(),
        "end": (now - chrono::Duration::minutes(5)).to_rfc3339(), "mcc_mnc": "262-01",
        "bytes_in": 250, "bytes_out": 25, "rating_group": 10});
    // Delivered twice (mediation retried): billed once.
    for _ in 0..2 {
        bus.publish(&topics.cdrs, &x, cdr.to_string().as_bytes())
            .await
            .unwrap();
    }
    let mut status = serde_json::Value::Null;
    for _ in 0..100 {
        let body = app.gql(Some(&admin), recon, vars.clone()).await;
        status = body["data"]["usageReconciliation"][0].clone();
        if status["status"] == "MATCH" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status["status"], "MATCH", "{status}");
    assert_eq!(status["cdrBytesIn"], 250);
    let body = app.gql(Some(&cu_b), recon, vars).await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");

    // Usage per sub-customer: a customer user sees its own, and is refused another's.
    let per = "query($c: ID, $f: DateTime!, $t: DateTime!) { customerUsage(customerId: $c, from: $f, to: $t) { customerId bytesIn } }";
    let window = json!({"f": (now - chrono::Duration::days(1)).to_rfc3339(), "t": (now + chrono::Duration::hours(1)).to_rfc3339()});
    let mut vars = window.clone();
    let body = app.gql(Some(&cu_b), per, vars.clone()).await;
    let rows = body["data"]["customerUsage"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .clone();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r["customerId"] == b.id.to_string()),
        "{body}"
    );
    assert_eq!(
        rows.iter().map(|r| r["bytesIn"].as_i64().unwrap()).sum::<i64>(),
        7
    );
    vars["c"] = json!(a.id.to_string());
    let body = app.gql(Some(&cu_b), per, vars.clone()).await;
    assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
    let body = app.gql(Some(&admin), per, vars).await;
    let total: i64 = body["data"]["customerUsage"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|r| r["bytesIn"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 250);
    app.stop().await;
}

#[tokio::test]
async fn device_telemetry_flows_from_mqtt_to_queries_and_subscribers() {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

    let app = app_with_pipeline(true).await;
    let f = &app.factory;
    let tenant = f.tenant("Sensors").await;
    let (a, b) = (f.customer(&tenant, "A").await, f.customer(&tenant, "B").await);
    let device = f.device(&tenant, Some(a.id), "cold store 1").await;
    let admin = f.user(&tenant, Role::Operator, None).await;
    let admin = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let cu_b = f.user(&tenant, Role::CustomerUser, Some(b.id)).await;
    let cu_b = app.login(cu_b.email.as_str(), TEST_PASSWORD).await;

    let sub = format!(
        "subscription {{ deviceTelemetry(deviceId: \"{}\") {{ at temperatureC batteryPct latitude }} }}",
        device.id
    );
    let mut stream = ws_subscribe(&app, &admin, &sub).await;
    let mut refused = ws_subscribe(&app, &cu_b, &sub).await;
    let msg = ws_next(&mut refused).await.unwrap();
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "another customer's device cannot be followed: {msg}"
    );

    let mut opts = MqttOptions::new(
        format!("test-{}", uuid::Uuid::new_v4().simple()),
        "127.0.0.1",
        1883,
    );
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(opts, 16);
    let driver = tokio::spawn(async move {
        let mut acks = 0;
        while acks < 3 {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acks += 1,
                Ok(_) => {}
                Err(e) => panic!("MQTT: {e}"),
            }
        }
    });
    let at = Utc::now() - chrono::Duration::seconds(30);
    let topic = ioto_domain::usage::telemetry_topic(device.id);
    let good = json!({"v": 1, "device_id": device.id.to_string(), "at": at.to_rfc3339(),
        "temperature_c": 4.5, "battery_pct": 88.0, "latitude": 52.52, "longitude": 13.4});
    let too_humid = json!({"device_id": device.id.to_string(), "at": at.to_rfc3339(), "humidity_pct": 150});
    let wrong_device =
        json!({"device_id": uuid::Uuid::new_v4().to_string(), "at": at.to_rfc3339(), "temperature_c": 1});
    // A reading from 1901 or from the next century: refused, not retried without end.
    let ancient =
        json!({"device_id": device.id.to_string(), "at": "1901-01-01T00:00:00Z", "temperature_c": 1});
    let future =
        json!({"device_id": device.id.to_string(), "at": "2999-01-01T00:00:00Z", "temperature_c": 1});
    for payload in [&ancient, &future, &good, &too_humid, &wrong_device] {
        client
            .publish(&topic, QoS::AtLeastOnce, false, payload.to_string())
            .await
            .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), driver)
        .await
        .expect("the broker acknowledges")
        .unwrap();

    let msg = ws_next(&mut stream).await.unwrap();
    let r = &msg["payload"]["data"]["deviceTelemetry"];
    assert_eq!(r["temperatureC"], 4.5, "{msg}");
    assert_eq!(r["batteryPct"], 88.0);
    assert_eq!(r["latitude"], 52.52);

    let q = "query($d: ID!) { device(id: $d) { telemetry { at temperatureC humidityPct } } }";
    let body = app
        .gql(Some(&admin), q, json!({"d": device.id.to_string()}))
        .await;
    let readings = body["data"]["device"]["telemetry"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(readings.len(), 1, "only the valid reading is stored: {body}");
    assert_eq!(readings[0]["temperatureC"], 4.5);
    assert!(readings[0]["humidityPct"].is_null());
    wait_for_metric(&app, "ioto_telemetry_rejected_total{reason=\"INVALID_FIELD\"} 2").await;
    wait_for_metric(&app, "ioto_telemetry_rejected_total{reason=\"OUT_OF_RANGE\"} 2").await;
    wait_for_metric(&app, "ioto_telemetry_readings_total 1").await;
    let _ = client.disconnect().await;
    app.stop().await;
}
