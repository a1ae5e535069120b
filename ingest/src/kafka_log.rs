//! librdkafka's own logs and errors, routed to tracing without flooding it: while a broker is
//! down librdkafka reports the same error many times a second from every client.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use std::sync::Condvar;

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

/// A group member's context: quiet logs, a count of assignment changes, and the holds that make
/// a rebalance wait until the batches being written are committed.
#[derive(Default)]
pub struct GroupContext {
    quiet: QuietContext,
    state: Mutex<Assignment>,
    released: Condvar,
}

#[derive(Default)]
struct Assignment {
    generation: u64,
    holds: usize,
}

impl GroupContext {
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Assignment> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a hold on `generation`'s assignment; `false` when it changed already.
    pub fn hold(&self, generation: u64) -> bool {
        let mut s = self.lock();
        if s.generation != generation {
            return false;
        }
        s.holds += 1;
        true
    }

    pub fn release(&self) {
        let mut s = self.lock();
        s.holds = s.holds.saturating_sub(1);
        self.released.notify_all();
    }
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
    /// Runs on the consumer's own thread: waits until no batch is being written, then moves the
    /// generation on so no new hold is granted for the old assignment.
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        let mut s = self.lock();
        while s.holds > 0 {
            s = self
                .released
                .wait(s)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        s.generation += 1;
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) | Rebalance::Revoke(tpl) => {
                self.lock().generation += 1;
                tracing::info!(
                    partitions = tpl.count(),
                    assigned = matches!(rebalance, Rebalance::Assign(_)),
                    "consumer group rebalance"
                );
            }
            Rebalance::Error(e) => {
                self.lock().generation += 1;
                tracing::warn!(error = %e, "consumer group rebalance failed");
            }
        }
    }
}
