//! The usage store: analytics over data sessions. Later work fills it with live sessions and cubes;
//! today it holds daily usage per SIM and network, enough for the contract and the schema migrations.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ports::EngineInfo;
use crate::usage::TelemetryReading;
use crate::{CustomerId, DeviceId, Error, Result, TenantId};

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

/// One counted session update, as the ingest worker writes it: the rollup's state and the usage
/// it added (`delta_*`), attributed to `hour` (and its `day` and `month`, computed in UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUpdate {
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub iccid: String,
    pub session_id: String,
    pub started_at: DateTime<Utc>,
    pub event_time: DateTime<Utc>,
    pub hour: DateTime<Utc>,
    /// `MCC-MNC`.
    pub mcc_mnc: String,
    /// Readable radio access type (`LTE`, `NB-IoT`, …).
    pub rat: String,
    pub ip_address: Option<String>,
    pub cell_id: Option<String>,
    pub terminated: bool,
    pub total_in: u64,
    pub total_out: u64,
    pub delta_in: u64,
    pub delta_out: u64,
}

/// Which session updates of a SIM to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only this network (`MCC-MNC`).
    pub mcc_mnc: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// After this `(event_time, session_id)`: the last row of the previous page.
    pub before: Option<(DateTime<Utc>, String)>,
    pub limit: u64,
}

/// How finely usage is summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Granularity {
    Hour,
    Day,
    Month,
    Year,
}

/// Bytes of one period on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsagePoint {
    /// Start of the period (UTC).
    pub period: DateTime<Utc>,
    pub mcc_mnc: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// A CDR as stored for billing, with the SIM's owner when it was counted. Its bytes count on the
/// day (UTC) its charging period starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CdrRecord {
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub cdr_id: String,
    pub iccid: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub mcc_mnc: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub rating_group: u32,
}

/// Which SIM-days to compare between the session view and the CDR view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconciliationQuery {
    /// First and last day, inclusive.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub iccid: Option<String>,
    pub customer: Option<CustomerId>,
    /// Only SIM-days whose totals differ.
    pub only_differences: bool,
    pub limit: u64,
}

/// One SIM on one day: bytes counted from sessions and bytes billed by CDRs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationRow {
    pub iccid: String,
    pub day: NaiveDate,
    pub session_in: u64,
    pub session_out: u64,
    pub cdr_in: u64,
    pub cdr_out: u64,
}

/// Bytes of one sub-customer (or of SIMs assigned to none) in one period on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerUsagePoint {
    pub period: DateTime<Utc>,
    pub customer_id: Option<CustomerId>,
    pub mcc_mnc: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// How long session updates and live sessions are kept.
pub const SESSION_RETENTION_DAYS: i64 = 7;

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

    /// Writes counted session updates (one insert; the cubes and live state follow from it).
    async fn write_session_updates(&self, updates: &[SessionUpdate]) -> Result<()>;
    /// The latest written state of each of these sessions, by `(iccid, session_id)`; sessions never
    /// written are absent. The ingest worker recovers its progress from this after a restart.
    async fn session_states(&self, keys: &[(String, String)]) -> Result<Vec<SessionUpdate>>;
    /// The SIM's most recent session within the retention (7 days), as last updated.
    async fn live_session(&self, tenant: TenantId, iccid: &str) -> Result<Option<SessionUpdate>>;
    /// The SIM's counted session updates in `[from, to)` (within the retention), newest first,
    /// optionally on one network, after `before` (the `(event_time, session_id)` of the last row
    /// of the previous page), at most `limit`.
    async fn session_history(
        &self,
        tenant: TenantId,
        iccid: &str,
        query: &HistoryQuery,
    ) -> Result<Vec<SessionUpdate>>;
    /// Usage of one SIM in `[from, to)`, per period and network, oldest first.
    async fn sim_usage(
        &self,
        tenant: TenantId,
        iccid: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<UsagePoint>>;

    /// Which of these CDR ids are stored already.
    async fn known_cdrs(&self, ids: &[String]) -> Result<Vec<String>>;
    /// Stores CDRs (the billing cubes follow from them). Callers leave out known ids.
    async fn write_cdrs(&self, cdrs: &[CdrRecord]) -> Result<()>;
    /// Session bytes against CDR bytes per SIM and day, ordered by day then ICCID.
    async fn reconciliation(
        &self,
        tenant: TenantId,
        query: &ReconciliationQuery,
    ) -> Result<Vec<ReconciliationRow>>;
    /// Usage per sub-customer (`customer` alone when given), period and network in `[from, to)`,
    /// oldest first (session view).
    async fn customer_usage(
        &self,
        tenant: TenantId,
        customer: Option<CustomerId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<CustomerUsagePoint>>;
    /// Drops session updates and live sessions older than the retention where the engine does
    /// not expire them itself; returns what was dropped (partitions or rows), for the log.
    async fn drop_expired(&self, now: DateTime<Utc>) -> Result<Vec<String>>;

    /// Stores device readings; a reading repeated for the same device and time is kept once.
    async fn write_telemetry(&self, readings: &[(TenantId, TelemetryReading)]) -> Result<()>;
    /// A device's readings in `[from, to)`, oldest first, at most `limit` (the newest `limit`
    /// when there are more).
    async fn device_telemetry(
        &self,
        tenant: TenantId,
        device: DeviceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<TelemetryReading>>;
}

/// How long device readings are kept.
pub const TELEMETRY_RETENTION_DAYS: i64 = 90;

/// The start of the period `t` falls in (UTC).
pub fn period_start(t: DateTime<Utc>, g: Granularity) -> DateTime<Utc> {
    use chrono::{Datelike, TimeZone, Timelike};
    let hour = t
        .with_nanosecond(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_minute(0))
        .unwrap_or(t);
    let at = |y: i32, m: u32, d: u32| Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).single().unwrap_or(hour);
    match g {
        Granularity::Hour => hour,
        Granularity::Day => at(t.year(), t.month(), t.day()),
        Granularity::Month => at(t.year(), t.month(), 1),
        Granularity::Year => at(t.year(), 1, 1),
    }
}
