//! Usage through GraphQL: a SIM's live session and its usage, from what the usage store holds.

use chrono::{Duration, Utc};
use ioto_domain::ports::{period_start, Granularity, SessionUpdate};
use ioto_domain::Role;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::json;

async fn live_session_and_usage_on(engines: Engines) {
    let app = TestApp::spawn(engines).await;
    let tenant = app.factory.tenant("Usage").await;
    let user = app.factory.user(&tenant, Role::Viewer, None).await;
    let token = app.login(user.email.as_str(), TEST_PASSWORD).await;
    let sim = app.factory.sims(&tenant, None, 1).await.remove(0);
    let now = Utc::now();
    let hour = period_start(now, Granularity::Hour);
    let update = |at: chrono::DateTime<Utc>, totals: u64, delta: u64| SessionUpdate {
        tenant_id: tenant.id,
        customer_id: None,
        iccid: sim.iccid.clone(),
        session_id: "s1".into(),
        started_at: now - Duration::minutes(70),
        event_time: at,
        hour: period_start(at, Granularity::Hour),
        mcc_mnc: ioto_domain::MccMnc::parse("262-01").unwrap(),
        rat: ioto_domain::usage::RadioAccessType::NbIot,
        ip_address: Some("10.1.2.3".parse().unwrap()),
        cell_id: Some("0x1a".into()),
        terminated: false,
        total_in: totals,
        total_out: totals / 10,
        delta_in: delta,
        delta_out: delta / 10,
        imei: None,
    };
    app.app_engines
        .usage
        .write_session_updates(&[
            update(now - Duration::minutes(70), 1000, 1000),
            update(now - Duration::minutes(2), 3000, 2000),
        ])
        .await
        .unwrap();
    app.app_engines.usage.flush_pending().await.unwrap();

    let q = "query($i: Iccid!, $from: DateTime!, $to: DateTime!) { sim(iccid: $i) {
        liveSession { online network { mccMnc name country countryCode } radioAccessType ipAddress bytesIn bytesOut startedAt lastUpdateAt }
        usage(from: $from, to: $to, granularity: HOUR) { period network { mccMnc } bytesIn bytesOut }
        daily: usage(from: $from, to: $to) { bytesIn }
    } }";
    let vars = json!({"i": sim.iccid.to_string(), "from": (hour - Duration::hours(3)).to_rfc3339(), "to": (hour + Duration::hours(1)).to_rfc3339()});
    let body = app.gql(Some(&token), q, vars.clone()).await;
    assert!(body["errors"].is_null(), "{body}");
    let live = &body["data"]["sim"]["liveSession"];
    assert_eq!(live["online"], true);
    assert_eq!(live["network"]["countryCode"], "DE");
    assert_eq!(live["network"]["country"], "Germany");
    assert_eq!(live["radioAccessType"], "NB-IoT");
    assert_eq!(
        (live["bytesIn"].as_i64(), live["bytesOut"].as_i64()),
        (Some(3000), Some(300))
    );
    let usage = body["data"]["sim"]["usage"].as_array().unwrap();
    assert_eq!(
        usage.iter().map(|p| p["bytesIn"].as_i64().unwrap()).sum::<i64>(),
        3000
    );
    assert!(usage.len() <= 2 && !usage.is_empty());
    assert_eq!(
        body["data"]["sim"]["daily"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["bytesIn"].as_i64().unwrap())
            .sum::<i64>(),
        3000
    );
    // No internal identifiers: the session id is not part of the schema.
    let body = app
        .gql(
            Some(&token),
            "query($i: Iccid!) { sim(iccid: $i) { liveSession { sessionId } } }",
            json!({"i": sim.iccid.to_string()}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    // Session history: newest first, paged.
    let h = "query($i: Iccid!, $after: String) { sessionHistory(iccid: $i, first: 1, after: $after) {
        nodes { at network { mccMnc } radioAccessType bytesIn sessionBytesIn ended } pageInfo { hasNextPage endCursor } } }";
    let page1 = app
        .gql(Some(&token), h, json!({"i": sim.iccid.to_string()}))
        .await;
    assert!(page1["errors"].is_null(), "{page1}");
    assert_eq!(page1["data"]["sessionHistory"]["nodes"][0]["bytesIn"], 2000);
    assert_eq!(
        page1["data"]["sessionHistory"]["nodes"][0]["sessionBytesIn"],
        3000
    );
    assert_eq!(page1["data"]["sessionHistory"]["pageInfo"]["hasNextPage"], true);
    let after = page1["data"]["sessionHistory"]["pageInfo"]["endCursor"].clone();
    let page2 = app
        .gql(
            Some(&token),
            h,
            json!({"i": sim.iccid.to_string(), "after": after}),
        )
        .await;
    assert_eq!(
        page2["data"]["sessionHistory"]["nodes"][0]["bytesIn"], 1000,
        "{page2}"
    );
    assert_eq!(page2["data"]["sessionHistory"]["pageInfo"]["hasNextPage"], false);
    let other = app.factory.tenant("Other").await;
    let foreign = app.factory.sims(&other, None, 1).await.remove(0);
    let body = app
        .gql(Some(&token), h, json!({"i": foreign.iccid.to_string()}))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
    // A range the wrong way round names the field.
    let mut bad = vars.clone();
    bad["to"] = bad["from"].clone();
    let body = app.gql(Some(&token), q, bad).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "to", "{body}");
    app.stop().await;
}

#[tokio::test]
async fn live_session_and_usage() {
    live_session_and_usage_on(Engines::Real).await;
}

#[tokio::test]
async fn live_session_and_usage_embedded() {
    live_session_and_usage_on(Engines::Embedded).await;
}

/// A SIM moved to another sub-customer does not bring the usage it had before along: the new
/// customer's users see what was counted while the SIM was theirs; the tenant sees everything.
async fn a_reassigned_sim_shows_its_new_customer_only_their_usage_on(engines: Engines) {
    let app = TestApp::spawn(engines).await;
    let tenant = app.factory.tenant("Moves").await;
    let (alpha, beta) = (
        app.factory.customer(&tenant, "Alpha").await,
        app.factory.customer(&tenant, "Beta").await,
    );
    let admin = app.factory.user(&tenant, Role::TenantAdmin, None).await;
    let admin_token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let beta_user = app.factory.user(&tenant, Role::CustomerUser, Some(beta.id)).await;
    let beta_token = app.login(beta_user.email.as_str(), TEST_PASSWORD).await;
    let sim = app.factory.sims(&tenant, Some(alpha.id), 1).await.remove(0);
    let now = Utc::now();
    let update = |customer, session: &str, at: chrono::DateTime<Utc>, bytes: u64| SessionUpdate {
        tenant_id: tenant.id,
        customer_id: Some(customer),
        iccid: sim.iccid.clone(),
        session_id: session.into(),
        started_at: at,
        event_time: at,
        hour: period_start(at, Granularity::Hour),
        mcc_mnc: ioto_domain::MccMnc::parse("262-01").unwrap(),
        rat: ioto_domain::usage::RadioAccessType::Lte,
        ip_address: None,
        cell_id: None,
        terminated: false,
        total_in: bytes,
        total_out: 0,
        delta_in: bytes,
        delta_out: 0,
        imei: None,
    };
    // Counted while the SIM was Alpha's.
    app.app_engines
        .usage
        .write_session_updates(&[update(alpha.id, "before", now - Duration::minutes(50), 7_000)])
        .await
        .unwrap();
    app.app_engines.usage.flush_pending().await.unwrap();
    let assign =
        "mutation($i: Iccid!, $c: ID) { assignSim(iccid: $i, customerId: $c) { sim { customerId } } }";
    let body = app
        .gql(
            Some(&admin_token),
            assign,
            json!({"i": sim.iccid.to_string(), "c": beta.id.to_string()}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let q = "query($i: Iccid!, $from: DateTime!, $to: DateTime!) { sim(iccid: $i) {
        liveSession { bytesIn }
        usage(from: $from, to: $to, granularity: HOUR) { bytesIn }
    }
    sessionHistory(iccid: $i) { nodes { bytesIn } } }";
    let vars = json!({"i": sim.iccid.to_string(), "from": (now - Duration::hours(3)).to_rfc3339(), "to": (now + Duration::hours(1)).to_rfc3339()});
    let total = |body: &serde_json::Value| -> i64 {
        body["data"]["sim"]["usage"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|p| p["bytesIn"].as_i64().unwrap())
            .sum()
    };
    let body = app.gql(Some(&beta_token), q, vars.clone()).await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(total(&body), 0, "Alpha's usage is not Beta's: {body}");
    assert!(body["data"]["sim"]["liveSession"].is_null(), "{body}");
    assert_eq!(body["data"]["sessionHistory"]["nodes"], json!([]), "{body}");

    // Counted since the move: Beta's.
    app.app_engines
        .usage
        .write_session_updates(&[update(beta.id, "after", now - Duration::minutes(5), 2_000)])
        .await
        .unwrap();
    app.app_engines.usage.flush_pending().await.unwrap();
    let body = app.gql(Some(&beta_token), q, vars.clone()).await;
    assert_eq!(total(&body), 2_000, "{body}");
    assert_eq!(body["data"]["sim"]["liveSession"]["bytesIn"], 2_000, "{body}");
    assert_eq!(
        body["data"]["sessionHistory"]["nodes"],
        json!([{"bytesIn": 2000}]),
        "{body}"
    );
    let body = app.gql(Some(&admin_token), q, vars).await;
    assert_eq!(total(&body), 9_000, "the tenant sees both: {body}");
    app.stop().await;
}

#[tokio::test]
async fn a_reassigned_sim_shows_its_new_customer_only_their_usage() {
    a_reassigned_sim_shows_its_new_customer_only_their_usage_on(Engines::Real).await;
}

#[tokio::test]
async fn a_reassigned_sim_shows_its_new_customer_only_their_usage_embedded() {
    a_reassigned_sim_shows_its_new_customer_only_their_usage_on(Engines::Embedded).await;
}
