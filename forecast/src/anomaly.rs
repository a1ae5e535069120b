//! Per-SIM anomaly detection: pure functions from one SIM's recent history to what was unusual
//! about it on a day, each anomaly with a score, a severity, a sentence a person understands and
//! the numbers behind it.
//!
//! ```text
//!  SimHistory ─┬─ daily bytes ───▶ usage ───▶ spike, silence   (own history: seasonal baseline,
//!              │                     ▲                          robust z of the residual;
//!              │   CohortStats ──────┘                          new SIM: the cohort's day)
//!              ├─ daily sessions ▶ sessions ▶ session storm     (28-day median and MAD)
//!              ├─ networks ──────▶ network ─▶ new network, new country (not seen in 30 days)
//!              ├─ IMEIs ─────────▶ device ──▶ IMEI change       (last IMEI before the day)
//!              └─ dismissals ────▶ feedback: accepted levels and values, dismissed kinds
//!                                        │
//!                                        ▼
//!                      Vec<Anomaly>, highest score first
//! ```
//!
//! Every cut is a named constant in [`thresholds`], with its reason; the detector prefers
//! precision over recall. Nothing here reads a clock or a store: the caller gathers the history,
//! the cohort's statistics ([`cohort_stats`]) and the dismissals, and stores what comes back.

mod device;
mod feedback;
mod model;
mod network;
mod sessions;
mod stats;
mod text;
pub mod thresholds;
mod usage;

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

pub use model::{
    Anomaly, AnomalyKind, Baseline, Dismissal, Evidence, ImeiSeen, NetworkDay, Severity, SimHistory,
    UnknownAnomalyKind,
};
pub use stats::{cohort_stats, fleet_outliers, CohortStats};
pub use text::bytes_text;

use thresholds::EVIDENCE_DAYS;

/// The anomalies of one SIM on `day`, highest score first.
///
/// Usage is judged against the SIM's own history when it has at least
/// [`OWN_HISTORY_MIN_DAYS`](thresholds::OWN_HISTORY_MIN_DAYS) days before `day`, else against
/// `cohort` (the same day's statistics of similar SIMs; no usage anomalies without one). Sessions,
/// networks and IMEIs are always judged against the SIM's own history. Dismissals in the history
/// are taken into account (see [`Dismissal`]).
pub fn detect(history: &SimHistory, day: NaiveDate, cohort: Option<&CohortStats>) -> Vec<Anomaly> {
    let mut found = usage::detect(history, day, cohort);
    found.extend(sessions::detect(history, day));
    found.extend(network::detect(history, day));
    found.extend(device::detect(history, day));
    // A stable sort: equal scores keep the order above.
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    found
}

/// The position of `day` in a daily series of `len` entries starting at `start`; `None` when the
/// series does not reach it.
fn day_index(start: NaiveDate, day: NaiveDate, len: usize) -> Option<usize> {
    let index = usize::try_from((day - start).num_days()).ok()?;
    (index < len).then_some(index)
}

/// The evidence series of a daily series of which `values` is the part up to the detection day:
/// its last [`EVIDENCE_DAYS`] entries.
fn evidence_series(values: &[f64]) -> Vec<f64> {
    values
        .iter()
        .skip(values.len().saturating_sub(EVIDENCE_DAYS))
        .copied()
        .collect()
}

/// How many distinct values (networks, countries, IMEIs) were seen per day over the last
/// [`EVIDENCE_DAYS`] days up to `day`, oldest first, from the first day with a record.
fn distinct_per_day<'a>(records: impl IntoIterator<Item = (NaiveDate, &'a str)>, day: NaiveDate) -> Vec<f64> {
    let window = i64::try_from(EVIDENCE_DAYS).unwrap_or(i64::MAX);
    let mut per_day: BTreeMap<i64, BTreeSet<&'a str>> = BTreeMap::new();
    let mut oldest: i64 = 0;
    for (seen, value) in records {
        let back = (day - seen).num_days();
        if !(0..window).contains(&back) {
            continue;
        }
        oldest = oldest.max(back);
        per_day.entry(back).or_default().insert(value);
    }
    (0..=oldest)
        .rev()
        .map(|back| per_day.get(&back).map_or(0.0, |values| values.len() as f64))
        .collect()
}

#[cfg(test)]
mod tests;
