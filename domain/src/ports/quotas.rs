//! Data quotas: each SIM's limit, and its standing per period (the stage reached, the action at
//! the limit as it goes through the network).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use crate::identifiers::Iccid;
use crate::notify::Notification;
use crate::quota::{ActionState, QuotaDefault, QuotaPeriod, QuotaStep, SimQuota};
use crate::{Result, Scope, SimId, TenantId};

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

/// What bringing a tenant's SIMs in line with its quota defaults changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultsApplied {
    /// SIMs given a default quota they did not have.
    pub added: u64,
    /// SIMs whose default quota changed (the default changed, or the SIM moved to a plan with
    /// another default).
    pub changed: u64,
    /// SIMs whose default quota was taken away (no default applies to them any more).
    pub removed: u64,
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
    /// Removes the quota set on a SIM with its periods; `false` when it had none (a quota it
    /// follows from a default is not removed).
    async fn delete_sim_quota(&self, scope: Scope, sim: SimId) -> Result<bool>;
    /// Sets these quotas on their SIMs (of the scope's tenant), each replacing the one its SIM
    /// had, as [`QuotaStore::put_sim_quota`] does; in one transaction. Returns how many were set.
    async fn put_sim_quotas(&self, scope: Scope, quotas: &[SimQuota]) -> Result<u64>;
    /// Removes the quotas set on these SIMs (of the scope's tenant); quotas they follow from a
    /// default stay. Returns how many were removed.
    async fn delete_sim_quotas(&self, scope: Scope, sims: &[SimId]) -> Result<u64>;
    /// The quotas of these SIMs, in every tenant (the evaluator runs for all of them).
    async fn quotas_of(&self, iccids: &[Iccid]) -> Result<Vec<QuotaTarget>>;
    /// The quotas of SIMs that carried traffic since `since` (what a sweep evaluates again), of
    /// one tenant or of all.
    async fn quotas_active_since(
        &self,
        since: DateTime<Utc>,
        tenant: Option<TenantId>,
        limit: u64,
    ) -> Result<Vec<QuotaTarget>>;
    /// A tenant's quota defaults: its own (no tariff plan) and its tariff plans'.
    async fn quota_defaults(&self, scope: Scope, tenant: TenantId) -> Result<Vec<QuotaDefault>>;
    /// Sets a default (the tenant's, or a tariff plan's), replacing the one it had (whose id and
    /// creation time stay). Returns the default as stored.
    async fn put_quota_default(&self, scope: Scope, default: &QuotaDefault) -> Result<QuotaDefault>;
    /// Removes a default; `false` when there was none. The SIMs following it lose their quota
    /// (and take the tenant's default, if any, when the defaults are applied next).
    async fn delete_quota_default(&self, scope: Scope, tenant: TenantId, plan: Option<&str>) -> Result<bool>;
    /// Brings the quotas of a tenant's SIMs in line with its defaults: a SIM without a quota of
    /// its own follows its plan's default, else the tenant's, else has none. Quotas set on a
    /// SIM are left alone. With `changed_since`, only the SIMs created or changed since then
    /// are looked at (what a periodic pass needs after a full one: a SIM added, or moved to
    /// another plan); without it, every SIM (after a default changed). Safe to repeat, and on
    /// two servers at once (both write the same).
    async fn apply_quota_defaults(
        &self,
        tenant: TenantId,
        changed_since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<DefaultsApplied>;
    /// The tenants that have quota defaults (whose SIMs a sweep keeps in line).
    async fn tenants_with_quota_defaults(&self) -> Result<Vec<TenantId>>;
    /// Marks the resumes due at `now`: periods that ended, whose SIM the quota suspended, of a
    /// quota that resumes. Returns how many were marked (claimed and sent like suspensions).
    async fn mark_quota_resumes(&self, now: DateTime<Utc>) -> Result<u64>;
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
    /// Claims up to `limit` periods whose action (a suspension, or a resume) is `PENDING` (or
    /// `REQUESTED` with a lapsed claim, to look at the job again) until `until`: another server
    /// leaves them alone meanwhile.
    async fn claim_quota_actions(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<QuotaActionClaim>>;
    /// Records where a period's action (the suspension, or the resume) stands: its state, the
    /// bulk job carrying it and why it failed. Releases the claim.
    async fn record_quota_action(
        &self,
        quota: Uuid,
        start: DateTime<Utc>,
        step: QuotaStep,
        state: ActionState,
        bulk_job: Option<Uuid>,
        reason: Option<&str>,
    ) -> Result<()>;
}
