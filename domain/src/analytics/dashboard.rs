//! The dashboard: one answer with what a fleet's front page shows.

use chrono::{DateTime, Utc};

use super::Measures;
use crate::billing::money::{Cost, Currency};
use crate::fleet::sim::SimState;
use crate::identifiers::MccMnc;

/// A network's share of the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierShare {
    pub mcc_mnc: MccMnc,
    /// Session bytes in + out.
    pub bytes: u64,
    /// Data cost of the rated CDRs (zero where nothing is rated yet).
    pub cost: Cost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    /// The current billing period (the retail card's; calendar month without a card), `[from, to)`.
    pub period_from: DateTime<Utc>,
    pub period_to: DateTime<Utc>,
    /// Every state, zero included, in the state machine's order.
    pub sims_by_state: Vec<(SimState, u64)>,
    pub online_now: u64,
    /// Session usage in the period so far, with the SIMs that used any.
    pub usage: Measures,
    /// Bytes per SIM with usage in the period (0 without usage).
    pub average_bytes_per_active_sim: u64,
    /// Data cost so far (rated CDRs of the current run; access fees are not in it). `None` when
    /// the caller may not see costs or the tenant has no retail card.
    pub cost_so_far: Option<Cost>,
    /// `cost_so_far` carried on at the same rate to the end of the period.
    pub projected_cost: Option<Cost>,
    /// Access fees of the period so far (SIMs ACTIVE at any time in a month of it, by the
    /// current run), apart from the data cost. `None` as for `cost_so_far`.
    pub access_fees: Option<Cost>,
    pub currency: Option<Currency>,
    /// Every network with traffic in the period, most bytes first.
    pub carriers_by_traffic: Vec<CarrierShare>,
    /// The same networks, highest cost first (empty when costs are not visible).
    pub carriers_by_cost: Vec<CarrierShare>,
    /// Session bytes in the period by the kind of device the SIM is in (`None`: in no device).
    pub traffic_by_device_kind: Vec<(Option<String>, u64)>,
    /// Activations per day over the last 30 days in the request's time zone (every day listed).
    pub activations: Vec<(DateTime<Utc>, u64)>,
    /// SIMs per tariff plan (`None`: no plan).
    pub sims_by_tariff_plan: Vec<(Option<String>, u64)>,
}

/// `so_far` carried on at the same rate from `elapsed` to `whole` (half-up to the last unit).
pub fn project(so_far: Cost, elapsed_secs: i64, whole_secs: i64) -> Cost {
    if elapsed_secs <= 0 || whole_secs <= elapsed_secs {
        return so_far;
    }
    let num = so_far.units().saturating_mul(i128::from(whole_secs));
    let den = i128::from(elapsed_secs);
    let q = num / den;
    let r = num % den;
    let q = if r.abs() * 2 >= den { q + num.signum() } else { q };
    Cost::from_units(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_keeps_the_rate_and_rounds_half_up() {
        let ten = Cost::from_units(10_000_000_000_000);
        assert_eq!(project(ten, 10, 30).units(), 30_000_000_000_000);
        assert_eq!(project(Cost::from_units(1), 2, 3).units(), 2); // 1.5 → 2
        assert_eq!(project(ten, 0, 30), ten);
        assert_eq!(project(ten, 30, 30), ten);
    }
}
