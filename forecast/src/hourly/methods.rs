//! The hourly methods: point forecasts from a history of bytes per hour.
//!
//! Every method reads a history (bytes per hour, oldest first) and returns `horizon` values for the
//! hours right after it, never negative. Too short a history falls back to a simpler method rather
//! than failing: the same hour last week needs a week of hours, the same hour yesterday a day, the
//! seasonal model a whole day (and a daily ETS fit two weeks), drift two hours, naive one.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::profile::{complete_days, day_variance, HourProfile};
use super::{DAY_HOURS, WEEK_HOURS};
use crate::methods::{drift, ets, naive, seasonal_naive_by};
use crate::series::clean;

/// How an hourly forecast was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HourlyMethod {
    /// The last hour repeated.
    Naive,
    /// The last day repeated, hour for hour: the same hour yesterday (a season of 24 hours).
    SeasonalNaiveDay,
    /// The same hour a week before (a season of 168 hours), which knows that a Monday is not a
    /// Sunday; the same hour yesterday below a week of history.
    SeasonalNaiveWeek,
    /// The last hour plus the average change per hour over the history, per hour ahead.
    Drift,
    /// ETS on the daily totals, spread over the hours by the series' hour profile; today's
    /// remaining hours follow what today's hours so far tell of the day ([`ets_profile`]).
    EtsProfile,
}

impl HourlyMethod {
    /// The methods a backtest compares, simplest first: on a tie (within the backtest's margin) the
    /// earlier one is chosen. The same hour yesterday leads: it is the baseline of hourly
    /// forecasting (on the M4 competition's hourly series it reaches a MASE of 1.19, ahead of
    /// automatic ETS's 1.61).
    pub const BY_SIMPLICITY: [HourlyMethod; 5] = [
        HourlyMethod::SeasonalNaiveDay,
        HourlyMethod::SeasonalNaiveWeek,
        HourlyMethod::Naive,
        HourlyMethod::Drift,
        HourlyMethod::EtsProfile,
    ];

    /// The name shown to users and stored with a forecast.
    pub fn as_str(self) -> &'static str {
        match self {
            HourlyMethod::Naive => "NAIVE",
            HourlyMethod::SeasonalNaiveDay => "SEASONAL_NAIVE_DAY",
            HourlyMethod::SeasonalNaiveWeek => "SEASONAL_NAIVE_WEEK",
            HourlyMethod::Drift => "DRIFT",
            HourlyMethod::EtsProfile => "ETS_PROFILE",
        }
    }
}

impl fmt::Display for HourlyMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The point forecast of `method` for the `horizon` hours after `history`, whose days start at the
/// values `phase`, `phase` + 24, … (`phase` taken modulo 24; only the seasonal model reads days).
pub fn hourly_point_forecast(
    method: HourlyMethod,
    history: &[f64],
    phase: usize,
    horizon: usize,
) -> Vec<f64> {
    match method {
        HourlyMethod::Naive => naive(history, horizon),
        HourlyMethod::SeasonalNaiveDay => seasonal_naive_by(history, DAY_HOURS, horizon),
        HourlyMethod::SeasonalNaiveWeek => same_hour_last_week(history, horizon),
        HourlyMethod::Drift => drift(history, horizon),
        HourlyMethod::EtsProfile => ets_profile(history, phase, horizon),
    }
}

/// The value 168 hours before each hour ahead; the same hour yesterday below a week of history.
pub fn same_hour_last_week(history: &[f64], horizon: usize) -> Vec<f64> {
    let season = if history.len() >= WEEK_HOURS {
        WEEK_HOURS
    } else {
        DAY_HOURS
    };
    seasonal_naive_by(history, season, horizon)
}

/// The seasonal model of the hourly forecasts: the daily forecast shaped by the hour profile.
///
/// 1. The whole days of the history are summed into daily totals, which the daily ETS
///    ([`crate::methods::ets`]: Holt-Winters with a damped trend and a weekly season) forecasts
///    for today and the days after.
/// 2. Each day ahead is spread over its hours by the series' hour profile: each hour's mean share
///    of its day over the last [`PROFILE_DAYS`](super::PROFILE_DAYS) whole days.
/// 3. Today's remaining hours (the history ends inside a day) follow today's expected total: the
///    ETS forecast moved towards what the hours so far extrapolate to (so far / the share of a day
///    they usually carry), by the weight τ² / (τ² + v / s²), where τ² is how far days stray from
///    the weekly pattern (relative variance), s the usual share of the hours so far and v the
///    variance of that share over the profile's days. Early in the day or when the hours are
///    erratic the forecast stands; once the hours that carry the day are seen, and they are
///    regular, the day so far tells: a busy morning raises the rest of a day whose hours move
///    together, which a forecast made at midnight cannot know.
///
/// Why this rather than Holt-Winters on the hours themselves (a season of 24): usage has two
/// seasons, and the weekly one matters as much as the daily one (a tracker's Monday after an idle
/// weekend) — here the day model carries the week and the profile the day, where a season of 24
/// sees every day alike and a season of 168 needs two weeks to start and 168 offsets to smooth.
/// Usage is multiplicative: a busy day is busy in each of its busy hours; an additive season adds
/// the same bytes to a quiet day's hour as to a busy one's, and a multiplicative one divides by
/// night hours near 0. And it is cheap: one ETS fit on about 28 daily totals (42 runs of the
/// smoother) instead of runs over 672 hours with 24 or 168 offsets.
///
/// The same hour yesterday when the history holds no whole day.
pub fn ets_profile(history: &[f64], phase: usize, horizon: usize) -> Vec<f64> {
    let days = complete_days(history, phase);
    if days.is_empty() {
        return seasonal_naive_by(history, DAY_HOURS, horizon);
    }
    let totals: Vec<f64> = days
        .chunks_exact(DAY_HOURS)
        .map(|day| day.iter().map(|v| clean(*v)).sum::<f64>())
        .collect();
    let profile = HourProfile::from_days(days);
    // The whole days start at `phase` (modulo 24); the day in progress follows them.
    let today = &history[phase % DAY_HOURS + days.len()..];
    let daily = ets(&totals, (today.len() + horizon).div_ceil(DAY_HOURS));
    let prior = daily.first().copied().unwrap_or(0.0);
    let today_total = today_level(prior, today, &profile, day_variance(&totals));
    (0..horizon)
        .map(|ahead| {
            let position = today.len() + ahead;
            let level = match position / DAY_HOURS {
                0 => today_total,
                day => daily.get(day).copied().unwrap_or(0.0),
            };
            clean(level * profile.shares[position % DAY_HOURS])
        })
        .collect()
}

/// Today's expected total: `prior` (the day model's) moved towards the extrapolation of `today`'s
/// hours so far by the weight of [`ets_profile`]'s step 3, `day_spread` being τ²; `prior` at the
/// day's first hour or when those hours usually carry nothing.
fn today_level(prior: f64, today: &[f64], profile: &HourProfile, day_spread: f64) -> f64 {
    let hours = today.len().min(DAY_HOURS - 1);
    let usual_share = profile.share_before(hours);
    if hours == 0 || usual_share <= 0.0 {
        return prior;
    }
    let so_far: f64 = today.iter().map(|v| clean(*v)).sum();
    let noise = profile.spread[hours] / (usual_share * usual_share);
    let weight = if noise > 0.0 {
        day_spread / (day_spread + noise)
    } else {
        1.0
    };
    clean(weight * so_far / usual_share + (1.0 - weight) * prior)
}
