//! The browser pages in a real browser: Debian's Chromium driven through chromedriver (WebDriver),
//! against a real server, with every origin but the server's unreachable (a dead proxy), so a
//! file fetched from a CDN would fail the test. Screenshots are kept under the target directory's
//! `tmp/browser/` for people to look at. The playground's tests are here; the console's are in
//! `console.rs`, on the helpers below.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use ioto_domain::Role;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, stopped on drop.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn driver() -> Driver {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: scripts/engines.sh installs Debian's chromium and chromium-driver"
        );
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{url}/status")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not answer in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver { child, url }
}

async fn browser(driver: &Driver) -> Client {
    browser_sized(driver, (1280, 800), None).await
}

/// A headless Chromium window of `size`; downloads (when asked for) land in `downloads`.
pub(crate) async fn browser_sized(
    driver: &Driver,
    size: (u32, u32),
    downloads: Option<&std::path::Path>,
) -> Client {
    let profile = ioto_test_support::temp_dir();
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                format!("--window-size={},{}", size.0, size.1),
                format!("--user-data-dir={}", profile.display()),
                // Everything but loopback goes to a proxy that does not exist.
                "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>;127.0.0.1",
            ],
        },
    });
    let mut caps = caps;
    // Chromium keeps a window at least 500 pixels wide: a phone's screen is emulated instead.
    if size.0 < 500 {
        caps["goog:chromeOptions"]["mobileEmulation"] = json!({
            "deviceMetrics": { "width": size.0, "height": size.1, "pixelRatio": 1.0, "touch": true, "mobile": true },
        });
    }
    if let Some(dir) = downloads {
        caps["goog:chromeOptions"]["prefs"] = json!({
            "download.default_directory": dir.display().to_string(),
            "download.prompt_for_download": false,
        });
    }
    let Value::Object(caps) = caps else { unreachable!() };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

fn artefact(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

pub(crate) async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let path = artefact(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// The text of GraphiQL's result pane (its CodeMirror editor).
async fn result(c: &Client) -> String {
    c.execute(
        "const cm = document.querySelector('.result-window .CodeMirror'); return cm ? cm.CodeMirror.getValue() : '';",
        vec![],
    )
    .await
    .unwrap()
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// Waits until the result pane contains `needle`; returns the pane's text.
async fn result_containing(c: &Client, needle: &str) -> String {
    let started = Instant::now();
    loop {
        let text = result(c).await;
        if text.contains(needle) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no {needle:?} in the result pane within 30 s; it shows: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Opens the playground with `query` in the editor (the token is in session storage) and runs it.
async fn run(c: &Client, base: &str, query: &str) {
    let url = format!(
        "{base}/playground?query={}",
        url::form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>()
    );
    c.goto(&url).await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(".graphiql-execute-button"))
        .await
        .expect("GraphiQL renders")
        .click()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_playground_runs_a_query_and_a_subscription_offline() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let f = &app.factory;
    let t = f.tenant("Browser").await;
    let user = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(user.email.as_str(), TEST_PASSWORD).await;
    let base = format!("http://{}", app.addr);

    let driver = driver().await;
    let c = browser(&driver).await;
    c.goto(&format!("{base}/playground")).await.unwrap();
    // Signing in through the bar above GraphiQL keeps the token in session storage only.
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("[data-testid=pg-login-email]"))
        .await
        .unwrap()
        .send_keys(user.email.as_str())
        .await
        .unwrap();
    c.find(Locator::Css("[data-testid=pg-login-password]"))
        .await
        .unwrap()
        .send_keys(TEST_PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("[data-testid=pg-login-submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let who = c
            .find(Locator::Css("[data-testid=pg-who]"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if who.contains(user.email.as_str()) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not signed in: {who:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = c
        .execute("return window.sessionStorage.getItem('ioto.token');", vec![])
        .await
        .unwrap();
    let stored = stored.as_str().expect("the token in session storage");
    assert!(!c.current_url().await.unwrap().as_str().contains(stored));

    // The example operations are one click away: `Me` goes into the editor and runs.
    let picked = c
        .execute(
            "const s = document.querySelector('[data-testid=pg-operations]');
             const o = Array.from(s.options).find(o => o.textContent === 'Me');
             if (!o) return null;
             s.value = o.value; s.dispatchEvent(new Event('change')); return s.options.length;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        picked.as_u64().is_some_and(|n| n > 30),
        "the examples are listed: {picked}"
    );
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(".graphiql-execute-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = result_containing(&c, user.email.as_str()).await;
    assert!(text.contains("Browser"), "{text}");
    screenshot(&c, "playground-example.png").await;

    // A query over HTTP.
    run(&c, &base, "{ me { email role tenant { name } } }").await;
    let text = result_containing(&c, user.email.as_str()).await;
    assert!(
        text.contains("TENANT_ADMIN") && text.contains("Browser"),
        "{text}"
    );
    screenshot(&c, "playground-query.png").await;

    // Every resource came from the server itself.
    let origins = c
        .execute(
            "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin);",
            vec![],
        )
        .await
        .unwrap();
    let origins: Vec<String> = serde_json::from_value(origins).unwrap();
    assert!(!origins.is_empty());
    assert!(
        origins.iter().all(|o| *o == base),
        "resources from elsewhere: {origins:?}"
    );

    // A subscription over the WebSocket, fed by a change made through the API.
    run(&c, &base, "subscription { directoryEvents { change entityId } }").await;
    // graphql-ws connects lazily on subscribe: give the server a moment to register it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let created = app
        .gql(
            Some(&token),
            "mutation { createCustomer(input: {name: \"Seen Live\"}) { id } }",
            json!({}),
        )
        .await;
    let id = created["data"]["createCustomer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = result_containing(&c, &id).await;
    assert!(text.contains("CUSTOMER_CREATED"), "{text}");
    screenshot(&c, "playground-subscription.png").await;

    c.close().await.unwrap();
    app.stop().await;
}
