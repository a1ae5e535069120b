//! When a quota runs out, by the forecast: the likely day and the 80 % range around it, and the
//! usage the billing period is heading for.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::forecast::Forecast;
use crate::series::clean;

/// When a quota is expected to run out within its billing period and where the period's usage is
/// heading. Dates are `None` when the quota lasts to the period's end (by that reading).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Exhaustion {
    /// The first day whose cumulative expected usage reaches the limit.
    pub likely: Option<NaiveDate>,
    /// The first day whose cumulative upper 80 % bound reaches the limit: the quota should not run
    /// out before this day (9 times in 10).
    pub earliest: Option<NaiveDate>,
    /// The first day whose cumulative lower 80 % bound reaches the limit: the quota should have run
    /// out by this day (9 times in 10); `None` when even that bound lasts the period.
    pub latest: Option<NaiveDate>,
    /// The usage so far plus the expected usage of the forecast days up to the period's end.
    pub projected_period_total: f64,
    /// The same with the lower 80 % bounds.
    pub projected_period_total_lo80: f64,
    /// The same with the upper 80 % bounds.
    pub projected_period_total_hi80: f64,
}

/// When `limit` bytes are used up, given `used_so_far` in the period and a forecast that starts the
/// day after today (today is the day before the forecast's first day: the forecast is made from the
/// days completed so far). Only forecast days up to `period_end` (included) count: the quota starts
/// afresh after it. A quota already used up (used_so_far ≥ limit) ran out today: all three dates
/// are today. The bounds are summed day by day, as if a day's error carried over to the next — the
/// cautious reading, which makes the earliest/latest range wide rather than falsely narrow.
/// A limit that is not a number never runs out.
pub fn exhaustion(forecast: &Forecast, used_so_far: f64, limit: f64, period_end: NaiveDate) -> Exhaustion {
    let used = clean(used_so_far);
    let (mut point, mut lo80, mut hi80) = (used, used, used);
    let (mut likely, mut earliest, mut latest) = (None, None, None);
    for day in forecast.days.iter().take_while(|day| day.date <= period_end) {
        point += clean(day.point);
        lo80 += clean(day.lo80);
        hi80 += clean(day.hi80);
        if likely.is_none() && point >= limit {
            likely = Some(day.date);
        }
        if earliest.is_none() && hi80 >= limit {
            earliest = Some(day.date);
        }
        if latest.is_none() && lo80 >= limit {
            latest = Some(day.date);
        }
    }
    if used >= limit {
        let today = forecast.days.first().and_then(|day| day.date.pred_opt());
        (likely, earliest, latest) = (today, today, today);
    }
    Exhaustion {
        likely,
        earliest,
        latest,
        projected_period_total: point,
        projected_period_total_lo80: lo80,
        projected_period_total_hi80: hi80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::DayForecast;
    use crate::methods::Method;
    use crate::series::add_days;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Five days from 2024-03-01 of 10 expected, 5 to 15 in the 80 % interval.
    fn steady() -> Forecast {
        let days = (0..5)
            .map(|i| DayForecast {
                date: add_days(date(2024, 3, 1), i),
                point: 10.0,
                lo80: 5.0,
                hi80: 15.0,
                lo95: 2.0,
                hi95: 20.0,
            })
            .collect();
        Forecast {
            method: Method::Naive,
            days,
            backtest_mase: None,
            backtest_wape: None,
        }
    }

    #[test]
    fn exhaustion_dates_follow_the_cumulative_bounds_within_the_period() {
        let result = exhaustion(&steady(), 70.0, 100.0, date(2024, 3, 4));
        // Expected: 80, 90, 100 on the 3rd. Upper: 85, 100 on the 2nd. Lower: 75, 80, 85, 90 by the
        // 4th, the period's end: lasts.
        assert_eq!(result.likely, Some(date(2024, 3, 3)));
        assert_eq!(result.earliest, Some(date(2024, 3, 2)));
        assert_eq!(result.latest, None);
        assert_eq!(result.projected_period_total, 110.0);
        assert_eq!(result.projected_period_total_lo80, 90.0);
        assert_eq!(result.projected_period_total_hi80, 130.0);
    }

    #[test]
    fn a_quota_already_used_up_ran_out_today() {
        let result = exhaustion(&steady(), 120.0, 100.0, date(2024, 3, 31));
        let today = Some(date(2024, 2, 29));
        assert_eq!(
            (result.likely, result.earliest, result.latest),
            (today, today, today)
        );
        assert_eq!(result.projected_period_total, 170.0);
    }

    #[test]
    fn a_quota_that_lasts_has_no_dates() {
        let result = exhaustion(&steady(), 0.0, 1e9, date(2024, 3, 31));
        assert_eq!(
            (result.likely, result.earliest, result.latest),
            (None, None, None)
        );
        let nan = exhaustion(&steady(), 0.0, f64::NAN, date(2024, 3, 31));
        assert_eq!(nan.likely, None);
        // A period that ended before the forecast starts holds only what was used.
        let ended = exhaustion(&steady(), 30.0, 35.0, date(2024, 2, 1));
        assert_eq!((ended.likely, ended.projected_period_total), (None, 30.0));
    }
}
