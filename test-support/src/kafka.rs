//! The Kafka-protocol broker tests use.

use ioto_ingest::{KafkaBus, KafkaConfig};

use crate::env_or;

pub fn brokers() -> String {
    env_or("IOTO_TEST_KAFKA_BROKERS", "127.0.0.1:9092")
}

/// A connected bus; fails loudly when no broker answers.
pub async fn bus() -> KafkaBus {
    let brokers = brokers();
    KafkaBus::connect(KafkaConfig { brokers: brokers.clone(), ..KafkaConfig::default() }).await.unwrap_or_else(|e| {
        panic!("the Kafka-protocol broker is not reachable at {brokers} ({e}); start it with scripts/engines.sh or set IOTO_TEST_KAFKA_BROKERS")
    })
}
