//! Numbers as a person reads them in a sentence: "57 MB", "2.3 GB", "40 ×", "Tuesday".

use chrono::Weekday;

/// Bytes in decimal units with two or three significant digits: "812 B", "57 MB", "2.3 GB".
/// One decimal below 10 of a unit (a trailing ".0" dropped), none from 10; a value that would
/// round to 1000 of a unit is written in the next ("1 MB", not "1000 kB"). Anything that is not
/// a finite, positive number is "0 B".
pub fn bytes_text(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    let bytes = if bytes.is_finite() && bytes > 0.0 {
        bytes
    } else {
        0.0
    };
    if bytes < 999.5 {
        return format!("{bytes:.0} B");
    }
    let mut value = bytes / 1000.0;
    let mut unit = 0;
    while value >= 999.5 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    let number = short_number(value);
    let unit = UNITS.get(unit).copied().unwrap_or("EB");
    format!("{number} {unit}")
}

/// A ratio for "40 × its usual": one decimal below 10 ("2.5", "3"), none from 10 ("40").
pub(super) fn ratio_text(ratio: f64) -> String {
    short_number(ratio)
}

/// A positive number with one decimal below 10 (without a trailing ".0") and none from 10.
pub(super) fn short_number(value: f64) -> String {
    if value < 9.95 {
        let text = format!("{value:.1}");
        match text.strip_suffix(".0") {
            Some(whole) => whole.to_string(),
            None => text,
        }
    } else {
        format!("{value:.0}")
    }
}

/// The weekday's English name, for "its usual 57 MB for a Tuesday".
pub(super) fn weekday_name(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_in_decimal_units() {
        assert_eq!(bytes_text(0.0), "0 B");
        assert_eq!(bytes_text(512.0), "512 B");
        assert_eq!(bytes_text(1_500.0), "1.5 kB");
        assert_eq!(bytes_text(812_000.0), "812 kB");
        assert_eq!(bytes_text(57_000_000.0), "57 MB");
        assert_eq!(bytes_text(2_300_000_000.0), "2.3 GB");
        assert_eq!(bytes_text(12_000_000_000_000.0), "12 TB");
    }

    #[test]
    fn bytes_round_into_the_next_unit() {
        assert_eq!(bytes_text(999.6), "1 kB");
        assert_eq!(bytes_text(999_600.0), "1 MB");
        assert_eq!(bytes_text(9_960_000.0), "10 MB");
        assert_eq!(bytes_text(2_000_000_000.0), "2 GB");
    }

    #[test]
    fn nonsense_is_zero_bytes() {
        assert_eq!(bytes_text(-5.0), "0 B");
        assert_eq!(bytes_text(f64::NAN), "0 B");
        assert_eq!(bytes_text(f64::INFINITY), "0 B");
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio_text(40.35), "40");
        assert_eq!(ratio_text(3.0), "3");
        assert_eq!(ratio_text(2.54), "2.5");
        assert_eq!(ratio_text(9.97), "10");
    }
}
