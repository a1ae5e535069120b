//! Quota and plan advice, as the forecast pass computes it: written by a pass, replacing what the
//! last one wrote, and listed by saving.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::advice::{Advice, AdviceFilter};
use crate::fleet::query::Cursor;
use crate::forecast::Unwritten;
use crate::{Result, Scope, SimId, TenantId};

/// Advice. Scoped reads see the scope's tenant only and, in a sub-customer's scope, only the
/// advice of that sub-customer's SIMs (never a pool's).
#[async_trait]
pub trait AdviceStore: Send + Sync + 'static {
    /// Stores a pass's advice, each replacing its subject's of the same kind (upsert on tenant,
    /// subject and kind; the stored advice keeps its id). At most one advice per subject and
    /// kind in a call. Writes as the platform (the pass).
    async fn put_advice(&self, advice: &[Advice]) -> Result<()>;
    /// Removes the tenant's advice computed before `before` (of `which` subjects: the groups'
    /// are its pools'): what the previous pass advised and this one did not.
    async fn delete_advice_before(
        &self,
        tenant: TenantId,
        before: DateTime<Utc>,
        which: Unwritten,
    ) -> Result<u64>;
    /// Removes these SIMs' advice (of `tenant`) computed before `before`: what a pass that
    /// computed them again no longer advises, the rest of the tenant's advice left as it is.
    async fn delete_sims_advice_before(
        &self,
        tenant: TenantId,
        sims: &[SimId],
        before: DateTime<Utc>,
    ) -> Result<u64>;
    /// The tenant's advice the filter admits, by saving (highest first, none and nothing last:
    /// [`Advice::saving_rank`]) then id, after `after` (the cursor of the last one of the
    /// previous page), at most `limit`.
    async fn advice(
        &self,
        scope: Scope,
        tenant: TenantId,
        filter: &AdviceFilter,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<Advice>>;
}
