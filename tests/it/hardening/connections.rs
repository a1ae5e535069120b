//! What a connection may cost the server before its caller is known: the token is checked
//! before a body is read, heads and bodies must arrive within their timeouts, connections are
//! capped, and a WebSocket must say who it is in time and open a bounded number of
//! subscriptions.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ioto_domain::Role;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::http::{ws_next, Ws};

/// Sends `head` (a request line and headers) and nothing more; the answer the server gives,
/// or `None` when none comes within `wait`.
async fn answer_to_head(app: &TestApp, head: &str, wait: Duration) -> Option<String> {
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(wait, conn.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        _ => None,
    }
}

/// An upload that announces 20 MB and sends none of it is answered at once when its token is
/// missing or wrong: the body is never waited for (before, the server read the whole body
/// first, then checked the token).
#[tokio::test]
async fn uploads_without_a_valid_token_are_refused_before_their_body_is_read() {
    let app = TestApp::spawn(Engines::Real).await;
    let heads = [
        "POST /bulk-jobs?action=SUSPEND&format=csv HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n",
        "POST /imports/sims?format=csv HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer not-a-token\r\nContent-Length: 60000000\r\n\r\n",
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=X\r\nContent-Length: 20000000\r\n\r\n",
    ];
    for head in heads {
        let answer = answer_to_head(&app, head, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no answer before the body: {head}"));
        assert!(answer.starts_with("HTTP/1.1 401"), "{head} -> {answer}");
    }
    app.stop().await;
}

/// A client that opens a connection and never finishes its request head is disconnected; one
/// that sends a body too slowly has its request fail.
#[tokio::test]
async fn slow_heads_and_slow_bodies_are_cut_off() {
    let mut config = TestApp::config(Engines::Embedded).await;
    config.http.header_read_timeout_seconds = 1;
    config.http.body_read_timeout_seconds = 1;
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Slow").await;
    let operator = app.factory.user(&t, Role::Operator, None).await;
    let token = app.login(operator.email.as_str(), TEST_PASSWORD).await;

    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(15), conn.read(&mut buf))
        .await
        .expect("the server closes a connection whose head never ends");
    let answer = String::from_utf8_lossy(&buf[..read.unwrap_or(0)]).into_owned();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    let head = format!(
        "POST /bulk-jobs?action=SUSPEND&format=csv HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\niccid\n"
    );
    let answer = answer_to_head(&app, &head, Duration::from_secs(15))
        .await
        .expect("a body that stops coming fails its request");
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    app.stop().await;
}

const GET_HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

/// A new connection sending `get`, kept open when it was answered 200; `None` when it was
/// closed or answered otherwise.
async fn served(addr: std::net::SocketAddr, get: &[u8]) -> Option<TcpStream> {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(get).await.ok()?;
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .expect("an answer or a close within 10 s")
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .starts_with("HTTP/1.1 200")
        .then_some(c)
}

/// At the cap, a new connection waits until one closes.
#[tokio::test]
async fn connections_past_the_cap_wait_for_one_to_close() {
    let mut config = TestApp::config(Engines::Embedded).await;
    config.http.max_connections = 2;
    let app = TestApp::spawn_with(config).await;
    let get = GET_HEALTH;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(served(app.addr, get).await.expect("within the cap"));
    }
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    third.write_all(get).await.unwrap();
    let mut buf = vec![0u8; 1024];
    assert!(
        tokio::time::timeout(Duration::from_secs(2), third.read(&mut buf))
            .await
            .is_err(),
        "the third connection is not served while two are open"
    );
    drop(held.pop());
    let n = tokio::time::timeout(Duration::from_secs(10), third.read(&mut buf))
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    app.stop().await;
}

async fn ws_open(app: &TestApp) -> Ws {
    let mut req = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// The close frame the server ends `ws` with: (code, reason).
async fn ws_closed(ws: &mut Ws) -> (u16, String) {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("no message in 30 s")
            .expect("the connection ended without a close frame")
            .unwrap();
        if let Message::Close(Some(frame)) = msg {
            return (frame.code.into(), frame.reason.to_string());
        }
    }
}

#[tokio::test]
async fn a_websocket_must_say_who_it_is_in_time_and_opens_a_bounded_number_of_subscriptions() {
    let mut config = TestApp::config(Engines::Embedded).await;
    config.graphql.ws_init_timeout_seconds = 1;
    config.graphql.max_subscriptions_per_connection = 2;
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Sockets").await;
    let viewer = app.factory.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(viewer.email.as_str(), TEST_PASSWORD).await;

    // No connection_init: closed with graphql-transport-ws's 4408.
    let mut silent = ws_open(&app).await;
    assert_eq!(
        ws_closed(&mut silent).await,
        (4408, "Connection initialisation timeout".to_owned())
    );

    // Two subscriptions at once; the third is refused, and allowed once one completes.
    let mut ws = ws_open(&app).await;
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}})
            .to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(ws_next(&mut ws).await.unwrap()["type"], "connection_ack");
    let subscribe = |id: &str| {
        Message::text(
            json!({"id": id, "type": "subscribe", "payload": {"query": "subscription { simStateChanged { iccid } }"}})
                .to_string(),
        )
    };
    for id in ["1", "2", "3"] {
        ws.send(subscribe(id)).await.unwrap();
    }
    // The three start at once: whichever comes third is refused.
    let refused = ws_next(&mut ws).await.unwrap();
    let refused_id = refused["id"].as_str().unwrap().to_owned();
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refused}"
    );
    assert!(
        refused["payload"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("2 subscriptions open"),
        "{refused}"
    );
    let open = if refused_id == "1" { "2" } else { "1" };
    ws.send(Message::text(json!({"id": open, "type": "complete"}).to_string()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.send(subscribe("4")).await.unwrap();
    // A message past the size limit ends the connection instead of being buffered.
    let huge = "x".repeat(app.config.graphql.body_limit_bytes + 1);
    ws.send(Message::text(huge)).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                    assert!(
                        v["payload"]["errors"].is_null(),
                        "subscription 4 is taken once {open} completed: {v}"
                    );
                }
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "an oversized message closes the connection");
    app.stop().await;
}

/// An upload costs its caller a point per 16 KiB before it is read: a caller whose budget
/// cannot pay for a 20 MB upload is told when to come back, without sending it.
#[tokio::test]
async fn uploads_are_charged_to_their_callers_rate_limit_before_they_are_read() {
    let mut config = TestApp::config(Engines::Embedded).await;
    config.rate_limit.caller_points_per_second = 100;
    config.graphql.max_complexity = 400;
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Uploads").await;
    let operator = app.factory.user(&t, Role::Operator, None).await;
    let token = app.login(operator.email.as_str(), TEST_PASSWORD).await;
    let head = format!(
        "POST /bulk-jobs?action=SUSPEND&format=csv HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 20000000\r\n\r\n"
    );
    // The first is charged in full (more than the bucket holds: it goes into debt) and waits
    // for its body, which never comes; the next finds the budget spent.
    assert!(answer_to_head(&app, &head, Duration::from_millis(500))
        .await
        .is_none());
    let answer = answer_to_head(&app, &head, Duration::from_secs(10))
        .await
        .expect("refused before the body");
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after:"), "{answer}");
    assert!(
        answer.contains("RATE_LIMITED") && answer.contains("this upload costs"),
        "{answer}"
    );
    app.stop().await;
}

/// One client address holds at most its share of connections: one more is closed at once, so
/// a single client cannot take the server's every connection; a trusted proxy, whose clients
/// all come through it, has no share of its own.
#[tokio::test]
async fn one_client_holds_at_most_its_share_of_connections() {
    let get = GET_HEALTH;
    for trusted in [false, true] {
        let mut config = TestApp::config(Engines::Embedded).await;
        config.http.max_connections_per_client = 2;
        if trusted {
            config.http.trusted_proxies = vec!["127.0.0.1".into()];
        }
        let app = TestApp::spawn_with(config).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(served(app.addr, get).await.expect("within the share"));
        }
        let third = served(app.addr, get).await;
        assert_eq!(
            third.is_some(),
            trusted,
            "a third connection (trusted proxy: {trusted})"
        );
        drop(held.pop());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(served(app.addr, get).await.is_some(), "served once one closed");
        app.stop().await;
    }
}
