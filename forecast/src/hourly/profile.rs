//! How a series spreads its days over their hours, and how far its days stray from the weekly
//! pattern: what the seasonal model and the intervals of the hourly forecasts read.

use super::DAY_HOURS;
use crate::series::{clean, WEEK};

/// Complete days an hour profile reads, the most recent: two weeks, each weekday twice — recent
/// enough to be today's habits, enough days to average an hour's noise out.
pub const PROFILE_DAYS: usize = 14;

/// The hours of the whole days of `history`, whose days start at the values `phase`, `phase` + 24,
/// …: the part of a day before the first start and the day in progress at the end are left out.
pub(crate) fn complete_days(history: &[f64], phase: usize) -> &[f64] {
    let phase = phase % DAY_HOURS;
    let Some(after) = history.len().checked_sub(phase) else {
        return &[];
    };
    let days = after / DAY_HOURS;
    &history[phase..phase + days * DAY_HOURS]
}

/// The position of value `index` in its day (0 for the first hour of a day), days starting at the
/// values `phase`, `phase` + 24, …
pub(crate) fn hour_in_day(index: usize, phase: usize) -> usize {
    (index + DAY_HOURS - phase % DAY_HOURS) % DAY_HOURS
}

/// How a series' recent days spread over their hours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HourProfile {
    /// Each hour's mean share of its day, over the days with usage, the first hour of the day
    /// first; sums to 1 (1/24 each without a day with usage).
    pub(crate) shares: [f64; DAY_HOURS],
    /// `spread[k]`: the variance, over those days, of the share of the day used in its first k
    /// hours (0 for k = 0): how well the first hours of a day tell the whole day.
    pub(crate) spread: [f64; DAY_HOURS],
}

impl HourProfile {
    /// The profile of the last [`PROFILE_DAYS`] of `days` (whole days, from a day's first hour):
    /// each day with usage gives its hours' shares of it, and the shares are averaged, each day
    /// weighing the same (a day of twice the usage does not set the shape alone). Cost: linear in
    /// the hours read.
    pub(crate) fn from_days(days: &[f64]) -> Self {
        let recent = &days[days.len().saturating_sub(PROFILE_DAYS * DAY_HOURS)..];
        let mut profiles: Vec<[f64; DAY_HOURS]> = Vec::with_capacity(PROFILE_DAYS);
        for day in recent.chunks_exact(DAY_HOURS) {
            let total: f64 = day.iter().map(|v| clean(*v)).sum();
            if total > 0.0 && total.is_finite() {
                let mut shares = [0.0; DAY_HOURS];
                for (share, value) in shares.iter_mut().zip(day) {
                    *share = clean(*value) / total;
                }
                profiles.push(shares);
            }
        }
        if profiles.is_empty() {
            return Self {
                shares: [1.0 / DAY_HOURS as f64; DAY_HOURS],
                spread: [0.0; DAY_HOURS],
            };
        }
        let count = profiles.len() as f64;
        let mut shares = [0.0; DAY_HOURS];
        for profile in &profiles {
            for (mean, share) in shares.iter_mut().zip(profile) {
                *mean += share / count;
            }
        }
        let mut spread = [0.0; DAY_HOURS];
        for profile in &profiles {
            let (mut usual, mut seen) = (0.0, 0.0);
            for (hours, slot) in spread.iter_mut().enumerate().skip(1) {
                usual += shares[hours - 1];
                seen += profile[hours - 1];
                *slot += (seen - usual) * (seen - usual) / count;
            }
        }
        Self { shares, spread }
    }

    /// The share of a day its first `hours` hours usually carry.
    pub(crate) fn share_before(&self, hours: usize) -> f64 {
        self.shares.iter().take(hours).sum()
    }
}

/// How far a day's total strays from what the weekly pattern makes of it, as a variance relative
/// to the day: half the mean square of the relative difference between a day and the same weekday
/// a week before ((day − week before) / their mean), over the last [`PROFILE_DAYS`] days (between
/// consecutive days with a week or less). Half, since a difference holds the noise of two days;
/// days without usage on both sides are left out; 0 without a pair.
pub(crate) fn day_variance(totals: &[f64]) -> f64 {
    let n = totals.len();
    let lag = if n > WEEK { WEEK } else { 1 };
    if n <= lag {
        return 0.0;
    }
    let from = n.saturating_sub(PROFILE_DAYS).max(lag);
    let (mut squares, mut pairs) = (0.0, 0_usize);
    for (now, before) in totals[from..].iter().zip(&totals[from - lag..]) {
        let (now, before) = (clean(*now), clean(*before));
        let mean = 0.5 * (now + before);
        if mean > 0.0 {
            let relative = (now - before) / mean;
            squares += relative * relative;
            pairs += 1;
        }
    }
    if pairs == 0 {
        0.0
    } else {
        0.5 * squares / pairs as f64
    }
}
