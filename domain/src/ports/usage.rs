//! The usage store: analytics over data sessions. Later work fills it with live sessions and cubes;
//! today it holds daily usage per SIM and network, enough for the contract and the schema migrations.

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ports::EngineInfo;
use crate::{CustomerId, Error, Result, TenantId};

/// Bytes a SIM moved on one network on one day. Several records for the same key add up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub iccid: String,
    /// `MCC-MNC`, e.g. `262-01`.
    pub network: String,
    pub day: NaiveDate,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

/// Usage of one tenant summed per day and network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyUsage {
    pub day: NaiveDate,
    pub network: String,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub sims: u64,
}

/// First and last day a usage record may carry (ClickHouse's `Date` range).
pub fn usage_day_range() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default(),
        NaiveDate::from_ymd_opt(2149, 6, 6).unwrap_or_default(),
    )
}

/// Checks every record before any is written; the error names the first bad row and field.
pub fn check_usage_batch(records: &[UsageRecord]) -> Result<()> {
    let (first, last) = usage_day_range();
    for (i, r) in records.iter().enumerate() {
        if r.day < first || r.day > last {
            return Err(Error::invalid(
                format!("records[{i}].day"),
                format!("{} is outside {first}..{last}", r.day),
            ));
        }
        if r.iccid.is_empty() {
            return Err(Error::invalid(format!("records[{i}].iccid"), "must not be empty"));
        }
        if r.network.is_empty() {
            return Err(Error::invalid(
                format!("records[{i}].network"),
                "must not be empty (MCC-MNC, e.g. 262-01)",
            ));
        }
    }
    Ok(())
}

#[async_trait]
pub trait UsageStore: Send + Sync + 'static {
    fn info(&self) -> EngineInfo;
    async fn ping(&self) -> Result<()>;
    /// The engine's version string (`18.16.1`, `24.8.4.13`, or the embedded adapter's own).
    async fn server_version(&self) -> Result<String>;
    /// Applies pending schema migrations; returns the versions applied now.
    async fn migrate(&self) -> Result<Vec<u32>>;
    async fn insert_usage(&self, records: &[UsageRecord]) -> Result<()>;
    /// Per day and network for one tenant, days in `[from, to]`, ordered by day then network.
    async fn daily_usage(&self, tenant: TenantId, from: NaiveDate, to: NaiveDate) -> Result<Vec<DailyUsage>>;
}
