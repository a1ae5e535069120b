//! The configuration's sections, each with its defaults (`docs/configuration.md` documents every
//! key).

use super::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How tokens are signed: a shared secret, or keys (PEM files or an identity provider's JWKS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
    ES256,
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `ioto=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// `postgres://…`; unset means SQLite under the data directory.
    pub url: Option<SecretUrl>,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ClickHouseSection {
    /// `http://host:8123`; unset means the embedded usage store.
    pub url: Option<SecretUrl>,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct KafkaSection {
    /// `host:port[,host:port…]`; unset means the in-process bus.
    pub brokers: Option<String>,
    pub replication_factor: i32,
    /// Prefix for every topic name (lets several deployments share a cluster).
    pub topic_prefix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MqttSection {
    /// `mqtt://host:1883` or `mqtts://host:8883`; unset means the in-process telemetry feed.
    pub url: Option<SecretUrl>,
    /// `mqtts://`: PEM file with the CA certificates the broker's certificate must chain to.
    /// Unset: the system's bundle (`/etc/ssl/certs/ca-certificates.crt` and the like).
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub algorithm: JwtAlgorithm,
    /// HS256 secret, at least 32 bytes. Unset: generated once into `<data_dir>/jwt-secret`.
    pub jwt_secret: Option<Secret>,
    /// RS256/ES256: PEM file with the public key that verifies tokens.
    pub public_key_pem: Option<PathBuf>,
    /// RS256/ES256: PEM file with the private key that signs tokens (needed for `login`).
    pub private_key_pem: Option<PathBuf>,
    /// RS256/ES256: JWKS document of an external identity provider (Keycloak-style).
    pub jwks_url: Option<String>,
    pub issuer: String,
    pub audience: String,
    pub token_ttl_minutes: u64,
    /// Lifetime of the access tokens a login or a refresh answers (a session's short-lived
    /// tokens; `token_ttl_minutes` is for tokens issued without a session).
    pub access_token_minutes: u64,
    /// The longest a sign-in session lasts, refreshes included.
    pub session_days: u64,
    /// A session not refreshed for this long ends.
    pub session_idle_hours: u64,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// How long a confirmation that a token's user still exists with its role is reused; a
    /// deleted or demoted user's token stops working within this time.
    pub session_check_seconds: u64,
    /// Claim names, for tokens from an external identity provider.
    pub tenant_claim: String,
    pub role_claim: String,
    pub customer_claim: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GraphqlConfig {
    pub introspection: bool,
    pub playground: bool,
    pub max_depth: usize,
    pub max_complexity: usize,
    /// Largest request body accepted, in bytes (also the largest WebSocket message).
    pub body_limit_bytes: usize,
    /// How long a WebSocket may stay open without a valid `connection_init`.
    pub ws_init_timeout_seconds: u64,
    /// Most subscriptions one WebSocket may have open at once.
    pub max_subscriptions_per_connection: usize,
    /// Root fields of one operation resolved at once (aliases count each); the others wait.
    pub max_concurrent_root_fields: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// Browser origins allowed to call the API (`https://app.example.com`); empty: none.
    pub cors_origins: Vec<String>,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// Serve the web console at `/console`.
    pub console: bool,
    /// Serve the playground's and the console's files from this checkout (its `playground/` and
    /// `web/`) instead of the copies inside the binary: for working on the pages without
    /// rebuilding.
    pub web_dir: Option<std::path::PathBuf>,
    /// Reverse proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the client, for
    /// rate limits and the sign-in throttle; from any other peer the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Most connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Most connections one client address holds at once (trusted proxies aside); one more is
    /// closed at once.
    pub max_connections_per_client: usize,
    /// How long a client may take to send a request's head (then the connection is closed).
    pub header_read_timeout_seconds: u64,
    /// Longest a request's body may stall between two chunks (then the request fails).
    pub body_read_timeout_seconds: u64,
}

impl HttpConfig {
    /// `trusted_proxies`, parsed.
    pub fn trusted_proxy_blocks(&self) -> anyhow::Result<Vec<crate::server::caller::Cidr>> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                crate::server::caller::Cidr::parse(p)
                    .map_err(|e| anyhow::anyhow!("http.trusted_proxies: {e}"))
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetConfig {
    /// Key sealing SIM PIN and PUK at rest: base64 of 32 random bytes. Default: generated once
    /// into `<data_dir>/fleet-secret-key`. Losing it makes stored PINs and PUKs unreadable.
    pub secret_key: Option<Secret>,
    /// How often the scheduler applies due SIM transitions; 0 turns it off on this instance.
    pub scheduler_interval_seconds: u64,
    /// How often the dashboard's SIM counters (a row appended per change) are folded, in
    /// seconds; 0 turns folding off on this instance (another instance, or none, folds them).
    pub counter_compaction_seconds: u64,
    /// Largest file `POST /imports/sims` accepts, in bytes.
    pub import_max_bytes: usize,
    /// How long after a SIM's traffic is counted its data quota is evaluated, in milliseconds
    /// (SIMs counted meanwhile are evaluated together).
    pub quota_evaluate_ms: u64,
    /// How often quotas of SIMs with recent traffic are evaluated again and the actions at the
    /// limit sent, in seconds; 0 turns it off on this instance.
    pub quota_sweep_seconds: u64,
    /// How often alert rules are evaluated on the clock (SIMs gone quiet, pending durations,
    /// clearing) and due alerts announced, in seconds; 0 turns it off on this instance.
    pub alert_tick_seconds: u64,
    /// How often forecasts and anomalies are computed for every SIM, sub-customer, tenant and
    /// quota pool, in minutes (the first pass 30 s after start); 0 turns it off on this instance.
    pub forecast_minutes: u64,
}

/// The network element SIM state changes go through. Only the simulated HLR exists so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkConfig {
    /// Requests in flight to the network at once from this instance, shared fairly between the
    /// tenants that have work (bulk jobs and single changes alike).
    pub max_in_flight: usize,
    /// The simulated HLR's capacity, latency and failure rates.
    pub simulated: ioto_network::HlrProfile,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            max_in_flight: ioto_app::fleet::DEFAULT_NETWORK_SLOTS,
            simulated: ioto_network::HlrProfile::default(),
        }
    }
}

/// Rate limits: token buckets in points (an operation costs its complexity, at least 1), per
/// caller by role, per tenant, and per client address for callers without a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Points per second for each TENANT_ADMIN, OPERATOR and PLATFORM_ADMIN caller.
    pub caller_points_per_second: u32,
    /// Points per second for each CUSTOMER_USER and VIEWER caller.
    pub read_only_points_per_second: u32,
    /// Points per second for all callers of one tenant together.
    pub tenant_points_per_second: u32,
    /// Points per second per client address without a token.
    pub anonymous_points_per_second: u32,
    /// A bucket holds this many seconds of its refill (the burst).
    pub burst_seconds: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            caller_points_per_second: 20_000,
            read_only_points_per_second: 5_000,
            tenant_points_per_second: 50_000,
            anonymous_points_per_second: 1_000,
            burst_seconds: 5,
        }
    }
}

impl RateLimitConfig {
    pub fn limits(&self) -> ioto_resolvers::rate_limit::RateLimits {
        let rate = |p: u32| ioto_resolvers::rate_limit::Rate {
            per_second: f64::from(p),
            burst: f64::from(p) * f64::from(self.burst_seconds),
        };
        ioto_resolvers::rate_limit::RateLimits {
            enabled: self.enabled,
            platform_admin: rate(self.caller_points_per_second),
            tenant_admin: rate(self.caller_points_per_second),
            operator: rate(self.caller_points_per_second),
            customer_user: rate(self.read_only_points_per_second),
            viewer: rate(self.read_only_points_per_second),
            tenant: rate(self.tenant_points_per_second),
            anonymous: rate(self.anonymous_points_per_second),
        }
    }
}

/// Bulk jobs: how this instance runs them, and the provisioning API's synchronous limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BulkConfig {
    /// Jobs this instance runs at once (one per tenant at a time); 0: this instance runs none.
    pub max_jobs: usize,
    /// How long a claim on a job lasts without a sign of life before another instance takes it
    /// over, in seconds.
    pub lease_seconds: u64,
    /// How often an idle worker looks for jobs confirmed on other instances, in milliseconds.
    pub poll_ms: u64,
    /// `provisionSims` with up to this many SIMs waits for the outcome; larger ones return the job.
    pub provision_wait_limit: usize,
    /// Longest `provisionSims` waits before returning the job still running, in seconds.
    pub provision_wait_seconds: u64,
    /// How long a job waits out a network that does not answer before its rows fail as
    /// `NO_ANSWER`, in seconds.
    pub network_patience_seconds: u64,
}

impl Default for BulkConfig {
    fn default() -> Self {
        Self {
            max_jobs: 8,
            lease_seconds: 60,
            poll_ms: 500,
            provision_wait_limit: 100,
            provision_wait_seconds: 30,
            network_patience_seconds: ioto_app::fleet::DEFAULT_NETWORK_PATIENCE.as_secs(),
        }
    }
}

/// Export jobs: how this instance runs them, where files are kept, how links are signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportsConfig {
    /// Exports this instance writes at once; 0: this instance writes none (others do).
    pub max_jobs: usize,
    /// How long a claim on a job lasts without progress before another instance restarts it,
    /// in seconds.
    pub lease_seconds: u64,
    /// How often an idle worker looks for exports requested on other instances, in milliseconds.
    pub poll_ms: u64,
    /// How long a finished file can be downloaded before it is deleted, in seconds (expired
    /// files are looked for every minute, or every `retention_seconds` when shorter).
    pub retention_seconds: u64,
    /// Directory of finished files. Unset: `<data_dir>/exports`. Instances that share exports
    /// must share it.
    pub dir: Option<PathBuf>,
    /// Key signing download links (at least 32 characters). Unset: generated once into
    /// `<data_dir>/export-link-key`. Instances that share exports must share it.
    pub link_key: Option<Secret>,
    /// An S3-compatible bucket for finished files instead of `dir` (set `bucket` to use it).
    pub s3: ExportS3Config,
}

/// Where export files go when they go to an object store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportS3Config {
    /// The bucket; unset: files stay in `exports.dir`.
    pub bucket: Option<String>,
    /// The S3 endpoint, e.g. `https://s3.eu-central-1.amazonaws.com` or `http://127.0.0.1:9000`.
    pub endpoint: String,
    pub region: String,
    /// Keys start with it.
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: Option<Secret>,
    /// Path-style requests (`endpoint/bucket/key`), as most S3-compatible servers want; false:
    /// virtual-hosted style (`bucket.endpoint/key`).
    pub path_style: bool,
}

impl Default for ExportS3Config {
    fn default() -> Self {
        Self {
            bucket: None,
            endpoint: "https://s3.amazonaws.com".into(),
            region: "us-east-1".into(),
            prefix: "exports".into(),
            access_key_id: String::new(),
            secret_access_key: None,
            path_style: true,
        }
    }
}

impl Default for ExportsConfig {
    fn default() -> Self {
        Self {
            max_jobs: 2,
            lease_seconds: 60,
            poll_ms: 1000,
            retention_seconds: 86_400,
            dir: None,
            link_key: None,
            s3: ExportS3Config::default(),
        }
    }
}

/// Notification deliveries: webhooks (signed, retried with back-off) and e-mail.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct NotificationsConfig {
    /// Deliveries this instance sends at once; 0: this instance sends none (others do).
    pub max_concurrent: usize,
    /// How often an idle worker looks for deliveries written on other instances, in milliseconds.
    pub poll_ms: u64,
    /// Attempts before a delivery is given up.
    pub max_attempts: u32,
    /// Wait before the second attempt, in milliseconds; it doubles with every further attempt.
    pub retry_base_ms: u64,
    /// Longest wait between two attempts, in seconds.
    pub retry_max_seconds: u64,
    /// Longest a webhook endpoint or the SMTP server may take to answer, in seconds.
    pub timeout_seconds: u64,
    /// Allow `http://` webhook endpoints on loopback addresses (local development, tests).
    pub allow_loopback_http: bool,
    /// Allow webhook endpoints in private and reserved address ranges (an on-premises receiver).
    pub allow_private_addresses: bool,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 8,
            poll_ms: 1_000,
            max_attempts: 10,
            retry_base_ms: 10_000,
            retry_max_seconds: 3_600,
            timeout_seconds: 10,
            allow_loopback_http: false,
            allow_private_addresses: false,
        }
    }
}

/// Notification e-mail. Without `url` no e-mail is sent (in-app and webhooks still are).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SmtpConfig {
    /// `smtps://user:password@host:465` (TLS), `smtp://user:password@host:587?tls=required`
    /// (STARTTLS) or `smtp://host:25` (plain, a local relay).
    pub url: Option<SecretUrl>,
    /// The sender, e.g. `Ioto <noreply@example.com>`.
    pub from: String,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            url: None,
            from: "Ioto <noreply@localhost>".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RatingConfig {
    /// How often every tenant's open billing period is rated again (late CDRs included); 0 turns
    /// scheduled rating off on this instance (`rateBillingPeriod` still rates on demand).
    pub interval_minutes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestConfig {
    /// Run the ingest worker (sessions, CDRs, telemetry) inside `serve`; `ioto ingest` runs it alone.
    pub enabled: bool,
    /// Most events counted in one batch (one write to the usage store).
    pub batch_max: usize,
    /// How long a batch waits to fill after its first event, in milliseconds.
    pub batch_wait_ms: u64,
    /// Partitions of the sessions and CDR topics when this process creates them.
    pub partitions: i32,
    /// Consumer group of the workers (the topic prefix is put in front).
    pub group: String,
    /// How often expired session data is dropped where the usage store has no TTL, in minutes.
    pub retention_check_minutes: u64,
    /// Store device telemetry from the MQTT broker (or the in-process feed).
    pub telemetry: bool,
    /// Events (session rollups, CDRs, readings) older than this are dead-lettered as
    /// `OUT_OF_RANGE` instead of counted.
    pub max_event_age_days: u32,
    /// Events stamped further ahead of this server's clock are dead-lettered likewise.
    pub max_clock_skew_seconds: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Config::default().log
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Config::default().database
    }
}

impl Default for ClickHouseSection {
    fn default() -> Self {
        Config::default().clickhouse
    }
}

impl Default for KafkaSection {
    fn default() -> Self {
        Config::default().kafka
    }
}

impl Default for MqttSection {
    fn default() -> Self {
        Config::default().mqtt
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Config::default().auth
    }
}

impl Default for GraphqlConfig {
    fn default() -> Self {
        Config::default().graphql
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Config::default().http
    }
}

impl Default for FleetConfig {
    fn default() -> Self {
        Config::default().fleet
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Config::default().ingest
    }
}

impl Default for RatingConfig {
    fn default() -> Self {
        Config::default().rating
    }
}

impl IngestConfig {
    /// How far from now events are accepted.
    pub fn window(&self) -> ioto_domain::usage::EventWindow {
        ioto_domain::usage::EventWindow {
            max_age: chrono::Duration::days(i64::from(self.max_event_age_days)),
            max_ahead: chrono::Duration::seconds(i64::from(self.max_clock_skew_seconds)),
        }
    }
}
