//! librdkafka's own logs and errors, routed to tracing without flooding it: while a broker is
//! down librdkafka reports the same error many times a second from every client.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;

/// The same message is logged at most once per this interval.
const REPEAT_AFTER: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct QuietContext {
    last: Mutex<HashMap<String, Instant>>,
}

impl QuietContext {
    fn first_in_a_while(&self, key: &str) -> bool {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match last.get(key) {
            Some(at) if at.elapsed() < REPEAT_AFTER => false,
            _ => {
                last.insert(key.to_owned(), Instant::now());
                true
            }
        }
    }
}

impl ClientContext for QuietContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                if self.first_in_a_while(fac) {
                    tracing::warn!(target: "librdkafka", facility = fac, "{message}");
                }
            }
            _ => tracing::debug!(target: "librdkafka", facility = fac, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if self.first_in_a_while(&error.to_string()) {
            tracing::warn!(target: "librdkafka", %error, "{reason} (repeats are muted for 30 s)");
        }
    }
}

impl ConsumerContext for QuietContext {}

/// A group member's context: quiet logs, and a count of assignment changes.
#[derive(Default)]
pub struct GroupContext {
    quiet: QuietContext,
    pub generation: AtomicU64,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.quiet.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.quiet.error(error, reason);
    }
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) | Rebalance::Revoke(tpl) => {
                self.generation.fetch_add(1, Ordering::SeqCst);
                tracing::info!(
                    partitions = tpl.count(),
                    assigned = matches!(rebalance, Rebalance::Assign(_)),
                    "consumer group rebalance"
                );
            }
            Rebalance::Error(e) => {
                self.generation.fetch_add(1, Ordering::SeqCst);
                tracing::warn!(error = %e, "consumer group rebalance failed");
            }
        }
    }
}
