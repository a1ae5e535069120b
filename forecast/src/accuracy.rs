//! How good a forecast was, once the days it covered are known: the measures the backtest ranks
//! methods by and a fleet-level evaluation reports.

use crate::series::WEEK;

/// The scale MASE divides by: the mean absolute difference between a training day and the day a
/// week before (what seasonal naive would have got wrong in-sample); the day before when that is 0
/// or the training is under 8 days; 1 byte when that is 0 too, so that nothing divides by 0.
pub fn mase_scale(training: &[f64]) -> f64 {
    seasonal_mase_scale(training, WEEK)
}

/// [`mase_scale`] for a season of `season` values: the mean absolute difference between a training
/// value and the one a season before (a season of 24 for hours, as the M4 competition scales its
/// hourly series); the value before when that is 0 or the training is not longer than a season;
/// 1 when that is 0 too.
pub fn seasonal_mase_scale(training: &[f64], season: usize) -> f64 {
    let seasonal = mean_abs_difference(training, season);
    if seasonal > 0.0 {
        return seasonal;
    }
    let daily = mean_abs_difference(training, 1);
    if daily > 0.0 {
        daily
    } else {
        1.0
    }
}

/// The mean of |y(t) − y(t − lag)|; 0 when no such pair exists.
fn mean_abs_difference(values: &[f64], lag: usize) -> f64 {
    if values.len() <= lag {
        return 0.0;
    }
    let total: f64 = values
        .iter()
        .zip(&values[lag..])
        .map(|(before, after)| (after - before).abs())
        .sum();
    total / (values.len() - lag) as f64
}

/// Mean absolute scaled error: the forecast's mean absolute error divided by [`mase_scale`] of the
/// training days. Below 1 the forecast beat what seasonal naive did in-sample. Comparable across
/// series of any size, hence the backtest's ranking. `None` when there is nothing to compare
/// (no days, or `actual` and `forecast` of different lengths).
pub fn mase(actual: &[f64], forecast: &[f64], training: &[f64]) -> Option<f64> {
    seasonal_mase(actual, forecast, training, WEEK)
}

/// [`mase`] scaled by [`seasonal_mase_scale`] of a season of `season` values (24 for hourly series).
pub fn seasonal_mase(actual: &[f64], forecast: &[f64], training: &[f64], season: usize) -> Option<f64> {
    let mae = mean_absolute_error(actual, forecast)?;
    Some(mae / seasonal_mase_scale(training, season))
}

/// Weighted absolute percentage error: Σ|actual − forecast| / Σ|actual|, the share of the usage the
/// forecast got wrong; dominated by the big series, as a fleet's bill is. `None` when the actual
/// usage is 0 (nothing to weigh by) or the slices differ in length or are empty.
pub fn wape(actual: &[f64], forecast: &[f64]) -> Option<f64> {
    if actual.is_empty() || actual.len() != forecast.len() {
        return None;
    }
    let volume: f64 = actual.iter().map(|a| a.abs()).sum();
    if volume <= 0.0 || !volume.is_finite() {
        return None;
    }
    let error: f64 = actual.iter().zip(forecast).map(|(a, f)| (a - f).abs()).sum();
    Some(error / volume)
}

/// The share of days whose actual usage lay between lo and hi (both included): an 80 % interval
/// should cover about 0.8. Reads the days all three slices hold; 0 when there are none.
pub fn coverage(actual: &[f64], lo: &[f64], hi: &[f64]) -> f64 {
    let (mut inside, mut days) = (0_usize, 0_usize);
    for ((&a, &l), &h) in actual.iter().zip(lo).zip(hi) {
        days += 1;
        if (l..=h).contains(&a) {
            inside += 1;
        }
    }
    if days == 0 {
        0.0
    } else {
        inside as f64 / days as f64
    }
}

/// The mean absolute error; `None` for no days or slices of different lengths.
pub(crate) fn mean_absolute_error(actual: &[f64], forecast: &[f64]) -> Option<f64> {
    if actual.is_empty() || actual.len() != forecast.len() {
        return None;
    }
    let total: f64 = actual.iter().zip(forecast).map(|(a, f)| (a - f).abs()).sum();
    Some(total / actual.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mase_divides_by_the_in_sample_weekly_difference() {
        // Every day is 7 more than a week before: scale 7.
        let training: Vec<f64> = (1..=10_u32).map(f64::from).collect();
        assert_eq!(mase_scale(&training), 7.0);
        assert_eq!(mase(&[10.0, 10.0], &[3.0, 17.0], &training), Some(1.0));
        assert_eq!(mase(&[10.0], &[3.0, 17.0], &training), None);
    }

    #[test]
    fn mase_scale_falls_back_to_daily_then_to_one_byte() {
        // Repeats weekly exactly, but changes day to day.
        let weekly = [
            1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0,
        ];
        // 12 of the 13 day-to-day steps change by 1.
        assert!((mase_scale(&weekly) - 12.0 / 13.0).abs() < 1e-12);
        let short = [1.0, 3.0, 7.0];
        assert_eq!(mase_scale(&short), 3.0);
        assert_eq!(mase_scale(&[5.0; 20]), 1.0);
        assert_eq!(mase_scale(&[]), 1.0);
    }

    #[test]
    fn seasonal_mase_divides_by_the_in_sample_difference_a_season_before() {
        // Every hour is 24 more than a day before: scale 24.
        let training: Vec<f64> = (1..=30_u32).map(f64::from).collect();
        assert_eq!(seasonal_mase_scale(&training, 24), 24.0);
        assert_eq!(
            seasonal_mase(&[10.0, 10.0], &[-14.0, 34.0], &training, 24),
            Some(1.0)
        );
        // The weekly season of the daily series is one case of it.
        assert_eq!(seasonal_mase_scale(&training, WEEK), mase_scale(&training));
    }

    #[test]
    fn wape_is_the_share_of_usage_got_wrong() {
        assert_eq!(wape(&[10.0, 30.0], &[20.0, 30.0]), Some(0.25));
        assert_eq!(wape(&[0.0, 0.0], &[1.0, 1.0]), None);
        assert_eq!(wape(&[], &[]), None);
    }

    #[test]
    fn coverage_counts_days_inside_the_bounds() {
        let share = coverage(&[1.0, 5.0, 10.0], &[0.0, 0.0, 0.0], &[2.0, 4.0, 10.0]);
        assert!((share - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(coverage(&[], &[], &[]), 0.0);
    }
}
