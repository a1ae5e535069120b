//! The alert triggers on what the forecast pass stores, end to end on both engine sets: a rule
//! "quota forecast to run out within 7 days" fires on the SIM whose forecast crosses its quota
//! (and not on the one with room), with the day in words; a rule on usage spikes and new
//! countries fires on those SIMs (not on the silent one, a kind it does not hear of), with the
//! anomaly's sentence; dismissing the spike resolves its alert; a rule condition given to the
//! wrong metric is refused naming the field. And a SIM seen in another device is an anomaly.

use chrono::{Duration, Utc};
use ioto_domain::ports::Sighting;
use ioto_domain::{MccMnc, Role};
use ioto_test_support::app::assert_refused;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

use crate::alerts::{alert_app, alerts, create_rule, until_alerts};
use crate::fleet::notify::SmtpServer;
use crate::forecasts::{history, seed_story, CROSSING, ROAMING, ROOMY, SILENT, SPIKE};

fn detail(a: &Value) -> &str {
    a["detail"].as_str().unwrap_or_default()
}

async fn forecast_and_anomaly_rules_fire_on(engines: Engines) {
    let smtp = SmtpServer::start().await;
    let app: TestApp = alert_app(engines, &smtp).await;
    let f = &app.factory;
    let t = f.tenant("Foresight").await;
    let sims = f.sims(&t, None, 6).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;

    let today = Utc::now().date_naive();
    // The crossing SIM has 5 MB left of its month: its forecast runs the quota out today. The
    // roomy one has a terabyte.
    seed_story(&app, &token, &sims, today).await;
    let pass = app.forecasts.pass(Utc::now()).await.unwrap();
    assert!(pass.failed.is_empty(), "{pass:?}");

    // A condition for another metric is refused naming it.
    let wrong = app
        .gql(
            Some(&token),
            "mutation { createAlertRule(input: { name: \"Wrong\", condition: { metric: DATA_IN_DAY,
                threshold: 1000, anomalyKinds: [USAGE_SPIKE] } }) { id } }",
            json!({}),
        )
        .await;
    assert_refused(
        &wrong,
        "condition.anomalyKinds",
        "only ANOMALY takes anomaly kinds",
    );
    let too_far = app
        .gql(
            Some(&token),
            "mutation { createAlertRule(input: { name: \"Too far\", condition: {
                metric: QUOTA_EXHAUSTION_FORECAST, threshold: 32 } }) { id } }",
            json!({}),
        )
        .await;
    assert_refused(&too_far, "condition.threshold", "1 to 31 days ahead");
    let twice = app
        .gql(
            Some(&token),
            "mutation { createAlertRule(input: { name: \"Twice\", condition: { metric: ANOMALY,
                anomalyKinds: [SILENCE, USAGE_SPIKE, SILENCE] } }) { id } }",
            json!({}),
        )
        .await;
    assert_refused(&twice, "condition.anomalyKinds[2]", "SILENCE is named twice");

    let running_out = create_rule(
        &app,
        &token,
        json!({"name": "Quota running out", "groupWaitSeconds": 0,
            "condition": {"metric": "QUOTA_EXHAUSTION_FORECAST", "threshold": 7}}),
    )
    .await;
    assert_eq!(
        running_out["conditionText"],
        "Data quota forecast to run out within 7 days"
    );
    let unusual = create_rule(
        &app,
        &token,
        json!({"name": "Spikes and roaming", "groupWaitSeconds": 0,
            "condition": {"metric": "ANOMALY", "anomalyKinds": ["USAGE_SPIKE", "NEW_COUNTRY"]}}),
    )
    .await;
    assert_eq!(
        unusual["conditionText"],
        "An anomaly (usage spike, new country) found"
    );

    // The crossing SIM fires, told in words; the roomy one does not.
    let firing = until_alerts(
        &app,
        &token,
        json!({"ruleId": running_out["id"]}),
        "the SIM whose forecast crosses its quota fired nothing",
        |a| !a.is_empty(),
    )
    .await;
    assert_eq!(firing.len(), 1, "{firing:?}");
    assert_eq!(firing[0]["iccid"], sims[CROSSING].iccid.as_str(), "{firing:?}");
    assert_eq!(
        (&firing[0]["state"], &firing[0]["value"]),
        (&json!("FIRING"), &json!(0))
    );
    let day = today.format("%-d %B").to_string();
    assert!(
        detail(&firing[0]).contains(&format!("quota runs out around {day}")),
        "{firing:?}"
    );

    // The spike and the new country fire; the silence is not a kind the rule hears of.
    let found = until_alerts(
        &app,
        &token,
        json!({"ruleId": unusual["id"]}),
        "the spike and the new country fired no anomaly alerts",
        |a| a.len() >= 2,
    )
    .await;
    let of = |i: usize| found.iter().find(|a| a["iccid"] == sims[i].iccid.as_str());
    let spike = of(SPIKE).unwrap_or_else(|| panic!("no alert on the spike: {found:?}"));
    assert!(detail(spike).starts_with("Usage spike on "), "{spike}");
    assert!(detail(spike).contains("500 MB"), "{spike}");
    let roaming = of(ROAMING).unwrap_or_else(|| panic!("no alert on the new country: {found:?}"));
    assert!(detail(roaming).starts_with("New country on "), "{roaming}");
    assert!(detail(roaming).contains("France"), "{roaming}");
    assert!(of(SILENT).is_none(), "{found:?}");
    assert_eq!(found.len(), 2, "{found:?}");

    // Dismissing the spike resolves its alert within seconds; the new country's stays.
    let listed = app
        .gql(
            Some(&token),
            "{ anomalies(filter: { kinds: [USAGE_SPIKE] }, first: 10) { nodes { id iccid } } }",
            json!({}),
        )
        .await;
    let id = listed["data"]["anomalies"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["iccid"] == sims[SPIKE].iccid.as_str())
        .map(|a| a["id"].clone())
        .unwrap_or_else(|| panic!("{listed}"));
    let dismissed = app
        .gql(
            Some(&token),
            "mutation($id: ID!) { dismissAnomaly(id: $id, comment: \"Firmware update\") { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        dismissed["data"]["dismissAnomaly"]["status"], "DISMISSED",
        "{dismissed}"
    );
    until_alerts(
        &app,
        &token,
        json!({"ruleId": unusual["id"], "states": ["RESOLVED"]}),
        "dismissing the spike did not resolve its alert",
        |a| a.iter().any(|x| x["iccid"] == sims[SPIKE].iccid.as_str()),
    )
    .await;
    let still = alerts(
        &app,
        &token,
        json!({"ruleId": unusual["id"], "states": ["FIRING"]}),
    )
    .await;
    assert_eq!(still.len(), 1, "{still:?}");
    assert_eq!(still[0]["iccid"], sims[ROAMING].iccid.as_str(), "{still:?}");
}

/// A SIM whose sessions report another device: the pipeline records the change, and the
/// anomaly pass finds it as an IMEI change with both IMEIs in its sentence.
async fn a_change_of_device_is_an_anomaly_on(engines: Engines) {
    let app = TestApp::spawn(engines).await;
    let f = &app.factory;
    let t = f.tenant("Moved").await;
    let sims = f.sims(&t, None, 6).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let now = Utc::now();
    app.app_engines
        .usage
        .write_session_updates(&history(&sims, now.date_naive()))
        .await
        .unwrap();
    app.app_engines.usage.flush_pending().await.unwrap();
    let seen = |imei: &str, hours: i64| Sighting {
        iccid: sims[ROOMY].iccid.clone(),
        network: MccMnc::parse("262-01").unwrap(),
        at: now - Duration::hours(hours),
        imei: Some(imei.to_owned()),
    };
    let fleet = &app.app_engines.fleet;
    fleet
        .record_activity(&[seen("356938035643809", 30 * 24)])
        .await
        .unwrap();
    let moved = fleet
        .record_activity(&[seen("490154203237518", 1)])
        .await
        .unwrap();
    assert_eq!(moved.imei_changes.len(), 1, "{moved:?}");

    let pass = app.forecasts.pass(Utc::now()).await.unwrap();
    assert!(pass.failed.is_empty(), "{pass:?}");
    let body = app
        .gql(
            Some(&token),
            "{ anomalies(filter: { kinds: [IMEI_CHANGE] }, first: 10) { nodes { iccid value sentence severity } } }",
            json!({}),
        )
        .await;
    let found = body["data"]["anomalies"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(found.len(), 1, "{body}");
    assert_eq!(found[0]["iccid"], sims[ROOMY].iccid.as_str(), "{body}");
    assert_eq!(found[0]["value"], "490154203237518", "{body}");
    assert_eq!(found[0]["severity"], "HIGH", "{body}");
    assert_eq!(
        found[0]["sentence"], "Now in a device with IMEI 490154203237518 (was 356938035643809)",
        "{body}"
    );
}

#[tokio::test]
async fn a_change_of_device_is_an_anomaly_on_embedded_engines() {
    a_change_of_device_is_an_anomaly_on(Engines::Embedded).await;
}

#[tokio::test]
async fn a_change_of_device_is_an_anomaly_on_real_engines() {
    a_change_of_device_is_an_anomaly_on(Engines::Real).await;
}

#[tokio::test]
async fn forecast_and_anomaly_rules_fire_on_embedded_engines() {
    forecast_and_anomaly_rules_fire_on(Engines::Embedded).await;
}

#[tokio::test]
async fn forecast_and_anomaly_rules_fire_on_real_engines() {
    forecast_and_anomaly_rules_fire_on(Engines::Real).await;
}
