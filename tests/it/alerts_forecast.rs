//! The alert triggers on what the forecast pass stores, end to end on both engine sets: a rule
//! "quota forecast to run out within 7 days" fires on the SIM whose forecast crosses its quota
//! (and not on the one with room), with the day in words; a rule on usage spikes and new
//! countries fires on those SIMs (not on the silent one, a kind it does not hear of), with the
//! anomaly's sentence; dismissing the spike resolves its alert; a rule condition given to the
//! wrong metric is refused naming the field. And a SIM seen in another device is an anomaly.
//! A sub-customer's quota pool whose forecast runs its limit out fires the same rule on every
//! SIM (about no SIM, the day in words), not a rule on another sub-customer's SIMs; renamed, it
//! keeps its alert; its limit raised, the alert resolves.

use chrono::{Duration, Utc};
use ioto_domain::ports::Sighting;
use ioto_domain::{CustomerId, MccMnc, Role};
use ioto_test_support::app::assert_refused;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

use crate::alerts::{alert_app, alerts, create_rule, until_alerts};
use crate::fleet::notify::SmtpServer;
use crate::forecasts::{history, seed_story, CROSSING, MB, ROAMING, ROOMY, SILENT, SPIKE};

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

/// A terabyte: a limit the story's usage leaves room in.
const ROOMY_LIMIT: u64 = 1_000_000 * MB;

/// Sets the sub-customer's pool `id` as named, with `limit` and no warning stages.
async fn set_pool(app: &TestApp, token: &str, id: &str, name: &str, customer: CustomerId, limit: u64) {
    let body = app
        .gql(
            Some(token),
            "mutation($id: ID!, $in: QuotaPoolInput!) { updateQuotaPool(id: $id, input: $in) { id } }",
            json!({"id": id, "in": {"name": name, "customerId": customer.0.to_string(),
                "limitBytes": limit, "stages": []}}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
}

/// What the pool's stored forecast says against its limit.
async fn pool_forecast_quota(app: &TestApp, token: &str, id: &str) -> Value {
    let body = app
        .gql(
            Some(token),
            "query($id: ID!) { quotaPool(id: $id) { forecast { quota { limitBytes usedBytes exhaustionDate } } } }",
            json!({"id": id}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["quotaPool"]["forecast"]["quota"].clone()
}

/// The alerts about no SIM (the pools').
fn pool_alerts(all: &[Value]) -> Vec<&Value> {
    all.iter().filter(|a| a["iccid"].is_null()).collect()
}

async fn a_pool_forecast_to_run_out_fires_on(engines: Engines) {
    let smtp = SmtpServer::start().await;
    let app: TestApp = alert_app(engines, &smtp).await;
    let f = &app.factory;
    let t = f.tenant("Pooled foresight").await;
    let cameras = f.customer(&t, "Cameras Inc").await;
    let elsewhere = f.customer(&t, "Elsewhere").await;
    let sims = f.sims(&t, Some(cameras.id), 6).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let today = Utc::now().date_naive();
    seed_story(&app, &token, &sims, today).await;

    // The sub-customer's SIMs share a pool: with a terabyte, its forecast has room.
    let created = app
        .gql(
            Some(&token),
            "mutation($in: QuotaPoolInput!) { createQuotaPool(input: $in) { id } }",
            json!({"in": {"name": "Cameras", "customerId": cameras.id.0.to_string(),
                "limitBytes": ROOMY_LIMIT, "stages": []}}),
        )
        .await;
    assert!(created["errors"].is_null(), "{created}");
    let pool = created["data"]["createQuotaPool"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pass = app.forecasts.pass(Utc::now()).await.unwrap();
    assert!(pass.failed.is_empty(), "{pass:?}");
    let roomy = pool_forecast_quota(&app, &token, &pool).await;
    assert!(roomy["exhaustionDate"].is_null(), "{roomy}");
    let used = roomy["usedBytes"].as_u64().unwrap_or_else(|| panic!("{roomy}"));

    // 5 MB left of the pool's month: its forecast runs the limit out today.
    set_pool(&app, &token, &pool, "Cameras", cameras.id, used + 5 * MB).await;
    let pass = app.forecasts.pass(Utc::now()).await.unwrap();
    assert!(pass.failed.is_empty(), "{pass:?}");
    let tight = pool_forecast_quota(&app, &token, &pool).await;
    assert_eq!(tight["exhaustionDate"], today.to_string(), "{tight}");

    // A rule on another sub-customer's SIMs, then one on every SIM.
    let theirs = create_rule(
        &app,
        &token,
        json!({"name": "Theirs running out", "groupWaitSeconds": 0,
            "target": {"kind": "CUSTOMER", "customerId": elsewhere.id.0.to_string()},
            "condition": {"metric": "QUOTA_EXHAUSTION_FORECAST", "threshold": 7}}),
    )
    .await;
    let running_out = create_rule(
        &app,
        &token,
        json!({"name": "Running out", "groupWaitSeconds": 0,
            "condition": {"metric": "QUOTA_EXHAUSTION_FORECAST", "threshold": 7}}),
    )
    .await;

    // The pool fires, about no SIM, with the day in words; the crossing SIM fires beside it
    // (one evaluation writes both).
    let firing = until_alerts(
        &app,
        &token,
        json!({"ruleId": running_out["id"], "states": ["FIRING"]}),
        "the pool whose forecast runs its limit out fired nothing",
        |a| !pool_alerts(a).is_empty(),
    )
    .await;
    let pools = pool_alerts(&firing);
    assert_eq!(pools.len(), 1, "{firing:?}");
    let alert = pools[0];
    assert_eq!(
        (&alert["subject"], &alert["value"]),
        (&json!("pool 'Cameras'"), &json!(0)),
        "{alert}"
    );
    let day = today.format("%-d %B").to_string();
    assert!(detail(alert).starts_with("the pool's "), "{alert}");
    assert!(
        detail(alert).contains(&format!("limit runs out around {day}")),
        "{alert}"
    );
    assert!(
        firing.iter().any(|a| a["iccid"] == sims[CROSSING].iccid.as_str()),
        "{firing:?}"
    );
    let id = alert["id"].clone();
    // The rule on another sub-customer's SIMs watches neither the pool nor these SIMs.
    let none = alerts(&app, &token, json!({"ruleId": theirs["id"]})).await;
    assert!(none.is_empty(), "{none:?}");

    // Renamed, the pool keeps its alert, which takes the new name at the next evaluation.
    set_pool(&app, &token, &pool, "Doorbells", cameras.id, used + 5 * MB).await;
    let pass = app.forecasts.pass(Utc::now()).await.unwrap();
    assert!(pass.failed.is_empty(), "{pass:?}");
    let renamed = until_alerts(
        &app,
        &token,
        json!({"ruleId": running_out["id"]}),
        "the renamed pool's alert kept the old name",
        |a| pool_alerts(a).iter().any(|x| x["subject"] == "pool 'Doorbells'"),
    )
    .await;
    let pools = pool_alerts(&renamed);
    assert_eq!(
        pools.len(),
        1,
        "renaming the pool opened another alert: {renamed:?}"
    );
    assert_eq!(
        (&pools[0]["id"], &pools[0]["state"]),
        (&id, &json!("FIRING")),
        "{renamed:?}"
    );

    // Its limit raised to a terabyte, the next forecast has room: the pool's alert resolves,
    // the crossing SIM's still fires.
    set_pool(&app, &token, &pool, "Doorbells", cameras.id, ROOMY_LIMIT).await;
    let pass = app.forecasts.pass(Utc::now()).await.unwrap();
    assert!(pass.failed.is_empty(), "{pass:?}");
    until_alerts(
        &app,
        &token,
        json!({"ruleId": running_out["id"], "states": ["RESOLVED"]}),
        "raising the pool's limit did not resolve its alert",
        |a| a.iter().any(|x| x["id"] == id),
    )
    .await;
    let still = alerts(
        &app,
        &token,
        json!({"ruleId": running_out["id"], "states": ["FIRING"]}),
    )
    .await;
    assert_eq!(still.len(), 1, "{still:?}");
    assert_eq!(still[0]["iccid"], sims[CROSSING].iccid.as_str(), "{still:?}");
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

#[tokio::test]
async fn a_pool_forecast_to_run_out_fires_on_embedded_engines() {
    a_pool_forecast_to_run_out_fires_on(Engines::Embedded).await;
}

#[tokio::test]
async fn a_pool_forecast_to_run_out_fires_on_real_engines() {
    a_pool_forecast_to_run_out_fires_on(Engines::Real).await;
}
