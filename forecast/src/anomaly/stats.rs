//! Robust statistics: medians and median absolute deviations, which one odd day does not move,
//! and the statistics of a cohort of SIMs for SIMs too new to have a history of their own.

use serde::{Deserialize, Serialize};

use super::thresholds::{
    COHORT_MIN_SIMS, COHORT_MIN_Z, COHORT_P99_FACTOR, COHORT_SPIKE_MIN_BYTES, MAD_FLOOR_BYTES,
    MAD_FLOOR_SHARE, MAD_SCALE,
};

/// The daily usage of a cohort of similar SIMs (same customer, same plan or same device type) on
/// one day, against which a SIM with too little history of its own is judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CohortStats {
    /// The cohort's median of bytes a day.
    pub median_daily_bytes: f64,
    /// The median absolute deviation of the cohort's bytes a day from its median.
    pub mad_daily_bytes: f64,
    /// The cohort's 99th percentile of bytes a day.
    pub p99_daily_bytes: f64,
}

impl CohortStats {
    /// The daily bytes from which a SIM of this cohort is a spike: at least
    /// [`COHORT_P99_FACTOR`] × the 99th percentile, [`COHORT_MIN_Z`] robust standard deviations
    /// above the median (with the MAD floored as for a SIM's own history) and
    /// [`COHORT_SPIKE_MIN_BYTES`].
    pub fn spike_edge(&self) -> f64 {
        let sigma = robust_sigma(self.mad_daily_bytes, self.median_daily_bytes);
        (COHORT_P99_FACTOR * self.p99_daily_bytes)
            .max(self.median_daily_bytes + COHORT_MIN_Z * sigma)
            .max(COHORT_SPIKE_MIN_BYTES)
    }
}

/// The statistics of a cohort from the day's bytes of each of its SIMs; `None` for fewer than
/// [`COHORT_MIN_SIMS`] SIMs with a usable value (finite and not negative).
pub fn cohort_stats(daily_bytes: &[f64]) -> Option<CohortStats> {
    let mut values: Vec<f64> = daily_bytes
        .iter()
        .copied()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .collect();
    if values.len() < COHORT_MIN_SIMS {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    Some(CohortStats {
        median_daily_bytes: median(&values)?,
        mad_daily_bytes: mad(&values)?,
        p99_daily_bytes: quantile_of_sorted(&values, 0.99)?,
    })
}

/// The members of a cohort whose bytes on a day make them outliers of the fleet, by the same
/// rule as a new SIM's spike against its cohort ([`CohortStats::spike_edge`]). `values` pairs a
/// caller's index (a SIM's position, say) with the SIM's bytes of the day; the answer lists the
/// indices of the outliers in the order given. Nothing for a cohort too small for statistics.
///
/// The statistics include the outliers themselves: medians and MADs do not notice a few, and a
/// fleet where many SIMs spike at once has a high 99th percentile and fewer outliers, which is
/// the cautious answer.
pub fn fleet_outliers(values: &[(usize, f64)]) -> Vec<usize> {
    let day_values: Vec<f64> = values.iter().map(|&(_, bytes)| bytes).collect();
    let Some(stats) = cohort_stats(&day_values) else {
        return Vec::new();
    };
    let edge = stats.spike_edge();
    values
        .iter()
        .filter(|&&(_, bytes)| bytes.is_finite() && bytes >= edge)
        .map(|&(index, _)| index)
        .collect()
}

/// The robust standard deviation of daily bytes: [`MAD_SCALE`] × the MAD, the MAD floored at
/// [`MAD_FLOOR_SHARE`] × `level` (the usual daily bytes) and at [`MAD_FLOOR_BYTES`]. Never 0.
pub(super) fn robust_sigma(mad: f64, level: f64) -> f64 {
    MAD_SCALE * mad.max(MAD_FLOOR_SHARE * level).max(MAD_FLOOR_BYTES)
}

/// The median of the finite `values` (the mean of the two middle ones for an even count); `None`
/// for none.
pub(super) fn median(values: &[f64]) -> Option<f64> {
    let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    crate::stats::median(&mut finite)
}

/// The median absolute deviation of the finite `values` from their median; `None` for none.
pub(super) fn mad(values: &[f64]) -> Option<f64> {
    let center = median(values)?;
    let deviations: Vec<f64> = values
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| (v - center).abs())
        .collect();
    median(&deviations)
}

/// The `q` quantile of `sorted` (ascending), interpolated linearly between ranks; `None` for no
/// values.
fn quantile_of_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = q.clamp(0.0, 1.0) * last as f64;
    let below = position.floor();
    // `position` is in [0, last], so the cast neither truncates nor wraps.
    let index = below as usize;
    let low = *sorted.get(index)?;
    let high = sorted.get(index + 1).copied().unwrap_or(low);
    Some(low + (high - low) * (position - below))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn mad_ignores_one_wild_value() {
        assert_eq!(mad(&[10.0, 11.0, 9.0, 10.0, 1_000.0]), Some(1.0));
    }

    #[test]
    fn cohort_stats_need_enough_sims() {
        assert_eq!(cohort_stats(&[1.0; 19]), None);
        let values: Vec<f64> = (1..=101).map(f64::from).collect();
        let stats = cohort_stats(&values).unwrap();
        assert_eq!(stats.median_daily_bytes, 51.0);
        assert_eq!(stats.mad_daily_bytes, 25.0);
        assert!((stats.p99_daily_bytes - 100.0).abs() < 1e-9);
    }

    #[test]
    fn fleet_outliers_finds_the_sim_far_above_the_rest() {
        let mut values: Vec<(usize, f64)> = (0..100u32)
            .map(|i| (i as usize, 10e6 + 100e3 * f64::from(i)))
            .collect();
        values.push((100, 900e6));
        assert_eq!(fleet_outliers(&values), [100]);
        assert!(fleet_outliers(&values[..10]).is_empty());
    }
}
