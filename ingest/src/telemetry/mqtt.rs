//! The telemetry source on an MQTT broker (rumqttc).

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use ioto_domain::ports::{EngineInfo, TelemetryAck, TelemetryMessage, TelemetrySource};
use ioto_domain::usage::TELEMETRY_FILTER;
use ioto_domain::{Error, Result};
use rumqttc::{AsyncClient, Event, EventLoop, Packet, Publish, QoS};
use tokio::sync::mpsc;

use super::MqttConfig;

/// Messages in flight per subscriber (unacknowledged at the broker) and queued towards the ingest.
const IN_FLIGHT: u16 = 1000;

pub struct MqttTelemetry {
    config: MqttConfig,
}

impl MqttTelemetry {
    pub fn new(config: MqttConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &MqttConfig {
        &self.config
    }

    fn connect(&self, role: &str, keep_alive: Duration, cap: usize) -> (AsyncClient, EventLoop) {
        let mut o = self
            .config
            .options(format!("ioto-{role}-{}", uuid::Uuid::new_v4().simple()));
        o.set_keep_alive(keep_alive);
        AsyncClient::new(o, cap)
    }

    fn unavailable(&self, why: impl std::fmt::Display) -> Error {
        Error::Unavailable(format!("MQTT broker at {} ({why})", self.config.display()))
    }
}

struct MqttAck {
    client: AsyncClient,
    publish: Publish,
}

#[async_trait]
impl TelemetryAck for MqttAck {
    async fn ack(self: Box<Self>) {
        // A lost connection drops the acknowledgement; the broker then delivers the message again.
        let _ = self.client.ack(&self.publish).await;
    }
}

#[async_trait]
impl TelemetrySource for MqttTelemetry {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            engine: "mqtt",
            location: self.config.display(),
        }
    }

    async fn ping(&self) -> Result<()> {
        let (client, mut events) = self.connect("ping", Duration::from_secs(5), 4);
        let result = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
        .await;
        let _ = client.disconnect().await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.unavailable(e)),
            Err(_) => Err(self.unavailable("no answer within 3 s")),
        }
    }

    async fn subscribe(&self, group: &str) -> Result<BoxStream<'static, TelemetryMessage>> {
        let (client, mut events) = self.connect("telemetry", Duration::from_secs(15), 1024);
        // Acknowledged by the ingest after storing, not on receipt.
        events.mqtt_options.set_manual_acks(true);
        events.mqtt_options.set_inflight(IN_FLIGHT);
        let filter = format!("$share/{group}/{TELEMETRY_FILTER}");
        let (tx, rx) = mpsc::channel::<TelemetryMessage>(usize::from(IN_FLIGHT));
        let broker = self.config.display();
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let event = tokio::select! {
                    _ = tx.closed() => break,
                    e = events.poll() => e,
                };
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        failures = 0;
                        // Subscribed again after each (re)connect: the session is clean.
                        if let Err(e) = client.subscribe(&filter, QoS::AtLeastOnce).await {
                            tracing::warn!(error = %e, "MQTT subscribe failed");
                        }
                        tracing::info!(%filter, %broker, "telemetry subscription active");
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let ack = MqttAck {
                            client: client.clone(),
                            publish: p.clone(),
                        };
                        let msg = TelemetryMessage::new(p.topic, p.payload.to_vec(), Some(Box::new(ack)));
                        if tx.send(msg).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        failures += 1;
                        if failures == 1 || failures % 30 == 0 {
                            tracing::warn!(error = %e, %broker, "MQTT connection lost; reconnecting");
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            let _ = client.disconnect().await;
        });
        Ok(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) }).boxed())
    }

    async fn publish(&self, messages: &[(String, Vec<u8>)]) -> Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let (client, mut events) =
            self.connect("publisher", Duration::from_secs(10), messages.len().min(1024));
        let expected = messages.len();
        let pump = tokio::spawn(async move {
            let mut acked = 0usize;
            while acked < expected {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(())
        });
        for (topic, payload) in messages {
            client
                .publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone())
                .await
                .map_err(|e| self.unavailable(e))?;
        }
        let waited = tokio::time::timeout(Duration::from_secs(10), pump).await;
        let _ = client.disconnect().await;
        match waited {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(self.unavailable(e)),
            Ok(Err(e)) => Err(Error::Internal(format!("MQTT publisher task: {e}"))),
            Err(_) => Err(self.unavailable(format!("{expected} messages not all acknowledged within 10 s"))),
        }
    }
}
