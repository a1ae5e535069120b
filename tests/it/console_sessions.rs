//! The console's session in a real browser: an access token the server refuses (expired, say)
//! is replaced through the session's refresh token without the person noticing, and signing out
//! ends the session on the server, so its refresh token is refused afterwards.

use std::time::Duration;

use ioto_domain::Role;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp};
use serde_json::json;

use crate::console::{click, go, open, ready, sign_in, until, DESKTOP};

#[tokio::test]
async fn a_refused_token_is_refreshed_quietly_and_signing_out_ends_the_session() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let t = app.factory.tenant("Console sessions").await;
    let admin = app.factory.user(&t, Role::TenantAdmin, None).await;
    let base = format!("http://{}", app.addr);
    let b = open(DESKTOP, None).await;
    let c = &b.c;
    sign_in(c, &base, admin.email.as_str(), ioto_test_support::TEST_PASSWORD).await;
    let refresh = c
        .execute("return sessionStorage.getItem('ioto.refresh');", vec![])
        .await
        .unwrap();
    let refresh = refresh
        .as_str()
        .expect("the refresh token is kept for the tab")
        .to_owned();
    assert!(refresh.starts_with("iotr_"), "{refresh}");

    // The server refuses the access token: the console refreshes and the page draws.
    c.execute("sessionStorage.setItem('ioto.token', 'no-longer-valid');", vec![])
        .await
        .unwrap();
    go(c, &base, "/api-keys").await;
    ready(c, "api-keys").await;
    let now = c
        .execute(
            "return [sessionStorage.getItem('ioto.token'), sessionStorage.getItem('ioto.refresh')];",
            vec![],
        )
        .await
        .unwrap();
    assert_ne!(now[0], "no-longer-valid", "a fresh access token");
    assert_ne!(now[1], json!(refresh), "the refresh token was rotated");
    let used = app
        .gql(
            None,
            "mutation($r: String!) { refreshSession(refreshToken: $r) { token } }",
            json!({ "r": refresh }),
        )
        .await;
    assert!(
        used["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("used twice"),
        "the first refresh token was used up: {used}"
    );
    // That replay ended the session: the console notices at its next request and signs out.
    go(c, &base, "/dashboard").await;
    until(
        c,
        "signed out after the session ended",
        "return !!document.querySelector('[data-testid=login]');",
        vec![],
        Duration::from_secs(15),
    )
    .await;

    // A new sign-in, then signing out: the server ends the session.
    sign_in(c, &base, admin.email.as_str(), ioto_test_support::TEST_PASSWORD).await;
    let refresh = c
        .execute("return sessionStorage.getItem('ioto.refresh');", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    click(c, "[data-testid=logout]").await;
    until(
        c,
        "the login form after signing out",
        "return !!document.querySelector('[data-testid=login]') && !sessionStorage.getItem('ioto.refresh');",
        vec![],
        Duration::from_secs(10),
    )
    .await;
    let body = app
        .gql(
            None,
            "mutation($r: String!) { refreshSession(refreshToken: $r) { token } }",
            json!({ "r": refresh }),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
    b.c.close().await.unwrap();
    app.stop().await;
}

/// The account page sets up an authenticator app (the key shown, the first code typed, the
/// recovery codes shown once), lists the sessions, and the next sign-in asks for a code.
#[tokio::test]
async fn a_second_factor_is_set_up_on_the_account_page_and_asked_for_at_sign_in() {
    use fantoccini::Locator;
    use ioto_domain::mfa::TotpSecret;
    let app = TestApp::spawn(Engines::Embedded).await;
    let t = app.factory.tenant("Console factors").await;
    let u = app.factory.user(&t, Role::Viewer, None).await;
    let base = format!("http://{}", app.addr);
    let b = open(DESKTOP, None).await;
    let c = &b.c;
    sign_in(c, &base, u.email.as_str(), ioto_test_support::TEST_PASSWORD).await;
    go(c, &base, "/account").await;
    ready(c, "account").await;
    let sessions = crate::console::text_of(c, "[data-testid=sessions]").await;
    assert!(
        sessions.contains("(this browser)") && sessions.contains("Chrome"),
        "{sessions}"
    );
    click(c, "[data-testid=totp-start]").await;
    let secret = until(
        c,
        "the key shown",
        "const e = document.querySelector('[data-testid=totp-secret]'); return e && e.innerText;",
        vec![],
        Duration::from_secs(10),
    )
    .await
    .as_str()
    .unwrap()
    .replace(' ', "");
    let link = crate::console::attr(c, "[data-testid=totp-link]", "href")
        .await
        .unwrap();
    assert!(
        link.starts_with("otpauth://totp/Ioto:") && link.contains(&secret),
        "{link}"
    );
    let totp = TotpSecret::from_base32(&secret).unwrap();
    c.find(Locator::Css("[data-testid=totp-code]"))
        .await
        .unwrap()
        .send_keys(&totp.code_at(chrono::Utc::now()))
        .await
        .unwrap();
    click(c, "[data-testid=totp-confirm]").await;
    let codes = until(
        c,
        "the recovery codes shown",
        "const e = document.querySelectorAll('[data-testid=recovery-codes] li'); return e.length || null;",
        vec![],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(codes, 10);
    crate::browser::screenshot(c, "console-account-recovery-codes.png").await;

    // Signed out, the next sign-in asks for the app's code.
    click(c, "[data-testid=logout]").await;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=login] input[name=email]"))
        .await
        .unwrap()
        .send_keys(u.email.as_str())
        .await
        .unwrap();
    c.find(Locator::Css("[data-testid=login] input[name=password]"))
        .await
        .unwrap()
        .send_keys(&format!("{}\u{e007}", ioto_test_support::TEST_PASSWORD))
        .await
        .unwrap();
    let code = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=mfa-code]"))
        .await
        .expect("the sign-in asks for a code");
    crate::browser::screenshot(c, "console-sign-in-code.png").await;
    // A mistyped code says so and the step stays, to type it again.
    code.send_keys("000000\u{e007}").await.unwrap();
    until(
        c,
        "the wrong code named",
        "const e = document.querySelector('[data-testid=mfa-step] .error'); return e && e.innerText.includes('wrong');",
        vec![],
        Duration::from_secs(10),
    )
    .await;
    let code = c
        .find(Locator::Css("[data-testid=mfa-code]"))
        .await
        .expect("still asking for a code");
    // The code of the next step (the set-up used this one's).
    let next = totp.code_at(chrono::Utc::now() + chrono::Duration::seconds(30));
    code.send_keys(&format!("{next}\u{e007}")).await.unwrap();
    until(
        c,
        "signed in with the code",
        "return !!document.querySelector('[data-testid=nav]');",
        vec![],
        Duration::from_secs(15),
    )
    .await;
    b.c.close().await.unwrap();
    app.stop().await;
}
