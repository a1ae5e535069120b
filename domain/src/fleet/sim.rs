//! SIM cards: identity, commercial settings, owner, binding and lifecycle.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::labels::Labels;
use super::lifecycle::{parse_state, Lifecycle};
use super::secret::Sealed;
use crate::identifiers::{Iccid, Imsi, MccMnc, Msisdn};
use crate::{CustomerId, DeviceId, Error, Result, SimId, TenantId};

/// Lifecycle of a SIM as the operator network sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimState {
    /// Provisioned, not in service; not billed.
    Inventory,
    /// May attach and pass traffic; billed.
    Active,
    /// Temporarily barred from traffic.
    Suspended,
    /// Reported lost or stolen: barred; may only be recovered (suspended) or terminated.
    LostStolen,
    /// Permanently retired. Final.
    Terminated,
}

impl SimState {
    pub const ALL: [SimState; 5] = [
        Self::Inventory,
        Self::Active,
        Self::Suspended,
        Self::LostStolen,
        Self::Terminated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inventory => "INVENTORY",
            Self::Active => "ACTIVE",
            Self::Suspended => "SUSPENDED",
            Self::LostStolen => "LOST_STOLEN",
            Self::Terminated => "TERMINATED",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        parse_state(s, "state")
    }
}

impl Lifecycle for SimState {
    const SUBJECT: &'static str = "a SIM";

    fn all() -> &'static [Self] {
        &Self::ALL
    }

    /// The SIM transition table.
    fn next(self) -> &'static [Self] {
        use SimState::*;
        match self {
            Inventory => &[Active, Terminated],
            Active => &[Suspended, LostStolen, Terminated],
            Suspended => &[Active, LostStolen, Terminated],
            // A found SIM comes back barred; it is re-activated from there on purpose.
            LostStolen => &[Suspended, Terminated],
            Terminated => &[],
        }
    }
}

impl fmt::Display for SimState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Commercial kind of a SIM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimType {
    Prepaid,
    #[default]
    Postpaid,
    DataOnly,
}

impl SimType {
    pub const ALL: [SimType; 3] = [Self::Prepaid, Self::Postpaid, Self::DataOnly];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prepaid => "PREPAID",
            Self::Postpaid => "POSTPAID",
            Self::DataOnly => "DATA_ONLY",
        }
    }

    /// Accepts `prepaid`, `POSTPAID`, `data-only`, `data_only`, `DATA ONLY`.
    pub fn parse(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_uppercase().replace(['-', ' '], "_");
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == wanted)
            .ok_or_else(|| {
                Error::invalid(
                    "type",
                    format!("'{s}' is not a SIM type; allowed: PREPAID, POSTPAID, DATA_ONLY"),
                )
            })
    }
}

impl fmt::Display for SimType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tariff plan name: 1 to 64 printable characters.
pub fn parse_tariff_plan(s: &str) -> Result<String> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 64 || s.chars().any(char::is_control) {
        return Err(Error::invalid(
            "tariffPlan",
            "must be 1 to 64 printable characters",
        ));
    }
    Ok(s.to_owned())
}

/// A PIN (4 to 8 digits) or PUK (8 digits), checked before it is sealed.
pub fn parse_pin(s: &str, field: &str, lengths: std::ops::RangeInclusive<usize>) -> Result<String> {
    let s = s.trim();
    if !s.bytes().all(|b| b.is_ascii_digit()) || !lengths.contains(&s.len()) {
        return Err(Error::invalid(
            field,
            format!("must be {} to {} digits", lengths.start(), lengths.end()),
        ));
    }
    Ok(s.to_owned())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sim {
    pub id: SimId,
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub iccid: Iccid,
    pub imsi: Imsi,
    pub msisdn: Option<Msisdn>,
    pub sim_type: SimType,
    pub tariff_plan: Option<String>,
    pub state: SimState,
    pub labels: Labels,
    pub device_id: Option<DeviceId>,
    /// Encrypted at rest; only opened for roles allowed to see it.
    pub pin: Option<Sealed>,
    pub puk: Option<Sealed>,
    pub activation_code: Option<String>,
    /// Network of the last session seen (filled by the usage pipeline).
    pub last_network: Option<MccMnc>,
    pub last_activity_at: Option<DateTime<Utc>>,
    /// Optimistic concurrency: every write checks and bumps it.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A SIM to create (one by one, by import, or by the demo seeder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSim {
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub iccid: Iccid,
    pub imsi: Imsi,
    pub msisdn: Option<Msisdn>,
    pub sim_type: SimType,
    pub tariff_plan: Option<String>,
    pub state: SimState,
    pub labels: Labels,
    pub pin: Option<Sealed>,
    pub puk: Option<Sealed>,
    pub activation_code: Option<String>,
}

impl NewSim {
    /// A SIM with just its identity, in inventory, postpaid, without labels or secrets.
    pub fn basic(tenant_id: TenantId, iccid: Iccid, imsi: Imsi) -> Self {
        Self {
            tenant_id,
            customer_id: None,
            iccid,
            imsi,
            msisdn: None,
            sim_type: SimType::Postpaid,
            tariff_plan: None,
            state: SimState::Inventory,
            labels: Labels::default(),
            pin: None,
            puk: None,
            activation_code: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_allows_exactly_the_documented_moves() {
        use SimState::*;
        let allowed = [
            (Inventory, Active),
            (Inventory, Terminated),
            (Active, Suspended),
            (Active, LostStolen),
            (Active, Terminated),
            (Suspended, Active),
            (Suspended, LostStolen),
            (Suspended, Terminated),
            (LostStolen, Suspended),
            (LostStolen, Terminated),
        ];
        for from in SimState::ALL {
            for to in SimState::ALL {
                assert_eq!(
                    from.check(to).is_ok(),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        // Terminated is reachable from every other state.
        assert!(SimState::ALL
            .iter()
            .filter(|s| **s != Terminated)
            .all(|s| s.check(Terminated).is_ok()));
    }

    #[test]
    fn a_refusal_names_current_asked_and_allowed_states() {
        let err = SimState::Inventory
            .check(SimState::Suspended)
            .unwrap_err()
            .to_string();
        assert!(err.contains("from INVENTORY to SUSPENDED"), "{err}");
        assert!(
            err.contains("allowed from INVENTORY: ACTIVE, TERMINATED"),
            "{err}"
        );
        let err = SimState::Terminated
            .check(SimState::Active)
            .unwrap_err()
            .to_string();
        assert!(err.contains("TERMINATED is final"), "{err}");
    }

    #[test]
    fn parsing_states_and_types() {
        assert_eq!(SimState::parse("lost-stolen").unwrap(), SimState::LostStolen);
        let err = SimState::parse("gone").unwrap_err().to_string();
        assert!(
            err.contains("INVENTORY, ACTIVE, SUSPENDED, LOST_STOLEN, TERMINATED"),
            "{err}"
        );
        assert_eq!(SimType::parse("data only").unwrap(), SimType::DataOnly);
        assert!(SimType::parse("free").is_err());
    }

    #[test]
    fn pins_and_puks() {
        assert_eq!(parse_pin(" 1234 ", "pin", 4..=8).unwrap(), "1234");
        assert!(parse_pin("12a4", "pin", 4..=8).is_err());
        assert!(parse_pin("123", "pin", 4..=8).is_err());
    }
}
