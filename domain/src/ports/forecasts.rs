//! Forecasts and anomalies: the latest forecast of each subject, the anomalies found with what
//! people decided about them, and the claims that keep two servers from passing one tenant at
//! once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::fleet::query::Cursor;
use crate::forecast::{
    AnomalyDecision, AnomalyFilter, AnomalyRecord, Dismissal, ForecastSubject, StoredForecast, Unwritten,
};
use crate::notify::Notification;
use crate::ports::advice::AdviceStore;
use crate::{Result, Scope, SimId, TenantId};

/// What storing a pass's anomalies did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnomaliesStored {
    /// The ids of the anomalies stored now (those found before are left as they are).
    pub new: Vec<Uuid>,
    /// The notifications written with them (high-severity ones), in the same transaction.
    pub notifications: Vec<Notification>,
}

/// Forecasts and anomalies. Scoped reads see the scope's tenant only and, in a sub-customer's
/// scope, only the anomalies of that sub-customer's SIMs (forecasts are filtered by the service:
/// a sub-customer's users read their SIMs' and their sub-customer's). The pass stores its advice
/// in the same store ([`AdviceStore`]).
#[async_trait]
pub trait ForecastStore: AdviceStore + Send + Sync + 'static {
    /// Stores these forecasts, each replacing its subject's (upsert on tenant, subject kind and
    /// subject id). Writes as the platform (the pass).
    async fn put_forecasts(&self, forecasts: &[StoredForecast]) -> Result<()>;
    /// Removes the tenant's forecasts computed before `before` (of `which` subjects): the
    /// subjects a pass no longer forecast (a SIM without usage in the window, a pool or
    /// sub-customer gone or without usage).
    async fn delete_forecasts_before(
        &self,
        tenant: TenantId,
        before: DateTime<Utc>,
        which: Unwritten,
    ) -> Result<u64>;
    /// A subject's forecast, when the scope sees its tenant.
    async fn forecast(
        &self,
        scope: Scope,
        tenant: TenantId,
        subject: ForecastSubject,
    ) -> Result<Option<StoredForecast>>;
    /// Stores new anomalies: one found before (same SIM, kind, day and value) is left as it is,
    /// so a pass run twice stores each once. A new anomaly with a notification
    /// ([`AnomalyRecord::notification`]: high severity) is stored with it, in the same transaction.
    async fn put_anomalies(&self, anomalies: &[AnomalyRecord]) -> Result<AnomaliesStored>;
    /// The tenant's anomalies the filter admits, by day (newest first), score (highest first) and
    /// id, after `after` (the cursor of the last one of the previous page), at most `limit`.
    async fn anomalies(
        &self,
        scope: Scope,
        tenant: TenantId,
        filter: &AnomalyFilter,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<AnomalyRecord>>;
    /// An anomaly by id, when the scope sees it.
    async fn anomaly(&self, scope: Scope, id: Uuid) -> Result<Option<AnomalyRecord>>;
    /// Records a decision about an anomaly (replacing an earlier one) and returns it as stored.
    /// `NotFound` when the scope does not see it (another tenant's, say).
    async fn decide_anomaly(
        &self,
        scope: Scope,
        id: Uuid,
        decision: &AnomalyDecision,
    ) -> Result<AnomalyRecord>;
    /// What the dismissed anomalies of these SIMs (of `tenant`) tell the detector, per SIM
    /// ([`AnomalyRecord::dismissal`]).
    async fn dismissals_of(&self, tenant: TenantId, sims: &[SimId]) -> Result<Vec<(SimId, Dismissal)>>;
    /// Claims the tenant's forecast pass until `until`, when no other server holds it (its claim
    /// lapsed at `now`) and — with `fresh_after` — its last pass finished before `fresh_after`.
    /// Returns whether this server holds it now.
    async fn claim_forecast_run(
        &self,
        tenant: TenantId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        fresh_after: Option<DateTime<Utc>>,
    ) -> Result<bool>;
    /// Releases the claim; with `finished_at`, records that the pass finished then, without,
    /// that it did not finish (a failed pass: none counts as the last one since).
    async fn end_forecast_run(&self, tenant: TenantId, finished_at: Option<DateTime<Utc>>) -> Result<()>;
    /// When the tenant's last pass finished, by any server, if no pass has failed or lapsed
    /// since (a claim that takes over a lapsed one voids it too); `None` otherwise or never. A
    /// server that remembers its own last pass tells by it whether another came between.
    async fn forecast_run_finished(&self, tenant: TenantId) -> Result<Option<DateTime<Utc>>>;
}
