//! Lists: filters, sorting, pages, counts, label search and catalogue, the audit log, and the
//! number of SQL statements a nested page costs.

use ioto_domain::Role;
use ioto_test_support::app::error_code;
use serde_json::json;

use ioto_test_support::{Engines, TestApp};

use super::Fixture;

#[tokio::test]
async fn sims_filter_sort_and_page_with_counts() {
    sims_filter_sort_and_page_with_counts_on(Engines::Real).await;
}

/// The same on SQLite and the embedded engines.
#[tokio::test]
async fn sims_filter_sort_and_page_with_counts_embedded() {
    sims_filter_sort_and_page_with_counts_on(Engines::Embedded).await;
}

async fn sims_filter_sort_and_page_with_counts_on(engines: Engines) {
    let fx = Fixture::on(engines, Role::Operator).await;
    let f = &fx.app.factory;
    let acme = f.customer(&fx.tenant, "Acme").await;
    let sims = f.sims(&fx.tenant, Some(acme.id), 5).await;
    f.sims(&fx.tenant, None, 7).await;
    let label = "mutation($i: Iccid!, $v: String!) { changeSimLabels(iccid: $i, change: { set: [{ key: \"site\", value: $v }] }) { sim { iccid } } }";
    for (i, s) in sims.iter().enumerate() {
        fx.ok(
            label,
            json!({"i": s.iccid.to_string(), "v": if i < 2 { "Berlin-Nord" } else { "Hamburg" }}),
            "changeSimLabels",
        )
        .await;
    }
    fx.ok(
        "mutation($i: Iccid!) { changeSimState(iccid: $i, state: SUSPENDED) { sim { iccid } } }",
        json!({"i": sims[0].iccid.to_string()}),
        "changeSimState",
    )
    .await;

    let q = "query($f: SimFilter, $o: SimOrder, $first: Int, $after: String) {
      sims(filter: $f, orderBy: $o, first: $first, after: $after) {
        totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { iccid state } }
      }
    }";
    let count = |f: serde_json::Value| {
        let fx = &fx;
        async move {
            fx.ok(q, json!({"f": f, "first": 1}), "sims").await["totalCount"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(count(json!({})).await, 12);
    assert_eq!(count(json!({"customerId": acme.id.to_string()})).await, 5);
    assert_eq!(count(json!({"unassigned": true})).await, 7);
    assert_eq!(count(json!({"states": ["SUSPENDED"]})).await, 1);
    assert_eq!(
        count(json!({"labels": [{"key": "site", "value": "Hamburg"}]})).await,
        3
    );
    assert_eq!(count(json!({"labels": [{"key": "site"}]})).await, 5);
    assert_eq!(count(json!({"labelSearch": "berlin"})).await, 2);
    assert_eq!(count(json!({"iccidPrefix": sims[0].iccid.as_str()})).await, 1);
    assert_eq!(count(json!({"bound": true})).await, 0);

    // Pages of 5 in ICCID order cover every SIM once.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = fx.ok(q, json!({"first": 5, "after": after}), "sims").await;
        assert_eq!(page["pageInfo"]["hasPreviousPage"], after.is_some());
        assert_eq!(page["pageInfo"]["startCursor"], page["edges"][0]["cursor"]);
        seen.extend(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["iccid"].as_str().unwrap().to_owned()),
        );
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 12);
    // Descending by state: SUSPENDED first.
    let desc = fx
        .ok(
            q,
            json!({"o": {"field": "STATE", "direction": "DESC"}, "first": 1}),
            "sims",
        )
        .await;
    assert_eq!(desc["edges"][0]["node"]["state"], "SUSPENDED");

    for (vars, field) in [
        (json!({"first": 0}), "first"),
        (json!({"first": 1001}), "first"),
        (json!({"after": "garbage"}), "after"),
        (json!({"f": {"networks": ["26"]}}), "filter.networks.0"),
        (json!({"f": {"iccidPrefix": "89ab"}}), "filter.iccidPrefix"),
        (
            json!({"f": {"customerId": acme.id.to_string(), "unassigned": true}}),
            "filter.unassigned",
        ),
    ] {
        let body = fx.gql(q, vars).await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    fx.app.stop().await;
}

#[tokio::test]
async fn devices_labels_catalogue_and_the_audit_log() {
    devices_labels_catalogue_and_the_audit_log_on(Engines::Real).await;
}

/// The same on SQLite and the embedded engines.
#[tokio::test]
async fn devices_labels_catalogue_and_the_audit_log_embedded() {
    devices_labels_catalogue_and_the_audit_log_on(Engines::Embedded).await;
}

async fn devices_labels_catalogue_and_the_audit_log_on(engines: Engines) {
    let fx = Fixture::on(engines, Role::Operator).await;
    let create = "mutation($imei: String!, $name: String!, $kind: DeviceKind!) {
      createDevice(input: { imei: $imei, name: $name, kind: $kind, connectivity: [CELLULAR, WIFI, CELLULAR], labels: [{ key: \"site\", value: \"berlin\" }] }) { id connectivity state }
    }";
    let mut ids = Vec::new();
    for (i, (name, kind)) in [
        ("Cold box 1", "SENSOR"),
        ("Cold box 2", "SENSOR"),
        ("Truck 7", "TRACKER"),
    ]
    .iter()
    .enumerate()
    {
        let imei = ioto_domain::fleet::Imei::with_check_digit(&format!(
            "{:014}",
            uuid::Uuid::new_v4().as_u128() % 100_000_000_000_000 + i as u128
        ))
        .unwrap()
        .to_string();
        let d = fx
            .ok(
                create,
                json!({"imei": imei, "name": name, "kind": kind}),
                "createDevice",
            )
            .await;
        assert_eq!(d["connectivity"], json!(["CELLULAR", "WIFI"]));
        assert_eq!(d["state"], "REGISTERED");
        ids.push(d["id"].as_str().unwrap().to_owned());
    }
    let list = "query($f: DeviceFilter) { devices(filter: $f) { totalCount nodes { name } } }";
    let body = fx
        .ok(list, json!({"f": {"nameContains": "COLD"}}), "devices")
        .await;
    assert_eq!(body["totalCount"], 2);
    assert_eq!(body["nodes"][0]["name"], "Cold box 1", "sorted by name");
    assert_eq!(
        fx.ok(list, json!({"f": {"kinds": ["TRACKER"]}}), "devices").await["totalCount"],
        1
    );
    let relabel = "mutation($id: ID!) { changeDeviceLabels(id: $id, change: { set: [{ key: \"site\", value: \"hamburg\" }, { key: \"fw\", value: \"2.1\" }] }) { device { labels { key value } } } }";
    let out = fx.ok(relabel, json!({"id": ids[2]}), "changeDeviceLabels").await;
    assert_eq!(
        out["device"]["labels"],
        json!([{"key": "fw", "value": "2.1"}, {"key": "site", "value": "hamburg"}])
    );
    assert_eq!(
        fx.ok(
            list,
            json!({"f": {"labels": [{"key": "site", "value": "berlin"}]}}),
            "devices"
        )
        .await["totalCount"],
        2
    );
    assert_eq!(
        fx.ok(list, json!({"f": {"labelSearch": "2.1"}}), "devices").await["totalCount"],
        1
    );
    let bad = fx
        .gql(relabel.replace("fw", "-fw").as_str(), json!({"id": ids[2]}))
        .await;
    assert_eq!(error_code(&bad).as_deref(), Some("BAD_USER_INPUT"), "{bad}");

    // The catalogue offers keys and values for dropdowns.
    let put = "mutation { putLabelSuggestion(key: \"site\", values: [\"berlin\", \"hamburg\", \"berlin\"], description: \"Where\") { key values } }";
    assert_eq!(
        fx.ok(put, json!({}), "putLabelSuggestion").await["values"],
        json!(["berlin", "hamburg"])
    );
    let cat = fx
        .ok(
            "{ labelCatalogue { key values description } }",
            json!({}),
            "labelCatalogue",
        )
        .await;
    assert_eq!(
        cat,
        json!([{"key": "site", "values": ["berlin", "hamburg"], "description": "Where"}])
    );

    // The audit log: every change, newest first, filtered and paged.
    let log = "query($f: AuditFilter, $after: String) { auditLog(filter: $f, first: 2, after: $after) { nodes { action reference entityKind actor } pageInfo { hasNextPage endCursor } } }";
    let first = fx
        .ok(log, json!({"f": {"entityKind": "DEVICE"}}), "auditLog")
        .await;
    assert_eq!(first["nodes"][0]["action"], "LABELS_CHANGED");
    assert!(first["pageInfo"]["hasNextPage"].as_bool().unwrap());
    let second = fx
        .ok(
            log,
            json!({"f": {"entityKind": "DEVICE"}, "after": first["pageInfo"]["endCursor"]}),
            "auditLog",
        )
        .await;
    assert_eq!(second["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(second["nodes"][1]["action"], "CREATED");
    let only = fx
        .ok(log, json!({"f": {"actions": ["LABELS_CHANGED"]}}), "auditLog")
        .await;
    assert_eq!(only["nodes"].as_array().unwrap().len(), 1);
    // Viewers may read the log; customer users may not.
    let viewer = fx.app.factory.user(&fx.tenant, Role::Viewer, None).await;
    let vt = fx
        .app
        .login(viewer.email.as_str(), ioto_test_support::TEST_PASSWORD)
        .await;
    assert!(fx.app.gql(Some(&vt), log, json!({})).await["errors"].is_null());
    fx.app.stop().await;
}

#[tokio::test]
async fn a_page_with_nested_fields_costs_the_same_statements_for_10_or_100_sims() {
    let fx = Fixture::with_app(TestApp::spawn_quiet(Engines::Real).await, Role::Operator).await;
    let f = &fx.app.factory;
    let customers = [
        f.customer(&fx.tenant, "A").await,
        f.customer(&fx.tenant, "B").await,
    ];
    let mut sims = Vec::new();
    for c in &customers {
        sims.extend(f.sims(&fx.tenant, Some(c.id), 60).await);
    }
    let bind = "mutation($i: Iccid!, $d: ID!) { bindSim(iccid: $i, deviceId: $d) { sim { iccid } } }";
    for (i, s) in sims.iter().take(100).enumerate() {
        if i % 2 == 0 {
            let d = f.device(&fx.tenant, s.customer_id, &format!("d{i}")).await;
            fx.ok(
                bind,
                json!({"i": s.iccid.to_string(), "d": d.id.to_string()}),
                "bindSim",
            )
            .await;
        }
    }
    let q = "query($n: Int!) { sims(first: $n) { nodes { iccid labels { key } customer { name } device { name sims { iccid } customer { name } } } } }";
    let statements = || fx.app.app_engines.fleet.statements();
    // Warm up (the session check is cached after the first request).
    fx.ok(q, json!({"n": 1}), "sims").await;
    let before = statements();
    let page = fx.ok(q, json!({"n": 10}), "sims").await;
    let for_10 = statements() - before;
    assert_eq!(page["nodes"].as_array().unwrap().len(), 10);
    let before = statements();
    let page = fx.ok(q, json!({"n": 100}), "sims").await;
    let for_100 = statements() - before;
    let nodes = page["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 100);
    assert!(
        nodes.iter().filter(|n| !n["device"].is_null()).count() >= 40,
        "{page}"
    );
    assert!(nodes.iter().all(|n| !n["customer"].is_null()));
    assert_eq!(for_10, for_100, "statements grow with the page size");
    assert!(for_100 <= 20, "{for_100} statements for one page");
    fx.app.stop().await;
}

/// One SIM and one device answer their nested fields (sub-customer, device, the device's SIMs and
/// sub-customer) from what the root field loaded up front, one statement per kind: the same
/// statements whether the device holds one SIM or two.
#[tokio::test]
async fn one_sim_or_device_answers_its_nested_fields() {
    let fx = Fixture::with_app(TestApp::spawn_quiet(Engines::Real).await, Role::Operator).await;
    let f = &fx.app.factory;
    let acme = f.customer(&fx.tenant, "Acme").await;
    let sims = f.sims(&fx.tenant, Some(acme.id), 3).await;
    let one = f.device(&fx.tenant, Some(acme.id), "one").await;
    let two = f.device(&fx.tenant, Some(acme.id), "two").await;
    let bind = "mutation($i: Iccid!, $d: ID!) { bindSim(iccid: $i, deviceId: $d) { sim { iccid } } }";
    for (s, d) in [(&sims[0], &one), (&sims[1], &two), (&sims[2], &two)] {
        fx.ok(
            bind,
            json!({"i": s.iccid.to_string(), "d": d.id.to_string()}),
            "bindSim",
        )
        .await;
    }
    let sim_q = "query($i: Iccid!) { sim(iccid: $i) { iccid customer { name } device { name customer { name } sims { iccid } } } }";
    let device_q = "query($d: ID!) { device(id: $d) { name customer { name } sims { iccid } } }";
    let statements = || fx.app.app_engines.fleet.statements();
    let iccids = |v: &serde_json::Value| {
        let mut list: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["iccid"].as_str().unwrap().to_owned())
            .collect();
        list.sort();
        list
    };
    // Warm up (the session check is cached after the first request).
    fx.ok(sim_q, json!({"i": sims[0].iccid.to_string()}), "sim").await;

    let mut costs = Vec::new();
    for (s, d, held) in [(&sims[0], &one, &sims[..1]), (&sims[1], &two, &sims[1..])] {
        let before = statements();
        let sim = fx.ok(sim_q, json!({"i": s.iccid.to_string()}), "sim").await;
        costs.push(statements() - before);
        assert_eq!(sim["customer"]["name"], "Acme", "{sim}");
        assert_eq!(sim["device"]["name"], d.name, "{sim}");
        assert_eq!(sim["device"]["customer"]["name"], "Acme", "{sim}");
        let mut expected: Vec<String> = held.iter().map(|x| x.iccid.to_string()).collect();
        expected.sort();
        assert_eq!(iccids(&sim["device"]["sims"]), expected, "{sim}");

        let device = fx.ok(device_q, json!({"d": d.id.to_string()}), "device").await;
        assert_eq!(device["name"], d.name, "{device}");
        assert_eq!(device["customer"]["name"], "Acme", "{device}");
        assert_eq!(iccids(&device["sims"]), expected, "{device}");
    }
    assert_eq!(costs[0], costs[1], "statements grow with the device's SIMs");
    // BEGIN, the scope's settings, the SIM, its customer, its device, the device's SIMs and COMMIT.
    assert!(costs[0] <= 8, "{} statements for one SIM", costs[0]);
    fx.app.stop().await;
}
