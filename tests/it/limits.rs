//! Depth and complexity limits answer with a clear error before anything runs.

use ioto_domain::Role;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp};
use serde_json::json;

#[tokio::test]
async fn depth_and_complexity_limits_answer_clearly() {
    let mut config = TestApp::config(Engines::Embedded).await;
    config.graphql.max_depth = 3;
    config.graphql.max_complexity = 20;
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Limits").await;
    let u = app.factory.user(&t, Role::TenantAdmin, None).await;
    let token = app
        .login(u.email.as_str(), ioto_test_support::TEST_PASSWORD)
        .await;

    let ok = app
        .gql(Some(&token), "{ me { tenant { name } } }", json!({}))
        .await;
    assert_eq!(ok["data"]["me"]["tenant"]["name"], "Limits", "{ok}");

    let deep = app
        .gql(
            Some(&token),
            "{ me { tenant { customers { nodes { name } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&deep).as_deref(), Some("BAD_USER_INPUT"), "{deep}");
    assert!(
        deep["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested too deep"),
        "{deep}"
    );
    assert!(deep["data"].is_null(), "nothing ran: {deep}");

    let wide: String = (0..25).map(|i| format!("a{i}: tenants {{ id }} ")).collect();
    let complex = app.gql(Some(&token), &format!("{{ {wide} }}"), json!({})).await;
    assert_eq!(
        error_code(&complex).as_deref(),
        Some("BAD_USER_INPUT"),
        "{complex}"
    );
    assert!(
        complex["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too complex"),
        "{complex}"
    );

    let syntax = app.gql(Some(&token), "{ me { ", json!({})).await;
    assert_eq!(error_code(&syntax).as_deref(), Some("BAD_USER_INPUT"), "{syntax}");
    app.stop().await;
}

#[tokio::test]
async fn introspection_can_be_switched_off() {
    let mut config = TestApp::config(Engines::Embedded).await;
    config.graphql.introspection = false;
    let app = TestApp::spawn_with(config).await;
    let body = app.gql(None, "{ __schema { types { name } } }", json!({})).await;
    assert!(
        body["data"]["__schema"].is_null(),
        "introspection answered: {body}"
    );
    app.stop().await;
    let open = TestApp::spawn(Engines::Embedded).await;
    let body = open.gql(None, "{ __schema { types { name } } }", json!({})).await;
    assert!(
        body["data"]["__schema"]["types"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    open.stop().await;
}

/// List sizes count: a viewer cannot alias nested pages into hundreds of thousands of backend
/// queries; the refusal names the cost and the limit, and nothing runs. A large flat page is fine.
#[tokio::test]
async fn nested_pages_are_priced_by_their_sizes() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let t = app.factory.tenant("Costs").await;
    let u = app.factory.user(&t, Role::Viewer, None).await;
    let token = app
        .login(u.email.as_str(), ioto_test_support::TEST_PASSWORD)
        .await;
    let nested = "sims(first: 1000) { nodes { iccid events(first: 1000) { action at } usage(from: \"2026-01-01T00:00:00Z\", to: \"2026-02-01T00:00:00Z\") { bytesIn } } }";
    let aliased: String = (0..5).map(|i| format!("a{i}: {nested} ")).collect();
    let telemetry = "devices(first: 1000) { nodes { telemetry(last: 10000) { at temperatureC } } }";
    for q in [format!("{{ {aliased} }}"), format!("{{ {telemetry} }}")] {
        let body = app.gql(Some(&token), &q, json!({})).await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
        let e = &body["errors"][0];
        assert_eq!(e["extensions"]["limit"], "complexity", "{body}");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains("the limit is 20000") && message.contains("page size"),
            "{message}"
        );
        assert!(body["data"].is_null(), "nothing ran: {body}");
    }
    let page = "{ sims(first: 1000) { totalCount nodes { iccid imsi msisdn state type tariffPlan lastNetwork labels { key value } } } }";
    let body = app.gql(Some(&token), page, json!({})).await;
    assert!(
        body["errors"].is_null(),
        "a flat page of 1,000 is allowed: {body}"
    );
    app.stop().await;
}

/// Rate limits: each operation's complexity is charged to the caller's bucket and the tenant's;
/// a caller over its budget gets `RATE_LIMITED` with when to come back (HTTP 429,
/// `Retry-After`, `RateLimit-*`), while other callers go on.
#[tokio::test]
async fn a_caller_over_its_budget_is_told_when_to_come_back() {
    let mut config = TestApp::config(Engines::Embedded).await;
    config.rate_limit.caller_points_per_second = 200;
    config.rate_limit.tenant_points_per_second = 100_000;
    config.rate_limit.burst_seconds = 1;
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Budget").await;
    app.factory.sims(&t, None, 5).await;
    let heavy = app.factory.user(&t, Role::TenantAdmin, None).await;
    let other = app.factory.user(&t, Role::TenantAdmin, None).await;
    let heavy = app
        .login(heavy.email.as_str(), ioto_test_support::TEST_PASSWORD)
        .await;
    let other = app
        .login(other.email.as_str(), ioto_test_support::TEST_PASSWORD)
        .await;
    let page = json!({ "query": "{ sims(first: 20) { nodes { iccid state labels { key value } } } }" });
    let send = |token: String| {
        let (http, url, page) = (app.http.clone(), app.url("/graphql"), page.clone());
        async move {
            let resp = http
                .post(url)
                .bearer_auth(token)
                .json(&page)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let header = |k: &str| {
                resp.headers()
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let headers = (
                header("ratelimit-limit"),
                header("ratelimit-remaining"),
                header("retry-after"),
            );
            let body: serde_json::Value = resp.json().await.unwrap();
            (status, headers, body)
        }
    };
    let (status, (limit, remaining, _), body) = send(heavy.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        limit.as_deref(),
        Some("200"),
        "the caller's bucket is the tighter one"
    );
    let remaining: u64 = remaining.unwrap().parse().unwrap();
    let cost = 200 - remaining;
    assert!(cost > 20, "a page is charged by its weight, not 1: {cost}");
    let mut refused = None;
    for _ in 0..20 {
        let r = send(heavy.clone()).await;
        if r.0 != 200 {
            refused = Some(r);
            break;
        }
    }
    let (status, (_, _, retry), body) = refused.expect("the caller ran out of budget");
    assert_eq!(status, 429, "{body}");
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    let ext = &body["errors"][0]["extensions"];
    assert_eq!(ext["limit"], "caller", "{body}");
    let wait = ext["retryAfter"].as_f64().unwrap();
    assert!(wait > 0.0 && wait <= 1.0, "{body}");
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
    assert!(body["data"].is_null(), "nothing ran: {body}");
    // Another caller of the same tenant is not held up by this one's budget.
    let (status, _, body) = send(other).await;
    assert_eq!(status, 200, "{body}");
    // Once the bucket has refilled, the caller goes on.
    tokio::time::sleep(std::time::Duration::from_secs_f64(wait + 0.05)).await;
    let (status, _, body) = send(heavy).await;
    assert_eq!(status, 200, "{body}");
}
