//! Daily usage series and the weekly shape a cohort of them shares.
//!
//! A series holds bytes per day from its `start` date, day 0 the oldest. A day without usage is 0,
//! not missing: a SIM that did not talk used nothing.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use crate::stats::{median, quantile};

/// Days in a week: the period of the weekly season.
pub const WEEK: usize = 7;

/// How many of a series' most recent days a cohort shape reads (whole weeks only): recent enough to
/// be today's habits, long enough for three week-to-week comparisons.
pub const SHAPE_WINDOW_DAYS: usize = 28;

/// Usage per day, in bytes, from `start` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailySeries {
    /// The date of `values[0]`.
    pub start: NaiveDate,
    /// Bytes per day, oldest first; meant to be finite and non-negative ([`DailySeries::new`] makes
    /// them so, and the forecasts read anything else as 0).
    pub values: Vec<f64>,
}

impl DailySeries {
    /// A series from `start`, with negative and non-finite values (which no meter produces) read as 0.
    pub fn new(start: NaiveDate, mut values: Vec<f64>) -> Self {
        for value in &mut values {
            *value = clean(*value);
        }
        Self { start, values }
    }

    /// The number of days held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no day is held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The date of day `i` (day 0 is `start`).
    pub fn date_of(&self, i: usize) -> NaiveDate {
        add_days(self.start, i)
    }

    /// The weekday of day `i`, which lines the weekly season up with the calendar.
    pub fn weekday_of(&self, i: usize) -> Weekday {
        self.date_of(i).weekday()
    }

    /// The date of the last day held, `None` for an empty series.
    pub fn end(&self) -> Option<NaiveDate> {
        self.len().checked_sub(1).map(|i| self.date_of(i))
    }

    /// The day after the last one held: the first day a forecast covers.
    pub fn next_date(&self) -> NaiveDate {
        self.date_of(self.len())
    }

    /// The last `n` days (all of them when fewer are held).
    pub fn last(&self, n: usize) -> &[f64] {
        &self.values[self.values.len().saturating_sub(n)..]
    }

    /// The usage over all days held.
    pub fn sum(&self) -> f64 {
        self.values.iter().sum()
    }
}

/// A value fit for a usage series: finite and non-negative, anything else 0.
pub fn clean(value: f64) -> f64 {
    if value.is_finite() && value > 0.0 {
        value
    } else {
        0.0
    }
}

/// `date` plus `days`, saturating at the last date chrono knows.
pub fn add_days(date: NaiveDate, days: usize) -> NaiveDate {
    let days = u64::try_from(days).unwrap_or(u64::MAX);
    date.checked_add_days(Days::new(days)).unwrap_or(NaiveDate::MAX)
}

/// The position of `weekday` in a week starting on Monday (Monday 0, Sunday 6): the index into
/// [`WeeklyShape::factors`].
pub fn weekday_index(weekday: Weekday) -> usize {
    match weekday {
        Weekday::Mon => 0,
        Weekday::Tue => 1,
        Weekday::Wed => 2,
        Weekday::Thu => 3,
        Weekday::Fri => 4,
        Weekday::Sat => 5,
        Weekday::Sun => 6,
    }
}

/// The weekday index (Monday 0) of day `day` of a series whose day 0 falls on `start_weekday`.
pub fn weekday_slot(start_weekday: Weekday, day: usize) -> usize {
    (weekday_index(start_weekday) + day % WEEK) % WEEK
}

/// The parts added day by day, aligned by date: the sum runs from the earliest start to the latest
/// end, a part counting 0 on days it does not hold. This is how a group (pool, sub-customer, tenant)
/// gets its own series, which is then forecast like any other: summing the parts' forecasts would
/// add their intervals too, which overstates the group's uncertainty (the parts' errors partly
/// cancel). Empty parts are ignored; with no days at all the sum is empty (starting on the earliest
/// part's start, or 1970-01-01 for no parts).
pub fn sum_series(parts: &[&DailySeries]) -> DailySeries {
    let mut range: Option<(NaiveDate, NaiveDate)> = None;
    for part in parts.iter().filter(|part| !part.is_empty()) {
        let (start, next) = (part.start, part.next_date());
        range = Some(match range {
            None => (start, next),
            Some((from, to)) => (from.min(start), to.max(next)),
        });
    }
    let Some((start, next)) = range else {
        let start = parts.iter().map(|part| part.start).min().unwrap_or_default();
        return DailySeries {
            start,
            values: Vec::new(),
        };
    };
    let mut values = vec![0.0; days_between(start, next)];
    for part in parts {
        let offset = days_between(start, part.start);
        for (slot, value) in values.iter_mut().skip(offset).zip(&part.values) {
            *slot += clean(*value);
        }
    }
    DailySeries { start, values }
}

/// Whole days from `from` to `to`, 0 when `to` is not after `from`.
fn days_between(from: NaiveDate, to: NaiveDate) -> usize {
    usize::try_from(to.signed_duration_since(from).num_days()).unwrap_or(0)
}

/// How a cohort of series (SIMs of one product, one customer, one device model) spreads its usage
/// over the week, its typical level and how far a week's usage strays from the week before: what a
/// new SIM with too little history of its own borrows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WeeklyShape {
    /// Multiplicative factor per weekday, Monday first, averaging 1: a day's expected usage is the
    /// series' level times its weekday's factor.
    pub factors: [f64; WEEK],
    /// The median daily level (bytes per day) of the cohort: the level of a series with fewer than
    /// 3 days of its own.
    pub median_level: f64,
    /// Half-widths of the 80 % and 95 % intervals as a share of the level, when the series' own level
    /// is known (how far the cohort's days stray from their previous week's level times the shape).
    pub rel80: f64,
    /// See [`WeeklyShape::rel80`].
    pub rel95: f64,
    /// The same shares when the cohort's median level stands in for the series' own: wider, since
    /// levels differ between series.
    pub cohort_rel80: f64,
    /// See [`WeeklyShape::cohort_rel80`].
    pub cohort_rel95: f64,
    /// How many series had a whole week to contribute.
    pub series: usize,
}

/// The relative half-widths assumed when a cohort has no week-to-week comparison to measure: the
/// usage may be anywhere from nothing to about twice the level.
const UNMEASURED_REL80: f64 = 1.0;
const UNMEASURED_REL95: f64 = 2.0;

/// One series' most recent whole weeks, as the shape reads them.
struct ShapeWindow<'a> {
    values: &'a [f64],
    /// Weekday index of `values[0]`.
    first_weekday: usize,
}

impl WeeklyShape {
    /// No weekly pattern, no level and the widest unmeasured spread: what a cohort without data gives.
    pub fn flat() -> Self {
        Self {
            factors: [1.0; WEEK],
            median_level: 0.0,
            rel80: UNMEASURED_REL80,
            rel95: UNMEASURED_REL95,
            cohort_rel80: UNMEASURED_REL80,
            cohort_rel95: UNMEASURED_REL95,
            series: 0,
        }
    }

    /// The shape of a cohort, robust to a few odd members: each series with at least a whole week
    /// gives its weekday profile over its last whole weeks (up to [`SHAPE_WINDOW_DAYS`]), each
    /// weekday's mean divided by the series' mean; the factor of a weekday is the median of the
    /// series' profiles, and the factors are then scaled to average 1. The level is the median of the
    /// series' means. The spread is the 80 % and 95 % quantile of |actual − level × factor| / level
    /// over every day that has a previous whole week, the level being that week's mean (own level)
    /// or the cohort's median level. Flat for no usable series. Cost: linear in the days read.
    pub fn from_series(parts: &[&DailySeries]) -> Self {
        let mut profiles: [Vec<f64>; WEEK] = Default::default();
        let mut levels = Vec::with_capacity(parts.len());
        let mut windows = Vec::with_capacity(parts.len());
        for part in parts {
            let n = part.len();
            let weeks = n.min(SHAPE_WINDOW_DAYS) / WEEK;
            if weeks == 0 {
                continue;
            }
            let from = n - weeks * WEEK;
            let window = ShapeWindow {
                values: &part.values[from..],
                first_weekday: weekday_index(part.weekday_of(from)),
            };
            let mut sums = [0.0; WEEK];
            for (i, value) in window.values.iter().enumerate() {
                sums[(window.first_weekday + i) % WEEK] += clean(*value);
            }
            let level = sums.iter().sum::<f64>() / (weeks * WEEK) as f64;
            levels.push(level);
            if level > 0.0 {
                for (profile, sum) in profiles.iter_mut().zip(sums) {
                    profile.push(sum / weeks as f64 / level);
                }
            }
            windows.push(window);
        }
        if windows.is_empty() {
            return Self::flat();
        }
        let mut factors = [1.0; WEEK];
        for (factor, profile) in factors.iter_mut().zip(profiles.iter_mut()) {
            *factor = median(profile).unwrap_or(1.0);
        }
        let factor_mean = factors.iter().sum::<f64>() / WEEK as f64;
        if factor_mean > 0.0 && factor_mean.is_finite() {
            for factor in &mut factors {
                *factor /= factor_mean;
            }
        } else {
            factors = [1.0; WEEK];
        }
        let median_level = median(&mut levels).unwrap_or(0.0);

        let mut own_errors = Vec::new();
        let mut cohort_errors = Vec::new();
        for window in &windows {
            let weeks: Vec<&[f64]> = window.values.chunks_exact(WEEK).collect();
            for pair in weeks.windows(2) {
                let level = pair[0].iter().map(|v| clean(*v)).sum::<f64>() / WEEK as f64;
                for (i, actual) in pair[1].iter().enumerate() {
                    let factor = factors[(window.first_weekday + i) % WEEK];
                    let actual = clean(*actual);
                    if level > 0.0 {
                        own_errors.push((actual - level * factor).abs() / level);
                    }
                    if median_level > 0.0 {
                        cohort_errors.push((actual - median_level * factor).abs() / median_level);
                    }
                }
            }
            // Every window's last week against the cohort level, also for series of a single week.
            if weeks.len() == 1 && median_level > 0.0 {
                for (i, actual) in weeks[0].iter().enumerate() {
                    let factor = factors[(window.first_weekday + i) % WEEK];
                    cohort_errors.push((clean(*actual) - median_level * factor).abs() / median_level);
                }
            }
        }
        let spread = |errors: &mut Vec<f64>, q: f64, unmeasured: f64| {
            quantile(errors, q)
                .filter(|v| v.is_finite())
                .unwrap_or(unmeasured)
        };
        let rel80 = spread(&mut own_errors, 0.8, UNMEASURED_REL80);
        let rel95 = spread(&mut own_errors, 0.95, UNMEASURED_REL95);
        // The cohort level is never a better guess than the series' own; keep its band at least as wide.
        let cohort_rel80 = spread(&mut cohort_errors, 0.8, UNMEASURED_REL80).max(rel80);
        let cohort_rel95 = spread(&mut cohort_errors, 0.95, UNMEASURED_REL95).max(rel95);
        Self {
            factors,
            median_level,
            rel80,
            rel95,
            cohort_rel80,
            cohort_rel95,
            series: windows.len(),
        }
    }
}

impl Default for WeeklyShape {
    fn default() -> Self {
        Self::flat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Weekdays busy, weekends quiet; averages 1.
    const PATTERN: [f64; WEEK] = [1.2, 1.2, 1.2, 1.2, 1.2, 0.5, 0.5];

    fn patterned(start: NaiveDate, level: f64, days: usize) -> DailySeries {
        let values = (0..days)
            .map(|i| level * PATTERN[weekday_index(add_days(start, i).weekday())])
            .collect();
        DailySeries::new(start, values)
    }

    #[test]
    fn new_reads_negative_and_non_finite_values_as_zero() {
        let series = DailySeries::new(date(2024, 1, 1), vec![1.0, -2.0, f64::NAN, f64::INFINITY, 3.0]);
        assert_eq!(series.values, vec![1.0, 0.0, 0.0, 0.0, 3.0]);
        assert_eq!(series.sum(), 4.0);
    }

    #[test]
    fn days_follow_the_calendar_from_the_start() {
        // 2024-01-01 is a Monday.
        let series = DailySeries::new(date(2024, 1, 1), vec![1.0; 10]);
        assert_eq!(series.weekday_of(0), Weekday::Mon);
        assert_eq!(series.weekday_of(6), Weekday::Sun);
        assert_eq!(series.weekday_of(7), Weekday::Mon);
        assert_eq!(weekday_slot(Weekday::Sat, 3), weekday_index(Weekday::Tue));
        assert_eq!(series.end(), Some(date(2024, 1, 10)));
        assert_eq!(series.next_date(), date(2024, 1, 11));
        assert_eq!(series.last(3).len(), 3);
        assert_eq!(series.last(30).len(), 10);
        assert_eq!(DailySeries::new(date(2024, 1, 1), Vec::new()).end(), None);
    }

    #[test]
    fn sum_series_aligns_parts_by_date() {
        let a = DailySeries::new(date(2024, 1, 1), vec![1.0, 2.0, 3.0]);
        let b = DailySeries::new(date(2024, 1, 2), vec![10.0, 20.0, 30.0]);
        let late = DailySeries::new(date(2024, 1, 6), vec![100.0]);
        let sum = sum_series(&[&b, &a, &late]);
        assert_eq!(sum.start, date(2024, 1, 1));
        assert_eq!(sum.values, vec![1.0, 12.0, 23.0, 30.0, 0.0, 100.0]);
    }

    #[test]
    fn sum_series_of_nothing_is_empty() {
        assert!(sum_series(&[]).is_empty());
        let empty = DailySeries::new(date(2024, 3, 1), Vec::new());
        let sum = sum_series(&[&empty]);
        assert!(sum.is_empty());
        assert_eq!(sum.start, date(2024, 3, 1));
    }

    #[test]
    fn weekly_shape_recovers_the_weekday_factors_whatever_the_start_weekday() {
        let a = patterned(date(2024, 1, 1), 100.0, 28);
        let b = patterned(date(2024, 1, 3), 200.0, 35);
        let c = patterned(date(2024, 1, 6), 300.0, 21);
        let shape = WeeklyShape::from_series(&[&a, &b, &c]);
        for (factor, expected) in shape.factors.iter().zip(PATTERN) {
            assert!((factor - expected).abs() < 1e-9, "{:?}", shape.factors);
        }
        assert!((shape.median_level - 200.0).abs() < 1e-9);
        assert_eq!(shape.series, 3);
        // A perfectly regular cohort strays by nothing from its own level.
        assert!(shape.rel95 < 1e-9);
        assert!(shape.cohort_rel80 > 0.0);
    }

    #[test]
    fn weekly_shape_of_no_usable_series_is_flat() {
        let short = DailySeries::new(date(2024, 1, 1), vec![5.0; 3]);
        assert_eq!(WeeklyShape::from_series(&[&short]), WeeklyShape::flat());
        assert_eq!(WeeklyShape::from_series(&[]), WeeklyShape::flat());
    }
}
