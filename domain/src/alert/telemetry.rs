//! The telemetry trigger: one sensor of a device read over (`TELEMETRY_ABOVE`) or under
//! (`TELEMETRY_BELOW`) a value, observed on the SIMs in that device.
//!
//! Values are fixed point, kept to the hundredth of their unit ([`TelemetryValue`]), so a rule
//! compares, stores and prints exactly what a person wrote: `35.5` °C is 3550 hundredths, `-12`
//! °C is -1200. A reading (any precision) is compared once rounded to the hundredth.
//!
//! An alert's `value` is a `u64`: a telemetry alert keeps its reading there in hundredths of the
//! unit as a signed number in two's complement ([`TelemetryValue::alert_value`]), so readings
//! below zero survive. The store's column is signed and holds the hundredths as they are; the
//! API's `Alert.value` shows them so (`3850` is 38.5 °C, `-1250` is -12.5 °C), and the alert's
//! detail says the reading in words with its unit ("temperature 38.5 °C, above 35 °C").

use std::fmt;

use super::{Condition, Metric, Observation};
use crate::usage::TelemetryReading;
use crate::{Error, Result};

/// The sensor of a device a telemetry rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TelemetryField {
    /// `temperature_c`, in °C.
    Temperature,
    /// `humidity_pct`, relative humidity in %.
    Humidity,
    /// `battery_pct`, the battery's charge in %.
    Battery,
    /// `light_lux`, illuminance in lx.
    Light,
}

impl TelemetryField {
    pub const ALL: [TelemetryField; 4] = [Self::Temperature, Self::Humidity, Self::Battery, Self::Light];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Temperature => "TEMPERATURE",
            Self::Humidity => "HUMIDITY",
            Self::Battery => "BATTERY",
            Self::Light => "LIGHT",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| {
            Error::invalid(
                "condition.field",
                format!(
                    "'{}' is not a telemetry field; one of {}",
                    super::shorten(s),
                    Self::names()
                ),
            )
        })
    }

    /// Every field's name, for messages ("TEMPERATURE, HUMIDITY, BATTERY or LIGHT").
    pub fn names() -> String {
        let all = Self::ALL.map(Self::as_str);
        match all.split_last() {
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// In words, for details and notifications.
    pub fn word(self) -> &'static str {
        match self {
            Self::Temperature => "temperature",
            Self::Humidity => "humidity",
            Self::Battery => "battery",
            Self::Light => "light",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Self::Temperature => "°C",
            Self::Humidity | Self::Battery => "%",
            Self::Light => "lx",
        }
    }

    /// The readings a device may report, as the reading's parser accepts them
    /// ([`TelemetryReading::from_json`]); a rule's values lie within them.
    pub fn range(self) -> (TelemetryValue, TelemetryValue) {
        let h = TelemetryValue::from_hundredths;
        match self {
            Self::Temperature => (h(-8_000), h(15_000)),
            Self::Humidity | Self::Battery => (h(0), h(10_000)),
            Self::Light => (h(0), h(20_000_000)),
        }
    }

    /// This sensor's measurement in a reading, when it carries one.
    pub fn of(self, r: &TelemetryReading) -> Option<f64> {
        let x = match self {
            Self::Temperature => r.temperature_c,
            Self::Humidity => r.humidity_pct,
            Self::Battery => r.battery_pct,
            Self::Light => r.light_lux,
        };
        x.filter(|x| x.is_finite())
    }

    /// A value with its unit ("38.5 °C", "8 %").
    pub fn text(self, v: TelemetryValue) -> String {
        format!("{v} {}", self.unit())
    }
}

/// A sensor's value to the hundredth of its unit (fixed point).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TelemetryValue(i64);

/// The largest magnitude a value may be written with before its range is checked (far beyond
/// every sensor's range; keeps the conversion exact).
const MAX_WRITTEN: f64 = 1e12;

impl TelemetryValue {
    pub const fn from_hundredths(h: i64) -> Self {
        Self(h)
    }

    pub fn hundredths(self) -> i64 {
        self.0
    }

    /// A value as a person wrote it (`field` names it in the error): a finite number with at
    /// most two decimals (`-12.5`, `35`, `0.05`).
    pub fn parse(x: f64, field: &str) -> Result<Self> {
        if !x.is_finite() || x.abs() > MAX_WRITTEN {
            return Err(Error::invalid(
                field,
                "must be a finite number within the field's range",
            ));
        }
        let scaled = x * 100.0;
        let h = scaled.round();
        // 38.55 is 3854.999… hundredths in binary: a rounding error is not a third decimal.
        if (scaled - h).abs() > 1e-6 {
            return Err(Error::invalid(
                field,
                format!("{x} has more than two decimals; values are kept to the hundredth"),
            ));
        }
        Ok(Self(h as i64))
    }

    /// A reading as measured (any precision), to the nearest hundredth.
    pub fn of_reading(x: f64) -> Self {
        Self((x.clamp(-MAX_WRITTEN, MAX_WRITTEN) * 100.0).round() as i64)
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// The value as an alert keeps it (`Alert::value`): the hundredths' two's complement, so
    /// that the store's signed column holds the hundredths themselves.
    pub fn alert_value(self) -> u64 {
        self.0 as u64
    }

    /// The value an alert of a telemetry rule keeps (see [`Self::alert_value`]).
    pub fn from_alert_value(v: u64) -> Self {
        Self(v as i64)
    }
}

impl fmt::Display for TelemetryValue {
    /// As few decimals as it needs: `38.5`, `35`, `-0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        let (whole, frac) = (a / 100, a % 100);
        match frac {
            0 => write!(f, "{sign}{whole}"),
            _ if frac % 10 == 0 => write!(f, "{sign}{whole}.{}", frac / 10),
            _ => write!(f, "{sign}{whole}.{frac:02}"),
        }
    }
}

/// What a telemetry rule watches: a sensor, the value its reading must pass to fire and,
/// optionally, the value it must come back to before the alert clears (hysteresis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelemetryLimit {
    pub field: TelemetryField,
    /// Fires strictly beyond it: above it for `TELEMETRY_ABOVE`, below it for `TELEMETRY_BELOW`.
    pub value: TelemetryValue,
    /// Clears only once the reading is at or below it (`TELEMETRY_ABOVE`; at or above it for
    /// `TELEMETRY_BELOW`); without it, as soon as the reading is no longer beyond `value`.
    pub clear_value: Option<TelemetryValue>,
}

/// Where a reading stands against a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Beyond the value: firing.
    Beyond,
    /// Back past the value, not yet past the clear value: an open alert stays open.
    Holding,
    /// At or past the clear value (the value, without one): clear.
    Back,
}

impl TelemetryLimit {
    /// The limit from the parts a rule's input names (`field`, `value`, `clearValue`), for a
    /// rule of `metric`: `None` for the other metrics, which take none of them. Refuses, naming
    /// the part, a telemetry rule without its field or value, a value with more than two
    /// decimals, and any part on another metric. Ranges and sides are [`Condition::check`]'s.
    pub fn from_parts(
        metric: Metric,
        field: Option<TelemetryField>,
        value: Option<f64>,
        clear_value: Option<f64>,
    ) -> Result<Option<Self>> {
        if !metric.is_telemetry() {
            let given = [
                ("condition.field", "a telemetry field", field.is_some()),
                ("condition.value", "a value", value.is_some()),
                ("condition.clearValue", "a clear value", clear_value.is_some()),
            ];
            return match given.iter().find(|(_, _, g)| *g) {
                Some((name, what, _)) => Err(Error::invalid(
                    *name,
                    format!(
                        "only TELEMETRY_ABOVE and TELEMETRY_BELOW take {what}, not {}",
                        metric.as_str()
                    ),
                )),
                None => Ok(None),
            };
        }
        let Some(field) = field else {
            return Err(Error::invalid(
                "condition.field",
                format!(
                    "{} needs the sensor it reads: {}",
                    metric.as_str(),
                    TelemetryField::names()
                ),
            ));
        };
        let Some(value) = value else {
            let (lo, hi) = field.range();
            return Err(Error::invalid(
                "condition.value",
                format!(
                    "{} needs a value: for {}, {lo} to {hi} {}",
                    metric.as_str(),
                    field.as_str(),
                    field.unit()
                ),
            ));
        };
        Ok(Some(Self {
            field,
            value: TelemetryValue::parse(value, "condition.value")?,
            clear_value: clear_value
                .map(|c| TelemetryValue::parse(c, "condition.clearValue"))
                .transpose()?,
        }))
    }

    /// Checks the values against the field's range, and the clear value's side: below the value
    /// for a rule firing above it, above the value for one firing below it.
    pub fn check(&self, metric: Metric) -> Result<()> {
        let f = self.field;
        let (lo, hi) = f.range();
        let unit = f.unit();
        let out_of_range = |name: &str, v: TelemetryValue| {
            Error::invalid(
                name,
                format!(
                    "{v} is out of range for {}: {lo} to {hi} {unit}, as devices report it",
                    f.as_str()
                ),
            )
        };
        if !(lo..=hi).contains(&self.value) {
            return Err(out_of_range("condition.value", self.value));
        }
        if let Some(c) = self.clear_value {
            if !(lo..=hi).contains(&c) {
                return Err(out_of_range("condition.clearValue", c));
            }
            let (wrong_side, side, back) = if above(metric) {
                (c >= self.value, "below", "at or below")
            } else {
                (c <= self.value, "above", "at or above")
            };
            if wrong_side {
                return Err(Error::invalid(
                    "condition.clearValue",
                    format!(
                        "{c} must be {side} the value ({}): a {} rule clears once the reading is {back} its clear value",
                        self.value,
                        metric.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn standing(&self, metric: Metric, v: TelemetryValue) -> Standing {
        let up = above(metric);
        let beyond = if up { v > self.value } else { v < self.value };
        if beyond {
            return Standing::Beyond;
        }
        match self.clear_value {
            Some(c) if (up && v > c) || (!up && v < c) => Standing::Holding,
            _ => Standing::Back,
        }
    }

    /// A reading in words against the limit: "temperature 38.5 °C, above 35 °C", "battery 16 %,
    /// not yet at or above 20 %", "temperature 32 °C, at or below 33 °C".
    pub fn text(&self, metric: Metric, v: TelemetryValue) -> String {
        let f = self.field;
        let (beyond, back) = if above(metric) {
            ("above", "at or below")
        } else {
            ("below", "at or above")
        };
        let clear = self.clear_value.unwrap_or(self.value);
        let how = match self.standing(metric, v) {
            Standing::Beyond => format!("{beyond} {}", f.text(self.value)),
            Standing::Holding => format!("not yet {back} {}", f.text(clear)),
            Standing::Back => format!("{back} {}", f.text(clear)),
        };
        format!("{} {}, {how}", f.word(), f.text(v))
    }
}

/// Whether a telemetry rule fires above its value (else below it).
fn above(metric: Metric) -> bool {
    metric != Metric::TelemetryBelow
}

impl Condition {
    /// What a device's reading (as measured) means for a telemetry rule: firing beyond the
    /// value (with the reading in words as its detail), holding between the value and the clear
    /// value, clear at or past the clear value (the value, without one). `None` for the other
    /// metrics.
    pub fn observe_reading(&self, reading: f64) -> Option<Observation> {
        let limit = self.telemetry.filter(|_| self.metric.is_telemetry())?;
        let v = TelemetryValue::of_reading(reading);
        let value = v.alert_value();
        Some(match limit.standing(self.metric, v) {
            Standing::Beyond => Observation::Firing {
                value,
                event: None,
                detail: Some(limit.text(self.metric, v)),
            },
            Standing::Holding => Observation::Holding { value },
            Standing::Back => Observation::Clear { value },
        })
    }

    /// A telemetry rule's alert value (see [`TelemetryValue::alert_value`]) in words against the
    /// rule's limit; `None` for the other metrics.
    pub fn reading_text(&self, value: u64) -> Option<String> {
        let limit = self.telemetry.filter(|_| self.metric.is_telemetry())?;
        Some(limit.text(self.metric, TelemetryValue::from_alert_value(value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> TelemetryValue {
        TelemetryValue::from_hundredths(h)
    }

    fn condition(metric: Metric, field: TelemetryField, value: f64, clear: Option<f64>) -> Condition {
        Condition {
            metric,
            threshold: None,
            clear_threshold: None,
            state: None,
            telemetry: TelemetryLimit::from_parts(metric, Some(field), Some(value), clear).unwrap(),
            anomaly: None,
        }
    }

    fn kind(o: &Observation) -> &'static str {
        match o {
            Observation::Firing { .. } => "firing",
            Observation::Holding { .. } => "holding",
            Observation::Clear { .. } => "clear",
        }
    }

    #[test]
    fn values_are_kept_to_the_hundredth_and_printed_as_written() {
        assert_eq!(TelemetryValue::parse(38.5, "v").unwrap(), t(3850));
        assert_eq!(TelemetryValue::parse(38.55, "v").unwrap(), t(3855));
        assert_eq!(TelemetryValue::parse(-12.0, "v").unwrap(), t(-1200));
        assert_eq!(TelemetryValue::parse(0.1 + 0.2, "v").unwrap(), t(30));
        let e = TelemetryValue::parse(35.125, "condition.value")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("condition.value") && e.contains("more than two decimals"),
            "{e}"
        );
        assert!(TelemetryValue::parse(f64::NAN, "v").is_err());
        assert!(TelemetryValue::parse(f64::INFINITY, "v").is_err());
        for (v, text) in [
            (3850, "38.5"),
            (3500, "35"),
            (-1250, "-12.5"),
            (-5, "-0.05"),
            (0, "0"),
            (1205, "12.05"),
        ] {
            assert_eq!(t(v).to_string(), text);
        }
        assert_eq!(TelemetryValue::of_reading(35.004), t(3500));
        assert_eq!(TelemetryValue::of_reading(-0.006), t(-1));
        for v in [3850, -1250, 0, -8000, 20_000_000] {
            assert_eq!(TelemetryValue::from_alert_value(t(v).alert_value()), t(v));
        }
        // The store's signed column holds the hundredths themselves.
        assert_eq!(t(-1250).alert_value() as i64, -1250);
    }

    #[test]
    fn an_above_rule_fires_over_its_value_and_clears_at_its_clear_value() {
        let c = condition(
            Metric::TelemetryAbove,
            TelemetryField::Temperature,
            35.0,
            Some(33.0),
        );
        c.check().unwrap();
        let seen: Vec<&str> = [30.0, 35.0, 35.01, 38.5, 34.0, 33.01, 33.0, 32.0]
            .iter()
            .map(|r| kind(&c.observe_reading(*r).unwrap()))
            .collect();
        assert_eq!(
            seen,
            ["clear", "holding", "firing", "firing", "holding", "holding", "clear", "clear"]
        );
        match c.observe_reading(38.5).unwrap() {
            Observation::Firing { value, event, detail } => {
                assert_eq!(TelemetryValue::from_alert_value(value), t(3850));
                assert_eq!(event, None);
                assert_eq!(detail.as_deref(), Some("temperature 38.5 °C, above 35 °C"));
            }
            other => panic!("{other:?}"),
        }
        let text = |r: f64| {
            c.reading_text(TelemetryValue::of_reading(r).alert_value())
                .unwrap()
        };
        assert_eq!(text(34.0), "temperature 34 °C, not yet at or below 33 °C");
        assert_eq!(text(32.0), "temperature 32 °C, at or below 33 °C");
        // Without a clear value it clears as soon as the reading is no longer above the value.
        let c = condition(Metric::TelemetryAbove, TelemetryField::Humidity, 80.0, None);
        assert_eq!(kind(&c.observe_reading(80.0).unwrap()), "clear");
        assert_eq!(kind(&c.observe_reading(80.5).unwrap()), "firing");
    }

    #[test]
    fn a_below_rule_fires_under_its_value_also_below_zero() {
        let c = condition(Metric::TelemetryBelow, TelemetryField::Battery, 15.0, Some(20.0));
        c.check().unwrap();
        let seen: Vec<&str> = [50.0, 15.0, 8.0, 16.0, 20.0]
            .iter()
            .map(|r| kind(&c.observe_reading(*r).unwrap()))
            .collect();
        assert_eq!(seen, ["clear", "holding", "firing", "holding", "clear"]);
        let text = |r: f64| {
            c.reading_text(TelemetryValue::of_reading(r).alert_value())
                .unwrap()
        };
        assert_eq!(text(8.0), "battery 8 %, below 15 %");
        assert_eq!(text(16.0), "battery 16 %, not yet at or above 20 %");
        let frost = condition(Metric::TelemetryBelow, TelemetryField::Temperature, -18.5, None);
        frost.check().unwrap();
        assert_eq!(kind(&frost.observe_reading(-20.0).unwrap()), "firing");
        assert_eq!(kind(&frost.observe_reading(-18.5).unwrap()), "clear");
        assert_eq!(
            frost
                .reading_text(TelemetryValue::of_reading(-20.25).alert_value())
                .unwrap(),
            "temperature -20.25 °C, below -18.5 °C"
        );
        // Other metrics read no telemetry.
        let data = Condition {
            metric: Metric::DataInDay,
            threshold: Some(1),
            clear_threshold: None,
            state: None,
            telemetry: None,
            anomaly: None,
        };
        assert_eq!(data.observe_reading(99.0), None);
        assert_eq!(data.reading_text(5), None);
    }

    #[test]
    fn limits_are_refused_naming_the_field() {
        let refused = |r: Result<Option<TelemetryLimit>>| r.unwrap_err().to_string();
        let e = refused(TelemetryLimit::from_parts(
            Metric::TelemetryAbove,
            None,
            Some(30.0),
            None,
        ));
        assert!(
            e.starts_with("condition.field") && e.contains("TEMPERATURE, HUMIDITY, BATTERY or LIGHT"),
            "{e}"
        );
        let e = refused(TelemetryLimit::from_parts(
            Metric::TelemetryBelow,
            Some(TelemetryField::Light),
            None,
            None,
        ));
        assert!(
            e.starts_with("condition.value") && e.contains("0 to 200000 lx"),
            "{e}"
        );
        let e = refused(TelemetryLimit::from_parts(
            Metric::DataInDay,
            None,
            Some(3.0),
            None,
        ));
        assert!(
            e.starts_with("condition.value") && e.contains("only TELEMETRY_ABOVE"),
            "{e}"
        );
        let e = refused(TelemetryLimit::from_parts(
            Metric::OfflineHours,
            Some(TelemetryField::Battery),
            Some(3.0),
            Some(4.0),
        ));
        assert!(
            e.starts_with("condition.field") && e.contains("not OFFLINE_HOURS"),
            "{e}"
        );
        assert_eq!(
            TelemetryLimit::from_parts(Metric::DataInDay, None, None, None).unwrap(),
            None
        );
        assert!(TelemetryField::parse("PRESSURE").is_err());
        assert_eq!(TelemetryField::parse("LIGHT").unwrap(), TelemetryField::Light);

        let check = |metric, field, value, clear| {
            condition(metric, field, value, clear)
                .check()
                .map_err(|e| e.to_string())
        };
        let e = check(Metric::TelemetryAbove, TelemetryField::Temperature, 151.0, None).unwrap_err();
        assert!(
            e.starts_with("condition.value") && e.contains("-80 to 150 °C"),
            "{e}"
        );
        let e = check(Metric::TelemetryBelow, TelemetryField::Humidity, -1.0, None).unwrap_err();
        assert!(
            e.starts_with("condition.value") && e.contains("0 to 100 %"),
            "{e}"
        );
        let e = check(
            Metric::TelemetryAbove,
            TelemetryField::Temperature,
            35.0,
            Some(36.0),
        )
        .unwrap_err();
        assert!(
            e.starts_with("condition.clearValue") && e.contains("must be below the value (35)"),
            "{e}"
        );
        let e = check(
            Metric::TelemetryAbove,
            TelemetryField::Temperature,
            35.0,
            Some(35.0),
        )
        .unwrap_err();
        assert!(e.starts_with("condition.clearValue"), "{e}");
        let e = check(Metric::TelemetryBelow, TelemetryField::Battery, 15.0, Some(10.0)).unwrap_err();
        assert!(
            e.starts_with("condition.clearValue") && e.contains("must be above the value (15)"),
            "{e}"
        );
        let e = check(Metric::TelemetryBelow, TelemetryField::Battery, 15.0, Some(101.0)).unwrap_err();
        assert!(
            e.starts_with("condition.clearValue") && e.contains("out of range"),
            "{e}"
        );
        check(
            Metric::TelemetryBelow,
            TelemetryField::Temperature,
            -80.0,
            Some(-79.99),
        )
        .unwrap();

        // A telemetry rule needs its limit; it takes no threshold; other metrics take no limit.
        let mut c = condition(Metric::TelemetryAbove, TelemetryField::Light, 100.0, None);
        c.threshold = Some(5);
        let e = c.check().unwrap_err().to_string();
        assert!(e.starts_with("condition.threshold"), "{e}");
        c.threshold = None;
        c.telemetry = None;
        assert!(c.check().unwrap_err().to_string().starts_with("condition.field"));
        let mut c = condition(Metric::TelemetryAbove, TelemetryField::Light, 100.0, None);
        c.metric = Metric::DataInDay;
        c.threshold = Some(1000);
        assert!(c.check().unwrap_err().to_string().starts_with("condition.field"));
    }

    /// The rules' ranges are the reading parser's: a rule can name every value a device may
    /// report, and none it may not.
    #[test]
    fn ranges_are_the_readings_parsers() {
        let key = |f: TelemetryField| match f {
            TelemetryField::Temperature => "temperature_c",
            TelemetryField::Humidity => "humidity_pct",
            TelemetryField::Battery => "battery_pct",
            TelemetryField::Light => "light_lux",
        };
        let reading = |f: TelemetryField, x: f64| {
            let json = serde_json::json!({
                "device_id": crate::DeviceId::new().to_string(),
                "at": "2026-11-22T10:00:00Z",
                (key(f)): x,
            });
            TelemetryReading::from_json(json.to_string().as_bytes())
        };
        for f in TelemetryField::ALL {
            let (lo, hi) = f.range();
            let r = reading(f, lo.as_f64()).unwrap();
            assert_eq!(f.of(&r), Some(lo.as_f64()), "{f:?}");
            assert!(reading(f, hi.as_f64()).is_ok(), "{f:?}");
            assert!(reading(f, lo.as_f64() - 0.01).is_err(), "{f:?}");
            assert!(reading(f, hi.as_f64() + 0.01).is_err(), "{f:?}");
        }
    }
}
