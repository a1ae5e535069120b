//! Device telemetry: one reading of a device's sensors, as devices publish it over MQTT on
//! `ioto/devices/{device_id}/telemetry` (JSON, versioned by `v`). Documented in `docs/events.md`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::events::Rejection;
use crate::DeviceId;

const TOPIC_PREFIX: &str = "ioto/devices/";
const TOPIC_SUFFIX: &str = "/telemetry";

/// The MQTT topic a device publishes its readings on.
pub fn telemetry_topic(device: DeviceId) -> String {
    format!("{TOPIC_PREFIX}{device}{TOPIC_SUFFIX}")
}

/// The device id in a topic [`telemetry_topic`] made, if the topic has that shape.
pub fn topic_device(topic: &str) -> Option<&str> {
    topic
        .strip_prefix(TOPIC_PREFIX)
        .and_then(|rest| rest.strip_suffix(TOPIC_SUFFIX))
}

/// The subscription that receives every device's readings.
pub const TELEMETRY_FILTER: &str = "ioto/devices/+/telemetry";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryReading {
    pub device_id: DeviceId,
    pub at: DateTime<Utc>,
    pub temperature_c: Option<f64>,
    pub humidity_pct: Option<f64>,
    pub battery_pct: Option<f64>,
    pub light_lux: Option<f64>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

fn bad(field: &str, detail: String) -> Rejection {
    Rejection::InvalidField {
        field: field.to_owned(),
        detail,
    }
}

fn measure(
    v: &serde_json::Map<String, Value>,
    field: &str,
    range: std::ops::RangeInclusive<f64>,
) -> Result<Option<f64>, Rejection> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if range.contains(&x) {
                Ok(Some(x))
            } else {
                Err(bad(
                    field,
                    format!("{x} is outside {}..={}", range.start(), range.end()),
                ))
            }
        }
        Some(_) => Err(bad(field, "must be a number".into())),
    }
}

impl TelemetryReading {
    /// Reads one reading; every sensor is optional, but a reading carries at least one.
    pub fn from_json(payload: &[u8]) -> Result<Self, Rejection> {
        let v = match serde_json::from_slice::<Value>(payload) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(Rejection::MalformedJson {
                    detail: "expected an object".into(),
                })
            }
            Err(e) => {
                return Err(Rejection::MalformedJson {
                    detail: e.to_string(),
                })
            }
        };
        match v.get("v") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
            Some(other) => {
                return Err(Rejection::UnsupportedVersion {
                    version: other.as_u64().unwrap_or(0),
                })
            }
        }
        let device_id = match v.get("device_id").and_then(Value::as_str) {
            Some(s) => DeviceId::parse(s, "device_id")
                .map_err(|_| bad("device_id", format!("'{s}' is not a device id")))?,
            None => {
                return Err(Rejection::MissingField {
                    field: "device_id".into(),
                })
            }
        };
        let at = match v.get("at").and_then(Value::as_str) {
            Some(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| bad("at", format!("'{s}' is not an RFC 3339 time")))?,
            None => return Err(Rejection::MissingField { field: "at".into() }),
        };
        let r = Self {
            device_id,
            at,
            temperature_c: measure(&v, "temperature_c", -80.0..=150.0)?,
            humidity_pct: measure(&v, "humidity_pct", 0.0..=100.0)?,
            battery_pct: measure(&v, "battery_pct", 0.0..=100.0)?,
            light_lux: measure(&v, "light_lux", 0.0..=200_000.0)?,
            latitude: measure(&v, "latitude", -90.0..=90.0)?,
            longitude: measure(&v, "longitude", -180.0..=180.0)?,
        };
        if r.latitude.is_some() != r.longitude.is_some() {
            return Err(bad("latitude", "latitude and longitude come together".into()));
        }
        if [
            r.temperature_c,
            r.humidity_pct,
            r.battery_pct,
            r.light_lux,
            r.latitude,
        ]
        .iter()
        .all(Option::is_none)
        {
            return Err(Rejection::MissingField {
                field: "a measurement".into(),
            });
        }
        Ok(r)
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "v": 1,
            "device_id": self.device_id.to_string(),
            "at": self.at.to_rfc3339(),
            "temperature_c": self.temperature_c,
            "humidity_pct": self.humidity_pct,
            "battery_pct": self.battery_pct,
            "light_lux": self.light_lux,
            "latitude": self.latitude,
            "longitude": self.longitude,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_round_trip_and_ranges_are_checked() {
        let r = TelemetryReading {
            device_id: DeviceId::new(),
            at: Utc::now(),
            temperature_c: Some(21.5),
            humidity_pct: Some(40.0),
            battery_pct: Some(88.0),
            light_lux: None,
            latitude: Some(52.52),
            longitude: Some(13.405),
        };
        let back = TelemetryReading::from_json(r.to_json().to_string().as_bytes()).unwrap();
        assert_eq!(back.device_id, r.device_id);
        assert_eq!(back.temperature_c, Some(21.5));
        let mut v = r.to_json();
        v["humidity_pct"] = serde_json::json!(140);
        let err = TelemetryReading::from_json(v.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("humidity_pct"), "{err}");
        let mut v = r.to_json();
        v["longitude"] = Value::Null;
        assert!(TelemetryReading::from_json(v.to_string().as_bytes()).is_err());
        let only_id = serde_json::json!({"device_id": r.device_id.to_string(), "at": "2026-11-22T10:00:00Z"});
        assert_eq!(
            TelemetryReading::from_json(only_id.to_string().as_bytes())
                .unwrap_err()
                .code(),
            "MISSING_FIELD"
        );
    }
}
