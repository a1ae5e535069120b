//! The groups' hourly outlook: the tenant's and each sub-customer's usage per UTC hour over the
//! [`HOURLY_HISTORY_DAYS`] days before today and today's completed hours, read in one query of
//! the hourly cube grouped by sub-customer (the tenant's is their sum with the SIMs it holds
//! itself); the next [`STORED_HOURS`] hours forecast from it and today's total projected from its
//! hours so far (`ioto_forecast::hourly`). SIMs and pools have none: a SIM's hours are mostly
//! empty (a meter reports once a day), and reading every SIM's hours would cost a pass more than
//! all the rest of it.

use std::collections::HashMap;

use chrono::{DateTime, Days, Duration, DurationRound, NaiveTime, Utc};
use ioto_domain::analytics::{Cube, CubeFilter, CubeGroup, CubeQuery};
use ioto_domain::forecast::{HourlyOutlook, HOURLY_HISTORY_DAYS, STORED_HOURS};
use ioto_domain::{CustomerId, Result, TenantId};
use ioto_forecast::hourly::{forecast_hours, rest_of_today, HourlySeries, DAY_HOURS, MIN_TRAINING_HOURS};

use super::ForecastService;

/// The groups' usage per hour: index 0 is `start` (a UTC midnight), `today` the index of today's
/// first hour; the last is the last completed hour.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct HourlySums {
    pub start: DateTime<Utc>,
    pub today: usize,
    pub tenant: Vec<f64>,
    pub customers: HashMap<CustomerId, Vec<f64>>,
}

/// The hour bounds of the read at `now`: each hour from the UTC midnight [`HOURLY_HISTORY_DAYS`]
/// days before today up to the start of the current hour (in progress, so not read). With today's
/// first hour's index.
fn bounds(now: DateTime<Utc>) -> (Vec<DateTime<Utc>>, usize) {
    let midnight = now.date_naive().and_time(NaiveTime::MIN).and_utc();
    let first = midnight
        .date_naive()
        .checked_sub_days(Days::new(HOURLY_HISTORY_DAYS))
        .map_or(midnight, |d| d.and_time(NaiveTime::MIN).and_utc());
    let this_hour = now.duration_trunc(Duration::hours(1)).unwrap_or(midnight);
    let mut out = Vec::new();
    let mut t = first;
    while t <= this_hour {
        out.push(t);
        t += Duration::hours(1);
    }
    let today = usize::try_from((midnight - first).num_hours()).unwrap_or(0);
    (out, today)
}

impl ForecastService {
    /// The tenant's and its sub-customers' usage per hour, as of `now`.
    pub(super) async fn hourly_sums(&self, tenant: TenantId, now: DateTime<Utc>) -> Result<HourlySums> {
        let (bounds, today) = bounds(now);
        let hours = bounds.len().saturating_sub(1);
        let mut sums = HourlySums {
            start: bounds.first().copied().unwrap_or(now),
            today,
            tenant: vec![0.0; hours],
            customers: HashMap::new(),
        };
        if hours == 0 {
            return Ok(sums);
        }
        let query = CubeQuery {
            cube: Cube::UsageHourly,
            bounds,
            group: CubeGroup {
                customer: true,
                ..CubeGroup::default()
            },
            filter: CubeFilter::default(),
            runs: Vec::new(),
            count_sims: false,
        };
        for r in self.ports.usage.cube_rows(tenant, &query).await? {
            let bytes = r.bytes_in.saturating_add(r.bytes_out) as f64;
            if r.bucket >= hours || bytes <= 0.0 {
                continue;
            }
            sums.tenant[r.bucket] += bytes;
            if let Some(c) = r.customer_id {
                sums.customers.entry(c).or_insert_with(|| vec![0.0; hours])[r.bucket] += bytes;
            }
        }
        Ok(sums)
    }
}

/// The outlook of a group's hours (`values` from `start`, today's first at `today`): `None`
/// without a week of hours from the first day with usage, or where no forecast can be made.
pub(crate) fn outlook(values: &[f64], start: DateTime<Utc>, today: usize) -> Option<HourlyOutlook> {
    let first = values.iter().position(|v| *v > 0.0)?;
    // From the midnight before the first usage: the hours keep their place in the day.
    let from = first / DAY_HOURS * DAY_HOURS;
    if today < from + MIN_TRAINING_HOURS || today > values.len() {
        return None;
    }
    let at = start + Duration::hours(i64::try_from(from).ok()?);
    let all = HourlySeries::new(at, values[from..].to_vec()).ok()?;
    let forecast = forecast_hours(&all, STORED_HOURS).ok()?;
    let history = HourlySeries::new(at, values[from..today].to_vec()).ok()?;
    let today = rest_of_today(&history, &values[today..]).ok();
    Some(HourlyOutlook { forecast, today }.finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn the_read_ends_at_the_hour_in_progress_and_starts_at_midnight_weeks_before() {
        let (b, today) = bounds(at("2026-03-29T13:25:00Z"));
        assert_eq!(b.first().copied(), Some(at("2026-03-01T00:00:00Z")));
        assert_eq!(b.last().copied(), Some(at("2026-03-29T13:00:00Z")));
        assert_eq!(today, 28 * 24);
        // 13 completed hours of today, and the 28 days before.
        assert_eq!(b.len() - 1, 28 * 24 + 13);
        let (b, today) = bounds(at("2026-03-29T00:10:00Z"));
        assert_eq!((b.len() - 1, today), (28 * 24, 28 * 24));
    }

    /// A day of 10 hours of 100 bytes, from 08:00.
    fn day() -> Vec<f64> {
        (0..24)
            .map(|h| if (8..18).contains(&h) { 100.0 } else { 0.0 })
            .collect()
    }

    #[test]
    fn a_regular_day_is_forecast_hour_by_hour_and_today_projected_from_its_morning() {
        let start = at("2026-03-01T00:00:00Z");
        let mut values: Vec<f64> = (0..28).flat_map(|_| day()).collect();
        let today = values.len();
        values.extend(&day()[..12]);
        let o = outlook(&values, start, today).expect("four weeks of hours");
        assert_eq!(o.forecast.hours.len(), STORED_HOURS);
        assert_eq!(o.forecast.hours[0].at, at("2026-03-29T12:00:00Z"));
        // The afternoon's hours as every day's; the night's nothing.
        assert!(
            (o.forecast.hours[0].point - 100.0).abs() < 5.0,
            "{:?}",
            o.forecast.hours[0]
        );
        assert!(o.forecast.hours[10].point < 5.0, "{:?}", o.forecast.hours[10]);
        let t = o.today.expect("today's projection");
        assert_eq!((t.hours_so_far, t.so_far), (12, 400.0));
        assert!((t.point - 1_000.0).abs() < 50.0, "{t:?}");
        assert!(t.lo80 <= t.point && t.point <= t.hi80, "{t:?}");
    }

    #[test]
    fn less_than_a_week_of_hours_or_none_gives_no_outlook() {
        let start = at("2026-03-01T00:00:00Z");
        let mut values = vec![0.0; 24 * 22];
        values.extend((0..6).flat_map(|_| day()));
        let today = values.len();
        assert_eq!(outlook(&values, start, today), None);
        assert_eq!(outlook(&vec![0.0; 24 * 28], start, 24 * 28), None);
    }
}
