//! Rating: the CDRs of a tenant and period priced by the rate card in force on each record's day.
//!
//! A rating run reads every CDR of the period (one row per `cdr_id`), rounds each record's bytes
//! (in + out) up to the version's increment, prices the rounded bytes by the record's zone and the
//! SIM's tariff plan, and stores the result per SIM × day × network under the run's id. Monthly
//! access fees are charged per SIM that was ACTIVE at any time in a month, at the version in force
//! on the first day of that month the card covers. Costs are exact (see [`super::money`]).
//!
//! Runs are idempotent: the same CDRs and card give the same rows. A run replaces the previous
//! run of the same tenant, card and period by becoming the current one in one transactional step
//! (queries read current runs only), so a reader sees the old or the new result, never a mix.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::money::Cost;
use super::rate_card::{RateCard, RateCardKind};
use crate::identifiers::Iccid;
use crate::{CustomerId, TenantId};

/// What a SIM's bill depends on besides its traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillableSim {
    pub iccid: Iccid,
    pub customer_id: Option<CustomerId>,
    pub tariff_plan: Option<String>,
}

/// A SIM that was ACTIVE at some time in the month starting `month`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSimMonth {
    pub month: NaiveDate,
    pub sim: BillableSim,
}

/// One run to do: `card` over the CDRs of `tenant` in `[from, to)`.
#[derive(Debug, Clone)]
pub struct RatingJob {
    pub run_id: Uuid,
    pub tenant_id: TenantId,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub card: RateCard,
    /// The tenant's SIMs (tariff plans); a CDR of a SIM not listed is priced without a plan.
    pub sims: Vec<BillableSim>,
    /// SIMs owing an access fee, per month of the period.
    pub active: Vec<ActiveSimMonth>,
}

/// What a run produced, summed over its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatingTotals {
    pub records: u64,
    pub bytes: u64,
    pub rounded_bytes: u64,
    /// Data cost, exact.
    pub usage_cost: Cost,
    pub access_fees: Cost,
    /// SIMs charged an access fee (counted once per month).
    pub access_fee_sims: u64,
    /// Records on days the card did not price (before its first version or after retirement).
    pub unpriced_records: u64,
}

/// Where a rating run's time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RatingStages {
    /// Reading the CDRs from the usage store into columns.
    pub read: std::time::Duration,
    /// The Polars computation (preparing the prices and rating every slice).
    pub rate: std::time::Duration,
    /// Writing the rated rows and fees. Where a store writes one slice while the next is rated,
    /// the two overlap and the run takes less than the sum of the stages.
    pub write: std::time::Duration,
}

/// State of a rating run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunStatus {
    Running,
    /// The current result for its tenant, card and period.
    Current,
    /// Replaced by a later run.
    Superseded,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Current => "CURRENT",
            RunStatus::Superseded => "SUPERSEDED",
            RunStatus::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            RunStatus::Running,
            RunStatus::Current,
            RunStatus::Superseded,
            RunStatus::Failed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A rating run as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingRun {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub card_id: Uuid,
    pub kind: RateCardKind,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub totals: RatingTotals,
    /// Why a run failed.
    pub error: Option<String>,
    /// Who asked for it (`scheduler` or a user's e-mail).
    pub requested_by: String,
}
