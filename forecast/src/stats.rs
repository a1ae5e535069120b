//! Small order statistics shared by the shapes, the backtest and the intervals.

/// The empirical `q` quantile (0 < q ≤ 1) of `values`: the smallest value with at least a share `q`
/// of the values at or below it. `None` for no values. Reorders `values` (a selection, not a sort:
/// linear time).
pub(crate) fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    let len = values.len();
    if len == 0 {
        return None;
    }
    // A value in [0, len] (q is a probability); `as` saturates, and the clamp keeps the rank in range.
    let rank = ((q.clamp(0.0, 1.0) * len as f64).ceil() as usize).clamp(1, len) - 1;
    let (_, value, _) = values.select_nth_unstable_by(rank, f64::total_cmp);
    Some(*value)
}

/// The median of `values` (the mean of the two middle ones for an even count); `None` for no values.
/// Sorts `values`.
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    let len = values.len();
    if len == 0 {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    let upper = values[len / 2];
    if len % 2 == 1 {
        Some(upper)
    } else {
        Some(0.5 * (values[len / 2 - 1] + upper))
    }
}

/// The mean of `values`, 0 for none.
pub(crate) fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_is_the_smallest_value_covering_the_share() {
        let mut values = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 9.0, 8.0, 7.0, 6.0];
        assert_eq!(quantile(&mut values, 0.8), Some(8.0));
        assert_eq!(quantile(&mut values, 0.95), Some(10.0));
        assert_eq!(quantile(&mut values, 0.1), Some(1.0));
        assert_eq!(quantile(&mut [], 0.5), None);
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn mean_of_nothing_is_zero() {
        assert_eq!(mean(&[]), 0.0);
        assert_eq!(mean(&[1.0, 2.0, 3.0]), 2.0);
    }
}
