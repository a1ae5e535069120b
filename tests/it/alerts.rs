//! Alert rules end to end: rules written through the API, fired by session updates published on
//! the bus as a network would (data used, a SIM gone quiet), by state changes and quota stages;
//! told of in the app, by e-mail (a real SMTP server) and by signed webhook; acknowledged,
//! silenced, and resolved with a notice of their own.

use std::time::Duration;

use chrono::Utc;
use ioto_domain::fleet::Sim;
use ioto_domain::Role;
use ioto_ingest::worker::IngestTopics;
use ioto_test_support::app::{assert_refused, error_code};
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

use crate::fleet::notify::{receiver, SmtpServer};

/// Publishes a session update for `sim` as seen at `at`.
pub(crate) async fn publish_at(
    app: &TestApp,
    session: &str,
    sim: &Sim,
    bytes_in: u64,
    at: chrono::DateTime<Utc>,
) {
    publish_on(app, session, sim, "262-01", bytes_in, at).await;
}

/// Publishes `event` on the sessions topic, keyed by its session.
pub(crate) async fn publish_event(app: &TestApp, session: &str, event: &Value) {
    let topics = IngestTopics::with_prefix(&app.config.kafka.topic_prefix);
    app.app_engines
        .bus
        .publish(&topics.sessions, session, event.to_string().as_bytes())
        .await
        .unwrap();
}

/// An app counting sessions from its bus, evaluating usage a fifth of a second after it is
/// counted, alert rules on the clock every second, and sending e-mail and webhooks.
pub(crate) async fn alert_app(engines: Engines, smtp: &SmtpServer) -> TestApp {
    let mut config = crate::quotas::counting_config(engines).await;
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

const RULE: &str = "id name enabled severity metric threshold clearThreshold conditionText inApp webhook emails
    groupWaitSeconds groupIntervalSeconds version target { kind customerId tariffPlan labels { key value } sim { iccid } }";

pub(crate) async fn create_rule(app: &TestApp, token: &str, input: Value) -> Value {
    let body = app
        .gql(
            Some(token),
            &format!("mutation($in: AlertRuleInput!) {{ createAlertRule(input: $in) {{ {RULE} }} }}"),
            json!({"in": input}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["createAlertRule"].clone()
}

const ALERT: &str =
    "id state severity subject iccid value detail repeats firedAt resolvedAt acknowledged acknowledgedBy
    acknowledgeComment flaps rule { name }";

pub(crate) async fn alerts(app: &TestApp, token: &str, filter: Value) -> Vec<Value> {
    let body = app
        .gql(
            Some(token),
            &format!(
                "query($f: AlertFilterInput) {{ alerts(filter: $f, first: 100) {{ edges {{ cursor node {{ {ALERT} }} }} pageInfo {{ hasNextPage }} }} }}"
            ),
            json!({"f": filter}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["alerts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// Waits (up to 30 s) until `check` holds of the alerts matching `filter`.
pub(crate) async fn until_alerts(
    app: &TestApp,
    token: &str,
    filter: Value,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..300 {
        let now = alerts(app, token, filter.clone()).await;
        if check(&now) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {:?}", alerts(app, token, filter).await);
}

/// The alert notifications the caller sees, oldest first: (kind, title).
async fn alert_notes(app: &TestApp, token: &str) -> Vec<(String, String)> {
    let body = app
        .gql(
            Some(token),
            "{ notifications(first: 50) { nodes { kind title data } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let mut notes: Vec<(String, String)> = body["data"]["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"].as_str().unwrap_or("").starts_with("ALERT_"))
        .map(|n| {
            (
                n["kind"].as_str().unwrap().to_owned(),
                n["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    notes.reverse();
    notes
}

pub(crate) async fn until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(v) = probe() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}");
}

async fn rules_fire_notify_on_every_channel_and_resolve_on(engines: Engines) {
    let smtp = SmtpServer::start().await;
    let (base, received) = receiver().await;
    let app = alert_app(engines, &smtp).await;
    let f = &app.factory;
    let t = f.tenant("Alerts").await;
    let sims = f.sims(&t, None, 3).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let hook = app
        .gql(
            Some(&token),
            "mutation($url: String!) { createWebhookEndpoint(input: {url: $url}) { endpoint { id } } }",
            json!({"url": format!("{base}/ok")}),
        )
        .await;
    assert!(hook["errors"].is_null(), "{hook}");
    let channels = json!({"inApp": true, "webhook": true, "emails": ["noc@example.com"]});
    let heavy = create_rule(
        &app,
        &token,
        json!({"name": "Heavy users", "severity": "MAJOR", "channels": channels,
            "condition": {"metric": "DATA_IN_DAY", "threshold": 100000}, "groupWaitSeconds": 0}),
    )
    .await;
    assert_eq!(
        heavy["conditionText"], "Data used in a day over 100 kB",
        "{heavy}"
    );
    assert_eq!(heavy["target"]["kind"], "ALL_SIMS");
    let quiet = create_rule(
        &app,
        &token,
        json!({"name": "Gone quiet", "severity": "CRITICAL", "channels": channels,
            "condition": {"metric": "OFFLINE_HOURS", "threshold": 1}, "groupWaitSeconds": 0,
            "groupIntervalSeconds": 10}),
    )
    .await;

    // SIM 0 uses 220 kB today; SIM 1 was last seen two hours ago; SIM 2 uses 11 kB.
    publish_at(&app, "a-0", &sims[0], 200_000, Utc::now()).await;
    publish_at(
        &app,
        "a-1",
        &sims[1],
        1_000,
        Utc::now() - chrono::Duration::hours(2),
    )
    .await;
    publish_at(&app, "a-2", &sims[2], 10_000, Utc::now()).await;
    let firing = until_alerts(
        &app,
        &token,
        json!({"states": ["FIRING"]}),
        "the two rules never fired",
        |a| a.len() == 2,
    )
    .await;
    let by_rule = |name: &str| {
        firing
            .iter()
            .find(|a| a["rule"]["name"] == name)
            .unwrap_or_else(|| panic!("no alert of {name}: {firing:?}"))
            .clone()
    };
    let (h, q) = (by_rule("Heavy users"), by_rule("Gone quiet"));
    assert_eq!(
        (&h["iccid"], &h["severity"], &h["value"]),
        (&json!(sims[0].iccid.as_str()), &json!("MAJOR"), &json!(220_000))
    );
    assert_eq!(
        (&q["iccid"], &q["severity"], &q["value"]),
        (&json!(sims[1].iccid.as_str()), &json!("CRITICAL"), &json!(2))
    );

    // Told in the app, by e-mail and by webhook, once per rule.
    for _ in 0..300 {
        if alert_notes(&app, &token).await.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let notes = alert_notes(&app, &token).await;
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes.iter().all(|(k, _)| k == "ALERT_FIRING"), "{notes:?}");
    assert!(
        notes.iter().any(|(_, t)| t == "Major: Heavy users (1 SIM)"),
        "{notes:?}"
    );
    let mails = until("the alert e-mails never arrived", || {
        let m = smtp.messages();
        (m.len() >= 2).then_some(m)
    })
    .await;
    assert!(mails.iter().all(|m| m.contains("noc@example.com")), "{mails:?}");
    assert!(mails.iter().any(|m| m.contains("Heavy users")), "{mails:?}");
    let hooks = until("the alert webhooks never arrived", || {
        let got = received.lock().unwrap();
        let firing: Vec<Value> = got
            .iter()
            .map(|(_, r)| serde_json::from_slice::<Value>(&r.body).unwrap())
            .filter(|b| b["type"] == "alert.firing")
            .collect();
        (firing.len() >= 2).then_some(firing)
    })
    .await;
    let heavy_hook = hooks
        .iter()
        .find(|b| b["data"]["rule"]["name"] == "Heavy users")
        .expect("a webhook of the heavy-users rule");
    assert_eq!(heavy_hook["data"]["alerts"][0]["subject"], sims[0].iccid.as_str());
    assert_eq!(heavy_hook["data"]["alerts"][0]["value"], 220_000);

    // Acknowledged: who, when, what they said.
    let ack = app
        .gql(
            Some(&token),
            &format!("mutation($id: ID!) {{ acknowledgeAlert(id: $id, comment: \"Looking into it\") {{ {ALERT} }} }}"),
            json!({"id": h["id"]}),
        )
        .await;
    assert!(ack["errors"].is_null(), "{ack}");
    let a = &ack["data"]["acknowledgeAlert"];
    assert_eq!(
        (&a["acknowledged"], &a["acknowledgeComment"]),
        (&json!(true), &json!("Looking into it"))
    );
    assert_eq!(a["acknowledgedBy"], admin.id.0.to_string());
    let again = app
        .gql(
            Some(&token),
            "mutation($id: ID!) { acknowledgeAlert(id: $id) { id } }",
            json!({"id": h["id"]}),
        )
        .await;
    assert_eq!(error_code(&again).as_deref(), Some("CONFLICT"), "{again}");

    // Open alerts by severity, for the dashboard.
    let open = app
        .gql(
            Some(&token),
            "{ openAlerts { severity firing pending } }",
            json!({}),
        )
        .await;
    let counts = open["data"]["openAlerts"].as_array().unwrap().clone();
    let firing_of = |s: &str| counts.iter().find(|c| c["severity"] == s).unwrap()["firing"].clone();
    assert_eq!(
        (firing_of("CRITICAL"), firing_of("MAJOR"), firing_of("MINOR")),
        (json!(1), json!(1), json!(0))
    );

    // SIM 1 is seen again: its alert resolves, and after the group interval (10 s) people are
    // told so, on every channel.
    publish_at(&app, "a-1b", &sims[1], 2_000, Utc::now()).await;
    let resolved = until_alerts(
        &app,
        &token,
        json!({"ruleId": quiet["id"]}),
        "the quiet SIM's alert never resolved",
        |a| a.len() == 1 && a[0]["state"] == "RESOLVED",
    )
    .await;
    assert!(resolved[0]["resolvedAt"].is_string());
    for _ in 0..300 {
        if alert_notes(&app, &token).await.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let notes = alert_notes(&app, &token).await;
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert_eq!(
        notes[2],
        (
            "ALERT_RESOLVED".to_owned(),
            "Resolved: Gone quiet (1 SIM)".to_owned()
        )
    );
    until("the resolve notice never arrived by e-mail", || {
        (smtp.messages().len() >= 3).then_some(())
    })
    .await;
    until("the resolve notice never arrived by webhook", || {
        let got = received.lock().unwrap();
        got.iter()
            .any(|(_, r)| serde_json::from_slice::<Value>(&r.body).unwrap()["type"] == "alert.resolved")
            .then_some(())
    })
    .await;
    // One alert per rule and SIM: the heavy SIM's further traffic updates its alert.
    publish_at(&app, "a-0", &sims[0], 300_000, Utc::now()).await;
    let h2 = until_alerts(
        &app,
        &token,
        json!({"ruleId": heavy["id"]}),
        "the heavy SIM's alert never followed its usage",
        |a| a.len() == 1 && a[0]["value"] == 330_000,
    )
    .await;
    assert_eq!(h2[0]["id"], h["id"]);
    assert_eq!(
        alert_notes(&app, &token).await.len(),
        3,
        "an acknowledged alert is told of again"
    );
}

#[tokio::test]
async fn rules_fire_notify_on_every_channel_and_resolve_on_embedded_engines() {
    rules_fire_notify_on_every_channel_and_resolve_on(Engines::Embedded).await;
}

#[tokio::test]
async fn rules_fire_notify_on_every_channel_and_resolve_on_real_engines() {
    rules_fire_notify_on_every_channel_and_resolve_on(Engines::Real).await;
}

#[tokio::test]
async fn state_changes_and_quota_stages_fire_event_rules_and_silences_hold_them_back() {
    let smtp = SmtpServer::start().await;
    let app = alert_app(Engines::Embedded, &smtp).await;
    let f = &app.factory;
    let t = f.tenant("Event alerts").await;
    let sims = f.sims(&t, None, 2).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let stolen = create_rule(
        &app,
        &token,
        json!({"name": "Reported stolen", "severity": "CRITICAL", "groupWaitSeconds": 0,
            "condition": {"metric": "STATE_CHANGED", "state": "LOST_STOLEN"}}),
    )
    .await;
    assert_eq!(stolen["conditionText"], "SIM changed state to lost stolen");
    let quota = create_rule(
        &app,
        &token,
        json!({"name": "Quota nearly used", "groupWaitSeconds": 0,
            "condition": {"metric": "QUOTA_STAGE", "threshold": 80}}),
    )
    .await;
    let mut live = crate::http::ws_subscribe(
        &app,
        &token,
        "subscription { alerts(states: [FIRING]) { iccid state severity detail rule { name } } }",
    )
    .await;
    // Suspending does not fire the stolen rule; reporting stolen does.
    for state in ["SUSPENDED", "LOST_STOLEN"] {
        let body = app
            .gql(
                Some(&token),
                "mutation($i: Iccid!, $s: SimState!) { changeSimState(iccid: $i, state: $s) { sim { state } } }",
                json!({"i": sims[0].iccid, "s": state}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let a = until_alerts(
        &app,
        &token,
        json!({"ruleId": stolen["id"]}),
        "reporting a SIM stolen fired nothing",
        |a| !a.is_empty(),
    )
    .await;
    assert_eq!(
        (a.len(), &a[0]["iccid"], &a[0]["state"]),
        (1, &json!(sims[0].iccid.as_str()), &json!("FIRING"))
    );
    assert_eq!(a[0]["detail"], "suspended → lost stolen");
    // Pushed to the subscriber as it fired.
    let pushed = crate::http::ws_next(&mut live).await.expect("an alert");
    let p = &pushed["payload"]["data"]["alerts"];
    assert_eq!(
        (&p["iccid"], &p["severity"], &p["rule"]["name"]),
        (
            &json!(sims[0].iccid.as_str()),
            &json!("CRITICAL"),
            &json!("Reported stolen")
        ),
        "{pushed}"
    );

    // The quota rule is silenced for SIM 1: its alert opens, but no one is told until the
    // silence ends.
    let silence = app
        .gql(
            Some(&token),
            "mutation($i: Iccid!, $end: DateTime!) { createSilence(input: {iccid: $i, endsAt: $end, comment: \"maintenance\"}) { id sim { iccid } comment } }",
            json!({"i": sims[1].iccid, "end": (Utc::now() + chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .await;
    assert!(silence["errors"].is_null(), "{silence}");
    let set = app
        .gql(
            Some(&token),
            "mutation($i: Iccid!) { setSimQuota(iccid: $i, input: { limitBytes: 100000, stages: [80] }) { limitBytes } }",
            json!({"i": sims[1].iccid}),
        )
        .await;
    assert!(set["errors"].is_null(), "{set}");
    publish_at(&app, "e-1", &sims[1], 85_000, Utc::now()).await;
    let q = until_alerts(
        &app,
        &token,
        json!({"ruleId": quota["id"]}),
        "the quota stage fired nothing",
        |a| !a.is_empty(),
    )
    .await;
    assert_eq!(
        (&q[0]["iccid"], &q[0]["value"]),
        (&json!(sims[1].iccid.as_str()), &json!(80))
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let titles: Vec<String> = alert_notes(&app, &token)
        .await
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(
        titles,
        vec!["Critical: Reported stolen (1 SIM)".to_owned()],
        "the silence let a notice through"
    );
    let ended = app
        .gql(
            Some(&token),
            "mutation($id: ID!) { endSilence(id: $id) }",
            json!({"id": silence["data"]["createSilence"]["id"]}),
        )
        .await;
    assert_eq!(ended["data"]["endSilence"], true, "{ended}");
    for _ in 0..100 {
        if alert_notes(&app, &token).await.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let titles: Vec<String> = alert_notes(&app, &token)
        .await
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert_eq!(titles[1], "Warning: Quota nearly used (1 SIM)");
}

#[tokio::test]
async fn rules_are_refused_naming_the_field_limited_per_tenant_and_kept_within_it() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let f = &app.factory;
    let t = f.tenant("Rules").await;
    let other = f.tenant("Other rules").await;
    let stranger = f.customer(&other, "Not ours").await;
    let ours = f.customer(&t, "Ours").await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let create = |input: Value| {
        let (app, token) = (&app, token.clone());
        async move {
            app.gql(
                Some(&token),
                "mutation($in: AlertRuleInput!) { createAlertRule(input: $in) { id name } }",
                json!({"in": input}),
            )
            .await
        }
    };
    let data = json!({"metric": "DATA_IN_DAY", "threshold": 1000});
    for (input, field, why) in [
        (
            json!({"name": "Hours", "condition": {"metric": "OFFLINE_HOURS", "threshold": 169}}),
            "condition.threshold",
            "1 to 168 hours",
        ),
        (
            json!({"name": "No bytes", "condition": {"metric": "DATA_IN_DAY"}}),
            "condition.threshold",
            "needs a threshold",
        ),
        (
            json!({"name": "Clear", "condition": {"metric": "OFFLINE_HOURS", "threshold": 24, "clearThreshold": 30}}),
            "condition.clearThreshold",
            "between 1 and the threshold",
        ),
        (
            json!({"name": "Theirs", "condition": data, "target": {"kind": "CUSTOMER", "customerId": stranger.id.0.to_string()}}),
            "target.customerId",
            "in this tenant",
        ),
        (
            json!({"name": "Mail", "condition": data, "channels": {"emails": ["noc@example.com", "not-an-address"]}}),
            "channels.emails[1]",
            "not an e-mail address",
        ),
        (
            json!({"name": "Mute", "condition": data, "channels": {"inApp": false}}),
            "channels",
            "at least one channel",
        ),
        (
            json!({"name": "Wait", "condition": {"metric": "STATE_CHANGED"}, "pendingSeconds": 60}),
            "pendingSeconds",
            "is an event",
        ),
        (
            json!({"name": " ", "condition": data}),
            "name",
            "1 to 100 characters",
        ),
        (
            json!({"name": "Fast", "condition": data, "groupIntervalSeconds": 1}),
            "groupIntervalSeconds",
            "10 to 86400 seconds",
        ),
    ] {
        let body = create(input.clone()).await;
        assert_refused(&body, field, why);
    }
    let unknown = create(json!({"name": "CPU", "condition": {"metric": "CPU_LOAD", "threshold": 1}})).await;
    assert!(
        unknown["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("CPU_LOAD"),
        "{unknown}"
    );

    let mine = create(json!({"name": "Ours only", "condition": data,
        "target": {"kind": "CUSTOMER", "customerId": ours.id.0.to_string()}}))
    .await;
    assert!(mine["errors"].is_null(), "{mine}");
    let twin = create(json!({"name": "Ours only", "condition": data})).await;
    assert_refused(&twin, "name", "another alert rule is named 'Ours only'");

    // Another tenant neither sees nor changes the rule; a customer's user does not read rules;
    // a viewer does not write them.
    let outsider = f.user(&other, Role::TenantAdmin, None).await;
    let outsider = app.login(outsider.email.as_str(), TEST_PASSWORD).await;
    let seen = app.gql(Some(&outsider), "{ alertRules { id } }", json!({})).await;
    assert_eq!(seen["data"]["alertRules"], json!([]), "{seen}");
    let id = mine["data"]["createAlertRule"]["id"].clone();
    let gone = app
        .gql(
            Some(&outsider),
            "mutation($id: ID!) { deleteAlertRule(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(gone["data"]["deleteAlertRule"], false, "{gone}");
    let customer = f.user(&t, Role::CustomerUser, Some(ours.id)).await;
    let customer = app.login(customer.email.as_str(), TEST_PASSWORD).await;
    let refused = app.gql(Some(&customer), "{ alertRules { id } }", json!({})).await;
    assert_eq!(error_code(&refused).as_deref(), Some("FORBIDDEN"), "{refused}");
    let viewer = f.user(&t, Role::Viewer, None).await;
    let viewer = app.login(viewer.email.as_str(), TEST_PASSWORD).await;
    let refused = app
        .gql(
            Some(&viewer),
            "mutation($in: AlertRuleInput!) { createAlertRule(input: $in) { id } }",
            json!({"in": {"name": "Viewer's", "condition": data}}),
        )
        .await;
    assert_eq!(error_code(&refused).as_deref(), Some("FORBIDDEN"), "{refused}");

    // 200 rules a tenant; the 201st is refused naming the limit.
    for i in 1..200 {
        let body = create(json!({"name": format!("Rule {i:03}"), "condition": data})).await;
        assert!(body["errors"].is_null(), "rule {i}: {body}");
    }
    let over = create(json!({"name": "One too many", "condition": data})).await;
    assert_eq!(error_code(&over).as_deref(), Some("CONFLICT"), "{over}");
    assert!(
        over["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 200 alert rules"),
        "{over}"
    );
}

/// Publishes a session update for `sim` on `network`, as seen at `at`.
async fn publish_on(
    app: &TestApp,
    session: &str,
    sim: &Sim,
    network: &str,
    bytes_in: u64,
    at: chrono::DateTime<Utc>,
) {
    let event = json!({"v": 1, "session_id": session, "iccid": sim.iccid.as_str(),
        "event_timestamp": at.to_rfc3339(), "mcc_mnc": network, "radio_access_type": "LTE-M",
        "ip_address": "10.9.8.7", "total_bytes_in": bytes_in, "total_bytes_out": bytes_in / 10,
        "request_type": "UPDATE"});
    publish_event(app, session, &event).await;
}

async fn habits_sessions_first_traffic_and_jobs_fire_once_each_on(engines: Engines) {
    let smtp = SmtpServer::start().await;
    let app = alert_app(engines, &smtp).await;
    let f = &app.factory;
    let t = f.tenant("Habits").await;
    let sims = f.sims(&t, None, 3).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let mut rules = std::collections::BTreeMap::new();
    for (name, condition) in [
        ("Busy", json!({"metric": "SESSIONS_IN_HOUR", "threshold": 2})),
        (
            "Unusual day",
            json!({"metric": "USAGE_OVER_MEDIAN", "threshold": 3}),
        ),
        ("New network", json!({"metric": "NEW_NETWORK"})),
        ("Abroad", json!({"metric": "NEW_COUNTRY"})),
        ("Hello", json!({"metric": "FIRST_TRAFFIC"})),
        ("Jobs", json!({"metric": "BULK_JOB_FINISHED"})),
    ] {
        let r = create_rule(
            &app,
            &token,
            json!({"name": name, "condition": condition, "groupWaitSeconds": 0}),
        )
        .await;
        rules.insert(name, r["id"].clone());
    }
    // SIM 0's habit: 11 kB a day on 262-01 for the last eight days (one session a day).
    let now = Utc::now();
    for d in 1..=8 {
        publish_on(
            &app,
            &format!("h-{d}"),
            &sims[0],
            "262-01",
            10_000,
            now - chrono::Duration::days(d),
        )
        .await;
    }
    let first = until_alerts(
        &app,
        &token,
        json!({"ruleId": rules["Hello"]}),
        "SIM 0's first traffic fired nothing",
        |a| a.len() == 1,
    )
    .await;
    assert_eq!(first[0]["iccid"], sims[0].iccid.as_str());
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Today it roams to France and uses 220 kB: a new network, a new country, 20 × its median.
    publish_on(&app, "h-0", &sims[0], "208-01", 200_000, now).await;
    // SIM 1 starts three sessions this hour.
    for s in 0..3 {
        publish_on(&app, &format!("b-{s}"), &sims[1], "262-01", 1_000, now).await;
    }
    for (rule, iccid, detail) in [
        ("New network", &sims[0], Some("network Orange (208-01)")),
        ("Abroad", &sims[0], Some("France (network Orange (208-01))")),
        ("Unusual day", &sims[0], None),
        ("Busy", &sims[1], None),
    ] {
        let a = until_alerts(
            &app,
            &token,
            json!({"ruleId": rules[rule]}),
            &format!("{rule} never fired"),
            |a| !a.is_empty(),
        )
        .await;
        assert_eq!(
            (a.len(), &a[0]["iccid"], &a[0]["state"]),
            (1, &json!(iccid.iccid.as_str()), &json!("FIRING")),
            "{rule}"
        );
        if let Some(d) = detail {
            assert_eq!(a[0]["detail"], d, "{rule}");
        }
    }
    let unusual = alerts(&app, &token, json!({"ruleId": rules["Unusual day"]})).await;
    assert_eq!(unusual[0]["value"], 220_000);
    assert!(
        unusual[0]["detail"]
            .as_str()
            .unwrap()
            .contains("20.0 × its median day of 11 kB"),
        "{unusual:?}"
    );
    let busy = alerts(&app, &token, json!({"ruleId": rules["Busy"]})).await;
    assert_eq!(busy[0]["value"], 3);
    let hello = until_alerts(
        &app,
        &token,
        json!({"ruleId": rules["Hello"]}),
        "SIM 1's first traffic fired nothing",
        |a| a.len() == 2,
    )
    .await;
    assert!(
        hello.iter().any(|a| a["iccid"] == sims[1].iccid.as_str()),
        "{hello:?}"
    );

    // A bulk job cancelled before it ran: its end fires the jobs rule, about the job.
    let file = format!("ICCID\n{}\n", sims[2].iccid);
    let out = crate::fleet::bulk::upload(
        &app,
        &token,
        "pause.csv",
        file.into_bytes(),
        json!({"action": "SUSPEND"}),
    )
    .await;
    let job = out["data"]["submitBulkJob"]["job"]["id"].clone();
    assert!(job.is_string(), "{out}");
    let cancelled = app
        .gql(
            Some(&token),
            "mutation($id: ID!) { cancelBulkJob(id: $id) { status } }",
            json!({"id": job}),
        )
        .await;
    assert!(cancelled["errors"].is_null(), "{cancelled}");
    let jobs = until_alerts(
        &app,
        &token,
        json!({"ruleId": rules["Jobs"]}),
        "a finished job fired nothing",
        |a| !a.is_empty(),
    )
    .await;
    assert_eq!(
        (&jobs[0]["subject"], &jobs[0]["iccid"]),
        (&json!("bulk job 'pause.csv'"), &Value::Null)
    );

    // Every event counted once: more of the same traffic opens nothing new.
    publish_on(&app, "h-0", &sims[0], "208-01", 210_000, now).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (rule, n) in [("New network", 1), ("Abroad", 1), ("Hello", 2), ("Jobs", 1)] {
        let a = alerts(&app, &token, json!({"ruleId": rules[rule]})).await;
        assert_eq!(a.len(), n, "{rule}: {a:?}");
        assert!(
            a.iter().all(|x| x["repeats"] == 0),
            "{rule} counted a redelivered event: {a:?}"
        );
    }
}

#[tokio::test]
async fn habits_sessions_first_traffic_and_jobs_fire_once_each_on_embedded_engines() {
    habits_sessions_first_traffic_and_jobs_fire_once_each_on(Engines::Embedded).await;
}

#[tokio::test]
async fn habits_sessions_first_traffic_and_jobs_fire_once_each_on_real_engines() {
    habits_sessions_first_traffic_and_jobs_fire_once_each_on(Engines::Real).await;
}

/// Records `bytes` of traffic of `sim` on 262-01 as a CDR of today.
async fn cdr_today(app: &TestApp, id: &str, sim: &Sim, bytes: u64) {
    // Today's, also just after midnight (UTC).
    let now = Utc::now();
    let midnight = now.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let start = (now - chrono::Duration::minutes(30)).max(midnight);
    app.app_engines
        .usage
        .write_cdrs(&[ioto_domain::ports::CdrRecord {
            tenant_id: sim.tenant_id,
            customer_id: sim.customer_id,
            cdr_id: format!("{}-{id}", sim.tenant_id),
            iccid: sim.iccid.clone(),
            start,
            end: (start + chrono::Duration::minutes(10)).min(now),
            mcc_mnc: ioto_domain::MccMnc::parse("262-01").unwrap(),
            bytes_in: bytes,
            bytes_out: 0,
            rating_group: 0,
        }])
        .await
        .unwrap();
}

async fn rate_today(app: &TestApp, token: &str) {
    let body = app
        .gql(
            Some(token),
            "mutation($d: Date!) { rateBillingPeriod(day: $d) { status } }",
            json!({"d": Utc::now().date_naive().to_string()}),
        )
        .await;
    assert_eq!(
        body["data"]["rateBillingPeriod"][0]["status"], "CURRENT",
        "{body}"
    );
}

/// Cost rules watch what rating priced: a SIM over the amount fires once its traffic is rated,
/// with the amount in the card's currency, on every channel; a cheaper price re-rated resolves it.
async fn cost_rules_fire_on_rated_traffic_and_resolve_when_it_costs_less_on(engines: Engines) {
    let smtp = SmtpServer::start().await;
    let app = alert_app(engines, &smtp).await;
    let (base, received) = receiver().await;
    let f = &app.factory;
    let t = f.tenant("Costly").await;
    let sims = f.sims(&t, None, 2).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let platform = f.user(&t, Role::PlatformAdmin, None).await;
    let platform = app.login(platform.email.as_str(), TEST_PASSWORD).await;
    let hook = app
        .gql(
            Some(&token),
            "mutation($url: String!) { createWebhookEndpoint(input: {url: $url}) { endpoint { id } } }",
            json!({"url": format!("{base}/ok")}),
        )
        .await;
    assert!(hook["errors"].is_null(), "{hook}");
    // Without a retail card there is no cost: a rule may be written, it fires nothing.
    let day = create_rule(
        &app,
        &token,
        json!({"name": "Costly day", "severity": "MAJOR", "groupWaitSeconds": 0,
            "condition": {"metric": "COST_IN_DAY", "threshold": 200},
            "channels": {"inApp": true, "webhook": true, "emails": ["finance@example.org"]}}),
    )
    .await;
    assert_eq!(day["conditionText"], "Traffic cost today over 2.00");
    let period = create_rule(
        &app,
        &token,
        json!({"name": "Costly month", "groupWaitSeconds": 0,
            "condition": {"metric": "COST_IN_PERIOD", "threshold": 250}}),
    )
    .await;
    // 3 MB today for SIM 0, 1 MB for SIM 1.
    cdr_today(&app, "a", &sims[0], 3_000_000).await;
    cdr_today(&app, "b", &sims[1], 1_000_000).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(alerts(&app, &token, json!({})).await.is_empty());

    // A card at 1 EUR per MB from the first of last month; today rated: 3.00 EUR and 1.00 EUR.
    let today = Utc::now().date_naive();
    let first = chrono::Datelike::with_day(
        &(today - chrono::Duration::days(i64::from(chrono::Datelike::day(&today)))),
        1,
    )
    .unwrap();
    let card = app
        .gql(
            Some(&platform),
            "mutation($input: CreateRateCardInput!) { createRateCard(input: $input) { id } }",
            json!({"input": {"tenantId": t.id.to_string(), "kind": "RETAIL", "name": "Plain",
                "currency": "EUR", "billingPeriod": "MONTHLY",
                "versions": [{"effectiveFrom": first.to_string(), "accessFee": "0", "roundingIncrementBytes": 1,
                    "zones": [{"name": "All", "pricePerMb": "1", "isDefault": true}]}]}}),
        )
        .await;
    assert!(card["errors"].is_null(), "{card}");
    rate_today(&app, &token).await;
    for (rule, detail) in [
        (&day, "3.00 EUR today, as rated"),
        (&period, "3.00 EUR in the billing period, as rated"),
    ] {
        let a = until_alerts(
            &app,
            &token,
            json!({"ruleId": rule["id"]}),
            "rated traffic over the amount fired nothing",
            |a| a.iter().any(|x| x["state"] == "FIRING"),
        )
        .await;
        assert_eq!(a.len(), 1, "only SIM 0 costs more: {a:?}");
        assert_eq!(
            (&a[0]["iccid"], &a[0]["value"], &a[0]["detail"]),
            (&json!(sims[0].iccid.as_str()), &json!(300), &json!(detail))
        );
    }
    let mail = until("no e-mail about the costly SIM", || {
        smtp.messages()
            .into_iter()
            .find(|m| m.contains("finance@example.org"))
    })
    .await;
    assert!(mail.contains("3.00 EUR today"), "{mail}");
    let hook = until("no webhook about the costly SIM", || {
        let got = received.lock().unwrap();
        got.iter()
            .map(|(_, r)| serde_json::from_slice::<Value>(&r.body).unwrap())
            .find(|b| b["type"] == "alert.firing" && b["data"]["rule"]["name"] == "Costly day")
    })
    .await;
    assert_eq!(hook["data"]["alerts"][0]["value"], 300, "{hook}");

    // From today 0.10 EUR per MB: re-rated, SIM 0 cost 0.30 EUR today; the alert resolves.
    let version = app
        .gql(
            Some(&platform),
            "mutation($id: ID!, $v: RateCardVersionInput!) { addRateCardVersion(rateCardId: $id, version: $v) { id } }",
            json!({"id": card["data"]["createRateCard"]["id"], "v": {"effectiveFrom": today.to_string(),
                "accessFee": "0", "roundingIncrementBytes": 1, "zones": [{"name": "All", "pricePerMb": "0.1", "isDefault": true}]}}),
        )
        .await;
    assert!(version["errors"].is_null(), "{version}");
    rate_today(&app, &token).await;
    let resolved = until_alerts(
        &app,
        &token,
        json!({"ruleId": day["id"], "states": ["RESOLVED"]}),
        "a cheaper rating did not resolve the cost alert",
        |a| a.len() == 1,
    )
    .await;
    assert_eq!(resolved[0]["value"], 30);
}

#[tokio::test]
async fn cost_rules_fire_on_rated_traffic_and_resolve_when_it_costs_less_on_embedded_engines() {
    cost_rules_fire_on_rated_traffic_and_resolve_when_it_costs_less_on(Engines::Embedded).await;
}

#[tokio::test]
async fn cost_rules_fire_on_rated_traffic_and_resolve_when_it_costs_less_on_real_engines() {
    cost_rules_fire_on_rated_traffic_and_resolve_when_it_costs_less_on(Engines::Real).await;
}

/// A SIM activated days ago that never carried traffic fires the rule, with when it was
/// activated; one with traffic since, or activated lately, does not; its first traffic resolves it.
async fn sims_silent_since_activation_fire_and_resolve_on_first_traffic_on(engines: Engines) {
    let smtp = SmtpServer::start().await;
    let app = alert_app(engines, &smtp).await;
    let f = &app.factory;
    let t = f.tenant("Unboxed").await;
    let old = f
        .sims_created_at(&t, None, 2, Utc::now() - chrono::Duration::days(3))
        .await;
    let new = f.sims(&t, None, 1).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    // SIM old[1] was used yesterday.
    publish_at(
        &app,
        "used",
        &old[1],
        1_000,
        Utc::now() - chrono::Duration::days(1),
    )
    .await;
    // Its sighting is recorded within a few seconds: the rule is written once it is.
    let mut seen = false;
    for _ in 0..200 {
        let sim = app
            .app_engines
            .fleet
            .sims_by_id(ioto_domain::Scope::Platform, &[old[1].id])
            .await
            .unwrap();
        if sim.first().is_some_and(|s| s.last_activity_at.is_some()) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the used SIM's session was never recorded");
    let rule = create_rule(
        &app,
        &token,
        json!({"name": "Never used", "groupWaitSeconds": 0,
            "condition": {"metric": "NO_TRAFFIC_AFTER_ACTIVATION", "threshold": 2}}),
    )
    .await;
    assert_eq!(
        rule["conditionText"],
        "No traffic 2 days or more after activation"
    );
    until_alerts(
        &app,
        &token,
        json!({"ruleId": rule["id"]}),
        "a SIM silent since its activation three days ago fired nothing",
        |a| !a.is_empty(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let firing = alerts(&app, &token, json!({"ruleId": rule["id"]})).await;
    assert_eq!(firing.len(), 1, "only the unused old SIM: {firing:?}");
    assert_eq!(
        (&firing[0]["iccid"], &firing[0]["value"], &firing[0]["state"]),
        (&json!(old[0].iccid.as_str()), &json!(3), &json!("FIRING"))
    );
    assert!(
        firing[0]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("activated ") && d.ends_with("UTC, no traffic since")),
        "{firing:?}"
    );
    assert!(!firing.iter().any(|a| a["iccid"] == new[0].iccid.as_str()));
    let mut told = Vec::new();
    for _ in 0..100 {
        told = alert_notes(&app, &token).await;
        if !told.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        told,
        vec![(
            "ALERT_FIRING".to_owned(),
            "Warning: Never used (1 SIM)".to_owned()
        )]
    );
    // Its first traffic: resolved, and told.
    publish_at(&app, "first", &old[0], 1_000, Utc::now()).await;
    until_alerts(
        &app,
        &token,
        json!({"ruleId": rule["id"], "states": ["RESOLVED"]}),
        "the SIM's first traffic did not resolve the alert",
        |a| a.len() == 1,
    )
    .await;
}

#[tokio::test]
async fn sims_silent_since_activation_fire_and_resolve_on_first_traffic_on_embedded_engines() {
    sims_silent_since_activation_fire_and_resolve_on_first_traffic_on(Engines::Embedded).await;
}

#[tokio::test]
async fn sims_silent_since_activation_fire_and_resolve_on_first_traffic_on_real_engines() {
    sims_silent_since_activation_fire_and_resolve_on_first_traffic_on(Engines::Real).await;
}

/// Publishes a version-2 session update of `sim` reporting the device's `imei`.
async fn publish_imei(app: &TestApp, session: &str, sim: &Sim, bytes_in: u64, imei: &str) {
    let event = json!({"v": 2, "session_id": session, "iccid": sim.iccid.as_str(),
        "event_timestamp": Utc::now().to_rfc3339(), "mcc_mnc": "262-01", "radio_access_type": "LTE",
        "total_bytes_in": bytes_in, "total_bytes_out": 0, "request_type": "UPDATE", "imei": imei});
    publish_event(app, session, &event).await;
}

/// A SIM moved into another device fires the IMEI rule once, naming both IMEIs, by e-mail too;
/// the first IMEI seen, the same one again or a redelivered update fire nothing; a session with a
/// malformed IMEI is dead-lettered naming the field.
async fn a_sim_seen_in_another_device_fires_once_on(engines: Engines) {
    let smtp = SmtpServer::start().await;
    let app = alert_app(engines, &smtp).await;
    let f = &app.factory;
    let t = f.tenant("Swapped").await;
    let sims = f.sims(&t, None, 2).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let rule = create_rule(
        &app,
        &token,
        json!({"name": "Moved device", "severity": "CRITICAL", "groupWaitSeconds": 0,
            "condition": {"metric": "IMEI_CHANGED"},
            "channels": {"inApp": true, "emails": ["security@example.org"]}}),
    )
    .await;
    assert_eq!(
        rule["conditionText"],
        "A SIM seen in another device (IMEI changed)"
    );
    publish_imei(&app, "d-1", &sims[0], 1_000, "352099001761481").await;
    publish_imei(&app, "e-1", &sims[1], 1_000, "490154203237518").await;
    // The activity recorder writes every 5 s: the first IMEIs are stored before the next ones.
    tokio::time::sleep(Duration::from_secs(7)).await;
    publish_imei(&app, "d-1", &sims[0], 2_000, "352099001761481").await;
    // SIM 1 moved into another device (an IMEISV: its IMEI is 35209900176148-1).
    publish_imei(&app, "e-2", &sims[1], 1_000, "3520990017614807").await;
    let moved = until_alerts(
        &app,
        &token,
        json!({"ruleId": rule["id"]}),
        "a SIM in another device fired nothing",
        |a| !a.is_empty(),
    )
    .await;
    assert_eq!(
        (&moved[0]["iccid"], &moved[0]["state"], &moved[0]["detail"]),
        (
            &json!(sims[1].iccid.as_str()),
            &json!("FIRING"),
            &json!("IMEI 490154203237518 → 352099001761481")
        )
    );
    let mail = until("no e-mail about the moved SIM", || {
        smtp.messages()
            .into_iter()
            .find(|m| m.contains("security@example.org"))
    })
    .await;
    assert!(mail.contains("Moved device"), "{mail}");
    // Redelivered: the same update again counts nothing and changes no IMEI.
    publish_imei(&app, "e-2", &sims[1], 1_000, "3520990017614807").await;
    // A malformed IMEI: the update is refused, naming the field.
    publish_imei(&app, "e-3", &sims[1], 5_000, "35209900176148X").await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let after = alerts(&app, &token, json!({"ruleId": rule["id"]})).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["repeats"], 0, "{after:?}");
    let topics = IngestTopics::with_prefix(&app.config.kafka.topic_prefix);
    let mut letters = app
        .app_engines
        .bus
        .subscribe(&topics.dead_letters, "imei-test")
        .await
        .unwrap();
    let letter: Value = loop {
        let m = tokio::time::timeout(Duration::from_secs(30), futures::StreamExt::next(&mut letters))
            .await
            .expect("the malformed IMEI's update is dead-lettered")
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        if v["payload"]
            .as_str()
            .is_some_and(|p| p.contains("35209900176148X"))
        {
            break v;
        }
    };
    assert_eq!(letter["reason"], "INVALID_FIELD", "{letter}");
    assert!(
        letter["detail"]
            .as_str()
            .unwrap()
            .starts_with("field 'imei': '35209900176148X' is not an IMEI"),
        "{letter}"
    );
}

#[tokio::test]
async fn a_sim_seen_in_another_device_fires_once_on_embedded_engines() {
    a_sim_seen_in_another_device_fires_once_on(Engines::Embedded).await;
}

#[tokio::test]
async fn a_sim_seen_in_another_device_fires_once_on_real_engines() {
    a_sim_seen_in_another_device_fires_once_on(Engines::Real).await;
}

/// `ioto simulate incident` makes SIMs do what the rules are for: a SIM with a habit roams
/// abroad, one turns up in another device, one flaps, one uses a lot at once; each fires its rule.
#[tokio::test]
async fn simulated_incidents_fire_the_rules_they_are_for() {
    use ioto::tooling::simulate::{incident, IncidentOptions};
    use ioto_ingest::simulator::{device_imei, Incident};
    let smtp = SmtpServer::start().await;
    let app = alert_app(Engines::Embedded, &smtp).await;
    let f = &app.factory;
    let t = f.tenant("Incidents").await;
    let sims = f.sims(&t, None, 4).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let mut rules = std::collections::BTreeMap::new();
    for (name, condition) in [
        ("Abroad", json!({"metric": "NEW_COUNTRY"})),
        ("Moved", json!({"metric": "IMEI_CHANGED"})),
        ("Busy", json!({"metric": "SESSIONS_IN_HOUR", "threshold": 10})),
        ("Heavy", json!({"metric": "DATA_IN_DAY", "threshold": 50_000_000})),
    ] {
        let r = create_rule(
            &app,
            &token,
            json!({"name": name, "condition": condition, "groupWaitSeconds": 0}),
        )
        .await;
        rules.insert(name, r["id"].clone());
    }
    // Each SIM's habit: yesterday at home, in its own device.
    for (k, sim) in sims.iter().enumerate() {
        let imei = device_imei(&sim.iccid).unwrap();
        let event = json!({"v": 2, "session_id": format!("habit-{k}"), "iccid": sim.iccid.as_str(),
            "event_timestamp": (Utc::now() - chrono::Duration::days(1)).to_rfc3339(), "mcc_mnc": "262-01",
            "radio_access_type": "LTE", "total_bytes_in": 1_000, "total_bytes_out": 0,
            "request_type": "TERMINATE", "imei": imei.as_str()});
        publish_event(&app, &format!("habit-{k}"), &event).await;
    }
    // The habits recorded (the activity recorder writes every 5 s).
    tokio::time::sleep(Duration::from_secs(7)).await;
    let happen = |k: usize, incident: Incident| {
        let app = &app;
        let t = &t;
        let iccid = sims[k].iccid.to_string();
        async move {
            let opts = IncidentOptions {
                tenant: t.slug.to_string(),
                iccid: Some(iccid),
                incident,
            };
            incident_of(app, &opts).await
        }
    };
    async fn incident_of(app: &TestApp, opts: &IncidentOptions) -> usize {
        incident(
            &app.app_engines.directory,
            &app.app_engines.fleet,
            &app.app_engines.bus,
            &app.config.kafka.topic_prefix,
            opts,
        )
        .await
        .unwrap()
        .1
    }
    assert!(happen(0, Incident::Roam).await > 0);
    assert!(happen(1, Incident::Swap).await > 0);
    assert!(happen(2, Incident::Flap).await > 0);
    assert!(happen(3, Incident::Burst(60_000_000)).await > 0);
    for (rule, k) in [("Abroad", 0), ("Moved", 1), ("Busy", 2), ("Heavy", 3)] {
        let a = until_alerts(
            &app,
            &token,
            json!({"ruleId": rules[rule]}),
            &format!("the {rule} incident fired nothing"),
            |a| !a.is_empty(),
        )
        .await;
        assert_eq!(
            (a.len(), &a[0]["iccid"]),
            (1, &json!(sims[k].iccid.as_str())),
            "{rule}: {a:?}"
        );
    }
    // A SIM of another tenant, or one that is not there, is refused naming the option.
    let other = f.tenant("Elsewhere").await;
    let stranger = f.sims(&other, None, 1).await;
    for (iccid, says) in [
        (stranger[0].iccid.to_string(), "--iccid: no SIM"),
        ("not-an-iccid".to_owned(), "--iccid:"),
    ] {
        let opts = IncidentOptions {
            tenant: t.slug.to_string(),
            iccid: Some(iccid),
            incident: Incident::Roam,
        };
        let e = incident(
            &app.app_engines.directory,
            &app.app_engines.fleet,
            &app.app_engines.bus,
            &app.config.kafka.topic_prefix,
            &opts,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(e.starts_with(says), "{e}");
    }
}
