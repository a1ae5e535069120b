//! The second factor through the API: setting up an authenticator app, signing in with its code
//! (each good once) or a recovery code (each good once), a tenant that requires a factor (users
//! without one set it up while signing in), turning it off, and an administrator's reset.

use chrono::{Duration, Utc};
use ioto_domain::mfa::TotpSecret;
use ioto_domain::Role;
use ioto_test_support::app::{assert_refused, error_code};
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) {
    token refreshToken mfa { challenge enrol expiresAt } } }";
const VERIFY: &str =
    "mutation($c: String!, $code: String!) { verifyMfa(challenge: $c, code: $code) { token } }";
const START: &str = "mutation($c: String) { startTotpEnrolment(challenge: $c) { secret otpauthUri } }";
const CONFIRM: &str =
    "mutation($c: String, $code: String!) { confirmTotpEnrolment(challenge: $c, code: $code) {
    recoveryCodes login { token } } }";
const STATUS: &str = "{ me { mfa { enabled recoveryCodesLeft required } } }";

fn message(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn login(app: &TestApp, email: &str) -> Value {
    let body = app
        .gql(None, LOGIN, json!({ "e": email, "p": TEST_PASSWORD }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["login"].clone()
}

/// The code the app would show `ahead` steps from now.
fn code(secret: &str, ahead: i64) -> String {
    TotpSecret::from_base32(secret)
        .unwrap()
        .code_at(Utc::now() + Duration::seconds(30 * ahead))
}

#[tokio::test]
async fn a_second_factor_is_set_up_then_asked_for_and_each_code_works_once() {
    let app = TestApp::spawn(Engines::Real).await;
    let t = app.factory.tenant("Two factors").await;
    let u = app.factory.user(&t, Role::Operator, None).await;
    let email = u.email.as_str();
    let token = login(&app, email).await["token"].as_str().unwrap().to_owned();

    let body = app.gql(Some(&token), START, json!({})).await;
    let secret = body["data"]["startTotpEnrolment"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let uri = body["data"]["startTotpEnrolment"]["otpauthUri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Ioto:") && uri.contains(&secret),
        "{uri}"
    );
    // Not asked for until confirmed.
    assert!(login(&app, email).await["token"].is_string());
    // A wrong first code is refused naming the field.
    let wrong = if code(&secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let body = app.gql(Some(&token), CONFIRM, json!({ "code": wrong })).await;
    assert_refused(&body, "code", "clock");
    let body = app
        .gql(Some(&token), CONFIRM, json!({ "code": code(&secret, 0) }))
        .await;
    let recovery: Vec<String> =
        serde_json::from_value(body["data"]["confirmTotpEnrolment"]["recoveryCodes"].clone())
            .unwrap_or_else(|_| panic!("{body}"));
    assert_eq!(recovery.len(), 10);
    let status = app.gql(Some(&token), STATUS, json!({})).await;
    assert_eq!(
        status["data"]["me"]["mfa"],
        json!({ "enabled": true, "recoveryCodesLeft": 10, "required": false }),
        "{status}"
    );

    // Signing in now asks for a code: no token until it comes.
    let l = login(&app, email).await;
    assert!(l["token"].is_null() && l["refreshToken"].is_null(), "{l}");
    assert_eq!(l["mfa"]["enrol"], false);
    let challenge = l["mfa"]["challenge"].as_str().unwrap().to_owned();
    // A wrong code names the field and may be typed again.
    let body = app
        .gql(None, VERIFY, json!({ "c": challenge, "code": wrong }))
        .await;
    assert_refused(&body, "code", "wrong or was used already");
    // The code of the confirmation's step was used: the next step's code signs in (the app's
    // clock may run a step ahead), once.
    let next = code(&secret, 1);
    let body = app
        .gql(None, VERIFY, json!({ "c": challenge, "code": next }))
        .await;
    let signed_in = body["data"]["verifyMfa"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(
        app.gql(Some(signed_in), "{ me { role } }", json!({})).await["data"]["me"]["role"],
        "OPERATOR"
    );
    let body = app
        .gql(None, VERIFY, json!({ "c": challenge, "code": next }))
        .await;
    assert!(
        message(&body).contains("finished already"),
        "a challenge is good once: {body}"
    );
    let again = login(&app, email).await["mfa"]["challenge"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app.gql(None, VERIFY, json!({ "c": again, "code": next })).await;
    assert_refused(&body, "code", "used already");

    // A recovery code, typed in capitals without dashes, once.
    let typed = recovery[0].replace('-', "").to_uppercase();
    let body = app.gql(None, VERIFY, json!({ "c": again, "code": typed })).await;
    assert!(body["data"]["verifyMfa"]["token"].is_string(), "{body}");
    let third = login(&app, email).await["mfa"]["challenge"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app
        .gql(None, VERIFY, json!({ "c": third, "code": recovery[0] }))
        .await;
    assert_refused(&body, "code", "used already");
    assert_eq!(
        app.gql(Some(&token), STATUS, json!({})).await["data"]["me"]["mfa"]["recoveryCodesLeft"],
        9
    );

    // Bad input names the argument.
    assert_refused(
        &app.gql(None, VERIFY, json!({ "c": "nope", "code": "123456" }))
            .await,
        "challenge",
        "not a sign-in challenge",
    );
    assert_refused(
        &app.gql(None, VERIFY, json!({ "c": third, "code": "12ab" })).await,
        "code",
        "recovery codes",
    );

    // Five attempts spend a challenge; five wrong codes in a row lock the factor, whatever the
    // challenge (a password typed again does not undo it).
    for _ in 0..3 {
        app.gql(None, VERIFY, json!({ "c": third, "code": wrong })).await;
    }
    let body = app
        .gql(None, VERIFY, json!({ "c": third, "code": recovery[1] }))
        .await;
    assert!(
        message(&body).contains("too many wrong codes for this sign-in"),
        "{body}"
    );
    let fresh = login(&app, email).await["mfa"]["challenge"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app.gql(None, VERIFY, json!({ "c": fresh, "code": wrong })).await;
    assert_refused(&body, "code", "wrong");
    let fresh = login(&app, email).await["mfa"]["challenge"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app
        .gql(None, VERIFY, json!({ "c": fresh, "code": recovery[1] }))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    assert!(message(&body).contains("codes are checked again in"), "{body}");

    // An administrator's reset lifts it all; signing in no longer asks.
    let admin = app.factory.user(&t, Role::TenantAdmin, None).await;
    let admin_token = login(&app, admin.email.as_str()).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app
        .gql(
            Some(&admin_token),
            "mutation($u: ID!) { resetUserMfa(userId: $u) }",
            json!({ "u": u.id.to_string() }),
        )
        .await;
    assert_eq!(body["data"]["resetUserMfa"], true, "{body}");
    assert!(login(&app, email).await["token"].is_string());
    app.stop().await;
}

/// A factor turned off with a code: signing in asks for the password alone again.
#[tokio::test]
async fn a_second_factor_is_turned_off_with_a_code() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let t = app.factory.tenant("Off again").await;
    let u = app.factory.user(&t, Role::Viewer, None).await;
    let email = u.email.as_str();
    let token = login(&app, email).await["token"].as_str().unwrap().to_owned();
    let body = app.gql(Some(&token), START, json!({})).await;
    let secret = body["data"]["startTotpEnrolment"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app
        .gql(Some(&token), CONFIRM, json!({ "code": code(&secret, 0) }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert!(login(&app, email).await["token"].is_null());
    let body = app
        .gql(
            Some(&token),
            "mutation($c: String!) { renewRecoveryCodes(code: $c) }",
            json!({ "c": code(&secret, 1) }),
        )
        .await;
    let renewed: Vec<String> = serde_json::from_value(body["data"]["renewRecoveryCodes"].clone())
        .unwrap_or_else(|_| panic!("{body}"));
    assert_eq!(renewed.len(), 10);
    let body = app
        .gql(
            Some(&token),
            "mutation($c: String!) { disableTotp(code: $c) }",
            json!({ "c": renewed[0] }),
        )
        .await;
    assert_eq!(body["data"]["disableTotp"], true, "{body}");
    assert!(login(&app, email).await["token"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_that_requires_a_second_factor_has_it_set_up_while_signing_in() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let t = app.factory.tenant("Strict").await;
    let admin = app.factory.user(&t, Role::TenantAdmin, None).await;
    let u = app.factory.user(&t, Role::Viewer, None).await;
    let admin_token = login(&app, admin.email.as_str()).await["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // An API key may not relax or tighten it; an administrator may.
    let key = app
        .gql(
            Some(&admin_token),
            "mutation { createApiKey(input: {name: \"ops\", role: TENANT_ADMIN}) { secret } }",
            json!({}),
        )
        .await["data"]["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let require = "mutation { setFleetSettings(requireMfa: true) { requireMfa } }";
    let body = app.gql(Some(&key), require, json!({})).await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let body = app.gql(Some(&admin_token), require, json!({})).await;
    assert_eq!(body["data"]["setFleetSettings"]["requireMfa"], true, "{body}");

    // The viewer has no factor: the sign-in sets one up, then finishes.
    let l = login(&app, u.email.as_str()).await;
    assert!(l["token"].is_null(), "{l}");
    assert_eq!(l["mfa"]["enrol"], true);
    let challenge = l["mfa"]["challenge"].as_str().unwrap().to_owned();
    let body = app
        .gql(None, VERIFY, json!({ "c": challenge, "code": "123456" }))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    let body = app.gql(None, START, json!({ "c": challenge })).await;
    let secret = body["data"]["startTotpEnrolment"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let body = app
        .gql(None, CONFIRM, json!({ "c": challenge, "code": code(&secret, 0) }))
        .await;
    let token = body["data"]["confirmTotpEnrolment"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let status = app.gql(Some(&token), STATUS, json!({})).await;
    assert_eq!(
        status["data"]["me"]["mfa"],
        json!({ "enabled": true, "recoveryCodesLeft": 10, "required": true }),
        "{status}"
    );
    // Required: it cannot be turned off, only reset by an administrator.
    let body = app
        .gql(
            Some(&token),
            "mutation($c: String!) { disableTotp(code: $c) }",
            json!({ "c": code(&secret, 1) }),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let body = app
        .gql(
            Some(&admin_token),
            "mutation($u: ID!) { resetUserMfa(userId: $u) }",
            json!({ "u": u.id.to_string() }),
        )
        .await;
    assert_eq!(body["data"]["resetUserMfa"], true, "{body}");
    let (status, body) = app.gql_status(Some(&token), "{ me { role } }", json!({})).await;
    assert_eq!(status, 401, "the reset ends the user's sessions: {body}");
    assert!(message(&body).contains("reset your second factor"), "{body}");
    assert_eq!(
        login(&app, u.email.as_str()).await["mfa"]["enrol"],
        true,
        "set up again"
    );
    app.stop().await;
}
