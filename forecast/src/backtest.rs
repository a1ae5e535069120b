//! Rolling-origin backtest: each method forecasts days the series already has, from several past
//! origins, and the method with the lowest error is chosen — the simpler one on a near-tie.
//!
//! The scores, the origins and the selection are generic over the kind of method, so that the
//! hourly forecasts ([`crate::hourly`]) are judged and chosen the same way as the daily ones.

use chrono::Weekday;
use serde::{Deserialize, Serialize};

use crate::accuracy::mase_scale;
use crate::methods::{point_forecast, Method, ETS_MIN_DAYS};
use crate::series::{WeeklyShape, WEEK};

/// The fewest days before a backtest origin: what ETS needs to start.
pub const MIN_TRAINING_DAYS: usize = ETS_MIN_DAYS;
/// The shortest backtest horizon: a week, so that every weekday is judged.
pub const MIN_BACKTEST_HORIZON: usize = WEEK;
/// The longest backtest horizon: longer forecasts are judged on their first two weeks, which keeps
/// enough training before the origins of a three-month history.
pub const MAX_BACKTEST_HORIZON: usize = 2 * WEEK;
/// Origins beyond the latest one, a week apart each.
pub const EXTRA_ORIGINS: usize = 3;
/// A method within this share of the best mean MASE counts as tied with it.
pub const TIE_MARGIN: f64 = 0.02;

/// How one method did in a backtest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodScore<M = Method> {
    /// The method judged.
    pub method: M,
    /// Mean absolute error over every origin and day ahead, in bytes per day.
    pub mae: f64,
    /// Mean over the origins of each origin's MASE (its MAE over the scale of its training days).
    pub mase: f64,
    /// Σ|error| / Σ|actual| over every origin and day ahead; `None` when the actual days used nothing.
    pub wape: Option<f64>,
    /// Errors (actual − forecast) by day ahead: `residuals_by_horizon[h - 1]` holds one per origin.
    pub residuals_by_horizon: Vec<Vec<f64>>,
}

/// The scores of every method of [`Method::BY_SIMPLICITY`] (or of another kind of method) on one
/// series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backtest<M = Method> {
    /// Days forecast from each origin.
    pub horizon: usize,
    /// The origins (days of the series the forecasts start at), latest first.
    pub origins: Vec<usize>,
    /// One score per method, simplest first ([`Method::BY_SIMPLICITY`] order for daily methods).
    pub scores: Vec<MethodScore<M>>,
}

impl<M: PartialEq> Backtest<M> {
    /// The score of `method`, if it was judged.
    pub fn score(&self, method: M) -> Option<&MethodScore<M>> {
        self.scores.iter().find(|score| score.method == method)
    }
}

/// The method chosen for a series, with how it did in the backtest: what travels with a forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice<M = Method> {
    /// The chosen method.
    pub method: M,
    /// Its backtest mean MASE; `None` when the series was too short to backtest.
    pub mase: Option<f64>,
    /// Its backtest WAPE; `None` when too short or the backtest days used nothing.
    pub wape: Option<f64>,
    /// Its backtest errors by day ahead (see [`MethodScore::residuals_by_horizon`]); empty without
    /// a backtest.
    pub residuals_by_horizon: Vec<Vec<f64>>,
}

/// The days a backtest forecasts from each origin for a forecast of `horizon` days over `n` days of
/// history: `horizon` clamped to [`MIN_BACKTEST_HORIZON`, `MAX_BACKTEST_HORIZON`], and shortened so
/// that at least [`MIN_TRAINING_DAYS`] precede the latest origin; 0 when not even one day fits.
pub fn backtest_horizon(n: usize, horizon: usize) -> usize {
    horizon
        .clamp(MIN_BACKTEST_HORIZON, MAX_BACKTEST_HORIZON)
        .min(n.saturating_sub(MIN_TRAINING_DAYS))
}

/// The origins for `n` days and a backtest horizon `h`: n − h − 7k for k = 0 ..= [`EXTRA_ORIGINS`],
/// while at least [`MIN_TRAINING_DAYS`] remain before the origin. Latest first; empty for h = 0.
pub fn origins(n: usize, h: usize) -> Vec<usize> {
    origins_every(n, h, WEEK, MIN_TRAINING_DAYS, EXTRA_ORIGINS)
}

/// The origins for `n` values and a backtest horizon `h`: n − h − k·`step` for k = 0 ..= `extra`,
/// while at least `min_training` values remain before the origin. Latest first; empty for h = 0.
pub(crate) fn origins_every(
    n: usize,
    h: usize,
    step: usize,
    min_training: usize,
    extra: usize,
) -> Vec<usize> {
    let mut out = Vec::with_capacity(extra + 1);
    if h == 0 {
        return out;
    }
    for k in 0..=extra {
        match n.checked_sub(h + k * step) {
            Some(origin) if origin >= min_training => out.push(origin),
            _ => break,
        }
    }
    out
}

/// Every method of [`Method::BY_SIMPLICITY`] forecasts [`backtest_horizon`] days from each of the
/// [`origins`], trained on the days before the origin only. `None` when the series is too short for
/// one origin (under [`MIN_TRAINING_DAYS`] + 1 days).
pub fn backtest(history: &[f64], start_weekday: Weekday, horizon: usize) -> Option<Backtest> {
    let h = backtest_horizon(history.len(), horizon);
    let origins = origins(history.len(), h);
    if origins.is_empty() {
        return None;
    }
    let scales: Vec<f64> = origins
        .iter()
        .map(|&origin| mase_scale(&history[..origin]))
        .collect();
    let scores = Method::BY_SIMPLICITY
        .iter()
        .map(|&method| {
            let forecast =
                |training: &[f64], days: usize| point_forecast(method, training, start_weekday, days);
            score_by(method, forecast, history, h, &origins, &scales)
        })
        .collect();
    Some(Backtest {
        horizon: h,
        origins,
        scores,
    })
}

/// One method's errors from every origin: `forecast(training, h)` is the method's forecast of the
/// `h` values after `training`, and `scales[i]` the MASE scale of the values before `origins[i]`.
pub(crate) fn score_by<M>(
    method: M,
    forecast: impl Fn(&[f64], usize) -> Vec<f64>,
    history: &[f64],
    h: usize,
    origins: &[usize],
    scales: &[f64],
) -> MethodScore<M> {
    let mut residuals = vec![Vec::with_capacity(origins.len()); h];
    let (mut absolute, mut volume, mut mase_total) = (0.0, 0.0, 0.0);
    for (&origin, &scale) in origins.iter().zip(scales) {
        let predicted = forecast(&history[..origin], h);
        let actual = &history[origin..origin + h];
        let mut origin_absolute = 0.0;
        for ((slot, a), p) in residuals.iter_mut().zip(actual).zip(&predicted) {
            let error = a - p;
            slot.push(error);
            origin_absolute += error.abs();
            volume += a.abs();
        }
        absolute += origin_absolute;
        mase_total += origin_absolute / h as f64 / scale;
    }
    let points = (origins.len() * h) as f64;
    MethodScore {
        method,
        mae: absolute / points,
        mase: mase_total / origins.len() as f64,
        wape: if volume > 0.0 {
            Some(absolute / volume)
        } else {
            None
        },
        residuals_by_horizon: residuals,
    }
}

/// The method with the lowest mean MASE, except that any method within [`TIE_MARGIN`] of the best
/// loses to a simpler one ([`Method::BY_SIMPLICITY`] order): seasonal naive is kept unless another
/// method beats it by more than 2 %, so a chosen method's backtest MASE is never more than 2 % above
/// seasonal naive's. A score that is not a number counts as infinitely bad. `None` for no scores.
pub fn select(backtest: Backtest) -> Option<Choice> {
    select_by(backtest, Method::BY_SIMPLICITY.as_slice())
}

/// [`select`] for any kind of method, `simplicity` listing the methods simplest first.
pub(crate) fn select_by<M: PartialEq>(backtest: Backtest<M>, simplicity: &[M]) -> Option<Choice<M>> {
    let badness = |score: &MethodScore<M>| {
        if score.mase.is_finite() {
            score.mase
        } else {
            f64::INFINITY
        }
    };
    let best = backtest.scores.iter().map(badness).fold(f64::INFINITY, f64::min);
    let threshold = best * (1.0 + TIE_MARGIN);
    let index = simplicity.iter().find_map(|method| {
        backtest
            .scores
            .iter()
            .position(|score| score.method == *method && badness(score) <= threshold)
    })?;
    let score = backtest.scores.into_iter().nth(index)?;
    Some(Choice {
        method: score.method,
        mase: Some(score.mase).filter(|m| m.is_finite()),
        wape: score.wape,
        residuals_by_horizon: score.residuals_by_horizon,
    })
}

/// The method for a series too short to backtest: the cohort's shape when one is given and the
/// series has under [`MIN_TRAINING_DAYS`] days, else seasonal naive from a week on, else naive.
pub fn fallback_method(n: usize, has_cohort: bool) -> Method {
    if n < MIN_TRAINING_DAYS && has_cohort {
        Method::Cohort
    } else if n >= WEEK {
        Method::SeasonalNaive
    } else {
        Method::Naive
    }
}

/// The method for a forecast of `horizon` days after `history` (day 0 on `start_weekday`): chosen by
/// [`backtest`] and [`select`], or [`fallback_method`] without a MASE when too short to backtest.
pub fn choose(
    history: &[f64],
    start_weekday: Weekday,
    horizon: usize,
    cohort: Option<&WeeklyShape>,
) -> Choice {
    backtest(history, start_weekday, horizon)
        .and_then(select)
        .unwrap_or_else(|| Choice {
            method: fallback_method(history.len(), cohort.is_some()),
            mase: None,
            wape: None,
            residuals_by_horizon: Vec::new(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::SplitMix64;

    const PATTERN: [f64; WEEK] = [1.2, 1.2, 1.2, 1.2, 1.2, 0.5, 0.5];

    #[test]
    fn origins_step_back_a_week_while_two_weeks_of_training_remain() {
        assert_eq!(origins(90, 14), vec![76, 69, 62, 55]);
        assert_eq!(origins(35, 7), vec![28, 21, 14]);
        assert_eq!(origins(21, 7), vec![14]);
        assert_eq!(origins(20, 7), Vec::<usize>::new());
        assert_eq!(backtest_horizon(90, 30), 14);
        assert_eq!(backtest_horizon(90, 1), 7);
        assert_eq!(backtest_horizon(17, 30), 3);
        assert_eq!(backtest_horizon(14, 30), 0);
    }

    #[test]
    fn a_weekly_pattern_with_small_noise_keeps_seasonal_naive_unless_ets_clearly_wins() {
        let mut rng = SplitMix64::new(7);
        let history: Vec<f64> = (0..70)
            .map(|t| 1000.0 * PATTERN[t % WEEK] * (1.0 + 0.01 * rng.normal()))
            .collect();
        let backtest = backtest(&history, Weekday::Mon, 7).unwrap();
        let seasonal = backtest.score(Method::SeasonalNaive).unwrap().mase;
        let choice = select(backtest.clone()).unwrap();
        assert!(
            matches!(choice.method, Method::SeasonalNaive | Method::Ets),
            "{:?}",
            choice.method
        );
        if choice.method == Method::Ets {
            assert!(seasonal > choice.mase.unwrap() * (1.0 + TIE_MARGIN));
        }
        // Naive and drift miss the weekends by far.
        assert!(backtest.score(Method::Naive).unwrap().mase > 5.0 * seasonal);
    }

    #[test]
    fn a_strong_trend_is_followed() {
        let mut rng = SplitMix64::new(11);
        let history: Vec<f64> = (0..70)
            .map(|t| 100.0 + 50.0 * t as f64 + 5.0 * rng.normal())
            .collect();
        let choice = choose(&history, Weekday::Mon, 7, None);
        assert!(
            matches!(choice.method, Method::Drift | Method::Ets),
            "{:?}",
            choice.method
        );
        assert!(choice.mase.unwrap() < 0.5);
    }

    #[test]
    fn the_chosen_method_is_never_worse_than_seasonal_naive_beyond_the_tie_margin() {
        let mut rng = SplitMix64::new(2024);
        for case in 0..30 {
            let level = 1e6 * (1.0 + 50.0 * rng.unit());
            let trend = if case % 3 == 0 {
                level * 0.01 * (rng.unit() - 0.5)
            } else {
                0.0
            };
            let noise = 0.05 + 0.5 * rng.unit();
            let days = 21 + case * 4;
            let history: Vec<f64> = (0..days)
                .map(|t| {
                    let expected = level * PATTERN[t % WEEK] + trend * t as f64;
                    (expected + noise * level * rng.normal()).max(0.0)
                })
                .collect();
            let backtest = backtest(&history, Weekday::Mon, 14).unwrap();
            let seasonal = backtest.score(Method::SeasonalNaive).unwrap().mase;
            let choice = select(backtest).unwrap();
            assert!(
                choice.mase.unwrap() <= seasonal * (1.0 + TIE_MARGIN),
                "case {case}"
            );
        }
    }

    #[test]
    fn exact_ties_go_to_the_simpler_method() {
        // Nothing but zeros: every method is perfect.
        let choice = choose(&[0.0; 40], Weekday::Mon, 7, None);
        assert_eq!(choice.method, Method::SeasonalNaive);
        assert_eq!(choice.mase, Some(0.0));
        assert_eq!(choice.wape, None);
    }

    #[test]
    fn short_series_are_not_backtested() {
        let shape = WeeklyShape::flat();
        let choice = choose(&[1.0; 10], Weekday::Mon, 7, Some(&shape));
        assert_eq!((choice.method, choice.mase), (Method::Cohort, None));
        assert_eq!(
            choose(&[1.0; 10], Weekday::Mon, 7, None).method,
            Method::SeasonalNaive
        );
        assert_eq!(choose(&[1.0; 3], Weekday::Mon, 7, None).method, Method::Naive);
        assert_eq!(choose(&[], Weekday::Mon, 7, None).method, Method::Naive);
        // Two weeks exactly: its own history, but nothing left to test it on.
        let choice = choose(&[1.0; 14], Weekday::Mon, 7, Some(&shape));
        assert_eq!((choice.method, choice.mase), (Method::SeasonalNaive, None));
    }
}
