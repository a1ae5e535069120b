//! Data quotas: set and removed by fleet managers, shown on each SIM, evaluated as usage is
//! counted and acted on at the limit (see [`ioto_domain::quota`]).
//!
//! ```text
//! ingest counts a batch ─► SIMs with traffic ─► evaluate: their quotas, the period's usage
//!   from the hourly cube, the stage reached ─► advance (up only, notification in the same
//!   transaction) ─► at the limit with SUSPEND: the period's action PENDING
//! sweep every minute: SIMs active lately evaluated again (what a lost hint missed), pending
//!   actions claimed and sent as one bulk job per tenant, requested ones looked at again
//! ```

mod actions;
mod evaluate;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ioto_domain::fleet::Sim;
use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::quotas::QuotaStore;
use ioto_domain::ports::UsageReader;
use ioto_domain::quota::{period_of, ActionState, QuotaRule, QuotaStatus, SimQuota};
use ioto_domain::usage::Granularity;
use ioto_domain::{Actor, Error, Permission, Result};
use uuid::Uuid;

use crate::fleet::FleetService;

pub use actions::ActionPass;
pub(crate) use evaluate::{by_sim, hourly_bytes};
pub use evaluate::{Evaluation, QuotaEvaluator, SWEEP_QUOTAS};

/// Quotas: their store, the fleet they act on and the usage they are measured by. Cheap to
/// clone.
#[derive(Clone)]
pub struct QuotaService {
    store: Arc<dyn QuotaStore>,
    fleet: FleetService,
    usage: Arc<dyn UsageReader>,
    evaluator: QuotaEvaluator,
}

impl QuotaService {
    pub fn new(
        store: Arc<dyn QuotaStore>,
        fleet: FleetService,
        usage: Arc<dyn UsageReader>,
        evaluator: QuotaEvaluator,
    ) -> Self {
        Self {
            store,
            fleet,
            usage,
            evaluator,
        }
    }

    pub fn evaluator(&self) -> &QuotaEvaluator {
        &self.evaluator
    }

    /// Sets the quota of a SIM the caller manages, replacing the one it had.
    pub async fn set_sim_quota(&self, actor: &Actor, iccid: &Iccid, rule: QuotaRule) -> Result<SimQuota> {
        actor.require(Permission::ManageFleet, "set quotas")?;
        rule.check()?;
        let sim = self
            .fleet
            .sim(actor, iccid)
            .await?
            .ok_or_else(|| Error::not_found("SIM", iccid))?;
        let now = Utc::now();
        let quota = SimQuota {
            id: Uuid::new_v4(),
            tenant_id: sim.tenant_id,
            sim_id: sim.id,
            rule,
            set_by: actor.subject.clone(),
            created_at: now,
            updated_at: now,
        };
        let stored = self.store.put_sim_quota(actor.scope(), &quota).await?;
        // The new limit applies to what the SIM used already: a SIM past it is acted on now.
        self.evaluator.evaluate(std::slice::from_ref(iccid), now).await?;
        Ok(stored)
    }

    /// Removes a SIM's quota; `false` when it had none.
    pub async fn remove_sim_quota(&self, actor: &Actor, iccid: &Iccid) -> Result<bool> {
        actor.require(Permission::ManageFleet, "remove quotas")?;
        let sim = self
            .fleet
            .sim(actor, iccid)
            .await?
            .ok_or_else(|| Error::not_found("SIM", iccid))?;
        self.store.delete_sim_quota(actor.scope(), sim.id).await
    }

    /// A SIM's quota as it stands now: the period's usage read from the usage store, the stage
    /// and action as last evaluated. `None` when the SIM has no quota or the caller does not see
    /// it.
    pub async fn sim_quota(
        &self,
        actor: &Actor,
        iccid: &Iccid,
        at: DateTime<Utc>,
    ) -> Result<Option<QuotaStatus>> {
        let Some(sim) = self.fleet.sim(actor, iccid).await? else {
            return Ok(None);
        };
        self.quota_of(actor, &sim, at).await
    }

    /// [`Self::sim_quota`] of a SIM the caller has read already (as the API has, answering a
    /// field of it): its visibility was checked by that read, so it is not read again.
    pub async fn quota_of(&self, actor: &Actor, sim: &Sim, at: DateTime<Utc>) -> Result<Option<QuotaStatus>> {
        let iccid = &sim.iccid;
        let Some(target) = self
            .store
            .quotas_of(std::slice::from_ref(iccid))
            .await?
            .into_iter()
            .find(|t| t.quota.tenant_id == sim.tenant_id)
        else {
            return Ok(None);
        };
        let (start, end) = period_of(target.time_zone, at);
        let used: u64 = self
            .usage
            .sim_usage(sim.tenant_id, iccid, start, end, Granularity::Hour)
            .await?
            .iter()
            .map(|p| p.bytes_in + p.bytes_out)
            .sum();
        let period = self
            .store
            .quota_period(actor.scope(), target.quota.id, start)
            .await?;
        let (stage, action_state, action_reason) = match period {
            Some(p) => (p.stage, p.action_state, p.action_reason),
            None => (0, ActionState::None, None),
        };
        Ok(Some(QuotaStatus {
            quota: target.quota,
            period_start: start,
            period_end: end,
            used_bytes: used,
            stage,
            action_state,
            action_reason,
        }))
    }
}
