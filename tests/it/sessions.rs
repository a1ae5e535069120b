//! Sign-in sessions through the API: a login's short-lived token and its refresh token, rotated
//! on every refresh; a replayed refresh token ends the session for both holders; logging out of
//! one session or of all; ending another session; a password change ending the other sessions.

use ioto_domain::Role;
use ioto_test_support::app::{assert_refused, error_code};
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) {
    token expiresAt refreshToken session { id current expiresAt } } }";
const REFRESH: &str = "mutation($r: String!) { refreshSession(refreshToken: $r) {
    token expiresAt refreshToken session { id } user { role } } }";
const ME: &str = "{ me { role } }";

async fn login(app: &TestApp, email: &str) -> (String, String, String) {
    let body = app
        .gql(None, LOGIN, json!({ "e": email, "p": TEST_PASSWORD }))
        .await;
    let l = &body["data"]["login"];
    (
        l["token"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned(),
        l["refreshToken"].as_str().unwrap().to_owned(),
        l["session"]["id"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(app: &TestApp, token: &str) -> Value {
    app.gql(None, REFRESH, json!({ "r": token })).await
}

fn message(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn refused(app: &TestApp, token: &str) -> String {
    let (status, body) = app.gql_status(Some(token), ME, json!({})).await;
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (401, Some("UNAUTHENTICATED")),
        "{body}"
    );
    message(&body)
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replay_ends_the_session() {
    let mut config = TestApp::config(Engines::Real).await;
    config.auth.session_check_seconds = 60;
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Rotation").await;
    let u = app.factory.user(&t, Role::Operator, None).await;

    let body = app
        .gql(None, LOGIN, json!({ "e": u.email.as_str(), "p": TEST_PASSWORD }))
        .await;
    let l = &body["data"]["login"];
    assert!(l["refreshToken"].as_str().unwrap().starts_with("iotr_"), "{body}");
    assert_eq!(l["session"]["current"], true);
    // The access token is short-lived (15 minutes by default), the session long.
    let expires: chrono::DateTime<chrono::Utc> = l["expiresAt"].as_str().unwrap().parse().unwrap();
    let left = expires - chrono::Utc::now();
    assert!(
        left <= chrono::Duration::minutes(15) && left > chrono::Duration::minutes(13),
        "{left}"
    );
    let (first_token, first_refresh, session) = (
        l["token"].as_str().unwrap().to_owned(),
        l["refreshToken"].as_str().unwrap().to_owned(),
        l["session"]["id"].as_str().unwrap().to_owned(),
    );

    let body = refresh(&app, &first_refresh).await;
    let r = &body["data"]["refreshSession"];
    let (second_token, second_refresh) = (
        r["token"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned(),
        r["refreshToken"].as_str().unwrap().to_owned(),
    );
    assert_ne!(second_refresh, first_refresh, "rotated");
    assert_eq!(r["session"]["id"], json!(session), "the same session goes on");
    assert_eq!(r["user"]["role"], "OPERATOR");
    for token in [&first_token, &second_token] {
        assert_eq!(
            app.gql(Some(token), ME, json!({})).await["data"]["me"]["role"],
            "OPERATOR"
        );
    }

    // The first refresh token again (a copy in other hands): refused, and the session ends —
    // its latest refresh token and its access tokens are refused too, at once on this
    // instance although confirmations are kept a minute here.
    let body = refresh(&app, &first_refresh).await;
    assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
    assert!(message(&body).contains("used twice"), "{body}");
    let body = refresh(&app, &second_refresh).await;
    assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
    assert!(message(&body).contains("used twice"), "{body}");
    assert!(refused(&app, &second_token).await.contains("ended"));

    // Bad input: a malformed token names the argument, an unknown one is refused plainly.
    let body = refresh(&app, "not-a-token").await;
    assert_refused(&body, "refreshToken", "is not a refresh token");
    let body = refresh(&app, ioto_domain::account::RefreshToken::generate().expose()).await;
    assert!(message(&body).contains("not known"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn logging_out_ends_this_session_or_all_and_a_password_change_ends_the_others() {
    let app = TestApp::spawn(Engines::Real).await;
    let t = app.factory.tenant("Sign out").await;
    let u = app.factory.user(&t, Role::Viewer, None).await;
    let other = app.factory.user(&t, Role::Viewer, None).await;
    let email = u.email.as_str();

    // Two browsers: each lists both sessions, each knows its own.
    let (laptop, laptop_refresh, laptop_id) = login(&app, email).await;
    let (phone, _, phone_id) = login(&app, email).await;
    let list = app
        .gql(
            Some(&laptop),
            "{ me { sessions { id current clientAddress userAgent createdAt } } }",
            json!({}),
        )
        .await;
    let sessions = list["data"]["me"]["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(sessions.len(), 2, "{list}");
    let mine: Vec<(&str, bool)> = sessions
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["current"].as_bool().unwrap()))
        .collect();
    assert!(
        mine.contains(&(laptop_id.as_str(), true)) && mine.contains(&(phone_id.as_str(), false)),
        "{list}"
    );
    assert!(
        sessions.iter().all(|s| s["clientAddress"] == "127.0.0.1"),
        "{list}"
    );

    // Someone else cannot end it; its owner can, from the laptop.
    let (stranger, _, _) = login(&app, other.email.as_str()).await;
    let end = "mutation($id: ID!) { endSession(id: $id) }";
    let body = app.gql(Some(&stranger), end, json!({ "id": phone_id })).await;
    assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
    let body = app.gql(Some(&laptop), end, json!({ "id": phone_id })).await;
    assert_eq!(body["data"]["endSession"], true, "{body}");
    assert!(refused(&app, &phone).await.contains("ended"));
    assert_eq!(
        app.gql(Some(&laptop), ME, json!({})).await["data"]["me"]["role"],
        "VIEWER"
    );

    // Logging out of the laptop: its token and refresh token stop working.
    let body = app.gql(Some(&laptop), "mutation { logout }", json!({})).await;
    assert_eq!(body["data"]["logout"], true, "{body}");
    assert!(refused(&app, &laptop).await.contains("signed out"));
    let body = refresh(&app, &laptop_refresh).await;
    assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");

    // Everywhere: three sessions, all of them end.
    let tokens = [
        login(&app, email).await,
        login(&app, email).await,
        login(&app, email).await,
    ];
    let body = app
        .gql(Some(&tokens[0].0), "mutation { logoutEverywhere }", json!({}))
        .await;
    assert_eq!(body["data"]["logoutEverywhere"], 3, "{body}");
    for (token, refresh_token, _) in &tokens {
        refused(&app, token).await;
        assert_eq!(
            error_code(&refresh(&app, refresh_token).await).as_deref(),
            Some("UNAUTHENTICATED")
        );
    }

    // A password change ends the other sessions; the changing one goes on by refreshing.
    let (here, here_refresh, _) = login(&app, email).await;
    let (there, there_refresh, _) = login(&app, email).await;
    let body = app
        .gql(
            Some(&here),
            "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
            json!({ "c": TEST_PASSWORD, "n": "a-brand-new-password-7" }),
        )
        .await;
    assert_eq!(body["data"]["changePassword"], true, "{body}");
    refused(&app, &there).await;
    assert_eq!(
        error_code(&refresh(&app, &there_refresh).await).as_deref(),
        Some("UNAUTHENTICATED")
    );
    let body = refresh(&app, &here_refresh).await;
    let fresh = body["data"]["refreshSession"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(
        app.gql(Some(fresh), ME, json!({})).await["data"]["me"]["role"],
        "VIEWER"
    );

    // Tokens without a session (an API key, an issued token) have nothing to sign out of.
    let admin = app.factory.user(&t, Role::TenantAdmin, None).await;
    let (admin_token, _, _) = login(&app, admin.email.as_str()).await;
    let key = app
        .gql(
            Some(&admin_token),
            "mutation { createApiKey(input: {name: \"svc\", role: VIEWER}) { secret } }",
            json!({}),
        )
        .await;
    let key = key["data"]["createApiKey"]["secret"].as_str().unwrap().to_owned();
    let body = app.gql(Some(&key), "mutation { logout }", json!({})).await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    assert!(message(&body).contains("no sign-in session"), "{body}");
    app.stop().await;
}

/// An open WebSocket is held to its sign-in session, not to the short-lived token it started
/// with: it goes on past the token's expiry while the session holds, and closes when the
/// session ends. A token without a session closes at its expiry.
#[tokio::test]
async fn a_websocket_outlives_its_token_while_the_session_holds() {
    use jsonwebtoken::{encode, EncodingKey, Header};
    let mut config = TestApp::config(Engines::Real).await;
    config.auth.session_check_seconds = 1;
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Long socket").await;
    let u = app.factory.user(&t, Role::TenantAdmin, None).await;
    let (token, _, session) = login(&app, u.email.as_str()).await;
    let soon = |sid: Option<&str>| {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "sub": u.id.to_string(), "uid": u.id.to_string(), "iss": "ioto", "aud": "ioto",
            "iat": now, "nbf": now, "exp": now + 2, "tid": t.id.to_string(), "role": "TENANT_ADMIN"
        });
        if let Some(sid) = sid {
            claims["ioto_sid"] = json!(sid);
        }
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(ioto_test_support::app::TEST_JWT_SECRET.as_bytes()),
        )
        .unwrap()
    };
    let query = "subscription { directoryEvents { change } }";
    let mut held = crate::http::ws_subscribe(&app, &soon(Some(&session)), query).await;
    let mut bare = crate::http::ws_subscribe(&app, &soon(None), query).await;
    // Past the tokens' expiry (2 s, and the 30 s leeway) and a few checks.
    tokio::time::sleep(std::time::Duration::from_secs(34)).await;
    let reason = crate::http::ws_close_reason(&mut bare).await;
    assert!(reason.contains("expired"), "{reason}");
    app.gql(
        Some(&token),
        "mutation { createCustomer(input: {name: \"Still heard\"}) { id } }",
        json!({}),
    )
    .await;
    let event = crate::http::ws_next(&mut held)
        .await
        .expect("the session's socket is open");
    assert_eq!(
        event["payload"]["data"]["directoryEvents"]["change"], "CUSTOMER_CREATED",
        "{event}"
    );
    // The session ends: so does its socket.
    let body = app.gql(Some(&token), "mutation { logout }", json!({})).await;
    assert_eq!(body["data"]["logout"], true, "{body}");
    let reason = crate::http::ws_close_reason(&mut held).await;
    assert!(reason.contains("signed out"), "{reason}");
    app.stop().await;
}
