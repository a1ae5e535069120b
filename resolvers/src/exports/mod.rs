//! Export jobs: `requestExport`, `exportJobs`, `exportJob`, `cancelExport`, and the
//! `exportJobProgress` subscription (in `subscription.rs`).
//!
//! A job keeps its filter as the GraphQL input it was asked with (with defaults filled in when
//! asked), so the worker reads exactly what the matching query would: [`stored_request`] parses
//! it again through the same input types.

mod mutation;
mod query;
mod subscription;

pub(crate) use self::mutation::ExportMutation;
pub(crate) use self::query::ExportQuery;
pub(crate) use self::subscription::ExportSubscription;

use async_graphql::{Context, Enum, InputObject, Json, Object, SimpleObject, ID};
use chrono::{DateTime, Duration, Utc};
use ioto_app::export::ExportRequest;
use ioto_domain::export::{ExportFormat, ExportJob, ExportKind, ExportStatus};
use ioto_domain::Error;
use uuid::Uuid;

use crate::analytics::UsageAnalyticsInput;
use crate::context::services;
use crate::fleet::{AuditFilterInput, DeviceFilterInput, PageInfo, SimFilterInput};
use crate::scalars::parse_tenant;
use crate::scalars::Date;
use crate::scalars::{BigInt, IccidScalar, MccMncScalar};
use crate::to_gql;

/// How long a download link works.
pub const LINK_TTL_SECONDS: i64 = 300;

pub use crate::context::ExportLinks;

/// What an export holds.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ExportKind")]
pub enum ExportKindGql {
    /// Usage and cost per sub-customer of a billing period (needs `filter.day`, default today):
    /// the file a tenant bills its customers from.
    CustomerBilling,
    /// The rating engine's stored rows — per SIM, day and network — of a billing period
    /// (`filter.day`, default today; `filter.rateCardKind`, default RETAIL).
    RatedUsage,
    /// Any `usageAnalytics` request's rows (needs `filter.analytics`).
    UsageAnalytics,
    /// One SIM's session updates (needs `filter.sessionHistory`).
    SessionHistory,
    /// SIMs with state, sub-customer, labels and device (`filter.sims` as `sims` takes).
    SimInventory,
    /// Devices with their SIMs (`filter.devices` as `devices` takes).
    Devices,
    /// Session against CDR bytes per SIM and day (needs `filter.reconciliation`).
    UsageReconciliation,
    /// A tenant's invoice lines of a period (platform administrators; `filter.tenantId`,
    /// `filter.day`).
    InvoiceLines,
    /// The audit trail (`filter.audit` as `auditLog` takes).
    AuditLog,
}

impl From<ExportKindGql> for ExportKind {
    fn from(k: ExportKindGql) -> Self {
        match k {
            ExportKindGql::CustomerBilling => Self::CustomerBilling,
            ExportKindGql::RatedUsage => Self::RatedUsage,
            ExportKindGql::UsageAnalytics => Self::UsageAnalytics,
            ExportKindGql::SessionHistory => Self::SessionHistory,
            ExportKindGql::SimInventory => Self::SimInventory,
            ExportKindGql::Devices => Self::Devices,
            ExportKindGql::UsageReconciliation => Self::UsageReconciliation,
            ExportKindGql::InvoiceLines => Self::InvoiceLines,
            ExportKindGql::AuditLog => Self::AuditLog,
        }
    }
}

impl From<ExportKind> for ExportKindGql {
    fn from(k: ExportKind) -> Self {
        match k {
            ExportKind::CustomerBilling => Self::CustomerBilling,
            ExportKind::RatedUsage => Self::RatedUsage,
            ExportKind::UsageAnalytics => Self::UsageAnalytics,
            ExportKind::SessionHistory => Self::SessionHistory,
            ExportKind::SimInventory => Self::SimInventory,
            ExportKind::Devices => Self::Devices,
            ExportKind::UsageReconciliation => Self::UsageReconciliation,
            ExportKind::InvoiceLines => Self::InvoiceLines,
            ExportKind::AuditLog => Self::AuditLog,
        }
    }
}

/// A file format.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ExportFormat")]
pub enum ExportFormatGql {
    /// RFC 4180, UTF-8, header row; formula-like text neutralised with a leading `'`.
    Csv,
    /// Typed cells, frozen header row, a new sheet every 1,048,576 rows.
    Xlsx,
    /// zstd, typed columns (DECIMAL(38, s) money, UTC timestamps), metadata naming kind and filter.
    Parquet,
}

impl From<ExportFormatGql> for ExportFormat {
    fn from(f: ExportFormatGql) -> Self {
        match f {
            ExportFormatGql::Csv => Self::Csv,
            ExportFormatGql::Xlsx => Self::Xlsx,
            ExportFormatGql::Parquet => Self::Parquet,
        }
    }
}

impl From<ExportFormat> for ExportFormatGql {
    fn from(f: ExportFormat) -> Self {
        match f {
            ExportFormat::Csv => Self::Csv,
            ExportFormat::Xlsx => Self::Xlsx,
            ExportFormat::Parquet => Self::Parquet,
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ExportStatus")]
pub enum ExportStatusGql {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
    /// Completed, and its file deleted when its time ran out.
    Expired,
}

impl From<ExportStatus> for ExportStatusGql {
    fn from(s: ExportStatus) -> Self {
        match s {
            ExportStatus::Queued => Self::Queued,
            ExportStatus::Running => Self::Running,
            ExportStatus::Completed => Self::Completed,
            ExportStatus::Failed => Self::Failed,
            ExportStatus::Cancelled => Self::Cancelled,
            ExportStatus::Expired => Self::Expired,
        }
    }
}

impl From<ExportStatusGql> for ExportStatus {
    fn from(s: ExportStatusGql) -> Self {
        match s {
            ExportStatusGql::Queued => Self::Queued,
            ExportStatusGql::Running => Self::Running,
            ExportStatusGql::Completed => Self::Completed,
            ExportStatusGql::Failed => Self::Failed,
            ExportStatusGql::Cancelled => Self::Cancelled,
            ExportStatusGql::Expired => Self::Expired,
        }
    }
}

/// The session updates of one SIM, as `sessionHistory` takes them.
#[derive(InputObject, Clone)]
pub struct SessionHistoryFilterInput {
    pub iccid: IccidScalar,
    pub mcc_mnc: Option<MccMncScalar>,
    /// Default: 7 days before the request.
    pub from: Option<DateTime<Utc>>,
    /// Default: the request's time.
    pub to: Option<DateTime<Utc>>,
}

/// Session against CDR bytes, as `usageReconciliation` takes them.
#[derive(InputObject, Clone)]
pub struct ReconciliationFilterInput {
    /// First UTC day, inclusive.
    pub from: Date,
    /// Last UTC day, inclusive.
    pub to: Date,
    pub iccid: Option<IccidScalar>,
    pub customer_id: Option<ID>,
    /// Only the SIM-days whose totals differ.
    pub only_differences: Option<bool>,
}

/// What to export: the part matching the kind (the filter of its query). Parts of other kinds
/// are refused, naming them.
#[derive(InputObject, Clone, Default)]
pub struct ExportFilterInput {
    /// A platform admin names the tenant; everyone else exports their own.
    pub tenant_id: Option<ID>,
    /// `SIM_INVENTORY`.
    pub sims: Option<SimFilterInput>,
    /// `DEVICES`.
    pub devices: Option<DeviceFilterInput>,
    /// `AUDIT_LOG`.
    pub audit: Option<AuditFilterInput>,
    /// `SESSION_HISTORY` (required there).
    pub session_history: Option<SessionHistoryFilterInput>,
    /// `CUSTOMER_BILLING`, `RATED_USAGE`, `INVOICE_LINES`: the billing period holding this day
    /// (default today).
    pub day: Option<Date>,
    /// `RATED_USAGE`: whose rating (default RETAIL; SUPPLIER for platform administrators).
    pub rate_card_kind: Option<crate::billing::RateCardKindGql>,
    /// `USAGE_ANALYTICS` (required there).
    pub analytics: Option<UsageAnalyticsInput>,
    /// `USAGE_RECONCILIATION` (required there).
    pub reconciliation: Option<ReconciliationFilterInput>,
}

impl ExportFilterInput {
    /// The parts given that `kind` does not take, as field names.
    fn foreign_parts(&self, kind: ExportKind) -> Vec<&'static str> {
        let given = [
            ("filter.sims", self.sims.is_some(), ExportKind::SimInventory),
            ("filter.devices", self.devices.is_some(), ExportKind::Devices),
            ("filter.audit", self.audit.is_some(), ExportKind::AuditLog),
            (
                "filter.sessionHistory",
                self.session_history.is_some(),
                ExportKind::SessionHistory,
            ),
            (
                "filter.analytics",
                self.analytics.is_some(),
                ExportKind::UsageAnalytics,
            ),
            (
                "filter.reconciliation",
                self.reconciliation.is_some(),
                ExportKind::UsageReconciliation,
            ),
        ];
        let mut foreign: Vec<&'static str> = given
            .iter()
            .filter(|(_, is, k)| *is && *k != kind)
            .map(|(n, _, _)| *n)
            .collect();
        if self.day.is_some()
            && !matches!(
                kind,
                ExportKind::CustomerBilling | ExportKind::RatedUsage | ExportKind::InvoiceLines
            )
        {
            foreign.push("filter.day");
        }
        if self.rate_card_kind.is_some() && kind != ExportKind::RatedUsage {
            foreign.push("filter.rateCardKind");
        }
        // A SIM's history is its tenant's: the ICCID says which.
        if self.tenant_id.is_some() && kind == ExportKind::SessionHistory {
            foreign.push("filter.tenantId");
        }
        foreign
    }

    /// Fills in the defaults that depend on when it was asked, so the job reads what the
    /// requester meant whenever it runs.
    fn settle(&mut self, kind: ExportKind, now: DateTime<Utc>) {
        if matches!(
            kind,
            ExportKind::CustomerBilling | ExportKind::RatedUsage | ExportKind::InvoiceLines
        ) && self.day.is_none()
        {
            self.day = Some(Date(now.date_naive()));
        }
        if let Some(s) = &mut self.session_history {
            s.to.get_or_insert(now);
            s.from.get_or_insert(now - Duration::days(7));
        }
    }
}

/// The domain request of `kind` with `filter`; refused naming the field when a part is missing
/// or belongs to another kind.
pub fn export_request(kind: ExportKind, filter: &ExportFilterInput) -> async_graphql::Result<ExportRequest> {
    if let Some(part) = filter.foreign_parts(kind).first() {
        return Err(to_gql(Error::invalid(
            *part,
            format!("does not apply to a {kind} export; give only the part of its kind"),
        )));
    }
    let tenant = parse_tenant(filter.tenant_id.as_ref())?;
    let missing = |field: &str| to_gql(Error::invalid(field, format!("is required for a {kind} export")));
    let day = || {
        filter
            .day
            .as_ref()
            .map(|d| d.0)
            .ok_or_else(|| missing("filter.day"))
    };
    Ok(match kind {
        ExportKind::SimInventory => ExportRequest::SimInventory {
            tenant,
            filter: filter.sims.clone().unwrap_or_default().parse()?,
        },
        ExportKind::Devices => ExportRequest::Devices {
            tenant,
            filter: filter.devices.clone().unwrap_or_default().parse()?,
        },
        ExportKind::AuditLog => ExportRequest::AuditLog {
            tenant,
            query: filter.audit.clone().unwrap_or_default().parse(0, None)?,
        },
        ExportKind::SessionHistory => {
            let s = filter
                .session_history
                .as_ref()
                .ok_or_else(|| missing("filter.sessionHistory"))?;
            let (Some(from), Some(to)) = (s.from, s.to) else {
                return Err(missing("filter.sessionHistory.from"));
            };
            ExportRequest::SessionHistory {
                iccid: s.iccid.0.clone(),
                query: ioto_domain::ports::HistoryQuery {
                    mcc_mnc: s.mcc_mnc.as_ref().map(|n| n.0.clone()),
                    from,
                    to,
                    before: None,
                    limit: 0,
                },
            }
        }
        ExportKind::UsageReconciliation => {
            let r = filter
                .reconciliation
                .as_ref()
                .ok_or_else(|| missing("filter.reconciliation"))?;
            ExportRequest::UsageReconciliation {
                tenant,
                query: ioto_domain::ports::ReconciliationQuery {
                    from: r.from.0,
                    to: r.to.0,
                    iccid: r.iccid.as_ref().map(|i| i.0.clone()),
                    customer: r
                        .customer_id
                        .as_ref()
                        .map(|c| ioto_domain::CustomerId::parse(c, "filter.reconciliation.customerId"))
                        .transpose()
                        .map_err(to_gql)?,
                    only_differences: r.only_differences.unwrap_or(false),
                    after: None,
                    limit: 0,
                },
            }
        }
        ExportKind::CustomerBilling => ExportRequest::CustomerBilling { tenant, day: day()? },
        ExportKind::RatedUsage => ExportRequest::RatedUsage {
            tenant,
            kind: filter
                .rate_card_kind
                .map_or(ioto_domain::billing::rate_card::RateCardKind::Retail, Into::into),
            day: day()?,
        },
        ExportKind::InvoiceLines => ExportRequest::InvoiceLines {
            tenant: tenant.ok_or_else(|| missing("filter.tenantId"))?,
            day: day()?,
        },
        ExportKind::UsageAnalytics => ExportRequest::UsageAnalytics {
            tenant,
            query: filter
                .analytics
                .clone()
                .ok_or_else(|| missing("filter.analytics"))?
                .parse()?,
        },
    })
}

/// The request a stored job was made with (its filter parsed again through the input types).
pub fn stored_request(job: &ExportJob) -> ioto_domain::Result<ExportRequest> {
    let value = async_graphql::Value::from_json(job.filter.clone()).map_err(|e| {
        Error::Internal(format!(
            "export job {} has a filter that is not JSON: {e}",
            job.id
        ))
    })?;
    let filter = <ExportFilterInput as async_graphql::InputType>::parse(Some(value)).map_err(|e| {
        Error::Internal(format!(
            "export job {} has a filter this server cannot read: {}",
            job.id,
            e.into_server_error(async_graphql::Pos::default()).message
        ))
    })?;
    export_request(job.kind, &filter)
        .map_err(|e| Error::Internal(format!("export job {}: {}", job.id, e.message)))
}

pub struct ExportJobObject(pub ExportJob);

/// An export: queued, running, or its file ready to download until `expiresAt`.
#[Object(name = "ExportJob")]
impl ExportJobObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> ExportKindGql {
        self.0.kind.into()
    }
    async fn format(&self) -> ExportFormatGql {
        self.0.format.into()
    }
    async fn status(&self) -> ExportStatusGql {
        self.0.status.into()
    }
    /// The filter it was requested with (defaults filled in), as given to `requestExport`.
    async fn filter(&self) -> Json<serde_json::Value> {
        Json(self.0.filter.clone())
    }
    /// Rows written so far; all of them once completed.
    async fn rows(&self) -> BigInt {
        self.0.rows.into()
    }
    /// Bytes written so far; the file's size once completed.
    async fn bytes(&self) -> BigInt {
        self.0.bytes.into()
    }
    /// Rows it will hold, when known beforehand.
    async fn expected_rows(&self) -> Option<BigInt> {
        self.0.expected_rows.map(Into::into)
    }
    /// Estimated seconds left while running (from the pace so far and `expectedRows`).
    async fn eta_seconds(&self) -> Option<BigInt> {
        self.0.eta_seconds(Utc::now()).map(Into::into)
    }
    async fn file_name(&self) -> String {
        self.0.file_name()
    }
    /// SHA-256 of the file (hex), once completed.
    async fn sha256(&self) -> Option<&str> {
        self.0.sha256.as_deref()
    }
    /// Why it failed.
    async fn failure(&self) -> Option<&str> {
        self.0.failure.as_deref()
    }
    async fn requested_by(&self) -> &str {
        &self.0.created_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// When the file is deleted.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    /// A link that downloads the file (no token needed) for the next 5 minutes; ask again for a
    /// fresh one. Null until completed, and once expired.
    async fn download_url(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let now = Utc::now();
        if !self.0.downloadable(now) {
            return Ok(None);
        }
        let expires = (now + Duration::seconds(LINK_TTL_SECONDS)).min(self.0.expires_at.unwrap_or(now));
        Ok(Some(services(ctx).export_links.link(&self.0, expires)))
    }
}

/// A page of export jobs, newest first.
#[derive(SimpleObject)]
#[graphql(name = "ExportJobConnection")]
pub struct ExportJobConnection {
    pub nodes: Vec<ExportJobObject>,
    pub page_info: PageInfo,
}

fn job_id(id: &ID) -> async_graphql::Result<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| to_gql(Error::invalid("id", "is not an export job id")))
}

/// Where an export stands (the `exportJobProgress` subscription).
pub struct ExportJobProgressObject(pub ioto_domain::events::ExportJobProgress);

#[Object(name = "ExportJobProgress")]
impl ExportJobProgressObject {
    async fn job_id(&self) -> ID {
        ID(self.0.job_id.to_string())
    }
    async fn status(&self) -> ExportStatusGql {
        self.0.status.into()
    }
    async fn rows(&self) -> BigInt {
        self.0.rows.into()
    }
    async fn bytes(&self) -> BigInt {
        self.0.bytes.into()
    }
    async fn expected_rows(&self) -> Option<BigInt> {
        self.0.expected_rows.map(Into::into)
    }
    async fn eta_seconds(&self) -> Option<BigInt> {
        self.0.eta_seconds.map(Into::into)
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}
