//! The HTTP surface: health, readiness, metrics, request ids, body limit, CORS, compression,
//! the playground's operations, and subscriptions over graphql-transport-ws.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ioto_domain::Role;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn health_readiness_metrics_and_request_ids() {
    let app = TestApp::spawn(Engines::Real).await;
    let c = &app.http;
    assert_eq!(app.get_text("/healthz").await, "ok");

    let ready = c.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    let engines: Vec<_> = body["engines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["engine"].as_str().unwrap(), e["ok"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        engines,
        [
            ("postgres", true),
            ("clickhouse", true),
            ("kafka", true),
            ("in-process", true)
        ],
        "{body}"
    );

    // A request id is made up when absent and echoed when given.
    let r = c.get(app.url("/healthz")).send().await.unwrap();
    assert!(uuid::Uuid::parse_str(r.headers()["x-request-id"].to_str().unwrap()).is_ok());
    let r = c
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-42");

    // The playground's page and assets come from the binary, under a CSP; nothing else is served.
    let page = c.get(app.url("/playground")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("/playground/assets/graphiql.min.js"));
    for path in [
        "/playground/assets/graphiql.min.js",
        "/playground/assets/playground.js",
    ] {
        assert_eq!(c.get(app.url(path)).send().await.unwrap().status(), 200, "{path}");
    }
    for path in [
        "/playground/assets/..%2F..%2FCargo.toml",
        "/playground/assets/vendor%2Freact.production.min.js",
        "/playground/assets/index.html",
    ] {
        assert_eq!(c.get(app.url(path)).send().await.unwrap().status(), 404, "{path}");
    }

    // The console: its page and modules from the binary, under a CSP without any inline code or
    // style and without other origins.
    let page = c.get(app.url("/console")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.starts_with("default-src 'none';")
            && csp.contains("script-src 'self';")
            && csp.contains("style-src 'self';")
            && !csp.contains("unsafe")
            && !csp.contains("http")
            && !csp.contains("ws:"),
        "{csp}"
    );
    assert!(page.text().await.unwrap().contains("/console/assets/app.js"));
    for path in [
        "/console/assets/app.js",
        "/console/assets/d3.min.js",
        "/console/assets/console.css",
    ] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"].to_str().unwrap().starts_with("text/"),
            "{path}"
        );
    }
    for path in [
        "/console/assets/index.html",
        "/console/assets/graphiql.min.js",
        "/console/assets/..%2Fplayground%2Fplayground.js",
    ] {
        assert_eq!(c.get(app.url(path)).send().await.unwrap().status(), 404, "{path}");
    }

    // Invented methods are one bounded label, not one series each.
    for i in 0..5 {
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        c.request(method, app.url("/healthz")).send().await.unwrap();
    }

    let m = app.get_text("/metrics").await;
    // OpenMetrics text: every family described once, the exposition closed by "# EOF".
    assert!(m.trim_end().ends_with("# EOF"), "{m}");
    assert_eq!(m.matches("# TYPE ioto_http_requests counter").count(), 1, "{m}");
    assert!(
        m.contains("ioto_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 3"),
        "{m}"
    );
    assert!(!m.contains("BREW"), "{m}");
    assert!(
        m.contains("ioto_http_requests_total{method=\"other\",route=\"/healthz\",status=\"405\"} 5"),
        "{m}"
    );
    assert!(
        m.contains("ioto_engine_up{port=\"transactional store\",engine=\"postgres\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("ioto_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/readyz\"} 1"),
        "{m}"
    );
    let statements = m
        .lines()
        .find_map(|l| l.strip_prefix("ioto_sql_statements_total "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no statement counter: {m}"));
    assert!(statements > 0, "{m}");

    // Compression when the client asks for it.
    let r = c
        .get(app.url("/metrics"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");

    // Bodies above the limit are refused before parsing.
    let big = "x".repeat(app.config.graphql.body_limit_bytes + 1);
    let r = c
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    app.stop().await;
}

#[tokio::test]
async fn readiness_reports_an_engine_that_went_away() {
    let mut config = TestApp::config(Engines::Embedded).await;
    config.mqtt.url = Some(ioto::config::SecretUrl::new("mqtt://127.0.0.1:1883"));
    let app = TestApp::spawn_with(config).await;
    let ready: Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["engines"][3]["engine"], "mqtt");
    app.stop().await;
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let mut config = TestApp::config(Engines::Embedded).await;
    config.http.cors_origins = vec!["https://app.example.com".into()];
    let app = TestApp::spawn_with(config).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
    };
    let ok = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let other = preflight("https://evil.example.com").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}

#[tokio::test]
async fn playground_operations_are_valid_against_the_schema() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let page = app.get_text("/playground").await;
    assert!(page.contains("graphiql") || page.contains("GraphiQL"), "{page}");
    let ops = app.get_text("/playground/operations.graphql").await;
    let names: Vec<&str> = ops
        .lines()
        .filter_map(|l| {
            ["query ", "mutation ", "subscription "]
                .iter()
                .find_map(|k| l.strip_prefix(k))
        })
        .map(|rest| rest.split(['(', ' ', '{']).next().unwrap())
        .collect();
    assert!(names.len() >= 6, "{names:?}");
    let t = app.factory.tenant("Ops").await;
    let u = app.factory.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(u.email.as_str(), TEST_PASSWORD).await;
    // Subscriptions run over WebSocket (tested elsewhere); the rest run here.
    let subscriptions: Vec<&str> = ops
        .lines()
        .filter_map(|l| l.strip_prefix("subscription "))
        .map(|rest| rest.split(['(', ' ', '{']).next().unwrap())
        .collect();
    for name in names.iter().filter(|n| !subscriptions.contains(n)) {
        let body = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .json(&json!({
                "query": ops,
                "operationName": name,
                // Values for the operations' required variables; unknown SIMs or devices answer
                // NOT_FOUND, which is fine here.
                "variables": {
                    "iccid": "89882280660000000011",
                    "old": "89882280660000000011",
                    "new": "89882280660000000029",
                    "device": "00000000-0000-0000-0000-000000000000",
                    "id": "00000000-0000-0000-0000-000000000000",
                    "at": "2030-01-01T00:00:00Z",
                    "from": "2029-12-01T00:00:00Z",
                    "to": "2030-01-01T00:00:00Z",
                },
            }))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        // Validation errors would carry BAD_USER_INPUT; permission or data errors are fine here.
        let bad = body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["extensions"]["code"] == "BAD_USER_INPUT" && e["extensions"]["field"].is_null());
        assert!(!bad, "operation {name} does not validate: {body}");
    }
    app.stop().await;
}

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(app: &TestApp, payload: Value) -> Ws {
    let mut req = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(
        json!({ "type": "connection_init", "payload": payload }).to_string(),
    ))
    .await
    .unwrap();
    ws
}

/// The next JSON message, skipping pings; `None` when the server closed the connection.
pub(crate) async fn ws_next(ws: &mut Ws) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("no message in 30 s")?;
        match msg {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "ping" || v["type"] == "pong" {
                    continue;
                }
                return Some(v);
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// The reason of the close frame the server ends the connection with (no other message first).
pub(crate) async fn ws_close_reason(ws: &mut Ws) -> String {
    let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .expect("no message in 30 s")
        .expect("the connection ended without a close frame")
        .unwrap();
    match msg {
        Message::Close(Some(frame)) => frame.reason.to_string(),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// Connects with `token`, checks the acknowledgement and starts subscription `1` with `query`.
pub(crate) async fn ws_subscribe(app: &TestApp, token: &str, query: &str) -> Ws {
    let mut ws = ws_connect(app, json!({ "authorization": format!("Bearer {token}") })).await;
    assert_eq!(ws_next(&mut ws).await.unwrap()["type"], "connection_ack");
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": query } });
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    // graphql-transport-ws has no acknowledgement for subscribe: give the server a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws
}

#[tokio::test]
async fn subscriptions_authenticate_filter_by_tenant_and_complete_on_shutdown() {
    let app = TestApp::spawn(Engines::Real).await;
    let f = &app.factory;
    let a = f.tenant("Sub A").await;
    let b = f.tenant("Sub B").await;
    let a_token = app
        .login(
            f.user(&a, Role::TenantAdmin, None).await.email.as_str(),
            TEST_PASSWORD,
        )
        .await;
    let b_token = app
        .login(
            f.user(&b, Role::TenantAdmin, None).await.email.as_str(),
            TEST_PASSWORD,
        )
        .await;

    // No token: no acknowledgement, the server closes, naming the code.
    let mut anon = ws_connect(&app, json!({})).await;
    let reason = ws_close_reason(&mut anon).await;
    assert!(
        reason.starts_with("UNAUTHENTICATED: "),
        "unauthenticated connection_init must be refused: {reason}"
    );
    let mut forged = ws_connect(&app, json!({ "authorization": "Bearer forged.token.here" })).await;
    let reason = ws_close_reason(&mut forged).await;
    assert!(reason.starts_with("UNAUTHENTICATED: "), "{reason}");

    let events = "subscription { directoryEvents { change tenantId entityId } }";
    let mut wa = ws_subscribe(&app, &a_token, events).await;
    let mut wb = ws_subscribe(&app, &b_token, events).await;

    let created = app
        .gql(
            Some(&a_token),
            "mutation { createCustomer(input: {name: \"Live One\"}) { id } }",
            json!({}),
        )
        .await;
    let cid = created["data"]["createCustomer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let next = ws_next(&mut wa).await.unwrap();
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(
        next["payload"]["data"]["directoryEvents"],
        json!({ "change": "CUSTOMER_CREATED", "tenantId": a.id.to_string(), "entityId": cid })
    );

    // B's subscriber never sees A's event: its first event is its own.
    let created_b = app
        .gql(
            Some(&b_token),
            "mutation { createCustomer(input: {name: \"Bee\"}) { id } }",
            json!({}),
        )
        .await;
    let first_b = ws_next(&mut wb).await.unwrap();
    assert_eq!(
        first_b["payload"]["data"]["directoryEvents"]["entityId"], created_b["data"]["createCustomer"]["id"],
        "{first_b}"
    );

    // Shutdown completes the subscription before the socket goes.
    app.stop().await;
    let done = ws_next(&mut wa).await;
    assert_eq!(
        done.as_ref().map(|d| d["type"].clone()),
        Some(json!("complete")),
        "{done:?}"
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let t = app.factory.tenant("Drain").await;
    let u = app.factory.user(&t, Role::Viewer, None).await;
    // A login spends tens of milliseconds hashing: it is in flight when the shutdown starts.
    let client = app.http.clone();
    let url = app.url("/graphql");
    let email = u.email.to_string();
    let in_flight = tokio::spawn(async move {
        client
            .post(url)
            .json(&json!({ "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }", "variables": { "e": email, "p": TEST_PASSWORD } }))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(15)).await;
    let addr = app.addr;
    app.stop().await;
    let body: Value = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was answered")
        .json()
        .await
        .unwrap();
    assert!(body["data"]["login"]["token"].is_string(), "{body}");
    // New connections are refused once the server is down.
    assert!(reqwest::get(format!("http://{addr}/healthz")).await.is_err());
}

#[tokio::test]
async fn a_subscriber_on_one_instance_sees_changes_made_through_another() {
    let config = TestApp::config(Engines::Real).await;
    let one = TestApp::spawn_with(config.clone()).await;
    let two = TestApp::spawn_with(config).await;
    let t = one.factory.tenant("Two Instances").await;
    let admin = one.factory.user(&t, Role::TenantAdmin, None).await;
    let token = one.login(admin.email.as_str(), TEST_PASSWORD).await;

    let mut ws = ws_subscribe(
        &one,
        &token,
        "subscription { directoryEvents { change entityId } }",
    )
    .await;

    let created = two
        .gql(
            Some(&token),
            "mutation { createCustomer(input: {name: \"Made On Two\"}) { id } }",
            json!({}),
        )
        .await;
    let id = created["data"]["createCustomer"]["id"].clone();
    assert!(id.is_string(), "{created}");
    let next = ws_next(&mut ws).await.unwrap();
    assert_eq!(
        next["payload"]["data"]["directoryEvents"],
        json!({ "change": "CUSTOMER_CREATED", "entityId": id }),
        "{next}"
    );
    two.stop().await;
    one.stop().await;
}

/// An engine that goes away is answered `UNAVAILABLE` with a fixed sentence: no address, port,
/// driver message or database name reaches the caller.
#[tokio::test]
async fn an_engine_outage_answers_unavailable_without_details() {
    let mut config = TestApp::config(Engines::Real).await;
    let ch_url = config.clickhouse.url.as_ref().unwrap().expose().to_owned();
    let host = ch_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = ioto_test_support::proxy::Proxy::start(&host).await;
    config.clickhouse.url = Some(ioto::config::SecretUrl::new(format!("http://{}", proxy.addr)));
    let database = config.clickhouse.database.clone();
    let app = TestApp::spawn_with(config).await;
    let f = &app.factory;
    let t = f.tenant("Outage").await;
    let sim = f.sims(&t, None, 1).await.remove(0);
    let token = app
        .login(
            f.user(&t, Role::TenantAdmin, None).await.email.as_str(),
            TEST_PASSWORD,
        )
        .await;
    let q = "query($i: Iccid!) { sim(iccid: $i) { liveSession { online } } }";
    let vars = json!({ "i": sim.iccid.to_string() });
    let up = app.gql(Some(&token), q, vars.clone()).await;
    assert!(up["errors"].is_null(), "{up}");

    proxy.down();
    let down = app.gql(Some(&token), q, vars).await;
    let err = &down["errors"][0];
    assert_eq!(err["extensions"]["code"], "UNAVAILABLE", "{down}");
    assert_eq!(err["message"], ioto_domain::error::UNAVAILABLE_MESSAGE, "{down}");
    let text = down.to_string();
    for secret in [proxy.addr.to_string(), proxy.addr.port().to_string(), database] {
        assert!(!text.contains(&secret), "{secret} leaked: {down}");
    }
    proxy.up();
    app.stop().await;
}

/// A query's reads share one transaction on Postgres: one more read in the same query costs one
/// more statement, not another BEGIN / set_config / COMMIT. Row-level security still applies
/// (the customer user below sees only its own customer).
#[tokio::test]
async fn a_query_reads_in_one_transaction() {
    let app = TestApp::spawn_quiet(Engines::Real).await;
    let f = &app.factory;
    let t = f.tenant("One Txn").await;
    let acme = f.customer(&t, "Acme").await;
    f.customer(&t, "Bravo").await;
    let admin = app
        .login(
            f.user(&t, Role::TenantAdmin, None).await.email.as_str(),
            TEST_PASSWORD,
        )
        .await;
    let cu = app
        .login(
            f.user(&t, Role::CustomerUser, Some(acme.id)).await.email.as_str(),
            TEST_PASSWORD,
        )
        .await;
    let cost = |token: String, q: &'static str| {
        let app = &app;
        async move {
            // The first request confirms the session (cached afterwards): measure the second.
            app.gql(Some(&token), q, json!({})).await;
            let before = app.app_engines.fleet.statements();
            let body = app.gql(Some(&token), q, json!({})).await;
            assert!(body["errors"].is_null(), "{body}");
            (app.app_engines.fleet.statements() - before, body)
        }
    };
    let (one, _) = cost(admin.clone(), "{ me { email } }").await;
    let (two, _) = cost(admin.clone(), "{ me { email } customers { nodes { name } } }").await;
    assert_eq!(
        two,
        one + 1,
        "a second read adds one statement ({one} then {two})"
    );
    let (_, body) = cost(cu, "{ customers { nodes { name } } }").await;
    assert_eq!(
        body["data"]["customers"]["nodes"],
        json!([{ "name": "Acme" }]),
        "{body}"
    );
    app.stop().await;
}

/// An instance whose background work is all turned off (bulk jobs, exports, notification
/// deliveries, the transition scheduler, rating, the counters' folding, quota sweeps: an API-only instance
/// beside workers elsewhere) sends the database nothing while no request comes in. A worker
/// left polling made the statement counts of the tests above flaky.
#[tokio::test]
async fn an_instance_without_background_work_sends_no_statements_while_idle() {
    let app = TestApp::spawn_quiet(Engines::Real).await;
    let before = app.app_engines.fleet.statements();
    // Longer than every worker's first pass and poll interval (bulk 0.5 s, exports and
    // notifications 1 s; the scheduler, rating and folding run once at start-up).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        app.app_engines.fleet.statements(),
        before,
        "statements sent while idle"
    );
    app.stop().await;
}
