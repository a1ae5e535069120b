//! Data quotas: each SIM's limit, and its standing per period (the stage reached, the action at
//! the limit as it goes through the network).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use crate::identifiers::Iccid;
use crate::notify::Notification;
use crate::quota::{ActionState, QuotaPeriod, SimQuota};
use crate::{Result, Scope, SimId};

/// A quota as the evaluator needs it: with its SIM's ICCID and its tenant's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaTarget {
    pub quota: SimQuota,
    pub iccid: Iccid,
    pub time_zone: Tz,
}

/// A period whose action at the limit is to be sent (claimed by one server for a while).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaActionClaim {
    pub target: QuotaTarget,
    pub period: QuotaPeriod,
}

/// Quotas and their periods. A period's stage only moves up, in one conditional write that also
/// stores the notification telling of it: evaluating the same usage twice, or on two servers at
/// once, moves it once and notifies once.
#[async_trait]
pub trait QuotaStore: Send + Sync + 'static {
    /// The quota of a SIM, if it has one.
    async fn sim_quota(&self, scope: Scope, sim: SimId) -> Result<Option<SimQuota>>;
    /// Sets a SIM's quota, replacing the one it had (whose id, creation time and periods stay:
    /// the period in progress is evaluated against the new rule from then on). Returns the
    /// quota as stored.
    async fn put_sim_quota(&self, scope: Scope, quota: &SimQuota) -> Result<SimQuota>;
    /// Removes a SIM's quota with its periods; `false` when it had none.
    async fn delete_sim_quota(&self, scope: Scope, sim: SimId) -> Result<bool>;
    /// The quotas of these SIMs, in every tenant (the evaluator runs for all of them).
    async fn quotas_of(&self, iccids: &[Iccid]) -> Result<Vec<QuotaTarget>>;
    /// The quotas of SIMs that carried traffic since `since` (what a sweep evaluates again).
    async fn quotas_active_since(&self, since: DateTime<Utc>, limit: u64) -> Result<Vec<QuotaTarget>>;
    /// A quota's standing in the period starting at `start`.
    async fn quota_period(
        &self,
        scope: Scope,
        quota: Uuid,
        start: DateTime<Utc>,
    ) -> Result<Option<QuotaPeriod>>;
    /// Records what the quota's SIM used in `period` (creating the period's row when new) and
    /// moves its stage up to `period.stage` when that is higher than the stored one, writing
    /// `note` (when given) and `period.action_state` in the same transaction. Returns whether
    /// the stage moved; when it did not, only the usage and the evaluation time are written.
    async fn advance_quota(&self, period: &QuotaPeriod, note: Option<&Notification>) -> Result<bool>;
    /// Claims up to `limit` periods whose action is `PENDING` (or `REQUESTED` with a lapsed
    /// claim, to look at the job again) until `until`: another server leaves them alone
    /// meanwhile.
    async fn claim_quota_actions(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<QuotaActionClaim>>;
    /// Records where a period's action stands: its state, the bulk job carrying it and why it
    /// failed. Releases the claim.
    async fn record_quota_action(
        &self,
        quota: Uuid,
        start: DateTime<Utc>,
        state: ActionState,
        bulk_job: Option<Uuid>,
        reason: Option<&str>,
    ) -> Result<()>;
}
