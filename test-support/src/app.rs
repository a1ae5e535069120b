//! The real server on an ephemeral port.

use std::net::SocketAddr;

use ioto::config::{Config, Secret, SecretUrl};
use ioto::server::App;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::{clickhouse, kafka, pg, temp_dir, unique, Factory};

/// Which engines back the ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engines {
    /// SQLite, embedded usage store, in-process bus (what `ioto demo` uses by default).
    Embedded,
    /// Postgres (per-test database), ClickHouse (per-test database), Kafka (unique topics).
    Real,
}

pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret!";

pub struct TestApp {
    pub addr: SocketAddr,
    pub config: Config,
    pub factory: Factory,
    pub http: reqwest::Client,
    pub app_engines: ioto::engines::Engines,
    pub pipeline: ioto::server::pipeline::Pipeline,
    /// Forecasts and anomalies: tests run the pass themselves (`forecasts.pass(now)`).
    pub forecasts: ioto_app::ForecastService,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn config(engines: Engines) -> Config {
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            data_dir: temp_dir(),
            ..Config::default()
        };
        config.auth.jwt_secret = Some(Secret::new(TEST_JWT_SECRET));
        config.http.shutdown_grace_seconds = 5;
        // The ingest pipeline starts only in the tests about it (`config.ingest.enabled = true`).
        config.ingest.enabled = false;
        // Rating runs only when a test asks for it (`rateBillingPeriod`).
        config.rating.interval_minutes = 0;
        // The forecast pass runs only when a test runs it (`TestApp::forecasts`).
        config.fleet.forecast_minutes = 0;
        // A quick network: tests about the network set their own profile.
        config.network.simulated.latency_median_ms = 1.0;
        config.network.simulated.latency_p99_ms = 5.0;
        if engines == Engines::Real {
            config.database.url = Some(SecretUrl::new(pg::database().await));
            let ch = clickhouse::database().await;
            config.clickhouse.url = Some(SecretUrl::new(ch.url));
            config.clickhouse.database = ch.database;
            config.kafka.brokers = Some(kafka::brokers());
            config.kafka.topic_prefix = format!("{}.", unique("test"));
        }
        config
    }

    pub async fn spawn(engines: Engines) -> Self {
        Self::spawn_with(Self::config(engines).await).await
    }

    /// An app without the workers that use the database in the background (bulk jobs, exports,
    /// notification deliveries, the transition scheduler, rating, the counters' folding, quota
    /// sweeps): the pool's statement count is then the requests' alone.
    pub async fn spawn_quiet(engines: Engines) -> Self {
        let mut config = Self::config(engines).await;
        config.bulk.max_jobs = 0;
        config.exports.max_jobs = 0;
        config.notifications.max_concurrent = 0;
        config.fleet.scheduler_interval_seconds = 0;
        config.fleet.counter_compaction_seconds = 0;
        config.fleet.quota_sweep_seconds = 0;
        config.fleet.alert_tick_seconds = 0;
        config.rating.interval_minutes = 0;
        Self::spawn_with(config).await
    }

    pub async fn spawn_with(config: Config) -> Self {
        ioto::engines::migrate(&config).await.expect("migrations");
        let app = App::build(&config).await.expect("building the app");
        let listener = App::bind(&config).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let factory = Factory::new(app.engines.directory.clone(), app.engines.fleet.clone());
        let app_engines = app.engines.clone();
        let pipeline = app.pipeline.clone();
        let forecasts = app.forecasts.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.serve(listener, async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            config,
            factory,
            http: reqwest::Client::new(),
            app_engines,
            pipeline,
            forecasts,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// GETs `path` and returns the body as text.
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("text body")
    }

    /// POSTs a GraphQL operation; returns the HTTP status and the JSON body.
    pub async fn gql_status(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        self.graphql_request(token, &[], json!({ "query": query, "variables": variables }))
            .await
    }

    /// POSTs a whole GraphQL request `body` (with `extensions`, say) with extra `headers`;
    /// returns the HTTP status and the JSON body.
    pub async fn graphql_request(
        &self,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Value,
    ) -> (u16, Value) {
        let mut req = self.http.post(self.url("/graphql")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON body"))
    }

    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.gql_status(token, query, variables).await.1
    }

    /// Logs in and returns the token; panics with the errors when login fails.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let body = self
            .gql(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                json!({ "e": email, "p": password }),
            )
            .await;
        body["data"]["login"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("login failed: {body}"))
            .to_owned()
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            s.await.expect("server task").expect("server");
        }
    }
}

/// The first error's `extensions.code`, or `None` when there are no errors.
pub fn error_code(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_owned)
}

/// Asserts that `body` is refused as bad input naming `field` and that its message says `why`.
pub fn assert_refused(body: &Value, field: &str, why: &str) {
    assert_eq!(error_code(body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(why), "{body}");
}
