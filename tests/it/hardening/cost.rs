//! Lists priced by what they return, so that aliases add up; what a request cost and how many
//! store queries it ran, in its answer on request and in `/metrics`.

use ioto_domain::Role;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

/// Hourly usage of 83 days, per alias: each is a full usage-store query of ~2,000 periods
/// (before, each was priced at 6 and 2,800 of them ran, 25 s of store queries, for a viewer).
#[tokio::test]
async fn aliases_of_a_usage_list_add_up_to_a_refusal() {
    let app = TestApp::spawn(Engines::Real).await;
    let t = app.factory.tenant("Aliases").await;
    let viewer = app.factory.user(&t, Role::Viewer, None).await;
    let token = app.login(viewer.email.as_str(), TEST_PASSWORD).await;
    let field = "customerUsage(from: \"2026-01-01T00:00:00Z\", to: \"2026-03-25T00:00:00Z\", granularity: HOUR) { period bytesIn bytesOut }";
    for aliases in [4, 2_800] {
        let q: String = (0..aliases).map(|i| format!("a{i}: {field} ")).collect();
        let body = app.gql(Some(&token), &format!("{{ {q} }}"), json!({})).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{aliases}: {body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["limit"], "complexity", "{body}");
        assert!(body["data"].is_null(), "nothing ran: {body}");
    }
    let one = app.gql(Some(&token), &format!("{{ {field} }}"), json!({})).await;
    assert!(one["errors"].is_null(), "one such list is allowed: {one}");

    // The analytics lists are priced per time bucket: a year of hours, aliased, is refused.
    let analytics = "usageAnalytics(input: { measures: [BYTES_TOTAL], dimensions: [TIME], granularity: HOUR, timeRange: { from: \"2026-01-01T00:00:00Z\", to: \"2026-02-10T00:00:00Z\" } }) { rows { time measures { bytesTotal } } }";
    let q: String = (0..10).map(|i| format!("a{i}: {analytics} ")).collect();
    let body = app.gql(Some(&token), &format!("{{ {q} }}"), json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["limit"], "complexity", "{body}");
    app.stop().await;
}

async fn post_graphql(app: &TestApp, token: &str, body: Value) -> Value {
    app.graphql_request(Some(token), &[], body).await.1
}

#[tokio::test]
async fn a_request_tells_its_cost_and_store_queries_when_asked() {
    let app = TestApp::spawn(Engines::Real).await;
    let t = app.factory.tenant("Costs told").await;
    let viewer = app.factory.user(&t, Role::Viewer, None).await;
    let token = app.login(viewer.email.as_str(), TEST_PASSWORD).await;
    // A day of hours: a row per hour at the least, one field each, and the store query.
    let q = "{ customerUsage(from: \"2026-01-01T00:00:00Z\", to: \"2026-01-02T00:00:00Z\", granularity: HOUR) { bytesIn } }";
    let asked = post_graphql(&app, &token, json!({"query": q, "extensions": {"cost": true}})).await;
    assert!(asked["errors"].is_null(), "{asked}");
    assert_eq!(asked["extensions"]["cost"]["complexity"], 10 + 24, "{asked}");
    let queries = asked["extensions"]["cost"]["storeQueries"].as_u64().unwrap();
    assert!(queries >= 1, "the usage store was asked: {asked}");
    let plain = post_graphql(&app, &token, json!({"query": q})).await;
    assert!(plain["extensions"]["cost"].is_null(), "only on request: {plain}");

    // The login, and the two requests.
    let metrics = app.get_text("/metrics").await;
    let count = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}_count ")))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name}_count in {metrics}"))
    };
    assert_eq!(count("ioto_graphql_operation_cost"), 3, "{metrics}");
    assert_eq!(count("ioto_graphql_store_queries"), 3, "{metrics}");
    app.stop().await;
}
