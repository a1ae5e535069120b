//! Notifications of a bulk job's end: in the app (list, unread count, read marks, subscription),
//! by e-mail through a real SMTP server (aiosmtpd, started here), and by webhooks signed the
//! Standard Webhooks way, retried with back-off until delivered or given up.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use futures::SinkExt;
use ioto_domain::Role;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::bulk::{upload, wait_final};
use super::Fixture;

/// A real SMTP server (Debian's python3-aiosmtpd, installed by `scripts/engines.sh`) storing
/// what it receives in a maildir.
pub(crate) struct SmtpServer {
    child: Child,
    pub(crate) port: u16,
    maildir: PathBuf,
}

impl SmtpServer {
    pub(crate) async fn start() -> Self {
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = std::env::temp_dir().join(format!("ioto-mail-{}", uuid::Uuid::new_v4()));
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting aiosmtpd (scripts/engines.sh installs python3-aiosmtpd)");
        let server = Self { child, port, maildir };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("aiosmtpd did not listen on port {port} within 5 s (is python3-aiosmtpd installed?)");
    }

    /// The messages received so far, as text.
    pub(crate) fn messages(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

/// One request a webhook receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) id: String,
    pub(crate) timestamp: i64,
    pub(crate) signature: String,
    pub(crate) body: Vec<u8>,
}

/// A webhook receiver on loopback: `/flaky` answers 503 twice, then 200; `/broken` always 500;
/// `/ok` always 200.
pub(crate) async fn receiver() -> (String, Arc<Mutex<Vec<(String, Received)>>>) {
    let got: Arc<Mutex<Vec<(String, Received)>>> = Arc::default();
    let record = |path: &'static str, got: Arc<Mutex<Vec<(String, Received)>>>| {
        move |headers: HeaderMap, body: axum::body::Bytes| {
            let got = got.clone();
            async move {
                let h = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                let r = Received {
                    id: h("webhook-id"),
                    timestamp: h("webhook-timestamp").parse().unwrap_or(0),
                    signature: h("webhook-signature"),
                    body: body.to_vec(),
                };
                let mut got = got.lock().unwrap();
                got.push((path.to_owned(), r));
                let seen = got.iter().filter(|(p, _)| p == path).count();
                match path {
                    "/flaky" if seen <= 2 => StatusCode::SERVICE_UNAVAILABLE,
                    "/flaky" | "/ok" => StatusCode::OK,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                }
            }
        }
    };
    let app = axum::Router::new()
        .route("/flaky", axum::routing::post(record("/flaky", got.clone())))
        .route("/broken", axum::routing::post(record("/broken", got.clone())))
        .route("/ok", axum::routing::post(record("/ok", got.clone())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, got)
}

const ENDPOINTS: &str = "query { webhookEndpoints { id url enabled deliveries { status attempts responseStatus lastError nextAttemptAt deliveredAt } } }";

async fn a_finished_job_is_notified_in_the_app_by_email_and_by_webhook_on(engines: Engines) {
    let smtp = SmtpServer::start().await;
    let (base, received) = receiver().await;
    let mut config = TestApp::config(engines).await;
    config.smtp.url = Some(ioto::config::SecretUrl::new(format!(
        "smtp://127.0.0.1:{}",
        smtp.port
    )));
    config.smtp.from = "Ioto Test <ioto@example.org>".into();
    config.notifications.allow_loopback_http = true;
    config.notifications.poll_ms = 100;
    config.notifications.retry_base_ms = 200;
    config.notifications.max_attempts = 3;
    let app = TestApp::spawn_with(config).await;
    let f = &app.factory;
    let tenant = f.tenant("Notified").await;
    let admin = f.user(&tenant, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let fx = Fixture { app, tenant, token };
    let f = &fx.app.factory;
    let operator = f.user(&fx.tenant, Role::Operator, None).await;
    let operator = fx.app.login(operator.email.as_str(), TEST_PASSWORD).await;
    let other = f.tenant("Not Notified").await;
    let stranger = f.user(&other, Role::TenantAdmin, None).await;
    let stranger = fx.app.login(stranger.email.as_str(), TEST_PASSWORD).await;

    // Endpoints: https only (http to loopback where allowed), no private addresses, admins only.
    let create = "mutation($url: String!) { createWebhookEndpoint(input: {url: $url, description: \"ERP\"}) { endpoint { id url enabled } secret } }";
    for (url, why) in [
        ("http://hooks.example.com/x", "must be https"),
        ("https://10.0.0.7/x", "private or reserved"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("ftp://hooks.example.com/x", "scheme"),
    ] {
        let body = fx.gql(create, json!({"url": url})).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{url}: {body}"
        );
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("url") && message.contains(why), "{url}: {body}");
    }
    let body = fx
        .app
        .gql(Some(&operator), create, json!({"url": format!("{base}/flaky")}))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let flaky = fx
        .ok(
            create,
            json!({"url": format!("{base}/flaky")}),
            "createWebhookEndpoint",
        )
        .await;
    let secret = flaky["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{flaky}");
    let broken = fx
        .ok(
            create,
            json!({"url": format!("{base}/broken")}),
            "createWebhookEndpoint",
        )
        .await;
    // Another tenant sees none of them and cannot touch them.
    let theirs = fx.app.gql(Some(&stranger), ENDPOINTS, json!({})).await;
    assert_eq!(theirs["data"]["webhookEndpoints"], json!([]), "{theirs}");
    let body = fx
        .app
        .gql(
            Some(&stranger),
            "mutation($id: ID!) { setWebhookEndpointEnabled(id: $id, enabled: false) { id } }",
            json!({"id": broken["endpoint"]["id"]}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");

    let mut ws = crate::http::ws_subscribe(
        &fx.app,
        &fx.token,
        "subscription { notifications { kind title body subjectId bulkJob { status } } }",
    )
    .await;

    // A job runs to its end.
    let sims = f.sims(&fx.tenant, None, 2).await;
    let file = format!("ICCID\n{}\n{}\n", sims[0].iccid, sims[1].iccid);
    let out = upload(
        &fx.app,
        &fx.token,
        "pause.csv",
        file.into_bytes(),
        json!({"action": "SUSPEND"}),
    )
    .await;
    let id = out["data"]["submitBulkJob"]["job"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    fx.ok(
        "mutation($id: ID!) { confirmBulkJob(id: $id) { status } }",
        json!({"id": id}),
        "confirmBulkJob",
    )
    .await;
    wait_final(&fx, &id).await;

    // In the app: pushed to the subscriber, listed, unread until marked.
    let pushed = crate::http::ws_next(&mut ws).await.expect("a notification");
    let n = &pushed["payload"]["data"]["notifications"];
    assert_eq!(n["kind"], "BULK_JOB_FINISHED", "{pushed}");
    assert_eq!(n["title"], "Bulk job 'pause.csv' completed", "{pushed}");
    assert_eq!(n["subjectId"], id.as_str());
    assert_eq!(n["bulkJob"]["status"], "COMPLETED");
    assert_eq!(n["body"], "All 2 SIMs were suspended.", "{n}");
    let _ = ws.send(Message::Close(None)).await;
    let list = "query { notifications(first: 5) { unreadCount nodes { id subjectId readAt personal } } }";
    let mine = fx.ok(list, json!({}), "notifications").await;
    assert_eq!(mine["unreadCount"], 1, "{mine}");
    assert_eq!(mine["nodes"][0]["subjectId"], id.as_str());
    assert_eq!(mine["nodes"][0]["personal"], true);
    assert!(mine["nodes"][0]["readAt"].is_null());
    // It was for the admin who ran the job: not for another user, nor another tenant.
    for token in [&operator, &stranger] {
        let theirs = fx.app.gql(Some(token), list, json!({})).await;
        assert_eq!(theirs["data"]["notifications"]["nodes"], json!([]), "{theirs}");
        let marked = fx
            .app
            .gql(
                Some(token),
                "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }",
                json!({"ids": [mine["nodes"][0]["id"]]}),
            )
            .await;
        assert_eq!(marked["data"]["markNotificationsRead"], 0, "{marked}");
    }
    let marked = fx
        .ok(
            "mutation { markNotificationsRead }",
            json!({}),
            "markNotificationsRead",
        )
        .await;
    assert_eq!(marked, 1);
    let mine = fx.ok(list, json!({}), "notifications").await;
    assert_eq!(mine["unreadCount"], 0, "{mine}");
    assert!(mine["nodes"][0]["readAt"].is_string(), "{mine}");

    // Webhooks: the flaky endpoint gets it on the third attempt, the broken one is given up
    // after three; the deliveries say so.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let endpoints = loop {
        let endpoints = fx.ok(ENDPOINTS, json!({}), "webhookEndpoints").await;
        let settled = endpoints
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["deliveries"][0]["status"] != "PENDING" && !e["deliveries"][0].is_null());
        if settled {
            break endpoints;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries still pending after 20 s: {endpoints}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let delivery = |url: &str| {
        endpoints
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"].as_str().unwrap().ends_with(url))
            .unwrap()["deliveries"][0]
            .clone()
    };
    let ok = delivery("/flaky");
    assert_eq!(
        (
            ok["status"].as_str(),
            ok["attempts"].as_i64(),
            ok["responseStatus"].as_i64()
        ),
        (Some("DELIVERED"), Some(3), Some(200)),
        "{ok}"
    );
    assert!(ok["deliveredAt"].is_string());
    let gone = delivery("/broken");
    assert_eq!(
        (
            gone["status"].as_str(),
            gone["attempts"].as_i64(),
            gone["responseStatus"].as_i64()
        ),
        (Some("FAILED"), Some(3), Some(500)),
        "{gone}"
    );
    assert!(gone["lastError"].as_str().unwrap().contains("500"), "{gone}");
    assert!(gone["nextAttemptAt"].is_null());

    let got = received.lock().unwrap().clone();
    let flaky_calls: Vec<&Received> = got
        .iter()
        .filter(|(p, _)| p == "/flaky")
        .map(|(_, r)| r)
        .collect();
    assert_eq!(flaky_calls.len(), 3, "{got:?}");
    assert_eq!(got.iter().filter(|(p, _)| p == "/broken").count(), 3);
    // Every attempt: the same id (receivers drop duplicates by it), a fresh timestamp, a valid
    // signature over id, timestamp and body; the body the same bytes each time.
    let now = chrono::Utc::now().timestamp();
    for r in &flaky_calls {
        assert_eq!(r.id, flaky_calls[0].id);
        assert_eq!(r.body, flaky_calls[0].body);
        assert!((now - r.timestamp).abs() < 120, "timestamp {}", r.timestamp);
        let expected = ioto_domain::notify::sign_webhook(&secret, &r.id, r.timestamp, &r.body).unwrap();
        assert_eq!(r.signature, expected);
        let tampered = ioto_domain::notify::sign_webhook(&secret, &r.id, r.timestamp + 1, &r.body).unwrap();
        assert_ne!(r.signature, tampered);
    }
    let body: Value = serde_json::from_slice(&flaky_calls[0].body).unwrap();
    assert_eq!(body["type"], "bulk_job.finished", "{body}");
    assert_eq!(body["data"]["bulkJob"]["id"], id.as_str());
    assert_eq!(body["data"]["bulkJob"]["status"], "COMPLETED");
    assert_eq!(body["data"]["bulkJob"]["succeeded"], 2);

    // E-mail: one message to the admin, through the SMTP server.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mail = loop {
        if let Some(m) = smtp.messages().into_iter().next() {
            break m;
        }
        assert!(tokio::time::Instant::now() < deadline, "no e-mail within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(smtp.messages().len(), 1);
    assert!(mail.contains(&format!("To: {}", admin.email.as_str())), "{mail}");
    assert!(
        mail.contains("From: \"Ioto Test\" <ioto@example.org>")
            || mail.contains("From: Ioto Test <ioto@example.org>"),
        "{mail}"
    );
    assert!(mail.contains("Subject: Bulk job 'pause.csv' completed"), "{mail}");
    assert!(mail.contains(&format!("Job: {id}")), "{mail}");
    assert!(mail.contains("succeeded 2, failed 0"), "{mail}");

    // A provisioning call answered with every outcome is not notified (its caller has them).
    let provisioned = fx
        .ok(
            "mutation($i: [String!]!) { provisionSims(iccids: $i, action: RESUME) { completed } }",
            json!({"i": [sims[0].iccid.to_string()]}),
            "provisionSims",
        )
        .await;
    assert_eq!(provisioned["completed"], true, "{provisioned}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mine = fx.ok(list, json!({}), "notifications").await;
    assert_eq!(mine["nodes"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(smtp.messages().len(), 1);

    // Disabling an endpoint keeps new notifications from it; removing it removes its deliveries.
    let off = fx
        .ok(
            "mutation($id: ID!) { setWebhookEndpointEnabled(id: $id, enabled: false) { enabled } }",
            json!({"id": flaky["endpoint"]["id"]}),
            "setWebhookEndpointEnabled",
        )
        .await;
    assert_eq!(off["enabled"], false);
    fx.ok(
        "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }",
        json!({"id": broken["endpoint"]["id"]}),
        "deleteWebhookEndpoint",
    )
    .await;
    let left = fx.ok(ENDPOINTS, json!({}), "webhookEndpoints").await;
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left[0]["enabled"], false);

    // At most ten endpoints per tenant; the eleventh is refused naming the limit.
    for i in 0..9 {
        fx.ok(
            create,
            json!({"url": format!("https://hooks{i}.example.com/ioto")}),
            "createWebhookEndpoint",
        )
        .await;
    }
    let body = fx
        .gql(create, json!({"url": "https://hooks10.example.com/ioto"}))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("10 webhook endpoints"),
        "{body}"
    );

    // Hostile arguments are refused naming the field, and change nothing.
    let hostile = [
        (
            "mutation { createWebhookEndpoint(input: {url: \"https://a.example.com/\", description: \"line\\nbreak\"}) { secret } }",
            "description",
        ),
        ("mutation { markNotificationsRead(ids: [\"../etc/passwd\"]) }", "ids"),
        ("mutation { setWebhookEndpointEnabled(id: \"1; DROP TABLE x\", enabled: true) { id } }", "id"),
        ("mutation { deleteWebhookEndpoint(id: \"\") }", "id"),
        ("query { notifications(first: 0) { unreadCount } }", "first"),
        ("query { notifications(first: 1001) { unreadCount } }", "first"),
        ("query { notifications(after: \"' OR 1=1 --\") { unreadCount } }", "after"),
        ("query { webhookEndpoints { deliveries(first: 0) { status } } }", "first"),
        ("query { webhookEndpoints { deliveries(first: 101) { status } } }", "first"),
    ];
    for (query, field) in hostile {
        let body = fx.gql(query, json!({})).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{query}: {body}"
        );
        assert!(
            body["errors"][0]["message"].as_str().unwrap().starts_with(field),
            "{query}: {body}"
        );
    }
    let long = "x".repeat(201);
    let body = fx
        .gql(
            "mutation($d: String!) { createWebhookEndpoint(input: {url: \"https://a.example.com/\", description: $d}) { secret } }",
            json!({"d": long}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 200"),
        "{body}"
    );
    let left = fx.ok(ENDPOINTS, json!({}), "webhookEndpoints").await;
    assert_eq!(left.as_array().unwrap().len(), 10, "{left}");
    fx.app.stop().await;
}

#[tokio::test]
async fn a_finished_job_is_notified_in_the_app_by_email_and_by_webhook() {
    a_finished_job_is_notified_in_the_app_by_email_and_by_webhook_on(Engines::Real).await;
}

#[tokio::test]
async fn a_finished_job_is_notified_in_the_app_by_email_and_by_webhook_embedded() {
    a_finished_job_is_notified_in_the_app_by_email_and_by_webhook_on(Engines::Embedded).await;
}
