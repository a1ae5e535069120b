//! The smaller holes: what readiness tells strangers, what an e-mail change tells about other
//! tenants, and where `ioto demo` may seed its published password.

use ioto_domain::Role;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

/// `/readyz` answers anyone: it names the engine that is down, not the engine's own error
/// (addresses, host names, credentials in a URL), which goes to the log.
#[tokio::test]
async fn readiness_names_a_failed_engine_without_its_error() {
    let proxy = ioto_test_support::proxy::Proxy::start("127.0.0.1:1883").await;
    let mut config = TestApp::config(Engines::Embedded).await;
    config.mqtt.url = Some(ioto::config::SecretUrl::new(format!("mqtt://{}", proxy.addr)));
    let app = TestApp::spawn_with(config).await;
    proxy.down();
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let text = r.text().await.unwrap();
    let ready: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(ready["engines"][3]["engine"], "mqtt", "{ready}");
    assert_eq!(ready["engines"][3]["ok"], false, "{ready}");
    for detail in [
        "127.0.0.1",
        &proxy.addr.port().to_string(),
        "refused",
        "reset",
        "closed",
        "I/O",
    ] {
        assert!(!text.contains(detail), "{detail} in {text}");
    }
    app.stop().await;
}

/// E-mails are unique on the whole platform. Changing one's e-mail to another tenant's user's
/// address fails like any taken address, without saying where it is used, and trying address
/// after address soon has to wait.
#[tokio::test]
async fn an_e_mail_change_does_not_tell_which_addresses_other_tenants_use() {
    let app = TestApp::spawn(Engines::Real).await;
    let (mine, theirs) = (
        app.factory.tenant("Mine").await,
        app.factory.tenant("Theirs").await,
    );
    let viewer = app.factory.user(&mine, Role::Viewer, None).await;
    let colleague = app.factory.user(&mine, Role::Viewer, None).await;
    let stranger = app.factory.user(&theirs, Role::TenantAdmin, None).await;
    let token = app.login(viewer.email.as_str(), TEST_PASSWORD).await;
    let change = "mutation($id: ID!, $e: String!) { updateUser(id: $id, input: { email: $e }) { email } }";
    let mut answers = Vec::new();
    for taken in [stranger.email.as_str(), colleague.email.as_str()] {
        let body = app
            .gql(
                Some(&token),
                change,
                json!({"id": viewer.id.to_string(), "e": taken}),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
        let message = body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .replace(taken, "<address>");
        assert!(!message.contains("already exists"), "{message}");
        answers.push(message);
    }
    assert_eq!(
        answers[0], answers[1],
        "the same answer wherever the address is used"
    );
    let mut last = None;
    for _ in 0..60 {
        let body = app
            .gql(
                Some(&token),
                change,
                json!({"id": viewer.id.to_string(), "e": stranger.email.as_str()}),
            )
            .await;
        last = error_code(&body);
        if last.as_deref() != Some("CONFLICT") {
            break;
        }
    }
    assert_eq!(
        last.as_deref(),
        Some("RATE_LIMITED"),
        "probing taken addresses is slowed down"
    );
    app.stop().await;
}

/// `ioto demo` signs everyone in with a published password: not into a database that holds a
/// real deployment, and not on an address other machines reach.
#[tokio::test]
async fn the_demo_seeds_only_a_database_of_its_own_and_listens_on_loopback() {
    let config = TestApp::config(Engines::Real).await;
    let database = config.database.url.as_ref().unwrap().expose().to_owned();
    let app = TestApp::spawn_with(config).await;
    let real = app.factory.tenant("Real Customer GmbH").await;
    app.stop().await;
    let data = ioto_test_support::temp_dir();
    let out = crate::cli::ioto()
        .env("DATABASE_URL", &database)
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("real deployment") && stderr.contains(real.slug.as_str()),
        "{stderr}"
    );

    let out = crate::cli::ioto()
        .args(["demo", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback only"), "{stderr}");
}

/// A webhook endpoint whose host resolves to this server's own network: the delivery fails
/// saying so, without telling the tenant what the host resolved to. The machine's own name
/// resolves to a loopback or private address (here, the precondition is checked first).
#[tokio::test]
async fn webhook_failures_do_not_tell_what_the_servers_resolver_answered() {
    let host = String::from_utf8(std::process::Command::new("hostname").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned();
    let found: Vec<std::net::IpAddr> = tokio::net::lookup_host((host.as_str(), 443))
        .await
        .unwrap()
        .map(|a| a.ip())
        .collect();
    let internal = |ip: &std::net::IpAddr| match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    };
    assert!(
        !found.is_empty() && found.iter().all(internal),
        "this test needs the machine's name ({host}) to resolve to its own network: {found:?}"
    );
    let mut config = TestApp::config(Engines::Real).await;
    config.notifications.poll_ms = 100;
    config.notifications.retry_base_ms = 200;
    config.notifications.max_attempts = 1;
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Hooks").await;
    let sims = app.factory.sims(&t, None, 1).await;
    let admin = app.factory.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let created = app
        .gql(
            Some(&token),
            "mutation($url: String!) { createWebhookEndpoint(input: {url: $url}) { endpoint { id } } }",
            json!({"url": format!("https://{host}/hook")}),
        )
        .await;
    assert!(created["errors"].is_null(), "{created}");
    let r = app
        .http
        .post(app.url("/bulk-jobs?action=SUSPEND&format=csv&confirm=true"))
        .bearer_auth(&token)
        .body(format!("iccid\n{}\n", sims[0].iccid))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let q = "{ webhookEndpoints { deliveries { status lastError } } }";
    let mut last = Value::Null;
    for _ in 0..200 {
        let body = app.gql(Some(&token), q, json!({})).await;
        last = body["data"]["webhookEndpoints"][0]["deliveries"][0].clone();
        if last["lastError"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let error = last["lastError"]
        .as_str()
        .unwrap_or_else(|| panic!("no failed delivery: {last}"));
    assert!(error.contains("does not deliver to"), "{error}");
    for ip in &found {
        assert!(!error.contains(&ip.to_string()), "{error}");
    }
    app.stop().await;
}

/// Twenty `rateBillingPeriod`s of one tenant at once: one runs, the others are told one is
/// running (before, all twenty ran the same rating side by side).
#[tokio::test]
async fn one_rating_of_a_tenant_runs_at_a_time() {
    use ioto_app::billing::Requester;

    let loc = ioto_store::StoreLocation::Postgres {
        url: ioto_test_support::pg::database().await,
    };
    let usage = std::sync::Arc::new(
        ioto_analytics::EmbeddedUsage::open(&ioto_test_support::temp_dir().join("usage.sqlite"))
            .await
            .unwrap(),
    );
    let today = chrono::Utc::now().date_naive();
    let month = ioto_domain::billing::rate_card::BillingPeriod::Monthly
        .period_of(today)
        .0;
    let crate::rating::RetailFixture {
        service,
        tenant,
        admin,
        ..
    } = crate::rating::retail_fixture(&loc, usage, "Rated once", 3, month, "1.00").await;
    let runs = (0..20).map(|_| service.rate_period(Requester::User(&admin), tenant.id, today));
    let outcomes = futures::future::join_all(runs).await;
    let ran = outcomes.iter().filter(|o| o.is_ok()).count();
    let refused: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!(ran, 1, "{outcomes:?}");
    assert!(
        refused.iter().all(
            |e| matches!(e, ioto_domain::Error::Conflict(m) if m.contains("rating of this tenant is running"))
        ),
        "{refused:?}"
    );
    // Once it finished, the next one runs.
    service
        .rate_period(Requester::User(&admin), tenant.id, today)
        .await
        .unwrap();
}

/// `(state, last statement)` of Postgres backend `pid`.
async fn backend_activity(watch: &sea_orm::DatabaseConnection, pid: i32) -> (String, String) {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let row = watch
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT coalesce(state, '') AS s, coalesce(query, '') AS q FROM pg_stat_activity WHERE pid = $1",
            [pid.into()],
        ))
        .await
        .unwrap()
        .expect("the pooled connection's backend");
    (row.try_get("", "s").unwrap(), row.try_get("", "q").unwrap())
}

/// A transaction whose caller goes away while `BEGIN` is being answered (the other branch of a
/// `try_join!` failed first, a client went away) leaves nothing open on the pooled connection:
/// the next caller would otherwise run inside it and hold its locks, and after an error every
/// statement on that connection would be refused until the pool recycled it.
#[tokio::test]
async fn a_transaction_dropped_while_begin_is_answered_leaves_no_transaction_open() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    use std::future::Future as _;
    use std::task::{Context, Waker};
    use std::time::{Duration, Instant};
    let url = ioto_test_support::pg::database().await;
    let store = ioto_store::connect(&ioto_store::StoreLocation::Postgres { url: url.clone() }, 1)
        .await
        .unwrap();
    let watch = sea_orm::Database::connect(&url).await.unwrap();
    let pid: i32 = store
        .connection()
        .query_one(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_backend_pid() AS pid",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "pid")
        .unwrap();
    // Polled by hand: between two polls nothing reads the connection for the caller, so a
    // backend that has run BEGIN and nothing after it is where the caller can be dropped.
    let mut begin = Box::pin(store.begin(ioto_domain::Scope::Platform));
    let mut cx = Context::from_waker(Waker::noop());
    let mut caught = false;
    'polls: for _ in 0..20 {
        assert!(
            !begin.as_mut().poll(&mut cx).is_ready(),
            "the transaction began before BEGIN was seen answered"
        );
        // Until the next poll the backend stays as it is: a second is ample to see it.
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            if backend_activity(&watch, pid).await == ("idle in transaction".into(), "BEGIN".into()) {
                caught = true;
                break 'polls;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert!(
        caught,
        "the connection was never seen between BEGIN and the caller's next step"
    );
    drop(begin);
    // Once the connection is back in the pool, it is in no transaction.
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.connection().ping().await.unwrap();
    let (state, query) = backend_activity(&watch, pid).await;
    assert!(
        !state.starts_with("idle in transaction"),
        "the pooled connection is left in a transaction ({state}; last statement: {query})"
    );
}
