//! SIM cards as the directory knows them: identity, owner and lifecycle state.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::identifiers::{Iccid, Imsi, Msisdn};
use crate::{CustomerId, Error, Result, SimId, TenantId};

/// Lifecycle of a SIM as the operator network sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimState {
    /// Delivered, never attached; not billed.
    Inventory,
    /// May attach and pass traffic; billed.
    Active,
    /// Temporarily barred from traffic.
    Suspended,
    /// Permanently retired.
    Terminated,
}

impl SimState {
    pub const ALL: [SimState; 4] = [Self::Inventory, Self::Active, Self::Suspended, Self::Terminated];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inventory => "INVENTORY",
            Self::Active => "ACTIVE",
            Self::Suspended => "SUSPENDED",
            Self::Terminated => "TERMINATED",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        let up = s.trim().to_ascii_uppercase();
        Self::ALL.into_iter().find(|x| x.as_str() == up).ok_or_else(|| {
            Error::invalid(
                "state",
                format!("'{s}' is not a SIM state; allowed: INVENTORY, ACTIVE, SUSPENDED, TERMINATED"),
            )
        })
    }
}

impl fmt::Display for SimState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sim {
    pub id: SimId,
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub iccid: Iccid,
    pub imsi: Imsi,
    pub msisdn: Option<Msisdn>,
    pub state: SimState,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSim {
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub iccid: Iccid,
    pub imsi: Imsi,
    pub msisdn: Option<Msisdn>,
    pub state: SimState,
}
