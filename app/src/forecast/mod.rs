//! Forecasts and anomalies: a scheduled pass computes them from the usage cubes and stores them
//! (see [`ioto_domain::forecast`]); reading them is a lookup, by whoever reads SIMs; fleet
//! managers dismiss anomalies as expected behaviour (which the detector takes into account from
//! the next pass on) or confirm them.
//!
//! ```text
//! every fleet.forecast_minutes (and once 30 s after start), per tenant, claimed with a lease:
//!   SIMs, a page of 5,000 at a time ─► daily bytes over 90 days and today (USAGE_DAILY)
//!     ─► sums per sub-customer, tenant and quota pool; per tariff plan: a sample of
//!        established SIMs' series (weekly shape) and yesterday's and today's bytes (statistics)
//!   SIMs with usage, 5,000 at a time ─► bytes and networks per day (USAGE_DAILY by network),
//!     sessions per day (SESSIONS_HOURLY by day), quotas, dismissed anomalies
//!     ─► on the blocking pool: forecast of 31 days (the plan's shape for new SIMs), read
//!        against the quota; anomalies of yesterday and today
//!     ─► forecasts upserted (1,000 a call); anomalies inserted once per SIM, kind, day and
//!        value, the high-severity ones with their ANOMALY notification
//!   groups ─► forecasts of the sums (pools read against their limit); the tenant and its
//!     sub-customers also hour by hour: 28 days and today's hours (USAGE_HOURLY by
//!     sub-customer) ─► the next 48 hours and today's projected total (hourly.rs)
//!   forecasts not written again (subjects gone, SIMs without usage) removed
//!
//! with a retail card (advice.rs): the second read also takes each SIM's bytes per network
//!     ─► priced per day at each plan the card offers: plan advice; at its own plan: the
//!        projected cost of its forecast and its share of the groups' costs
//!   every SIM with usage and every pool ─► quota advice from its months (RAISE, LOWER, SET)
//!   advice upserted per chunk (one per SIM or pool and kind); what the pass did not advise
//!   again removed at the end
//! ```

mod advice;
mod compute;
mod hourly;
mod memory;
mod pass;

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use ioto_domain::advice::{Advice, AdviceFilter, AdviceSubject};
use ioto_domain::events::FleetEvent;
use ioto_domain::fleet::query::Cursor;
use ioto_domain::fleet::Sim;
use ioto_domain::forecast::{
    AnomalyDecision, AnomalyFilter, AnomalyRecord, AnomalyStatus, ForecastSubject, StoredForecast,
};
use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::billing::RateCardStore;
use ioto_domain::ports::forecasts::ForecastStore;
use ioto_domain::ports::quota_pools::QuotaPoolStore;
use ioto_domain::ports::quotas::QuotaStore;
use ioto_domain::ports::{Directory, FleetNotifier, UsageReader};
use ioto_domain::quota_pool::QuotaPool;
use ioto_domain::{Actor, CustomerId, Error, Permission, Result, TenantId};
use uuid::Uuid;

use crate::fleet::FleetService;

pub use pass::{ForecastPass, PassPhases};

/// Most anomalies one page lists.
pub const MAX_PAGE: u64 = 500;

/// The ports forecasts work through.
#[derive(Clone)]
pub struct ForecastPorts {
    /// Where forecasts and anomalies are kept.
    pub store: Arc<dyn ForecastStore>,
    /// The tenants a pass goes through.
    pub directory: Arc<dyn Directory>,
    /// The SIMs' quotas a forecast is read against.
    pub quotas: Arc<dyn QuotaStore>,
    /// The pools whose members' usage is forecast together.
    pub pools: Arc<dyn QuotaPoolStore>,
    /// The usage cubes.
    pub usage: Arc<dyn UsageReader>,
    /// The tenants' retail cards, that price plan advice and projected costs.
    pub cards: Arc<dyn RateCardStore>,
    /// Where the notifications of new anomalies are told.
    pub notifier: Arc<dyn FleetNotifier>,
    /// Woken when a notification was written, when this process sends deliveries.
    pub delivery_wakeup: Option<Arc<tokio::sync::Notify>>,
}

/// Forecasts and anomalies: the pass that computes them, and their reads and decisions. Cheap
/// to clone.
#[derive(Clone)]
pub struct ForecastService {
    ports: ForecastPorts,
    fleet: FleetService,
    /// What this server's last pass of each tenant left ([`memory`]).
    memories: memory::Memories,
}

impl ForecastService {
    pub fn new(ports: ForecastPorts, fleet: FleetService) -> Self {
        Self {
            ports,
            fleet,
            memories: memory::Memories::default(),
        }
    }

    /// Forecasts and anomalies are read by whoever reads SIMs; a sub-customer's users only where
    /// the tenant shares SIM data with them.
    async fn check_read(&self, actor: &Actor, action: &str) -> Result<()> {
        actor.require(Permission::ReadSims, action)?;
        if actor.customer_id.is_some() && !self.fleet.sees_sims(actor).await? {
            return Err(Error::forbidden(action));
        }
        Ok(())
    }

    /// The forecast of a SIM the caller sees, by ICCID; `None` when it has none (no usage in the
    /// last 90 days, or not forecast yet) or the caller does not see it.
    pub async fn sim_forecast(&self, actor: &Actor, iccid: &Iccid) -> Result<Option<StoredForecast>> {
        let Some(sim) = self.fleet.sim(actor, iccid).await? else {
            return Ok(None);
        };
        self.forecast_of(actor, &sim).await
    }

    /// [`Self::sim_forecast`] of a SIM the caller has read already (as the API has, answering a
    /// field of it): visible exactly where the SIM is (`Sim.quota` alike).
    pub async fn forecast_of(&self, actor: &Actor, sim: &Sim) -> Result<Option<StoredForecast>> {
        self.check_read(actor, "read forecasts").await?;
        if !actor.sees_tenant(sim.tenant_id) || actor.customer_id.is_some_and(|c| sim.customer_id != Some(c))
        {
            return Ok(None);
        }
        self.ports
            .store
            .forecast(actor.scope(), sim.tenant_id, ForecastSubject::Sim(sim.id))
            .await
    }

    /// The forecast of a sub-customer's summed usage (a sub-customer's users: their own only).
    pub async fn customer_forecast(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        customer: CustomerId,
    ) -> Result<Option<StoredForecast>> {
        self.check_read(actor, "read forecasts").await?;
        let tenant = actor.target_tenant(tenant)?;
        if actor.customer_id.is_some_and(|c| c != customer) {
            return Ok(None);
        }
        self.ports
            .store
            .forecast(actor.scope(), tenant, ForecastSubject::Customer(customer))
            .await
    }

    /// The forecast of the tenant's summed usage; for a sub-customer's users, of their
    /// sub-customer's (their whole fleet).
    pub async fn tenant_forecast(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
    ) -> Result<Option<StoredForecast>> {
        if let Some(mine) = actor.customer_id {
            return self.customer_forecast(actor, tenant, mine).await;
        }
        self.check_read(actor, "read forecasts").await?;
        let tenant = actor.target_tenant(tenant)?;
        self.ports
            .store
            .forecast(actor.scope(), tenant, ForecastSubject::Tenant)
            .await
    }

    /// The forecast of a pool's members' summed usage, read against its limit; visible where the
    /// pool is (a sub-customer's users: their sub-customer's pool).
    pub async fn pool_forecast(&self, actor: &Actor, pool: &QuotaPool) -> Result<Option<StoredForecast>> {
        self.check_read(actor, "read forecasts").await?;
        let sees = actor.sees_tenant(pool.tenant_id)
            && actor
                .customer_id
                .is_none_or(|c| pool.members.customer() == Some(c));
        if !sees {
            return Ok(None);
        }
        self.ports
            .store
            .forecast(actor.scope(), pool.tenant_id, ForecastSubject::Pool(pool.id))
            .await
    }

    /// The filter as the caller may run it, with the tenant it runs in: a sub-customer's users
    /// see their own SIMs' anomalies only. `None`: nothing the caller may see.
    async fn visible(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        mut filter: AnomalyFilter,
    ) -> Result<Option<(TenantId, AnomalyFilter)>> {
        self.check_read(actor, "read anomalies").await?;
        let tenant = actor.target_tenant(tenant)?;
        if let Some(mine) = actor.customer_id {
            if filter.customer.is_some_and(|c| c != mine) {
                return Ok(None);
            }
            filter.customer = Some(mine);
        }
        Ok(Some((tenant, filter)))
    }

    /// A tenant's anomalies the filter admits, by day (newest first), score (highest first) and
    /// id, after `after`, at most `limit` (up to [`MAX_PAGE`] and one).
    pub async fn anomalies(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        filter: AnomalyFilter,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<AnomalyRecord>> {
        let Some((tenant, filter)) = self.visible(actor, tenant, filter).await? else {
            return Ok(Vec::new());
        };
        self.ports
            .store
            .anomalies(actor.scope(), tenant, &filter, after, limit.min(MAX_PAGE + 1))
            .await
    }

    /// The latest anomalies of a SIM the caller has read already, at most `limit`.
    pub async fn anomalies_of(&self, actor: &Actor, sim: &Sim, limit: u64) -> Result<Vec<AnomalyRecord>> {
        let filter = AnomalyFilter {
            sim: Some(sim.id),
            ..AnomalyFilter::default()
        };
        self.anomalies(actor, Some(sim.tenant_id), filter, None, limit)
            .await
    }

    /// An anomaly by id; `None` when there is none the caller sees (another tenant's, or for a
    /// sub-customer's users another sub-customer's).
    pub async fn anomaly(&self, actor: &Actor, id: Uuid) -> Result<Option<AnomalyRecord>> {
        self.check_read(actor, "read anomalies").await?;
        Ok(self
            .ports
            .store
            .anomaly(actor.scope(), id)
            .await?
            .filter(|a| actor.sees_tenant(a.tenant_id))
            .filter(|a| actor.customer_id.is_none() || a.customer_id == actor.customer_id))
    }

    /// A tenant's advice the filter admits, by saving (highest first; none, and nothing saved,
    /// last) and id, after `after`, at most `limit` (up to [`MAX_PAGE`] and one). Read as
    /// anomalies are: a sub-customer's users see their own SIMs' advice only (never a pool's),
    /// where the tenant shares SIM data with them. Amounts are the resolvers' to hide from those
    /// who may not see costs.
    pub async fn advice(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        mut filter: AdviceFilter,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<Advice>> {
        self.check_read(actor, "read advice").await?;
        let tenant = actor.target_tenant(tenant)?;
        if let Some(mine) = actor.customer_id {
            if filter.customer.is_some_and(|c| c != mine)
                || matches!(filter.subject, Some(AdviceSubject::Pool(_)))
            {
                return Ok(Vec::new());
            }
            filter.customer = Some(mine);
        }
        self.ports
            .store
            .advice(actor.scope(), tenant, &filter, after, limit.min(MAX_PAGE + 1))
            .await
    }

    /// The advice of a SIM the caller has read already (visible where its anomalies are).
    pub async fn advice_of_sim(&self, actor: &Actor, sim: &Sim) -> Result<Vec<Advice>> {
        let filter = AdviceFilter {
            subject: Some(AdviceSubject::Sim(sim.id)),
            ..AdviceFilter::default()
        };
        self.advice(actor, Some(sim.tenant_id), filter, None, MAX_PAGE)
            .await
    }

    /// The advice of a pool the caller has read already: for the tenant's own users only.
    pub async fn advice_of_pool(&self, actor: &Actor, pool: &QuotaPool) -> Result<Vec<Advice>> {
        if actor.customer_id.is_some() {
            self.check_read(actor, "read advice").await?;
            return Ok(Vec::new());
        }
        let filter = AdviceFilter {
            subject: Some(AdviceSubject::Pool(pool.id)),
            ..AdviceFilter::default()
        };
        self.advice(actor, Some(pool.tenant_id), filter, None, MAX_PAGE)
            .await
    }

    /// Dismisses an anomaly as expected behaviour: from the next pass on, the detector accepts
    /// its level (a usage spike), its value (a new network, country or IMEI) or its kind (a
    /// silence, a session storm) on the SIM, up to `until` (included) or for good.
    pub async fn dismiss_anomaly(
        &self,
        actor: &Actor,
        id: Uuid,
        comment: Option<String>,
        until: Option<NaiveDate>,
    ) -> Result<AnomalyRecord> {
        self.decide(actor, id, AnomalyStatus::Dismissed, comment, until)
            .await
    }

    /// Confirms an anomaly as a real problem (kept as such; the detector raises it as before).
    pub async fn confirm_anomaly(
        &self,
        actor: &Actor,
        id: Uuid,
        comment: Option<String>,
    ) -> Result<AnomalyRecord> {
        self.decide(actor, id, AnomalyStatus::Confirmed, comment, None)
            .await
    }

    /// Records a decision by a fleet manager; another tenant's anomaly answers as a missing one.
    async fn decide(
        &self,
        actor: &Actor,
        id: Uuid,
        status: AnomalyStatus,
        comment: Option<String>,
        until: Option<NaiveDate>,
    ) -> Result<AnomalyRecord> {
        actor.require(Permission::ManageFleet, "dismiss or confirm anomalies")?;
        let decision = AnomalyDecision {
            status,
            by: actor.subject.clone(),
            at: Utc::now(),
            comment: comment.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()),
            until,
        };
        decision.check()?;
        if self.anomaly(actor, id).await?.is_none() {
            return Err(Error::not_found("anomaly", id));
        }
        let decided = self
            .ports
            .store
            .decide_anomaly(actor.scope(), id, &decision)
            .await?;
        // An alert on a dismissed anomaly resolves at the next tick, on any server.
        self.ports.notifier.publish(FleetEvent::ForecastsChanged(
            ioto_domain::events::ForecastsChanged {
                tenant_id: decided.tenant_id,
                at: decision.at,
            },
        ));
        Ok(decided)
    }
}
