//! The fleet: SIMs and devices with independent lifecycles, the coordination layer that binds
//! them, labels, the audit trail, scheduled transitions and inventory import.

pub mod audit;
pub mod bulk;
pub mod device;
pub mod import;
pub mod labels;
pub mod lifecycle;
pub mod network_action;
pub mod query;
pub mod schedule;
pub mod secret;
pub mod sim;

pub use audit::{AuditAction, AuditEntry, AuditQuery, AuditStamp, EntityKind, NewAuditEntry};
pub use device::{Connectivity, Device, DeviceKind, DeviceState, Imei};
pub use labels::{LabelSuggestion, Labels};
pub use lifecycle::Lifecycle;
pub use network_action::NetworkAction;
pub use schedule::{ScheduleStatus, ScheduledTransition};
pub use secret::{Sealed, SecretCipher};
pub use sim::{NewSim, Sim, SimState, SimType};

/// Per-tenant fleet settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetSettings {
    /// Whether sub-customer users see SIMs (and their usage). When off they see devices only.
    pub customers_see_sims: bool,
    /// Whether sub-customer users see the cost of their usage (rated by the tenant's card).
    pub customers_see_costs: bool,
    /// Most SIMs an `OPERATOR` may change in one bulk job (tenant admins have no limit).
    pub operator_bulk_limit: u32,
    /// The tenant's time zone: its data quotas' periods are its calendar months.
    pub time_zone: chrono_tz::Tz,
    /// Whether every user of the tenant signs in with a second factor (those without one set
    /// it up at their next sign-in).
    pub require_mfa: bool,
}

impl Default for FleetSettings {
    fn default() -> Self {
        Self {
            customers_see_sims: true,
            customers_see_costs: false,
            operator_bulk_limit: 100,
            time_zone: chrono_tz::Tz::UTC,
            require_mfa: false,
        }
    }
}

/// A row to write, with the version it was read at (`None` for a new row): the write fails when
/// someone changed the row since.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub expected_version: Option<i64>,
    pub row: T,
}
