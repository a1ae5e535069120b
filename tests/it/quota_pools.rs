//! Quota pools end to end: one limit shared by a sub-customer's SIMs (or by the SIMs carrying a
//! label), crossed by session updates published on the bus, warned of at its stage and acted on
//! at the limit — the pool's SIMs suspended by one bulk job, the SIMs outside it untouched — and
//! never twice for the same usage; refused naming the field, and kept within the tenant.

use std::time::Duration;

use chrono::Utc;
use ioto_domain::fleet::query::LabelFilter;
use ioto_domain::fleet::Sim;
use ioto_domain::quota::{QuotaAction, QuotaRule};
use ioto_domain::quota_pool::{PoolMembers, QuotaPool};
use ioto_domain::{Role, Scope};
use ioto_test_support::app::{assert_refused, error_code};
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::console::publish_session;
use crate::quotas::{counting_config, quota_app, stage_notes};

const POOL: &str = "id name customerId labels { key value } simCount setBy
    quota { limitBytes usedBytes remainingBytes overshootBytes percent state stages stageReached
    action actionState actionReason sims periodStart periodEnd lastResumeState }";

async fn create_pool(app: &TestApp, token: &str, input: Value) -> Value {
    app.gql(
        Some(token),
        &format!("mutation($in: QuotaPoolInput!) {{ createQuotaPool(input: $in) {{ {POOL} }} }}"),
        json!({"in": input}),
    )
    .await
}

/// A pool as the API answers it (`null` when the caller sees none).
async fn read_pool(app: &TestApp, token: &str, id: &str) -> Value {
    let body = app
        .gql(
            Some(token),
            &format!("query($id: ID!) {{ quotaPool(id: $id) {{ {POOL} }} }}"),
            json!({"id": id}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["quotaPool"].clone()
}

/// Waits (up to 40 s) until `check` holds of the pool's quota, which it returns.
async fn until_pool(
    app: &TestApp,
    token: &str,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..400 {
        let quota = read_pool(app, token, id).await["quota"].clone();
        if check(&quota) {
            return quota;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {}", read_pool(app, token, id).await);
}

/// A SIM's state and the names of the pools it counts toward.
async fn sim_pools(app: &TestApp, token: &str, sim: &Sim) -> (String, Vec<String>) {
    let body = app
        .gql(
            Some(token),
            "query($i: Iccid!) { sim(iccid: $i) { state quotaPools { name } } }",
            json!({"i": sim.iccid}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let s = &body["data"]["sim"];
    let names = s["quotaPools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    (s["state"].as_str().unwrap().to_owned(), names)
}

/// The bulk jobs of the caller's tenant: (created by, note).
async fn bulk_jobs(app: &TestApp, token: &str) -> Vec<(String, String)> {
    let body = app
        .gql(
            Some(token),
            "{ bulkJobs(first: 10) { nodes { createdBy note } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["bulkJobs"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["createdBy"].as_str().unwrap_or_default().to_owned(),
                j["note"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn a_pool_past_its_limit_suspends_its_sims_once_on(engines: Engines) {
    let app = quota_app(engines).await;
    let f = &app.factory;
    let t = f.tenant("Pools").await;
    let acme = f.customer(&t, "Acme").await;
    let members = f.sims(&t, Some(acme.id), 2).await;
    // One SIM carries the label of the second pool; the other is in no pool.
    let loose = f.sims(&t, None, 2).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let labelled = app
        .gql(
            Some(&token),
            "mutation($i: Iccid!) { changeSimLabels(iccid: $i, change: { set: [{ key: \"site\", value: \"north\" }] }) { sim { iccid } } }",
            json!({"i": loose[0].iccid}),
        )
        .await;
    assert!(labelled["errors"].is_null(), "{labelled}");

    // 1 MB shared by the sub-customer's SIMs, warned at half, suspended at the limit.
    let created = create_pool(
        &app,
        &token,
        json!({"name": "Fleet A", "customerId": acme.id.0.to_string(), "limitBytes": 1_000_000,
            "stages": [50], "action": "SUSPEND"}),
    )
    .await;
    assert!(created["errors"].is_null(), "{created}");
    let pool = &created["data"]["createQuotaPool"];
    let facts = (
        &pool["simCount"],
        &pool["customerId"],
        &pool["quota"]["usedBytes"],
        &pool["quota"]["state"],
        &pool["quota"]["actionState"],
    );
    assert_eq!(
        facts,
        (
            &json!(2),
            &json!(acme.id.0.to_string()),
            &json!(0),
            &json!("WITHIN"),
            &json!("NONE")
        )
    );
    let id = pool["id"].as_str().unwrap().to_owned();
    // 10 MB shared by the SIMs labelled site=north, notify only.
    let north = create_pool(
        &app,
        &token,
        json!({"name": "North", "labels": [{"key": "site", "value": "north"}], "limitBytes": 10_000_000}),
    )
    .await;
    assert!(north["errors"].is_null(), "{north}");
    let north_pool = &north["data"]["createQuotaPool"];
    assert_eq!(
        (&north_pool["simCount"], &north_pool["labels"]),
        (&json!(1), &json!([{"key": "site", "value": "north"}])),
        "{north}"
    );
    let north_id = north_pool["id"].as_str().unwrap().to_owned();

    // 330 kB on each member (300 kB down, 30 kB up): 66 % of the pool, past its warning stage.
    // 110 kB on the labelled SIM, 220 kB on the SIM in no pool.
    publish_session(&app, "pool-1", &members[0], 300_000).await;
    publish_session(&app, "pool-2", &members[1], 300_000).await;
    publish_session(&app, "pool-3", &loose[0], 100_000).await;
    publish_session(&app, "pool-4", &loose[1], 200_000).await;
    let warned = until_pool(&app, &token, &id, "the warning stage is never reached", |q| {
        q["stageReached"] == 50
    })
    .await;
    let facts = (
        &warned["usedBytes"],
        &warned["remainingBytes"],
        &warned["percent"],
        &warned["state"],
        &warned["sims"],
    );
    assert_eq!(
        facts,
        (
            &json!(660_000),
            &json!(340_000),
            &json!(66.0),
            &json!("WARNING"),
            &json!(2)
        )
    );
    let counted = until_pool(
        &app,
        &token,
        &north_id,
        "the label pool never counts its SIM",
        |q| q["usedBytes"] == 110_000,
    )
    .await;
    assert_eq!(
        (&counted["sims"], &counted["state"]),
        (&json!(1), &json!("WITHIN"))
    );
    assert_eq!(
        stage_notes(&app, &token, "pool").await,
        [(
            "Pool 'Fleet A' reached 50 % of its data limit".to_owned(),
            50,
            660_000
        )],
        "the warning is not told once"
    );
    for (sim, pools) in [
        (&members[0], vec!["Fleet A"]),
        (&loose[0], vec!["North"]),
        (&loose[1], vec![]),
    ] {
        let (state, names) = sim_pools(&app, &token, sim).await;
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!((state.as_str(), names), ("ACTIVE", pools), "{}", sim.iccid);
    }

    // 880 kB on the first member: 1.21 MB, past the limit. Both members are suspended by one
    // bulk job; the SIMs outside the pool keep their service.
    publish_session(&app, "pool-1", &members[0], 800_000).await;
    let done = until_pool(&app, &token, &id, "the pool's SIMs are never suspended", |q| {
        q["actionState"] == "DONE"
    })
    .await;
    let facts = (
        &done["state"],
        &done["stageReached"],
        &done["usedBytes"],
        &done["overshootBytes"],
        &done["percent"],
    );
    assert_eq!(
        facts,
        (
            &json!("EXCEEDED"),
            &json!(100),
            &json!(1_210_000),
            &json!(210_000),
            &json!(121.0)
        )
    );
    for sim in &members {
        assert_eq!(sim_pools(&app, &token, sim).await.0, "SUSPENDED", "{}", sim.iccid);
    }
    for sim in &loose {
        assert_eq!(sim_pools(&app, &token, sim).await.0, "ACTIVE", "{}", sim.iccid);
    }
    let notes = stage_notes(&app, &token, "pool").await;
    let stages: Vec<(u64, u64)> = notes.iter().map(|(_, s, u)| (*s, *u)).collect();
    assert_eq!(stages, [(50, 660_000), (100, 1_210_000)], "{notes:?}");
    assert_eq!(notes[1].0, "Pool 'Fleet A' reached its data limit");
    let jobs = bulk_jobs(&app, &token).await;
    assert_eq!(
        jobs,
        [(
            "data quota pool".to_owned(),
            "pool 'Fleet A' reached its data limit (2 SIMs)".to_owned()
        )],
        "the pool's SIMs are not suspended by one job"
    );

    // More traffic counted after the limit is shown, not acted on again: later sweeps find the
    // limit reached.
    publish_session(&app, "pool-2", &members[1], 400_000).await;
    until_pool(&app, &token, &id, "the overshoot is never shown", |q| {
        q["usedBytes"] == 1_320_000
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        stage_notes(&app, &token, "pool").await.len(),
        2,
        "the limit is told again"
    );
    assert_eq!(
        bulk_jobs(&app, &token).await.len(),
        1,
        "the SIMs are suspended twice"
    );
}

#[tokio::test]
async fn a_pool_past_its_limit_suspends_its_sims_once_on_embedded_engines() {
    a_pool_past_its_limit_suspends_its_sims_once_on(Engines::Embedded).await;
}

#[tokio::test]
async fn a_pool_past_its_limit_suspends_its_sims_once_on_real_engines() {
    a_pool_past_its_limit_suspends_its_sims_once_on(Engines::Real).await;
}

/// With sweeps an hour apart, a pool is still evaluated from its SIMs' traffic: the pass between
/// sweeps sees the warning and the limit within seconds and suspends the pool's SIMs.
#[tokio::test]
async fn a_pool_crossed_between_sweeps_is_acted_on_from_its_sims_traffic() {
    let mut config = counting_config(Engines::Embedded).await;
    config.fleet.quota_sweep_seconds = 3_600;
    let app = TestApp::spawn_with(config).await;
    let f = &app.factory;
    let t = f.tenant("Pools between sweeps").await;
    let acme = f.customer(&t, "Acme").await;
    let members = f.sims(&t, Some(acme.id), 2).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let created = create_pool(
        &app,
        &token,
        json!({"name": "Fleet B", "customerId": acme.id.0.to_string(), "limitBytes": 1_000_000,
            "stages": [50], "action": "SUSPEND"}),
    )
    .await;
    assert!(created["errors"].is_null(), "{created}");
    let id = created["data"]["createQuotaPool"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // 660 kB: past the warning stage, seen without a sweep.
    publish_session(&app, "between-1", &members[0], 300_000).await;
    publish_session(&app, "between-2", &members[1], 300_000).await;
    let warned = until_pool(&app, &token, &id, "the pool's traffic is not evaluated", |q| {
        q["stageReached"] == 50
    })
    .await;
    assert_eq!(
        (&warned["usedBytes"], &warned["state"]),
        (&json!(660_000), &json!("WARNING"))
    );
    // 1.21 MB: past the limit; both SIMs suspended by the pass, not by an hourly sweep.
    publish_session(&app, "between-1", &members[0], 800_000).await;
    let crossed = until_pool(&app, &token, &id, "the limit is not seen between sweeps", |q| {
        q["stageReached"] == 100
    })
    .await;
    assert_eq!(crossed["usedBytes"], json!(1_210_000));
    for _ in 0..200 {
        let mut states = Vec::new();
        for sim in &members {
            states.push(sim_pools(&app, &token, sim).await.0);
        }
        if states.iter().all(|s| s == "SUSPENDED") {
            assert_eq!(
                stage_notes(&app, &token, "pool").await.len(),
                2,
                "the warning and the limit, each told once"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the pool's SIMs are never suspended between sweeps");
}

#[tokio::test]
async fn pools_are_refused_naming_the_field_and_kept_within_the_tenant() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let f = &app.factory;
    let (t, other) = (f.tenant("Pools A").await, f.tenant("Pools B").await);
    let ours = f.customer(&t, "Ours").await;
    let theirs = f.customer(&other, "Theirs").await;
    f.sims(&t, Some(ours.id), 1).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let ours_id = ours.id.0.to_string();
    let eleven: Vec<Value> = (0..11).map(|i| json!({"key": format!("k{i}")})).collect();
    let cases = [
        (
            json!({"name": "", "customerId": ours_id, "limitBytes": 1000}),
            "input.name",
            "1 to 100 characters",
        ),
        (
            json!({"name": "x".repeat(101), "customerId": ours_id, "limitBytes": 1000}),
            "input.name",
            "1 to 100 characters",
        ),
        (
            json!({"name": "Both", "customerId": ours_id, "labels": [{"key": "site"}], "limitBytes": 1000}),
            "input.customerId",
            "not both",
        ),
        (
            json!({"name": "Neither", "limitBytes": 1000}),
            "input.customerId",
            "or labels",
        ),
        (
            json!({"name": "Theirs", "customerId": theirs.id.0.to_string(), "limitBytes": 1000}),
            "input.customerId",
            "no sub-customer",
        ),
        (
            json!({"name": "Many", "labels": eleven, "limitBytes": 1000}),
            "input.labels",
            "at most 10",
        ),
        (
            json!({"name": "None", "labels": [], "limitBytes": 1000}),
            "input.labels",
            "at least one label",
        ),
        (
            json!({"name": "Odd", "labels": [{"key": "no spaces allowed"}], "limitBytes": 1000}),
            "input.labels",
            "",
        ),
        (
            json!({"name": "Zero", "customerId": ours_id, "limitBytes": 0}),
            "input.limitBytes",
            "between 1 and",
        ),
        (
            json!({"name": "Down", "customerId": ours_id, "limitBytes": 1000, "stages": [90, 80]}),
            "input.stages",
            "ascending",
        ),
        (
            json!({"name": "Back", "customerId": ours_id, "limitBytes": 1000, "resumeNextPeriod": true}),
            "input.resumeNextPeriod",
            "only a quota that suspends",
        ),
    ];
    for (input, field, why) in cases {
        let body = create_pool(&app, &token, input).await;
        assert_refused(&body, field, why);
    }

    let mine = create_pool(
        &app,
        &token,
        json!({"name": "Ours", "customerId": ours_id, "limitBytes": 5000}),
    )
    .await;
    assert!(mine["errors"].is_null(), "{mine}");
    let id = mine["data"]["createQuotaPool"]["id"].as_str().unwrap().to_owned();
    let twin = create_pool(
        &app,
        &token,
        json!({"name": " Ours ", "labels": [{"key": "site"}], "limitBytes": 5000}),
    )
    .await;
    assert_refused(&twin, "input.name", "another quota pool is named 'Ours'");

    // A viewer reads pools and keeps none; a sub-customer's user sees its own pool only.
    let viewer = f.user(&t, Role::Viewer, None).await;
    let viewer = app.login(viewer.email.as_str(), TEST_PASSWORD).await;
    let body = create_pool(
        &app,
        &viewer,
        json!({"name": "Viewed", "customerId": ours_id, "limitBytes": 5000}),
    )
    .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    assert_eq!(read_pool(&app, &viewer, &id).await["name"], "Ours");

    // Past the hundredth pool, the next is refused naming the limit.
    let store = &app.app_engines.quota_pools;
    let now = Utc::now();
    for i in 0..99 {
        let pool = QuotaPool {
            id: Uuid::new_v4(),
            tenant_id: t.id,
            name: format!("Site {i:02}"),
            members: PoolMembers::Labels(vec![LabelFilter {
                key: "site".into(),
                value: Some(format!("s{i}")),
            }]),
            rule: QuotaRule {
                limit_bytes: 1_000,
                stages: Vec::new(),
                action: QuotaAction::Notify,
                resume_next_period: false,
            },
            set_by: "test".into(),
            created_at: now,
            updated_at: now,
        };
        store.insert_pool(Scope::tenant(t.id), &pool, 100).await.unwrap();
    }
    let full = create_pool(
        &app,
        &token,
        json!({"name": "One too many", "labels": [{"key": "site"}], "limitBytes": 5000}),
    )
    .await;
    assert_eq!(error_code(&full).as_deref(), Some("CONFLICT"), "{full}");
    let message = full["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("at most 100 quota pools"), "{full}");

    let customer = f.user(&t, Role::CustomerUser, Some(ours.id)).await;
    let customer = app.login(customer.email.as_str(), TEST_PASSWORD).await;
    let seen = app
        .gql(Some(&customer), "{ quotaPools { name } }", json!({}))
        .await;
    assert_eq!(
        seen["data"]["quotaPools"],
        json!([{"name": "Ours"}]),
        "a sub-customer's user sees other pools: {seen}"
    );
    let body = create_pool(
        &app,
        &customer,
        json!({"name": "Mine", "customerId": ours_id, "limitBytes": 5000}),
    )
    .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");

    // Another tenant's admin neither sees, changes nor deletes the pool.
    let outsider = f.user(&other, Role::TenantAdmin, None).await;
    let outsider = app.login(outsider.email.as_str(), TEST_PASSWORD).await;
    let listed = app.gql(Some(&outsider), "{ quotaPools { id } }", json!({})).await;
    assert_eq!(listed["data"]["quotaPools"], json!([]), "{listed}");
    assert!(
        read_pool(&app, &outsider, &id).await.is_null(),
        "another tenant reads the pool"
    );
    let changed = app
        .gql(
            Some(&outsider),
            "mutation($id: ID!) { updateQuotaPool(id: $id, input: { name: \"Mine now\", labels: [{ key: \"site\" }], limitBytes: 1 }) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(error_code(&changed).as_deref(), Some("NOT_FOUND"), "{changed}");
    let gone = app
        .gql(
            Some(&outsider),
            "mutation($id: ID!) { deleteQuotaPool(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(gone["data"]["deleteQuotaPool"], false, "{gone}");
    assert_eq!(
        read_pool(&app, &token, &id).await["name"],
        "Ours",
        "the pool is gone"
    );

    // Its own admin renames and deletes it.
    let renamed = app
        .gql(
            Some(&token),
            "mutation($id: ID!, $c: ID) { updateQuotaPool(id: $id, input: { name: \"Ours, renamed\", customerId: $c, limitBytes: 8000, stages: [] }) { name quota { limitBytes stages } } }",
            json!({"id": id, "c": ours_id}),
        )
        .await;
    assert!(renamed["errors"].is_null(), "{renamed}");
    assert_eq!(
        renamed["data"]["updateQuotaPool"],
        json!({"name": "Ours, renamed", "quota": {"limitBytes": 8000, "stages": []}})
    );
    let deleted = app
        .gql(
            Some(&token),
            "mutation($id: ID!) { deleteQuotaPool(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(deleted["data"]["deleteQuotaPool"], true, "{deleted}");
    assert!(
        read_pool(&app, &token, &id).await.is_null(),
        "a deleted pool is read"
    );
}
