//! `ioto-bench api`: the real server on an ephemeral port, measured from a real HTTP client.
//! Prints latency percentiles and throughput for login, `me` and a page of SIMs.

use crate::common::*;
use anyhow::Context as _;
use ioto::config::Config;
use ioto::engines;
use ioto::server::App;
use serde_json::json;

/// Seeds a bench tenant with one operator, an operator's API key and `sims` SIMs; returns the
/// operator's e-mail, the key and the ICCID of the SIM in the middle.
async fn seed(app: &App, sims: usize) -> anyhow::Result<(String, String, String)> {
    use ioto_domain::api_key::{CheckedToken, NewApiKey};
    let (tenant, email, middle) = seed_tenant(app, sims).await?;
    let token = CheckedToken::generate();
    let now = chrono::Utc::now();
    app.engines
        .directory
        .create_api_key(
            ioto_domain::Scope::tenant(tenant),
            NewApiKey {
                id: ioto_domain::ApiKeyId::new(),
                tenant_id: tenant,
                customer_id: None,
                name: ioto_domain::identifiers::Name::parse("bench", "name")?,
                role: ioto_domain::Role::Operator,
                token_hash: token.hash(),
                hint: token.hint(),
                created_by: None,
                created_at: now,
                expires_at: None,
                rolled_from: None,
            },
            ioto_domain::fleet::audit::AuditStamp {
                actor: "bench".into(),
                actor_user_id: None,
                at: now,
                note: None,
            },
        )
        .await?;
    Ok((email, token.expose().to_owned(), middle))
}

/// One configuration measured: the engines and the figures.
pub struct ApiRun {
    pub engines: Vec<(&'static str, String)>,
    pub figures: Vec<Figures>,
}

const ME: &str = "me";

const SIM_KEY: &str = "sim(iccid), with an API key";

const KEY_CHECK: &str = "API key check, cached (in process)";

const TOKEN_CHECK: &str = "login token's signature check (in process)";

/// Checks timed one after the other, in process.
const CHECKS: usize = 20_000;

/// Times `check` `CHECKS` times, one after the other (the first, a cache's miss, left out).
async fn time_checks<F, Fut>(name: &'static str, mut check: F) -> anyhow::Result<Figures>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ioto_domain::Result<ioto_domain::Actor>>,
{
    check().await?;
    let mut lat = Vec::with_capacity(CHECKS);
    let started = std::time::Instant::now();
    for _ in 0..CHECKS {
        let t = std::time::Instant::now();
        check().await?;
        lat.push(t.elapsed());
    }
    Ok(Figures::new(name, 1, started.elapsed(), lat))
}

const ME_BARE: &str = "me, bare handler";

const SIM: &str = "sim(iccid)";

const SIM_BARE: &str = "sim(iccid), bare handler";

const SIMS: &str = "sims(first: 100) of 1000";

const SIMS_BARE: &str = "sims(first: 100), bare handler";

impl ApiRun {
    fn get(&self, name: &str) -> Option<&Figures> {
        self.figures.iter().find(|f| f.name == name)
    }
}

/// Runs the API benchmark on the embedded engines and, when a transactional store is configured,
/// on it too, in one run (same machine state, same client).
pub async fn api(config: &Config, requests: usize, concurrency: usize) -> anyhow::Result<Vec<ApiRun>> {
    let mut embedded = config.clone();
    embedded.database.url = None;
    embedded.clickhouse.url = None;
    embedded.kafka.brokers = None;
    embedded.mqtt.url = None;
    embedded.data_dir = config.data_dir.join("embedded");
    let mut runs = vec![api_on(&embedded, requests, concurrency).await?];
    if config.database.url.is_some() {
        runs.push(api_on(config, requests, concurrency).await?);
    }
    Ok(runs)
}

async fn api_on(config: &Config, requests: usize, concurrency: usize) -> anyhow::Result<ApiRun> {
    engines::migrate(config).await?;
    let app = App::build(config).await?;
    println!("{}", app.engines.versions().await?);
    let listener = App::bind(config).await?;
    let addr = listener.local_addr()?;
    let (email, key, iccid) = seed(&app, 1000).await?;
    let bare = crate::bare::serve(config, std::sync::Arc::clone(&app.jwt)).await?;
    let jwt = std::sync::Arc::clone(&app.jwt);
    let directory = ioto_app::DirectoryService::new(std::sync::Arc::clone(&app.engines.directory));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = stop_rx.await;
    }));
    let url = format!("http://{addr}/graphql");

    let login = json!({ "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }", "variables": { "e": email, "p": PASSWORD } });
    let logins = (requests / 20).clamp(10, 200);
    let mut out = vec![
        measure(
            "login (argon2id verify + JWT)",
            &url,
            None,
            login.clone(),
            logins,
            concurrency.min(4),
        )
        .await?,
    ];
    let token = post(&reqwest::Client::new(), &url, None, &login).await?["data"]["login"]["token"]
        .as_str()
        .context("no token")?
        .to_owned();
    let t = Some(token.as_str());
    // The checks alone: what a key costs a request before anything else runs, and a login
    // token's signature beside it.
    out.push(time_checks(KEY_CHECK, || directory.authenticate_key(&key, None)).await?);
    out.push(time_checks(TOKEN_CHECK, || jwt.verify(&token)).await?);
    let ops = [
        (
            ME,
            url.clone(),
            json!({ "query": "{ me { email role tenant { id name } } }" }),
        ),
        (ME_BARE, format!("{}/me", bare.url), json!({})),
        (
            SIM,
            url.clone(),
            json!({ "query": "query($i: Iccid!) { sim(iccid: $i) { iccid imsi state } }", "variables": { "i": iccid } }),
        ),
        (SIM_BARE, format!("{}/sim", bare.url), json!({ "iccid": iccid })),
        (
            SIMS,
            url.clone(),
            json!({ "query": "{ sims(first: 100) { nodes { iccid imsi state } pageInfo { hasNextPage } } }" }),
        ),
        (SIMS_BARE, format!("{}/sims", bare.url), json!({})),
    ];
    for (name, url, body) in ops {
        out.push(measure(name, &url, t, body, requests, concurrency).await?);
    }
    // The same `sim(iccid)` with an API key instead of a login's token: the key's check
    // (checksum, hash, cached lookup) against the token's (signature, cached session check), the
    // rest of the request alike (`me` would not be: a key has no user to read).
    out.push(
        measure(
            SIM_KEY,
            &url,
            Some(key.as_str()),
            json!({ "query": "query($i: Iccid!) { sim(iccid: $i) { iccid imsi state } }", "variables": { "i": iccid } }),
            requests,
            concurrency,
        )
        .await?,
    );

    let _ = stop_tx.send(());
    server.await??;
    bare.stop().await;
    Ok(ApiRun {
        engines: engines::describe_config(config),
        figures: out,
    })
}

/// Prints every run's table, then the ratios the targets are stated in.
pub fn print_api(runs: &[ApiRun]) {
    for run in runs {
        print(&run.figures, &run.engines);
        println!();
    }
    let ratio = |a: Option<&Figures>, b: Option<&Figures>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", a.per_second() / b.per_second()),
        _ => "-".into(),
    };
    for (i, run) in runs.iter().enumerate() {
        println!(
            "{}: GraphQL / bare handler throughput: me {}, sim(iccid) {}, sims(first: 100) {}",
            if i == 0 { "embedded" } else { "configured" },
            ratio(run.get(ME), run.get(ME_BARE)),
            ratio(run.get(SIM), run.get(SIM_BARE)),
            ratio(run.get(SIMS), run.get(SIMS_BARE)),
        );
    }
    for (i, run) in runs.iter().enumerate() {
        if let (Some(key), Some(token)) = (run.get(KEY_CHECK), run.get(TOKEN_CHECK)) {
            let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
            println!(
                "{}: an API key's check, cached: p50 {:.1} µs, p99 {:.1} µs (target: < 0.2 ms p99); a login token's signature: p50 {:.1} µs, p99 {:.1} µs",
                if i == 0 { "embedded" } else { "configured" },
                us(key.p50),
                us(key.p99),
                us(token.p50),
                us(token.p99),
            );
        }
        if let (Some(key), Some(jwt)) = (run.get(SIM_KEY), run.get(SIM)) {
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
            println!(
                "{}: sim(iccid) with an API key against a login's token: p50 {:+.3} ms, p99 {:+.3} ms (target: the key adds < 0.2 ms p99)",
                if i == 0 { "embedded" } else { "configured" },
                ms(key.p50) - ms(jwt.p50),
                ms(key.p99) - ms(jwt.p99),
            );
        }
    }
    if let [embedded, configured] = runs {
        println!(
            "configured / embedded throughput: me {}, sim(iccid) {}, sims(first: 100) {}",
            ratio(configured.get(ME), embedded.get(ME)),
            ratio(configured.get(SIM), embedded.get(SIM)),
            ratio(configured.get(SIMS), embedded.get(SIMS)),
        );
    }
}
