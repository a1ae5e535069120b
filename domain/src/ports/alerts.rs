//! Alert rules, their alerts and silences. Alerts are written with a version check (two
//! evaluations racing write once) and one open alert per rule and subject is kept by the store's
//! unique index; announcements are claimed and written in one transaction with the
//! notifications they produce.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::alert::lifecycle::{Acknowledgement, Alert, AlertState, AlertWrite};
use crate::alert::{AlertRule, Severity, Silence};
use crate::fleet::query::Cursor;
use crate::forecast::{AnomalyRecord, StoredForecast};
use crate::notify::Notification;
use crate::quota_pool::QuotaPool;
use crate::{CustomerId, Result, Scope, SimId, TenantId};

/// Which alerts to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertQuery {
    pub tenant_id: Option<TenantId>,
    pub states: Vec<AlertState>,
    pub severities: Vec<Severity>,
    pub rule_id: Option<Uuid>,
    pub sim_id: Option<SimId>,
    pub customer_id: Option<CustomerId>,
    /// Started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    pub to: Option<DateTime<Utc>>,
}

/// How many alerts are open, by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenCount {
    pub severity: Severity,
    pub firing: u64,
    pub pending: u64,
}

/// A quota pool as a forecast rule sees it: with its latest forecast when that has the pool's
/// limit run out by the day asked.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolForecast {
    pub pool: QuotaPool,
    pub running_out: Option<StoredForecast>,
}

#[async_trait]
pub trait AlertStore: Send + Sync + 'static {
    async fn alert_rules(&self, scope: Scope, tenant: TenantId) -> Result<Vec<AlertRule>>;
    async fn alert_rule(&self, scope: Scope, id: Uuid) -> Result<Option<AlertRule>>;
    /// Stores a new rule; refused, naming the limit, when the tenant has `max` already, or
    /// naming `name` when another rule of the tenant has it.
    async fn insert_alert_rule(&self, scope: Scope, rule: &AlertRule, max: u64) -> Result<()>;
    /// Replaces a rule where its stored version is `rule.version - 1`.
    async fn update_alert_rule(&self, scope: Scope, rule: &AlertRule) -> Result<()>;
    /// Deletes a rule with its alerts; `false` when there was none.
    async fn delete_alert_rule(&self, scope: Scope, id: Uuid) -> Result<bool>;
    /// The enabled rules of every tenant (the evaluator's view).
    async fn enabled_alert_rules(&self) -> Result<Vec<AlertRule>>;

    /// The current alert of each of these subjects under `rule` (every subject when `None`):
    /// its open one, or else its last one when that resolved at or after `reopen_since`.
    async fn current_alerts(
        &self,
        rule: Uuid,
        subjects: Option<&[String]>,
        reopen_since: DateTime<Utc>,
    ) -> Result<Vec<Alert>>;
    /// Applies the writes, each checked (an insert where no open alert of its rule and subject
    /// exists, an update or delete where the version is the one read). Returns the ids of the
    /// alerts whose write applied.
    async fn write_alerts(&self, writes: &[AlertWrite]) -> Result<Vec<Uuid>>;
    /// Announces the alerts whose time to be told of came (up to `limit`), grouped per rule, as
    /// [`crate::alert::lifecycle::announce`] plans it: the notifications and the alerts' new
    /// standing written in one transaction, claimed so that two servers never tell twice.
    /// Returns the notifications written.
    async fn announce_alerts(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<Notification>>;

    async fn alerts(
        &self,
        scope: Scope,
        query: &AlertQuery,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<Alert>>;
    async fn alert(&self, scope: Scope, id: Uuid) -> Result<Option<Alert>>;
    /// Records an acknowledgement of an open alert (no more reminders); `false` when the alert
    /// is not open or was acknowledged already.
    async fn acknowledge_alert(&self, scope: Scope, id: Uuid, ack: &Acknowledgement) -> Result<bool>;
    async fn open_alert_counts(
        &self,
        scope: Scope,
        tenant: TenantId,
        customer: Option<CustomerId>,
    ) -> Result<Vec<OpenCount>>;

    /// The tenant's silences that have not ended at `now` (all of them when `ended` is set).
    async fn silences(
        &self,
        scope: Scope,
        tenant: TenantId,
        now: DateTime<Utc>,
        ended: bool,
    ) -> Result<Vec<Silence>>;
    async fn insert_silence(&self, scope: Scope, silence: &Silence) -> Result<()>;
    /// Ends a silence at `now`; `false` when it had ended or does not exist.
    async fn end_silence(&self, scope: Scope, id: Uuid, now: DateTime<Utc>) -> Result<bool>;
    /// The latest forecasts of `tenant`'s SIMs whose quota runs out by `by` (the likely day),
    /// and those of the SIMs `also` whatever they say (alerts open on them may clear); at most
    /// `limit` of the first kind.
    async fn sim_quota_forecasts(
        &self,
        tenant: TenantId,
        by: NaiveDate,
        also: &[SimId],
        limit: u64,
    ) -> Result<Vec<StoredForecast>>;
    /// Every quota pool of `tenant` (a tenant has at most
    /// [`crate::quota_pool::MAX_POOLS_PER_TENANT`]), each with its latest forecast when that has
    /// the pool's limit run out by `by` (the likely day): a pool without one, or with a forecast
    /// that says the limit lasts, comes without (alerts open on it may clear).
    async fn pool_quota_forecasts(&self, tenant: TenantId, by: NaiveDate) -> Result<Vec<PoolForecast>>;
    /// The anomalies of `tenant` found for days from `from` on, whatever people decided about
    /// them, newest day first, then highest score; at most `limit`.
    async fn anomalies_from(
        &self,
        tenant: TenantId,
        from: NaiveDate,
        limit: u64,
    ) -> Result<Vec<AnomalyRecord>>;
}
