//! Exports: what a file holds (its kind, columns and typed values) and the durable job that writes
//! it.
//!
//! A source reads its rows in batches ([`ExportBatch`], column by column, typed as
//! [`ColumnType`] says) and the `ioto-exports` crate writes them as CSV, XLSX or Parquet. Memory
//! holds one batch at a time, whatever the export's size.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Actor, Error, Result, Role, TenantId, UserId};

/// Version of the column layouts below; written into every file's metadata. Raised when a kind's
/// columns change.
pub const EXPORT_SCHEMA_VERSION: u32 = 1;

/// A file format an export can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExportFormat {
    Csv,
    Xlsx,
    Parquet,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 3] = [Self::Csv, Self::Xlsx, Self::Parquet];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "CSV",
            Self::Xlsx => "XLSX",
            Self::Parquet => "PARQUET",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Self::Csv),
            "xlsx" | "excel" => Ok(Self::Xlsx),
            "parquet" => Ok(Self::Parquet),
            _ => Err(Error::invalid(
                "format",
                format!("'{s}' is not an export format; allowed: csv, xlsx, parquet"),
            )),
        }
    }

    /// The `Content-Type` a download of this format is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
            Self::Parquet => "parquet",
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an export holds; each kind reads what its matching query reads, with the same filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExportKind {
    /// Usage and cost per sub-customer and period: the tenant's billing file.
    CustomerBilling,
    /// Rated usage per SIM, day and network (the rating engine's stored results).
    RatedUsage,
    /// Any `usageAnalytics` request's rows.
    UsageAnalytics,
    /// Session updates of one SIM in a time range (what `sessionHistory` pages through).
    SessionHistory,
    /// SIMs with their state, sub-customer, labels and device.
    SimInventory,
    Devices,
    /// Session-counted against network-reported (CDR) usage per SIM and day.
    UsageReconciliation,
    /// The platform operator's invoice lines of a tenant and month.
    InvoiceLines,
    AuditLog,
}

impl ExportKind {
    pub const ALL: [ExportKind; 9] = [
        Self::CustomerBilling,
        Self::RatedUsage,
        Self::UsageAnalytics,
        Self::SessionHistory,
        Self::SimInventory,
        Self::Devices,
        Self::UsageReconciliation,
        Self::InvoiceLines,
        Self::AuditLog,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CustomerBilling => "CUSTOMER_BILLING",
            Self::RatedUsage => "RATED_USAGE",
            Self::UsageAnalytics => "USAGE_ANALYTICS",
            Self::SessionHistory => "SESSION_HISTORY",
            Self::SimInventory => "SIM_INVENTORY",
            Self::Devices => "DEVICES",
            Self::UsageReconciliation => "USAGE_RECONCILIATION",
            Self::InvoiceLines => "INVOICE_LINES",
            Self::AuditLog => "AUDIT_LOG",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        let wanted = s.trim().replace('-', "_").to_ascii_uppercase();
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == wanted)
            .ok_or_else(|| {
                let allowed: Vec<String> = Self::ALL
                    .iter()
                    .map(|k| k.as_str().to_ascii_lowercase())
                    .collect();
                Error::invalid(
                    "kind",
                    format!("'{s}' is not an export kind; allowed: {}", allowed.join(", ")),
                )
            })
    }

    /// The start of a download's file name (`sim-inventory-2026-11-23.csv`).
    pub fn file_stem(self) -> String {
        self.as_str().to_ascii_lowercase().replace('_', "-")
    }
}

impl fmt::Display for ExportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of a column, as every format writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    /// A 64-bit integer (counts, bytes).
    Int,
    /// An exact decimal with `scale` digits after the point (`DECIMAL(38, scale)` in Parquet).
    Decimal {
        scale: u8,
    },
    /// An amount of money: a decimal, formatted with its currency in XLSX when there is one.
    Money {
        scale: u8,
        currency: Option<String>,
    },
    /// A point in time (UTC, microseconds).
    Timestamp,
    /// A calendar day.
    Date,
    Bool,
}

/// One column of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportColumn {
    pub name: String,
    pub ty: ColumnType,
}

impl ExportColumn {
    pub fn new(name: &str, ty: ColumnType) -> Self {
        Self {
            name: name.to_owned(),
            ty,
        }
    }
}

/// The values of one column in a batch; `None` is an empty cell (a Parquet null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnValues {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    /// Unscaled values of a `Decimal` or `Money` column (1234 at scale 2 is 12.34).
    Decimal(Vec<Option<i128>>),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(Vec<Option<i64>>),
    /// Days since the Unix epoch.
    Date(Vec<Option<i32>>),
    Bool(Vec<Option<bool>>),
}

impl ColumnValues {
    /// Empty values fitting a column of `ty`.
    pub fn for_type(ty: &ColumnType, capacity: usize) -> Self {
        match ty {
            ColumnType::Text => Self::Text(Vec::with_capacity(capacity)),
            ColumnType::Int => Self::Int(Vec::with_capacity(capacity)),
            ColumnType::Decimal { .. } | ColumnType::Money { .. } => {
                Self::Decimal(Vec::with_capacity(capacity))
            }
            ColumnType::Timestamp => Self::Timestamp(Vec::with_capacity(capacity)),
            ColumnType::Date => Self::Date(Vec::with_capacity(capacity)),
            ColumnType::Bool => Self::Bool(Vec::with_capacity(capacity)),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Text(v) => v.len(),
            Self::Int(v) => v.len(),
            Self::Decimal(v) => v.len(),
            Self::Timestamp(v) => v.len(),
            Self::Date(v) => v.len(),
            Self::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether these values can be the values of a column of `ty`.
    pub fn fits(&self, ty: &ColumnType) -> bool {
        matches!(
            (self, ty),
            (Self::Text(_), ColumnType::Text)
                | (Self::Int(_), ColumnType::Int)
                | (
                    Self::Decimal(_),
                    ColumnType::Decimal { .. } | ColumnType::Money { .. }
                )
                | (Self::Timestamp(_), ColumnType::Timestamp)
                | (Self::Date(_), ColumnType::Date)
                | (Self::Bool(_), ColumnType::Bool)
        )
    }
}

/// Rows of an export, column by column, in the order of the export's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportBatch {
    pub columns: Vec<ColumnValues>,
}

impl ExportBatch {
    /// An empty batch for `columns`, with room for `capacity` rows.
    pub fn new(columns: &[ExportColumn], capacity: usize) -> Self {
        Self {
            columns: columns
                .iter()
                .map(|c| ColumnValues::for_type(&c.ty, capacity))
                .collect(),
        }
    }

    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, ColumnValues::len)
    }

    /// Checks the batch against the columns it is written with: a source that builds a batch
    /// of the wrong shape is a bug, reported instead of writing a misaligned file.
    pub fn check(&self, columns: &[ExportColumn]) -> Result<()> {
        if self.columns.len() != columns.len() {
            return Err(Error::Internal(format!(
                "export batch has {} columns, the export {}",
                self.columns.len(),
                columns.len()
            )));
        }
        let rows = self.rows();
        for (values, column) in self.columns.iter().zip(columns) {
            if !values.fits(&column.ty) || values.len() != rows {
                return Err(Error::Internal(format!(
                    "export batch column '{}' does not fit its type or has {} rows instead of {rows}",
                    column.name,
                    values.len()
                )));
            }
        }
        Ok(())
    }

    /// Appends one value to column `i`. Values of the wrong kind are a programming error and
    /// are caught by [`ExportBatch::check`] before writing.
    pub fn push_text(&mut self, i: usize, v: Option<String>) {
        if let Some(ColumnValues::Text(c)) = self.columns.get_mut(i) {
            c.push(v);
        }
    }
    pub fn push_int(&mut self, i: usize, v: Option<i64>) {
        if let Some(ColumnValues::Int(c)) = self.columns.get_mut(i) {
            c.push(v);
        }
    }
    pub fn push_decimal(&mut self, i: usize, v: Option<i128>) {
        if let Some(ColumnValues::Decimal(c)) = self.columns.get_mut(i) {
            c.push(v);
        }
    }
    pub fn push_timestamp(&mut self, i: usize, v: Option<DateTime<Utc>>) {
        if let Some(ColumnValues::Timestamp(c)) = self.columns.get_mut(i) {
            c.push(v.map(|t| t.timestamp_micros()));
        }
    }
    pub fn push_date(&mut self, i: usize, v: Option<chrono::NaiveDate>) {
        if let Some(ColumnValues::Date(c)) = self.columns.get_mut(i) {
            c.push(v.map(days_since_epoch));
        }
    }
    pub fn push_bool(&mut self, i: usize, v: Option<bool>) {
        if let Some(ColumnValues::Bool(c)) = self.columns.get_mut(i) {
            c.push(v);
        }
    }
}

/// Days from 1970-01-01 to `d` (Parquet's and Arrow's `DATE`).
pub fn days_since_epoch(d: chrono::NaiveDate) -> i32 {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    i32::try_from((d - epoch).num_days()).unwrap_or(i32::MAX)
}

/// What a file says about itself (Parquet key/value metadata, XLSX document properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportMeta {
    pub kind: ExportKind,
    /// The filter the rows were selected with, as JSON.
    pub filter: String,
    pub tenant_id: TenantId,
    pub created_at: DateTime<Utc>,
}

/// Where an export job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExportStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
    /// Completed, and its file deleted after its time ran out.
    Expired,
}

impl ExportStatus {
    pub const ALL: [ExportStatus; 6] = [
        Self::Queued,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
            Self::Expired => "EXPIRED",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| Error::invalid("status", format!("'{s}' is not an export job status")))
    }

    /// No more changes (but a completed file still expires).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

impl fmt::Display for ExportStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A durable export job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportJob {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub kind: ExportKind,
    pub format: ExportFormat,
    /// The request's filter, as JSON (the kind's filter, validated when requested).
    pub filter: serde_json::Value,
    pub status: ExportStatus,
    /// Rows written so far (all of them once completed).
    pub rows: u64,
    /// Bytes of the file written so far (its size once completed).
    pub bytes: u64,
    /// Rows the export is expected to hold, when the source can say beforehand.
    pub expected_rows: Option<u64>,
    /// Who asked, and as what: the job reads with the requester's permissions.
    pub created_by: String,
    pub created_by_user: Option<UserId>,
    pub created_by_role: Role,
    pub created_by_customer: Option<crate::CustomerId>,
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// When the file is deleted (set when completed).
    pub expires_at: Option<DateTime<Utc>>,
    /// SHA-256 of the finished file, hex.
    pub sha256: Option<String>,
}

impl ExportJob {
    /// The download's file name: kind, the job's day and the last 8 digits of its id (the
    /// random ones: the first are a timestamp, the same for jobs of the same minute).
    pub fn file_name(&self) -> String {
        let id = self.id.simple().to_string();
        format!(
            "{}-{}-{}.{}",
            self.kind.file_stem(),
            self.created_at.format("%Y-%m-%d"),
            &id[id.len().saturating_sub(8)..],
            self.format.extension()
        )
    }

    /// Where the file lives in the export storage.
    pub fn storage_key(&self) -> String {
        format!("{}/{}.{}", self.tenant_id, self.id, self.format.extension())
    }

    /// Estimated seconds left, from the pace so far (none before the first rows or without an
    /// expected count).
    pub fn eta_seconds(&self, now: DateTime<Utc>) -> Option<u64> {
        let expected = self.expected_rows?;
        let started = self.started_at?;
        if self.status != ExportStatus::Running || self.rows == 0 {
            return None;
        }
        let elapsed = (now - started).num_milliseconds().max(1) as f64 / 1000.0;
        let left = expected.saturating_sub(self.rows) as f64;
        Some((left * elapsed / self.rows as f64).ceil() as u64)
    }
}

impl ExportJob {
    /// The requester, as the job reads: the role and sub-customer they had when they asked.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.created_by_user,
            subject: self.created_by.clone(),
            tenant_id: self.tenant_id,
            role: self.created_by_role,
            customer_id: self.created_by_customer,
            issued_at: None,
            api_key: None,
            session_id: None,
        }
    }

    /// Whether its file may be downloaded now.
    pub fn downloadable(&self, now: DateTime<Utc>) -> bool {
        self.status == ExportStatus::Completed && self.expires_at.is_some_and(|e| e > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_kinds_parse_and_name_what_is_allowed() {
        assert_eq!(ExportFormat::parse("Excel").unwrap(), ExportFormat::Xlsx);
        let err = ExportFormat::parse("pdf").unwrap_err().to_string();
        assert!(err.contains("csv, xlsx, parquet"), "{err}");
        assert_eq!(
            ExportKind::parse("sim-inventory").unwrap(),
            ExportKind::SimInventory
        );
        let err = ExportKind::parse("everything").unwrap_err().to_string();
        assert!(
            err.contains("sim_inventory") && err.contains("customer_billing"),
            "{err}"
        );
    }

    #[test]
    fn a_batch_of_the_wrong_shape_is_refused() {
        let columns = [
            ExportColumn::new("iccid", ColumnType::Text),
            ExportColumn::new("bytes", ColumnType::Int),
        ];
        let mut b = ExportBatch::new(&columns, 2);
        b.push_text(0, Some("x".into()));
        b.push_int(1, Some(1));
        b.check(&columns).unwrap();
        b.push_text(0, Some("y".into()));
        assert!(b.check(&columns).is_err(), "columns of different lengths");
        let wrong = [
            ExportColumn::new("iccid", ColumnType::Text),
            ExportColumn::new("bytes", ColumnType::Bool),
        ];
        assert!(ExportBatch::new(&columns, 0).check(&wrong).is_err());
    }

    #[test]
    fn days_count_from_the_epoch() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(days_since_epoch(d), 20_780);
        assert_eq!(
            days_since_epoch(chrono::NaiveDate::from_ymd_opt(1969, 12, 31).unwrap()),
            -1
        );
    }
}
