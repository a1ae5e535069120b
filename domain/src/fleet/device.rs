//! Devices: the hardware SIMs sit in, with a lifecycle of their own.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::labels::Labels;
use super::lifecycle::{parse_state, Lifecycle};
use crate::identifiers::luhn_valid;
use crate::{CustomerId, DeviceId, Error, Result, TenantId};

/// International Mobile Equipment Identity: 15 digits, the last a Luhn check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Imei(String);

impl Imei {
    /// Accepts 15 digits, optionally grouped with spaces, `-` or `/` (`35-209900-176148-1`).
    pub fn parse(s: &str) -> Result<Self> {
        let digits: String = s
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '/'))
            .collect();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid("imei", format!("'{s}' must contain digits only")));
        }
        if digits.len() != 15 {
            return Err(Error::invalid(
                "imei",
                format!("'{s}' has {} digits; an IMEI has 15", digits.len()),
            ));
        }
        if !luhn_valid(&digits) {
            return Err(Error::invalid(
                "imei",
                format!("'{s}' fails the Luhn check digit"),
            ));
        }
        Ok(Self(digits))
    }

    /// Completes 14 digits with their check digit.
    pub fn with_check_digit(body: &str) -> Result<Self> {
        let check = crate::identifiers::luhn_check_digit(body)
            .ok_or_else(|| Error::invalid("imei", format!("'{body}' must contain digits only")))?;
        Self::parse(&format!("{body}{check}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Imei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lifecycle of a device, independent of its SIMs' states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeviceState {
    /// Known to the platform, not deployed yet.
    Registered,
    /// Deployed and working.
    InService,
    /// Temporarily out of service (repair, firmware, battery).
    Maintenance,
    /// Decommissioned. Final.
    Retired,
}

impl DeviceState {
    pub const ALL: [DeviceState; 4] = [
        Self::Registered,
        Self::InService,
        Self::Maintenance,
        Self::Retired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "REGISTERED",
            Self::InService => "IN_SERVICE",
            Self::Maintenance => "MAINTENANCE",
            Self::Retired => "RETIRED",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        parse_state(s, "state")
    }
}

impl Lifecycle for DeviceState {
    const SUBJECT: &'static str = "a device";

    fn all() -> &'static [Self] {
        &Self::ALL
    }

    /// The device transition table. Retiring is possible from every live state (a device
    /// registered by mistake is retired without ever entering service).
    fn next(self) -> &'static [Self] {
        use DeviceState::*;
        match self {
            Registered => &[InService, Retired],
            InService => &[Maintenance, Retired],
            Maintenance => &[InService, Retired],
            Retired => &[],
        }
    }
}

impl fmt::Display for DeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal, [$($variant:ident => $text:literal),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Result<Self> {
                let wanted = s.trim().to_ascii_uppercase().replace(['-', ' '], "_");
                Self::ALL.iter().copied().find(|k| k.as_str() == wanted).ok_or_else(|| {
                    Error::invalid(
                        $field,
                        format!(
                            "'{s}' is not allowed; allowed: {}",
                            Self::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    )
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// What a device is.
    DeviceKind, "kind", [
        Tracker => "TRACKER",
        Sensor => "SENSOR",
        Gateway => "GATEWAY",
        Meter => "METER",
        Camera => "CAMERA",
        Wearable => "WEARABLE",
        Vehicle => "VEHICLE",
        Other => "OTHER",
    ]
);

word_enum!(
    /// How a device reaches the network; a device may use several.
    Connectivity, "connectivity", [
        Cellular => "CELLULAR",
        Wifi => "WIFI",
        Lora => "LORA",
        Ethernet => "ETHERNET",
        Satellite => "SATELLITE",
    ]
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub imei: Imei,
    pub name: String,
    pub kind: DeviceKind,
    /// Sorted, without duplicates, at least one.
    pub connectivity: Vec<Connectivity>,
    pub state: DeviceState,
    pub labels: Labels,
    pub last_activity_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Normalises a connectivity list: sorted, unique, not empty.
pub fn normalise_connectivity(mut list: Vec<Connectivity>) -> Result<Vec<Connectivity>> {
    list.sort();
    list.dedup();
    if list.is_empty() {
        return Err(Error::invalid(
            "connectivity",
            "name at least one of CELLULAR, WIFI, LORA, ETHERNET, SATELLITE",
        ));
    }
    Ok(list)
}

/// A device name: 1 to 120 printable characters.
pub fn parse_device_name(s: &str) -> Result<String> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 120 || s.chars().any(char::is_control) {
        return Err(Error::invalid("name", "must be 1 to 120 printable characters"));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imei_checks_length_digits_and_luhn() {
        let imei = Imei::parse("35-209900-176148-1").unwrap();
        assert_eq!(imei.as_str(), "352099001761481");
        let err = Imei::parse("352099001761482").unwrap_err().to_string();
        assert!(err.contains("Luhn"), "{err}");
        assert!(Imei::parse("3520990017614")
            .unwrap_err()
            .to_string()
            .contains("15"));
        assert!(Imei::parse("35209900176148x").is_err());
        assert_eq!(Imei::with_check_digit("35209900176148").unwrap(), imei);
    }

    #[test]
    fn device_table() {
        use DeviceState::*;
        assert!(Registered.check(InService).is_ok());
        assert!(InService.check(Maintenance).is_ok());
        assert!(Maintenance.check(InService).is_ok());
        assert!(Maintenance.check(Retired).is_ok());
        assert!(Registered.check(Maintenance).is_err());
        let err = Retired.check(InService).unwrap_err().to_string();
        assert!(err.contains("RETIRED is final"), "{err}");
    }

    #[test]
    fn kinds_and_connectivity() {
        assert_eq!(DeviceKind::parse("tracker").unwrap(), DeviceKind::Tracker);
        assert!(DeviceKind::parse("toaster")
            .unwrap_err()
            .to_string()
            .contains("TRACKER"));
        let list = normalise_connectivity(vec![
            Connectivity::Wifi,
            Connectivity::Cellular,
            Connectivity::Wifi,
        ])
        .unwrap();
        assert_eq!(list, vec![Connectivity::Cellular, Connectivity::Wifi]);
        assert!(normalise_connectivity(vec![]).is_err());
    }
}
