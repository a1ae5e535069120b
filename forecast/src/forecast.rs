//! A series' forecast: the chosen method's points and 80 % and 95 % intervals around them.
//!
//! Intervals come from the chosen method's own backtest errors where there are enough of them
//! (empirical quantiles of the absolute errors), else from a normal approximation of the
//! in-sample seasonal-naive error. For a short series with a cohort shape, from the cohort's spread.

use std::borrow::Cow;
use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::backtest::choose;
use crate::methods::{cohort_forecast, cohort_level, point_forecast, Method};
use crate::series::{add_days, clean, DailySeries, WeeklyShape, WEEK};
use crate::stats::{mean, quantile};

/// The longest forecast, in days: a billing period and more, not a plan for next year.
pub const MAX_HORIZON: usize = 90;
/// Standard normal quantiles for two-sided 80 % and 95 % intervals.
pub(crate) const Z80: f64 = 1.2816;
pub(crate) const Z95: f64 = 1.96;
/// Fewer backtest errors than this make an empirical quantile a guess: use the normal approximation.
pub(crate) const MIN_RESIDUALS: usize = 8;
/// The largest growth exponent of the error with the days ahead (1: grows in proportion, as when a
/// trend is misjudged; a random walk gives 0.5; a steady weekly pattern 0).
const MAX_GROWTH: f64 = 1.0;
/// The growth exponent assumed when the errors cannot tell (the random-walk rule of thumb).
const DEFAULT_GROWTH: f64 = 0.5;

/// A forecast that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForecastError {
    /// The horizon is 0 or beyond [`MAX_HORIZON`].
    Horizon {
        /// The number of days asked for.
        asked: usize,
    },
}

impl fmt::Display for ForecastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForecastError::Horizon { asked } => write!(
                f,
                "a forecast of {asked} days cannot be made: a forecast reaches at most {MAX_HORIZON} days \
                 and covers at least 1"
            ),
        }
    }
}

impl std::error::Error for ForecastError {}

/// One forecast day: the expected usage and the ranges the usage should fall in 80 % and 95 % of the
/// time, in bytes. `lo80 ≤ point ≤ hi80` and `lo95 ≤ lo80`, `hi80 ≤ hi95`; lower bounds never below 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DayForecast {
    /// The day.
    pub date: NaiveDate,
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

/// A series' forecast, with the method that made it and how that method did in the backtest, so
/// that a reader can judge how far to trust it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// The method chosen for the series.
    pub method: Method,
    /// The days after the series' last day, in order.
    pub days: Vec<DayForecast>,
    /// The method's backtest mean MASE (below 1: better than seasonal naive did in-sample); `None`
    /// when the series was too short to backtest.
    pub backtest_mase: Option<f64>,
    /// The method's backtest WAPE (share of the usage got wrong); `None` when too short or the
    /// backtest days used nothing.
    pub backtest_wape: Option<f64>,
}

/// The forecast of the `horizon` days (1 ..= [`MAX_HORIZON`]) after `series`' last day (from its
/// start for an empty series). The method is chosen per series by [`choose`]: by a rolling backtest
/// from 15 days of history on; below that the `cohort`'s shape when given (under 14 days), else
/// seasonal naive from 7 days, else naive. Values that are negative or not finite are read as 0.
/// Cost, for 90 days of history and a 30-day horizon: the backtest runs 14 days ahead from 4 origins
/// (76, 69, 62 and 55 training days); each ETS fit is 42 smoother runs over its training days, so
/// 42 × (69 + 62 + 55 + 48) ≈ 9,800 smoothing steps, plus ≈ 3,500 for a final ETS fit over the 90 days
/// when ETS is chosen; at about 15 floating-point operations a step, ≈ 200,000 operations. Naive,
/// seasonal naive and drift add 3 × 4 × 14 values, the MASE scales 4 × 2 × 70 differences, the
/// intervals two linear-time quantile selections over 56 errors. About 70 small allocations.
pub fn forecast(
    series: &DailySeries,
    horizon: usize,
    cohort: Option<&WeeklyShape>,
) -> Result<Forecast, ForecastError> {
    if horizon == 0 || horizon > MAX_HORIZON {
        return Err(ForecastError::Horizon { asked: horizon });
    }
    let values: Cow<'_, [f64]> = if series.values.iter().all(|v| v.is_finite() && *v >= 0.0) {
        Cow::Borrowed(series.values.as_slice())
    } else {
        Cow::Owned(series.values.iter().map(|v| clean(*v)).collect())
    };
    let history: &[f64] = &values;
    let weekday = series.start.weekday();
    let choice = choose(history, weekday, horizon, cohort);
    let (points, widths) = match (choice.method, cohort) {
        (Method::Cohort, Some(shape)) => (
            cohort_forecast(history, weekday, horizon, shape),
            cohort_widths(
                history.len(),
                cohort_level(history, weekday, shape),
                shape,
                horizon,
            ),
        ),
        (method, _) => (
            point_forecast(method, history, weekday, horizon),
            empirical_widths(&choice.residuals_by_horizon, horizon)
                .unwrap_or_else(|| normal_widths(history, horizon)),
        ),
    };
    let first_day = history.len();
    let days = points
        .iter()
        .zip(&widths)
        .enumerate()
        .map(|(h, (&point, &(w80, w95)))| {
            let point = clean(point);
            let (w80, w95) = (clean(w80), clean(w95).max(clean(w80)));
            DayForecast {
                date: add_days(series.start, first_day + h),
                point,
                lo80: (point - w80).max(0.0),
                hi80: point + w80,
                lo95: (point - w95).max(0.0),
                hi95: point + w95,
            }
        })
        .collect();
    Ok(Forecast {
        method: choice.method,
        days,
        backtest_mase: choice.mase,
        backtest_wape: choice.wape,
    })
}

/// Interval half-widths (80 %, 95 %) per day ahead from the backtest errors, `None` with fewer than
/// [`MIN_RESIDUALS`] of them. Errors grow with the days ahead, roughly as h^d; d is read from the
/// errors themselves ([`growth_exponent`]). Every error is brought to one day ahead (divided by its
/// h^d), all are pooled, and the 80 % and 95 % quantiles of their absolute values, times h^d, give
/// the half-widths at h — also beyond the backtest's horizon.
pub(crate) fn empirical_widths(residuals_by_horizon: &[Vec<f64>], horizon: usize) -> Option<Vec<(f64, f64)>> {
    let count: usize = residuals_by_horizon.iter().map(Vec::len).sum();
    if count < MIN_RESIDUALS {
        return None;
    }
    let growth = growth_exponent(residuals_by_horizon);
    let mut normalised = Vec::with_capacity(count);
    for (index, residuals) in residuals_by_horizon.iter().enumerate() {
        let scale = ((index + 1) as f64).powf(growth);
        normalised.extend(residuals.iter().map(|r| r.abs() / scale));
    }
    let q80 = quantile(&mut normalised, 0.8)?;
    let q95 = quantile(&mut normalised, 0.95)?;
    Some(
        (1..=horizon)
            .map(|h| {
                let scale = (h as f64).powf(growth);
                (q80 * scale, q95 * scale)
            })
            .collect(),
    )
}

/// How the error grows with the days ahead: d in rmse(h) ∝ h^d, from the root mean square error of
/// the first half of the backtest's days ahead against the second half:
/// d = ln(rmse late / rmse early) / ln(mean h late / mean h early), kept within 0 ..= [`MAX_GROWTH`].
/// [`DEFAULT_GROWTH`] for backtests under 4 days ahead or without errors.
fn growth_exponent(residuals_by_horizon: &[Vec<f64>]) -> f64 {
    let days = residuals_by_horizon.len();
    if days < 4 {
        return DEFAULT_GROWTH;
    }
    let half = days / 2;
    let (early_ms, early_h) = mean_square_and_horizon(&residuals_by_horizon[..half], 1);
    let (late_ms, late_h) = mean_square_and_horizon(&residuals_by_horizon[half..], half + 1);
    if early_ms <= 0.0 {
        return if late_ms > 0.0 { MAX_GROWTH } else { DEFAULT_GROWTH };
    }
    if late_ms <= 0.0 {
        return 0.0;
    }
    // rmse ratio = sqrt(mean-square ratio).
    let growth = 0.5 * (late_ms / early_ms).ln() / (late_h / early_h).ln();
    if growth.is_finite() {
        growth.clamp(0.0, MAX_GROWTH)
    } else {
        DEFAULT_GROWTH
    }
}

/// The mean squared error and the mean day ahead of some consecutive days ahead, the first being
/// `first_h`; (0, 1) for no errors.
fn mean_square_and_horizon(residuals_by_horizon: &[Vec<f64>], first_h: usize) -> (f64, f64) {
    let (mut squares, mut horizons, mut count) = (0.0, 0.0, 0_usize);
    for (offset, residuals) in residuals_by_horizon.iter().enumerate() {
        let h = (first_h + offset) as f64;
        for r in residuals {
            squares += r * r;
            horizons += h;
            count += 1;
        }
    }
    if count == 0 {
        (0.0, 1.0)
    } else {
        (squares / count as f64, horizons / count as f64)
    }
}

/// Half-widths from a normal approximation: sigma·sqrt(h) times 1.2816 and 1.96, sigma the
/// [`fallback_sigma`] of the history.
fn normal_widths(history: &[f64], horizon: usize) -> Vec<(f64, f64)> {
    let sigma = fallback_sigma(history);
    (1..=horizon)
        .map(|h| {
            let spread = sigma * (h as f64).sqrt();
            (Z80 * spread, Z95 * spread)
        })
        .collect()
}

/// The one-day error spread assumed without a backtest: the root mean square of the in-sample
/// seasonal-naive errors (y(t) − y(t − 7)), of the naive ones (y(t) − y(t − 1)) under 8 days, and
/// the mean usage itself for a single day (the usage may as well be twice that or nothing).
pub fn fallback_sigma(history: &[f64]) -> f64 {
    seasonal_sigma(history, WEEK)
}

/// [`fallback_sigma`] for a season of `season` values: the root mean square of y(t) − y(t − season),
/// of y(t) − y(t − 1) when the history is not longer than a season, the mean for a single value.
pub(crate) fn seasonal_sigma(history: &[f64], season: usize) -> f64 {
    let n = history.len();
    let lag = if n > season { season } else { 1 };
    if n <= lag {
        return mean(history);
    }
    let squares: f64 = history
        .iter()
        .zip(&history[lag..])
        .map(|(before, after)| (after - before).powi(2))
        .sum();
    (squares / (n - lag) as f64).sqrt()
}

/// Half-widths for a cohort forecast: the cohort's relative spread ([`WeeklyShape::rel80`] and
/// `rel95`, or the `cohort_` ones when the cohort's level stands in for a series under 3 days) times
/// the level, measured a week ahead and widened by sqrt(h / 7) beyond a week.
fn cohort_widths(history_len: usize, level: f64, shape: &WeeklyShape, horizon: usize) -> Vec<(f64, f64)> {
    let (rel80, rel95) = if history_len < 3 {
        (shape.cohort_rel80, shape.cohort_rel95)
    } else {
        (shape.rel80, shape.rel95)
    };
    (1..=horizon)
        .map(|h| {
            let widen = (h as f64 / WEEK as f64).sqrt().max(1.0);
            (rel80 * level * widen, rel95 * level * widen)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::SplitMix64;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn assert_sane(forecast: &Forecast) {
        for day in &forecast.days {
            for value in [day.point, day.lo80, day.hi80, day.lo95, day.hi95] {
                assert!(value.is_finite() && value >= 0.0, "{day:?}");
            }
            assert!(day.lo95 <= day.lo80 && day.lo80 <= day.point, "{day:?}");
            assert!(day.point <= day.hi80 && day.hi80 <= day.hi95, "{day:?}");
        }
    }

    #[test]
    fn horizons_of_zero_and_beyond_ninety_days_are_refused() {
        let series = DailySeries::new(date(2024, 1, 1), vec![1.0; 30]);
        for asked in [0, 91] {
            let error = forecast(&series, asked, None).unwrap_err();
            assert_eq!(error, ForecastError::Horizon { asked });
            assert!(
                error.to_string().contains("a forecast reaches at most 90 days"),
                "{error}"
            );
        }
        assert_eq!(forecast(&series, 90, None).unwrap().days.len(), 90);
    }

    #[test]
    fn no_history_and_silent_sims_forecast_zero_without_nan() {
        let empty = DailySeries::new(date(2024, 1, 1), Vec::new());
        let silent = DailySeries::new(date(2024, 1, 1), vec![0.0; 60]);
        let shape = WeeklyShape::flat();
        for (series, cohort) in [(&empty, None), (&empty, Some(&shape)), (&silent, None)] {
            let forecast = forecast(series, 30, cohort).unwrap();
            assert_eq!(forecast.days.len(), 30);
            assert_sane(&forecast);
            assert!(forecast
                .days
                .iter()
                .all(|day| day.point == 0.0 && day.hi95 == 0.0));
        }
        // The first day forecast follows the last day held (for an empty series: its start).
        assert_eq!(forecast(&empty, 1, None).unwrap().days[0].date, date(2024, 1, 1));
        assert_eq!(forecast(&silent, 1, None).unwrap().days[0].date, date(2024, 3, 1));
    }

    #[test]
    fn unclean_values_are_read_as_zero() {
        let mut values = vec![100.0; 40];
        values[3] = f64::NAN;
        values[20] = -5.0;
        let series = DailySeries {
            start: date(2024, 1, 1),
            values,
        };
        let forecast = forecast(&series, 14, None).unwrap();
        assert_sane(&forecast);
    }

    #[test]
    fn the_method_and_its_backtest_error_travel_with_the_forecast() {
        let values = (0..60_u32).map(|t| 1000.0 + 100.0 * f64::from(t % 7)).collect();
        let series = DailySeries::new(date(2024, 1, 1), values);
        let forecast = forecast(&series, 7, None).unwrap();
        assert_eq!(forecast.method, Method::SeasonalNaive);
        assert_eq!(forecast.backtest_mase, Some(0.0));
        assert_eq!(forecast.backtest_wape, Some(0.0));
        // A perfect backtest leaves no room either side.
        assert!(forecast
            .days
            .iter()
            .all(|day| day.lo95 == day.point && day.hi95 == day.point));
    }

    #[test]
    fn short_series_borrow_the_cohort_shape_and_spread() {
        let mut shape = WeeklyShape::flat();
        shape.factors = [1.2, 1.2, 1.2, 1.2, 1.2, 0.5, 0.5];
        shape.rel80 = 0.1;
        shape.rel95 = 0.3;
        // Monday to Friday at level 1000.
        let series = DailySeries::new(date(2024, 1, 1), vec![1200.0; 5]);
        let forecast = forecast(&series, 3, Some(&shape)).unwrap();
        assert_eq!(forecast.method, Method::Cohort);
        assert_eq!(forecast.backtest_mase, None);
        let points: Vec<f64> = forecast.days.iter().map(|day| day.point).collect();
        let expected = [500.0, 500.0, 1200.0];
        assert!(
            points.iter().zip(expected).all(|(p, e)| (p - e).abs() < 1e-6),
            "{points:?}"
        );
        assert!((forecast.days[0].hi80 - 600.0).abs() < 1e-6);
        assert!((forecast.days[0].lo95 - 200.0).abs() < 1e-6);
    }

    #[test]
    fn intervals_cover_the_holdout_at_about_their_rate() {
        let mut rng = SplitMix64::new(42);
        let (training_days, holdout_days) = (172, 28);
        let (mut inside80, mut inside95, mut total) = (0_usize, 0_usize, 0_usize);
        for case in 0..50 {
            let level = 1e6 * (1.0 + 99.0 * rng.unit());
            let mut factors = [0.0; WEEK];
            for factor in &mut factors {
                *factor = 0.5 + rng.unit();
            }
            let mean_factor = factors.iter().sum::<f64>() / WEEK as f64;
            let trend = if case % 2 == 0 {
                (rng.unit() - 0.5) * 0.004 * level
            } else {
                0.0
            };
            let values: Vec<f64> = (0..training_days + holdout_days)
                .map(|t| {
                    let expected = level * factors[t % WEEK] / mean_factor + trend * t as f64;
                    (expected + 0.1 * level * rng.normal()).max(0.0)
                })
                .collect();
            let series = DailySeries::new(date(2024, 1, 1), values[..training_days].to_vec());
            let forecast = forecast(&series, holdout_days, None).unwrap();
            assert_sane(&forecast);
            for (day, actual) in forecast.days.iter().zip(&values[training_days..]) {
                total += 1;
                inside80 += usize::from((day.lo80..=day.hi80).contains(actual));
                inside95 += usize::from((day.lo95..=day.hi95).contains(actual));
            }
        }
        let (coverage80, coverage95) = (inside80 as f64 / total as f64, inside95 as f64 / total as f64);
        assert!(
            (0.65..=0.95).contains(&coverage80),
            "80 % interval covered {coverage80}"
        );
        assert!(
            (0.85..=0.995).contains(&coverage95),
            "95 % interval covered {coverage95}"
        );
    }
}
