#![doc = include_str!("../README.md")]

pub mod accuracy;
pub mod anomaly;
pub mod backtest;
pub mod forecast;
pub mod hourly;
pub mod methods;
pub mod quota;
pub mod series;
pub mod simulate;
mod stats;
#[cfg(test)]
mod test_rng;

pub use accuracy::{coverage, mase, seasonal_mase, wape};
pub use backtest::{choose, Choice};
pub use forecast::{forecast, DayForecast, Forecast, ForecastError, MAX_HORIZON};
pub use hourly::{
    forecast_hours, rest_of_today, HourForecast, HourlyForecast, HourlyForecastError, HourlyMethod,
    HourlySeries, TodayProjection, MAX_HOURLY_HORIZON,
};
pub use methods::{point_forecast, Method};
pub use quota::{exhaustion, Exhaustion};
pub use series::{sum_series, DailySeries, WeeklyShape};
