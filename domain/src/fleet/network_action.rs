//! What the network (HLR/HSS) must be told for a SIM: one action per state change it must know,
//! and a location update.

use crate::fleet::sim::SimState;

/// What the network is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkAction {
    /// Provision the subscription and allow attach (INVENTORY → ACTIVE).
    Activate,
    /// Bar traffic, keeping the subscription (→ SUSPENDED).
    Suspend,
    /// Lift a bar (SUSPENDED → ACTIVE).
    Resume,
    /// Bar as lost or stolen (→ LOST_STOLEN).
    ReportLostStolen,
    /// Remove the subscription (→ TERMINATED).
    Terminate,
    /// Cancel the current location so the device attaches again (no state change).
    LocationUpdate,
}

impl NetworkAction {
    pub const ALL: [NetworkAction; 6] = [
        NetworkAction::Activate,
        NetworkAction::Suspend,
        NetworkAction::Resume,
        NetworkAction::ReportLostStolen,
        NetworkAction::Terminate,
        NetworkAction::LocationUpdate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NetworkAction::Activate => "ACTIVATE",
            NetworkAction::Suspend => "SUSPEND",
            NetworkAction::Resume => "RESUME",
            NetworkAction::ReportLostStolen => "REPORT_LOST_STOLEN",
            NetworkAction::Terminate => "TERMINATE",
            NetworkAction::LocationUpdate => "LOCATION_UPDATE",
        }
    }

    /// What the network must be told for a SIM moving `from` → `to` (a checked transition).
    pub fn for_transition(from: SimState, to: SimState) -> NetworkAction {
        match (from, to) {
            (SimState::Suspended, SimState::Active) => NetworkAction::Resume,
            (_, SimState::Active) => NetworkAction::Activate,
            (_, SimState::LostStolen) => NetworkAction::ReportLostStolen,
            (_, SimState::Terminated) => NetworkAction::Terminate,
            // Into SUSPENDED from ACTIVE, or a found SIM coming back barred.
            (_, SimState::Suspended | SimState::Inventory) => NetworkAction::Suspend,
        }
    }
}
