#![doc = include_str!("../README.md")]

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use ioto_domain::ports::network::{NetworkAdapter, NetworkFailure, NetworkReceipt, NetworkRequest};
use ioto_domain::ports::EngineInfo;
use ioto_domain::{Error, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use uuid::Uuid;

/// How the simulated HLR behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HlrProfile {
    /// Transactions per second it accepts; more wait their turn.
    pub tps: u32,
    /// Median and 99th percentile of a transaction's latency, in milliseconds (log-normal).
    pub latency_median_ms: f64,
    pub latency_p99_ms: f64,
    /// Share of transactions that fail and may be retried (0 to 1).
    pub transient_failure_rate: f64,
    /// Share of transactions refused for good (0 to 1).
    pub permanent_failure_rate: f64,
    /// Seed of the random draws (the same seed and order of requests give the same outcomes).
    pub seed: Option<u64>,
    /// While this file exists the HLR is down: every transaction waits `latency_p99_ms` and
    /// gets no answer (a transient failure), as a real HLR behind a broken link would behave.
    /// Fault drills create and remove the file (`scripts/faults.sh`).
    pub down_file: Option<std::path::PathBuf>,
}

impl Default for HlrProfile {
    fn default() -> Self {
        Self {
            tps: 2_000,
            latency_median_ms: 40.0,
            latency_p99_ms: 250.0,
            transient_failure_rate: 0.0,
            permanent_failure_rate: 0.0,
            seed: None,
            down_file: None,
        }
    }
}

impl HlrProfile {
    /// Refuses values the simulator cannot honour, naming the setting.
    pub fn check(&self, prefix: &str) -> Result<()> {
        let field = |f: &str| format!("{prefix}{f}");
        if self.tps == 0 || self.tps > 1_000_000 {
            return Err(Error::invalid(field("tps"), "must be between 1 and 1000000"));
        }
        if !(self.latency_median_ms.is_finite() && self.latency_median_ms >= 0.0) {
            return Err(Error::invalid(field("latency_median_ms"), "must be 0 or more"));
        }
        if !(self.latency_p99_ms.is_finite() && self.latency_p99_ms >= self.latency_median_ms) {
            return Err(Error::invalid(
                field("latency_p99_ms"),
                "must be at least latency_median_ms",
            ));
        }
        for (name, rate) in [
            ("transient_failure_rate", self.transient_failure_rate),
            ("permanent_failure_rate", self.permanent_failure_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(Error::invalid(field(name), "must be between 0 and 1"));
            }
        }
        if self.transient_failure_rate + self.permanent_failure_rate > 1.0 {
            return Err(Error::invalid(
                field("permanent_failure_rate"),
                "the two failure rates add up to more than 1",
            ));
        }
        Ok(())
    }
}

/// Answers kept for repeated request ids.
const REMEMBERED: usize = 200_000;

type Answer = std::result::Result<NetworkReceipt, NetworkFailure>;

struct State {
    rng: StdRng,
    /// The earliest instant the next transaction may start (capacity: one per 1/tps).
    next_slot: Instant,
    answers: HashMap<Uuid, Answer>,
    order: VecDeque<Uuid>,
    sent: u64,
}

/// An HLR in memory: capacity, latency and failures as configured.
pub struct SimulatedHlr {
    profile: HlrProfile,
    interval: Duration,
    state: Mutex<State>,
}

impl SimulatedHlr {
    pub fn new(profile: HlrProfile) -> Result<Self> {
        profile.check("network.simulated.")?;
        let rng = match profile.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        Ok(Self {
            interval: Duration::from_secs_f64(1.0 / f64::from(profile.tps)),
            profile,
            state: Mutex::new(State {
                rng,
                next_slot: Instant::now(),
                answers: HashMap::new(),
                order: VecDeque::new(),
                sent: 0,
            }),
        })
    }

    pub fn profile(&self) -> &HlrProfile {
        &self.profile
    }

    /// Transactions the HLR has executed (repeated ids not counted again).
    pub fn executed(&self) -> u64 {
        self.lock().sent
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the profile's `down_file` exists now.
    fn is_down(&self) -> bool {
        self.profile
            .down_file
            .as_deref()
            .is_some_and(|f| std::fs::symlink_metadata(f).is_ok())
    }

    /// A log-normal latency with the profile's median and 99th percentile.
    fn latency(&self, rng: &mut StdRng) -> Duration {
        let median = self.profile.latency_median_ms;
        if median <= 0.0 {
            return Duration::ZERO;
        }
        // z of the 99th percentile of the standard normal.
        let sigma = (self.profile.latency_p99_ms / median).ln() / 2.326_348;
        // Box–Muller.
        let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        Duration::from_secs_f64((median * (sigma * z).exp()).min(60_000.0) / 1e3)
    }
}

#[async_trait]
impl NetworkAdapter for SimulatedHlr {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            engine: "simulated-hlr",
            location: format!(
                "in process ({} TPS, latency median {} ms, p99 {} ms)",
                self.profile.tps, self.profile.latency_median_ms, self.profile.latency_p99_ms
            ),
        }
    }

    async fn send(&self, request: &NetworkRequest) -> Answer {
        if self.is_down() {
            tokio::time::sleep(Duration::from_secs_f64(self.profile.latency_p99_ms / 1e3)).await;
            return Err(NetworkFailure::Transient("the HLR did not answer".into()));
        }
        let (start, latency, draw) = {
            let mut s = self.lock();
            if let Some(a) = s.answers.get(&request.id) {
                return a.clone();
            }
            let now = Instant::now();
            let start = s.next_slot.max(now);
            s.next_slot = start + self.interval;
            let latency = self.latency(&mut s.rng);
            let draw: f64 = s.rng.gen();
            (start, latency, draw)
        };
        let due = start + latency;
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        let p = &self.profile;
        let answer = if draw < p.permanent_failure_rate {
            Err(NetworkFailure::Permanent(format!(
                "subscriber {} is not provisioned for {}",
                request.imsi,
                request.action.as_str()
            )))
        } else if draw < p.permanent_failure_rate + p.transient_failure_rate {
            Err(NetworkFailure::Transient("the HLR is busy; try again".into()))
        } else {
            Ok(NetworkReceipt {
                reference: format!("hlr-{}", request.id.simple()),
                latency,
            })
        };
        let mut s = self.lock();
        // A repeated request that raced this one keeps the first answer.
        if let Some(a) = s.answers.get(&request.id) {
            return a.clone();
        }
        // A transient failure did nothing: a retry with the same id is a new attempt.
        if !matches!(answer, Err(NetworkFailure::Transient(_))) {
            s.sent += 1;
            s.answers.insert(request.id, answer.clone());
            s.order.push_back(request.id);
            if s.order.len() > REMEMBERED {
                if let Some(old) = s.order.pop_front() {
                    s.answers.remove(&old);
                }
            }
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ioto_domain::identifiers::{Iccid, Imsi};
    use ioto_domain::ports::network::NetworkAction;
    use ioto_domain::TenantId;

    fn request(n: u64) -> NetworkRequest {
        NetworkRequest {
            id: Uuid::new_v4(),
            tenant_id: TenantId(Uuid::nil()),
            iccid: Iccid::with_check_digit(&format!("894400000000{n:07}")).expect("a valid ICCID"),
            imsi: Imsi::parse("234150000000001").expect("a valid IMSI"),
            action: NetworkAction::Activate,
        }
    }

    #[tokio::test]
    async fn capacity_paces_transactions() {
        let hlr = SimulatedHlr::new(HlrProfile {
            tps: 200,
            latency_median_ms: 0.0,
            latency_p99_ms: 0.0,
            ..HlrProfile::default()
        })
        .unwrap();
        let started = std::time::Instant::now();
        let mut all = Vec::new();
        for i in 0..100 {
            all.push(hlr.send(&request(i)).await);
        }
        let took = started.elapsed();
        assert!(all.iter().all(Result::is_ok));
        // 100 transactions at 200 per second take half a second, not less.
        assert!(took >= Duration::from_millis(490), "{took:?}");
        assert!(took < Duration::from_millis(900), "{took:?}");
        assert_eq!(hlr.executed(), 100);
    }

    #[tokio::test]
    async fn failures_follow_the_rates_and_a_repeated_id_does_not_act_twice() {
        let hlr = SimulatedHlr::new(HlrProfile {
            tps: 1_000_000,
            latency_median_ms: 0.0,
            latency_p99_ms: 0.0,
            transient_failure_rate: 0.2,
            permanent_failure_rate: 0.1,
            seed: Some(7),
            down_file: None,
        })
        .unwrap();
        let (mut ok, mut transient, mut permanent) = (0, 0, 0);
        for i in 0..5_000 {
            match hlr.send(&request(i)).await {
                Ok(_) => ok += 1,
                Err(NetworkFailure::Transient(_)) => transient += 1,
                Err(NetworkFailure::Permanent(_)) => permanent += 1,
            }
        }
        assert!((3_300..3_700).contains(&ok), "{ok}");
        assert!((850..1_150).contains(&transient), "{transient}");
        assert!((400..600).contains(&permanent), "{permanent}");
        let r = request(1);
        let first = loop {
            match hlr.send(&r).await {
                Err(NetworkFailure::Transient(_)) => continue,
                other => break other,
            }
        };
        let before = hlr.executed();
        assert_eq!(hlr.send(&r).await, first, "the first answer, again");
        assert_eq!(hlr.executed(), before, "not executed twice");
    }

    #[tokio::test]
    async fn while_its_down_file_exists_nothing_is_executed() {
        let down = std::env::temp_dir().join(format!("ioto-hlr-down-{}", Uuid::new_v4().simple()));
        let hlr = SimulatedHlr::new(HlrProfile {
            latency_median_ms: 1.0,
            latency_p99_ms: 2.0,
            down_file: Some(down.clone()),
            ..HlrProfile::default()
        })
        .unwrap();
        assert!(hlr.send(&request(1)).await.is_ok());
        std::fs::write(&down, b"").unwrap();
        let r = request(2);
        assert!(
            matches!(hlr.send(&r).await, Err(NetworkFailure::Transient(ref why)) if why.contains("did not answer")),
            "a down HLR gives no answer"
        );
        assert_eq!(hlr.executed(), 1, "nothing executed while down");
        std::fs::remove_file(&down).unwrap();
        assert!(
            hlr.send(&r).await.is_ok(),
            "the same request succeeds once it is back"
        );
        assert_eq!(hlr.executed(), 2);
    }

    #[test]
    fn a_bad_profile_names_the_setting() {
        let bad = HlrProfile {
            latency_p99_ms: 1.0,
            latency_median_ms: 5.0,
            ..HlrProfile::default()
        };
        let e = SimulatedHlr::new(bad).err().unwrap();
        assert!(
            matches!(e, Error::InvalidInput { ref field, .. } if field == "network.simulated.latency_p99_ms"),
            "{e:?}"
        );
        let zero = HlrProfile {
            tps: 0,
            ..HlrProfile::default()
        };
        assert!(SimulatedHlr::new(zero).is_err());
    }
}
