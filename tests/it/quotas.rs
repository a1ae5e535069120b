//! Data quotas end to end: set through the API, crossed by session updates published on the bus
//! as a network would, warned of at their stages, acted on at the limit through the network (a
//! bulk job, audited), and never twice for the same usage.

use std::time::Duration;

use ioto_domain::fleet::Sim;
use ioto_domain::Role;
use ioto_test_support::app::assert_refused;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

use crate::console::publish_session;

/// An app counting sessions from its bus, evaluating quotas a fifth of a second after a SIM's
/// traffic is counted and sweeping every second.
pub(crate) async fn quota_app(engines: Engines) -> TestApp {
    TestApp::spawn_with(counting_config(engines).await).await
}

/// The configuration of an app counting sessions from its bus (not telemetry), evaluating
/// quotas and the stream's rules a fifth of a second after a count, and sweeping quotas every
/// second.
pub(crate) async fn counting_config(engines: Engines) -> ioto::config::Config {
    let mut config = TestApp::config(engines).await;
    config.ingest.enabled = true;
    config.ingest.batch_wait_ms = 20;
    config.ingest.telemetry = false;
    config.fleet.quota_evaluate_ms = 200;
    config.fleet.quota_sweep_seconds = 1;
    config
}

const QUOTA: &str = "quota { limitBytes usedBytes remainingBytes overshootBytes percent state stages
    stageReached action actionState actionReason periodStart periodEnd setBy source resumeNextPeriod
    lastResumeState lastResumeReason }";

async fn sim_quota(app: &TestApp, token: &str, sim: &Sim) -> Value {
    let body = app
        .gql(
            Some(token),
            &format!("query($i: Iccid!) {{ sim(iccid: $i) {{ state {QUOTA} }} }}"),
            json!({"i": sim.iccid}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["sim"].clone()
}

/// The stage notifications of SIM quotas (`of` "quota") or of pools (`of` "pool") the caller
/// sees, oldest first: (title, stage, used bytes).
pub(crate) async fn stage_notes(app: &TestApp, token: &str, of: &str) -> Vec<(String, u64, u64)> {
    let body = app
        .gql(
            Some(token),
            "{ notifications(first: 50) { nodes { kind title data } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let mut notes: Vec<(String, u64, u64)> = body["data"]["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "QUOTA_STAGE" && !n["data"][of].is_null())
        .map(|n| {
            let q = &n["data"][of];
            (
                n["title"].as_str().unwrap().to_owned(),
                q["stage"].as_u64().unwrap(),
                q["usedBytes"].as_u64().unwrap(),
            )
        })
        .collect();
    notes.reverse();
    notes
}

/// Waits (up to 20 s) until `check` holds of the SIM's answer, which it returns.
async fn until_sim(
    app: &TestApp,
    token: &str,
    sim: &Sim,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..200 {
        let now = sim_quota(app, token, sim).await;
        if check(&now) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {}", sim_quota(app, token, sim).await);
}

async fn a_sim_past_its_limit_is_warned_then_suspended_once_on(engines: Engines) {
    let app = quota_app(engines).await;
    let f = &app.factory;
    let t = f.tenant("Quotas").await;
    let sims = f.sims(&t, None, 2).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    // 1 MB a period, warned at half, suspended at the limit.
    let set = app
        .gql(
            Some(&token),
            "mutation($i: Iccid!) { setSimQuota(iccid: $i, input: { limitBytes: 1000000, stages: [50],
                action: SUSPEND }) { limitBytes usedBytes state stages action actionState setBy } }",
            json!({"i": sims[0].iccid}),
        )
        .await;
    assert!(set["errors"].is_null(), "{set}");
    let q = &set["data"]["setSimQuota"];
    let facts = (
        &q["limitBytes"],
        &q["usedBytes"],
        &q["state"],
        &q["stages"],
        &q["actionState"],
    );
    assert_eq!(
        facts,
        (
            &json!(1_000_000),
            &json!(0),
            &json!("WITHIN"),
            &json!([50]),
            &json!("NONE")
        )
    );
    let none = sim_quota(&app, &token, &sims[1]).await;
    assert!(none["quota"].is_null(), "a SIM without a quota shows one: {none}");

    // 550 kB (500 kB down, 50 kB up): past the warning stage.
    publish_session(&app, "q-1", &sims[0], 500_000).await;
    let warned = until_sim(
        &app,
        &token,
        &sims[0],
        "the warning stage is never reached",
        |s| s["quota"]["stageReached"] == 50,
    )
    .await;
    let q = &warned["quota"];
    let facts = (&q["usedBytes"], &q["remainingBytes"], &q["percent"], &q["state"]);
    assert_eq!(
        facts,
        (&json!(550_000), &json!(450_000), &json!(55.0), &json!("WARNING"))
    );
    assert_eq!(warned["state"], "ACTIVE", "a warning suspends the SIM");

    // The same update again (a redelivery) and one more byte-less update change nothing.
    publish_session(&app, "q-1", &sims[0], 500_000).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let notes = stage_notes(&app, &token, "quota").await;
    let stages: Vec<(u64, u64)> = notes.iter().map(|(_, s, u)| (*s, *u)).collect();
    assert_eq!(stages, [(50, 550_000)], "the warning is not told once: {notes:?}");

    // 1.1 MB: past the limit; the SIM is suspended through the network as a bulk job.
    publish_session(&app, "q-1", &sims[0], 1_000_000).await;
    let done = until_sim(&app, &token, &sims[0], "the SIM is never suspended", |s| {
        s["quota"]["actionState"] == "DONE"
    })
    .await;
    let q = &done["quota"];
    let facts = (
        &done["state"],
        &q["state"],
        &q["stageReached"],
        &q["overshootBytes"],
    );
    assert_eq!(
        facts,
        (
            &json!("SUSPENDED"),
            &json!("EXCEEDED"),
            &json!(100),
            &json!(100_000)
        )
    );
    let notes = stage_notes(&app, &token, "quota").await;
    let stages: Vec<(u64, u64)> = notes.iter().map(|(_, s, u)| (*s, *u)).collect();
    assert_eq!(
        stages,
        [(50, 550_000), (100, 1_100_000)],
        "the limit is not told once: {notes:?}"
    );
    let iccid = sims[0].iccid.as_str();
    assert_eq!(
        notes[1].0,
        format!("SIM {iccid} reached its data limit"),
        "the title does not say it"
    );

    // The suspension is on the SIM's trail, by the bulk job that sent it.
    let trail = app
        .gql(
            Some(&token),
            "query($i: Iccid!) { sim(iccid: $i) { events(first: 10) { action actor newValue } } }",
            json!({"i": sims[0].iccid}),
        )
        .await;
    let entries = trail["data"]["sim"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let by_job = entries.iter().any(|e| {
        e["action"] == "STATE_CHANGED" && e["actor"].as_str().is_some_and(|a| a.starts_with("bulk job"))
    });
    assert!(by_job, "the suspension is not on the trail: {trail}");

    // More traffic counted after the limit (sessions in flight) is reported, not acted on again
    // (the evaluations and sweeps after it find the limit reached).
    publish_session(&app, "q-1", &sims[0], 1_200_000).await;
    until_sim(&app, &token, &sims[0], "the overshoot is never shown", |s| {
        s["quota"]["overshootBytes"] == 320_000
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        stage_notes(&app, &token, "quota").await.len(),
        2,
        "the limit is told again"
    );
    let jobs = app
        .gql(
            Some(&token),
            "{ bulkJobs(first: 10) { nodes { id action } } }",
            json!({}),
        )
        .await;
    let n = jobs["data"]["bulkJobs"]["nodes"].as_array().map_or(0, Vec::len);
    assert_eq!(n, 1, "the SIM is suspended more than once: {jobs}");

    // Removed, the quota is gone from the SIM.
    let removed = app
        .gql(
            Some(&token),
            "mutation($i: Iccid!) { removeSimQuota(iccid: $i) }",
            json!({"i": sims[0].iccid}),
        )
        .await;
    assert_eq!(removed["data"]["removeSimQuota"], true, "{removed}");
    assert!(
        sim_quota(&app, &token, &sims[0]).await["quota"].is_null(),
        "the quota stays"
    );
}

#[tokio::test]
async fn a_sim_past_its_limit_is_warned_then_suspended_once_on_embedded_engines() {
    a_sim_past_its_limit_is_warned_then_suspended_once_on(Engines::Embedded).await;
}

#[tokio::test]
async fn a_sim_past_its_limit_is_warned_then_suspended_once_on_real_engines() {
    a_sim_past_its_limit_is_warned_then_suspended_once_on(Engines::Real).await;
}

#[tokio::test]
async fn quotas_are_refused_naming_the_field_and_kept_within_the_tenant() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let f = &app.factory;
    let (a, b) = (f.tenant("Quota A").await, f.tenant("Quota B").await);
    let sim = f.sims(&a, None, 1).await.remove(0);
    let admin = f.user(&a, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let set = |input: Value| {
        let app = &app;
        let token = token.clone();
        let iccid = sim.iccid.clone();
        async move {
            app.gql(
                Some(&token),
                "mutation($i: Iccid!, $q: SimQuotaInput!) { setSimQuota(iccid: $i, input: $q) { limitBytes } }",
                json!({"i": iccid, "q": input}),
            )
            .await
        }
    };
    let cases = [
        (json!({"limitBytes": 0}), "limitBytes", "between 1 and"),
        (json!({"limitBytes": -5}), "limitBytes", "positive"),
        (
            json!({"limitBytes": 1125899906842625_i64}),
            "limitBytes",
            "between 1 and",
        ),
        (
            json!({"limitBytes": 1000, "stages": [90, 80]}),
            "stages",
            "ascending",
        ),
        (
            json!({"limitBytes": 1000, "stages": [100]}),
            "stages",
            "between 1 and 99",
        ),
        (
            json!({"limitBytes": 1000, "stages": [10, 20, 30, 40, 50, 60]}),
            "stages",
            "at most 5",
        ),
    ];
    for (input, field, why) in cases {
        let body = set(input.clone()).await;
        assert_refused(&body, field, why);
    }
    // Another tenant's admin neither sets nor sees it; an operator may not set one.
    let ok = set(json!({"limitBytes": 5000})).await;
    assert!(ok["errors"].is_null(), "{ok}");
    let other = f.user(&b, Role::TenantAdmin, None).await;
    let other = app.login(other.email.as_str(), TEST_PASSWORD).await;
    let body = app
        .gql(
            Some(&other),
            "mutation($i: Iccid!) { setSimQuota(iccid: $i, input: { limitBytes: 1 }) { limitBytes } }",
            json!({"i": sim.iccid}),
        )
        .await;
    assert_eq!(
        ioto_test_support::app::error_code(&body).as_deref(),
        Some("NOT_FOUND"),
        "{body}"
    );
    let viewer = f.user(&a, Role::Viewer, None).await;
    let viewer = app.login(viewer.email.as_str(), TEST_PASSWORD).await;
    let body = app
        .gql(
            Some(&viewer),
            "mutation($i: Iccid!) { removeSimQuota(iccid: $i) }",
            json!({"i": sim.iccid}),
        )
        .await;
    assert_eq!(
        ioto_test_support::app::error_code(&body).as_deref(),
        Some("FORBIDDEN"),
        "{body}"
    );
    let operator = f.user(&a, Role::Operator, None).await;
    let operator = app.login(operator.email.as_str(), TEST_PASSWORD).await;
    let body = app
        .gql(
            Some(&operator),
            "mutation($i: Iccid!) { setSimQuota(iccid: $i, input: { limitBytes: 5000, stages: [] }) { stages } }",
            json!({"i": sim.iccid}),
        )
        .await;
    assert_eq!(
        body["data"]["setSimQuota"]["stages"],
        json!([]),
        "an operator may not set a quota: {body}"
    );
    let seen = app
        .gql(
            Some(&viewer),
            "query($i: Iccid!) { sim(iccid: $i) { quota { limitBytes } } }",
            json!({"i": sim.iccid}),
        )
        .await;
    assert_eq!(
        seen["data"]["sim"]["quota"]["limitBytes"], 5000,
        "a viewer does not see the quota: {seen}"
    );
}

#[tokio::test]
async fn a_tenants_time_zone_is_an_iana_name_and_sets_its_quota_periods() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let f = &app.factory;
    let t = f.tenant("Quota zone").await;
    let sim = f.sims(&t, None, 1).await.remove(0);
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let zone = |name: String| {
        let (app, token) = (&app, token.clone());
        async move {
            app.gql(
                Some(&token),
                "mutation($z: String!) { setFleetSettings(timeZone: $z) { timeZone } }",
                json!({"z": name}),
            )
            .await
        }
    };
    let long = "A".repeat(300);
    for hostile in [
        "Mars/Olympus_Mons",
        "",
        "Europe/Berlin; DROP TABLE tenants",
        long.as_str(),
    ] {
        let body = zone(hostile.to_owned()).await;
        assert_refused(&body, "timeZone", "not an IANA time zone name");
    }
    let body = zone("Asia/Kolkata".into()).await;
    assert_eq!(
        body["data"]["setFleetSettings"]["timeZone"], "Asia/Kolkata",
        "{body}"
    );
    let set = app
        .gql(
            Some(&token),
            "mutation($i: Iccid!) { setSimQuota(iccid: $i, input: { limitBytes: 1000 }) { periodStart periodEnd } }",
            json!({"i": sim.iccid}),
        )
        .await;
    // Local midnight on the 1st in Kolkata (+05:30) is 18:30 UTC the day before: the period
    // starts at the hour before it, usage being kept by hour.
    let start = set["data"]["setSimQuota"]["periodStart"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        start.ends_with("T18:00:00+00:00"),
        "the period ignores the time zone: {set}"
    );
}

/// Each SIM's quota as (limit, source), in the SIMs' order (`null` for none).
async fn quota_sources(app: &TestApp, token: &str, sims: &[&Sim]) -> Vec<Value> {
    let mut out = Vec::new();
    for s in sims {
        let q = &sim_quota(app, token, s).await["quota"];
        out.push(if q.is_null() {
            Value::Null
        } else {
            json!([q["limitBytes"], q["source"]])
        });
    }
    out
}

/// The ICCIDs of the SIMs a filter lists, in ICCID order.
async fn listed(app: &TestApp, token: &str, filter: Value) -> Vec<String> {
    let body = app
        .gql(
            Some(token),
            "query($f: SimFilter) { sims(first: 50, filter: $f) { nodes { iccid } } }",
            json!({"f": filter}),
        )
        .await;
    iccids_of(&body)
}

async fn defaults_follow_the_plan_and_quotas_are_set_by_filter_on(engines: Engines) {
    let app = quota_app(engines).await;
    let f = &app.factory;
    let t = f.tenant("Quota defaults").await;
    let iot = f.sims_on_plan(&t, "IoT 1 GB", 2).await;
    let fleet = f.sims_on_plan(&t, "Fleet", 1).await.remove(0);
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let set_default = |plan: Option<&str>, input: Value| {
        let (app, token, plan) = (&app, token.clone(), plan.map(str::to_owned));
        async move {
            app.gql(
                Some(&token),
                "mutation($p: String, $q: SimQuotaInput!) { setQuotaDefault(tariffPlan: $p, input: $q) {
                    quotaDefault { tariffPlan limitBytes stages action setBy } simsAdded simsChanged simsRemoved } }",
                json!({"p": plan, "q": input}),
            )
            .await
        }
    };

    // The plan's default and the tenant's: every SIM follows one at once.
    let body = set_default(Some("IoT 1 GB"), json!({"limitBytes": 1_000_000, "stages": [50]})).await;
    assert!(body["errors"].is_null(), "{body}");
    let p = &body["data"]["setQuotaDefault"];
    assert_eq!(
        (
            &p["quotaDefault"]["tariffPlan"],
            &p["quotaDefault"]["limitBytes"],
            &p["simsAdded"]
        ),
        (&json!("IoT 1 GB"), &json!(1_000_000), &json!(2)),
        "{body}"
    );
    let body = set_default(None, json!({"limitBytes": 5_000_000})).await;
    assert_eq!(body["data"]["setQuotaDefault"]["simsAdded"], 1, "{body}");
    let all = [&iot[0], &iot[1], &fleet];
    assert_eq!(
        quota_sources(&app, &token, &all).await,
        [
            json!([1_000_000, "TARIFF_PLAN"]),
            json!([1_000_000, "TARIFF_PLAN"]),
            json!([5_000_000, "TENANT"])
        ]
    );
    let body = app
        .gql(
            Some(&token),
            "{ quotaDefaults { tariffPlan limitBytes } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["quotaDefaults"],
        json!([{"tariffPlan": null, "limitBytes": 5_000_000}, {"tariffPlan": "IoT 1 GB", "limitBytes": 1_000_000}]),
        "{body}"
    );
    // A default's quota is changed through the default, not removed from one SIM.
    let body = app
        .gql(
            Some(&token),
            "mutation($i: Iccid!) { removeSimQuota(iccid: $i) }",
            json!({"i": iot[0].iccid}),
        )
        .await;
    assert_refused(&body, "iccid", "follows the default of its tariff plan");

    // A SIM moved to the plan takes its default within a sweep.
    let body = app
        .gql(
            Some(&token),
            "mutation($i: Iccid!) { updateSim(iccid: $i, input: { tariffPlan: \"IoT 1 GB\" }) { sim { tariffPlan } } }",
            json!({"i": fleet.iccid}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    until_sim(
        &app,
        &token,
        &fleet,
        "the moved SIM keeps the tenant's default",
        |s| s["quota"]["source"] == "TARIFF_PLAN",
    )
    .await;

    // 600 kB of the plan's 1 MB: the SIM is listed as close to its limit.
    publish_session(&app, "d-1", &iot[0], 550_000).await;
    until_sim(&app, &token, &iot[0], "the stage is never reached", |s| {
        s["quota"]["stageReached"] == 50
    })
    .await;
    assert_eq!(
        listed(&app, &token, json!({"quotaPercentAtLeast": 50})).await,
        [iot[0].iccid.as_str()],
        "the SIMs past half their quota"
    );
    assert_eq!(
        listed(&app, &token, json!({"quotaPercentBelow": 50})).await.len(),
        2,
        "the SIMs below half their quota"
    );

    // Set by filter, with the count the caller was shown; a count that no longer holds is
    // refused and changes nothing.
    let by_filter = |expected: u64| {
        let (app, token) = (&app, token.clone());
        async move {
            app.gql(
                Some(&token),
                "mutation($n: BigInt) { setSimQuotas(filter: { states: [ACTIVE] }, expectedCount: $n,
                    input: { limitBytes: 10000000, action: SUSPEND, resumeNextPeriod: true }) { matched changed } }",
                json!({"n": expected}),
            )
            .await
        }
    };
    assert_refused(&by_filter(2).await, "expectedCount", "matches 3 SIMs now, not 2");
    assert_eq!(
        quota_sources(&app, &token, &all).await[2],
        json!([1_000_000, "TARIFF_PLAN"]),
        "a refused call changed a quota"
    );
    let body = by_filter(3).await;
    assert_eq!(
        body["data"]["setSimQuotas"],
        json!({"matched": 3, "changed": 3}),
        "{body}"
    );
    assert_eq!(
        quota_sources(&app, &token, &all).await,
        vec![json!([10_000_000, "SIM"]); 3],
        "set by filter, the SIMs' own quotas"
    );
    assert!(
        listed(&app, &token, json!({"quotaPercentAtLeast": 50}))
            .await
            .is_empty(),
        "the raised limit leaves the SIM close to it"
    );
    let body = app
        .gql(
            Some(&token),
            "mutation { removeSimQuotas(filter: { states: [ACTIVE] }) { matched changed } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["removeSimQuotas"],
        json!({"matched": 3, "changed": 3}),
        "{body}"
    );
    assert_eq!(
        quota_sources(&app, &token, &all).await,
        vec![json!([1_000_000, "TARIFF_PLAN"]); 3],
        "removed, the SIMs follow their plan's default again"
    );

    // The plan's default removed: its SIMs take the tenant's.
    let body = app
        .gql(
            Some(&token),
            "mutation { removeQuotaDefault(tariffPlan: \"IoT 1 GB\") }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["removeQuotaDefault"], true, "{body}");
    assert_eq!(
        quota_sources(&app, &token, &all).await,
        vec![json!([5_000_000, "TENANT"]); 3]
    );
}

#[tokio::test]
async fn defaults_follow_the_plan_and_quotas_are_set_by_filter_on_embedded_engines() {
    defaults_follow_the_plan_and_quotas_are_set_by_filter_on(Engines::Embedded).await;
}

#[tokio::test]
async fn defaults_follow_the_plan_and_quotas_are_set_by_filter_on_real_engines() {
    defaults_follow_the_plan_and_quotas_are_set_by_filter_on(Engines::Real).await;
}

const BY_SHARE: &str = "query($n: Int, $a: String) { sims(orderBy: { field: QUOTA_PERCENT, direction: DESC },
    first: $n, after: $a) { nodes { iccid } pageInfo { endCursor hasNextPage } } }";

/// A page of the tenant's SIMs, those that used most of their quota first.
async fn by_share(app: &TestApp, token: &str, first: i32, after: Option<&str>) -> Value {
    app.gql(Some(token), BY_SHARE, json!({"n": first, "a": after}))
        .await
}

/// The ICCIDs of a page of SIMs, in its order.
fn iccids_of(body: &Value) -> Vec<String> {
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["sims"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["iccid"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_sims_closest_to_their_limit_are_listed_first_on(engines: Engines) {
    let app = quota_app(engines).await;
    let f = &app.factory;
    let t = f.tenant("Quota order").await;
    let sims = f.sims(&t, None, 6).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    // 1 MB quotas on three SIMs, 10 MB on one; two SIMs have none.
    for (sim, limit) in [
        (&sims[0], 1_000_000),
        (&sims[1], 1_000_000),
        (&sims[2], 1_000_000),
        (&sims[5], 10_000_000),
    ] {
        let body = app
            .gql(
                Some(&token),
                "mutation($i: Iccid!, $l: BigInt!) { setSimQuota(iccid: $i, input: { limitBytes: $l,
                    action: NOTIFY }) { limitBytes } }",
                json!({"i": sim.iccid, "l": limit}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    // 550 kB of 1 MB, 1.1 MB of 1 MB (past the limit), 1.1 MB of 10 MB; nothing on sims[2].
    publish_session(&app, "o-0", &sims[0], 500_000).await;
    publish_session(&app, "o-1", &sims[1], 1_000_000).await;
    publish_session(&app, "o-5", &sims[5], 1_000_000).await;
    let (first_loose, second_loose) = if sims[3].id > sims[4].id {
        (&sims[3], &sims[4])
    } else {
        (&sims[4], &sims[3])
    };
    let expected: Vec<String> = [&sims[1], &sims[0], &sims[5], &sims[2], first_loose, second_loose]
        .iter()
        .map(|s| s.iccid.to_string())
        .collect();

    // Listed by share as soon as the traffic is evaluated; the SIMs without a quota last (by id,
    // as every tie).
    let mut whole = Vec::new();
    for _ in 0..200 {
        whole = iccids_of(&by_share(&app, &token, 50, None).await);
        if whole == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(whole, expected, "not the SIMs closest to their limit first");

    // Two a page through the cursors: the same order, none repeated or lost.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let body = by_share(&app, &token, 2, after.as_deref()).await;
        let page = iccids_of(&body);
        assert_eq!(page.len(), 2, "a page of two holds {page:?}: {body}");
        paged.extend(page);
        pages += 1;
        let info = &body["data"]["sims"]["pageInfo"];
        if info["hasNextPage"] != true {
            break;
        }
        assert!(pages < 3, "more pages than SIMs: {body}");
        after = info["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(paged, expected, "paged otherwise than listed");

    // A cursor this list did not return is refused, naming it: garbage, or another order's.
    assert_refused(
        &by_share(&app, &token, 2, Some("garbage")).await,
        "after",
        "is not a cursor this list returned",
    );
    let by_creation = app
        .gql(
            Some(&token),
            "{ sims(orderBy: { field: CREATED_AT }, first: 1) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let other = by_creation["data"]["sims"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap_or_else(|| panic!("{by_creation}"))
        .to_owned();
    assert_refused(
        &by_share(&app, &token, 2, Some(&other)).await,
        "after",
        "is not a cursor this list returned",
    );
}

#[tokio::test]
async fn the_sims_closest_to_their_limit_are_listed_first_on_embedded_engines() {
    the_sims_closest_to_their_limit_are_listed_first_on(Engines::Embedded).await;
}

#[tokio::test]
async fn the_sims_closest_to_their_limit_are_listed_first_on_real_engines() {
    the_sims_closest_to_their_limit_are_listed_first_on(Engines::Real).await;
}

#[tokio::test]
async fn quota_defaults_and_filters_are_refused_naming_the_field_and_kept_within_the_tenant() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let f = &app.factory;
    let (a, b) = (f.tenant("Defaults A").await, f.tenant("Defaults B").await);
    f.sims(&a, None, 2).await;
    let admin = f.user(&a, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let set_default = |token: String, plan: Value, input: Value| {
        let app = &app;
        async move {
            app.gql(
                Some(&token),
                "mutation($p: String, $q: SimQuotaInput!) { setQuotaDefault(tariffPlan: $p, input: $q) { simsAdded } }",
                json!({"p": plan, "q": input}),
            )
            .await
        }
    };
    let long = "P".repeat(101);
    for (plan, input, field, why) in [
        (
            json!(""),
            json!({"limitBytes": 1000}),
            "tariffPlan",
            "must name a tariff plan",
        ),
        (
            json!(" IoT"),
            json!({"limitBytes": 1000}),
            "tariffPlan",
            "without leading or trailing spaces",
        ),
        (
            json!(long),
            json!({"limitBytes": 1000}),
            "tariffPlan",
            "at most 100 characters",
        ),
        (
            json!(null),
            json!({"limitBytes": 0}),
            "limitBytes",
            "between 1 and",
        ),
        (
            json!(null),
            json!({"limitBytes": 1000, "resumeNextPeriod": true}),
            "resumeNextPeriod",
            "only a quota that suspends can resume",
        ),
    ] {
        assert_refused(&set_default(token.clone(), plan, input).await, field, why);
    }
    for (filter, field, why) in [
        (
            json!({"quotaPercentAtLeast": -1}),
            "filter.quotaPercentAtLeast",
            "between 0 and 1000",
        ),
        (
            json!({"quotaPercentAtLeast": 1001}),
            "filter.quotaPercentAtLeast",
            "between 0 and 1000",
        ),
        (
            json!({"quotaPercentBelow": 0}),
            "filter.quotaPercentBelow",
            "between 1 and 1000",
        ),
        (
            json!({"quotaPercentAtLeast": 80, "quotaPercentBelow": 80}),
            "filter.quotaPercentBelow",
            "must be above quotaPercentAtLeast",
        ),
    ] {
        let body = app
            .gql(
                Some(&token),
                "query($f: SimFilter) { sims(first: 5, filter: $f) { nodes { iccid } } }",
                json!({"f": filter}),
            )
            .await;
        assert_refused(&body, field, why);
    }
    let body = app
        .gql(
            Some(&token),
            "mutation { setSimQuotas(filter: {}, expectedCount: -1, input: { limitBytes: 5 }) { changed } }",
            json!({}),
        )
        .await;
    assert_refused(&body, "expectedCount", "0 or more");

    // The tenant's own: another tenant's admin neither reads nor changes them; a viewer reads.
    let ok = set_default(token.clone(), json!(null), json!({"limitBytes": 1000})).await;
    assert_eq!(ok["data"]["setQuotaDefault"]["simsAdded"], 2, "{ok}");
    let other = f.user(&b, Role::TenantAdmin, None).await;
    let other = app.login(other.email.as_str(), TEST_PASSWORD).await;
    let theirs = app
        .gql(Some(&other), "{ quotaDefaults { limitBytes } }", json!({}))
        .await;
    assert_eq!(theirs["data"]["quotaDefaults"], json!([]), "{theirs}");
    let body = app
        .gql(
            Some(&other),
            "mutation($t: ID) { removeQuotaDefault(tenantId: $t) }",
            json!({"t": a.id.to_string()}),
        )
        .await;
    assert_eq!(
        ioto_test_support::app::error_code(&body).as_deref(),
        Some("NOT_FOUND"),
        "{body}"
    );
    let viewer = f.user(&a, Role::Viewer, None).await;
    let viewer = app.login(viewer.email.as_str(), TEST_PASSWORD).await;
    let seen = app
        .gql(Some(&viewer), "{ quotaDefaults { limitBytes } }", json!({}))
        .await;
    assert_eq!(
        seen["data"]["quotaDefaults"],
        json!([{"limitBytes": 1000}]),
        "{seen}"
    );
    let body = set_default(viewer, json!(null), json!({"limitBytes": 1})).await;
    assert_eq!(
        ioto_test_support::app::error_code(&body).as_deref(),
        Some("FORBIDDEN"),
        "{body}"
    );
}

async fn a_sim_the_quota_suspended_is_resumed_when_the_next_period_starts_on(engines: Engines) {
    let app = quota_app(engines).await;
    let f = &app.factory;
    let t = f.tenant("Quota resume").await;
    let sims = f.sims(&t, None, 2).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    for (sim, resume) in [(&sims[0], true), (&sims[1], false)] {
        let body = app
            .gql(
                Some(&token),
                "mutation($i: Iccid!, $r: Boolean) { setSimQuota(iccid: $i,
                    input: { limitBytes: 1000, action: SUSPEND, resumeNextPeriod: $r }) { resumeNextPeriod source } }",
                json!({"i": sim.iccid, "r": resume}),
            )
            .await;
        assert_eq!(
            body["data"]["setSimQuota"],
            json!({"resumeNextPeriod": resume, "source": "SIM"}),
            "{body}"
        );
        // Suspended last period at the limit: the SIM is suspended, and its quota's period
        // before this one records the suspension as done.
        let body = app
            .gql(
                Some(&token),
                "mutation($i: Iccid!) { changeSimState(iccid: $i, state: SUSPENDED) { sim { state } } }",
                json!({"i": sim.iccid}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        until_sim(&app, &token, sim, "the SIM is never suspended", |s| {
            s["state"] == "SUSPENDED"
        })
        .await;
    }
    let store = &app.app_engines.quotas;
    let iccids: Vec<_> = sims.iter().map(|s| s.iccid.clone()).collect();
    for target in store.quotas_of(&iccids).await.unwrap() {
        // The last hour of the period before this one.
        let (this, _) = ioto_domain::quota::period_of(target.time_zone, chrono::Utc::now());
        let last_month = this - chrono::Duration::hours(1);
        let mut p = ioto_domain::quota::standing(&target.quota, target.time_zone, 5_000, last_month);
        p.action_state = ioto_domain::quota::ActionState::Done;
        store.advance_quota(&p, None).await.unwrap();
    }

    // The new period resumes the SIM whose quota asks it, through the network, and tells.
    let resumed = until_sim(&app, &token, &sims[0], "the SIM is never resumed", |s| {
        s["state"] == "ACTIVE" && s["quota"]["lastResumeState"] == "DONE"
    })
    .await;
    assert_eq!(resumed["quota"]["usedBytes"], 0, "{resumed}");
    let trail = app
        .gql(
            Some(&token),
            "query($i: Iccid!) { sim(iccid: $i) { events(first: 10) { action actor newValue note } } }",
            json!({"i": sims[0].iccid}),
        )
        .await;
    let entries = trail["data"]["sim"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let by_quota = entries.iter().any(|e| {
        e["action"] == "STATE_CHANGED"
            && e["newValue"].to_string().contains("ACTIVE")
            && e["actor"].as_str().is_some_and(|a| a.starts_with("bulk job"))
    });
    assert!(by_quota, "the resume is not on the trail: {trail}");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let kept = sim_quota(&app, &token, &sims[1]).await;
    assert_eq!(
        (&kept["state"], &kept["quota"]["lastResumeState"]),
        (&json!("SUSPENDED"), &Value::Null),
        "a quota that does not resume resumed its SIM"
    );
}

#[tokio::test]
async fn a_sim_the_quota_suspended_is_resumed_when_the_next_period_starts_on_embedded_engines() {
    a_sim_the_quota_suspended_is_resumed_when_the_next_period_starts_on(Engines::Embedded).await;
}

#[tokio::test]
async fn a_sim_the_quota_suspended_is_resumed_when_the_next_period_starts_on_real_engines() {
    a_sim_the_quota_suspended_is_resumed_when_the_next_period_starts_on(Engines::Real).await;
}
