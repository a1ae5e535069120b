//! The forecasting methods: point forecasts from a history of daily usage.
//!
//! Every method reads a history (bytes per day, oldest first) and returns `horizon` values for the
//! days right after it, never negative. Too short a history falls back to a simpler method rather
//! than failing: ETS needs two weeks, seasonal naive one, drift two days, naive one (none gives 0).

use std::fmt;

use chrono::Weekday;
use serde::{Deserialize, Serialize};

use crate::series::{clean, weekday_slot, WeeklyShape, WEEK};

/// How a forecast was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Method {
    /// The last day repeated.
    Naive,
    /// The last week repeated, weekday for weekday.
    SeasonalNaive,
    /// The last day plus the average day-to-day change over the history, per day ahead.
    Drift,
    /// Additive Holt-Winters (exponential smoothing) with a damped trend and a weekly season.
    Ets,
    /// The series' own recent level times its cohort's weekday shape, for series too short to judge.
    Cohort,
}

impl Method {
    /// The methods a backtest compares, simplest first: on a tie (within the backtest's margin) the
    /// earlier one is chosen, so a more complex method has to earn its place.
    pub const BY_SIMPLICITY: [Method; 4] = [Method::SeasonalNaive, Method::Naive, Method::Drift, Method::Ets];

    /// The name shown to users and stored with a forecast.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Naive => "NAIVE",
            Method::SeasonalNaive => "SEASONAL_NAIVE",
            Method::Drift => "DRIFT",
            Method::Ets => "ETS",
            Method::Cohort => "COHORT",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The point forecast of `method` for the `horizon` days after `history`, whose day 0 falls on
/// `start_weekday`. [`Method::Cohort`] here uses a flat shape (the recent mean level); use
/// [`cohort_forecast`] with the cohort's shape.
pub fn point_forecast(method: Method, history: &[f64], start_weekday: Weekday, horizon: usize) -> Vec<f64> {
    match method {
        Method::Naive => naive(history, horizon),
        Method::SeasonalNaive => seasonal_naive(history, horizon),
        Method::Drift => drift(history, horizon),
        Method::Ets => ets(history, horizon),
        Method::Cohort => cohort_forecast(history, start_weekday, horizon, &WeeklyShape::flat()),
    }
}

/// The last value repeated; zeros for an empty history.
pub fn naive(history: &[f64], horizon: usize) -> Vec<f64> {
    vec![history.last().map_or(0.0, |v| clean(*v)); horizon]
}

/// The value a week before each day ahead (the last week repeated); naive below a week of history.
pub fn seasonal_naive(history: &[f64], horizon: usize) -> Vec<f64> {
    seasonal_naive_by(history, WEEK, horizon)
}

/// The value a season of `season` values before each one ahead (the last season repeated: 24 for
/// the same hour yesterday); naive below a season of history or for a season of 0.
pub fn seasonal_naive_by(history: &[f64], season: usize, horizon: usize) -> Vec<f64> {
    let n = history.len();
    if season == 0 || n < season {
        return naive(history, horizon);
    }
    let last_season = &history[n - season..];
    (0..horizon).map(|h| clean(last_season[h % season])).collect()
}

/// The last value plus h times the average change per day between the first and the last day,
/// clamped at 0; naive below two days of history.
pub fn drift(history: &[f64], horizon: usize) -> Vec<f64> {
    let n = history.len();
    if n < 2 {
        return naive(history, horizon);
    }
    let (first, last) = (clean(history[0]), clean(history[n - 1]));
    let slope = (last - first) / (n - 1) as f64;
    (1..=horizon).map(|h| clean(last + h as f64 * slope)).collect()
}

/// The smoothing parameters of [`Method::Ets`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EtsParams {
    /// Level smoothing: how fast the level follows new days.
    pub alpha: f64,
    /// Trend smoothing: how fast the trend follows changes of the level.
    pub beta: f64,
    /// Season smoothing: how fast a weekday's offset follows that weekday's days.
    pub gamma: f64,
    /// Trend damping per day ahead (< 1: a trend flattens out rather than run on forever).
    pub phi: f64,
}

/// ETS needs a week to start its season and a second week to start its trend.
pub const ETS_MIN_DAYS: usize = 2 * WEEK;

const ALPHAS: [f64; 6] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.8];
const BETAS: [f64; 4] = [0.0, 0.01, 0.05, 0.1];
const GAMMAS: [f64; 4] = [0.01, 0.05, 0.1, 0.3];
const PHIS: [f64; 3] = [0.8, 0.9, 0.98];

/// The state of the smoother after a day: level, trend and one additive offset per day of the week
/// (indexed by day number modulo 7, counted from the history's day 0).
#[derive(Debug, Clone, Copy)]
struct EtsState {
    level: f64,
    trend: f64,
    season: [f64; WEEK],
}

/// The state at the end of the first week, from the first two weeks: the trend is the change of the
/// weekly mean per day, the level the first week's mean carried from its middle (day 3) to day 6,
/// and each weekday's offset its first-week value less the detrended mean.
/// Needs `history.len() >= ETS_MIN_DAYS`.
fn ets_start(history: &[f64]) -> EtsState {
    let week1 = history[..WEEK].iter().sum::<f64>() / WEEK as f64;
    let week2 = history[WEEK..ETS_MIN_DAYS].iter().sum::<f64>() / WEEK as f64;
    let trend = (week2 - week1) / WEEK as f64;
    let mut season = [0.0; WEEK];
    for (day, (offset, value)) in season.iter_mut().zip(&history[..WEEK]).enumerate() {
        *offset = value - (week1 + (day as f64 - 3.0) * trend);
    }
    EtsState {
        level: week1 + 3.0 * trend,
        trend,
        season,
    }
}

/// Runs the smoother over the history from day 7 on and returns its final state and the sum of
/// squared one-step errors from day 14 on (the first two weeks are its warm-up). The recursions:
/// fitted = level + phi·trend + season; new level = alpha·(y − season) + (1 − alpha)·(level +
/// phi·trend); new trend = beta·(new level − level) + (1 − beta)·phi·trend; new season =
/// gamma·(y − new level) + (1 − gamma)·season. No allocation: about 15 floating-point operations a day.
fn ets_run(history: &[f64], params: EtsParams) -> (EtsState, f64) {
    let mut state = ets_start(history);
    let mut sse = 0.0;
    for (t, &y) in history.iter().enumerate().skip(WEEK) {
        let slot = t % WEEK;
        let damped = params.phi * state.trend;
        let error = y - (state.level + damped + state.season[slot]);
        if t >= ETS_MIN_DAYS {
            sse += error * error;
        }
        let level = params.alpha * (y - state.season[slot]) + (1.0 - params.alpha) * (state.level + damped);
        state.trend = params.beta * (level - state.level) + (1.0 - params.beta) * damped;
        state.season[slot] = params.gamma * (y - level) + (1.0 - params.gamma) * state.season[slot];
        state.level = level;
    }
    (state, sse)
}

/// The smoothing parameters with the least in-sample one-step squared error, by a coarse search in
/// three stages rather than the full 6 × 4 × 4 × 3 = 288 grid: alpha × gamma (24 runs, beta 0,
/// phi 0.9), then beta × phi (12 runs) with those, then alpha again (6 runs) with the rest fixed —
/// 42 runs of the smoother, about 42 × (n − 7) × 15 ≈ 52,000 floating-point operations for
/// 90 days. `None` below [`ETS_MIN_DAYS`].
pub fn fit_ets(history: &[f64]) -> Option<EtsParams> {
    if history.len() < ETS_MIN_DAYS {
        return None;
    }
    let mut best = EtsParams {
        alpha: ALPHAS[0],
        beta: 0.0,
        gamma: GAMMAS[0],
        phi: 0.9,
    };
    let mut best_sse = f64::INFINITY;
    let mut consider = |params: EtsParams, best: &mut EtsParams| {
        let (_, sse) = ets_run(history, params);
        // A NaN error (a diverging run) never wins.
        if sse < best_sse {
            best_sse = sse;
            *best = params;
        }
    };
    for alpha in ALPHAS {
        for gamma in GAMMAS {
            consider(
                EtsParams {
                    alpha,
                    beta: 0.0,
                    gamma,
                    phi: 0.9,
                },
                &mut best,
            );
        }
    }
    let (alpha, gamma) = (best.alpha, best.gamma);
    for beta in BETAS {
        for phi in PHIS {
            consider(
                EtsParams {
                    alpha,
                    beta,
                    gamma,
                    phi,
                },
                &mut best,
            );
        }
    }
    let (beta, phi) = (best.beta, best.phi);
    for alpha in ALPHAS {
        consider(
            EtsParams {
                alpha,
                beta,
                gamma,
                phi,
            },
            &mut best,
        );
    }
    Some(best)
}

/// The ETS forecast h days ahead: level + (phi + phi² + … + phi^h)·trend + the season of that day,
/// clamped at 0. Seasonal naive below [`ETS_MIN_DAYS`] or should the smoother diverge.
pub fn ets(history: &[f64], horizon: usize) -> Vec<f64> {
    let Some(params) = fit_ets(history) else {
        return seasonal_naive(history, horizon);
    };
    let (state, _) = ets_run(history, params);
    let n = history.len();
    let mut out = Vec::with_capacity(horizon);
    let (mut damping, mut phi_power) = (0.0, 1.0);
    for h in 1..=horizon {
        phi_power *= params.phi;
        damping += phi_power;
        let value = state.level + damping * state.trend + state.season[(n - 1 + h) % WEEK];
        if !value.is_finite() {
            return seasonal_naive(history, horizon);
        }
        out.push(value.max(0.0));
    }
    out
}

/// The level a cohort forecast scales its shape by: with at least 3 days of history, the usage of
/// the last (up to) 7 days divided by the sum of those days' weekday factors (so a history that
/// ends on busy weekdays does not read as a high level); below that the cohort's median level.
pub fn cohort_level(history: &[f64], start_weekday: Weekday, shape: &WeeklyShape) -> f64 {
    let n = history.len();
    if n < 3 {
        return clean(shape.median_level);
    }
    let from = n.saturating_sub(WEEK);
    let (mut used, mut weight) = (0.0, 0.0);
    for (day, value) in history.iter().enumerate().skip(from) {
        used += clean(*value);
        weight += clean(shape.factors[weekday_slot(start_weekday, day)]);
    }
    // Factors that vanish on the days held say nothing about the level: take the plain mean then.
    let days = (n - from) as f64;
    if weight > 1e-9 * days {
        clean(used / weight)
    } else {
        clean(used / days)
    }
}

/// The [`cohort_level`] times the cohort's factor of each day ahead.
pub fn cohort_forecast(
    history: &[f64],
    start_weekday: Weekday,
    horizon: usize,
    shape: &WeeklyShape,
) -> Vec<f64> {
    let level = cohort_level(history, start_weekday, shape);
    let n = history.len();
    (0..horizon)
        .map(|h| clean(level * shape.factors[weekday_slot(start_weekday, n + h)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_stored_ones() {
        assert_eq!(Method::SeasonalNaive.as_str(), "SEASONAL_NAIVE");
        assert_eq!(Method::Ets.to_string(), "ETS");
        assert_eq!(Method::Cohort.as_str(), "COHORT");
    }

    #[test]
    fn naive_repeats_the_last_day() {
        assert_eq!(naive(&[1.0, 2.0, 3.0], 3), vec![3.0, 3.0, 3.0]);
        assert_eq!(naive(&[], 2), vec![0.0, 0.0]);
    }

    #[test]
    fn seasonal_naive_repeats_the_last_week() {
        let history: Vec<f64> = (1..=10_u32).map(f64::from).collect();
        assert_eq!(
            seasonal_naive(&history, 9),
            vec![4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 4.0, 5.0]
        );
        // Below a week: the last day.
        assert_eq!(seasonal_naive(&[1.0, 5.0], 2), vec![5.0, 5.0]);
    }

    #[test]
    fn drift_extends_the_average_change_and_stops_at_zero() {
        assert_eq!(drift(&[2.0, 4.0, 6.0, 8.0], 3), vec![10.0, 12.0, 14.0]);
        assert_eq!(drift(&[8.0, 6.0, 4.0, 2.0], 3), vec![0.0, 0.0, 0.0]);
        assert_eq!(drift(&[7.0], 2), vec![7.0, 7.0]);
    }

    #[test]
    fn ets_recovers_a_weekly_pattern_with_trend() {
        let season = [500.0, 250.0, 0.0, -250.0, -500.0, 1000.0, -1000.0];
        let truth: Vec<f64> = (0..98_u32)
            .map(|t| 10_000.0 + 20.0 * f64::from(t) + season[(t % 7) as usize])
            .collect();
        let forecast = ets(&truth[..84], 14);
        for (predicted, actual) in forecast.iter().zip(&truth[84..]) {
            assert!(
                (predicted - actual).abs() / actual < 0.02,
                "{predicted} vs {actual}"
            );
        }
    }

    #[test]
    fn ets_below_two_weeks_is_seasonal_naive() {
        let history: Vec<f64> = (1..=10_u32).map(f64::from).collect();
        assert_eq!(ets(&history, 3), seasonal_naive(&history, 3));
        assert!(fit_ets(&history).is_none());
    }

    #[test]
    fn zero_histories_forecast_zero() {
        for method in Method::BY_SIMPLICITY.into_iter().chain([Method::Cohort]) {
            for history in [Vec::new(), vec![0.0; 60]] {
                let forecast = point_forecast(method, &history, Weekday::Mon, 10);
                assert_eq!(forecast, vec![0.0; 10], "{method}");
            }
        }
    }

    #[test]
    fn cohort_forecast_scales_the_shape_by_the_recent_level() {
        let mut shape = WeeklyShape::flat();
        shape.factors = [1.2, 1.2, 1.2, 1.2, 1.2, 0.5, 0.5];
        shape.median_level = 50.0;
        // Five days from a Wednesday (Wed..Sun) at level 1000.
        let history: Vec<f64> = (2..7).map(|slot| 1000.0 * shape.factors[slot]).collect();
        let forecast = cohort_forecast(&history, Weekday::Wed, 3, &shape);
        // Monday, Tuesday, Wednesday.
        for value in &forecast {
            assert!((value - 1200.0).abs() < 1e-9, "{forecast:?}");
        }
        // Under three days of its own, a series takes the cohort's level: Friday, Saturday.
        let forecast = cohort_forecast(&[9_999.0], Weekday::Thu, 2, &shape);
        assert!((forecast[0] - 60.0).abs() < 1e-9 && (forecast[1] - 25.0).abs() < 1e-9);
    }
}
