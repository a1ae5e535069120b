//! Quota pools: one data limit shared by a sub-customer's SIMs or by the SIMs carrying some
//! labels, kept by fleet managers, shown to whoever reads SIMs (a sub-customer's users see the
//! pools of their sub-customer), evaluated in the quota sweep and acted on at the limit (see
//! [`ioto_domain::quota_pool`]).
//!
//! ```text
//! sweep (every fleet.quota_sweep_seconds), a pool created or changed at once, and between
//! sweeps (every 10 s at most) the pools whose SIMs carried traffic since last evaluated:
//!   members from the SIM list (its filter, page by page; past 100,000 not evaluated, said on
//!   the period) ─► their period's usage from the hourly cube, summed ─► the stage reached
//!   ─► advance (up only, notification in the same transaction) ─► at the limit with SUSPEND:
//!   the period's action PENDING
//! then: resumes of ended periods marked ─► actions claimed (leased) ─► one bulk job per pool
//!   suspending its active SIMs (or resuming those that job suspended), by "data quota pool"
//!   ─► looked at by later sweeps until final: DONE, or FAILED naming how many and why
//! ```

mod actions;
mod evaluate;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use ioto_domain::fleet::Sim;
use ioto_domain::ports::quota_pools::{PoolTarget, QuotaPoolStore};
use ioto_domain::ports::FleetNotifier;
use ioto_domain::quota::{period_of, ActionState, QuotaRule};
use ioto_domain::quota_pool::{PoolMembers, PoolStatus, QuotaPool, MAX_POOLS_PER_TENANT, MAX_POOL_SIMS};
use ioto_domain::{Actor, Error, Permission, Result, Role, Scope, TenantId};
use uuid::Uuid;

use super::QuotaService;

pub use evaluate::PoolSweep;

/// The ports pools work through: their store, and where their notifications are told (as the
/// quota evaluator tells a SIM's).
#[derive(Clone)]
pub(crate) struct PoolPorts {
    store: Arc<dyn QuotaPoolStore>,
    notifier: Arc<dyn FleetNotifier>,
    /// Woken when a notification was written, when this process sends deliveries.
    delivery_wakeup: Option<Arc<tokio::sync::Notify>>,
}

/// Who evaluates pools and sends their actions, as bulk jobs and their audit entries name it.
fn pool_actor(tenant: TenantId) -> Actor {
    Actor {
        user_id: None,
        subject: "data quota pool".to_owned(),
        tenant_id: tenant,
        role: Role::TenantAdmin,
        customer_id: None,
        issued_at: None,
        api_key: None,
        session_id: None,
    }
}

/// Whether the caller sees the pool: a sub-customer's users only their sub-customer's.
fn sees(actor: &Actor, pool: &QuotaPool) -> bool {
    actor.sees_tenant(pool.tenant_id)
        && actor
            .customer_id
            .is_none_or(|c| pool.members.customer() == Some(c))
}

impl QuotaService {
    /// Pools through `store`, their notifications told through `notifier` (and `delivery_wakeup`
    /// woken, when this process sends deliveries). Without it, pool calls fail and sweeps pass
    /// pools over.
    pub fn with_pools(
        mut self,
        store: Arc<dyn QuotaPoolStore>,
        notifier: Arc<dyn FleetNotifier>,
        delivery_wakeup: Option<Arc<tokio::sync::Notify>>,
    ) -> Self {
        self.pools = Some(PoolPorts {
            store,
            notifier,
            delivery_wakeup,
        });
        self
    }

    fn pool_ports(&self) -> Result<&PoolPorts> {
        self.pools
            .as_ref()
            .ok_or_else(|| Error::Internal("quota pools are not wired to a store".into()))
    }

    /// Pools are read by whoever reads SIMs; a sub-customer's users only where the tenant shares
    /// SIMs with them.
    async fn read_pools(&self, actor: &Actor) -> Result<()> {
        actor.require(Permission::ReadSims, "read quota pools")?;
        if actor.customer_id.is_some() && !self.fleet.sees_sims(actor).await? {
            return Err(Error::forbidden("read quota pools"));
        }
        Ok(())
    }

    /// Pools are kept by the tenant's fleet managers, not by its sub-customers' users.
    fn manage_pools(actor: &Actor, action: &str) -> Result<()> {
        actor.require(Permission::ManageFleet, action)?;
        if actor.customer_id.is_some() {
            return Err(Error::Forbidden("quota pools are the tenant's to keep".into()));
        }
        Ok(())
    }

    /// A tenant's pools the caller sees, by name.
    pub async fn quota_pools(&self, actor: &Actor, tenant: Option<TenantId>) -> Result<Vec<QuotaPool>> {
        self.read_pools(actor).await?;
        let tenant = actor.target_tenant(tenant)?;
        let mut pools = self.pool_ports()?.store.pools(actor.scope(), tenant).await?;
        pools.retain(|p| sees(actor, p));
        Ok(pools)
    }

    /// A pool by id; `None` when there is none the caller sees.
    pub async fn quota_pool(&self, actor: &Actor, id: Uuid) -> Result<Option<QuotaPool>> {
        self.read_pools(actor).await?;
        let pool = self.pool_ports()?.store.pool(actor.scope(), id).await?;
        Ok(pool.filter(|p| sees(actor, p)))
    }

    /// The pools a SIM the caller has read already counts toward (its visibility was checked by
    /// that read): one read of its tenant's pools.
    pub async fn pools_of_sim(&self, actor: &Actor, sim: &Sim) -> Result<Vec<QuotaPool>> {
        self.read_pools(actor).await?;
        let mut pools = self
            .pool_ports()?
            .store
            .pools(actor.scope(), sim.tenant_id)
            .await?;
        pools.retain(|p| sees(actor, p) && p.members.matches(sim));
        Ok(pools)
    }

    /// Creates a pool (at most [`MAX_POOLS_PER_TENANT`] per tenant) and measures what its
    /// members used this period against it at once: a pool past its limit is acted on at the
    /// next sweep.
    pub async fn create_quota_pool(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        name: String,
        members: PoolMembers,
        rule: QuotaRule,
    ) -> Result<QuotaPool> {
        Self::manage_pools(actor, "create quota pools")?;
        let ports = self.pool_ports()?;
        let tenant = actor.target_tenant(tenant)?;
        let now = Utc::now();
        let pool = QuotaPool {
            id: Uuid::new_v4(),
            tenant_id: tenant,
            name: name.trim().to_owned(),
            members,
            rule,
            set_by: actor.subject.clone(),
            created_at: now,
            updated_at: now,
        };
        pool.check()?;
        self.check_members(actor, tenant, &pool.members).await?;
        ports
            .store
            .insert_pool(actor.scope(), &pool, MAX_POOLS_PER_TENANT)
            .await?;
        self.evaluate_pool_now(ports, &pool, now).await?;
        Ok(pool)
    }

    /// Replaces a pool's name, members and rule; the period in progress is measured against
    /// them at once (its stage only moves up: a higher limit does not take back a warning).
    pub async fn update_quota_pool(
        &self,
        actor: &Actor,
        id: Uuid,
        name: String,
        members: PoolMembers,
        rule: QuotaRule,
    ) -> Result<QuotaPool> {
        Self::manage_pools(actor, "change quota pools")?;
        let ports = self.pool_ports()?;
        let mut pool = ports
            .store
            .pool(actor.scope(), id)
            .await?
            .ok_or_else(|| Error::not_found("quota pool", id))?;
        let now = Utc::now();
        pool.name = name.trim().to_owned();
        pool.members = members;
        pool.rule = rule;
        pool.set_by = actor.subject.clone();
        pool.updated_at = now;
        pool.check()?;
        self.check_members(actor, pool.tenant_id, &pool.members).await?;
        ports.store.update_pool(actor.scope(), &pool).await?;
        self.evaluate_pool_now(ports, &pool, now).await?;
        Ok(pool)
    }

    /// Deletes a pool with its periods; `false` when there was none the caller sees. SIMs it
    /// suspended stay as they are.
    pub async fn delete_quota_pool(&self, actor: &Actor, id: Uuid) -> Result<bool> {
        Self::manage_pools(actor, "delete quota pools")?;
        self.pool_ports()?.store.delete_pool(actor.scope(), id).await
    }

    /// Checks that a named sub-customer is the tenant's (another tenant's is refused as unknown)
    /// and that the members are few enough to be counted.
    async fn check_members(&self, actor: &Actor, tenant: TenantId, members: &PoolMembers) -> Result<()> {
        let field = match members {
            PoolMembers::Customer(c) => {
                let found = self.fleet.store().customers_by_id(actor.scope(), &[*c]).await?;
                if !found.iter().any(|x| x.tenant_id == tenant) {
                    return Err(Error::invalid(
                        "customerId",
                        format!("no sub-customer {} in this tenant", c.0),
                    ));
                }
                "customerId"
            }
            PoolMembers::Labels(_) => "labels",
        };
        let count = self
            .fleet
            .store()
            .count_sims(Scope::tenant(tenant), tenant, &members.filter())
            .await?;
        if count > MAX_POOL_SIMS {
            return Err(Error::invalid(
                field,
                format!("selects {count} SIMs; a pool counts at most {MAX_POOL_SIMS}"),
            ));
        }
        Ok(())
    }

    /// How many SIMs count toward the pool now, as the caller sees them.
    pub async fn pool_sim_count(&self, actor: &Actor, pool: &QuotaPool) -> Result<u64> {
        self.fleet
            .count_sims(actor, Some(pool.tenant_id), &pool.members.filter())
            .await
    }

    /// A pool as it stands now: its period's usage, member count, stage and action as last
    /// evaluated (within a sweep), and the resume of the period before.
    pub async fn pool_status(
        &self,
        actor: &Actor,
        pool: &QuotaPool,
        at: DateTime<Utc>,
    ) -> Result<PoolStatus> {
        let store = &self.pool_ports()?.store;
        let time_zone = self
            .fleet
            .store()
            .settings(actor.scope(), pool.tenant_id)
            .await?
            .time_zone;
        let (start, end) = period_of(time_zone, at);
        let period = store.pool_period(actor.scope(), pool.id, start).await?;
        // The period before: whether the SIMs it suspended were resumed.
        let (before, _) = period_of(time_zone, start - Duration::hours(1));
        let last_resume = store
            .pool_period(actor.scope(), pool.id, before)
            .await?
            .filter(|p| p.resume_state != ActionState::None)
            .map(|p| (p.resume_state, p.resume_reason));
        let status = match period {
            Some(p) => PoolStatus {
                pool: pool.clone(),
                period_start: start,
                period_end: end,
                used_bytes: p.used_bytes,
                sims: p.sims,
                stage: p.stage,
                action_state: p.action_state,
                action_reason: p.action_reason,
                evaluated_at: Some(p.evaluated_at),
                last_resume,
            },
            None => PoolStatus {
                pool: pool.clone(),
                period_start: start,
                period_end: end,
                used_bytes: 0,
                sims: 0,
                stage: 0,
                action_state: ActionState::None,
                action_reason: None,
                evaluated_at: None,
                last_resume,
            },
        };
        Ok(status)
    }

    /// Evaluates a pool just created or changed, in its tenant's time zone.
    async fn evaluate_pool_now(&self, ports: &PoolPorts, pool: &QuotaPool, now: DateTime<Utc>) -> Result<()> {
        let time_zone = self
            .fleet
            .store()
            .settings(Scope::tenant(pool.tenant_id), pool.tenant_id)
            .await?
            .time_zone;
        // What was counted is read as counted.
        self.usage.settle().await?;
        let target = PoolTarget {
            pool: pool.clone(),
            time_zone,
        };
        self.evaluate_pool(ports, &target, now).await.map(|_| ())
    }
}
