//! Configuration, layered once at start-up: defaults < `ioto.toml` < environment.
//!
//! Environment: `IOTO_<KEY>` for top-level keys (`IOTO_LISTEN`, `IOTO_DATA_DIR`) and
//! `IOTO_<SECTION>__<KEY>` for nested ones (`IOTO_AUTH__JWT_SECRET`). The engine switches also
//! answer to their conventional names: `DATABASE_URL`, `CLICKHOUSE_URL`, `KAFKA_BROKERS`,
//! `MQTT_URL` (an `IOTO_…` variable for the same key wins). Unknown keys are warned about.
//! Every key is documented in `docs/configuration.md`.

mod secret;
mod sections;
mod validate;

pub use self::secret::{Secret, SecretUrl};
pub use self::sections::*;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use figment::providers::{Format as _, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

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
                access_token_minutes: 15,
                session_days: 30,
                session_idle_hours: 7 * 24,
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
                quota_evaluate_ms: 2_000,
                quota_sweep_seconds: 60,
                alert_tick_seconds: 10,
                forecast_minutes: 60,
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

    /// Session lifetimes out of their bounds are refused naming the setting and what is allowed.
    #[test]
    fn session_lifetimes_are_bounded() {
        for (var, value, words) in [
            (
                "IOTO_AUTH__ACCESS_TOKEN_MINUTES",
                "0",
                "auth.access_token_minutes",
            ),
            ("IOTO_AUTH__ACCESS_TOKEN_MINUTES", "1441", "1 to 1440"),
            ("IOTO_AUTH__SESSION_DAYS", "0", "auth.session_days"),
            ("IOTO_AUTH__SESSION_DAYS", "367", "1 to 366"),
            (
                "IOTO_AUTH__SESSION_IDLE_HOURS",
                "0",
                "longer than an access token",
            ),
            (
                "IOTO_AUTH__SESSION_IDLE_HOURS",
                "100000",
                "auth.session_days × 24",
            ),
        ] {
            let err = match load(None, env(&[(var, value)])) {
                Err(e) => format!("{e:#}"),
                Ok(loaded) => format!("{:#}", loaded.config.validate().unwrap_err()),
            };
            assert!(err.contains(words), "{var}={value}: {err}");
        }
        let fine = load(None, env(&[("IOTO_AUTH__SESSION_IDLE_HOURS", "24")])).unwrap();
        fine.config.validate().unwrap();
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
        // The quota evaluation's delay and sweep: out of range names the key and the range.
        for (var, hostile, says) in [
            (
                "IOTO_FLEET__QUOTA_EVALUATE_MS",
                "99",
                "fleet.quota_evaluate_ms: 99 is outside 100..=60000",
            ),
            (
                "IOTO_FLEET__QUOTA_EVALUATE_MS",
                "60001",
                "fleet.quota_evaluate_ms: 60001 is outside 100..=60000",
            ),
            (
                "IOTO_FLEET__QUOTA_SWEEP_SECONDS",
                "3601",
                "fleet.quota_sweep_seconds: 3601 is outside 0..=3600",
            ),
            (
                "IOTO_FLEET__QUOTA_SWEEP_SECONDS",
                "-1",
                "IOTO_FLEET__QUOTA_SWEEP_SECONDS",
            ),
            (
                "IOTO_FLEET__ALERT_TICK_SECONDS",
                "61",
                "fleet.alert_tick_seconds: 61 is outside 0..=60",
            ),
            (
                "IOTO_FLEET__FORECAST_MINUTES",
                "1441",
                "fleet.forecast_minutes: 1441 is outside 0..=1440",
            ),
        ] {
            let err = format!("{:#}", load(None, env(&[(var, hostile)])).unwrap_err());
            assert!(err.contains(says), "{var}={hostile}: {err}");
        }
        let loaded = load(None, env(&[("IOTO_FLEET__QUOTA_SWEEP_SECONDS", "0")])).unwrap();
        assert_eq!(loaded.config.fleet.quota_sweep_seconds, 0);
        let loaded = load(None, env(&[("IOTO_FLEET__FORECAST_MINUTES", "0")])).unwrap();
        assert_eq!(loaded.config.fleet.forecast_minutes, 0);
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
