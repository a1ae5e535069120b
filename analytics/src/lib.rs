#![doc = include_str!("../README.md")]

mod clickhouse_usage;
mod embedded;

pub use clickhouse_usage::{ClickHouseConfig, ClickHouseUsage};
pub use embedded::EmbeddedUsage;

use chrono::NaiveDate;

/// Days since 1970-01-01, the representation of ClickHouse's `Date` (UInt16).
pub(crate) fn date_to_days(d: NaiveDate) -> ioto_domain::Result<u16> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    u16::try_from((d - epoch).num_days())
        .map_err(|_| ioto_domain::Error::invalid("day", format!("{d} is outside 1970-01-01..2149-06-06")))
}

pub(crate) fn days_to_date(days: u16) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default() + chrono::Days::new(u64::from(days))
}

/// Sums finer points into `granularity` periods (per network), oldest first.
pub(crate) fn roll_up(
    points: Vec<ioto_domain::ports::UsagePoint>,
    granularity: ioto_domain::ports::Granularity,
) -> Vec<ioto_domain::ports::UsagePoint> {
    let mut sums: std::collections::BTreeMap<(chrono::DateTime<chrono::Utc>, String), (u64, u64)> =
        std::collections::BTreeMap::new();
    for p in points {
        let e = sums
            .entry((ioto_domain::ports::period_start(p.period, granularity), p.mcc_mnc))
            .or_default();
        e.0 += p.bytes_in;
        e.1 += p.bytes_out;
    }
    sums.into_iter()
        .map(
            |((period, mcc_mnc), (bytes_in, bytes_out))| ioto_domain::ports::UsagePoint {
                period,
                mcc_mnc,
                bytes_in,
                bytes_out,
            },
        )
        .collect()
}

/// Sums finer sub-customer points into `granularity` periods, oldest first.
pub(crate) fn roll_up_customers(
    points: Vec<ioto_domain::ports::CustomerUsagePoint>,
    granularity: ioto_domain::ports::Granularity,
) -> Vec<ioto_domain::ports::CustomerUsagePoint> {
    type Key = (
        chrono::DateTime<chrono::Utc>,
        Option<ioto_domain::CustomerId>,
        String,
    );
    let mut sums: std::collections::BTreeMap<Key, (u64, u64)> = std::collections::BTreeMap::new();
    for p in points {
        let e = sums
            .entry((
                ioto_domain::ports::period_start(p.period, granularity),
                p.customer_id,
                p.mcc_mnc,
            ))
            .or_default();
        e.0 += p.bytes_in;
        e.1 += p.bytes_out;
    }
    sums.into_iter()
        .map(|((period, customer_id, mcc_mnc), (bytes_in, bytes_out))| {
            ioto_domain::ports::CustomerUsagePoint {
                period,
                customer_id,
                mcc_mnc,
                bytes_in,
                bytes_out,
            }
        })
        .collect()
}

/// Parses `major.minor…` of a ClickHouse version string.
pub fn parse_version(v: &str) -> (u32, u32) {
    let mut parts = v.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_day_numbers() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert_eq!(days_to_date(date_to_days(d).unwrap()), d);
        assert!(date_to_days(NaiveDate::from_ymd_opt(1969, 12, 31).unwrap()).is_err());
    }

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("18.16.1"), (18, 16));
        assert_eq!(parse_version("24.8.4.13"), (24, 8));
        assert_eq!(parse_version("garbage"), (0, 0));
    }
}
