//! Where device telemetry comes from: an MQTT broker in production, an in-process feed on one
//! machine. Devices publish readings on `ioto/devices/{id}/telemetry` (`usage::telemetry_topic`);
//! the telemetry ingest subscribes to every device and acknowledges each message only after it
//! is stored, so a crash between receiving and storing makes the source deliver it again.

use async_trait::async_trait;
use futures::stream::BoxStream;

use super::EngineInfo;
use crate::Result;

/// Acknowledges one message to its source.
#[async_trait]
pub trait TelemetryAck: Send + Sync {
    async fn ack(self: Box<Self>);
}

/// One device message as it arrived.
pub struct TelemetryMessage {
    pub topic: String,
    pub payload: Vec<u8>,
    ack: Option<Box<dyn TelemetryAck>>,
}

impl TelemetryMessage {
    pub fn new(topic: String, payload: Vec<u8>, ack: Option<Box<dyn TelemetryAck>>) -> Self {
        Self { topic, payload, ack }
    }

    /// Tells the source the message is stored (nothing to do for sources without acknowledgements).
    pub async fn ack(self) {
        if let Some(a) = self.ack {
            a.ack().await;
        }
    }
}

impl std::fmt::Debug for TelemetryMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryMessage")
            .field("topic", &self.topic)
            .field("payload_bytes", &self.payload.len())
            .field("acknowledged_by_source", &self.ack.is_some())
            .finish()
    }
}

#[async_trait]
pub trait TelemetrySource: Send + Sync + 'static {
    fn info(&self) -> EngineInfo;

    /// Whether the source can be reached now (`Unavailable` names it, without credentials).
    async fn ping(&self) -> Result<()>;

    /// Every device's messages from now on, shared between the subscribers of `group`: each
    /// message reaches one subscriber of a group, and every group. Reconnects by itself; ends
    /// when the stream is dropped.
    async fn subscribe(&self, group: &str) -> Result<BoxStream<'static, TelemetryMessage>>;

    /// Publishes messages (topic, payload) and returns once the source has accepted all of them
    /// (at least once: an MQTT broker's QoS 1 acknowledgement).
    async fn publish(&self, messages: &[(String, Vec<u8>)]) -> Result<()>;
}
