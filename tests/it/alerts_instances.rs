//! Alert rules on several servers over one Postgres, ClickHouse and broker: the stream and the
//! clock evaluated by each, a server stopped and another started, events delivered again — and
//! every alert opened, told of and resolved once.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use ioto_domain::Role;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

use crate::alerts::{alert_app, alerts, create_rule, publish_at, until, until_alerts};
use crate::fleet::notify::SmtpServer;

/// Every alert notification a tenant's user sees: (kind, the subjects it tells of).
async fn told(app: &TestApp, token: &str) -> Vec<(String, Vec<String>)> {
    let body = app
        .gql(
            Some(token),
            "{ notifications(first: 100) { nodes { kind data } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"].as_str().unwrap_or("").starts_with("ALERT_"))
        .map(|n| {
            let subjects = n["data"]["alerts"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x["subject"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (n["kind"].as_str().unwrap().to_owned(), subjects)
        })
        .collect()
}

/// How often each subject was told of in notifications of `kind`.
fn times_told(notes: &[(String, Vec<String>)], kind: &str) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for (k, subjects) in notes {
        if k == kind {
            for s in subjects {
                *n.entry(s.clone()).or_default() += 1;
            }
        }
    }
    n
}

/// Each alert as (subject, state, id), by subject.
fn standing(list: &[Value]) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = list
        .iter()
        .map(|a| {
            (
                a["subject"].as_str().unwrap_or_default().to_owned(),
                a["state"].as_str().unwrap_or_default().to_owned(),
                a["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn two_servers_a_restart_and_redelivered_events_open_tell_and_resolve_each_alert_once() {
    let smtp = SmtpServer::start().await;
    let first = alert_app(Engines::Real, &smtp).await;
    // A second server of the same deployment: the same databases, broker topics and consumer
    // group, its own clock.
    let second = TestApp::spawn_with(first.config.clone()).await;
    let f = &first.factory;
    let t = f.tenant("Two servers").await;
    let sims = f.sims(&t, None, 6).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = first.login(admin.email.as_str(), TEST_PASSWORD).await;
    let channels = json!({"inApp": true, "emails": ["noc@example.com"]});
    create_rule(
        &first,
        &token,
        json!({"name": "Heavy", "severity": "MAJOR", "channels": channels,
            "condition": {"metric": "DATA_IN_DAY", "threshold": 100000}, "groupWaitSeconds": 0,
            "groupIntervalSeconds": 10}),
    )
    .await;
    create_rule(
        &second,
        &token,
        json!({"name": "Quiet", "severity": "CRITICAL", "channels": channels,
            "condition": {"metric": "OFFLINE_HOURS", "threshold": 1}, "groupWaitSeconds": 0,
            "groupIntervalSeconds": 10}),
    )
    .await;

    // Four SIMs past the data threshold, two last seen hours ago; each event sent through one
    // server's bus or the other's, and every one of them twice.
    let two_hours_ago = Utc::now() - chrono::Duration::hours(2);
    for (i, sim) in sims.iter().enumerate() {
        let app = if i % 2 == 0 { &first } else { &second };
        let (bytes, at) = if i < 4 {
            (200_000, Utc::now())
        } else {
            (1_000, two_hours_ago)
        };
        for _ in 0..2 {
            publish_at(app, &format!("two-{i}"), sim, bytes, at).await;
        }
    }
    let firing = until_alerts(
        &second,
        &token,
        json!({"states": ["FIRING"]}),
        "the six alerts never fired",
        |a| a.len() >= 6,
    )
    .await;
    // Both clocks pass several times over the SIMs: nothing opens twice.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let open = alerts(&first, &token, json!({})).await;
    assert_eq!(
        standing(&open),
        standing(&firing),
        "alerts opened twice, or changed, while both servers evaluated"
    );
    let expected: BTreeMap<String, usize> = sims.iter().map(|s| (s.iccid.as_str().to_owned(), 1)).collect();
    let mut notes = Vec::new();
    for _ in 0..100 {
        notes = told(&first, &token).await;
        if times_told(&notes, "ALERT_FIRING").len() == sims.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        times_told(&notes, "ALERT_FIRING"),
        expected,
        "each alert told once in the app: {notes:?}"
    );
    // E-mail goes out after the notification is written: waited for, then counted again.
    let firing_notes = notes.iter().filter(|(k, _)| k == "ALERT_FIRING").count();
    until("the alert e-mails never arrived", || {
        (smtp.messages().len() >= firing_notes).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        smtp.messages().len(),
        firing_notes,
        "an e-mail per notification, each sent once"
    );

    // The second server stops and a third starts: the alerts stand as they were, no one is
    // told again, and the first server's clock keeps them.
    second.stop().await;
    let third = TestApp::spawn_with(first.config.clone()).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = alerts(&third, &token, json!({})).await;
    assert_eq!(
        standing(&after),
        standing(&firing),
        "a restart changed the alerts"
    );
    let again = told(&third, &token).await;
    assert_eq!(
        times_told(&again, "ALERT_FIRING"),
        expected,
        "a restarted server told of the alerts again"
    );

    // The quiet SIMs are seen again (through the new server), once and then once more: each
    // alert resolves once, with one notice.
    for (i, sim) in sims.iter().enumerate().skip(4) {
        for _ in 0..2 {
            publish_at(&third, &format!("two-back-{i}"), sim, 1_000, Utc::now()).await;
        }
    }
    until_alerts(
        &first,
        &token,
        json!({"states": ["RESOLVED"]}),
        "the quiet SIMs' alerts never resolved",
        |a| a.len() >= 2,
    )
    .await;
    let mut resolved = BTreeMap::new();
    for _ in 0..100 {
        resolved = times_told(&told(&first, &token).await, "ALERT_RESOLVED");
        if resolved.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let resolved_now = times_told(&told(&first, &token).await, "ALERT_RESOLVED");
    let quiet: BTreeMap<String, usize> = sims[4..]
        .iter()
        .map(|s| (s.iccid.as_str().to_owned(), 1))
        .collect();
    assert_eq!(
        (resolved, resolved_now),
        (quiet.clone(), quiet),
        "each resolution told once"
    );
    let states: Vec<(String, String)> = standing(&alerts(&first, &token, json!({})).await)
        .into_iter()
        .map(|(s, st, _)| (s, st))
        .collect();
    assert_eq!(states.len(), 6, "an alert was opened again: {states:?}");
    third.stop().await;
    first.stop().await;
}
