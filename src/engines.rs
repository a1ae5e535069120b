//! Picks the adapter behind each port from configuration, and checks each can be reached.

use std::sync::Arc;

use ioto_analytics::{ClickHouseConfig, ClickHouseUsage, EmbeddedUsage};
use ioto_domain::ports::{Directory, EngineInfo, EventBus, Fleet, TelemetrySource, UsageStore};
use ioto_ingest::telemetry::{InProcessTelemetry, MqttConfig, MqttTelemetry};
use ioto_ingest::{InProcessBus, KafkaBus, KafkaConfig};
use ioto_store::StoreLocation;

use crate::config::Config;

/// The adapters wired to the ports.
#[derive(Clone)]
pub struct Engines {
    pub directory: Arc<dyn Directory>,
    pub fleet: Arc<dyn Fleet>,
    pub bulk_jobs: Arc<dyn ioto_domain::ports::BulkJobStore>,
    pub export_jobs: Arc<dyn ioto_domain::ports::ExportJobStore>,
    pub notifications: Arc<dyn ioto_domain::ports::NotificationStore>,
    pub quotas: Arc<dyn ioto_domain::ports::QuotaStore>,
    pub quota_pools: Arc<dyn ioto_domain::ports::QuotaPoolStore>,
    pub alerts: Arc<dyn ioto_domain::ports::AlertStore>,
    /// Forecasts, anomalies and the claims of the forecast pass.
    pub forecasts: Arc<dyn ioto_domain::ports::ForecastStore>,
    pub billing: Arc<dyn ioto_domain::ports::billing::Billing>,
    /// What analytics and the dashboard read of the fleet.
    pub analytics: Arc<dyn ioto_domain::ports::analytics::AnalyticsFleet>,
    pub usage: Arc<dyn UsageStore>,
    pub bus: Arc<dyn EventBus>,
    pub telemetry: Arc<dyn TelemetrySource>,
    /// Where SIM state changes are confirmed before they are recorded.
    pub network: Arc<dyn ioto_domain::ports::network::NetworkAdapter>,
    pub topic_prefix: String,
}

impl Engines {
    /// Every port with its engine, for logs and `/readyz`.
    pub fn describe(&self) -> Vec<(&'static str, EngineInfo)> {
        vec![
            ("transactional store", self.directory.info()),
            ("usage store", self.usage.info()),
            ("event bus", self.bus.info()),
            ("device telemetry", self.telemetry.info()),
            ("network", self.network.info()),
        ]
    }

    /// Each engine's version, for the header every bench prints.
    pub async fn versions(&self) -> anyhow::Result<String> {
        Ok(format!(
            "engines: transactional store {}; usage store {}; event bus {}",
            self.directory.server_version().await?,
            match self.usage.server_version().await? {
                v if v.starts_with(|c: char| c.is_ascii_digit()) => format!("ClickHouse {v}"),
                v => v,
            },
            self.bus.server_version().await?
        ))
    }

    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.topic_prefix)
    }

    /// Rate cards, rating runs and their charges on these engines.
    pub fn billing_service(&self) -> ioto_app::billing::BillingService {
        ioto_app::billing::BillingService::new(
            self.billing.clone(),
            self.billing.clone(),
            self.usage.clone(),
            self.billing.clone(),
            self.billing.clone(),
            self.fleet.clone(),
        )
    }

    /// The forecast pass's ports on these engines, telling `notifier` of what it finds (and
    /// waking `delivery_wakeup`, where this process sends deliveries).
    pub fn forecast_ports(
        &self,
        notifier: Arc<dyn ioto_domain::ports::FleetNotifier>,
        delivery_wakeup: Option<Arc<tokio::sync::Notify>>,
    ) -> ioto_app::ForecastPorts {
        ioto_app::ForecastPorts {
            store: Arc::clone(&self.forecasts),
            directory: Arc::clone(&self.directory),
            quotas: Arc::clone(&self.quotas),
            pools: Arc::clone(&self.quota_pools),
            usage: self.usage.clone(),
            cards: self.billing.clone(),
            notifier,
            delivery_wakeup,
        }
    }
}

/// Which engine each port uses under `config`, without connecting.
pub fn describe_config(config: &Config) -> Vec<(&'static str, String)> {
    let pick = |set: bool, engine: &str, embedded: &str| {
        if set {
            engine.to_owned()
        } else {
            embedded.to_owned()
        }
    };
    vec![
        (
            "transactional store",
            pick(config.database.url.is_some(), "postgres", "sqlite"),
        ),
        (
            "usage store",
            pick(config.clickhouse.url.is_some(), "clickhouse", "embedded"),
        ),
        (
            "event bus",
            pick(config.kafka.brokers.is_some(), "kafka", "in-process"),
        ),
    ]
}

pub fn store_location(config: &Config) -> StoreLocation {
    match &config.database.url {
        Some(url) => StoreLocation::Postgres {
            url: url.expose().to_owned(),
        },
        None => StoreLocation::Sqlite {
            path: config.data_dir.join("ioto.sqlite"),
        },
    }
}

pub fn clickhouse_config(config: &Config) -> Option<ClickHouseConfig> {
    config.clickhouse.url.as_ref().map(|url| ClickHouseConfig {
        url: url.expose().to_owned(),
        database: config.clickhouse.database.clone(),
        user: config.clickhouse.user.clone(),
        password: config.clickhouse.password.as_ref().map(|p| p.expose().to_owned()),
    })
}

/// The MQTT broker `mqtt.url` names, or the in-process feed.
pub fn telemetry_source(config: &Config) -> anyhow::Result<Arc<dyn TelemetrySource>> {
    Ok(match &config.mqtt.url {
        Some(url) => Arc::new(MqttTelemetry::new(mqtt_config(
            url.expose(),
            config.mqtt.ca_file.as_deref(),
        )?)),
        None => Arc::new(InProcessTelemetry::default()),
    })
}

/// Where the system keeps its CA bundle (Debian/Ubuntu, Fedora/RHEL, Alpine, openSUSE).
const SYSTEM_CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// The broker's address from `mqtt.url`; for `mqtts://` with the CA certificates of
/// `mqtt.ca_file` or the system's bundle (never a clear-text fallback).
pub fn mqtt_config(url: &str, ca_file: Option<&std::path::Path>) -> anyhow::Result<MqttConfig> {
    let config = MqttConfig::parse(url)?;
    if !config.wants_tls() {
        return Ok(config);
    }
    let pem = match ca_file {
        Some(path) => std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("mqtt.ca_file: cannot read {} ({e})", path.display()))?,
        None => SYSTEM_CA_BUNDLES
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "mqtt.url is mqtts:// but no CA certificates were found: set mqtt.ca_file to the PEM file of the broker's CA"
                )
            })?,
    };
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        anyhow::bail!("mqtt.ca_file: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)");
    }
    Ok(config.with_ca_pem(pem))
}

/// Applies every migration (transactional store and usage store) as the owning user.
/// Processes sharing a Postgres store migrate the usage store one at a time (under
/// [`ioto_store::MigrationLock`]).
pub async fn migrate(config: &Config) -> anyhow::Result<Vec<u32>> {
    let store = store_location(config);
    ioto_store::migrate(&store).await?;
    let _lock = ioto_store::lock_usage_migrations(&store).await?;
    let usage = open_usage(config).await?;
    Ok(usage.migrate().await?)
}

async fn open_usage(config: &Config) -> anyhow::Result<Arc<dyn UsageStore>> {
    Ok(match clickhouse_config(config) {
        Some(ch) => Arc::new(ClickHouseUsage::connect(ch).await?),
        None => Arc::new(EmbeddedUsage::open(&config.data_dir.join("usage.sqlite")).await?),
    })
}

/// Connects every port; the first engine that cannot be reached ends start-up with its name.
pub async fn connect(config: &Config) -> anyhow::Result<Engines> {
    let store = ioto_store::connect(&store_location(config), config.database.max_connections).await?;
    let directory: Arc<dyn Directory> = Arc::new(store.directory());
    directory.ping().await?;
    // One adapter holds the fleet, its jobs, notifications and quotas (the same tables and
    // transactions); each port is handed out on its own.
    let fleet_store = store.fleet();
    let fleet: Arc<dyn Fleet> = Arc::new(fleet_store.clone());
    let bulk_jobs: Arc<dyn ioto_domain::ports::BulkJobStore> = Arc::new(fleet_store.clone());
    let export_jobs: Arc<dyn ioto_domain::ports::ExportJobStore> = Arc::new(fleet_store.clone());
    let notifications: Arc<dyn ioto_domain::ports::NotificationStore> = Arc::new(fleet_store.clone());
    let quotas: Arc<dyn ioto_domain::ports::QuotaStore> = Arc::new(fleet_store.clone());
    let quota_pools: Arc<dyn ioto_domain::ports::QuotaPoolStore> = Arc::new(fleet_store.clone());
    let forecasts: Arc<dyn ioto_domain::ports::ForecastStore> = Arc::new(fleet_store.clone());
    let alerts: Arc<dyn ioto_domain::ports::AlertStore> = Arc::new(fleet_store);
    let billing: Arc<dyn ioto_domain::ports::billing::Billing> = Arc::new(store.billing());
    let analytics: Arc<dyn ioto_domain::ports::analytics::AnalyticsFleet> = Arc::new(store.clone());
    let usage = open_usage(config).await?;
    let bus: Arc<dyn EventBus> = match &config.kafka.brokers {
        Some(brokers) => Arc::new(
            KafkaBus::connect(KafkaConfig {
                brokers: brokers.clone(),
                replication_factor: config.kafka.replication_factor,
                ..KafkaConfig::default()
            })
            .await?,
        ),
        None => Arc::new(InProcessBus::default()),
    };
    let telemetry = telemetry_source(config)?;
    telemetry.ping().await?;
    Ok(Engines {
        directory,
        fleet,
        bulk_jobs,
        export_jobs,
        notifications,
        quotas,
        quota_pools,
        alerts,
        forecasts,
        billing,
        analytics,
        usage,
        bus,
        telemetry,
        network: Arc::new(ioto_network::SimulatedHlr::new(config.network.simulated.clone())?),
        topic_prefix: config.kafka.topic_prefix.clone(),
    })
}
