//! The console's alert pages in a real browser, on the embedded engines: a rule written through
//! the API fires on a session published on the bus as a network would, and then the bell counts
//! it, the Alerts page lists it in words and follows new ones live, a fleet manager acknowledges
//! it, the SIM page shows its quota and the alert, and the Rules page edits the rule — a refused
//! threshold shown next to its field, a rule changed meanwhile refused as such, then saved. A
//! viewer on a phone reads the same pages without the buttons that change anything, and nothing
//! is wider than the screen. On the SIM page a fleet manager sets a quota, sees refused stages
//! next to their field and removes the quota after confirming; a viewer is offered no editor.
//! Screenshots under the target directory's `tmp/browser/`.

use std::time::Duration;

use fantoccini::{Client, Locator};
use ioto_domain::Role;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

use crate::browser::screenshot;
use crate::console::{
    click, go, open, overflows, publish_session, ready, sign_in, text_of, until, DESKTOP, PHONE,
};

/// An app counting sessions from its bus, evaluating quotas and data rules a fifth of a second
/// after a count, and alert rules on the clock every second (as `alerts.rs` runs them).
async fn alert_app() -> TestApp {
    let mut config = crate::quotas::counting_config(Engines::Embedded).await;
    config.fleet.alert_tick_seconds = 1;
    TestApp::spawn_with(config).await
}

const RULE_INPUT: &str = "mutation($in: AlertRuleInput!) { createAlertRule(input: $in) { id version } }";

/// Waits (up to 30 s) until the API counts `n` firing alerts.
async fn firing(app: &TestApp, token: &str, n: usize) -> Vec<Value> {
    for _ in 0..300 {
        let body = app
            .gql(
                Some(token),
                "{ alerts(filter: {states: [FIRING]}) { nodes { id iccid value } } }",
                json!({}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let nodes = body["data"]["alerts"]["nodes"].as_array().unwrap().clone();
        if nodes.len() == n {
            return nodes;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the API never counted {n} firing alerts");
}

/// Replaces what the input `css` holds with `text`, typed as a person would.
pub(crate) async fn type_into(c: &Client, css: &str, text: &str) {
    c.execute(
        "const e = document.querySelector(arguments[0]); e.value = ''; e.dispatchEvent(new Event('input'));",
        vec![json!(css)],
    )
    .await
    .unwrap();
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .send_keys(text)
        .await
        .unwrap();
}

/// Waits until the element `css` shows text containing every one of `needles`; returns it.
pub(crate) async fn shows(c: &Client, what: &str, css: &str, needles: &[&str]) -> String {
    until(
        c,
        what,
        "const e = document.querySelector(arguments[0]);
         if (!e || e.closest('[hidden]')) return null;
         const t = e.innerText;
         return arguments[1].every(n => t.includes(n)) ? t : null;",
        vec![json!(css), json!(needles)],
        Duration::from_secs(30),
    )
    .await
    .as_str()
    .unwrap()
    .to_owned()
}

/// The texts of the alert rows on the page, top to bottom.
async fn alert_rows(c: &Client) -> Vec<String> {
    let v = c
        .execute(
            "return Array.from(document.querySelectorAll('[data-testid=alert-row]')).map(r => r.innerText);",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn alerts_are_counted_listed_acknowledged_and_their_rules_edited_in_the_console() {
    let app = alert_app().await;
    let f = &app.factory;
    let t = f.tenant("Alerts in the console").await;
    let sims = f.sims(&t, None, 2).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let viewer = f.user(&t, Role::Viewer, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;

    // More than 1 MB in a day on any SIM, told of at once; SIM 0 may use 10 MB a month.
    let rule = app
        .gql(
            Some(&token),
            RULE_INPUT,
            json!({"in": {"name": "Heavy day", "severity": "MAJOR", "groupWaitSeconds": 0,
                "condition": {"metric": "DATA_IN_DAY", "threshold": 1_000_000}}}),
        )
        .await;
    assert!(rule["errors"].is_null(), "{rule}");
    let rule_id = rule["data"]["createAlertRule"]["id"].as_str().unwrap().to_owned();
    let quota = app
        .gql(
            Some(&token),
            "mutation($i: Iccid!) { setSimQuota(iccid: $i, input: {limitBytes: 10000000, stages: [80]}) { limitBytes } }",
            json!({"i": sims[0].iccid}),
        )
        .await;
    assert!(quota["errors"].is_null(), "{quota}");
    // 2,000,000 bytes in and 200,000 out: 2.2 MB today.
    publish_session(&app, "heavy-0", &sims[0], 2_000_000).await;
    let fired = firing(&app, &token, 1).await;
    assert_eq!(fired[0]["iccid"], sims[0].iccid.as_str());

    let base = format!("http://{}", app.addr);
    let b = open(DESKTOP, None).await;
    let c = &b.c;
    sign_in(c, &base, admin.email.as_str(), TEST_PASSWORD).await;

    // The bell counts the open alert and says so to a screen reader.
    let label = until(
        c,
        "the bell counting one open alert",
        "const b = document.querySelector('[data-testid=alert-bell]');
         return b && b.dataset.count === '1' ? b.getAttribute('aria-label') : null;",
        vec![],
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(label, "1 open alert");
    assert_eq!(text_of(c, "[data-testid=alert-bell] .bell-count").await, "1");

    // The inbox: severity, state, rule, SIM and value in words.
    click(c, "[data-testid=alert-bell]").await;
    ready(c, "alerts").await;
    let row = shows(
        c,
        "the alert in the inbox",
        "[data-testid=alert-row]",
        &[
            "Major",
            "Firing",
            "Heavy day",
            sims[0].iccid.as_str(),
            "2.20 MB",
            "ago",
        ],
    )
    .await;
    assert!(
        row.contains("Acknowledge"),
        "a fleet manager may acknowledge: {row}"
    );
    let nav = text_of(c, "[data-testid=nav]").await;
    assert!(nav.contains("Alerts"), "{nav}");

    // A new alert appears on top while the page is open, and the bell counts it. The page
    // follows `alerts` once drawn; give the subscription a moment to start.
    tokio::time::sleep(Duration::from_secs(1)).await;
    publish_session(&app, "heavy-1", &sims[1], 3_000_000).await;
    until(
        c,
        "the second alert pushed to the open page",
        "const r = document.querySelectorAll('[data-testid=alert-row]'); return r.length === 2;",
        vec![],
        Duration::from_secs(30),
    )
    .await;
    let rows = alert_rows(c).await;
    assert!(
        rows[0].contains(sims[1].iccid.as_str()) && rows[0].contains("3.30 MB"),
        "the newest on top: {rows:?}"
    );
    until(
        c,
        "the bell counting two",
        "const b = document.querySelector('[data-testid=alert-bell]'); return b && b.dataset.count === '2';",
        vec![],
        Duration::from_secs(15),
    )
    .await;

    // Acknowledged with a comment: who, when and why, in the row.
    let first = format!(
        "[data-testid=alert-row][data-id=\"{}\"]",
        fired[0]["id"].as_str().unwrap()
    );
    click(c, &format!("{first} [data-testid=alert-ack-open]")).await;
    type_into(
        c,
        &format!("{first} [data-testid=alert-ack-comment-input]"),
        "Firmware update, expected",
    )
    .await;
    click(c, &format!("{first} [data-testid=alert-ack-confirm]")).await;
    let ack = shows(
        c,
        "the acknowledgement in the row",
        &format!("{first} [data-testid=alert-ack]"),
        &[
            "Acknowledged by",
            admin.email.as_str(),
            "ago",
            "Firmware update, expected",
        ],
    )
    .await;
    assert!(
        !ack.contains(&admin.id.0.to_string()),
        "a person, not an id: {ack}"
    );
    let api = app
        .gql(
            Some(&token),
            "query($id: ID!) { alert(id: $id) { acknowledged acknowledgeComment } }",
            json!({"id": fired[0]["id"]}),
        )
        .await;
    assert_eq!(
        api["data"]["alert"],
        json!({"acknowledged": true, "acknowledgeComment": "Firmware update, expected"}),
        "{api}"
    );
    assert_eq!(overflows(c).await, Value::Null, "the inbox fits 1280 pixels");
    screenshot(c, "console-alerts.png").await;

    // The SIM page: its quota (2.2 MB of 10 MB) and its alert, acknowledged.
    go(c, &base, &format!("/sims/{}", sims[0].iccid.as_str())).await;
    ready(c, "sim").await;
    shows(
        c,
        "the quota card",
        "[data-testid=sim-quota]",
        &["Quota", "2.20 MB", "of 10.0 MB used", "22.0 %", "Period ends"],
    )
    .await;
    shows(
        c,
        "the SIM's alert",
        "[data-testid=sim-alerts-card]",
        &[
            "1 open alert",
            "Heavy day",
            "Firing",
            "2.20 MB",
            "Acknowledged by",
        ],
    )
    .await;
    let none = {
        go(c, &base, &format!("/sims/{}", sims[1].iccid.as_str())).await;
        ready(c, "sim").await;
        shows(c, "no quota", "[data-testid=sim-quota]", &["No quota"]).await
    };
    assert!(!none.contains('%'), "{none}");
    go(c, &base, &format!("/sims/{}", sims[0].iccid.as_str())).await;
    ready(c, "sim").await;
    shows(c, "the quota card again", "[data-testid=sim-quota]", &["22.0 %"]).await;
    shows(
        c,
        "the SIM's alert again",
        "[data-testid=sim-alerts-card]",
        &["Heavy day"],
    )
    .await;
    c.execute(
        "document.querySelector('[data-testid=sim-quota]').scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    screenshot(c, "console-sim-alerts.png").await;

    // The rules: listed in words, then edited.
    go(c, &base, "/alerts").await;
    ready(c, "alerts").await;
    click(c, "[data-testid=alerts-rules-link]").await;
    ready(c, "alert-rules").await;
    shows(
        c,
        "the rule in the list",
        "[data-testid=rule-row]",
        &[
            "Heavy day",
            "Data in a day",
            "over 1.00 MB",
            "Every SIM",
            "Major",
            "On",
            "In-app",
        ],
    )
    .await;
    click(c, "[data-testid=rule-edit]").await;
    shows(
        c,
        "the editor",
        "[data-testid=rule-form]",
        &["Edit the rule", "Threshold (MB)", "Timing"],
    )
    .await;
    // Nothing is not a threshold: the API's word on it goes next to the field.
    type_into(c, "[data-testid=rule-threshold]", "0").await;
    click(c, "[data-testid=rule-save]").await;
    let refused = shows(
        c,
        "the threshold refused next to its field",
        "[data-testid='error-condition.threshold']",
        &["out of range"],
    )
    .await;
    assert!(!refused.is_empty());
    let invalid = c
        .execute(
            "return document.querySelector('[data-testid=rule-threshold]').getAttribute('aria-invalid');",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(invalid, "true", "the field is marked for assistive technology");
    screenshot(c, "console-alert-rules.png").await;

    // Someone else changes the rule meanwhile: the save is refused as such, and after reading
    // the rule again it goes through (2 MB: both SIMs are still over it, so their alerts stay
    // open when the rule is evaluated again).
    let elsewhere = app
        .gql(
            Some(&token),
            "mutation($id: ID!, $in: AlertRuleInput!) { updateAlertRule(id: $id, input: $in) { version } }",
            json!({"id": rule_id, "in": {"name": "Heavy day", "severity": "MAJOR", "groupWaitSeconds": 0,
                "description": "Changed elsewhere",
                "condition": {"metric": "DATA_IN_DAY", "threshold": 1_000_000}}}),
        )
        .await;
    assert!(elsewhere["errors"].is_null(), "{elsewhere}");
    type_into(c, "[data-testid=rule-threshold]", "2").await;
    click(c, "[data-testid=rule-save]").await;
    shows(
        c,
        "the conflict said plainly",
        "[data-testid=rule-conflict]",
        &["Someone else changed this rule", "not saved"],
    )
    .await;
    click(c, "[data-testid=rule-reload]").await;
    until(
        c,
        "the rule read again",
        "const d = document.querySelector('[data-testid=rule-form] textarea[name=description]');
         return d && d.value === 'Changed elsewhere';",
        vec![],
        Duration::from_secs(15),
    )
    .await;
    type_into(c, "[data-testid=rule-threshold]", "2").await;
    click(c, "[data-testid=rule-save]").await;
    shows(
        c,
        "the rule saved",
        "[data-testid=rules-message]",
        &["Saved the rule", "Heavy day"],
    )
    .await;
    shows(
        c,
        "the new threshold in the list",
        "[data-testid=rule-row]",
        &["over 2.00 MB", "Changed elsewhere"],
    )
    .await;
    let saved = app
        .gql(
            Some(&token),
            "query($id: ID!) { alertRule(id: $id) { threshold description version } }",
            json!({"id": rule_id}),
        )
        .await;
    assert_eq!(
        saved["data"]["alertRule"],
        json!({"threshold": 2_000_000, "description": "Changed elsewhere", "version": 3}),
        "{saved}"
    );
    assert_eq!(overflows(c).await, Value::Null, "the rules fit 1280 pixels");
    b.c.close().await.unwrap();

    // A viewer on a phone: the same alerts and rules, nothing to change them with, nothing
    // wider than the screen.
    let phone = open(PHONE, None).await;
    let p = &phone.c;
    sign_in(p, &base, viewer.email.as_str(), TEST_PASSWORD).await;
    until(
        p,
        "the viewer's bell",
        "const b = document.querySelector('[data-testid=alert-bell]'); return b && b.dataset.count === '2';",
        vec![],
        Duration::from_secs(15),
    )
    .await;
    let sim_route = format!("/sims/{}", sims[0].iccid.as_str());
    for (route, page) in [
        ("/alerts", "alerts"),
        ("/alerts/rules", "alert-rules"),
        (sim_route.as_str(), "sim"),
    ] {
        go(p, &base, route).await;
        ready(p, page).await;
        if page == "alerts" {
            shows(
                p,
                "the alerts for a viewer",
                "[data-testid=alerts-table]",
                &["Heavy day", "Acknowledged by", "Not acknowledged"],
            )
            .await;
        }
        if page == "sim" {
            shows(
                p,
                "the quota for a viewer",
                "[data-testid=sim-quota]",
                &["22.0 %"],
            )
            .await;
            shows(
                p,
                "the SIM's alert for a viewer",
                "[data-testid=sim-alerts-card]",
                &["Heavy day", "Acknowledged by"],
            )
            .await;
        }
        let buttons = p
            .execute(
                "return document.querySelectorAll('[data-testid=alert-ack-open], [data-testid=rule-edit], [data-testid=rule-new], [data-testid=rule-delete]').length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(buttons, 0, "{page}: a viewer is offered nothing to change");
        assert_eq!(
            overflows(p).await,
            Value::Null,
            "{page}: wider than a 390-pixel phone"
        );
        screenshot(p, &format!("console-phone-viewer-{page}.png")).await;
    }
    phone.c.close().await.unwrap();
    app.stop().await;
}

/// Whether the control `css` may be used (it must be there).
async fn enabled(c: &Client, css: &str) -> bool {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .is_enabled()
        .await
        .unwrap()
}

/// The quota's buttons and form on the page: a viewer is offered none of them.
const QUOTA_CONTROLS: &str = "[data-testid=sim-quota-set], [data-testid=sim-quota-edit], \
    [data-testid=sim-quota-remove], [data-testid=sim-quota-form]";

#[tokio::test]
async fn a_fleet_manager_sets_and_removes_a_sims_quota_on_the_sim_page() {
    let app = alert_app().await;
    let f = &app.factory;
    let t = f.tenant("Quota editor").await;
    let sims = f.sims(&t, None, 1).await;
    let sim = &sims[0];
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let viewer = f.user(&t, Role::Viewer, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let quota_of = || {
        let (app, token) = (&app, token.clone());
        async move {
            let body = app
                .gql(
                    Some(&token),
                    "query($i: Iccid!) { sim(iccid: $i) { quota { limitBytes stages action resumeNextPeriod source } } }",
                    json!({"i": sim.iccid}),
                )
                .await;
            assert!(body["errors"].is_null(), "{body}");
            body["data"]["sim"]["quota"].clone()
        }
    };

    let base = format!("http://{}", app.addr);
    let route = format!("/sims/{}", sim.iccid.as_str());
    let b = open(DESKTOP, None).await;
    let c = &b.c;
    sign_in(c, &base, admin.email.as_str(), TEST_PASSWORD).await;
    go(c, &base, &route).await;
    ready(c, "sim").await;
    shows(
        c,
        "no quota yet",
        "[data-testid=sim-quota]",
        &["No quota", "Set quota"],
    )
    .await;

    // 50 MB a period, warned at 80 and 90 % (the form's defaults), the SIM suspended at the
    // limit and resumed when the next period starts — which only a suspension may ask.
    click(c, "[data-testid=sim-quota-set]").await;
    shows(
        c,
        "the quota form",
        "[data-testid=sim-quota-form]",
        &[
            "Limit per period",
            "Warn at",
            "At the limit",
            "Resume at the start of the next period",
        ],
    )
    .await;
    let stages = c
        .execute(
            "return document.querySelector('[data-testid=sim-quota-stages]').value;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(stages, "80, 90", "the API's default stages to start from");
    assert!(
        !enabled(c, "[data-testid=sim-quota-resume]").await,
        "resuming is out of reach while the quota only notifies"
    );
    type_into(c, "[data-testid=sim-quota-limit]", "50").await;
    c.find(Locator::Css("[data-testid=sim-quota-unit]"))
        .await
        .unwrap()
        .select_by_label("MB")
        .await
        .unwrap();
    c.find(Locator::Css("[data-testid=sim-quota-action-input]"))
        .await
        .unwrap()
        .select_by_label("Suspend the SIM")
        .await
        .unwrap();
    assert!(enabled(c, "[data-testid=sim-quota-resume]").await);
    click(c, "[data-testid=sim-quota-resume]").await;
    click(c, "[data-testid=sim-quota-save]").await;
    let card = shows(
        c,
        "the saved quota on the card",
        "[data-testid=sim-quota]",
        &[
            "Saved the quota.",
            "of 50.0 MB used",
            "50.0 MB per period",
            "Set on this SIM",
            "80 %, 90 %",
            "Suspend the SIM",
            "Resumed when the next period starts",
            "Set by",
            admin.email.as_str(),
            "Edit",
            "Remove",
        ],
    )
    .await;
    assert!(!card.contains("SUSPEND"), "words, not the API's codes: {card}");
    assert_eq!(
        quota_of().await,
        json!({"limitBytes": 50_000_000, "stages": [80, 90], "action": "SUSPEND",
            "resumeNextPeriod": true, "source": "SIM"})
    );

    // Stages out of order: the API's word on them goes next to the stages, nothing is saved.
    click(c, "[data-testid=sim-quota-edit]").await;
    let limit = c
        .execute(
            "return [document.querySelector('[data-testid=sim-quota-limit]').value,
                     document.querySelector('[data-testid=sim-quota-unit]').value];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(limit, json!(["50", "MB"]), "the editor starts from the quota");
    type_into(c, "[data-testid=sim-quota-stages]", "90, 80").await;
    click(c, "[data-testid=sim-quota-save]").await;
    let refused = shows(
        c,
        "the stages refused next to their field",
        "[data-testid=sim-quota-error-stages]",
        &["ascending"],
    )
    .await;
    assert!(
        !refused.starts_with("stages"),
        "a sentence, not the field's code: {refused}"
    );
    let invalid = c
        .execute(
            "return document.querySelector('[data-testid=sim-quota-stages]').getAttribute('aria-invalid');",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(invalid, "true", "the field is marked for assistive technology");
    shows(
        c,
        "the form saying it was not saved",
        "[data-testid=sim-quota-status]",
        &["not saved"],
    )
    .await;
    assert_eq!(quota_of().await["stages"], json!([80, 90]), "nothing saved");
    c.execute(
        "document.querySelector('[data-testid=sim-quota]').scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    screenshot(c, "console-sim-quota-edit.png").await;
    click(c, "[data-testid=sim-quota-cancel]").await;
    shows(
        c,
        "the card again",
        "[data-testid=sim-quota]",
        &["80 %, 90 %", "Remove"],
    )
    .await;

    // Removing asks first.
    click(c, "[data-testid=sim-quota-remove]").await;
    shows(
        c,
        "the question before removing",
        "[data-testid=sim-quota-remove-panel]",
        &["Remove this SIM’s quota?"],
    )
    .await;
    assert!(!quota_of().await.is_null(), "nothing removed before confirming");
    click(c, "[data-testid=sim-quota-remove-confirm]").await;
    let none = shows(
        c,
        "no quota after removing it",
        "[data-testid=sim-quota]",
        &["Removed the quota.", "No quota", "Set quota"],
    )
    .await;
    assert!(!none.contains('%'), "{none}");
    assert!(quota_of().await.is_null());
    assert_eq!(overflows(c).await, Value::Null, "the SIM page fits 1280 pixels");
    b.c.close().await.unwrap();

    // A viewer reads the quota, with or without one, and is offered nothing to change it with.
    let v = open(DESKTOP, None).await;
    let p = &v.c;
    sign_in(p, &base, viewer.email.as_str(), TEST_PASSWORD).await;
    go(p, &base, &route).await;
    ready(p, "sim").await;
    shows(
        p,
        "no quota for a viewer",
        "[data-testid=sim-quota]",
        &["No quota"],
    )
    .await;
    let controls = p
        .execute(
            "return document.querySelectorAll(arguments[0]).length;",
            vec![json!(QUOTA_CONTROLS)],
        )
        .await
        .unwrap();
    assert_eq!(controls, 0, "a viewer is offered no quota to set");
    let set = app
        .gql(
            Some(&token),
            "mutation($i: Iccid!) { setSimQuota(iccid: $i, input: {limitBytes: 50000000}) { limitBytes } }",
            json!({"i": sim.iccid}),
        )
        .await;
    assert!(set["errors"].is_null(), "{set}");
    p.refresh().await.unwrap();
    ready(p, "sim").await;
    shows(
        p,
        "the quota for a viewer",
        "[data-testid=sim-quota]",
        &["of 50.0 MB used", "Notify only"],
    )
    .await;
    let controls = p
        .execute(
            "return document.querySelectorAll(arguments[0]).length;",
            vec![json!(QUOTA_CONTROLS)],
        )
        .await
        .unwrap();
    assert_eq!(controls, 0, "a viewer is offered no quota to change or remove");
    v.c.close().await.unwrap();
    app.stop().await;
}
