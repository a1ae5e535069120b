//! Money without floats: prices as whole millionths, costs as whole 10⁻¹² of a currency unit, and
//! currencies as ISO 4217 codes with their minor units.
//!
//! Rating multiplies rounded bytes by a price per MB (1 MB = 1,000,000 bytes, as operators bill
//! data). A price has at most 6 decimals, so `bytes × price` is exact at 12 decimals: a cost is
//! never rounded while it is summed. Only an amount that leaves the platform as a payable figure
//! (an invoice line) is rounded, once, half away from zero, to the currency's minor unit.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Decimals a price may have.
pub const PRICE_SCALE: u32 = 6;
/// Decimals of a cost: a price's 6 and a megabyte's 6.
pub const COST_SCALE: u32 = 12;
/// Bytes in the megabyte prices are quoted per.
pub const BYTES_PER_MB: u64 = 1_000_000;

/// An ISO 4217 currency (active codes; funds and special codes such as XAU are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub fn parse(field: &str, code: &str) -> Result<Self> {
        let upper = code.trim().to_ascii_uppercase();
        match iso_currency::Currency::from_code(&upper) {
            Some(c) if !c.is_fund() && !c.is_special() && c.exponent().is_some() => Ok(Self(c)),
            _ => Err(Error::invalid(
                field,
                format!("'{code}' is not an ISO 4217 currency code for money (e.g. EUR, USD, JPY)"),
            )),
        }
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Decimals of the currency's minor unit (2 for EUR, 0 for JPY, 3 for BHD).
    pub fn minor_units(self) -> u32 {
        u32::from(self.0.exponent().unwrap_or(2))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse("currency", &s).map_err(serde::de::Error::custom)
    }
}

/// A non-negative price with at most 6 decimals, held as whole millionths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Price(i64);

impl Price {
    pub const ZERO: Price = Price(0);

    /// Parses a plain decimal (`12`, `0.0125`). Negative numbers, exponents, more than 6 decimals
    /// and more than 12 integer digits are refused, naming `field`.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let t = text.trim();
        let bad = |why: &str| Error::invalid(field, format!("'{text}' {why}"));
        if t.starts_with('-') {
            return Err(bad("is negative; prices are 0 or more"));
        }
        let t = t.strip_prefix('+').unwrap_or(t);
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        if whole.is_empty() && frac.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad("is not a decimal number such as 0.015"));
        }
        if frac.len() > PRICE_SCALE as usize {
            return Err(bad("has more than 6 decimal places"));
        }
        if whole.trim_start_matches('0').len() > 12 {
            return Err(bad("is too large; at most 12 digits before the decimal point"));
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad("is not a number"))?
        };
        let mut micros: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad("is not a number"))?
        };
        micros *= 10_i64.pow(PRICE_SCALE - frac.len() as u32);
        Ok(Self(whole * 1_000_000 + micros))
    }

    pub fn from_micros(micros: i64) -> Result<Self> {
        if micros < 0 {
            return Err(Error::invalid("price", "prices are 0 or more"));
        }
        Ok(Self(micros))
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// The cost of `bytes` at this price per MB, exact.
    pub fn cost_of_bytes(self, bytes: u64) -> Cost {
        Cost(i128::from(bytes) * i128::from(self.0))
    }

    /// This price as a cost (an access fee charged once), exact.
    pub fn as_cost(self) -> Cost {
        Cost(i128::from(self.0) * 1_000_000)
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_scaled(i128::from(self.0), PRICE_SCALE))
    }
}

impl Serialize for Price {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse("price", &s).map_err(serde::de::Error::custom)
    }
}

/// An exact amount of money in whole 10⁻¹² of a currency unit (may be negative: adjustments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cost(i128);

impl Cost {
    pub const ZERO: Cost = Cost(0);

    pub fn from_units(units: i128) -> Self {
        Self(units)
    }

    /// Whole 10⁻¹² of a currency unit.
    pub fn units(self) -> i128 {
        self.0
    }

    pub fn checked_add(self, other: Cost) -> Option<Cost> {
        self.0.checked_add(other.0).map(Cost)
    }

    /// Rounded half away from zero to `decimals` (≤ 12): how a payable amount is fixed, once.
    pub fn round_half_up(self, decimals: u32) -> Cost {
        let decimals = decimals.min(COST_SCALE);
        let step = 10_i128.pow(COST_SCALE - decimals);
        let half = step / 2;
        let q = if self.0 >= 0 {
            (self.0 + half) / step
        } else {
            (self.0 - half) / step
        };
        Cost(q * step)
    }

    /// The amount written with `decimals` decimals (it must be rounded to them first, else the
    /// remaining digits are cut).
    pub fn to_string_with(self, decimals: u32) -> String {
        let decimals = decimals.min(COST_SCALE);
        let cut = self.0 / 10_i128.pow(COST_SCALE - decimals);
        format_scaled(cut, decimals)
    }

    /// Parses a decimal with up to 12 places (as the stores write costs back).
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let t = text.trim();
        let bad = || {
            Error::invalid(
                field,
                format!("'{text}' is not a decimal amount with at most 12 places"),
            )
        };
        let (negative, t) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        if whole.is_empty() || frac.len() > COST_SCALE as usize || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let whole: i128 = whole.parse().map_err(|_| bad())?;
        let frac_units: i128 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad())?
        };
        let units = whole
            .checked_mul(10_i128.pow(COST_SCALE))
            .and_then(|w| w.checked_add(frac_units * 10_i128.pow(COST_SCALE - frac.len() as u32)))
            .ok_or_else(bad)?;
        Ok(Self(if negative { -units } else { units }))
    }
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, other: Cost) -> Cost {
        Cost(self.0 + other.0)
    }
}

impl std::ops::Sub for Cost {
    type Output = Cost;
    fn sub(self, other: Cost) -> Cost {
        Cost(self.0 - other.0)
    }
}

impl std::iter::Sum for Cost {
    fn sum<I: Iterator<Item = Cost>>(iter: I) -> Cost {
        Cost(iter.map(|c| c.0).sum())
    }
}

impl fmt::Display for Cost {
    /// All 12 decimals, trailing zeros kept to at least 2 so amounts line up.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = format_scaled(self.0, COST_SCALE);
        let (whole, frac) = full.split_once('.').unwrap_or((&full, ""));
        let frac = frac.trim_end_matches('0');
        write!(f, "{whole}.{frac:0<2}")
    }
}

impl Serialize for Cost {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Cost {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse("cost", &s).map_err(serde::de::Error::custom)
    }
}

/// `value / 10^scale` written exactly.
fn format_scaled(value: i128, scale: u32) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let v = value.unsigned_abs();
    if scale == 0 {
        return format!("{sign}{v}");
    }
    let p = 10_u128.pow(scale);
    format!("{sign}{}.{:0width$}", v / p, v % p, width = scale as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prices_parse_exactly_and_refuse_what_is_not_a_price() {
        assert_eq!(Price::parse("p", "0.0125").unwrap().micros(), 12_500);
        assert_eq!(Price::parse("p", "12").unwrap().micros(), 12_000_000);
        assert_eq!(Price::parse("p", ".5").unwrap().to_string(), "0.500000");
        for (bad, why) in [
            ("-1", "negative"),
            ("0.0000001", "more than 6 decimal places"),
            ("1e3", "not a decimal"),
            ("", "not a decimal"),
            ("1.2.3", "not a decimal"),
            ("1234567890123", "too large"),
        ] {
            let e = Price::parse("zones[0].pricePerMb", bad).unwrap_err().to_string();
            assert!(
                e.starts_with("zones[0].pricePerMb: ") && e.contains(why),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn costs_are_exact_and_round_half_away_from_zero_once() {
        // 1,536 bytes at 0.333333 per MB.
        let c = Price::parse("p", "0.333333").unwrap().cost_of_bytes(1_536);
        assert_eq!(c.units(), 511_999_488);
        assert_eq!(c.to_string(), "0.000511999488");
        assert_eq!(Cost::parse("c", "0.000511999488").unwrap(), c);
        let half = Cost::parse("c", "2.345").unwrap();
        assert_eq!(half.round_half_up(2).to_string_with(2), "2.35");
        assert_eq!((Cost::ZERO - half).round_half_up(2).to_string_with(2), "-2.35");
        assert_eq!(
            Cost::parse("c", "2.344999")
                .unwrap()
                .round_half_up(2)
                .to_string_with(2),
            "2.34"
        );
        assert_eq!(
            Cost::parse("c", "7.5")
                .unwrap()
                .round_half_up(0)
                .to_string_with(0),
            "8"
        );
    }

    #[test]
    fn currencies_are_iso_4217_with_their_minor_units() {
        assert_eq!(Currency::parse("currency", "eur").unwrap().minor_units(), 2);
        assert_eq!(Currency::parse("currency", "JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("currency", "BHD").unwrap().minor_units(), 3);
        for bad in ["EURO", "XAU", "ABC", ""] {
            let e = Currency::parse("currency", bad).unwrap_err().to_string();
            assert!(e.contains("ISO 4217"), "{bad}: {e}");
        }
    }

    proptest! {
        #[test]
        fn costs_written_and_parsed_are_the_same(units in any::<i64>()) {
            let c = Cost::from_units(i128::from(units) * 1_000);
            prop_assert_eq!(Cost::parse("c", &c.to_string()).unwrap(), c);
        }

        #[test]
        fn prices_written_and_parsed_are_the_same(micros in 0_i64..1_000_000_000_000_000) {
            let p = Price::from_micros(micros).unwrap();
            prop_assert_eq!(Price::parse("p", &p.to_string()).unwrap(), p);
        }
    }
}
