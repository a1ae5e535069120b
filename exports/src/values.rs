//! Values as text, shared by the CSV writer and the XLSX writer's fallbacks.
//!
//! - decimals: exact, from the unscaled integer and the scale, always `scale` fraction digits
//!   (`1234` at scale 2 is `12.34`, `-5` at scale 3 is `-0.005`);
//! - timestamps: RFC 3339 in UTC with `Z`, with microseconds only when there are any
//!   (`2026-11-23T10:00:00Z`, `2026-11-23T10:00:00.123456Z`);
//! - dates: `YYYY-MM-DD`.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use ioto_domain::export::ColumnType;

/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// The scale of a decimal or money column; 0 for other columns.
pub(crate) fn scale_of(ty: &ColumnType) -> u8 {
    match ty {
        ColumnType::Decimal { scale } | ColumnType::Money { scale, .. } => *scale,
        _ => 0,
    }
}

/// Appends the exact decimal text of `unscaled` × 10^-`scale` to `out`.
pub(crate) fn push_decimal(out: &mut String, unscaled: i128, scale: u8) {
    let digits = unscaled.unsigned_abs().to_string();
    let scale = usize::from(scale);
    if unscaled < 0 {
        out.push('-');
    }
    if scale == 0 {
        out.push_str(&digits);
    } else if digits.len() <= scale {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits.len()));
        out.push_str(&digits);
    } else {
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        out.push_str(whole);
        out.push('.');
        out.push_str(fraction);
    }
}

/// The exact decimal text of `unscaled` × 10^-`scale`.
pub(crate) fn decimal_text(unscaled: i128, scale: u8) -> String {
    let mut out = String::new();
    push_decimal(&mut out, unscaled, scale);
    out
}

/// The nearest `f64` to `unscaled` × 10^-`scale` (what a spreadsheet cell can hold: about 15
/// significant digits). `None` only if the decimal text did not parse, which would be a bug.
pub(crate) fn decimal_f64(unscaled: i128, scale: u8) -> Option<f64> {
    // Both operands exact (an integer below 2^53, a power of ten up to 10^22), so the division
    // is correctly rounded; otherwise the exact text is parsed, also correctly rounded.
    if scale <= 22 && unscaled.unsigned_abs() <= 1_u128 << 53 {
        Some(unscaled as f64 / 10_f64.powi(i32::from(scale)))
    } else {
        decimal_text(unscaled, scale).parse().ok()
    }
}

/// The point in time `micros` microseconds after the Unix epoch, if chrono can represent it.
pub(crate) fn timestamp(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_micros(micros)
}

/// Appends the RFC 3339 text of a timestamp to `out`; `false` (and nothing appended) when it is
/// outside the years chrono represents.
pub(crate) fn push_timestamp(out: &mut String, micros: i64) -> bool {
    let Some(t) = timestamp(micros) else {
        return false;
    };
    let written = if t.timestamp_subsec_micros() == 0 {
        write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%SZ"))
    } else {
        write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
    };
    written.is_ok()
}

/// The RFC 3339 text of a timestamp (see [`push_timestamp`]).
pub(crate) fn timestamp_text(micros: i64) -> Option<String> {
    let mut out = String::new();
    push_timestamp(&mut out, micros).then_some(out)
}

/// The calendar day `days` days after 1970-01-01, if chrono can represent it.
pub(crate) fn date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(EPOCH_DAYS_FROM_CE)?)
}

/// Appends `YYYY-MM-DD` of a date to `out`; `false` (and nothing appended) when it is outside
/// the years chrono represents.
pub(crate) fn push_date(out: &mut String, days: i32) -> bool {
    match date(days) {
        Some(d) => write!(out, "{}", d.format("%Y-%m-%d")).is_ok(),
        None => false,
    }
}

/// `YYYY-MM-DD` of a date (see [`push_date`]).
pub(crate) fn date_text(days: i32) -> Option<String> {
    let mut out = String::new();
    push_date(&mut out, days).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_exactly_with_scale_fraction_digits() {
        for (unscaled, scale, expected) in [
            (1234, 2, "12.34"),
            (-1234, 2, "-12.34"),
            (-5, 3, "-0.005"),
            (5, 3, "0.005"),
            (0, 2, "0.00"),
            (0, 0, "0"),
            (12, 0, "12"),
            (-12, 0, "-12"),
            (100, 2, "1.00"),
            (-100, 2, "-1.00"),
            (123, 3, "0.123"),
            (1, 38, "0.00000000000000000000000000000000000001"),
        ] {
            assert_eq!(
                decimal_text(unscaled, scale),
                expected,
                "{unscaled} scale {scale}"
            );
        }
        assert_eq!(
            decimal_text(i128::MAX, 4),
            "17014118346046923173168730371588410.5727"
        );
        assert_eq!(
            decimal_text(i128::MIN, 0),
            "-170141183460469231731687303715884105728"
        );
        assert_eq!(
            decimal_text(i128::MIN, 38),
            "-1.70141183460469231731687303715884105728"
        );
    }

    #[test]
    fn decimals_convert_to_the_nearest_double() {
        assert_eq!(decimal_f64(1234, 2), Some(12.34));
        assert_eq!(decimal_f64(-5, 3), Some(-0.005));
        assert_eq!(decimal_f64(0, 0), Some(0.0));
        assert_eq!(decimal_f64(1, 30), Some(1e-30));
        assert_eq!(decimal_f64(i128::MAX, 0), Some(1.7014118346046923e38));
        assert_eq!(
            decimal_f64(123_456_789_012_345_678, 6),
            Some(123_456_789_012.345_68)
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_micros_only_when_there_are_any() {
        let at = 1_795_428_000_i64 * 1_000_000; // 2026-11-23T10:00:00Z
        assert_eq!(timestamp_text(at).as_deref(), Some("2026-11-23T10:00:00Z"));
        assert_eq!(
            timestamp_text(at + 123_456).as_deref(),
            Some("2026-11-23T10:00:00.123456Z")
        );
        assert_eq!(
            timestamp_text(at + 500_000).as_deref(),
            Some("2026-11-23T10:00:00.500000Z")
        );
        assert_eq!(timestamp_text(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(timestamp_text(-1).as_deref(), Some("1969-12-31T23:59:59.999999Z"));
        assert_eq!(timestamp_text(i64::MAX), None);
    }

    #[test]
    fn dates_count_from_the_epoch() {
        assert_eq!(date_text(0).as_deref(), Some("1970-01-01"));
        assert_eq!(date_text(20_780).as_deref(), Some("2026-11-23"));
        assert_eq!(date_text(-1).as_deref(), Some("1969-12-31"));
        assert_eq!(date_text(i32::MAX), None);
    }
}
