//! Where an event's time goes on its way to the API, stage by stage, so that the slow stage is
//! named rather than guessed (`/metrics` and `ioto-bench ingest` print them):
//!
//! | stage | per | from → to |
//! |---|---|---|
//! | `in_broker` | event | published (the broker's timestamp) → handed to the worker by its poll (the broker fetch) |
//! | `poll` | batch | the worker asks for a batch → the batch is there (the batch wait: includes waiting for it to fill) |
//! | `lookup` | batch | the store reads counting needs: SIM owners, the progress of sessions the store may hold, CDRs already stored |
//! | `count` | batch | counting the batch without those reads: parsing, checks, the counting step |
//! | `write` | batch | writing the counted batch to the usage store until it acknowledges |
//! | `visible` | event | published → its batch acknowledged by the usage store (queries such as `sim.liveSession` read it from then on) |
//! | `commit` | batch | committing the batch's offsets to the broker |
//! | `counted` | event | published → committed as counted (announced to live subscriptions, never counted again) |
//!
//! Histograms with buckets growing by √2 from 100 µs, kept in atomics (no lock on the path).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets: upper bounds 100 µs × √2^i; the last one is unbounded.
const BUCKETS: usize = 48;

fn upper_bound(i: usize) -> f64 {
    if i + 1 == BUCKETS {
        f64::MAX
    } else {
        0.000_1 * 2f64.powf(i as f64 / 2.0)
    }
}

/// One stage's durations.
pub struct Timing {
    counts: [AtomicU64; BUCKETS],
    micros: AtomicU64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            micros: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Timing({} observations)", self.count())
    }
}

impl Timing {
    pub fn record(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = (0..BUCKETS)
            .find(|&i| secs <= upper_bound(i))
            .unwrap_or(BUCKETS - 1);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.micros.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Records the time from `since` (a message's broker timestamp, when it has one) to `now`;
    /// a timestamp ahead of `now` (clocks apart) records nothing.
    pub fn record_since(
        &self,
        since: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        if let Some(d) = since.and_then(|t| (now - t).to_std().ok()) {
            self.record(d);
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    pub fn sum(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::Relaxed))
    }

    /// `(upper bound in seconds, observations in that bucket)`, the last bound `f64::MAX`.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        (0..BUCKETS)
            .map(|i| (upper_bound(i), self.counts[i].load(Ordering::Relaxed)))
            .collect()
    }

    /// The `q` quantile (0–1) as the upper bound of its bucket (at most √2 above the true
    /// value); `None` before any observation.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        quantile(&self.buckets(), q)
    }
}

/// The `q` quantile of bucket counts as [`Timing::buckets`] gives them.
pub fn quantile(buckets: &[(f64, u64)], q: f64) -> Option<Duration> {
    let n: u64 = buckets.iter().map(|b| b.1).sum();
    if n == 0 {
        return None;
    }
    let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
    let mut seen = 0;
    for (i, (bound, c)) in buckets.iter().enumerate() {
        seen += c;
        if seen >= rank {
            let bound = if *bound == f64::MAX && i > 0 {
                buckets[i - 1].0 * 2.0
            } else {
                *bound
            };
            return Some(Duration::from_secs_f64(bound));
        }
    }
    None
}

/// Bucket counts per stage at one moment, to measure a phase: a later snapshot minus an earlier.
#[derive(Debug, Clone, Default)]
pub struct Snapshot(pub Vec<(&'static str, Vec<(f64, u64)>)>);

impl Snapshot {
    /// What was observed between `earlier` and this snapshot.
    #[must_use]
    pub fn minus(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot(
            self.0
                .iter()
                .map(|(stage, buckets)| {
                    let before = earlier.0.iter().find(|(s, _)| s == stage).map(|(_, b)| b);
                    let diff = buckets
                        .iter()
                        .enumerate()
                        .map(|(i, (bound, c))| (*bound, c - before.map_or(0, |b| b[i].1)))
                        .collect();
                    (*stage, diff)
                })
                .collect(),
        )
    }

    /// Observations and quantiles per stage.
    pub fn summary(&self) -> Vec<StageSummary> {
        self.0
            .iter()
            .map(|(stage, b)| StageSummary {
                stage,
                observations: b.iter().map(|x| x.1).sum(),
                p50: quantile(b, 0.5),
                p95: quantile(b, 0.95),
                p99: quantile(b, 0.99),
            })
            .collect()
    }
}

/// One stage of a [`Snapshot`], summed up.
#[derive(Debug, Clone)]
pub struct StageSummary {
    pub stage: &'static str,
    pub observations: u64,
    pub p50: Option<Duration>,
    pub p95: Option<Duration>,
    pub p99: Option<Duration>,
}

/// Every stage of the worker.
#[derive(Debug, Default)]
pub struct Stages {
    pub in_broker: Timing,
    pub poll: Timing,
    pub lookup: Timing,
    pub count: Timing,
    pub write: Timing,
    pub visible: Timing,
    pub commit: Timing,
    pub counted: Timing,
}

impl Stages {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(self.all().iter().map(|(s, t)| (*s, t.buckets())).collect())
    }

    /// `(name, timing)` in the order an event passes them.
    pub fn all(&self) -> [(&'static str, &Timing); 8] {
        [
            ("in_broker", &self.in_broker),
            ("poll", &self.poll),
            ("lookup", &self.lookup),
            ("count", &self.count),
            ("write", &self.write),
            ("visible", &self.visible),
            ("commit", &self.commit),
            ("counted", &self.counted),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_bounds_at_most_a_root_two_above() {
        let t = Timing::default();
        assert_eq!(t.quantile(0.5), None);
        for ms in 1..=100 {
            t.record(Duration::from_millis(ms));
        }
        for (q, exact) in [(0.5, 50.0), (0.95, 95.0), (0.99, 99.0)] {
            let got = t.quantile(q).unwrap().as_secs_f64() * 1000.0;
            assert!(
                got >= exact && got <= exact * 1.4143,
                "q{q}: {got} ms for {exact} ms"
            );
        }
        assert_eq!(t.count(), 100);
        assert_eq!(t.sum(), Duration::from_millis(5050));
        t.record(Duration::from_secs(100_000));
        assert!(
            t.quantile(1.0).unwrap() > Duration::from_secs(1000),
            "the open bucket"
        );
    }
}
