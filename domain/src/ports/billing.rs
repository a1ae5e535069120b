//! Ports of billing: rate cards and rating runs (transactional store), the rating engine (usage
//! store side), and what the fleet knows about a SIM's bill.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::billing::adjustment::PeriodAdjustment;
use crate::billing::invoice::{FeeGroup, InvoiceCharge, PricedUsage};
use crate::billing::money::Cost;
use crate::billing::rate_card::{RateCard, RateCardVersion};
use crate::billing::rating::{ActiveSimMonth, BillableSim, RatingJob, RatingRun, RatingStages, RatingTotals};
use crate::{CustomerId, Result, Scope, TenantId};

/// Rate cards and their versions. Reads are filtered by scope (a tenant sees its retail card,
/// only the platform sees supplier cards); writes run in the platform's scope.
#[async_trait]
pub trait RateCardStore: Send + Sync + 'static {
    /// Stores a new card with its versions; `Conflict` when the tenant has a card of that kind.
    async fn create_rate_card(&self, card: &RateCard) -> Result<()>;
    /// Adds a version; `Conflict` when the card has one on the same day.
    async fn add_rate_card_version(&self, card: &RateCard, version: &RateCardVersion) -> Result<()>;
    /// Sets the first day the card prices nothing.
    async fn retire_rate_card(&self, card: &RateCard, from: NaiveDate) -> Result<()>;
    /// Cards of `tenant` (every tenant's when `None`) visible in `scope`, with their versions.
    async fn rate_cards(&self, scope: Scope, tenant: Option<TenantId>) -> Result<Vec<RateCard>>;
    async fn rate_card(&self, scope: Scope, id: Uuid) -> Result<Option<RateCard>>;
}

/// A billing period whose invoice data is final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedPeriod {
    pub card_id: Uuid,
    pub tenant_id: TenantId,
    pub period_start: NaiveDate,
    /// The run whose result was invoiced.
    pub run_id: Uuid,
    pub closed_at: DateTime<Utc>,
    pub closed_by: String,
}

/// The record of rating runs: which run is current for each card and period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunQuery {
    pub tenant: Option<TenantId>,
    /// Runs whose period starts in `[from, to)`.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub current_only: bool,
    pub limit: u64,
}

#[async_trait]
pub trait RatingRunStore: Send + Sync + 'static {
    /// Records a run as `RUNNING`.
    async fn start_run(&self, run: &RatingRun) -> Result<()>;
    /// Makes the run the current one of its card and period, in one transaction with marking
    /// the previous current run `SUPERSEDED`; returns the superseded run's id.
    async fn complete_run(&self, id: Uuid, totals: &RatingTotals, at: DateTime<Utc>) -> Result<Option<Uuid>>;
    async fn fail_run(&self, id: Uuid, error: &str, at: DateTime<Utc>) -> Result<()>;
    /// Newest period first, then newest start first.
    async fn runs(&self, scope: Scope, query: &RunQuery) -> Result<Vec<RatingRun>>;
    /// Marks a period final with its current run; `Conflict` when it is closed already.
    async fn close_period(&self, period: &ClosedPeriod) -> Result<()>;
    async fn closed_periods(&self, scope: Scope, tenant: TenantId) -> Result<Vec<ClosedPeriod>>;
    /// Stores the adjustment of its card, period and adjusted period, replacing the one stored
    /// before; `Conflict` when the period it is booked into is closed (its invoice is final).
    async fn put_adjustment(&self, adjustment: &PeriodAdjustment) -> Result<()>;
    /// The tenant's adjustments visible in `scope`, oldest booking period first.
    async fn adjustments(&self, scope: Scope, tenant: TenantId) -> Result<Vec<PeriodAdjustment>>;
}

/// What rated usage can be summed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RatedDimension {
    Tenant,
    Sim,
    /// Sub-customer id (`""`: SIMs assigned to none).
    Customer,
    /// MCC/MNC.
    Network,
    Zone,
    /// `YYYY-MM-DD`.
    Day,
    /// First day of the month, `YYYY-MM-DD`.
    Month,
    TariffPlan,
}

impl RatedDimension {
    pub const ALL: [RatedDimension; 8] = [
        RatedDimension::Tenant,
        RatedDimension::Sim,
        RatedDimension::Customer,
        RatedDimension::Network,
        RatedDimension::Zone,
        RatedDimension::Day,
        RatedDimension::Month,
        RatedDimension::TariffPlan,
    ];
}

/// Sums of rated usage for one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RatedSums {
    pub records: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub rounded_bytes: u64,
    pub cost: Cost,
}

impl RatedSums {
    pub fn add(&mut self, other: &RatedSums) {
        self.records += other.records;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.rounded_bytes += other.rounded_bytes;
        self.cost = self.cost + other.cost;
    }
}

/// Which rated rows to sum: those of `runs` (the current ones), optionally one sub-customer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatedQuery {
    pub tenant: TenantId,
    pub runs: Vec<Uuid>,
    pub customer: Option<CustomerId>,
    pub by: RatedDimension,
}

/// Access fees summed for one key (`by` Sim, Customer, Month or Tenant).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeeSums {
    /// SIM-months charged.
    pub charges: u64,
    pub fees: Cost,
}

/// Rates CDRs and keeps the results (the usage store's side of rating).
#[async_trait]
pub trait RatingEngine: Send + Sync + 'static {
    /// Rates the job's CDRs, stores the rows under `job.run_id` and returns their totals and
    /// where the time went.
    async fn rate_with_stages(&self, job: &RatingJob) -> Result<(RatingTotals, RatingStages)>;
    /// [`Self::rate_with_stages`] without the timings.
    async fn rate(&self, job: &RatingJob) -> Result<RatingTotals> {
        Ok(self.rate_with_stages(job).await?.0)
    }
    /// CDRs of the tenant in `[from, to)` (one per `cdr_id`): a closed period is rated again
    /// only when this count changed.
    async fn cdr_count(&self, tenant: TenantId, from: NaiveDate, to: NaiveDate) -> Result<u64>;
    /// Removes the rows of runs that are no longer current.
    async fn discard_runs(&self, tenant: TenantId, runs: &[Uuid]) -> Result<()>;
    /// Rated usage summed by `query.by`, ordered by key.
    async fn rated_usage(&self, query: &RatedQuery) -> Result<Vec<(String, RatedSums)>>;
    /// Access fees summed by `query.by` (Tenant, Sim, Customer, Month or TariffPlan), ordered
    /// by key.
    async fn rated_fees(&self, query: &RatedQuery) -> Result<Vec<(String, FeeSums)>>;
    /// A run's rated usage per zone, tariff plan and day (what invoice data lines are priced from).
    async fn priced_usage(&self, tenant: TenantId, run: Uuid) -> Result<Vec<PricedUsage>>;
    /// A run's access fees grouped by amount.
    async fn fee_groups(&self, tenant: TenantId, run: Uuid) -> Result<Vec<FeeGroup>>;
    /// A run's stored rows (of one sub-customer when named), ordered by day, ICCID and network,
    /// streamed in batches of up to `batch` rows: one query, sent when the stream is first
    /// polled and read as the consumer takes the batches (at most two batches wait), whatever
    /// the run's size.
    fn rated_records(
        &self,
        tenant: TenantId,
        run: Uuid,
        customer: Option<CustomerId>,
        batch: usize,
    ) -> futures::stream::BoxStream<'static, Result<Vec<RatedRecord>>>;
}

/// One stored rating result: a SIM's rated usage on one day and network (for one sub-customer,
/// zone and tariff plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatedRecord {
    pub day: NaiveDate,
    pub iccid: String,
    pub mcc_mnc: String,
    /// Empty: assigned to no sub-customer.
    pub customer_id: String,
    pub zone: String,
    pub tariff_plan: String,
    pub records: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub rounded_bytes: u64,
    pub cost: Cost,
}

/// Charges a platform admin adds to tenants' invoices.
#[async_trait]
pub trait InvoiceChargeStore: Send + Sync + 'static {
    async fn add_charge(&self, charge: &InvoiceCharge) -> Result<()>;
    /// The tenant's charges of the period starting `period_start`, oldest first.
    async fn charges(&self, tenant: TenantId, period_start: NaiveDate) -> Result<Vec<InvoiceCharge>>;
}

/// The transactional store's side of billing, as one adapter.
pub trait Billing: RateCardStore + RatingRunStore + BillingFleet + InvoiceChargeStore {}

impl<T: RateCardStore + RatingRunStore + BillingFleet + InvoiceChargeStore> Billing for T {}

/// What the fleet knows about the SIMs a bill covers.
#[async_trait]
pub trait BillingFleet: Send + Sync + 'static {
    /// Every SIM of the tenant with its sub-customer and tariff plan.
    async fn billable_sims(&self, tenant: TenantId) -> Result<Vec<BillableSim>>;
    /// SIMs that were ACTIVE at any time in the month starting `month` (from the audit trail:
    /// active when the month began, or made active during it).
    async fn active_sims(&self, tenant: TenantId, month: NaiveDate) -> Result<Vec<ActiveSimMonth>>;
}
