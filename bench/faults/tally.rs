//! What the load counts while it runs: each call's outcome per phase (before, during and after an
//! outage), the shared counters, and the server's memory.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

/// How one API call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    Data,
    Unavailable,
    /// An answer that is neither data nor `UNAVAILABLE`: a user would see it.
    Other(String),
}

#[derive(Default)]
pub(super) struct PhaseStats {
    pub(super) data: u64,
    pub(super) unavailable: u64,
    pub(super) other: u64,
    pub(super) latencies_ms: Vec<f64>,
}

/// Calls per phase, and the first few answers a user should not see.
#[derive(Default)]
pub(super) struct Calls {
    pub(super) phases: BTreeMap<usize, (String, PhaseStats)>,
    pub(super) others: Vec<String>,
}

/// The phase calls are counted in now: its index and label.
pub(super) struct Phase {
    pub(super) current: Mutex<(usize, String)>,
}

impl Phase {
    pub(super) fn get(&self) -> (usize, String) {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set(&self, index: usize, label: String) {
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (index, label);
    }
}

pub(super) struct Shared {
    pub(super) phase: Phase,
    pub(super) calls: Mutex<Calls>,
    pub(super) messages: AtomicU64,
    pub(super) subscription_errors: Mutex<BTreeMap<String, u64>>,
    pub(super) closes: Mutex<BTreeMap<String, u64>>,
    pub(super) reconnects: AtomicU64,
    pub(super) open_subscriptions: AtomicU64,
}

impl Shared {
    pub(super) fn record(&self, op: &str, outcome: Outcome, ms: f64) {
        let (index, label) = self.phase.get();
        let mut calls = self
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Outcome::Other(why) = &outcome {
            if calls.others.len() < 20 {
                calls.others.push(format!("{label}: {op}: {why}"));
            }
        }
        let (_, stats) = calls
            .phases
            .entry(index)
            .or_insert_with(|| (label, PhaseStats::default()));
        match outcome {
            Outcome::Data => stats.data += 1,
            Outcome::Unavailable => stats.unavailable += 1,
            Outcome::Other(_) => stats.other += 1,
        }
        stats.latencies_ms.push(ms);
    }

    pub(super) fn count(map: &Mutex<BTreeMap<String, u64>>, key: String) {
        *map.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key)
            .or_default() += 1;
    }
}

/// The resident memory of a process, in MiB.
pub(super) fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

pub(super) fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
