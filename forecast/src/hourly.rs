//! Hourly usage forecasts: the rest of today and tomorrow hour by hour, and where today's total is
//! heading from its hours so far — what the product shows as "today: 1.2 GB so far, about 2.0 GB
//! (1.7–2.4) by midnight".
//!
//! ```text
//!  HourlySeries (bytes per hour)
//!       │
//!       ▼
//!  rolling backtest ── each method of HourlyMethod::BY_SIMPLICITY forecasts the next one or two
//!       │              whole days from 7 origins a day apart, at the hour of the day the forecast
//!       │              starts at; MASE scaled by the in-sample seasonal-naive-24 error (as M4)
//!       ▼
//!  chosen method ───── the lowest mean MASE, the simpler method within 2 % ─▶ points, ≤ 48 hours
//!       │
//!       ▼
//!  backtest errors ─── per hour of the day in proportion to its usage ─▶ 80 % and 95 % intervals
//!
//!  rest_of_today(history, today's hours) ─▶ so far + the chosen method's rest of the day; its
//!                                           interval from the same projection on the past 21
//!                                           days at the same hour
//! ```
//!
//! Days are 24 hours. [`forecast_hours`] starts them at midnight UTC; [`rest_of_today`] at the hour
//! after the history, so that a caller can count days in the tenant's time zone (on the two days of
//! a year that the clocks change, that day's midnight is off by an hour).

mod methods;
mod profile;
#[cfg(test)]
mod tests;
mod today;

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::accuracy::seasonal_mase_scale;
use crate::backtest::{origins_every, score_by, select_by, Backtest, Choice};
use crate::forecast::{empirical_widths, seasonal_sigma, Z80, Z95};
use crate::series::{clean, WEEK};
use profile::{complete_days, hour_in_day, HourProfile};

pub use methods::{ets_profile, hourly_point_forecast, same_hour_last_week, HourlyMethod};
pub use profile::PROFILE_DAYS;
pub use today::{rest_of_today, TodayProjection};

/// Hours in a day: the period of the daily season.
pub const DAY_HOURS: usize = 24;
/// Hours in a week: the period of the weekly season on hours.
pub const WEEK_HOURS: usize = WEEK * DAY_HOURS;
/// The longest hourly forecast: the rest of today and tomorrow (48 hours from midnight).
pub const MAX_HOURLY_HORIZON: usize = 2 * DAY_HOURS;
/// The fewest hours before a backtest origin: a week, so that the same hour last week exists and
/// the hour profile reads a day of each weekday.
pub const MIN_TRAINING_HOURS: usize = WEEK_HOURS;
/// Backtest origins beyond the latest one, a day apart each: seven origins, one on each weekday.
pub const EXTRA_ORIGINS: usize = 6;
/// Past days the projection of the rest of today is tried on, at the same hour, for its interval:
/// three weeks, each weekday three times.
pub const REST_ORIGINS: usize = 21;
/// The smallest scale of an hour's errors, against the average hour's 1: an hour that usually
/// carries nothing still gets a band of a tenth of an average hour's errors.
const MIN_HOUR_SCALE: f64 = 0.1;

/// Usage per hour, in bytes, from `start` on. An hour without usage is 0, not missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourlySeries {
    /// The hour of `values[0]`: a whole hour.
    pub start: DateTime<Utc>,
    /// Bytes per hour, oldest first; meant to be finite and non-negative ([`HourlySeries::new`]
    /// makes them so, and the forecasts read anything else as 0).
    pub values: Vec<f64>,
}

impl HourlySeries {
    /// A series from `start`, with negative and non-finite values (which no meter produces) read as
    /// 0; refused when `start` is not a whole hour.
    pub fn new(start: DateTime<Utc>, mut values: Vec<f64>) -> Result<Self, HourlyForecastError> {
        if start.minute() != 0 || start.second() != 0 || start.nanosecond() != 0 {
            return Err(HourlyForecastError::Start { start });
        }
        for value in &mut values {
            *value = clean(*value);
        }
        Ok(Self { start, values })
    }

    /// The number of hours held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no hour is held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The hour of value `i` (value 0 is `start`).
    pub fn hour_of(&self, i: usize) -> DateTime<Utc> {
        add_hours(self.start, i)
    }

    /// The hour after the last one held: the first hour a forecast covers.
    pub fn next_hour(&self) -> DateTime<Utc> {
        self.hour_of(self.len())
    }

    /// The last `n` hours (all of them when fewer are held).
    pub fn last(&self, n: usize) -> &[f64] {
        &self.values[self.values.len().saturating_sub(n)..]
    }

    /// The usage over all hours held.
    pub fn sum(&self) -> f64 {
        self.values.iter().sum()
    }

    /// The index of the first value that starts a day (midnight UTC), 0 ..= 23: where the days of
    /// the daily season begin.
    pub fn first_midnight(&self) -> usize {
        let hours_to_midnight = (24 - self.start.hour()) % 24;
        usize::try_from(hours_to_midnight).unwrap_or(0)
    }
}

/// `at` plus `hours`, saturating at the last instant chrono knows.
fn add_hours(at: DateTime<Utc>, hours: usize) -> DateTime<Utc> {
    i64::try_from(hours)
        .ok()
        .and_then(TimeDelta::try_hours)
        .and_then(|delta| at.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// An hourly forecast or projection that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HourlyForecastError {
    /// The horizon is 0 or beyond [`MAX_HOURLY_HORIZON`].
    Horizon {
        /// The number of hours asked for.
        asked: usize,
    },
    /// A series starts inside an hour.
    Start {
        /// The start given.
        start: DateTime<Utc>,
    },
    /// Today's hours so far make a whole day or more: there is no rest of the day to project.
    DayOver {
        /// The number of hours given.
        hours: usize,
    },
}

impl fmt::Display for HourlyForecastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HourlyForecastError::Horizon { asked } => write!(
                f,
                "an hourly forecast of {asked} hours cannot be made: it reaches at most \
                 {MAX_HOURLY_HORIZON} hours (the rest of today and tomorrow) and covers at least 1"
            ),
            HourlyForecastError::Start { start } => {
                write!(f, "an hourly series starts on a whole hour, not at {start}")
            }
            HourlyForecastError::DayOver { hours } => write!(
                f,
                "{hours} hours of today were given: a day has {DAY_HOURS}, so at most {} of them can \
                 have passed with some of the day left",
                DAY_HOURS - 1
            ),
        }
    }
}

impl std::error::Error for HourlyForecastError {}

/// One forecast hour: the expected usage and the ranges the usage should fall in 80 % and 95 % of
/// the time, in bytes. `lo80 ≤ point ≤ hi80` and `lo95 ≤ lo80`, `hi80 ≤ hi95`; never below 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HourForecast {
    /// The start of the hour.
    pub at: DateTime<Utc>,
    /// The expected usage.
    pub point: f64,
    /// Lower bound of the 80 % interval.
    pub lo80: f64,
    /// Upper bound of the 80 % interval.
    pub hi80: f64,
    /// Lower bound of the 95 % interval.
    pub lo95: f64,
    /// Upper bound of the 95 % interval.
    pub hi95: f64,
}

/// A series' hourly forecast, with the method that made it and how that method did in the
/// backtest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourlyForecast {
    /// The method chosen for the series.
    pub method: HourlyMethod,
    /// The hours after the series' last hour, in order.
    pub hours: Vec<HourForecast>,
    /// The method's backtest mean MASE (scaled by the in-sample error of the same hour the day
    /// before); `None` when the series was too short to backtest.
    pub backtest_mase: Option<f64>,
    /// The method's backtest WAPE; `None` when too short or the backtest hours used nothing.
    pub backtest_wape: Option<f64>,
}

/// The forecast of the `horizon` hours (1 ..= [`MAX_HOURLY_HORIZON`]) after `series`' last hour,
/// days starting at midnight UTC. The method is chosen per series by [`choose_hourly`]; the
/// intervals come from its backtest errors (see [`HourlyForecast`] and the crate's README). Values
/// that are negative or not finite are read as 0. Cost, for 28 days of history: 7 backtest origins
/// of 5 methods, of which only the seasonal model costs more than copying values: a daily ETS fit
/// on about 25 daily totals (42 runs of the smoother over them) and an hour profile of 14 days, per
/// origin and once more for the forecast — on the order of 100,000 floating-point operations.
pub fn forecast_hours(series: &HourlySeries, horizon: usize) -> Result<HourlyForecast, HourlyForecastError> {
    check_horizon(horizon)?;
    let values: Cow<'_, [f64]> = if series.values.iter().all(|v| v.is_finite() && *v >= 0.0) {
        Cow::Borrowed(series.values.as_slice())
    } else {
        Cow::Owned(series.values.iter().map(|v| clean(*v)).collect())
    };
    let history: &[f64] = &values;
    let phase = series.first_midnight();
    let choice = choose_hourly(history, phase, horizon);
    let points = hourly_point_forecast(choice.method, history, phase, horizon);
    let widths = hourly_widths(history, phase, &choice.residuals_by_horizon, horizon);
    let first_hour = series.next_hour();
    let hours = points
        .iter()
        .zip(&widths)
        .enumerate()
        .map(|(h, (&point, &(w80, w95)))| {
            let point = clean(point);
            let (w80, w95) = (clean(w80), clean(w95).max(clean(w80)));
            HourForecast {
                at: add_hours(first_hour, h),
                point,
                lo80: (point - w80).max(0.0),
                hi80: point + w80,
                lo95: (point - w95).max(0.0),
                hi95: point + w95,
            }
        })
        .collect();
    Ok(HourlyForecast {
        method: choice.method,
        hours,
        backtest_mase: choice.mase,
        backtest_wape: choice.wape,
    })
}

/// Refuses a horizon of 0 or beyond [`MAX_HOURLY_HORIZON`].
fn check_horizon(horizon: usize) -> Result<(), HourlyForecastError> {
    if horizon == 0 || horizon > MAX_HOURLY_HORIZON {
        Err(HourlyForecastError::Horizon { asked: horizon })
    } else {
        Ok(())
    }
}

/// The hours a backtest forecasts from each origin for a forecast of `horizon` hours after `n`
/// hours of history: `horizon` rounded up to whole days (24 or 48 hours), fewer whole days when
/// [`MIN_TRAINING_HOURS`] would not precede the latest origin; 0 when not a day fits. Whole days
/// keep every origin at the hour of the day the forecast starts at, and judge every hour of the day.
pub fn backtest_hours(n: usize, horizon: usize) -> usize {
    let days = horizon
        .div_ceil(DAY_HOURS)
        .clamp(1, MAX_HOURLY_HORIZON / DAY_HOURS);
    let room = n.saturating_sub(MIN_TRAINING_HOURS) / DAY_HOURS;
    days.min(room) * DAY_HOURS
}

/// Every method of [`HourlyMethod::BY_SIMPLICITY`] forecasts [`backtest_hours`] hours from origins
/// n − h, n − h − 24, … ([`EXTRA_ORIGINS`] beyond the first, while [`MIN_TRAINING_HOURS`] precede
/// them), trained on the hours before the origin only; each origin's MASE is scaled by the mean
/// absolute difference between a training hour and the same hour the day before. `history`'s days
/// start at the values `phase`, `phase` + 24, … (the seasonal model reads whole days). `None` when
/// the series is too short for one origin (under [`MIN_TRAINING_HOURS`] + 24 hours).
pub fn hourly_backtest(history: &[f64], phase: usize, horizon: usize) -> Option<Backtest<HourlyMethod>> {
    let h = backtest_hours(history.len(), horizon);
    let origins = origins_every(history.len(), h, DAY_HOURS, MIN_TRAINING_HOURS, EXTRA_ORIGINS);
    if origins.is_empty() {
        return None;
    }
    let scales: Vec<f64> = origins
        .iter()
        .map(|&origin| seasonal_mase_scale(&history[..origin], DAY_HOURS))
        .collect();
    let scores = HourlyMethod::BY_SIMPLICITY
        .iter()
        .map(|&method| {
            let forecast =
                |training: &[f64], hours: usize| hourly_point_forecast(method, training, phase, hours);
            score_by(method, forecast, history, h, &origins, &scales)
        })
        .collect();
    Some(Backtest {
        horizon: h,
        origins,
        scores,
    })
}

/// The method for a forecast of `horizon` hours after `history` (days starting at the values
/// `phase`, `phase` + 24, …): chosen by [`hourly_backtest`] and the daily forecasts' rule — the
/// lowest mean MASE, except that a method within 2 % of it loses to a simpler one
/// ([`HourlyMethod::BY_SIMPLICITY`] order), so that the seasonal model has to earn its place. Too
/// short to backtest: the same hour yesterday from a day of history on, else the last hour, without
/// a MASE.
pub fn choose_hourly(history: &[f64], phase: usize, horizon: usize) -> Choice<HourlyMethod> {
    hourly_backtest(history, phase, horizon)
        .and_then(|backtest| select_by(backtest, HourlyMethod::BY_SIMPLICITY.as_slice()))
        .unwrap_or_else(|| Choice {
            method: if history.len() >= DAY_HOURS {
                HourlyMethod::SeasonalNaiveDay
            } else {
                HourlyMethod::Naive
            },
            mase: None,
            wape: None,
            residuals_by_horizon: Vec::new(),
        })
}

/// Interval half-widths (80 %, 95 %) for the `horizon` hours after `history`. An hour strays in
/// proportion to its usage: a busy hour by more bytes than a quiet one. So each backtest error is
/// divided by its hour's scale — 24 times the hour's share of the day in the series' hour profile,
/// at least [`MIN_HOUR_SCALE`] — the widths are read from these as the daily forecast reads them
/// (the errors' growth with the hours ahead, pooled 80 % and 95 % quantiles), and each hour's width
/// is multiplied back by its scale. The backtest's hours ahead fall on the same hours of the day as
/// the forecast's (its horizon is whole days, its origins a day apart), so the scales line up.
/// With fewer than 8 errors, a normal approximation: the root mean square of the in-sample
/// differences from the same hour the day before, times the hour's scale, widened by √(h / 24)
/// beyond a day.
fn hourly_widths(
    history: &[f64],
    phase: usize,
    residuals_by_horizon: &[Vec<f64>],
    horizon: usize,
) -> Vec<(f64, f64)> {
    let profile = HourProfile::from_days(complete_days(history, phase));
    let scales = profile
        .shares
        .map(|share| (share * DAY_HOURS as f64).max(MIN_HOUR_SCALE));
    let first = hour_in_day(history.len(), phase);
    let scale_of = |ahead: usize| scales[(first + ahead) % DAY_HOURS];
    let normalised: Vec<Vec<f64>> = residuals_by_horizon
        .iter()
        .enumerate()
        .map(|(ahead, errors)| {
            let scale = scale_of(ahead);
            errors.iter().map(|error| error / scale).collect()
        })
        .collect();
    if let Some(widths) = empirical_widths(&normalised, horizon) {
        return widths
            .into_iter()
            .enumerate()
            .map(|(ahead, (w80, w95))| (w80 * scale_of(ahead), w95 * scale_of(ahead)))
            .collect();
    }
    let sigma = seasonal_sigma(history, DAY_HOURS);
    (0..horizon)
        .map(|ahead| {
            let widen = ((ahead + 1) as f64 / DAY_HOURS as f64).sqrt().max(1.0);
            let spread = sigma * widen * scale_of(ahead);
            (Z80 * spread, Z95 * spread)
        })
        .collect()
}
