//! The API keys page in a real browser: a tenant administrator makes a key (shown once, with a
//! copy button), the key works against the API, the list names who made it and when it was last
//! used, rolling shows the new key and marks the old one, and revoking stops the key. On a phone
//! nothing is wider than the screen. Screenshots under the target directory's `tmp/browser/`.

use std::time::Duration;

use ioto_domain::Role;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::json;

use crate::browser::screenshot;
use crate::console::{click, go, open, overflows, ready, sign_in, text_of, until, DESKTOP, PHONE};

#[tokio::test]
async fn a_tenant_admin_makes_rolls_and_revokes_an_api_key() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let f = &app.factory;
    let t = f.tenant("Keys in the console").await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let base = format!("http://{}", app.addr);
    let b = open(DESKTOP, None).await;
    let c = &b.c;
    sign_in(c, &base, admin.email.as_str(), TEST_PASSWORD).await;
    go(c, &base, "/api-keys").await;
    ready(c, "api-keys").await;
    assert!(text_of(c, "main").await.contains("No API key yet."));

    // A name is needed: the page says so before asking the API.
    click(c, "[data-testid=api-key-create]").await;
    until(
        c,
        "the missing name named",
        "const e = document.querySelector('main .error'); return e && e.innerText.includes('Name:');",
        vec![],
        Duration::from_secs(10),
    )
    .await;

    c.find(fantoccini::Locator::Css("[data-testid=api-key-name]"))
        .await
        .unwrap()
        .send_keys("ERP sync")
        .await
        .unwrap();
    c.execute(
        "const s = document.querySelector('[data-testid=api-key-role]'); s.value = 'OPERATOR'; s.dispatchEvent(new Event('change'));",
        vec![],
    )
    .await
    .unwrap();
    click(c, "[data-testid=api-key-create]").await;
    let secret = until(
        c,
        "the new key shown",
        "const e = document.querySelector('[data-testid=api-key-secret]'); return e && e.value;",
        vec![],
        Duration::from_secs(10),
    )
    .await
    .as_str()
    .unwrap()
    .to_owned();
    assert!(secret.starts_with("ioto_"), "{secret}");
    screenshot(c, "console-api-key-created.png").await;

    // The key works, and its use shows in the list with the address, in words.
    let me = app.gql(Some(&secret), "{ me { role } }", json!({})).await;
    assert_eq!(me["data"]["me"]["role"], "OPERATOR", "{me}");
    let listed = until(
        c,
        "the key listed with its maker",
        "const t = document.querySelector('[data-testid=api-keys]'); return t && t.innerText;",
        vec![],
        Duration::from_secs(10),
    )
    .await;
    let listed = listed.as_str().unwrap();
    for words in [
        "ERP sync",
        "Operator",
        "Works",
        admin.display_name.as_str(),
        &secret[..9],
    ] {
        assert!(listed.contains(words), "{words:?} in {listed}");
    }
    assert!(!listed.contains(&secret), "the list never shows the key itself");
    tokio::time::sleep(Duration::from_millis(500)).await;
    go(c, &base, "/dashboard").await;
    go(c, &base, "/api-keys").await;
    ready(c, "api-keys").await;
    until(
        c,
        "the last use shown",
        "const t = document.querySelector('[data-testid=api-keys]'); return t && t.innerText.includes('from 127.0.0.1');",
        vec![],
        Duration::from_secs(10),
    )
    .await;

    // Rolled: the new key is shown, the old one says it was rolled.
    click(c, "[data-testid=api-key-roll]").await;
    let rolled = until(
        c,
        "the rolled key shown",
        "const e = document.querySelector('[data-testid=api-key-secret]'); return e && e.value !== arguments[0] && e.value;",
        vec![json!(secret)],
        Duration::from_secs(10),
    )
    .await
    .as_str()
    .unwrap()
    .to_owned();
    until(
        c,
        "the old key marked rolled",
        "const t = document.querySelector('[data-testid=api-keys]'); return t && t.innerText.includes('Rolled');",
        vec![],
        Duration::from_secs(10),
    )
    .await;

    // Revoking both keys, one after the other as the list comes back.
    c.execute("window.confirm = () => true;", vec![]).await.unwrap();
    until(
        c,
        "both keys revoked",
        "const t = document.querySelector('[data-testid=api-keys]');
         if (!t) return false;
         const b = t.querySelector('[data-testid=api-key-revoke]');
         if (b) { b.click(); return false; }
         return t.innerText.includes('Revoked');",
        vec![],
        Duration::from_secs(20),
    )
    .await;
    for key in [&secret, &rolled] {
        let (status, _) = app.gql_status(Some(key), "{ me { role } }", json!({})).await;
        assert_eq!(status, 401, "a revoked key is refused");
    }
    screenshot(c, "console-api-keys-revoked.png").await;
    b.c.close().await.unwrap();

    let p = open(PHONE, None).await;
    sign_in(&p.c, &base, admin.email.as_str(), TEST_PASSWORD).await;
    go(&p.c, &base, "/api-keys").await;
    ready(&p.c, "api-keys").await;
    let wide = overflows(&p.c).await;
    assert!(wide.is_null(), "nothing wider than the phone: {wide}");
    screenshot(&p.c, "console-api-keys-phone.png").await;
    p.c.close().await.unwrap();
    app.stop().await;
}
