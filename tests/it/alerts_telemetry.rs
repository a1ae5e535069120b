//! The device telemetry trigger end to end: readings published as devices publish them (over
//! MQTT to Mosquitto on the real engines, on the in-process feed on the embedded ones) fire a rule
//! on the SIM in the device, with the reading in words, told in the app, by e-mail and by signed
//! webhook; hysteresis keeps the alert open until the reading is back at the clear value; a device
//! without a SIM, and another tenant's device, fire nothing. Rules are refused naming the field.

use std::time::Duration;

use chrono::Utc;
use ioto_domain::fleet::Device;
use ioto_domain::usage::telemetry_topic;
use ioto_domain::Role;
use ioto_test_support::app::assert_refused;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

use crate::alerts::{alerts, create_rule, until, until_alerts};
use crate::fleet::notify::{receiver, SmtpServer};

/// An app storing device readings (from Mosquitto on the real engines), evaluating alert rules
/// on the clock every second, and sending e-mail and webhooks.
async fn telemetry_app(engines: Engines, smtp: &SmtpServer) -> TestApp {
    let mut config = TestApp::config(engines).await;
    config.ingest.enabled = true;
    config.ingest.batch_wait_ms = 20;
    config.ingest.telemetry = true;
    if engines == Engines::Real {
        config.mqtt.url = Some(ioto::config::SecretUrl::new("mqtt://127.0.0.1:1883"));
    }
    config.fleet.alert_tick_seconds = 1;
    config.smtp.url = Some(ioto::config::SecretUrl::new(format!(
        "smtp://127.0.0.1:{}",
        smtp.port
    )));
    config.smtp.from = "Ioto Test <ioto@example.org>".into();
    config.notifications.allow_loopback_http = true;
    config.notifications.poll_ms = 100;
    TestApp::spawn_with(config).await
}

/// Publishes one reading of `device` taken now, as the device would (`sensors`: the measurements).
async fn publish_reading(app: &TestApp, device: &Device, sensors: Value) {
    let mut reading = sensors;
    reading["v"] = json!(1);
    reading["device_id"] = json!(device.id.to_string());
    reading["at"] = json!(Utc::now().to_rfc3339());
    app.app_engines
        .telemetry
        .publish(&[(telemetry_topic(device.id), reading.to_string().into_bytes())])
        .await
        .unwrap();
}

const BIND: &str = "mutation($i: Iccid!, $d: ID!) { bindSim(iccid: $i, deviceId: $d) { sim { iccid } } }";

async fn bind(app: &TestApp, token: &str, iccid: &str, device: &Device) {
    let body = app
        .gql(Some(token), BIND, json!({"i": iccid, "d": device.id.to_string()}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
}

/// The notifications of alerts the caller sees, oldest first: (kind, title, body).
async fn alert_notices(app: &TestApp, token: &str) -> Vec<(String, String, String)> {
    let body = app
        .gql(
            Some(token),
            "{ notifications(first: 50) { nodes { kind title body } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let mut notes: Vec<(String, String, String)> = body["data"]["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"].as_str().unwrap_or("").starts_with("ALERT_"))
        .map(|n| {
            (
                n["kind"].as_str().unwrap().to_owned(),
                n["title"].as_str().unwrap().to_owned(),
                n["body"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    notes.reverse();
    notes
}

async fn until_notices(app: &TestApp, token: &str, n: usize) -> Vec<(String, String, String)> {
    for _ in 0..300 {
        let notes = alert_notices(app, token).await;
        if notes.len() >= n {
            return notes;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "fewer than {n} alert notifications: {:?}",
        alert_notices(app, token).await
    );
}

/// A temperature rule (above 35 °C, clearing at or below 33 °C) on a tenant whose device holds a
/// SIM: 38.5 °C fires it about the SIM, in words, on every channel; 34 °C keeps it firing
/// (hysteresis); 32 °C resolves it, and people are told so.
async fn a_device_too_hot_fires_on_its_sim_holds_and_resolves_on(engines: Engines) {
    let smtp = SmtpServer::start().await;
    let (base, received) = receiver().await;
    let app = telemetry_app(engines, &smtp).await;
    let f = &app.factory;
    let t = f.tenant("Cold chain").await;
    let sims = f.sims(&t, None, 2).await;
    let fridge = f.device(&t, None, "fridge 1").await;
    let bare = f.device(&t, None, "no SIM").await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    bind(&app, &token, sims[0].iccid.as_str(), &fridge).await;
    // Another tenant's hot device, with a SIM in it: not the rule's to see.
    let other = f.tenant("Elsewhere").await;
    let theirs = f.sims(&other, None, 1).await;
    let their_device = f.device(&other, None, "oven").await;
    let their_admin = f.user(&other, Role::TenantAdmin, None).await;
    let their_token = app.login(their_admin.email.as_str(), TEST_PASSWORD).await;
    bind(&app, &their_token, theirs[0].iccid.as_str(), &their_device).await;

    let hook = app
        .gql(
            Some(&token),
            "mutation($url: String!) { createWebhookEndpoint(input: {url: $url}) { endpoint { id } } }",
            json!({"url": format!("{base}/ok")}),
        )
        .await;
    assert!(hook["errors"].is_null(), "{hook}");
    let rule = create_rule(
        &app,
        &token,
        json!({"name": "Hot devices", "severity": "MAJOR", "groupWaitSeconds": 0, "groupIntervalSeconds": 10,
            "condition": {"metric": "TELEMETRY_ABOVE", "field": "TEMPERATURE", "value": 35, "clearValue": 33},
            "channels": {"inApp": true, "webhook": true, "emails": ["cold@example.org"]}}),
    )
    .await;
    assert_eq!(
        rule["conditionText"],
        "Temperature above 35 °C (clears at or below 33 °C)"
    );
    let read = app
        .gql(
            Some(&token),
            "query($id: ID!) { alertRule(id: $id) { metric field value clearValue threshold } }",
            json!({"id": rule["id"]}),
        )
        .await;
    assert_eq!(
        read["data"]["alertRule"],
        json!({"metric": "TELEMETRY_ABOVE", "field": "TEMPERATURE", "value": 35.0, "clearValue": 33.0, "threshold": null}),
        "{read}"
    );

    // 38.5 °C in the fridge (and 40 °C in the device without a SIM, 50 °C in the other tenant's):
    // published until the pipeline, which subscribed at start, takes them.
    let mut fired = Vec::new();
    for _ in 0..30 {
        publish_reading(&app, &fridge, json!({"temperature_c": 38.5, "battery_pct": 80.0})).await;
        publish_reading(&app, &bare, json!({"temperature_c": 40.0})).await;
        publish_reading(&app, &their_device, json!({"temperature_c": 50.0})).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        fired = alerts(&app, &token, json!({"ruleId": rule["id"]})).await;
        if !fired.is_empty() {
            break;
        }
    }
    assert_eq!(fired.len(), 1, "only the SIM in the fridge: {fired:?}");
    let a = &fired[0];
    assert_eq!(
        (&a["iccid"], &a["state"], &a["severity"]),
        (&json!(sims[0].iccid.as_str()), &json!("FIRING"), &json!("MAJOR"))
    );
    assert_eq!(a["detail"], "temperature 38.5 °C, above 35 °C");
    assert_eq!(a["value"], 3850, "the reading in hundredths of a degree");

    // Told in the app (in words), by e-mail and by webhook.
    let notes = until_notices(&app, &token, 1).await;
    assert_eq!(notes[0].0, "ALERT_FIRING");
    assert_eq!(notes[0].1, "Major: Hot devices (1 SIM)");
    assert!(
        notes[0].2.contains("temperature 38.5 °C, above 35 °C"),
        "{notes:?}"
    );
    let mail = until("no e-mail about the hot device", || {
        smtp.messages()
            .into_iter()
            .find(|m| m.contains("cold@example.org"))
    })
    .await;
    assert!(mail.contains("Hot devices"), "{mail}");
    let hook = until("no webhook about the hot device", || {
        let got = received.lock().unwrap();
        got.iter()
            .map(|(_, r)| serde_json::from_slice::<Value>(&r.body).unwrap())
            .find(|b| b["type"] == "alert.firing")
    })
    .await;
    let told = &hook["data"]["alerts"][0];
    assert_eq!(
        (&told["subject"], &told["value"], &told["detail"]),
        (
            &json!(sims[0].iccid.as_str()),
            &json!(3850),
            &json!("temperature 38.5 °C, above 35 °C")
        ),
        "{hook}"
    );
    assert_eq!(hook["data"]["rule"]["metric"], "TELEMETRY_ABOVE");

    // 34 °C: under the value, not yet at the clear value: still firing, the reading followed.
    publish_reading(&app, &fridge, json!({"temperature_c": 34.0})).await;
    let held = until_alerts(
        &app,
        &token,
        json!({"ruleId": rule["id"]}),
        "34 °C was never observed",
        |a| a.len() == 1 && a[0]["value"] == 3400,
    )
    .await;
    assert_eq!(held[0]["state"], "FIRING", "hysteresis: {held:?}");
    assert_eq!(held[0]["id"], a["id"]);
    assert_eq!(held[0]["detail"], "temperature 34 °C, not yet at or below 33 °C");

    // 32 °C: at or below the clear value: resolved, and after the group interval people are told.
    publish_reading(&app, &fridge, json!({"temperature_c": 32.0})).await;
    let resolved = until_alerts(
        &app,
        &token,
        json!({"ruleId": rule["id"]}),
        "32 °C did not resolve the alert",
        |a| a.len() == 1 && a[0]["state"] == "RESOLVED",
    )
    .await;
    assert_eq!(resolved[0]["id"], a["id"]);
    assert_eq!(resolved[0]["value"], 3200);
    assert_eq!(resolved[0]["detail"], "temperature 32 °C, at or below 33 °C");
    let notes = until_notices(&app, &token, 2).await;
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(
        (notes[1].0.as_str(), notes[1].1.as_str()),
        ("ALERT_RESOLVED", "Resolved: Hot devices (1 SIM)")
    );
    assert!(
        notes[1].2.contains("temperature 32 °C, at or below 33 °C"),
        "{notes:?}"
    );
    until("the resolve notice never arrived by webhook", || {
        let got = received.lock().unwrap();
        got.iter()
            .any(|(_, r)| serde_json::from_slice::<Value>(&r.body).unwrap()["type"] == "alert.resolved")
            .then_some(())
    })
    .await;

    // The device without a SIM and the other tenant's device fired nothing, anywhere.
    let all = alerts(&app, &token, json!({})).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let theirs = alerts(&app, &their_token, json!({})).await;
    assert!(theirs.is_empty(), "{theirs:?}");
}

#[tokio::test]
async fn a_device_too_hot_fires_on_its_sim_holds_and_resolves_on_embedded_engines() {
    a_device_too_hot_fires_on_its_sim_holds_and_resolves_on(Engines::Embedded).await;
}

#[tokio::test]
async fn a_device_too_hot_fires_on_its_sim_holds_and_resolves_on_real_engines() {
    a_device_too_hot_fires_on_its_sim_holds_and_resolves_on(Engines::Real).await;
}

/// A battery running low fires a rule watching by label, below zero temperatures are readings
/// like any other, and a rule on a sensor the reading does not carry is not touched by it.
#[tokio::test]
async fn readings_below_a_value_fire_below_rules_by_label_and_other_sensors_are_left_alone() {
    let smtp = SmtpServer::start().await;
    let app = telemetry_app(Engines::Embedded, &smtp).await;
    let f = &app.factory;
    let t = f.tenant("Freezers").await;
    let sims = f.sims(&t, None, 1).await;
    let freezer = f.device(&t, None, "freezer").await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    bind(&app, &token, sims[0].iccid.as_str(), &freezer).await;
    let labelled = app
        .gql(
            Some(&token),
            "mutation($i: Iccid!) { changeSimLabels(iccid: $i, change: { set: [{ key: \"site\", value: \"north\" }] }) { sim { iccid } } }",
            json!({"i": sims[0].iccid}),
        )
        .await;
    assert!(labelled["errors"].is_null(), "{labelled}");
    let north = json!({"kind": "LABELS", "labels": [{"key": "site", "value": "north"}]});
    let frost = create_rule(
        &app,
        &token,
        json!({"name": "Too cold", "groupWaitSeconds": 0, "target": north,
            "condition": {"metric": "TELEMETRY_BELOW", "field": "TEMPERATURE", "value": -18.5}}),
    )
    .await;
    assert_eq!(frost["conditionText"], "Temperature below -18.5 °C");
    let battery = create_rule(
        &app,
        &token,
        json!({"name": "Battery low", "groupWaitSeconds": 0,
            "condition": {"metric": "TELEMETRY_BELOW", "field": "BATTERY", "value": 15, "clearValue": 20}}),
    )
    .await;
    let mut cold = Vec::new();
    for _ in 0..30 {
        publish_reading(&app, &freezer, json!({"temperature_c": -21.25})).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        cold = alerts(&app, &token, json!({"ruleId": frost["id"]})).await;
        if !cold.is_empty() {
            break;
        }
    }
    assert_eq!(cold.len(), 1, "{cold:?}");
    assert_eq!(
        (&cold[0]["iccid"], &cold[0]["value"], &cold[0]["detail"]),
        (
            &json!(sims[0].iccid.as_str()),
            &json!(-2125),
            &json!("temperature -21.25 °C, below -18.5 °C")
        )
    );
    // The readings carried no battery level: the battery rule saw nothing.
    assert!(alerts(&app, &token, json!({"ruleId": battery["id"]}))
        .await
        .is_empty());
    publish_reading(&app, &freezer, json!({"battery_pct": 8})).await;
    let low = until_alerts(
        &app,
        &token,
        json!({"ruleId": battery["id"]}),
        "a battery at 8 % fired nothing",
        |a| !a.is_empty(),
    )
    .await;
    assert_eq!(low[0]["detail"], "battery 8 %, below 15 %");
    // A reading without a temperature leaves the frost alert as it was.
    let still = alerts(&app, &token, json!({"ruleId": frost["id"]})).await;
    assert_eq!(
        (&still[0]["state"], &still[0]["value"]),
        (&json!("FIRING"), &json!(-2125))
    );
}

/// Telemetry rules are refused naming the field and saying what is allowed; the other metrics
/// refuse the telemetry fields.
#[tokio::test]
async fn telemetry_rules_are_refused_naming_the_field() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let f = &app.factory;
    let t = f.tenant("Telemetry rules").await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let create = |condition: Value| {
        let (app, token) = (&app, token.clone());
        async move {
            app.gql(
                Some(&token),
                "mutation($in: AlertRuleInput!) { createAlertRule(input: $in) { id conditionText } }",
                json!({"in": {"name": "Sensor", "condition": condition}}),
            )
            .await
        }
    };
    for (condition, field, why) in [
        (
            json!({"metric": "TELEMETRY_ABOVE", "value": 30}),
            "condition.field",
            "needs the sensor it reads: TEMPERATURE, HUMIDITY, BATTERY or LIGHT",
        ),
        (
            json!({"metric": "TELEMETRY_BELOW", "field": "BATTERY"}),
            "condition.value",
            "needs a value: for BATTERY, 0 to 100 %",
        ),
        (
            json!({"metric": "TELEMETRY_ABOVE", "field": "TEMPERATURE", "value": 151}),
            "condition.value",
            "-80 to 150 °C",
        ),
        (
            json!({"metric": "TELEMETRY_BELOW", "field": "HUMIDITY", "value": -5}),
            "condition.value",
            "0 to 100 %",
        ),
        (
            json!({"metric": "TELEMETRY_ABOVE", "field": "LIGHT", "value": 250000}),
            "condition.value",
            "0 to 200000 lx",
        ),
        (
            json!({"metric": "TELEMETRY_ABOVE", "field": "TEMPERATURE", "value": 35.125}),
            "condition.value",
            "more than two decimals",
        ),
        (
            json!({"metric": "TELEMETRY_ABOVE", "field": "TEMPERATURE", "value": 35, "clearValue": 36}),
            "condition.clearValue",
            "must be below the value (35)",
        ),
        (
            json!({"metric": "TELEMETRY_ABOVE", "field": "TEMPERATURE", "value": 35, "clearValue": 35}),
            "condition.clearValue",
            "must be below the value (35)",
        ),
        (
            json!({"metric": "TELEMETRY_BELOW", "field": "BATTERY", "value": 15, "clearValue": 10}),
            "condition.clearValue",
            "must be above the value (15)",
        ),
        (
            json!({"metric": "TELEMETRY_BELOW", "field": "BATTERY", "value": 15, "clearValue": 101}),
            "condition.clearValue",
            "out of range for BATTERY",
        ),
        (
            json!({"metric": "TELEMETRY_ABOVE", "field": "TEMPERATURE", "value": 35, "threshold": 35}),
            "condition.threshold",
            "takes no threshold",
        ),
        (
            json!({"metric": "DATA_IN_DAY", "threshold": 1000, "field": "TEMPERATURE", "value": 30}),
            "condition.field",
            "only TELEMETRY_ABOVE and TELEMETRY_BELOW take a telemetry field, not DATA_IN_DAY",
        ),
        (
            json!({"metric": "OFFLINE_HOURS", "threshold": 24, "value": 30}),
            "condition.value",
            "only TELEMETRY_ABOVE and TELEMETRY_BELOW take a value, not OFFLINE_HOURS",
        ),
        (
            json!({"metric": "QUOTA_STAGE", "threshold": 80, "clearValue": 30}),
            "condition.clearValue",
            "only TELEMETRY_ABOVE and TELEMETRY_BELOW take a clear value",
        ),
    ] {
        let body = create(condition.clone()).await;
        assert_refused(&body, field, why);
    }
    // A sensor the API does not know is refused by the schema, naming it.
    let unknown = create(json!({"metric": "TELEMETRY_ABOVE", "field": "PRESSURE", "value": 1})).await;
    assert!(
        unknown["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("PRESSURE"),
        "{unknown}"
    );
    let words = create(json!({"metric": "TELEMETRY_ABOVE", "field": "TEMPERATURE", "value": "hot"})).await;
    assert!(!words["errors"].is_null(), "{words}");
    // Nothing refused was kept; the boundaries devices report are accepted.
    let edge = create(
        json!({"metric": "TELEMETRY_BELOW", "field": "TEMPERATURE", "value": -80, "clearValue": -79.99}),
    )
    .await;
    assert!(edge["errors"].is_null(), "{edge}");
    assert_eq!(
        edge["data"]["createAlertRule"]["conditionText"],
        "Temperature below -80 °C (clears at or above -79.99 °C)"
    );
    let rules = app.gql(Some(&token), "{ alertRules { name } }", json!({})).await;
    assert_eq!(
        rules["data"]["alertRules"].as_array().unwrap().len(),
        1,
        "{rules}"
    );
}
