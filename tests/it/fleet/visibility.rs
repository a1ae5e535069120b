//! Who sees and changes what: sub-customers, the tenant's SIM-sharing setting, viewers, secrets,
//! other tenants, and bad input.

use ioto_domain::Role;
use ioto_test_support::app::{assert_refused, error_code};
use ioto_test_support::TEST_PASSWORD;
use serde_json::json;

use ioto_test_support::Engines;

use super::Fixture;

#[tokio::test]
async fn customer_users_see_their_own_devices_and_sims_only_where_shared() {
    customer_users_see_their_own_devices_and_sims_only_where_shared_on(Engines::Real).await;
}

/// The same on SQLite and the embedded engines.
#[tokio::test]
async fn customer_users_see_their_own_devices_and_sims_only_where_shared_embedded() {
    customer_users_see_their_own_devices_and_sims_only_where_shared_on(Engines::Embedded).await;
}

async fn customer_users_see_their_own_devices_and_sims_only_where_shared_on(engines: Engines) {
    let fx = Fixture::on(engines, Role::TenantAdmin).await;
    let f = &fx.app.factory;
    let acme = f.customer(&fx.tenant, "Acme").await;
    let bravo = f.customer(&fx.tenant, "Bravo").await;
    let mine = f.device(&fx.tenant, Some(acme.id), "Acme tracker").await;
    let theirs = f.device(&fx.tenant, Some(bravo.id), "Bravo tracker").await;
    let sims = f.sims(&fx.tenant, Some(acme.id), 2).await;
    f.sims(&fx.tenant, Some(bravo.id), 2).await;
    let bind = "mutation($i: Iccid!, $d: ID!) { bindSim(iccid: $i, deviceId: $d) { sim { iccid } } }";
    fx.ok(
        bind,
        json!({"i": sims[0].iccid.to_string(), "d": mine.id.to_string()}),
        "bindSim",
    )
    .await;
    let cu = f.user(&fx.tenant, Role::CustomerUser, Some(acme.id)).await;
    let cu_token = fx.app.login(cu.email.as_str(), TEST_PASSWORD).await;
    let as_cu = |q: &'static str, v: serde_json::Value| {
        let app = &fx.app;
        let t = cu_token.clone();
        async move { app.gql(Some(&t), q, v).await }
    };

    let listing = "{ devices { totalCount nodes { name sims { iccid } } } sims { totalCount } }";
    let body = as_cu(listing, json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["devices"]["totalCount"], 1);
    assert_eq!(body["data"]["devices"]["nodes"][0]["name"], "Acme tracker");
    assert_eq!(
        body["data"]["devices"]["nodes"][0]["sims"][0]["iccid"],
        sims[0].iccid.to_string()
    );
    assert_eq!(body["data"]["sims"]["totalCount"], 2);
    let other = as_cu(
        "query($id: ID!) { device(id: $id) { name } }",
        json!({"id": theirs.id.to_string()}),
    )
    .await;
    assert_eq!(other["data"]["device"], json!(null), "{other}");
    // Read-only: a customer user changes nothing.
    let body = as_cu(
        bind,
        json!({"i": sims[1].iccid.to_string(), "d": mine.id.to_string()}),
    )
    .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");

    // The tenant stops sharing SIM data: devices stay visible, SIMs do not.
    let set = "mutation { setFleetSettings(customersSeeSims: false) { customersSeeSims } }";
    assert_eq!(
        fx.ok(set, json!({}), "setFleetSettings").await["customersSeeSims"],
        false
    );
    let body = as_cu("{ sims { totalCount } }", json!({})).await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("device data only"),
        "{body}"
    );
    let body = as_cu("{ devices { nodes { name sims { iccid } } } }", json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["devices"]["nodes"][0]["sims"], json!([]));
    let body = as_cu("subscription { simStateChanged { iccid } }", json!({})).await;
    assert!(body["errors"].is_array(), "{body}");
    // Nor their usage, nor which SIM went into which device.
    let usage = "{ customerUsage(from: \"2026-01-01T00:00:00Z\", to: \"2030-01-01T00:00:00Z\") { bytesIn } }";
    let body = as_cu(usage, json!({})).await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let history = "query($id: ID!) { device(id: $id) { events { action newValue } } }";
    let body = as_cu(history, json!({"id": mine.id.to_string()})).await;
    let events = body["data"]["device"]["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    assert!(events.iter().any(|e| e["action"] == "BOUND"), "{body}");
    assert!(
        !body.to_string().contains(sims[0].iccid.as_str()),
        "the ICCID is hidden: {body}"
    );
    // Only a tenant admin changes the setting.
    let op = f.user(&fx.tenant, Role::Operator, None).await;
    let op_token = fx.app.login(op.email.as_str(), TEST_PASSWORD).await;
    let body = fx.app.gql(Some(&op_token), set, json!({})).await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    fx.app.stop().await;
}

#[tokio::test]
async fn viewers_read_only_and_pins_are_shown_to_tenant_admins_only() {
    let fx = Fixture::new(Role::TenantAdmin).await;
    let f = &fx.app.factory;
    let iccid = ioto_domain::identifiers::Iccid::with_check_digit(&format!(
        "89490{:014}",
        uuid::Uuid::new_v4().as_u128() % 100_000_000_000_000
    ))
    .unwrap()
    .to_string();
    let imsi = format!("26201{:010}", uuid::Uuid::new_v4().as_u128() % 10_000_000_000);
    let create = "mutation($i: Iccid!, $m: String!) { createSim(input: { iccid: $i, imsi: $m, pin: \"1234\", puk: \"12345678\" }) { pin puk } }";
    let out = fx.ok(create, json!({"i": iccid, "m": imsi}), "createSim").await;
    assert_eq!(out, json!({"pin": "1234", "puk": "12345678"}));
    let read = "query($i: Iccid!) { sim(iccid: $i) { pin puk } }";
    for role in [Role::Operator, Role::Viewer] {
        let u = f.user(&fx.tenant, role, None).await;
        let t = fx.app.login(u.email.as_str(), TEST_PASSWORD).await;
        let body = fx.app.gql(Some(&t), read, json!({"i": iccid})).await;
        let pin = body["data"]["sim"]["pin"].as_str().unwrap();
        assert!(
            !pin.contains("1234") && pin.chars().all(|c| c == '•'),
            "{role}: {body}"
        );
        assert!(
            !body["data"]["sim"]["puk"].as_str().unwrap().contains("1234"),
            "{role}: {body}"
        );
        if role == Role::Viewer {
            let change =
                "mutation($i: Iccid!) { changeSimState(iccid: $i, state: ACTIVE) { sim { state } } }";
            let body = fx.app.gql(Some(&t), change, json!({"i": iccid})).await;
            assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        }
    }
    // At rest the PIN is not stored in clear.
    let parsed = ioto_domain::identifiers::Iccid::parse(&iccid).unwrap();
    let raw = fx
        .app
        .factory
        .fleet
        .sim(ioto_domain::Scope::Platform, &parsed)
        .await
        .unwrap()
        .unwrap();
    assert!(!raw.pin.unwrap().as_stored().contains("1234"));
    fx.app.stop().await;
}

#[tokio::test]
async fn other_tenants_ids_are_not_found_and_bad_identifiers_name_the_field() {
    let fx = Fixture::new(Role::TenantAdmin).await;
    let f = &fx.app.factory;
    let other = f.tenant("Other").await;
    let foreign_sim = f.sims(&other, None, 1).await[0].iccid.to_string();
    let foreign_device = f.device(&other, None, "Theirs").await.id.to_string();

    let body = fx
        .gql(
            "query($i: Iccid!) { sim(iccid: $i) { iccid } }",
            json!({"i": foreign_sim}),
        )
        .await;
    assert_eq!(body["data"]["sim"], json!(null), "{body}");
    let body = fx
        .gql(
            "query($d: ID!) { device(id: $d) { name } }",
            json!({"d": foreign_device}),
        )
        .await;
    assert_eq!(body["data"]["device"], json!(null), "{body}");
    for (q, v) in [
        (
            "mutation($i: Iccid!) { changeSimState(iccid: $i, state: SUSPENDED) { sim { state } } }",
            json!({"i": foreign_sim}),
        ),
        (
            "mutation($d: ID!) { changeDeviceState(id: $d, state: IN_SERVICE) { device { state } } }",
            json!({"d": foreign_device}),
        ),
        (
            "mutation($i: Iccid!) { assignSim(iccid: $i, customerId: null) { sim { iccid } } }",
            json!({"i": foreign_sim}),
        ),
    ] {
        let body = fx.gql(q, v).await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
        assert!(!body.to_string().contains(&other.id.to_string()), "{body}");
    }

    let create_sim = "mutation($i: Iccid!, $m: String!, $n: String) { createSim(input: { iccid: $i, imsi: $m, msisdn: $n }) { iccid } }";
    let good_iccid = ioto_domain::identifiers::Iccid::with_check_digit("8949000000000000001")
        .unwrap()
        .to_string();
    let mut bad_check = good_iccid.clone();
    let last = bad_check.pop().unwrap();
    bad_check.push(if last == '0' { '1' } else { '0' });
    for (vars, field, reason) in [
        (json!({"i": bad_check, "m": "262011234567890"}), "iccid", "Luhn"),
        (json!({"i": "123", "m": "262011234567890"}), "iccid", "19 or 20"),
        (json!({"i": good_iccid, "m": "26201x"}), "imsi", "6 to 15 digits"),
        (
            json!({"i": good_iccid, "m": "262011234567890", "n": "12"}),
            "msisdn",
            "E.164",
        ),
    ] {
        let body = fx.gql(create_sim, vars).await;
        assert_refused(&body, field, reason);
    }
    // An ICCID argument is refused before anything runs, naming the argument and the rule.
    for q in [
        "query($i: Iccid!) { sim(iccid: $i) { iccid } }",
        "subscription($i: Iccid) { liveSessions(iccid: $i) { iccid } }",
    ] {
        let body = fx.gql(q, json!({"i": bad_check})).await;
        assert_refused(&body, "iccid", "Luhn check digit");
    }
    let create_device = "mutation($imei: String!) { createDevice(input: { imei: $imei, name: \"x\", kind: SENSOR, connectivity: [WIFI] }) { id } }";
    let body = fx.gql(create_device, json!({"imei": "352099001761482"})).await;
    assert_refused(&body, "imei", "Luhn");
    let body = fx.gql(create_device, json!({"imei": "352099001761481"})).await;
    assert!(body["errors"].is_null(), "{body}");
    let body = fx.gql(create_device, json!({"imei": "35-209900-176148-1"})).await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("CONFLICT"),
        "same IMEI twice: {body}"
    );
    fx.app.stop().await;
}
