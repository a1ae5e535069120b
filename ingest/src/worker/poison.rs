//! The slow path: a batch counted, written and committed on its own, with a part the store refuses
//! for its content halved until the one event it cannot hold is found and dead-lettered.

use super::*;
use ioto_app::ingest::Counted;
use ioto_app::{BatchOutcome, CdrIngest, CdrOutcome, DeadLetter, SessionIngest};
use ioto_domain::ports::{BatchConsumer, Delivery};
use ioto_domain::Result;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::watch;

/// What counts a part of a batch and writes it: session or CDR ingest.
#[async_trait::async_trait]
pub(super) trait Counting: Send {
    type Outcome: Default + Send;
    async fn count(&mut self, part: &[Sourced]) -> Result<Self::Outcome>;
    fn merge(into: &mut Self::Outcome, part: Self::Outcome);
    fn dead(outcome: &mut Self::Outcome) -> &mut Vec<DeadLetter>;
}

#[async_trait::async_trait]
impl Counting for SessionIngest {
    type Outcome = BatchOutcome;
    async fn count(&mut self, part: &[Sourced]) -> Result<BatchOutcome> {
        self.process(part).await
    }
    fn merge(into: &mut BatchOutcome, part: BatchOutcome) {
        into.merge(part);
    }
    fn dead(outcome: &mut BatchOutcome) -> &mut Vec<DeadLetter> {
        &mut outcome.dead
    }
}

#[async_trait::async_trait]
impl Counting for CdrIngest {
    type Outcome = CdrOutcome;
    async fn count(&mut self, part: &[Sourced]) -> Result<CdrOutcome> {
        self.process(part).await
    }
    fn merge(into: &mut CdrOutcome, part: CdrOutcome) {
        into.merge(part);
    }
    fn dead(outcome: &mut CdrOutcome) -> &mut Vec<DeadLetter> {
        &mut outcome.dead
    }
}

/// Counts and writes `items` in order. When the store refuses a part for its content
/// (`InvalidInput`), the part is halved and each half tried in turn, so a single event the store
/// cannot hold is found and dead-lettered as `UNSTORABLE` while everything around it counts.
/// Any other error (an outage) ends the attempt: the caller retries the whole batch, and what
/// landed meanwhile is recognised as counted.
pub(super) async fn isolating<C: Counting>(counting: &mut C, items: &[Sourced]) -> Result<C::Outcome> {
    let mut out = C::Outcome::default();
    if items.is_empty() {
        return Ok(out);
    }
    let mut parts: Vec<&[Sourced]> = vec![items];
    while let Some(part) = parts.pop() {
        match counting.count(part).await {
            Ok(o) => C::merge(&mut out, o),
            Err(ioto_domain::Error::InvalidInput { .. }) if part.len() > 1 => {
                let (first, second) = part.split_at(part.len() / 2);
                parts.push(second);
                parts.push(first);
            }
            Err(ioto_domain::Error::InvalidInput { field, reason }) => {
                let (source, payload) = &part[0];
                tracing::warn!(source = %source, field = %field, reason = %reason,
                    "the usage store refused one event; it goes to the dead-letter topic");
                C::dead(&mut out).push(DeadLetter {
                    source: source.clone(),
                    rejection: ioto_domain::usage::Rejection::Unstorable {
                        detail: format!("{field}: {reason}"),
                    },
                    payload: payload.clone(),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

impl Worker {
    /// The slow path: counts, writes and commits one batch on its own, retrying until the store
    /// takes it. `false`: shutdown, or retrying outlasted the group's patience.
    pub(super) async fn count_until_committed(
        &mut self,
        batch: Vec<Delivery>,
        generation: u64,
        consumer: &mut dyn BatchConsumer,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let (sessions, cdrs) = self.split(&batch);
        let started = Instant::now();
        let patience = crate::kafka::MAX_POLL_INTERVAL.mul_f64(0.8);
        let mut attempt = 0;
        loop {
            let Some(hold) = consumer.hold(generation) else {
                // The assignment moved on: whoever owns the partitions now counts it.
                self.forget_progress();
                return true;
            };
            let counted = async {
                let s = isolating(&mut self.sessions, &sessions).await?;
                let c = isolating(&mut self.cdrs, &cdrs).await?;
                Ok::<_, ioto_domain::Error>((s, c))
            }
            .await;
            match counted {
                Ok((s, c)) => {
                    self.visible(&batch, chrono::Utc::now());
                    return self.conclude(&batch, hold, &s, &c, consumer, shutdown).await != Finish::GiveUp;
                }
                Err(e) => {
                    drop(hold);
                    self.forget_progress();
                    self.stats.write_retries.fetch_add(1, Ordering::Relaxed);
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, events = batch.len(),
                        "counting the batch failed; it is retried, nothing is committed meanwhile");
                    if pause(backoff(attempt), shutdown).await {
                        return false;
                    }
                    if started.elapsed() > patience {
                        tracing::warn!(
                            "the usage store stayed unreachable; rejoining the group from the last commit"
                        );
                        return false;
                    }
                }
            }
        }
    }
}
