//! The coordination layer: bindings, device lifecycle effects on SIMs, swaps, assignment.

use ioto_domain::Role;
use ioto_test_support::app::error_code;
use serde_json::json;

use ioto_test_support::Engines;

use super::Fixture;

const BIND: &str = "mutation($i: Iccid!, $d: ID!) { bindSim(iccid: $i, deviceId: $d) { sim { iccid device { id } } device { sims { iccid } } effects { entityKind action } } }";
const UNBIND: &str =
    "mutation($i: Iccid!) { unbindSim(iccid: $i) { sim { device { id } } effects { entityKind action } } }";
const DEVICE_STATE: &str = "mutation($id: ID!, $s: DeviceState!, $sims: RetireSims) {
  changeDeviceState(id: $id, state: $s, simsOnRetire: $sims) {
    device { state sims { iccid state } }
    effects { entityKind reference action oldValue newValue }
  }
}";

#[tokio::test]
async fn sims_bind_to_devices_and_devices_keep_their_own_lifecycle() {
    let fx = Fixture::new(Role::Operator).await;
    let f = &fx.app.factory;
    let sims = f.sims(&fx.tenant, None, 3).await;
    let [s1, s2, s3] = [0, 1, 2].map(|i| sims[i].iccid.to_string());
    let d1 = f.device(&fx.tenant, None, "Gateway 1").await.id.to_string();
    let d2 = f.device(&fx.tenant, None, "Gateway 2").await.id.to_string();

    // A device holds several SIMs; both sides record the binding.
    let out = fx.ok(BIND, json!({"i": s1, "d": d1}), "bindSim").await;
    assert_eq!(out["sim"]["device"]["id"], d1.as_str());
    assert_eq!(
        out["effects"],
        json!([{"entityKind": "SIM", "action": "BOUND"}, {"entityKind": "DEVICE", "action": "BOUND"}])
    );
    let out = fx.ok(BIND, json!({"i": s2, "d": d1}), "bindSim").await;
    assert_eq!(out["device"]["sims"].as_array().unwrap().len(), 2);
    // A SIM sits in at most one device.
    let body = fx.gql(BIND, json!({"i": s1, "d": d2})).await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unbind it first"),
        "{body}"
    );

    // The device moves on its own; SIM states do not follow.
    for s in ["IN_SERVICE", "MAINTENANCE", "IN_SERVICE"] {
        let out = fx
            .ok(DEVICE_STATE, json!({"id": d1, "s": s}), "changeDeviceState")
            .await;
        assert_eq!(out["device"]["state"], s);
        assert_eq!(out["effects"].as_array().unwrap().len(), 1, "{out}");
    }
    let body = fx.gql(DEVICE_STATE, json!({"id": d2, "s": "MAINTENANCE"})).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("from REGISTERED to MAINTENANCE"),
        "{body}"
    );
    // A SIM suspended while its device stays in service (independent states).
    let suspend = "mutation($i: Iccid!) { changeSimState(iccid: $i, state: SUSPENDED) { sim { state device { state } } } }";
    let out = fx.ok(suspend, json!({"i": s2}), "changeSimState").await;
    assert_eq!(
        out["sim"],
        json!({"state": "SUSPENDED", "device": {"state": "IN_SERVICE"}})
    );

    // Retiring with SUSPEND suspends the ACTIVE SIMs (only those), reporting each effect.
    let out = fx
        .ok(
            DEVICE_STATE,
            json!({"id": d1, "s": "RETIRED", "sims": "SUSPEND"}),
            "changeDeviceState",
        )
        .await;
    let effects = out["effects"].as_array().unwrap();
    assert_eq!(effects.len(), 2, "{out}");
    assert_eq!(effects[1]["reference"], s1.as_str());
    assert_eq!(effects[1]["newValue"]["state"], "SUSPENDED");
    assert!(out["device"]["sims"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["state"] == "SUSPENDED"));
    // A retired device takes no SIM; a retired device is final.
    let body = fx.gql(BIND, json!({"i": s3, "d": d1})).await;
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains("RETIRED"),
        "{body}"
    );
    // Retiring with LEAVE leaves SIM states alone.
    fx.ok(BIND, json!({"i": s3, "d": d2}), "bindSim").await;
    let out = fx
        .ok(
            DEVICE_STATE,
            json!({"id": d2, "s": "RETIRED", "sims": "LEAVE"}),
            "changeDeviceState",
        )
        .await;
    assert_eq!(out["device"]["sims"][0]["state"], "ACTIVE");
    assert_eq!(out["effects"].as_array().unwrap().len(), 1);

    let out = fx.ok(UNBIND, json!({"i": s3}), "unbindSim").await;
    assert_eq!(out["sim"]["device"], json!(null));
    let body = fx.gql(UNBIND, json!({"i": s3})).await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    fx.app.stop().await;
}

#[tokio::test]
async fn a_swap_moves_everything_to_the_new_sim_in_one_step() {
    a_swap_moves_everything_to_the_new_sim_in_one_step_on(Engines::Real).await;
}

/// The same on SQLite and the embedded engines.
#[tokio::test]
async fn a_swap_moves_everything_to_the_new_sim_in_one_step_embedded() {
    a_swap_moves_everything_to_the_new_sim_in_one_step_on(Engines::Embedded).await;
}

async fn a_swap_moves_everything_to_the_new_sim_in_one_step_on(engines: Engines) {
    let fx = Fixture::on(engines, Role::Operator).await;
    let f = &fx.app.factory;
    let acme = f.customer(&fx.tenant, "Acme").await;
    let old = f.sims(&fx.tenant, Some(acme.id), 1).await[0].iccid.to_string();
    let new = f.sims(&fx.tenant, None, 1).await[0].iccid.to_string();
    let device = f.device(&fx.tenant, Some(acme.id), "Truck").await.id.to_string();
    let setup = "mutation($i: Iccid!, $d: ID!) {
      updateSim(iccid: $i, input: { msisdn: \"+4915199990000\", tariffPlan: \"IoT Pro\" }) { sim { msisdn } }
      changeSimLabels(iccid: $i, change: { set: [{ key: \"site\", value: \"berlin\" }] }) { sim { version } }
      bindSim(iccid: $i, deviceId: $d) { sim { iccid } }
    }";
    let body = fx.gql(setup, json!({"i": old, "d": device})).await;
    assert!(body["errors"].is_null(), "{body}");
    let swap = "mutation($o: Iccid!, $n: Iccid!) { swapSim(oldIccid: $o, newIccid: $n, note: \"broken\") {
        oldSim { state msisdn device { id } }
        newSim { state msisdn tariffPlan customer { name } labels { key value } device { id } }
        effects { reference action }
    } }";

    // The replacement must be in INVENTORY: the factory's SIMs are ACTIVE, so this is refused.
    let body = fx.gql(swap, json!({"o": old, "n": new})).await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("only a SIM in INVENTORY"),
        "{body}"
    );
    let create =
        "mutation($i: Iccid!, $imsi: String!) { createSim(input: { iccid: $i, imsi: $imsi }) { state } }";
    let fresh = ioto_domain::identifiers::Iccid::with_check_digit(&format!(
        "89490{:014}",
        uuid::Uuid::new_v4().as_u128() % 100_000_000_000_000
    ))
    .unwrap()
    .to_string();
    let imsi = format!("26201{:010}", uuid::Uuid::new_v4().as_u128() % 10_000_000_000);
    assert_eq!(
        fx.ok(create, json!({"i": fresh, "imsi": imsi}), "createSim")
            .await["state"],
        "INVENTORY"
    );

    let out = fx.ok(swap, json!({"o": old, "n": fresh}), "swapSim").await;
    assert_eq!(
        out["oldSim"],
        json!({"state": "TERMINATED", "msisdn": null, "device": null})
    );
    let n = &out["newSim"];
    assert_eq!(n["state"], "ACTIVE");
    assert_eq!(n["msisdn"], "+4915199990000");
    assert_eq!(n["tariffPlan"], "IoT Pro");
    assert_eq!(n["customer"]["name"], "Acme");
    assert_eq!(n["labels"], json!([{"key": "site", "value": "berlin"}]));
    assert_eq!(n["device"]["id"], device.as_str());
    // One audit entry per SIM.
    assert_eq!(
        out["effects"],
        json!([{"reference": old, "action": "SWAPPED"}, {"reference": fresh, "action": "SWAPPED"}])
    );
    let events = "query($i: Iccid!) { sim(iccid: $i) { events(first: 1) { action note newValue } } }";
    let e = fx.ok(events, json!({"i": fresh}), "sim").await;
    assert_eq!(e["events"][0]["action"], "SWAPPED");
    assert_eq!(e["events"][0]["newValue"]["replaces"], old.as_str());
    fx.app.stop().await;
}

#[tokio::test]
async fn assignment_moves_sims_and_devices_between_sub_customers() {
    assignment_moves_sims_and_devices_between_sub_customers_on(Engines::Real).await;
}

/// The same on SQLite and the embedded engines.
#[tokio::test]
async fn assignment_moves_sims_and_devices_between_sub_customers_embedded() {
    assignment_moves_sims_and_devices_between_sub_customers_on(Engines::Embedded).await;
}

async fn assignment_moves_sims_and_devices_between_sub_customers_on(engines: Engines) {
    let fx = Fixture::on(engines, Role::Operator).await;
    let f = &fx.app.factory;
    let acme = f.customer(&fx.tenant, "Acme").await;
    let bravo = f.customer(&fx.tenant, "Bravo").await;
    let sims = f.sims(&fx.tenant, None, 4).await;
    let device = f.device(&fx.tenant, None, "Meter").await.id.to_string();
    let bind = "mutation($i: Iccid!, $d: ID!) { bindSim(iccid: $i, deviceId: $d) { sim { iccid } } }";
    fx.ok(
        bind,
        json!({"i": sims[0].iccid.to_string(), "d": device}),
        "bindSim",
    )
    .await;

    // One SIM: assigned, and back to the tenant with null; an unknown customer is NOT_FOUND.
    let assign = "mutation($i: Iccid!, $c: ID) { assignSim(iccid: $i, customerId: $c) { sim { customer { name } } effects { oldValue newValue } } }";
    let out = fx
        .ok(
            assign,
            json!({"i": sims[1].iccid.to_string(), "c": acme.id.to_string()}),
            "assignSim",
        )
        .await;
    assert_eq!(out["sim"]["customer"]["name"], "Acme");
    assert_eq!(out["effects"][0]["newValue"]["customerId"], acme.id.to_string());
    let out = fx
        .ok(
            assign,
            json!({"i": sims[1].iccid.to_string(), "c": null}),
            "assignSim",
        )
        .await;
    assert_eq!(out["sim"]["customer"], json!(null));
    let body = fx
        .gql(
            assign,
            json!({"i": sims[1].iccid.to_string(), "c": uuid::Uuid::new_v4().to_string()}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");

    // A device: its SIMs follow, each reported.
    let assign_device = "mutation($d: ID!, $c: ID) { assignDevice(id: $d, customerId: $c) { device { customer { name } sims { customer { name } } } effects { entityKind reference } } }";
    let out = fx
        .ok(
            assign_device,
            json!({"d": device, "c": bravo.id.to_string()}),
            "assignDevice",
        )
        .await;
    assert_eq!(out["device"]["sims"][0]["customer"]["name"], "Bravo");
    assert_eq!(out["effects"].as_array().unwrap().len(), 2);
    // Binding a loose SIM into a device of another customer is refused.
    let body = fx
        .gql(bind, json!({"i": sims[2].iccid.to_string(), "d": device}))
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("assign the SIM to that customer first"),
        "{body}"
    );

    // In bulk by filter: only the matching, changed SIMs; one audit entry each.
    let bulk = "mutation($c: ID) { assignSims(filter: { unassigned: true }, customerId: $c, note: \"rollout\") { changed } }";
    let out = fx.ok(bulk, json!({"c": acme.id.to_string()}), "assignSims").await;
    assert_eq!(out["changed"], 3);
    let out = fx.ok(bulk, json!({"c": acme.id.to_string()}), "assignSims").await;
    assert_eq!(out["changed"], 0, "nothing left unassigned");
    let count = "query($c: ID) { sims(filter: { customerId: $c }) { totalCount } }";
    assert_eq!(
        fx.ok(count, json!({"c": acme.id.to_string()}), "sims").await["totalCount"],
        3
    );
    let log = "{ auditLog(filter: { actions: [ASSIGNED] }, first: 100) { nodes { reference note } } }";
    let entries = fx.ok(log, json!({}), "auditLog").await;
    assert_eq!(
        entries["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["note"] == "rollout")
            .count(),
        3
    );
    fx.app.stop().await;
}
