//! Login, and strict token validation.

use chrono::Utc;
use ioto_domain::Role;
use ioto_test_support::app::{error_code, TEST_JWT_SECRET};
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

const ME: &str = "{ me { email role tenant { id name } } }";

#[tokio::test]
async fn login_works_and_wrong_password_fails() {
    let app = TestApp::spawn(Engines::Real).await;
    let t = app.factory.tenant("Login Co").await;
    let u = app.factory.user(&t, Role::Operator, None).await;

    let token = app.login(&u.email.as_str().to_uppercase(), TEST_PASSWORD).await;
    let me = app.gql(Some(&token), ME, json!({})).await;
    assert_eq!(me["data"]["me"]["email"], u.email.as_str());
    assert_eq!(me["data"]["me"]["role"], "OPERATOR");
    assert_eq!(me["data"]["me"]["tenant"]["id"], t.id.to_string());
    assert_eq!(me["data"]["me"]["tenant"]["name"], "Login Co");

    for (email, password) in [
        (u.email.as_str(), "wrong-password"),
        ("nobody@example.com", TEST_PASSWORD),
    ] {
        let body = app
            .gql(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                json!({"e": email, "p": password}),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        assert_eq!(
            body["errors"][0]["message"], "e-mail or password is wrong",
            "same answer for unknown users"
        );
    }
    // Without a token, data is refused.
    let anon = app.gql(None, ME, json!({})).await;
    assert_eq!(error_code(&anon).as_deref(), Some("UNAUTHENTICATED"));
    app.stop().await;
}

fn claims(tenant: &str, overrides: Value) -> Value {
    let now = Utc::now().timestamp();
    let mut c = json!({
        "sub": "test", "iss": "ioto", "aud": "ioto", "iat": now, "nbf": now, "exp": now + 600,
        "tid": tenant, "role": "TENANT_ADMIN"
    });
    for (k, v) in overrides.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn hs(alg: jsonwebtoken::Algorithm, secret: &str, claims: &Value) -> String {
    encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn b64(v: &Value) -> String {
    use std::fmt::Write;
    // base64url without padding, by hand to keep dependencies lean.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = serde_json::to_vec(v).unwrap();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.write_char(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char)
                .unwrap();
        }
    }
    out
}

#[tokio::test]
async fn bad_tokens_are_rejected_with_unauthenticated() {
    let app = TestApp::spawn(Engines::Real).await;
    let t = app.factory.tenant("Token Co").await;
    let tid = t.id.to_string();
    let now = Utc::now().timestamp();
    use jsonwebtoken::Algorithm::{HS256, HS384};

    let good = hs(HS256, TEST_JWT_SECRET, &claims(&tid, json!({})));
    let ok = app.gql(Some(&good), ME, json!({})).await;
    assert_eq!(
        ok["data"]["me"]["tenant"]["name"], "Token Co",
        "the well-formed token works: {ok}"
    );

    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(&tid, json!({})))
    );
    let cases = [
        ("alg none", none),
        (
            "wrong algorithm",
            hs(HS384, TEST_JWT_SECRET, &claims(&tid, json!({}))),
        ),
        (
            "wrong audience",
            hs(
                HS256,
                TEST_JWT_SECRET,
                &claims(&tid, json!({"aud": "someone-else"})),
            ),
        ),
        (
            "wrong issuer",
            hs(HS256, TEST_JWT_SECRET, &claims(&tid, json!({"iss": "evil"}))),
        ),
        (
            "expired",
            hs(
                HS256,
                TEST_JWT_SECRET,
                &claims(&tid, json!({"exp": now - 3600, "nbf": now - 7200})),
            ),
        ),
        (
            "not yet valid",
            hs(
                HS256,
                TEST_JWT_SECRET,
                &claims(&tid, json!({"nbf": now + 3600, "exp": now + 7200})),
            ),
        ),
        (
            "bad signature",
            hs(
                HS256,
                "another-secret-another-secret-another!",
                &claims(&tid, json!({})),
            ),
        ),
        (
            "no expiry",
            hs(HS256, TEST_JWT_SECRET, &{
                let mut c = claims(&tid, json!({}));
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
        ),
        (
            "customer user without customer",
            hs(
                HS256,
                TEST_JWT_SECRET,
                &claims(&tid, json!({"role": "CUSTOMER_USER"})),
            ),
        ),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (what, token) in cases {
        let (status, body) = app.gql_status(Some(&token), ME, json!({})).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(
            error_code(&body).as_deref(),
            Some("UNAUTHENTICATED"),
            "{what}: {body}"
        );
        assert!(body["data"]["me"].is_null(), "{what}");
    }
    app.stop().await;
}

#[tokio::test]
async fn repeated_wrong_passwords_are_rate_limited() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let t = app.factory.tenant("Brute").await;
    let u = app.factory.user(&t, Role::Viewer, None).await;
    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
    for _ in 0..10 {
        let body = app
            .gql(
                None,
                login,
                json!({"e": u.email.as_str(), "p": "guess-guess-guess"}),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
    }
    // Now even the right password is refused for this e-mail from this address for a while,
    // with a clear reason and when to come back (a delay that doubles with each failure; see
    // tests/it/hardening/logins.rs for the owner signing in from elsewhere meanwhile).
    let body = app
        .gql(None, login, json!({"e": u.email.as_str(), "p": TEST_PASSWORD}))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("for this e-mail from this address") && message.contains("try again in 1 second"),
        "{body}"
    );
    // Other users are unaffected.
    let other = app.factory.user(&t, Role::Viewer, None).await;
    app.login(other.email.as_str(), TEST_PASSWORD).await;
    app.stop().await;
}

#[tokio::test]
async fn demoted_or_deleted_users_lose_access_before_their_token_expires() {
    let mut config = TestApp::config(Engines::Real).await;
    config.auth.session_check_seconds = 0;
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Revoke").await;
    let boss = app.factory.user(&t, Role::TenantAdmin, None).await;
    let admin = app.factory.user(&t, Role::TenantAdmin, None).await;
    let boss_token = app.login(boss.email.as_str(), TEST_PASSWORD).await;
    let admin_token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let create = "mutation { createCustomer(input: {name: \"Before\"}) { id } }";
    assert!(app.gql(Some(&admin_token), create, json!({})).await["errors"].is_null());

    let demote = "mutation($id: ID!) { setUserRole(id: $id, role: VIEWER) { role } }";
    let body = app
        .gql(Some(&boss_token), demote, json!({"id": admin.id.to_string()}))
        .await;
    assert_eq!(body["data"]["setUserRole"]["role"], "VIEWER", "{body}");
    let (status, body) = app
        .gql_status(
            Some(&admin_token),
            "mutation { createCustomer(input: {name: \"After\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (401, Some("UNAUTHENTICATED")),
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("sign in again"),
        "{body}"
    );
    // A fresh login carries the new role.
    let viewer_token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    assert_eq!(
        app.gql(Some(&viewer_token), ME, json!({})).await["data"]["me"]["role"],
        "VIEWER"
    );

    let body = app
        .gql(
            Some(&boss_token),
            "mutation($id: ID!) { deleteUser(id: $id) }",
            json!({"id": admin.id.to_string()}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let (status, body) = app
        .gql_status(Some(&viewer_token), "{ customers { nodes { id } } }", json!({}))
        .await;
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (401, Some("UNAUTHENTICATED")),
        "{body}"
    );
    app.stop().await;
}

/// A WebSocket is checked for as long as it is open, not only at `connection_init`: once its user
/// is demoted, the server closes it (4401, with the reason), ending the subscription.
#[tokio::test]
async fn a_websocket_session_ends_when_its_user_is_demoted() {
    let mut config = TestApp::config(Engines::Real).await;
    config.auth.session_check_seconds = 1;
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Socket").await;
    let boss = app.factory.user(&t, Role::TenantAdmin, None).await;
    let admin = app.factory.user(&t, Role::TenantAdmin, None).await;
    let boss_token = app.login(boss.email.as_str(), TEST_PASSWORD).await;
    let admin_token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let mut ws = crate::http::ws_subscribe(
        &app,
        &admin_token,
        "subscription { directoryEvents { change entityId } }",
    )
    .await;
    // Still open and served after a few checks.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    app.gql(
        Some(&boss_token),
        "mutation { createCustomer(input: {name: \"Seen\"}) { id } }",
        json!({}),
    )
    .await;
    let event = crate::http::ws_next(&mut ws).await.expect("the event arrives");
    assert_eq!(
        event["payload"]["data"]["directoryEvents"]["change"], "CUSTOMER_CREATED",
        "{event}"
    );

    let demote = "mutation($id: ID!) { setUserRole(id: $id, role: VIEWER) { role } }";
    let body = app
        .gql(Some(&boss_token), demote, json!({"id": admin.id.to_string()}))
        .await;
    assert_eq!(body["data"]["setUserRole"]["role"], "VIEWER", "{body}");
    // Events already under way may still arrive; then the server closes the socket.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let frame = loop {
        let msg = tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut ws))
            .await
            .expect("the server closes the socket within 30 s")
            .expect("a close frame before the end")
            .unwrap();
        match msg {
            tokio_tungstenite::tungstenite::Message::Close(frame) => break frame.expect("with a reason"),
            _ => continue,
        }
    };
    assert_eq!(u16::from(frame.code), 4401, "{frame:?}");
    assert!(frame.reason.starts_with("UNAUTHENTICATED: "), "{frame:?}");
    app.stop().await;
}

/// A password change ends every token issued before it (a stolen token stops working once the
/// owner changes the password); a fresh login works.
#[tokio::test]
async fn a_password_change_ends_the_tokens_issued_before_it() {
    let mut config = TestApp::config(Engines::Real).await;
    config.auth.session_check_seconds = 0;
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Rotate").await;
    let user = app.factory.user(&t, Role::Operator, None).await;
    let old = app.login(user.email.as_str(), TEST_PASSWORD).await;
    let stolen = app.login(user.email.as_str(), TEST_PASSWORD).await;
    // Tokens carry whole seconds: let the change happen in a later second than their issue.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let change =
        "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
    let body = app
        .gql(
            Some(&old),
            change,
            json!({"c": TEST_PASSWORD, "n": "a-brand-new-password"}),
        )
        .await;
    assert_eq!(body["data"]["changePassword"], true, "{body}");
    for token in [&old, &stolen] {
        let (status, body) = app.gql_status(Some(token), ME, json!({})).await;
        assert_eq!(
            (status, error_code(&body).as_deref()),
            (401, Some("UNAUTHENTICATED")),
            "{body}"
        );
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("password has changed"),
            "{body}"
        );
    }
    let fresh = app.login(user.email.as_str(), "a-brand-new-password").await;
    assert_eq!(
        app.gql(Some(&fresh), ME, json!({})).await["data"]["me"]["role"],
        "OPERATOR"
    );
    app.stop().await;
}
