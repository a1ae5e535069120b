//! The hourly forecasts: the methods, the choice between them, the intervals on a simulated fleet,
//! the projection of today and the errors a caller can make.

use chrono::{NaiveDate, TimeZone};

use super::*;
use crate::simulate::{simulate_fleet, DeviceProfile};
use crate::test_rng::SplitMix64;

fn hour(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

/// `days` days of a gateway's daily rhythm at `level` bytes a day, from midnight.
fn rhythm(level: f64, days: usize) -> Vec<f64> {
    let shape = DeviceProfile::Gateway.hourly_shape();
    (0..days * DAY_HOURS)
        .map(|t| level * shape[t % DAY_HOURS])
        .collect()
}

fn assert_sane(forecast: &HourlyForecast) {
    for hour in &forecast.hours {
        for value in [hour.point, hour.lo80, hour.hi80, hour.lo95, hour.hi95] {
            assert!(value.is_finite() && value >= 0.0, "{hour:?}");
        }
        assert!(hour.lo95 <= hour.lo80 && hour.lo80 <= hour.point, "{hour:?}");
        assert!(hour.point <= hour.hi80 && hour.hi80 <= hour.hi95, "{hour:?}");
    }
}

#[test]
fn seasonal_naive_repeats_yesterdays_hours_and_last_weeks() {
    let history: Vec<f64> = (0..48_u32).map(f64::from).collect();
    let expected: Vec<f64> = (24..48_u32).chain(24..30).map(f64::from).collect();
    assert_eq!(
        hourly_point_forecast(HourlyMethod::SeasonalNaiveDay, &history, 0, 30),
        expected
    );
    // Under a week of hours, the same hour last week is the same hour yesterday.
    assert_eq!(same_hour_last_week(&history, 30), expected);
    let week: Vec<f64> = (0..200_u32).map(f64::from).collect();
    assert_eq!(same_hour_last_week(&week, 2), vec![32.0, 33.0]);
    assert_eq!(
        hourly_point_forecast(HourlyMethod::Naive, &history, 0, 2),
        vec![47.0, 47.0]
    );
}

#[test]
fn the_seasonal_model_follows_the_days_and_the_hours_of_the_day() {
    // Three weeks of a weekly pattern of days, each spread by the same rhythm: exact.
    let weekly = [1.2, 1.2, 1.2, 1.2, 1.2, 0.5, 0.5];
    let shape = DeviceProfile::Gateway.hourly_shape();
    let truth: Vec<f64> = (0..23 * DAY_HOURS)
        .map(|t| 1e6 * weekly[t / DAY_HOURS % WEEK] * shape[t % DAY_HOURS])
        .collect();
    let forecast = ets_profile(&truth[..21 * DAY_HOURS], 0, 48);
    for (predicted, actual) in forecast.iter().zip(&truth[21 * DAY_HOURS..]) {
        assert!(
            (predicted - actual).abs() <= 1e-6 * actual,
            "{predicted} vs {actual}"
        );
    }
    // Days of varying size, each spread exactly by the rhythm, then the first 12 hours of a day of
    // 3 MB: where the hours are this regular, the morning tells the day, and the rest follows it.
    let mut rng = SplitMix64::new(5);
    let mut history: Vec<f64> = Vec::new();
    for _ in 0..21 {
        let total = 1e6 * (0.2 * rng.normal()).exp();
        history.extend(shape.iter().map(|share| total * share));
    }
    let at_midnight = ets_profile(&history, 0, 48);
    history.extend(shape[..12].iter().map(|share| 3e6 * share));
    let forecast = ets_profile(&history, 0, 36);
    for (predicted, share) in forecast[..12].iter().zip(&shape[12..]) {
        assert!(
            (predicted - 3e6 * share).abs() <= 1e-6 * 3e6 * share,
            "{predicted} vs {share}"
        );
    }
    // Tomorrow is the day model's, as forecast at midnight.
    for (predicted, earlier) in forecast[12..].iter().zip(&at_midnight[DAY_HOURS..]) {
        assert!(
            (predicted - earlier).abs() <= 1e-9 * earlier,
            "{predicted} vs {earlier}"
        );
    }
}

#[test]
fn a_daily_rhythm_that_wanders_from_day_to_day_keeps_seasonal_naive() {
    // Each hour of the day moves a little from one day to the next (a random walk per hour): the
    // same hour yesterday is the best guess, and the backtest sees it.
    for seed in 1..=4 {
        let mut rng = SplitMix64::new(seed);
        let mut day: Vec<f64> = DeviceProfile::Tracker
            .hourly_shape()
            .iter()
            .map(|share| 24_000.0 * share)
            .collect();
        let mut history: Vec<f64> = Vec::new();
        for _ in 0..28 {
            for value in &mut day {
                *value *= (0.05 * rng.normal()).exp();
            }
            history.extend_from_slice(&day);
        }
        let backtest = hourly_backtest(&history, 0, 24).unwrap();
        let seasonal = backtest.score(HourlyMethod::SeasonalNaiveDay).unwrap().mase;
        assert!(backtest.score(HourlyMethod::Naive).unwrap().mase > 5.0 * seasonal);
        let choice = choose_hourly(&history, 0, 24);
        assert_eq!(choice.method, HourlyMethod::SeasonalNaiveDay, "seed {seed}");
    }
}

#[test]
fn the_chosen_method_is_never_worse_than_seasonal_naive_beyond_the_tie_margin() {
    let mut rng = SplitMix64::new(2024);
    for case in 0..12 {
        let level = 1e5 * (1.0 + 50.0 * rng.unit());
        let noise = 0.05 + 0.3 * rng.unit();
        let days = 10 + case * 2;
        let history: Vec<f64> = rhythm(24.0 * level, days)
            .into_iter()
            .map(|usual| (usual * (1.0 + noise * rng.normal())).max(0.0))
            .collect();
        let backtest = hourly_backtest(&history, 0, 48).unwrap();
        let seasonal = backtest.score(HourlyMethod::SeasonalNaiveDay).unwrap().mase;
        assert!(
            backtest.score(HourlyMethod::Naive).unwrap().mase > seasonal,
            "case {case}"
        );
        let choice = choose_hourly(&history, 0, 48);
        assert!(
            choice.mase.unwrap() <= seasonal * (1.0 + crate::backtest::TIE_MARGIN),
            "case {case}"
        );
    }
}

#[test]
fn an_exact_daily_rhythm_ties_and_goes_to_seasonal_naive() {
    let series = HourlySeries::new(hour(2025, 1, 6, 0), rhythm(1e6, 21)).unwrap();
    let forecast = forecast_hours(&series, 48).unwrap();
    assert_eq!(forecast.method, HourlyMethod::SeasonalNaiveDay);
    assert_eq!(forecast.backtest_mase, Some(0.0));
    assert_eq!(forecast.hours[0].at, hour(2025, 1, 27, 0));
    assert_eq!(forecast.hours[47].at, hour(2025, 1, 28, 23));
    // A perfect backtest leaves no room either side.
    assert!(forecast
        .hours
        .iter()
        .all(|hour| hour.lo95 == hour.point && hour.hi95 == hour.point));
}

#[test]
fn intervals_cover_simulated_hours_at_about_their_rate() {
    let start = NaiveDate::from_ymd_opt(2025, 1, 6).unwrap();
    let (days, training_days) = (40, 38);
    let fleet = simulate_fleet(3, 120, days, start, 0.0);
    let (mut inside80, mut inside95, mut hours) = (0_usize, 0_usize, 0_usize);
    let (mut today80, mut today95) = (0_usize, 0_usize);
    let (mut noon_error, mut midnight_error, mut volume) = (0.0, 0.0, 0.0);
    for sim in &fleet.sims {
        let all = sim.hourly_series(start);
        let (training, holdout) = all.values.split_at(training_days * DAY_HOURS);
        let series = HourlySeries::new(all.start, training.to_vec()).unwrap();
        let forecast = forecast_hours(&series, 48).unwrap();
        assert_sane(&forecast);
        for (hour, actual) in forecast.hours.iter().zip(holdout) {
            hours += 1;
            inside80 += usize::from((hour.lo80..=hour.hi80).contains(actual));
            inside95 += usize::from((hour.lo95..=hour.hi95).contains(actual));
        }
        // At noon of the first day held out.
        let day_total: f64 = holdout[..DAY_HOURS].iter().sum();
        let today = rest_of_today(&series, &holdout[..12]).unwrap();
        today80 += usize::from((today.lo80..=today.hi80).contains(&day_total));
        today95 += usize::from((today.lo95..=today.hi95).contains(&day_total));
        noon_error += (today.point - day_total).abs();
        let at_midnight: f64 = forecast.hours[..DAY_HOURS].iter().map(|hour| hour.point).sum();
        midnight_error += (at_midnight - day_total).abs();
        volume += day_total;
    }
    let share = |inside: usize, of: usize| inside as f64 / of as f64;
    let (coverage80, coverage95) = (share(inside80, hours), share(inside95, hours));
    assert!(
        (0.65..=0.95).contains(&coverage80),
        "80 % interval covered {coverage80}"
    );
    assert!(
        (0.85..=0.995).contains(&coverage95),
        "95 % interval covered {coverage95}"
    );
    let sims = fleet.sims.len();
    let (today80, today95) = (share(today80, sims), share(today95, sims));
    assert!(
        (0.6..=0.97).contains(&today80),
        "today's 80 % interval covered {today80}"
    );
    assert!(
        (0.8..=1.0).contains(&today95),
        "today's 95 % interval covered {today95}"
    );
    // Half a day seen makes the day's total far better known than at midnight.
    assert!(
        noon_error < 0.5 * midnight_error,
        "day WAPE at noon {} against {} at midnight",
        noon_error / volume,
        midnight_error / volume
    );
}

#[test]
fn the_rest_of_today_adds_to_the_hours_so_far() {
    let values = rhythm(1e6, 15);
    let history = HourlySeries::new(hour(2025, 1, 6, 0), values[..14 * DAY_HOURS].to_vec()).unwrap();
    let today = &values[14 * DAY_HOURS..14 * DAY_HOURS + 12];
    let projection = rest_of_today(&history, today).unwrap();
    assert_eq!(projection.day_start, hour(2025, 1, 20, 0));
    assert_eq!(projection.hours_so_far, 12);
    let so_far: f64 = today.iter().sum();
    assert!((projection.so_far - so_far).abs() < 1e-6);
    assert!((projection.point - 1e6).abs() < 1e-3, "{projection:?}");
    assert!(projection.lo95 >= projection.so_far);
    assert!(projection.hi95 - projection.lo95 < 1e-3, "{projection:?}");
    assert_eq!(projection.backtest_wape, Some(0.0));
    // Nothing of today yet: the whole day ahead.
    let projection = rest_of_today(&history, &[]).unwrap();
    assert!((projection.point - 1e6).abs() < 1e-3, "{projection:?}");
    assert_eq!(projection.so_far, 0.0);
}

#[test]
fn horizons_beyond_two_days_starts_inside_an_hour_and_whole_days_are_refused() {
    let series = HourlySeries::new(hour(2025, 1, 6, 0), vec![1.0; 200]).unwrap();
    for asked in [0, 49] {
        let error = forecast_hours(&series, asked).unwrap_err();
        assert_eq!(error, HourlyForecastError::Horizon { asked });
        assert!(error.to_string().contains("at most 48 hours"), "{error}");
    }
    assert_eq!(forecast_hours(&series, 48).unwrap().hours.len(), 48);
    let error = rest_of_today(&series, &[1.0; 24]).unwrap_err();
    assert_eq!(error, HourlyForecastError::DayOver { hours: 24 });
    assert!(rest_of_today(&series, &[1.0; 23]).is_ok());
    let half_past = hour(2025, 1, 6, 10) + TimeDelta::minutes(30);
    let error = HourlySeries::new(half_past, Vec::new()).unwrap_err();
    assert_eq!(error, HourlyForecastError::Start { start: half_past });
}

#[test]
fn short_empty_and_unclean_histories_forecast_without_nan() {
    let empty = HourlySeries::new(hour(2025, 1, 6, 22), Vec::new()).unwrap();
    let forecast = forecast_hours(&empty, 48).unwrap();
    assert_sane(&forecast);
    assert_eq!(forecast.method, HourlyMethod::Naive);
    assert!(forecast.hours.iter().all(|hour| hour.hi95 == 0.0));
    assert_eq!(forecast.hours[0].at, hour(2025, 1, 6, 22));
    // A day and a half: the same hour yesterday, no backtest.
    let short = HourlySeries::new(hour(2025, 1, 6, 12), rhythm(1e6, 2)[..36].to_vec()).unwrap();
    let forecast = forecast_hours(&short, 24).unwrap();
    assert_sane(&forecast);
    assert_eq!(
        (forecast.method, forecast.backtest_mase),
        (HourlyMethod::SeasonalNaiveDay, None)
    );
    let mut values = rhythm(1e6, 10);
    values[5] = f64::NAN;
    values[100] = -3.0;
    values[150] = f64::INFINITY;
    let unclean = HourlySeries {
        start: hour(2025, 1, 6, 0),
        values,
    };
    assert_sane(&forecast_hours(&unclean, 48).unwrap());
    let projection = rest_of_today(&unclean, &[f64::NAN, 5.0]).unwrap();
    assert!(projection.point.is_finite() && projection.so_far == 5.0);
}

#[test]
fn days_start_at_midnight_utc() {
    let series = HourlySeries::new(hour(2025, 1, 6, 22), vec![1.0; 30]).unwrap();
    assert_eq!(series.first_midnight(), 2);
    assert_eq!(series.hour_of(2), hour(2025, 1, 7, 0));
    assert_eq!(series.next_hour(), hour(2025, 1, 8, 4));
    assert_eq!(
        HourlySeries::new(hour(2025, 1, 6, 0), Vec::new())
            .unwrap()
            .first_midnight(),
        0
    );
    assert_eq!(backtest_hours(24 * 28, 3), 24);
    assert_eq!(backtest_hours(24 * 28, 30), 48);
    assert_eq!(backtest_hours(WEEK_HOURS + 30, 48), 24);
    assert_eq!(backtest_hours(WEEK_HOURS + 20, 48), 0);
}
