//! The anomalies of one simulated SIM: planned on its usual days (so that each is what the product
//! calls an anomaly), then applied to its noisy days, with their labels.

use std::ops::Range;

use chrono::NaiveDate;

use super::rng::SplitMix64;
use super::sim::{Habits, COUNTRIES, HOME_NETWORK, NETWORKS_PER_COUNTRY, SECOND_NETWORK};
use super::{InjectedAnomaly, ANOMALY_SPACING_DAYS, ANOMALY_WINDOW_DAYS};
use crate::anomaly::thresholds::{SILENCE_MIN_BASELINE_BYTES, SPIKE_MIN_EXCESS_BYTES, STORM_MIN_SESSIONS};
use crate::anomaly::AnomalyKind;
use crate::series::add_days;

/// Range of a spike's multiple of the usual day.
const SPIKE_FACTOR: (f64, f64) = (5.0, 50.0);
/// Range of a session storm's multiple of the usual sessions.
const STORM_FACTOR: (f64, f64) = (10.0, 50.0);
/// Range of a silence's length in days (inclusive).
const SILENCE_DAYS: (usize, usize) = (2, 4);
/// Most days abroad of a new country.
const MAX_ROAMING_DAYS: usize = 3;
/// Most days on a new network at home.
const MAX_NEW_NETWORK_DAYS: usize = 5;

/// What an episode does to the SIM.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Injection {
    /// The day's usage is `factor` × its usual.
    Spike { factor: f64 },
    /// No traffic and no sessions.
    Silence,
    /// The day's sessions are `factor` × the usual.
    Storm { factor: f64 },
    /// On `network` of `country` (indices into [`COUNTRIES`]) instead of the home network.
    NewCountry { country: usize, network: usize },
    /// On `network` of the home country instead of the home network.
    NewNetwork { network: usize },
    /// In a new device from the first day on.
    ImeiChange,
}

/// An anomaly of one SIM: what, from which day, for how many days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Episode {
    pub(super) start: usize,
    pub(super) days: usize,
    pub(super) injection: Injection,
}

impl Episode {
    /// The index of its last day.
    pub(super) fn last_day(&self) -> usize {
        self.start + self.days.max(1) - 1
    }
}

/// What applying the episodes gave besides the changed series.
pub(super) struct Applied {
    /// The labels.
    pub(super) truth: Vec<InjectedAnomaly>,
    /// Per day, the (country, network) an episode put the SIM on instead of its home network.
    pub(super) network_on: Vec<Option<(usize, usize)>>,
    /// The days the SIM moved to a new device.
    pub(super) imei_changes: Vec<usize>,
}

/// The SIM's episodes in the last [`ANOMALY_WINDOW_DAYS`] of its `usual` days: for each
/// [`ANOMALY_SPACING_DAYS`] days, with probability `anomaly_rate`, one starting on a day drawn in
/// them; the next may start no sooner than [`ANOMALY_SPACING_DAYS`] after it.
pub(super) fn plan(rng: &mut SplitMix64, habits: &Habits, usual: &[f64], anomaly_rate: f64) -> Vec<Episode> {
    let days = usual.len();
    let mut episodes: Vec<Episode> = Vec::new();
    let mut cursor = days.saturating_sub(ANOMALY_WINDOW_DAYS);
    while cursor < days {
        if !rng.chance(anomaly_rate) {
            cursor += ANOMALY_SPACING_DAYS;
            continue;
        }
        let start = cursor + rng.below(ANOMALY_SPACING_DAYS);
        if start >= days {
            break;
        }
        if let Some(episode) = draw_episode(rng, habits, usual, start, &episodes) {
            episodes.push(episode);
        }
        cursor = start + ANOMALY_SPACING_DAYS;
    }
    episodes
}

/// An episode starting on `start`: a kind drawn uniformly, or the next one in
/// [`AnomalyKind::ALL`] order that the SIM can have on that day; `None` when it can have none.
fn draw_episode(
    rng: &mut SplitMix64,
    habits: &Habits,
    usual: &[f64],
    start: usize,
    earlier: &[Episode],
) -> Option<Episode> {
    let kinds = AnomalyKind::ALL.len();
    let first = rng.below(kinds);
    for offset in 0..kinds {
        let kind = AnomalyKind::ALL[(first + offset) % kinds];
        if let Some(episode) = episode_of(kind, rng, habits, usual, start, earlier) {
            return Some(episode);
        }
    }
    None
}

/// An episode of `kind` starting on `start`, if the SIM can have one there.
fn episode_of(
    kind: AnomalyKind,
    rng: &mut SplitMix64,
    habits: &Habits,
    usual: &[f64],
    start: usize,
    earlier: &[Episode],
) -> Option<Episode> {
    let left = usual.len().checked_sub(start)?;
    let usual_day = *usual.get(start)?;
    let (days, injection) = match kind {
        AnomalyKind::UsageSpike => {
            // Enough of a spike to be one by the product's floor.
            if usual_day <= 0.0 {
                return None;
            }
            let least = SPIKE_FACTOR.0.max(1.0 + SPIKE_MIN_EXCESS_BYTES / usual_day);
            if least > SPIKE_FACTOR.1 {
                return None;
            }
            let factor = hundredths(rng.between(least, SPIKE_FACTOR.1)).max(least);
            (1, Injection::Spike { factor })
        }
        AnomalyKind::Silence => {
            let (least, most) = SILENCE_DAYS;
            let days = (least + rng.below(most - least + 1)).min(left);
            let silent = usual.get(start..start + days)?;
            if days < least || silent.iter().any(|&day| day < SILENCE_MIN_BASELINE_BYTES) {
                return None;
            }
            (days, Injection::Silence)
        }
        AnomalyKind::SessionStorm => {
            if habits.sessions < 1.0 {
                return None;
            }
            let least = STORM_FACTOR.0.max(STORM_MIN_SESSIONS / habits.sessions);
            if least > STORM_FACTOR.1 {
                return None;
            }
            let factor = hundredths(rng.between(least, STORM_FACTOR.1)).max(least);
            (1, Injection::Storm { factor })
        }
        AnomalyKind::NewCountry => {
            let used: Vec<usize> = earlier
                .iter()
                .filter_map(|episode| match episode.injection {
                    Injection::NewCountry { country, .. } => Some(country),
                    _ => None,
                })
                .chain([habits.home])
                .collect();
            let never: Vec<usize> = (0..COUNTRIES.len())
                .filter(|country| !used.contains(country))
                .collect();
            let country = *never.get(rng.below(never.len()))?;
            let network = rng.below(NETWORKS_PER_COUNTRY);
            let days = (1 + rng.below(MAX_ROAMING_DAYS)).min(left);
            (days, Injection::NewCountry { country, network })
        }
        AnomalyKind::NewNetwork => {
            let used: Vec<usize> = earlier
                .iter()
                .filter_map(|episode| match episode.injection {
                    Injection::NewNetwork { network } => Some(network),
                    _ => None,
                })
                .chain([HOME_NETWORK, SECOND_NETWORK])
                .collect();
            let never: Vec<usize> = (0..NETWORKS_PER_COUNTRY)
                .filter(|network| !used.contains(network))
                .collect();
            let network = *never.get(rng.below(never.len()))?;
            let days = (1 + rng.below(MAX_NEW_NETWORK_DAYS)).min(left);
            (days, Injection::NewNetwork { network })
        }
        AnomalyKind::ImeiChange => (1, Injection::ImeiChange),
    };
    Some(Episode {
        start,
        days,
        injection,
    })
}

/// `value` rounded to two decimals, so that the truth file states the multiple exactly.
fn hundredths(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Applies the `episodes` of SIM `sim` to its noisy days and labels them.
pub(super) fn apply(
    episodes: &[Episode],
    sim: usize,
    start: NaiveDate,
    habits: &Habits,
    usual: &[f64],
    daily_bytes: &mut [f64],
    daily_sessions: &mut [u32],
) -> Applied {
    let mut applied = Applied {
        truth: Vec::new(),
        network_on: vec![None; usual.len()],
        imei_changes: Vec::new(),
    };
    let label = |day: usize, kind: AnomalyKind, magnitude: f64| InjectedAnomaly {
        sim,
        day: add_days(start, day),
        kind,
        magnitude,
    };
    for episode in episodes {
        let first = episode.start;
        let days = first..(first + episode.days).min(usual.len());
        match episode.injection {
            Injection::Spike { factor } => {
                if let (Some(bytes), Some(&usual_day)) = (daily_bytes.get_mut(first), usual.get(first)) {
                    *bytes = usual_day * factor;
                    applied.truth.push(label(first, AnomalyKind::UsageSpike, factor));
                }
            }
            Injection::Silence => {
                for day in days.clone() {
                    if let Some(bytes) = daily_bytes.get_mut(day) {
                        *bytes = 0.0;
                    }
                    if let Some(sessions) = daily_sessions.get_mut(day) {
                        *sessions = 0;
                    }
                }
                let length = days.len() as f64;
                for day in days.skip(1) {
                    applied.truth.push(label(day, AnomalyKind::Silence, length));
                }
            }
            Injection::Storm { factor } => {
                if let Some(sessions) = daily_sessions.get_mut(first) {
                    *sessions = (habits.sessions * factor).ceil() as u32;
                    applied
                        .truth
                        .push(label(first, AnomalyKind::SessionStorm, factor));
                }
            }
            Injection::NewCountry { country, network } => {
                let abroad = days.len() as f64;
                put_on(&mut applied.network_on, days, (country, network));
                applied.truth.push(label(first, AnomalyKind::NewCountry, abroad));
            }
            Injection::NewNetwork { network } => {
                let on = days.len() as f64;
                put_on(&mut applied.network_on, days, (habits.home, network));
                applied.truth.push(label(first, AnomalyKind::NewNetwork, on));
            }
            Injection::ImeiChange => {
                applied.imei_changes.push(first);
                applied.truth.push(label(first, AnomalyKind::ImeiChange, 1.0));
            }
        }
    }
    applied
}

/// Puts the SIM on `network` (country, network) on `days`.
fn put_on(network_on: &mut [Option<(usize, usize)>], days: Range<usize>, network: (usize, usize)) {
    for slot in network_on.iter_mut().take(days.end).skip(days.start) {
        *slot = Some(network);
    }
}
