//! SIM state changes go through the network (the simulated HLR): recorded only once the network
//! confirms, a refusal or silence leaves the SIM as it was with the reason in its audit trail.

use ioto_domain::Role;
use ioto_network::HlrProfile;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp};
use serde_json::json;

use super::Fixture;

const CHANGE: &str = "mutation($i: Iccid!, $s: SimState!) { changeSimState(iccid: $i, state: $s) { sim { state } effects { action newValue } } }";
const LOCATE: &str = "mutation($i: Iccid!) { requestLocationUpdate(iccid: $i, note: \"stuck on a roaming network\") { iccid state } }";
const SIM: &str = "query($i: Iccid!) { sim(iccid: $i) { state events { action oldValue newValue note } } }";

async fn fixture(engines: Engines, profile: HlrProfile) -> Fixture {
    let mut config = TestApp::config(engines).await;
    config.network.simulated = profile;
    Fixture::with_app(TestApp::spawn_with(config).await, Role::Operator).await
}

fn quick() -> HlrProfile {
    HlrProfile {
        latency_median_ms: 1.0,
        latency_p99_ms: 5.0,
        ..HlrProfile::default()
    }
}

async fn confirmed_changes_carry_the_network_reference_on(engines: Engines) {
    let fx = fixture(engines, quick()).await;
    let sims = fx.app.factory.sims(&fx.tenant, None, 2).await;
    let iccid = sims[0].iccid.to_string();
    let out = fx
        .ok(CHANGE, json!({"i": iccid, "s": "SUSPENDED"}), "changeSimState")
        .await;
    assert_eq!(out["sim"]["state"], "SUSPENDED");
    let network = &out["effects"][0]["newValue"]["network"];
    assert_eq!(network["action"], "SUSPEND", "{out}");
    assert!(
        network["reference"].as_str().unwrap().starts_with("hlr-"),
        "{out}"
    );
    let out = fx
        .ok(CHANGE, json!({"i": iccid, "s": "ACTIVE"}), "changeSimState")
        .await;
    assert_eq!(out["effects"][0]["newValue"]["network"]["action"], "RESUME");

    // A location update is sent and audited; the SIM's state does not change.
    let sim = fx.ok(LOCATE, json!({"i": iccid}), "requestLocationUpdate").await;
    assert_eq!(sim["state"], "ACTIVE");
    let events = fx.ok(SIM, json!({"i": iccid}), "sim").await["events"].clone();
    assert_eq!(events[0]["action"], "LOCATION_UPDATED", "{events}");
    assert_eq!(events[0]["note"], "stuck on a roaming network");
    assert_eq!(events[0]["newValue"]["network"]["action"], "LOCATION_UPDATE");

    // Only a SIM in service has a location to update.
    fx.ok(CHANGE, json!({"i": iccid, "s": "TERMINATED"}), "changeSimState")
        .await;
    let body = fx.gql(LOCATE, json!({"i": iccid})).await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("TERMINATED"),
        "{body}"
    );
}

#[tokio::test]
async fn confirmed_changes_carry_the_network_reference() {
    confirmed_changes_carry_the_network_reference_on(Engines::Real).await;
}

#[tokio::test]
async fn confirmed_changes_carry_the_network_reference_embedded() {
    confirmed_changes_carry_the_network_reference_on(Engines::Embedded).await;
}

/// A network that refuses everything: nothing changes here, and the trail says why.
#[tokio::test]
async fn a_refusal_leaves_the_sim_as_it_was_with_the_reason_audited() {
    let fx = fixture(
        Engines::Embedded,
        HlrProfile {
            permanent_failure_rate: 1.0,
            ..quick()
        },
    )
    .await;
    let sims = fx.app.factory.sims(&fx.tenant, None, 1).await;
    let iccid = sims[0].iccid.to_string();
    let body = fx.gql(CHANGE, json!({"i": iccid, "s": "SUSPENDED"})).await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    let msg = body["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("the network refused SUSPEND"), "{msg}");
    assert!(msg.contains("stays ACTIVE"), "{msg}");
    let sim = fx.ok(SIM, json!({"i": iccid}), "sim").await;
    assert_eq!(sim["state"], "ACTIVE");
    let failed = &sim["events"][0];
    assert_eq!(failed["action"], "NETWORK_FAILED", "{sim}");
    assert_eq!(failed["oldValue"]["state"], "ACTIVE");
    assert_eq!(failed["newValue"]["action"], "SUSPEND");
    assert_eq!(failed["newValue"]["failure"], "REFUSED");
    assert!(
        failed["newValue"]["reason"]
            .as_str()
            .unwrap()
            .contains("not provisioned"),
        "{sim}"
    );
}

/// A network that never answers in time: three attempts, then UNAVAILABLE; the SIM is unchanged.
#[tokio::test]
async fn a_silent_network_is_retried_then_reported_unavailable() {
    let fx = fixture(
        Engines::Embedded,
        HlrProfile {
            transient_failure_rate: 1.0,
            ..quick()
        },
    )
    .await;
    let sims = fx.app.factory.sims(&fx.tenant, None, 1).await;
    let iccid = sims[0].iccid.to_string();
    let body = fx.gql(CHANGE, json!({"i": iccid, "s": "TERMINATED"})).await;
    assert_eq!(error_code(&body).as_deref(), Some("UNAVAILABLE"), "{body}");
    let sim = fx.ok(SIM, json!({"i": iccid}), "sim").await;
    assert_eq!(sim["state"], "ACTIVE");
    assert_eq!(sim["events"][0]["action"], "NETWORK_FAILED", "{sim}");
    assert_eq!(sim["events"][0]["newValue"]["failure"], "NO_ANSWER", "{sim}");
    assert_eq!(sim["events"][0]["newValue"]["action"], "TERMINATE", "{sim}");
}
