//! Where today's usage is heading: the hours so far plus the forecast of the rest of the day, with
//! an interval from the same projection made on past days at the same hour.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::methods::{hourly_point_forecast, HourlyMethod};
use super::{
    choose_hourly, hourly_widths, HourlyForecastError, HourlySeries, DAY_HOURS, MIN_TRAINING_HOURS,
    REST_ORIGINS,
};
use crate::forecast::MIN_RESIDUALS;
use crate::series::clean;
use crate::stats::quantile;

/// Today's usage so far and the total it is heading for by the end of the day, in bytes, with the
/// ranges the total should fall in 80 % and 95 % of the time: "today: 1.2 GB so far, about 2.0 GB
/// (1.7–2.4) by midnight". `so_far ≤ lo95 ≤ lo80 ≤ point ≤ hi80 ≤ hi95`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TodayProjection {
    /// The first hour of today: the hour after the history.
    pub day_start: DateTime<Utc>,
    /// The hours of today held (0 ..= 23).
    pub hours_so_far: usize,
    /// The usage of those hours.
    pub so_far: f64,
    /// The expected total of the day: so far plus the expected usage of its remaining hours.
    pub point: f64,
    /// Lower bound of the 80 % interval of the day's total.
    pub lo80: f64,
    /// Upper bound of the 80 % interval of the day's total.
    pub hi80: f64,
    /// Lower bound of the 95 % interval of the day's total.
    pub lo95: f64,
    /// Upper bound of the 95 % interval of the day's total.
    pub hi95: f64,
    /// The method that forecast the rest of the day (chosen as for [`super::forecast_hours`]).
    pub method: HourlyMethod,
    /// Σ|projected − actual day total| / Σ actual day total over the past days the projection was
    /// tried on at this hour; `None` without such a day or when they used nothing.
    pub backtest_wape: Option<f64>,
}

/// The projection of today's total from `today_so_far` (today's hours, the first from the hour
/// after `history`, at most 23 of them) and `history` (the hours before today): so far plus the
/// point forecast of the remaining hours by the method [`choose_hourly`] picks for them. Today
/// starts at the hour after `history`, so that a caller can count days in any time zone (history
/// up to a local midnight); the days of the seasonal model are lined up with it.
///
/// The interval is the projection's own record: the same method projects the rest of each of the
/// last [`REST_ORIGINS`] days from the same hour of that day, trained on the hours before only (as
/// long as [`MIN_TRAINING_HOURS`] precede it); the half-widths are quantiles of those errors'
/// absolute values, taken as the bound a new error stays within (the ⌈q·(n + 1)⌉-th smallest of
/// n: with 21 days the 18th and the 21st). With fewer than 8 such days, the forecast hours'
/// half-widths are added up, as if the hours strayed together — mostly they do, as a busy day is
/// busy all day. Cost: a backtest like [`super::forecast_hours`]'s and up to 21 more forecasts of
/// the rest of a day.
pub fn rest_of_today(
    history: &HourlySeries,
    today_so_far: &[f64],
) -> Result<TodayProjection, HourlyForecastError> {
    let hours_so_far = today_so_far.len();
    if hours_so_far >= DAY_HOURS {
        return Err(HourlyForecastError::DayOver { hours: hours_so_far });
    }
    let rest = DAY_HOURS - hours_so_far;
    let values: Vec<f64> = history
        .values
        .iter()
        .chain(today_so_far)
        .map(|v| clean(*v))
        .collect();
    let phase = history.len() % DAY_HOURS;
    let so_far: f64 = values[history.len()..].iter().sum();
    let choice = choose_hourly(&values, phase, rest);
    let expected_rest: f64 = hourly_point_forecast(choice.method, &values, phase, rest)
        .iter()
        .sum();
    let past = past_days(choice.method, &values, phase, hours_so_far);
    let (w80, w95) = if past.errors.len() >= MIN_RESIDUALS {
        let mut absolute: Vec<f64> = past.errors.iter().map(|error| error.abs()).collect();
        (
            predictive_quantile(&mut absolute, 0.8),
            predictive_quantile(&mut absolute, 0.95),
        )
    } else {
        hourly_widths(&values, phase, &choice.residuals_by_horizon, rest)
            .iter()
            .fold((0.0_f64, 0.0_f64), |(sum80, sum95), (w80, w95)| {
                (sum80 + w80, sum95 + w95)
            })
    };
    let expected_rest = clean(expected_rest);
    let (w80, w95) = (clean(w80), clean(w95).max(clean(w80)));
    Ok(TodayProjection {
        day_start: history.next_hour(),
        hours_so_far,
        so_far,
        point: so_far + expected_rest,
        lo80: so_far + (expected_rest - w80).max(0.0),
        hi80: so_far + expected_rest + w80,
        lo95: so_far + (expected_rest - w95).max(0.0),
        hi95: so_far + expected_rest + w95,
        method: choice.method,
        backtest_wape: past.wape,
    })
}

/// How a projection of the rest of the day did on past days.
struct PastDays {
    /// Actual less projected usage of the rest of each day, the latest day first.
    errors: Vec<f64>,
    /// Σ|error| / Σ the days' totals; `None` without a day or when they used nothing.
    wape: Option<f64>,
}

/// `method`'s projection of the rest of each of the last [`REST_ORIGINS`] days before the one in
/// progress, from that day's hour `hours_so_far` on, trained on the values before it only; from
/// the latest day back, while [`MIN_TRAINING_HOURS`] precede the projection.
fn past_days(method: HourlyMethod, values: &[f64], phase: usize, hours_so_far: usize) -> PastDays {
    let rest = DAY_HOURS - hours_so_far;
    let mut errors = Vec::with_capacity(REST_ORIGINS);
    let (mut absolute, mut volume) = (0.0, 0.0);
    for days_back in 1..=REST_ORIGINS {
        let origin = match values.len().checked_sub(days_back * DAY_HOURS) {
            Some(origin) if origin >= MIN_TRAINING_HOURS => origin,
            _ => break,
        };
        let actual: f64 = values[origin..origin + rest].iter().sum();
        let projected: f64 = hourly_point_forecast(method, &values[..origin], phase, rest)
            .iter()
            .sum();
        let error = actual - projected;
        errors.push(error);
        absolute += error.abs();
        let day_start = origin - hours_so_far;
        volume += values[day_start..day_start + DAY_HOURS].iter().sum::<f64>();
    }
    PastDays {
        errors,
        wape: if volume > 0.0 {
            Some(absolute / volume)
        } else {
            None
        },
    }
}

/// The `q` quantile of `values` read as the bound a new value stays within with probability `q`:
/// the ⌈q·(n + 1)⌉-th smallest of the n values (the largest when that is beyond them) rather than
/// the ⌈q·n⌉-th, which a new value exceeds more often than 1 − q when there are few values (with
/// 21 values, 0.77 of new values stay within the 17th, the 80 % quantile). 0 for no values.
fn predictive_quantile(values: &mut [f64], q: f64) -> f64 {
    let n = values.len() as f64;
    quantile(values, (q * (n + 1.0) / n).min(1.0)).unwrap_or(0.0)
}
