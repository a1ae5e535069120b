//! SIM lifecycle: the transition table, optimistic versions, scheduled transitions, and the
//! `simStateChanged` subscription.

use std::time::Duration;

use chrono::Utc;
use ioto_domain::Role;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::json;

use super::Fixture;
use crate::http::{ws_next, ws_subscribe};

const CHANGE: &str = "mutation($iccid: Iccid!, $state: SimState!, $v: Int, $at: DateTime, $note: String) {
  changeSimState(iccid: $iccid, state: $state, expectedVersion: $v, effectiveAt: $at, note: $note) {
    sim { state version device { id } }
    scheduled { id status targetState effectiveAt }
    effects { entityKind reference action oldValue newValue }
  }
}";
const LABELS: &str = "mutation($iccid: Iccid!, $key: String!, $v: Int) {
  changeSimLabels(iccid: $iccid, change: { set: [{ key: $key, value: \"x\" }] }, expectedVersion: $v) { sim { version labels { key } } }
}";
const SIM: &str = "query($iccid: Iccid!) { sim(iccid: $iccid) { state version labels { key } events { action actor oldValue newValue note } scheduledTransitions { id status outcome } } }";

#[tokio::test]
async fn sim_states_follow_the_table_and_refusals_name_the_states() {
    sim_states_follow_the_table_and_refusals_name_the_states_on(Engines::Real).await;
}

/// The same on SQLite and the embedded engines.
#[tokio::test]
async fn sim_states_follow_the_table_and_refusals_name_the_states_embedded() {
    sim_states_follow_the_table_and_refusals_name_the_states_on(Engines::Embedded).await;
}

async fn sim_states_follow_the_table_and_refusals_name_the_states_on(engines: Engines) {
    let fx = Fixture::on(engines, Role::Operator).await;
    let sims = fx.app.factory.sims(&fx.tenant, None, 2).await;
    let iccid = sims[0].iccid.to_string();

    let out = fx
        .ok(
            CHANGE,
            json!({"iccid": iccid, "state": "SUSPENDED", "note": "unpaid"}),
            "changeSimState",
        )
        .await;
    assert_eq!(out["sim"]["state"], "SUSPENDED");
    assert_eq!(out["effects"][0]["action"], "STATE_CHANGED");
    assert_eq!(out["effects"][0]["oldValue"]["state"], "ACTIVE");
    assert_eq!(out["effects"][0]["newValue"]["state"], "SUSPENDED");

    let body = fx
        .gql(CHANGE, json!({"iccid": iccid, "state": "INVENTORY"}))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    let msg = body["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("from SUSPENDED to INVENTORY"), "{msg}");
    assert!(
        msg.contains("allowed from SUSPENDED: ACTIVE, LOST_STOLEN, TERMINATED"),
        "{msg}"
    );

    fx.ok(
        CHANGE,
        json!({"iccid": iccid, "state": "LOST_STOLEN"}),
        "changeSimState",
    )
    .await;
    fx.ok(
        CHANGE,
        json!({"iccid": iccid, "state": "TERMINATED"}),
        "changeSimState",
    )
    .await;
    let body = fx.gql(CHANGE, json!({"iccid": iccid, "state": "ACTIVE"})).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("TERMINATED is final"),
        "{body}"
    );

    // The trail holds every change with who and the note, newest first; refusals wrote nothing.
    let sim = fx.ok(SIM, json!({"iccid": iccid}), "sim").await;
    let actions: Vec<&str> = sim["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["STATE_CHANGED", "STATE_CHANGED", "STATE_CHANGED", "CREATED"]
    );
    assert_eq!(sim["events"][2]["note"], "unpaid");

    // Terminating a SIM in a device unbinds it, and says so.
    let device = fx.app.factory.device(&fx.tenant, None, "Tracker").await;
    let other = sims[1].iccid.to_string();
    let bind = "mutation($i: Iccid!, $d: ID!) { bindSim(iccid: $i, deviceId: $d) { sim { device { id } } } }";
    fx.ok(bind, json!({"i": other, "d": device.id.to_string()}), "bindSim")
        .await;
    let out = fx
        .ok(
            CHANGE,
            json!({"iccid": other, "state": "TERMINATED"}),
            "changeSimState",
        )
        .await;
    assert_eq!(out["sim"]["device"], json!(null));
    let effects: Vec<&str> = out["effects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(effects, ["STATE_CHANGED", "UNBOUND"]);
    fx.app.stop().await;
}

#[tokio::test]
async fn concurrent_changes_are_conflicts_not_lost_updates() {
    concurrent_changes_are_conflicts_not_lost_updates_on(Engines::Real).await;
}

/// The same on SQLite and the embedded engines.
#[tokio::test]
async fn concurrent_changes_are_conflicts_not_lost_updates_embedded() {
    concurrent_changes_are_conflicts_not_lost_updates_on(Engines::Embedded).await;
}

async fn concurrent_changes_are_conflicts_not_lost_updates_on(engines: Engines) {
    let fx = Fixture::on(engines, Role::Operator).await;
    let iccid = fx.app.factory.sims(&fx.tenant, None, 1).await[0]
        .iccid
        .to_string();
    let version = fx.ok(SIM, json!({"iccid": iccid}), "sim").await["version"]
        .as_i64()
        .unwrap();

    // Two writers who read the same version: one wins, the other is told.
    let (a, b) = tokio::join!(
        fx.gql(LABELS, json!({"iccid": iccid, "key": "a", "v": version})),
        fx.gql(LABELS, json!({"iccid": iccid, "key": "b", "v": version})),
    );
    let codes = [error_code(&a), error_code(&b)];
    assert_eq!(codes.iter().filter(|c| c.is_none()).count(), 1, "{a} {b}");
    assert!(codes.contains(&Some("CONFLICT".to_owned())), "{a} {b}");
    let sim = fx.ok(SIM, json!({"iccid": iccid}), "sim").await;
    assert_eq!(sim["version"], version + 1);
    assert_eq!(sim["labels"].as_array().unwrap().len(), 1);

    // Writers without a version still never overwrite each other: each change either lands or
    // is refused, and every one that landed is there.
    let mut calls = Vec::new();
    for i in 0..8 {
        calls.push(fx.gql(LABELS, json!({"iccid": iccid, "key": format!("k{i}")})));
    }
    let results = futures::future::join_all(calls).await;
    let landed = results.iter().filter(|r| error_code(r).is_none()).count();
    assert!(results
        .iter()
        .all(|r| error_code(r).is_none() || error_code(r).as_deref() == Some("CONFLICT")));
    let sim = fx.ok(SIM, json!({"iccid": iccid}), "sim").await;
    assert_eq!(sim["labels"].as_array().unwrap().len(), 1 + landed, "{sim}");
    fx.app.stop().await;
}

#[tokio::test]
async fn scheduled_transitions_wait_are_listed_cancelled_and_applied() {
    let mut config = TestApp::config(Engines::Real).await;
    config.fleet.scheduler_interval_seconds = 1;
    let app = TestApp::spawn_with(config).await;
    let tenant = app.factory.tenant("Later").await;
    let user = app.factory.user(&tenant, Role::Operator, None).await;
    let token = app.login(user.email.as_str(), TEST_PASSWORD).await;
    let fx = Fixture { app, tenant, token };
    let sims = fx.app.factory.sims(&fx.tenant, None, 3).await;
    let [a, b, c] = [0, 1, 2].map(|i| sims[i].iccid.to_string());

    // In an hour: scheduled, listed, the SIM unchanged; a second one for the same SIM is refused.
    let later = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let out = fx
        .ok(
            CHANGE,
            json!({"iccid": a, "state": "TERMINATED", "at": later, "note": "contract ends"}),
            "changeSimState",
        )
        .await;
    assert_eq!(out["sim"]["state"], "ACTIVE");
    assert_eq!(out["scheduled"]["status"], "PENDING");
    let id = out["scheduled"]["id"].as_str().unwrap().to_owned();
    let pending = fx
        .ok(
            "{ scheduledTransitions { id iccid targetState } }",
            json!({}),
            "scheduledTransitions",
        )
        .await;
    assert_eq!(pending[0]["id"], id.as_str());
    let body = fx
        .gql(CHANGE, json!({"iccid": a, "state": "SUSPENDED", "at": later}))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    // Cancelled: no longer pending, recorded in the trail.
    let cancel =
        "mutation($id: ID!) { cancelScheduledTransition(id: $id, note: \"renewed\") { status outcome } }";
    let out = fx
        .ok(cancel, json!({"id": id}), "cancelScheduledTransition")
        .await;
    assert_eq!(out["status"], "CANCELLED");
    let body = fx.gql(cancel, json!({"id": id})).await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    let pending = fx
        .ok(
            "{ scheduledTransitions { id } }",
            json!({}),
            "scheduledTransitions",
        )
        .await;
    assert_eq!(pending, json!([]));

    // In two seconds: the scheduler applies it. Another one becomes impossible before its time
    // (the SIM was terminated meanwhile) and fails with the reason.
    let soon = (Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    fx.ok(
        CHANGE,
        json!({"iccid": b, "state": "SUSPENDED", "at": soon}),
        "changeSimState",
    )
    .await;
    fx.ok(
        CHANGE,
        json!({"iccid": c, "state": "SUSPENDED", "at": soon}),
        "changeSimState",
    )
    .await;
    fx.ok(
        CHANGE,
        json!({"iccid": c, "state": "TERMINATED"}),
        "changeSimState",
    )
    .await;
    let mut applied = serde_json::Value::Null;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        applied = fx.ok(SIM, json!({"iccid": b}), "sim").await;
        if applied["state"] == "SUSPENDED" {
            break;
        }
    }
    assert_eq!(
        applied["state"], "SUSPENDED",
        "the scheduler did not apply the transition: {applied}"
    );
    assert_eq!(applied["scheduledTransitions"][0]["status"], "APPLIED");
    assert!(
        applied["events"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("scheduler (requested by"),
        "{applied}"
    );
    let mut failed = serde_json::Value::Null;
    for _ in 0..20 {
        failed = fx.ok(SIM, json!({"iccid": c}), "sim").await;
        if failed["scheduledTransitions"][0]["status"] != "PENDING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(failed["scheduledTransitions"][0]["status"], "FAILED", "{failed}");
    assert!(
        failed["scheduledTransitions"][0]["outcome"]
            .as_str()
            .unwrap()
            .contains("TERMINATED is final"),
        "{failed}"
    );
    fx.app.stop().await;
}

#[tokio::test]
async fn sim_state_changes_reach_subscribers_of_the_tenant_only() {
    let fx = Fixture::new(Role::Operator).await;
    let iccid = fx.app.factory.sims(&fx.tenant, None, 1).await[0]
        .iccid
        .to_string();
    let other = fx.app.factory.tenant("Other").await;
    let stranger = fx.app.factory.user(&other, Role::TenantAdmin, None).await;
    let stranger_token = fx.app.login(stranger.email.as_str(), TEST_PASSWORD).await;
    let query = "subscription { simStateChanged { iccid from to actor } }";
    let mut mine = ws_subscribe(&fx.app, &fx.token, query).await;
    let mut theirs = ws_subscribe(&fx.app, &stranger_token, query).await;
    fx.ok(
        CHANGE,
        json!({"iccid": iccid, "state": "SUSPENDED"}),
        "changeSimState",
    )
    .await;
    let msg = ws_next(&mut mine).await.unwrap();
    assert_eq!(
        msg["payload"]["data"]["simStateChanged"]["iccid"],
        iccid.as_str(),
        "{msg}"
    );
    assert_eq!(msg["payload"]["data"]["simStateChanged"]["from"], "ACTIVE");
    assert_eq!(msg["payload"]["data"]["simStateChanged"]["to"], "SUSPENDED");
    // The other tenant's subscriber hears nothing within a second.
    let silent = tokio::time::timeout(Duration::from_secs(1), ws_next(&mut theirs)).await;
    assert!(silent.is_err(), "another tenant received {silent:?}");
    // A swap moves both SIMs' states: subscribers hear both.
    let fresh = ioto_domain::identifiers::Iccid::with_check_digit(&format!(
        "89490{:014}",
        uuid::Uuid::new_v4().as_u128() % 100_000_000_000_000
    ))
    .unwrap()
    .to_string();
    let imsi = format!("26201{:010}", uuid::Uuid::new_v4().as_u128() % 10_000_000_000);
    let create = "mutation($i: Iccid!, $m: String!) { createSim(input: { iccid: $i, imsi: $m }) { state } }";
    fx.ok(create, json!({"i": fresh, "m": imsi}), "createSim").await;
    let swap =
        "mutation($o: Iccid!, $n: Iccid!) { swapSim(oldIccid: $o, newIccid: $n) { newSim { state } } }";
    fx.ok(swap, json!({"o": iccid, "n": fresh}), "swapSim").await;
    let mut changes = Vec::new();
    for _ in 0..2 {
        let msg = ws_next(&mut mine).await.unwrap();
        let c = &msg["payload"]["data"]["simStateChanged"];
        changes.push(format!(
            "{} {} -> {}",
            c["iccid"].as_str().unwrap(),
            c["from"],
            c["to"]
        ));
    }
    changes.sort();
    let mut want = vec![
        format!("{iccid} \"SUSPENDED\" -> \"TERMINATED\""),
        format!("{fresh} \"INVENTORY\" -> \"SUSPENDED\""),
    ];
    want.sort();
    assert_eq!(changes, want);
    fx.app.stop().await;
}
