//! Quota pools: each tenant's pools, and their standing per period (the shared usage, the stage
//! reached, the suspension of the pool's SIMs and their resume as they go through the network).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use crate::notify::Notification;
use crate::quota::{ActionState, QuotaStep};
use crate::quota_pool::{PoolPeriod, QuotaPool};
use crate::{Result, Scope, TenantId};

/// A pool as the evaluator needs it: with its tenant's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolTarget {
    pub pool: QuotaPool,
    pub time_zone: Tz,
}

/// A period whose action (a suspension, or a resume) is to be sent or looked at, claimed by one
/// server for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolActionClaim {
    pub target: PoolTarget,
    pub period: PoolPeriod,
}

/// Pools and their periods. A period's stage only moves up, in one conditional write that also
/// stores the notification telling of it (as [`crate::ports::QuotaStore`] does for a SIM's).
/// Scoped reads see the scope's tenant only and, for a sub-customer's scope, only the pools of
/// that sub-customer.
#[async_trait]
pub trait QuotaPoolStore: Send + Sync + 'static {
    /// A tenant's pools, by name.
    async fn pools(&self, scope: Scope, tenant: TenantId) -> Result<Vec<QuotaPool>>;
    /// A pool by id, when the scope sees it.
    async fn pool(&self, scope: Scope, id: Uuid) -> Result<Option<QuotaPool>>;
    /// Stores a new pool. Refused (`Conflict`, naming the limit) when its tenant has `max`
    /// already, and (`InvalidInput` on `name`) when another pool of the tenant has its name.
    async fn insert_pool(&self, scope: Scope, pool: &QuotaPool, max: u64) -> Result<()>;
    /// Replaces a pool's name, members, rule, `set_by` and `updated_at` (its id, creation time and
    /// periods stay: the period in progress is evaluated against the new rule from then on).
    /// `NotFound` when the scope does not see it; a name another pool has is refused on `name`.
    async fn update_pool(&self, scope: Scope, pool: &QuotaPool) -> Result<()>;
    /// Removes a pool with its periods; `false` when the scope saw none.
    async fn delete_pool(&self, scope: Scope, id: Uuid) -> Result<bool>;
    /// Every pool of every tenant, with its tenant's time zone (what a sweep evaluates).
    async fn all_pools(&self) -> Result<Vec<PoolTarget>>;
    /// A pool's standing in the period starting at `start`.
    async fn pool_period(&self, scope: Scope, pool: Uuid, start: DateTime<Utc>)
        -> Result<Option<PoolPeriod>>;
    /// Records what the pool's members used in `period` and how many they were (creating the
    /// period's row when new), and moves its stage up to `period.stage` when that is higher than
    /// the stored one, writing `note` (when given) and `period.action_state` in the same
    /// transaction. Returns whether the stage moved; when it did not, the member count and the
    /// evaluation time are written, the usage when it grew, and a refusal to evaluate recorded
    /// below the limit (a `FAILED` action without a bulk job) is cleared.
    async fn advance_pool(&self, period: &PoolPeriod, note: Option<&Notification>) -> Result<bool>;
    /// Claims up to `limit` periods whose action (a suspension, or a resume) is `PENDING` (or
    /// `REQUESTED` with a lapsed claim, to look at the job again) until `until`: another server
    /// leaves them alone meanwhile.
    async fn claim_pool_actions(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<PoolActionClaim>>;
    /// Records where a period's action (the suspension, or the resume) stands: its state, the
    /// bulk job carrying it and why it failed. Releases the claim.
    async fn record_pool_action(
        &self,
        pool: Uuid,
        start: DateTime<Utc>,
        step: QuotaStep,
        state: ActionState,
        bulk_job: Option<Uuid>,
        reason: Option<&str>,
    ) -> Result<()>;
    /// Marks the resumes due at `now`: periods that ended, whose suspension was sent as a bulk
    /// job (done, or failed for some SIMs), of a pool that resumes. Returns how many were marked
    /// (claimed and sent like suspensions).
    async fn mark_pool_resumes(&self, now: DateTime<Utc>) -> Result<u64>;
}
