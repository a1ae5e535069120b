//! Fleet types shared by SIMs and devices: labels, effects, audit entries, schedules, imports
//! and filter inputs.

use async_graphql::{InputObject, Json, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ioto_domain::events::SimStateChanged;
use ioto_domain::fleet::audit::{AuditEntry, AuditQuery, NewAuditEntry};
use ioto_domain::fleet::import::{ImportReport, RowError};
use ioto_domain::fleet::labels::{LabelSuggestion, Labels};
use ioto_domain::fleet::query::{
    parse_digit_prefix, parse_msisdn_prefix, CustomerFilter, DeviceFilter, LabelFilter, SimFilter,
};
use ioto_domain::fleet::schedule::ScheduledTransition;
use ioto_domain::{CustomerId, DeviceId, Error};

use crate::enums::{
    AuditActionKind, DeviceKindKind, DeviceStateKind, EntityKindKind, ScheduleStatusKind, SimStateKind,
    SimTypeKind,
};
use crate::error::to_gql;
use crate::scalars::IccidScalar;

/// A key/value label.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Label")]
pub struct LabelObject {
    pub key: String,
    pub value: String,
}

pub fn labels_of(labels: &Labels) -> Vec<LabelObject> {
    labels
        .iter()
        .map(|(k, v)| LabelObject {
            key: k.to_owned(),
            value: v.to_owned(),
        })
        .collect()
}

#[derive(InputObject, Clone)]
pub struct LabelInput {
    /// 1 to 63 letters, digits, '_', '-', '.' or '/'.
    pub key: String,
    /// Up to 255 characters. In filters: leave out to match any value of the key.
    pub value: Option<String>,
}

/// Labels from inputs; every label needs a value here.
pub fn labels_from(input: &[LabelInput]) -> ioto_domain::Result<Labels> {
    let mut labels = Labels::new();
    for l in input {
        labels.set(&l.key, l.value.as_deref().unwrap_or(""))?;
    }
    Ok(labels)
}

/// One effect of an operation on one SIM or device.
#[derive(SimpleObject)]
#[graphql(name = "Effect")]
pub struct EffectObject {
    pub entity_kind: EntityKindKind,
    pub entity_id: ID,
    /// ICCID of a SIM, IMEI of a device.
    pub reference: String,
    pub action: AuditActionKind,
    pub old_value: Json<serde_json::Value>,
    pub new_value: Json<serde_json::Value>,
}

pub fn effects(list: &[NewAuditEntry]) -> Vec<EffectObject> {
    list.iter()
        .map(|e| EffectObject {
            entity_kind: e.entity_kind.into(),
            entity_id: ID(e.entity_id.to_string()),
            reference: e.entity_ref.clone(),
            action: e.action.into(),
            old_value: Json(e.old_value.clone()),
            new_value: Json(e.new_value.clone()),
        })
        .collect()
}

/// One entry of the audit trail.
pub struct AuditEntryObject(pub AuditEntry);

#[Object(name = "AuditEntry")]
impl AuditEntryObject {
    /// Increasing: a later entry has a larger id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    async fn entity_kind(&self) -> EntityKindKind {
        self.0.entity_kind.into()
    }
    async fn entity_id(&self) -> ID {
        ID(self.0.entity_id.to_string())
    }
    /// ICCID of a SIM, IMEI of a device.
    async fn reference(&self) -> &str {
        &self.0.entity_ref
    }
    async fn action(&self) -> AuditActionKind {
        self.0.action.into()
    }
    /// Token subject of who made the change (a user id, a service name, or the scheduler).
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    async fn actor_user_id(&self) -> Option<ID> {
        self.0.actor_user_id.map(|u| ID(u.to_string()))
    }
    async fn old_value(&self) -> Json<serde_json::Value> {
        Json(self.0.old_value.clone())
    }
    async fn new_value(&self) -> Json<serde_json::Value> {
        Json(self.0.new_value.clone())
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
}

/// A SIM transition waiting for its time (or done, failed, cancelled).
pub struct ScheduledTransitionObject(pub ScheduledTransition);

#[Object(name = "ScheduledTransition")]
impl ScheduledTransitionObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn iccid(&self) -> IccidScalar {
        IccidScalar(self.0.iccid.clone())
    }
    async fn target_state(&self) -> SimStateKind {
        self.0.target.into()
    }
    async fn effective_at(&self) -> DateTime<Utc> {
        self.0.effective_at
    }
    async fn status(&self) -> ScheduleStatusKind {
        self.0.status.into()
    }
    async fn requested_by(&self) -> &str {
        &self.0.requested_by
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// Why it failed or who cancelled it.
    async fn outcome(&self) -> Option<&str> {
        self.0.outcome.as_deref()
    }
}

/// A problem with one row of an import file.
#[derive(SimpleObject)]
#[graphql(name = "ImportRowError")]
pub struct RowErrorObject {
    /// Line in the file; the header is line 1.
    pub row: i32,
    pub field: String,
    pub value: String,
    pub reason: String,
}

impl From<RowError> for RowErrorObject {
    fn from(e: RowError) -> Self {
        Self {
            row: i32::try_from(e.row).unwrap_or(i32::MAX),
            field: e.field,
            value: e.value,
            reason: e.reason,
        }
    }
}

/// The result of checking, and perhaps committing, an import file.
#[derive(SimpleObject)]
#[graphql(name = "ImportReport")]
pub struct ImportReportObject {
    /// Data rows in the file (blank lines not counted).
    pub rows: i32,
    /// Rows without errors.
    pub valid: i32,
    pub errors: Vec<RowErrorObject>,
    /// Whether SIMs were created.
    pub committed: bool,
    /// Set when committed; every created SIM's `IMPORTED` audit entry names it.
    pub import_id: Option<ID>,
    pub created: i32,
}

impl From<ImportReport> for ImportReportObject {
    fn from(r: ImportReport) -> Self {
        let n = |x: usize| i32::try_from(x).unwrap_or(i32::MAX);
        Self {
            rows: n(r.rows),
            valid: n(r.valid),
            committed: r.committed(),
            import_id: r.import_id.map(|i| ID(i.to_string())),
            created: i32::try_from(r.created).unwrap_or(i32::MAX),
            errors: r.errors.into_iter().map(Into::into).collect(),
        }
    }
}

/// A label key offered in dropdowns, with suggested values.
#[derive(SimpleObject)]
#[graphql(name = "LabelSuggestion")]
pub struct LabelSuggestionObject {
    pub key: String,
    pub values: Vec<String>,
    pub description: Option<String>,
}

impl From<LabelSuggestion> for LabelSuggestionObject {
    fn from(s: LabelSuggestion) -> Self {
        Self {
            key: s.key,
            values: s.values,
            description: s.description,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "FleetSettings")]
pub struct FleetSettingsObject {
    /// Whether sub-customer users see SIMs (and usage); when false they see devices only.
    pub customers_see_sims: bool,
    /// Whether sub-customer users see the cost of their usage.
    pub customers_see_costs: bool,
    /// Most SIMs an OPERATOR may change in one bulk job or `provisionSims` call (tenant and
    /// platform admins have no limit).
    pub operator_bulk_limit: i32,
    /// The tenant's time zone (IANA name): data quotas count its calendar months.
    pub time_zone: String,
    /// Whether every user signs in with a second factor.
    pub require_mfa: bool,
}

impl From<ioto_domain::fleet::FleetSettings> for FleetSettingsObject {
    fn from(s: ioto_domain::fleet::FleetSettings) -> Self {
        Self {
            customers_see_sims: s.customers_see_sims,
            customers_see_costs: s.customers_see_costs,
            operator_bulk_limit: i32::try_from(s.operator_bulk_limit).unwrap_or(i32::MAX),
            time_zone: s.time_zone.name().to_owned(),
            require_mfa: s.require_mfa,
        }
    }
}

/// A SIM changed state.
#[derive(SimpleObject)]
#[graphql(name = "SimStateChange")]
pub struct SimStateChangeObject {
    pub sim_id: ID,
    pub iccid: IccidScalar,
    pub customer_id: Option<ID>,
    pub from: SimStateKind,
    pub to: SimStateKind,
    pub actor: String,
    pub at: DateTime<Utc>,
}

impl From<SimStateChanged> for SimStateChangeObject {
    fn from(e: SimStateChanged) -> Self {
        Self {
            sim_id: ID(e.sim_id.to_string()),
            iccid: IccidScalar(e.iccid),
            customer_id: e.customer_id.map(|c| ID(c.to_string())),
            from: e.from.into(),
            to: e.to.into(),
            actor: e.actor,
            at: e.at,
        }
    }
}

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    /// Whether this page was asked for `after` a cursor (pages go forward only).
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// The cursor of a list ordered by creation time and id, newest first (bulk jobs,
/// notifications): `<microseconds>_<id>`.
pub fn time_id_cursor(at: DateTime<Utc>, id: uuid::Uuid) -> String {
    format!("{}_{}", at.timestamp_micros(), id)
}

/// Reads a [`time_id_cursor`] given as `after`.
pub fn parse_time_id_cursor(s: &str) -> async_graphql::Result<(DateTime<Utc>, uuid::Uuid)> {
    let bad = || to_gql(Error::invalid("after", "is not a cursor this list returned"));
    let (micros, id) = s.split_once('_').ok_or_else(bad)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(bad)?;
    Ok((at, uuid::Uuid::parse_str(id).map_err(|_| bad())?))
}

/// A page of audit entries, newest first.
#[derive(SimpleObject)]
pub struct AuditConnection {
    pub nodes: Vec<AuditEntryObject>,
    pub page_info: PageInfo,
}

fn customer_filter(id: Option<&ID>, unassigned: Option<bool>) -> ioto_domain::Result<Option<CustomerFilter>> {
    match (id, unassigned) {
        (Some(_), Some(true)) => Err(Error::invalid(
            "filter.unassigned",
            "cannot be combined with customerId",
        )),
        (Some(id), _) => Ok(Some(CustomerFilter::Is(CustomerId::parse(
            id,
            "filter.customerId",
        )?))),
        (None, Some(true)) => Ok(Some(CustomerFilter::Unassigned)),
        _ => Ok(None),
    }
}

pub(crate) fn label_filters(labels: &[LabelInput]) -> ioto_domain::Result<Vec<LabelFilter>> {
    labels
        .iter()
        .map(|l| {
            let key = ioto_domain::fleet::labels::parse_key(&l.key)?;
            let value = l
                .value
                .as_deref()
                .map(|v| ioto_domain::fleet::labels::parse_value(&key, v))
                .transpose()?;
            Ok(LabelFilter { key, value })
        })
        .collect()
}

fn search(s: Option<&String>, field: &str) -> ioto_domain::Result<Option<String>> {
    match s.map(|s| s.trim()) {
        Some(s) if s.chars().count() > 100 => Err(Error::invalid(field, "must be at most 100 characters")),
        Some("") | None => Ok(None),
        Some(s) => Ok(Some(s.to_owned())),
    }
}

/// Which SIMs a list or bulk operation takes. Every given condition must hold.
#[derive(InputObject, Default, Clone)]
#[graphql(name = "SimFilter")]
pub struct SimFilterInput {
    pub states: Option<Vec<SimStateKind>>,
    pub types: Option<Vec<SimTypeKind>>,
    /// SIMs of this sub-customer.
    pub customer_id: Option<ID>,
    /// Only SIMs held by the tenant itself (no sub-customer).
    pub unassigned: Option<bool>,
    /// Every label must be present (with the value, when given).
    pub labels: Option<Vec<LabelInput>>,
    /// Case-insensitive text found in any label key or value.
    pub label_search: Option<String>,
    /// MCC-MNC of the last network seen, e.g. "262-01".
    pub networks: Option<Vec<crate::scalars::MccMncScalar>>,
    pub iccid_prefix: Option<String>,
    /// With or without '+'.
    pub msisdn_prefix: Option<String>,
    pub last_activity_from: Option<DateTime<Utc>>,
    pub last_activity_to: Option<DateTime<Utc>>,
    pub device_id: Option<ID>,
    /// true: only SIMs in a device; false: only loose SIMs.
    pub bound: Option<bool>,
    /// Only SIMs with a data quota that used at least this many percent of it this period
    /// ("close to their limit": 80; 0: every SIM with a quota), 0–1000.
    pub quota_percent_at_least: Option<i32>,
    /// Only SIMs with a data quota that used less than this many percent of it this period,
    /// 1–1000.
    pub quota_percent_below: Option<i32>,
}

/// A quota percentage bound of the filter.
fn percent_bound(v: Option<i32>, field: &str, min: u32) -> ioto_domain::Result<Option<u32>> {
    v.map(|p| {
        u32::try_from(p)
            .ok()
            .filter(|p| (min..=ioto_domain::fleet::query::MAX_QUOTA_PERCENT).contains(p))
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    format!(
                        "{p} is not a percentage between {min} and {}",
                        ioto_domain::fleet::query::MAX_QUOTA_PERCENT
                    ),
                )
            })
    })
    .transpose()
}

impl SimFilterInput {
    pub fn parse(&self) -> async_graphql::Result<SimFilter> {
        let f = || -> ioto_domain::Result<SimFilter> {
            Ok(SimFilter {
                states: self.states.iter().flatten().map(|s| (*s).into()).collect(),
                types: self.types.iter().flatten().map(|s| (*s).into()).collect(),
                customer: customer_filter(self.customer_id.as_ref(), self.unassigned)?,
                labels: label_filters(self.labels.as_deref().unwrap_or_default())?,
                label_search: search(self.label_search.as_ref(), "filter.labelSearch")?,
                quiet_since: None,
                networks: self.networks.iter().flatten().map(|n| n.0.clone()).collect(),
                iccid_prefix: self
                    .iccid_prefix
                    .as_deref()
                    .map(|p| parse_digit_prefix(p, "filter.iccidPrefix"))
                    .transpose()?,
                msisdn_prefix: self
                    .msisdn_prefix
                    .as_deref()
                    .map(|p| parse_msisdn_prefix(p).map_err(|e| field_err("filter.msisdnPrefix", e)))
                    .transpose()?,
                last_activity_from: self.last_activity_from,
                last_activity_to: self.last_activity_to,
                device: self
                    .device_id
                    .as_ref()
                    .map(|d| DeviceId::parse(d, "filter.deviceId"))
                    .transpose()?,
                bound: self.bound,
                quota_percent: {
                    let at_least =
                        percent_bound(self.quota_percent_at_least, "filter.quotaPercentAtLeast", 0)?;
                    let below = percent_bound(self.quota_percent_below, "filter.quotaPercentBelow", 1)?;
                    if let (Some(a), Some(b)) = (at_least, below) {
                        if a >= b {
                            return Err(Error::invalid(
                                "filter.quotaPercentBelow",
                                format!("must be above quotaPercentAtLeast ({a})"),
                            ));
                        }
                    }
                    (at_least.is_some() || below.is_some()).then(|| {
                        ioto_domain::fleet::query::QuotaPercentFilter {
                            at_least: at_least.unwrap_or(0),
                            below,
                            at: chrono::Utc::now(),
                        }
                    })
                },
            })
        };
        f().map_err(to_gql)
    }
}

/// Which devices a list or bulk operation takes. Every given condition must hold.
#[derive(InputObject, Default, Clone)]
#[graphql(name = "DeviceFilter")]
pub struct DeviceFilterInput {
    pub states: Option<Vec<DeviceStateKind>>,
    pub kinds: Option<Vec<DeviceKindKind>>,
    pub customer_id: Option<ID>,
    pub unassigned: Option<bool>,
    pub labels: Option<Vec<LabelInput>>,
    pub label_search: Option<String>,
    pub imei_prefix: Option<String>,
    /// Case-insensitive part of the name.
    pub name_contains: Option<String>,
    pub last_activity_from: Option<DateTime<Utc>>,
    pub last_activity_to: Option<DateTime<Utc>>,
}

impl DeviceFilterInput {
    pub fn parse(&self) -> async_graphql::Result<DeviceFilter> {
        let f = || -> ioto_domain::Result<DeviceFilter> {
            Ok(DeviceFilter {
                states: self.states.iter().flatten().map(|s| (*s).into()).collect(),
                kinds: self.kinds.iter().flatten().map(|s| (*s).into()).collect(),
                customer: customer_filter(self.customer_id.as_ref(), self.unassigned)?,
                labels: label_filters(self.labels.as_deref().unwrap_or_default())?,
                label_search: search(self.label_search.as_ref(), "filter.labelSearch")?,
                imei_prefix: self
                    .imei_prefix
                    .as_deref()
                    .map(|p| parse_digit_prefix(p, "filter.imeiPrefix"))
                    .transpose()?,
                name_contains: search(self.name_contains.as_ref(), "filter.nameContains")?,
                last_activity_from: self.last_activity_from,
                last_activity_to: self.last_activity_to,
            })
        };
        f().map_err(to_gql)
    }
}

/// Which audit entries to list.
#[derive(InputObject, Default, Clone)]
#[graphql(name = "AuditFilter")]
pub struct AuditFilterInput {
    pub entity_kind: Option<EntityKindKind>,
    pub entity_id: Option<ID>,
    pub actions: Option<Vec<AuditActionKind>>,
    /// Token subject (user id or service name).
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl AuditFilterInput {
    pub fn parse(&self, limit: u64, before: Option<i64>) -> async_graphql::Result<AuditQuery> {
        Ok(AuditQuery {
            entity_kind: self.entity_kind.map(Into::into),
            entity_id: self
                .entity_id
                .as_ref()
                .map(|id| uuid::Uuid::parse_str(id.trim()))
                .transpose()
                .map_err(|_| {
                    to_gql(Error::invalid(
                        "filter.entityId",
                        "is not a valid id (expected a UUID)",
                    ))
                })?,
            actions: self.actions.iter().flatten().map(|a| (*a).into()).collect(),
            actor: self.actor.clone(),
            from: self.from,
            to: self.to,
            before,
            limit,
        })
    }
}

fn field_err(field: &str, e: Error) -> Error {
    match e {
        Error::InvalidInput { reason, .. } => Error::invalid(field, reason),
        other => other,
    }
}
