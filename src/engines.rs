//! Picks the adapter behind each port from configuration, and checks each can be reached.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ioto_analytics::{ClickHouseConfig, ClickHouseUsage, EmbeddedUsage};
use ioto_domain::ports::{Directory, EngineInfo, EventBus, Fleet, UsageStore};
use ioto_ingest::{InProcessBus, KafkaBus, KafkaConfig};
use ioto_store::StoreLocation;

use crate::config::Config;

/// The adapters wired to the ports.
#[derive(Clone)]
pub struct Engines {
    pub directory: Arc<dyn Directory>,
    pub fleet: Arc<dyn Fleet>,
    pub usage: Arc<dyn UsageStore>,
    pub bus: Arc<dyn EventBus>,
    pub telemetry: TelemetrySource,
    pub topic_prefix: String,
}

/// Where device telemetry comes from.
#[derive(Debug, Clone)]
pub enum TelemetrySource {
    /// The in-process simulator feed.
    InProcess,
    /// An MQTT broker.
    Mqtt {
        host: String,
        port: u16,
        display: String,
    },
}

impl TelemetrySource {
    pub fn info(&self) -> EngineInfo {
        match self {
            Self::InProcess => EngineInfo {
                engine: "in-process",
                location: "simulated feed".into(),
            },
            Self::Mqtt { display, .. } => EngineInfo {
                engine: "mqtt",
                location: display.clone(),
            },
        }
    }

    /// Connects and waits for the broker's CONNACK.
    pub async fn ping(&self) -> ioto_domain::Result<()> {
        let Self::Mqtt { host, port, display } = self else {
            return Ok(());
        };
        let mut opts =
            rumqttc::MqttOptions::new(format!("ioto-ping-{}", uuid::Uuid::new_v4()), host.clone(), *port);
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut events) = rumqttc::AsyncClient::new(opts, 4);
        let result = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match events.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
        .await;
        let _ = client.disconnect().await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ioto_domain::Error::Unavailable(format!(
                "MQTT broker at {display} ({e})"
            ))),
            Err(_) => Err(ioto_domain::Error::Unavailable(format!(
                "MQTT broker at {display} (no answer within 3 s)"
            ))),
        }
    }
}

impl Engines {
    /// Every port with its engine, for logs and `/readyz`.
    pub fn describe(&self) -> Vec<(&'static str, EngineInfo)> {
        vec![
            ("transactional store", self.directory.info()),
            ("usage store", self.usage.info()),
            ("event bus", self.bus.info()),
            ("device telemetry", self.telemetry.info()),
        ]
    }

    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.topic_prefix)
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

pub fn telemetry_source(config: &Config) -> anyhow::Result<TelemetrySource> {
    let Some(url) = &config.mqtt.url else {
        return Ok(TelemetrySource::InProcess);
    };
    let rest = url.expose().split_once("://").map_or(url.expose(), |(_, r)| r);
    let hostport = rest
        .rsplit_once('@')
        .map_or(rest, |(_, h)| h)
        .trim_end_matches('/');
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h.to_owned(),
            p.parse()
                .with_context(|| format!("mqtt.url: port '{p}' is not a number"))?,
        ),
        None => (hostport.to_owned(), 1883),
    };
    Ok(TelemetrySource::Mqtt {
        host,
        port,
        display: url.redacted(),
    })
}

/// Applies every migration (transactional store and usage store) as the owning user.
pub async fn migrate(config: &Config) -> anyhow::Result<Vec<u32>> {
    ioto_store::migrate(&store_location(config)).await?;
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
    let store =
        Arc::new(ioto_store::connect(&store_location(config), config.database.max_connections).await?);
    store.ping().await?;
    let directory: Arc<dyn Directory> = store.clone();
    let fleet: Arc<dyn Fleet> = store;
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
        usage,
        bus,
        telemetry,
        topic_prefix: config.kafka.topic_prefix.clone(),
    })
}
