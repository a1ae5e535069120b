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
mod import;
mod pools;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ioto_domain::fleet::bulk::MAX_BULK_ROWS;
use ioto_domain::fleet::query::{sim_cursor, Cursor, Page, SimFilter, SimSort};
use ioto_domain::fleet::Sim;
use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::quotas::{DefaultsApplied, QuotaStore};
use ioto_domain::ports::UsageReader;
use ioto_domain::quota::{
    check_tariff_plan, period_of, ActionState, QuotaDefault, QuotaRule, QuotaSource, QuotaStatus, SimQuota,
};
use ioto_domain::usage::Granularity;
use ioto_domain::{Actor, Error, Permission, Result, SimId, TenantId};
use uuid::Uuid;

use crate::fleet::FleetService;

pub use actions::ActionPass;
pub(crate) use evaluate::{by_sim, hourly_bytes};
pub use evaluate::{Evaluation, QuotaEvaluator, SWEEP_QUOTAS};
pub use import::{QuotaImportReport, QuotaImportRequest, MAX_REPORTED_ERRORS};
pub use pools::PoolSweep;

/// SIMs read, and given their quota, at a time when quotas are set by filter.
const BY_FILTER_PAGE: u64 = 10_000;

/// What setting or removing quotas by filter did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotasByFilter {
    /// SIMs the filter matched.
    pub matched: u64,
    /// Quotas set or removed.
    pub changed: u64,
}

/// Quotas: their store, the fleet they act on and the usage they are measured by. Cheap to
/// clone.
#[derive(Clone)]
pub struct QuotaService {
    store: Arc<dyn QuotaStore>,
    fleet: FleetService,
    usage: Arc<dyn UsageReader>,
    evaluator: QuotaEvaluator,
    /// Quota pools, once wired ([`QuotaService::with_pools`]).
    pools: Option<pools::PoolPorts>,
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
            pools: None,
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
            source: QuotaSource::Sim,
            set_by: actor.subject.clone(),
            created_at: now,
            updated_at: now,
        };
        let stored = self.store.put_sim_quota(actor.scope(), &quota).await?;
        // The new limit applies to what the SIM used already: a SIM past it is acted on now.
        self.evaluator.evaluate(std::slice::from_ref(iccid), now).await?;
        Ok(stored)
    }

    /// Removes the quota set on a SIM; `false` when it had none. A SIM whose tariff plan or
    /// tenant has a default follows that default again; a quota the SIM follows from a default
    /// is changed by changing the default (or overridden by setting one on the SIM).
    pub async fn remove_sim_quota(&self, actor: &Actor, iccid: &Iccid) -> Result<bool> {
        actor.require(Permission::ManageFleet, "remove quotas")?;
        let sim = self
            .fleet
            .sim(actor, iccid)
            .await?
            .ok_or_else(|| Error::not_found("SIM", iccid))?;
        if let Some(q) = self.store.sim_quota(actor.scope(), sim.id).await? {
            if q.source != QuotaSource::Sim {
                return Err(Error::invalid(
                    "iccid",
                    format!(
                        "the SIM follows {}; change or remove the default, or set a quota on the SIM to override it",
                        source_words(&q.source)
                    ),
                ));
            }
        }
        let gone = self.store.delete_sim_quota(actor.scope(), sim.id).await?;
        if gone {
            self.follow_defaults(sim.tenant_id, Utc::now()).await?;
        }
        Ok(gone)
    }

    /// Sets the quota on every SIM the filter matches (at most [`MAX_BULK_ROWS`]), replacing
    /// the ones they had and overriding their defaults. `expected`, when given, must be the
    /// number the filter matches: a fleet that changed since the caller counted is refused
    /// rather than changed more widely than meant.
    pub async fn set_sim_quotas(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        filter: &SimFilter,
        expected: Option<u64>,
        rule: QuotaRule,
    ) -> Result<QuotasByFilter> {
        actor.require(Permission::ManageFleet, "set quotas")?;
        rule.check()?;
        let tenant = actor.target_tenant(tenant)?;
        let matched = self.matching(actor, tenant, filter, expected).await?;
        let now = Utc::now();
        let mut changed = 0;
        let mut after = None;
        loop {
            let (sims, next) = self.page_of(actor, tenant, filter, after).await?;
            let quotas: Vec<SimQuota> = sims
                .iter()
                .map(|s| SimQuota {
                    id: Uuid::new_v4(),
                    tenant_id: tenant,
                    sim_id: s.id,
                    rule: rule.clone(),
                    source: QuotaSource::Sim,
                    set_by: actor.subject.clone(),
                    created_at: now,
                    updated_at: now,
                })
                .collect();
            changed += self.store.put_sim_quotas(actor.scope(), &quotas).await?;
            match next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        // The new limits apply to what the SIMs used already: those past them are acted on now.
        self.evaluate_tenant(tenant, now).await?;
        Ok(QuotasByFilter { matched, changed })
    }

    /// Removes the quotas set on the SIMs the filter matches (see [`Self::set_sim_quotas`] for
    /// `expected`); SIMs with a default follow it again.
    pub async fn remove_sim_quotas(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        filter: &SimFilter,
        expected: Option<u64>,
    ) -> Result<QuotasByFilter> {
        actor.require(Permission::ManageFleet, "remove quotas")?;
        let tenant = actor.target_tenant(tenant)?;
        let matched = self.matching(actor, tenant, filter, expected).await?;
        let mut changed = 0;
        let mut after = None;
        loop {
            let (sims, next) = self.page_of(actor, tenant, filter, after).await?;
            let ids: Vec<SimId> = sims.iter().map(|s| s.id).collect();
            changed += self.store.delete_sim_quotas(actor.scope(), &ids).await?;
            match next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        if changed > 0 {
            self.follow_defaults(tenant, Utc::now()).await?;
        }
        Ok(QuotasByFilter { matched, changed })
    }

    /// How many SIMs the filter matches, refused past [`MAX_BULK_ROWS`] or when not `expected`.
    async fn matching(
        &self,
        actor: &Actor,
        tenant: TenantId,
        filter: &SimFilter,
        expected: Option<u64>,
    ) -> Result<u64> {
        let matched = self.fleet.count_sims(actor, Some(tenant), filter).await?;
        if matched > MAX_BULK_ROWS as u64 {
            return Err(Error::invalid(
                "filter",
                format!("matches {matched} SIMs; at most {MAX_BULK_ROWS} per call — narrow the filter"),
            ));
        }
        if let Some(e) = expected.filter(|e| *e != matched) {
            return Err(Error::invalid(
                "expectedCount",
                format!("the filter matches {matched} SIMs now, not {e}; count again and confirm"),
            ));
        }
        Ok(matched)
    }

    /// A page of the SIMs the filter matches, with the cursor of the next when there is one.
    async fn page_of(
        &self,
        actor: &Actor,
        tenant: TenantId,
        filter: &SimFilter,
        after: Option<Cursor>,
    ) -> Result<(Vec<Sim>, Option<Cursor>)> {
        let page = Page::<SimSort> {
            after,
            ..Page::first(BY_FILTER_PAGE)
        };
        let sims = self
            .fleet
            .store()
            .list_sims(actor.scope(), tenant, filter, &page)
            .await?;
        let next = (sims.len() as u64 >= BY_FILTER_PAGE)
            .then(|| sims.last().map(|s| sim_cursor(s, SimSort::default())))
            .flatten();
        Ok((sims, next))
    }

    /// A tenant's quota defaults (the tenant's own first).
    pub async fn quota_defaults(&self, actor: &Actor, tenant: Option<TenantId>) -> Result<Vec<QuotaDefault>> {
        actor.require(Permission::ReadSims, "read quota defaults")?;
        let tenant = actor.target_tenant(tenant)?;
        self.store.quota_defaults(actor.scope(), tenant).await
    }

    /// Sets the tenant's default quota (`plan` none) or a tariff plan's; the SIMs without a
    /// quota of their own follow it at once, and what they used already is measured against it.
    pub async fn set_quota_default(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        plan: Option<String>,
        rule: QuotaRule,
    ) -> Result<(QuotaDefault, DefaultsApplied)> {
        actor.require(Permission::ManageFleet, "set quota defaults")?;
        if actor.customer_id.is_some() {
            return Err(Error::Forbidden("quota defaults are the tenant's".into()));
        }
        rule.check()?;
        if let Some(p) = &plan {
            check_tariff_plan(p)?;
        }
        let tenant = actor.target_tenant(tenant)?;
        let now = Utc::now();
        let stored = self
            .store
            .put_quota_default(
                actor.scope(),
                &QuotaDefault {
                    id: Uuid::new_v4(),
                    tenant_id: tenant,
                    tariff_plan: plan,
                    rule,
                    set_by: actor.subject.clone(),
                    created_at: now,
                    updated_at: now,
                },
            )
            .await?;
        let applied = self.follow_defaults(tenant, now).await?;
        Ok((stored, applied))
    }

    /// Removes a default; `false` when there was none. Its SIMs lose their quota, or follow the
    /// tenant's default when a plan's default is removed.
    pub async fn remove_quota_default(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        plan: Option<&str>,
    ) -> Result<bool> {
        actor.require(Permission::ManageFleet, "remove quota defaults")?;
        if actor.customer_id.is_some() {
            return Err(Error::Forbidden("quota defaults are the tenant's".into()));
        }
        let tenant = actor.target_tenant(tenant)?;
        let gone = self
            .store
            .delete_quota_default(actor.scope(), tenant, plan)
            .await?;
        if gone {
            self.follow_defaults(tenant, Utc::now()).await?;
        }
        Ok(gone)
    }

    /// Brings a tenant's SIMs in line with its defaults and, when that gave or changed quotas,
    /// measures what the SIMs used this period against them.
    async fn follow_defaults(&self, tenant: TenantId, now: DateTime<Utc>) -> Result<DefaultsApplied> {
        self.follow_defaults_since(tenant, None, now).await
    }

    /// [`Self::follow_defaults`] for the SIMs created or changed since `since` (all without it).
    async fn follow_defaults_since(
        &self,
        tenant: TenantId,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<DefaultsApplied> {
        let applied = self.store.apply_quota_defaults(tenant, since, now).await?;
        if applied.added + applied.changed > 0 {
            self.evaluate_tenant(tenant, now).await?;
        }
        Ok(applied)
    }

    /// Evaluates the quotas of a tenant's SIMs that carried traffic within the longest period
    /// (a month).
    async fn evaluate_tenant(&self, tenant: TenantId, now: DateTime<Utc>) -> Result<()> {
        self.evaluator
            .sweep_tenant(tenant, now - chrono::Duration::days(31), now)
            .await
            .map(|_| ())
    }

    /// The upkeep a sweep does beside evaluating: every tenant with defaults has its SIMs
    /// follow them (SIMs added, or moved to another plan: those created or changed since
    /// `since`, every SIM without it), and the resumes due at the start of a period are marked
    /// to be sent. Returns what following the defaults changed and the resumes marked.
    pub async fn upkeep(
        &self,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(DefaultsApplied, u64)> {
        let mut all = DefaultsApplied::default();
        for tenant in self.store.tenants_with_quota_defaults().await? {
            let a = self.follow_defaults_since(tenant, since, now).await?;
            all.added += a.added;
            all.changed += a.changed;
            all.removed += a.removed;
        }
        let resumes = self.store.mark_quota_resumes(now).await?;
        Ok((all, resumes))
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
        // The period before: whether the SIM it suspended was resumed.
        let (before, _) = period_of(target.time_zone, start - chrono::Duration::hours(1));
        let last_resume = self
            .store
            .quota_period(actor.scope(), target.quota.id, before)
            .await?
            .filter(|p| p.resume_state != ActionState::None)
            .map(|p| (p.resume_state, p.resume_reason));
        Ok(Some(QuotaStatus {
            quota: target.quota,
            period_start: start,
            period_end: end,
            used_bytes: used,
            stage,
            action_state,
            action_reason,
            last_resume,
        }))
    }
}

/// Where a quota comes from, in words.
pub fn source_words(source: &QuotaSource) -> &'static str {
    match source {
        QuotaSource::Sim => "a quota set on the SIM",
        QuotaSource::TariffPlan(_) => "the default of its tariff plan",
        QuotaSource::Tenant(_) => "the tenant's default",
    }
}
