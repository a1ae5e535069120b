//! What the analytics layer and the dashboard read from the fleet store (the cubes are read
//! through [`crate::ports::UsageReader::cube_rows`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::fleet::labels::Labels;
use crate::fleet::sim::SimState;
use crate::identifiers::Iccid;
use crate::{CustomerId, Result, Scope, TenantId};

/// A SIM as the analytics layer groups it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimFactsRow {
    pub iccid: Iccid,
    pub customer_id: Option<CustomerId>,
    pub state: SimState,
    pub tariff_plan: Option<String>,
    pub labels: Labels,
    /// The kind of the device the SIM is in (`None`: in no device).
    pub device_kind: Option<String>,
}

/// SIM counts for the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetCounts {
    pub by_state: Vec<(SimState, u64)>,
    /// `None`: SIMs without a plan.
    pub by_tariff_plan: Vec<(Option<String>, u64)>,
}

#[async_trait]
pub trait AnalyticsFleet: Send + Sync + 'static {
    /// The tenant's SIMs (of one sub-customer when given) with what analytics groups them by.
    async fn sim_facts(
        &self,
        scope: Scope,
        tenant: TenantId,
        customer: Option<CustomerId>,
    ) -> Result<Vec<SimFactsRow>>;
    /// SIMs per state and per tariff plan (counted by the store).
    async fn fleet_counts(
        &self,
        scope: Scope,
        tenant: TenantId,
        customer: Option<CustomerId>,
    ) -> Result<FleetCounts>;
    /// The SIMs that are in a device, with the device's kind.
    async fn bound_sims(
        &self,
        scope: Scope,
        tenant: TenantId,
        customer: Option<CustomerId>,
    ) -> Result<Vec<(Iccid, String)>>;
    /// How many SIMs of the tenant (of one sub-customer when given) were made ACTIVE in
    /// `[from, to)` (as the audit trail records it; a SIM activated twice counts twice), as
    /// `(time, count)`, oldest first. A time stands for itself or for the start of the 15 minutes
    /// the activations fell in; `from` and `to` must be on 15-minute boundaries (every time
    /// zone's midnight is).
    async fn activations(
        &self,
        scope: Scope,
        tenant: TenantId,
        customer: Option<CustomerId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, u64)>>;
    /// Folds the store's dashboard counters (rows written per statement) into one row per key;
    /// returns the rows removed. Stores that keep no such counters return 0.
    async fn compact_counters(&self) -> Result<u64>;
}
