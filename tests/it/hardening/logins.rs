//! Password checks that cannot be raced, delays that a stranger cannot turn into a lockout, the
//! client's address from trusted proxies only, and `changePassword` within the same throttle.

use ioto_domain::Role;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";

async fn login_from(app: &TestApp, email: &str, password: &str, client: &str) -> Value {
    let body = json!({"query": LOGIN, "variables": {"e": email, "p": password}});
    app.graphql_request(None, &[("x-forwarded-for", client)], body)
        .await
        .1
}

/// 300 wrong passwords at once for one e-mail: the throttle takes its slot before the hash, so
/// only a few are checked at all (before, 72 of 300 were checked against a limit of 10).
#[tokio::test]
async fn a_burst_of_concurrent_guesses_is_checked_a_few_at_a_time() {
    let app = TestApp::spawn(Engines::Real).await;
    let t = app.factory.tenant("Burst").await;
    let u = app.factory.user(&t, Role::Viewer, None).await;
    let email = u.email.as_str().to_owned();
    let guesses = (0..300).map(|n| {
        let (app, email) = (&app, email.clone());
        async move {
            let body = app
                .gql(
                    None,
                    LOGIN,
                    json!({"e": email, "p": format!("guess-{n}-guess-guess")}),
                )
                .await;
            error_code(&body)
        }
    });
    let codes = futures::future::join_all(guesses).await;
    let checked = codes
        .iter()
        .filter(|c| c.as_deref() == Some("UNAUTHENTICATED"))
        .count();
    let throttled = codes
        .iter()
        .filter(|c| c.as_deref() == Some("RATE_LIMITED"))
        .count();
    assert_eq!(checked + throttled, 300, "{codes:?}");
    assert!(checked <= 10, "{checked} of 300 concurrent guesses were checked");
    app.stop().await;
}

/// Failures slow down the address they come from, for that e-mail; the owner signing in from
/// elsewhere is not held up, and `X-Forwarded-For` counts only from a trusted proxy.
#[tokio::test]
async fn wrong_passwords_delay_their_own_address_and_lock_out_nobody() {
    let mut config = TestApp::config(Engines::Real).await;
    config.http.trusted_proxies = vec!["127.0.0.1".into()];
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Delays").await;
    let admin = app.factory.user(&t, Role::TenantAdmin, None).await;
    let email = admin.email.as_str();
    for n in 0..10 {
        let body = login_from(&app, email, &format!("wrong-{n}-wrong-wrong"), "198.51.100.7").await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
    }
    // The eleventh attempt from there waits, with the reason and how long.
    let body = login_from(&app, email, TEST_PASSWORD, "198.51.100.7").await;
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("for this e-mail from this address") && message.contains("try again in 1 second"),
        "{body}"
    );
    // The owner, elsewhere, signs in.
    let body = login_from(&app, email, TEST_PASSWORD, "203.0.113.20").await;
    assert!(body["data"]["login"]["token"].is_string(), "{body}");
    // A forged header from an untrusted proxy hop counts as the proxy's own client: the
    // right-most untrusted address is the client, whatever is written to its left.
    let body = login_from(&app, email, TEST_PASSWORD, "203.0.113.20, 198.51.100.7").await;
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    // After the wait, the right password from the delayed address works and clears the pair.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let body = login_from(&app, email, TEST_PASSWORD, "198.51.100.7").await;
    assert!(body["data"]["login"]["token"].is_string(), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn change_password_checks_the_current_one_within_the_same_throttle() {
    let app = TestApp::spawn(Engines::Real).await;
    let t = app.factory.tenant("Changes").await;
    let u = app.factory.user(&t, Role::Viewer, None).await;
    let token = app.login(u.email.as_str(), TEST_PASSWORD).await;
    let change =
        "mutation($c: String!) { changePassword(currentPassword: $c, newPassword: \"a-new-long-password\") }";
    let mut codes = Vec::new();
    for n in 0..12 {
        let body = app
            .gql(Some(&token), change, json!({"c": format!("not-it-{n}-not-it")}))
            .await;
        codes.push(error_code(&body).unwrap_or_default());
    }
    assert_eq!(codes[0], "BAD_USER_INPUT", "{codes:?}");
    assert_eq!(
        codes.last().map(String::as_str),
        Some("RATE_LIMITED"),
        "{codes:?}"
    );
    // The delay holds for signing in from the same place too: one throttle.
    let body = app
        .gql(None, LOGIN, json!({"e": u.email.as_str(), "p": TEST_PASSWORD}))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    app.stop().await;
}
