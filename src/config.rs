//! Configuration, layered once at start-up: defaults < `ioto.toml` < environment.
//!
//! Environment: `IOTO_<KEY>` for top-level keys (`IOTO_LISTEN`, `IOTO_DATA_DIR`) and
//! `IOTO_<SECTION>__<KEY>` for nested ones (`IOTO_AUTH__JWT_SECRET`). The engine switches also
//! answer to their conventional names: `DATABASE_URL`, `CLICKHOUSE_URL`, `KAFKA_BROKERS`,
//! `MQTT_URL` (an `IOTO_…` variable for the same key wins). Unknown keys are warned about.
//! Every key is documented in `docs/configuration.md`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use figment::providers::{Format as _, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize, Serializer};

/// A secret string: `Debug` and serialisation print `***`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// A connection URL that may carry a password: printed with the password as `***`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn redacted(&self) -> String {
        ioto_store::redact_url(&self.0)
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: String,
    /// Where embedded engines keep their files, and the generated JWT secret.
    pub data_dir: PathBuf,
    pub log: LogConfig,
    pub database: DatabaseConfig,
    pub clickhouse: ClickHouseSection,
    pub kafka: KafkaSection,
    pub mqtt: MqttSection,
    pub auth: AuthConfig,
    pub graphql: GraphqlConfig,
    pub http: HttpConfig,
    pub fleet: FleetConfig,
    pub ingest: IngestConfig,
    pub rating: RatingConfig,
    pub network: NetworkConfig,
    pub bulk: BulkConfig,
    pub exports: ExportsConfig,
    pub rate_limit: RateLimitConfig,
    pub notifications: NotificationsConfig,
    pub smtp: SmtpConfig,
}

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

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("ioto-data"),
            log: LogConfig {
                format: LogFormat::Text,
                level: "info".into(),
            },
            database: DatabaseConfig {
                url: None,
                max_connections: 16,
            },
            clickhouse: ClickHouseSection {
                url: None,
                database: "ioto".into(),
                user: None,
                password: None,
            },
            kafka: KafkaSection {
                brokers: None,
                replication_factor: 1,
                topic_prefix: String::new(),
            },
            mqtt: MqttSection {
                url: None,
                ca_file: None,
            },
            auth: AuthConfig {
                algorithm: JwtAlgorithm::HS256,
                jwt_secret: None,
                public_key_pem: None,
                private_key_pem: None,
                jwks_url: None,
                issuer: "ioto".into(),
                audience: "ioto".into(),
                token_ttl_minutes: 12 * 60,
                leeway_seconds: 30,
                session_check_seconds: 15,
                tenant_claim: "tid".into(),
                role_claim: "role".into(),
                customer_claim: "cid".into(),
            },
            graphql: GraphqlConfig {
                introspection: true,
                playground: true,
                max_depth: 12,
                max_complexity: 20_000,
                body_limit_bytes: 1024 * 1024,
                ws_init_timeout_seconds: 10,
                max_subscriptions_per_connection: 100,
                max_concurrent_root_fields: 4,
            },
            http: HttpConfig {
                cors_origins: Vec::new(),
                shutdown_grace_seconds: 20,
                console: true,
                web_dir: None,
                trusted_proxies: Vec::new(),
                max_connections: 4096,
                max_connections_per_client: 1024,
                header_read_timeout_seconds: 30,
                body_read_timeout_seconds: 120,
            },
            fleet: FleetConfig {
                secret_key: None,
                scheduler_interval_seconds: 5,
                counter_compaction_seconds: 30,
                import_max_bytes: 64 * 1024 * 1024,
            },
            rating: RatingConfig { interval_minutes: 60 },
            network: NetworkConfig::default(),
            bulk: BulkConfig::default(),
            exports: ExportsConfig::default(),
            rate_limit: RateLimitConfig::default(),
            notifications: NotificationsConfig::default(),
            smtp: SmtpConfig::default(),
            ingest: IngestConfig {
                enabled: true,
                batch_max: 20_000,
                batch_wait_ms: 200,
                partitions: 6,
                group: "ioto-ingest".into(),
                retention_check_minutes: 60,
                telemetry: true,
                max_event_age_days: 35,
                max_clock_skew_seconds: 600,
            },
        }
    }
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

/// The loaded configuration and what loading noticed.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// Keys that were given but mean nothing here (`ioto.toml: graphql.max_deph`).
    pub unknown_keys: Vec<String>,
    /// The file read, if any.
    pub file: Option<PathBuf>,
}

/// Conventional variable names for the engine switches.
const ALIASES: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("CLICKHOUSE_URL", "clickhouse.url"),
    ("KAFKA_BROKERS", "kafka.brokers"),
    ("MQTT_URL", "mqtt.url"),
];

/// `IOTO_*` variables that are not configuration keys.
fn not_a_key(var: &str) -> bool {
    var == "IOTO_CONFIG" || var.starts_with("IOTO_TEST_") || var == "IOTO_UPDATE_SCHEMA"
}

/// One environment variable as a configuration source: its key, and its text typed like the
/// default at that key (so `IOTO_CLICKHOUSE__PASSWORD=12345` stays a string, and
/// `IOTO_HTTP__CORS_ORIGINS=a,b` becomes a list). Errors and unknown keys name the variable.
struct EnvVar {
    var: String,
    key: String,
    value: Value,
}

impl EnvVar {
    fn new(var: String, key: String, raw: &str, defaults: &Figment) -> Self {
        let value = match defaults.find_value(&key) {
            Ok(Value::Num(..)) => raw.trim().parse().unwrap_or_else(|_| Value::from(raw)),
            Ok(Value::Bool(..)) => match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Value::from(true),
                "false" | "0" | "no" | "off" => Value::from(false),
                _ => Value::from(raw),
            },
            Ok(Value::Array(..)) => Value::from(
                raw.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(Value::from)
                    .collect::<Vec<_>>(),
            ),
            _ => Value::from(raw),
        };
        Self { var, key, value }
    }
}

impl Provider for EnvVar {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("environment variable {}", self.var))
            .interpolater(|_: &Profile, keys: &[&str]| keys.join("."))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let nested = figment::util::nest(&self.key, self.value.clone());
        let dict = nested
            .into_dict()
            .ok_or_else(|| figment::Error::from(format!("{}: no key", self.var)))?;
        Ok(Profile::Default.collect(dict))
    }
}

/// Loads configuration from `file` (or `./ioto.toml` when present) and the given environment.
pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<Loaded> {
    let defaults = Figment::from(Serialized::defaults(Config::default()));
    let mut figment = defaults.clone();

    let path = match file {
        Some(p) if !p.is_file() => bail!("configuration file {}: not found", p.display()),
        Some(p) => Some(p.to_owned()),
        None => Some(PathBuf::from("ioto.toml")).filter(|p| p.is_file()),
    };
    if let Some(p) = &path {
        figment = figment.merge(Toml::file_exact(p));
    }

    // Aliases first, so that an `IOTO_…` variable for the same key wins.
    let env: Vec<(String, String)> = env.into_iter().collect();
    for (alias, key) in ALIASES {
        if let Some((var, raw)) = env.iter().find(|(k, _)| k == alias) {
            figment = figment.merge(EnvVar::new(var.clone(), (*key).to_owned(), raw, &defaults));
        }
    }
    for (var, raw) in &env {
        let Some(rest) = var.strip_prefix("IOTO_") else {
            continue;
        };
        if not_a_key(var) || rest.is_empty() {
            continue;
        }
        let key = rest.to_ascii_lowercase().replace("__", ".");
        figment = figment.merge(EnvVar::new(var.clone(), key, raw, &defaults));
    }

    let config: Config = figment
        .extract()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    // Keys that mean nothing here, named with where they came from.
    let mut unknown_keys = Vec::new();
    let tree: serde_json::Value = figment
        .extract()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let _: Config = serde_ignored::deserialize(tree, |p| {
        let key = p.to_string();
        let source = figment
            .find_metadata(&key)
            .map_or_else(|| "configuration".to_owned(), |m| m.name.to_string());
        unknown_keys.push(format!("{key} ({source})"));
    })
    .context("configuration")?;
    config.validate()?;
    Ok(Loaded {
        config,
        unknown_keys,
        file: path,
    })
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

impl Config {
    /// Checks values that types alone cannot; each error names the key and what is allowed.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.listen_addr()?;
        if let Some(url) = &self.database.url {
            if !(url.expose().starts_with("postgres://") || url.expose().starts_with("postgresql://")) {
                bail!("database.url: '{}' must start with postgres:// (leave it unset for the embedded SQLite store)", url.redacted());
            }
        }
        if self.database.max_connections == 0 {
            bail!("database.max_connections: must be at least 1");
        }
        self.http.trusted_proxy_blocks()?;
        if !(1..=600).contains(&self.graphql.ws_init_timeout_seconds) {
            bail!(
                "graphql.ws_init_timeout_seconds: {} is outside 1..=600",
                self.graphql.ws_init_timeout_seconds
            );
        }
        if !(1..=64).contains(&self.graphql.max_concurrent_root_fields) {
            bail!(
                "graphql.max_concurrent_root_fields: {} is outside 1..=64",
                self.graphql.max_concurrent_root_fields
            );
        }
        if !(1..=10_000).contains(&self.graphql.max_subscriptions_per_connection) {
            bail!(
                "graphql.max_subscriptions_per_connection: {} is outside 1..=10000",
                self.graphql.max_subscriptions_per_connection
            );
        }
        if !(1..=1_000_000).contains(&self.http.max_connections) {
            bail!(
                "http.max_connections: {} is outside 1..=1000000",
                self.http.max_connections
            );
        }
        if !(1..=self.http.max_connections).contains(&self.http.max_connections_per_client) {
            bail!(
                "http.max_connections_per_client: {} is outside 1..=http.max_connections ({})",
                self.http.max_connections_per_client,
                self.http.max_connections
            );
        }
        if !(1..=3600).contains(&self.http.header_read_timeout_seconds) {
            bail!(
                "http.header_read_timeout_seconds: {} is outside 1..=3600",
                self.http.header_read_timeout_seconds
            );
        }
        if !(1..=3600).contains(&self.http.body_read_timeout_seconds) {
            bail!(
                "http.body_read_timeout_seconds: {} is outside 1..=3600",
                self.http.body_read_timeout_seconds
            );
        }
        if let Some(url) = &self.clickhouse.url {
            if !(url.expose().starts_with("http://") || url.expose().starts_with("https://")) {
                bail!(
                    "clickhouse.url: '{}' must be the HTTP endpoint, e.g. http://127.0.0.1:8123",
                    url.redacted()
                );
            }
        }
        if let Some(url) = &self.mqtt.url {
            ioto_ingest::telemetry::MqttConfig::parse(url.expose())?;
        }
        if let Some(k) = &self.exports.link_key {
            if k.expose().len() < 32 {
                bail!("exports.link_key: must be at least 32 characters");
            }
        }
        if !(1..=366 * 86_400).contains(&self.exports.retention_seconds) {
            bail!(
                "exports.retention_seconds: {} is outside 1..=31622400 (a year)",
                self.exports.retention_seconds
            );
        }
        if let Some(k) = &self.fleet.secret_key {
            ioto_domain::fleet::SecretCipher::from_base64(k.expose()).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        if !(1..=1_000_000).contains(&self.ingest.batch_max) {
            bail!(
                "ingest.batch_max: {} is outside 1..=1000000",
                self.ingest.batch_max
            );
        }
        if !(1..=60_000).contains(&self.ingest.batch_wait_ms) {
            bail!(
                "ingest.batch_wait_ms: {} is outside 1..=60000",
                self.ingest.batch_wait_ms
            );
        }
        if !(1..=1000).contains(&self.ingest.partitions) {
            bail!(
                "ingest.partitions: {} is outside 1..=1000",
                self.ingest.partitions
            );
        }
        if !(1..=3650).contains(&self.ingest.max_event_age_days) {
            bail!(
                "ingest.max_event_age_days: {} is outside 1..=3650",
                self.ingest.max_event_age_days
            );
        }
        if self.ingest.max_clock_skew_seconds > 86_400 {
            bail!(
                "ingest.max_clock_skew_seconds: {} is outside 0..=86400",
                self.ingest.max_clock_skew_seconds
            );
        }
        if self.ingest.group.trim().is_empty() {
            bail!("ingest.group: must not be empty");
        }
        self.network
            .simulated
            .check("network.simulated.")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if !(1..=10_000).contains(&self.network.max_in_flight) {
            bail!("network.max_in_flight: must be between 1 and 10000");
        }
        let rl = &self.rate_limit;
        for (name, v) in [
            ("caller_points_per_second", rl.caller_points_per_second),
            ("read_only_points_per_second", rl.read_only_points_per_second),
            ("tenant_points_per_second", rl.tenant_points_per_second),
            ("anonymous_points_per_second", rl.anonymous_points_per_second),
            ("burst_seconds", rl.burst_seconds),
        ] {
            if v == 0 {
                bail!("rate_limit.{name}: must be at least 1 (set rate_limit.enabled = false to turn limits off)");
            }
        }
        // Every operation the schema allows must fit in a caller's bucket.
        let smallest = rl
            .read_only_points_per_second
            .min(rl.caller_points_per_second)
            .min(rl.tenant_points_per_second) as usize
            * rl.burst_seconds as usize;
        if rl.enabled && smallest < self.graphql.max_complexity {
            bail!(
                "rate_limit: the smallest bucket ({smallest} points = points per second × burst_seconds) must hold graphql.max_complexity ({}), or the largest allowed query could never run",
                self.graphql.max_complexity
            );
        }
        if self.fleet.counter_compaction_seconds > 86_400 {
            bail!(
                "fleet.counter_compaction_seconds: {} is outside 0..=86400 (0: not on this instance; at most a day)",
                self.fleet.counter_compaction_seconds
            );
        }
        if !(1..=86_400).contains(&self.bulk.network_patience_seconds) {
            bail!("bulk.network_patience_seconds: must be between 1 and 86400 (a day)");
        }
        if self.bulk.lease_seconds < 5 {
            bail!("bulk.lease_seconds: must be at least 5");
        }
        if self.bulk.poll_ms == 0 {
            bail!("bulk.poll_ms: must be at least 1");
        }
        if self.bulk.provision_wait_limit > ioto_domain::fleet::bulk::MAX_BULK_ROWS {
            bail!(
                "bulk.provision_wait_limit: must be at most {}",
                ioto_domain::fleet::bulk::MAX_BULK_ROWS
            );
        }
        if self.notifications.poll_ms == 0 {
            bail!("notifications.poll_ms: must be at least 1");
        }
        if self.notifications.max_attempts == 0 {
            bail!("notifications.max_attempts: must be at least 1");
        }
        if self.notifications.timeout_seconds == 0 {
            bail!("notifications.timeout_seconds: must be at least 1");
        }
        if let Some(url) = &self.smtp.url {
            let u = url.expose();
            if !(u.starts_with("smtp://") || u.starts_with("smtps://")) {
                bail!(
                    "smtp.url: '{}' must start with smtp:// or smtps://",
                    url.redacted()
                );
            }
        }
        if self.smtp.from.parse::<lettre::message::Mailbox>().is_err() {
            bail!(
                "smtp.from: '{}' is not a mailbox; write it like 'Ioto <noreply@example.com>'",
                self.smtp.from
            );
        }
        if self.fleet.import_max_bytes < 1024 {
            bail!("fleet.import_max_bytes: must be at least 1024");
        }
        match self.auth.algorithm {
            JwtAlgorithm::HS256 => {
                if let Some(s) = &self.auth.jwt_secret {
                    if s.expose().len() < 32 {
                        bail!("auth.jwt_secret: must be at least 32 bytes for HS256");
                    }
                }
            }
            JwtAlgorithm::RS256 | JwtAlgorithm::ES256 => {
                if self.auth.public_key_pem.is_none() && self.auth.jwks_url.is_none() {
                    bail!(
                        "auth: {} needs auth.public_key_pem or auth.jwks_url to verify tokens",
                        self.auth.algorithm
                    );
                }
            }
        }
        if self.auth.token_ttl_minutes == 0 {
            bail!("auth.token_ttl_minutes: must be at least 1");
        }
        if self.graphql.max_depth == 0
            || self.graphql.max_complexity == 0
            || self.graphql.body_limit_bytes < 1024
        {
            bail!("graphql: max_depth and max_complexity must be at least 1, body_limit_bytes at least 1024");
        }
        for origin in &self.http.cors_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                bail!("http.cors_origins: '{origin}' must be an origin like https://app.example.com, or *");
            }
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen.parse().with_context(|| {
            format!(
                "listen: '{}' is not a socket address like 127.0.0.1:8080",
                self.listen
            )
        })
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("ioto-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ioto.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\n[graphql]\nmax_depth = 5\nmax_deph = 3\n",
        )
        .unwrap();
        let loaded = load(
            Some(&file),
            env(&[
                ("IOTO_GRAPHQL__MAX_DEPTH", "7"),
                ("DATABASE_URL", "postgres://u:pw@h/db"),
                ("IOTO_NOPE", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(loaded.config.listen, "127.0.0.1:9000");
        assert_eq!(loaded.config.graphql.max_depth, 7);
        assert_eq!(loaded.config.graphql.max_complexity, 20_000);
        assert_eq!(
            loaded.config.database.url.as_ref().unwrap().expose(),
            "postgres://u:pw@h/db"
        );
        assert!(
            loaded.unknown_keys.iter().any(|k| k.contains("graphql.max_deph")),
            "{:?}",
            loaded.unknown_keys
        );
        assert!(
            loaded.unknown_keys.iter().any(|k| k.contains("IOTO_NOPE")),
            "{:?}",
            loaded.unknown_keys
        );
    }

    #[test]
    fn the_example_file_is_valid_and_complete() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/ioto.example.toml");
        let loaded = load(Some(Path::new(example)), Vec::new()).unwrap();
        assert!(loaded.unknown_keys.is_empty(), "{:?}", loaded.unknown_keys);
    }

    #[test]
    fn bad_values_name_the_variable_and_the_rule() {
        let err = load(None, env(&[("IOTO_GRAPHQL__MAX_DEPTH", "deep")])).unwrap_err();
        assert!(format!("{err:#}").contains("IOTO_GRAPHQL__MAX_DEPTH"), "{err:#}");
        let err = format!(
            "{:#}",
            load(None, env(&[("IOTO_AUTH__ALGORITHM", "none")])).unwrap_err()
        );
        assert!(
            ["IOTO_AUTH__ALGORITHM", "HS256", "RS256", "ES256"]
                .iter()
                .all(|w| err.contains(w)),
            "{err}"
        );
        let err = format!(
            "{:#}",
            load(None, env(&[("IOTO_LOG__FORMAT", "xml")])).unwrap_err()
        );
        assert!(["text", "json"].iter().all(|w| err.contains(w)), "{err}");
        // A string key keeps a value that looks like a number; a list key splits at commas.
        let loaded = load(
            None,
            env(&[
                ("IOTO_INGEST__GROUP", "12345"),
                ("IOTO_HTTP__CORS_ORIGINS", "https://a.example, https://b.example"),
                ("IOTO_GRAPHQL__PLAYGROUND", "off"),
            ]),
        )
        .unwrap();
        assert_eq!(loaded.config.ingest.group, "12345");
        assert_eq!(
            loaded.config.http.cors_origins,
            ["https://a.example", "https://b.example"]
        );
        assert!(!loaded.config.graphql.playground);
        let err = load(None, env(&[("IOTO_AUTH__JWT_SECRET", "short")])).unwrap_err();
        assert!(format!("{err:#}").contains("at least 32 bytes"), "{err:#}");
        // Out of range names the key and the range; not a number names the variable.
        for (hostile, says) in [
            (
                "18446744073709551615",
                "fleet.counter_compaction_seconds: 18446744073709551615 is outside 0..=86400",
            ),
            (
                "86401",
                "fleet.counter_compaction_seconds: 86401 is outside 0..=86400",
            ),
            ("-1", "IOTO_FLEET__COUNTER_COMPACTION_SECONDS"),
        ] {
            let err = format!(
                "{:#}",
                load(None, env(&[("IOTO_FLEET__COUNTER_COMPACTION_SECONDS", hostile)])).unwrap_err()
            );
            assert!(err.contains(says), "{hostile}: {err}");
        }
        let loaded = load(None, env(&[("IOTO_FLEET__COUNTER_COMPACTION_SECONDS", "0")])).unwrap();
        assert_eq!(loaded.config.fleet.counter_compaction_seconds, 0);
    }

    #[test]
    fn printing_redacts_secrets() {
        let loaded = load(
            None,
            env(&[
                ("DATABASE_URL", "postgres://u:hunter2@h/db"),
                ("IOTO_AUTH__JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ]),
        )
        .unwrap();
        let text = loaded.config.to_redacted_toml().unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("0123456789abcdef"),
            "{text}"
        );
        assert!(text.contains("postgres://u:***@h/db"), "{text}");
        assert!(!format!("{:?}", loaded.config).contains("hunter2"));
    }
}
