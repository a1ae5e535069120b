//! Data quotas on sea-orm, for Postgres and SQLite alike: each SIM's quota and its standing per
//! period. A period's stage moves up in one conditional `UPDATE … WHERE stage < new` that also
//! writes the notification telling of it, so two evaluations of the same usage — a redelivered
//! event, two servers — move it once. Row-level security keeps tenants apart on Postgres; every
//! scoped read also filters by the scope's tenant (SQLite has no row-level security).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use ioto_domain::identifiers::Iccid;
use ioto_domain::notify::Notification;
use ioto_domain::ports::quotas::{DefaultsApplied, QuotaActionClaim, QuotaStore, QuotaTarget};
use ioto_domain::quota::{
    default_for, ActionState, QuotaAction, QuotaDefault, QuotaPeriod, QuotaRule, QuotaSource, QuotaStep,
    SimQuota, EXCEEDED,
};
use ioto_domain::{Error, Result, Scope, SimId, TenantId};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::entities::{quota_default, sim, sim_quota, sim_quota_period, tenant};
use crate::error::db;
use crate::fleet::SqlFleet;
use crate::notifications::insert_notification;
use crate::pool::{claim_rows, commit};

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored quota: {what}: {e}"))
}

/// Stages as quotas, defaults and pools keep them: ascending percentages, comma-separated
/// ('' for none).
pub(crate) fn stages_text(stages: &[u8]) -> String {
    stages.iter().map(u8::to_string).collect::<Vec<_>>().join(",")
}

/// The periods (of SIM quotas or of pools) whose action — a suspension or a resume — waits, or
/// was requested and not looked at within its lease.
pub(crate) fn claimable<E: EntityTrait>(
    action: E::Column,
    resume: E::Column,
    claimed_until: E::Column,
    now: DateTime<Utc>,
) -> sea_orm::Select<E> {
    let open = [ActionState::Pending.as_str(), ActionState::Requested.as_str()];
    E::find()
        .filter(
            sea_orm::Condition::any()
                .add(action.is_in(open))
                .add(resume.is_in(open)),
        )
        .filter(
            sea_orm::Condition::any()
                .add(claimed_until.is_null())
                .add(claimed_until.lt(now)),
        )
}

/// A quota's rule from its stored columns (of a SIM's quota, a default or a pool).
pub(crate) fn rule_from(
    limit_bytes: i64,
    stages: &str,
    action: &str,
    resume_next_period: bool,
) -> Result<QuotaRule> {
    let stages = if stages.is_empty() {
        Vec::new()
    } else {
        stages
            .split(',')
            .map(|s| s.parse::<u8>().map_err(|e| corrupt("stages", e)))
            .collect::<Result<Vec<u8>>>()?
    };
    Ok(QuotaRule {
        limit_bytes: u64::try_from(limit_bytes).map_err(|e| corrupt("limit", e))?,
        stages,
        action: QuotaAction::parse(action).map_err(|e| corrupt("action", e))?,
        resume_next_period,
    })
}

fn quota_from(m: sim_quota::Model) -> Result<SimQuota> {
    let source = match (m.source.as_str(), m.default_id) {
        ("SIM", _) => QuotaSource::Sim,
        ("TARIFF_PLAN", Some(d)) => QuotaSource::TariffPlan(d),
        ("TENANT", Some(d)) => QuotaSource::Tenant(d),
        (other, _) => return Err(corrupt("source", other)),
    };
    Ok(SimQuota {
        id: m.id,
        tenant_id: TenantId(m.tenant_id),
        sim_id: SimId(m.sim_id),
        rule: rule_from(m.limit_bytes, &m.stages, &m.action, m.resume_next_period)?,
        source,
        set_by: m.set_by,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn default_from(m: quota_default::Model) -> Result<QuotaDefault> {
    Ok(QuotaDefault {
        id: m.id,
        tenant_id: TenantId(m.tenant_id),
        rule: rule_from(m.limit_bytes, &m.stages, &m.action, m.resume_next_period)?,
        tariff_plan: (!m.tariff_plan.is_empty()).then_some(m.tariff_plan),
        set_by: m.set_by,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

/// A SIM's quota as a row to write.
fn quota_model(quota: &SimQuota) -> sim_quota::ActiveModel {
    sim_quota::ActiveModel {
        id: Set(quota.id),
        tenant_id: Set(quota.tenant_id.0),
        sim_id: Set(quota.sim_id.0),
        limit_bytes: Set(bytes(quota.rule.limit_bytes)),
        stages: Set(stages_text(&quota.rule.stages)),
        action: Set(quota.rule.action.as_str().to_owned()),
        resume_next_period: Set(quota.rule.resume_next_period),
        set_by: Set(quota.set_by.clone()),
        source: Set(quota.source.as_str().to_owned()),
        default_id: Set(quota.source.default_id()),
        created_at: Set(quota.created_at),
        updated_at: Set(quota.updated_at),
    }
}

/// What a new quota replaces of the one its SIM had (id, creation time and periods stay).
fn replace_quota() -> OnConflict {
    OnConflict::column(sim_quota::Column::SimId)
        .update_columns([
            sim_quota::Column::LimitBytes,
            sim_quota::Column::Stages,
            sim_quota::Column::Action,
            sim_quota::Column::ResumeNextPeriod,
            sim_quota::Column::SetBy,
            sim_quota::Column::Source,
            sim_quota::Column::DefaultId,
            sim_quota::Column::UpdatedAt,
        ])
        .to_owned()
}

/// Quotas written per statement.
const QUOTA_CHUNK: usize = 500;

fn period_from(m: sim_quota_period::Model) -> Result<QuotaPeriod> {
    Ok(QuotaPeriod {
        quota_id: m.quota_id,
        tenant_id: TenantId(m.tenant_id),
        start: m.period_start,
        end: m.period_end,
        used_bytes: u64::try_from(m.used_bytes).map_err(|e| corrupt("used bytes", e))?,
        stage: u8::try_from(m.stage).map_err(|e| corrupt("stage", e))?,
        exceeded_at: m.exceeded_at,
        action_state: ActionState::parse(&m.action_state)?,
        action_reason: m.action_reason,
        bulk_job_id: m.bulk_job_id,
        resume_state: ActionState::parse(&m.resume_state)?,
        resume_reason: m.resume_reason,
        resume_job_id: m.resume_job_id,
        evaluated_at: m.evaluated_at,
    })
}

pub(crate) fn bytes(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The quotas in the scope (SQLite has no row-level security).
fn quotas_in(scope: Scope) -> sea_orm::Select<sim_quota::Entity> {
    let q = sim_quota::Entity::find();
    match scope.tenant_id() {
        Some(t) => q.filter(sim_quota::Column::TenantId.eq(t.0)),
        None => q,
    }
}

impl SqlFleet {
    /// The targets of these quotas: each with its SIM's ICCID and its tenant's time zone.
    async fn targets(
        &self,
        txn: &DatabaseTransaction,
        quotas: Vec<sim_quota::Model>,
    ) -> Result<Vec<QuotaTarget>> {
        if quotas.is_empty() {
            return Ok(Vec::new());
        }
        #[derive(FromQueryResult)]
        struct SimIccid {
            id: Uuid,
            iccid: String,
        }
        #[derive(FromQueryResult)]
        struct Zone {
            id: Uuid,
            time_zone: String,
        }
        let sims: HashMap<Uuid, String> = sim::Entity::find()
            .select_only()
            .columns([sim::Column::Id, sim::Column::Iccid])
            .filter(sim::Column::Id.is_in(quotas.iter().map(|q| q.sim_id)))
            .into_model::<SimIccid>()
            .all(txn)
            .await
            .map_err(db)?
            .into_iter()
            .map(|s| (s.id, s.iccid))
            .collect();
        let mut tenants: Vec<Uuid> = quotas.iter().map(|q| q.tenant_id).collect();
        tenants.sort_unstable();
        tenants.dedup();
        let zones: HashMap<Uuid, String> = tenant::Entity::find()
            .select_only()
            .columns([tenant::Column::Id, tenant::Column::TimeZone])
            .filter(tenant::Column::Id.is_in(tenants))
            .into_model::<Zone>()
            .all(txn)
            .await
            .map_err(db)?
            .into_iter()
            .map(|z| (z.id, z.time_zone))
            .collect();
        quotas
            .into_iter()
            .filter_map(|q| {
                let iccid = sims.get(&q.sim_id)?.clone();
                let zone = zones.get(&q.tenant_id)?.clone();
                Some((q, iccid, zone))
            })
            .map(|(q, iccid, zone)| {
                Ok(QuotaTarget {
                    iccid: Iccid::parse(&iccid).map_err(|e| corrupt("iccid", e))?,
                    time_zone: zone.parse::<Tz>().map_err(|e| corrupt("time zone", e))?,
                    quota: quota_from(q)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl QuotaStore for SqlFleet {
    async fn sim_quota(&self, scope: Scope, sim: SimId) -> Result<Option<SimQuota>> {
        let txn = self.begin(scope).await?;
        let row = quotas_in(scope)
            .filter(sim_quota::Column::SimId.eq(sim.0))
            .one(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        row.map(quota_from).transpose()
    }

    async fn put_sim_quota(&self, scope: Scope, quota: &SimQuota) -> Result<SimQuota> {
        if scope.tenant_id().is_some_and(|t| t != quota.tenant_id) {
            return Err(Error::not_found("SIM", quota.sim_id));
        }
        let txn = self.begin(scope).await?;
        sim_quota::Entity::insert(quota_model(quota))
            .on_conflict(replace_quota())
            .exec_without_returning(&txn)
            .await
            .map_err(db)?;
        let stored = quotas_in(scope)
            .filter(sim_quota::Column::SimId.eq(quota.sim_id.0))
            .one(&txn)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("SIM", quota.sim_id))?;
        commit(txn).await?;
        quota_from(stored)
    }

    async fn delete_sim_quota(&self, scope: Scope, sim: SimId) -> Result<bool> {
        let txn = self.begin(scope).await?;
        let mut q = sim_quota::Entity::delete_many()
            .filter(sim_quota::Column::SimId.eq(sim.0))
            .filter(sim_quota::Column::DefaultId.is_null());
        if let Some(t) = scope.tenant_id() {
            q = q.filter(sim_quota::Column::TenantId.eq(t.0));
        }
        let gone = q.exec(&txn).await.map_err(db)?.rows_affected > 0;
        commit(txn).await?;
        Ok(gone)
    }

    async fn put_sim_quotas(&self, scope: Scope, quotas: &[SimQuota]) -> Result<u64> {
        if let Some(q) = quotas
            .iter()
            .find(|q| scope.tenant_id().is_some_and(|t| t != q.tenant_id))
        {
            return Err(Error::not_found("SIM", q.sim_id));
        }
        let txn = self.begin(scope).await?;
        let mut set = 0;
        for chunk in quotas.chunks(QUOTA_CHUNK) {
            set += sim_quota::Entity::insert_many(chunk.iter().map(quota_model))
                .on_conflict(replace_quota())
                .exec_without_returning(&txn)
                .await
                .map_err(db)?;
        }
        commit(txn).await?;
        Ok(set)
    }

    async fn delete_sim_quotas(&self, scope: Scope, sims: &[SimId]) -> Result<u64> {
        let txn = self.begin(scope).await?;
        let mut gone = 0;
        for chunk in sims.chunks(QUOTA_CHUNK) {
            let mut q = sim_quota::Entity::delete_many()
                .filter(sim_quota::Column::SimId.is_in(chunk.iter().map(|s| s.0)))
                .filter(sim_quota::Column::DefaultId.is_null());
            if let Some(t) = scope.tenant_id() {
                q = q.filter(sim_quota::Column::TenantId.eq(t.0));
            }
            gone += q.exec(&txn).await.map_err(db)?.rows_affected;
        }
        commit(txn).await?;
        Ok(gone)
    }

    async fn quotas_of(&self, iccids: &[Iccid]) -> Result<Vec<QuotaTarget>> {
        if iccids.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.begin(Scope::Platform).await?;
        let sims = Query::select()
            .column(sim::Column::Id)
            .from(sim::Entity)
            .and_where(crate::fleet::bulk::iccid_among(self.backend(), iccids))
            .to_owned();
        let quotas = sim_quota::Entity::find()
            .filter(sim_quota::Column::SimId.in_subquery(sims))
            .all(&txn)
            .await
            .map_err(db)?;
        let targets = self.targets(&txn, quotas).await?;
        commit(txn).await?;
        Ok(targets)
    }

    async fn quotas_active_since(
        &self,
        since: DateTime<Utc>,
        tenant: Option<TenantId>,
        limit: u64,
    ) -> Result<Vec<QuotaTarget>> {
        let txn = self.begin(Scope::Platform).await?;
        let mut active = Query::select()
            .column(sim::Column::Id)
            .from(sim::Entity)
            .and_where(sim::Column::LastActivityAt.gte(since))
            .to_owned();
        if let Some(t) = tenant {
            active.and_where(sim::Column::TenantId.eq(t.0));
        }
        let quotas = sim_quota::Entity::find()
            .filter(sim_quota::Column::SimId.in_subquery(active))
            .order_by_asc(sim_quota::Column::Id)
            .limit(limit)
            .all(&txn)
            .await
            .map_err(db)?;
        let targets = self.targets(&txn, quotas).await?;
        commit(txn).await?;
        Ok(targets)
    }

    async fn quota_period(
        &self,
        scope: Scope,
        quota: Uuid,
        start: DateTime<Utc>,
    ) -> Result<Option<QuotaPeriod>> {
        let txn = self.begin(scope).await?;
        let mut q = sim_quota_period::Entity::find()
            .filter(sim_quota_period::Column::QuotaId.eq(quota))
            .filter(sim_quota_period::Column::PeriodStart.eq(start));
        if let Some(t) = scope.tenant_id() {
            q = q.filter(sim_quota_period::Column::TenantId.eq(t.0));
        }
        let row = q.one(&txn).await.map_err(db)?;
        commit(txn).await?;
        row.map(period_from).transpose()
    }

    async fn advance_quota(&self, period: &QuotaPeriod, note: Option<&Notification>) -> Result<bool> {
        let txn = self.begin(Scope::Platform).await?;
        let key = |q: sea_orm::UpdateMany<sim_quota_period::Entity>| {
            q.filter(sim_quota_period::Column::QuotaId.eq(period.quota_id))
                .filter(sim_quota_period::Column::PeriodStart.eq(period.start))
        };
        // The period's row, at no stage, when it is the first evaluation of the period.
        sim_quota_period::Entity::insert(sim_quota_period::ActiveModel {
            quota_id: Set(period.quota_id),
            period_start: Set(period.start),
            tenant_id: Set(period.tenant_id.0),
            period_end: Set(period.end),
            used_bytes: Set(0),
            stage: Set(0),
            exceeded_at: Set(None),
            action_state: Set(ActionState::None.as_str().to_owned()),
            action_reason: Set(None),
            bulk_job_id: Set(None),
            claimed_until: Set(None),
            resume_state: Set(ActionState::None.as_str().to_owned()),
            resume_reason: Set(None),
            resume_job_id: Set(None),
            evaluated_at: Set(period.evaluated_at),
        })
        .on_conflict(
            OnConflict::columns([
                sim_quota_period::Column::QuotaId,
                sim_quota_period::Column::PeriodStart,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(db)?;
        // Up only: a stage reached already (by this evaluation's twin) is left as it is.
        let mut up = key(sim_quota_period::Entity::update_many())
            .col_expr(
                sim_quota_period::Column::Stage,
                Expr::value(i16::from(period.stage)),
            )
            .col_expr(
                sim_quota_period::Column::UsedBytes,
                Expr::value(bytes(period.used_bytes)),
            )
            .col_expr(
                sim_quota_period::Column::EvaluatedAt,
                Expr::value(period.evaluated_at),
            )
            .col_expr(
                sim_quota_period::Column::ActionState,
                Expr::value(period.action_state.as_str()),
            )
            .filter(sim_quota_period::Column::Stage.lt(i16::from(period.stage)));
        if period.stage >= EXCEEDED {
            up = up.col_expr(
                sim_quota_period::Column::ExceededAt,
                Expr::value(period.exceeded_at),
            );
        }
        let moved = up.exec(&txn).await.map_err(db)?.rows_affected > 0;
        if moved {
            if let Some(n) = note {
                insert_notification(&txn, n).await?;
            }
        } else {
            // Usage only grows within a period; an evaluation that read less (a store replica
            // behind) does not take it back.
            key(sim_quota_period::Entity::update_many())
                .col_expr(
                    sim_quota_period::Column::UsedBytes,
                    Expr::value(bytes(period.used_bytes)),
                )
                .col_expr(
                    sim_quota_period::Column::EvaluatedAt,
                    Expr::value(period.evaluated_at),
                )
                .filter(sim_quota_period::Column::UsedBytes.lt(bytes(period.used_bytes)))
                .exec(&txn)
                .await
                .map_err(db)?;
        }
        commit(txn).await?;
        Ok(moved)
    }

    async fn claim_quota_actions(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<QuotaActionClaim>> {
        use sim_quota_period::Column as C;
        let claimable =
            || claimable::<sim_quota_period::Entity>(C::ActionState, C::ResumeState, C::ClaimedUntil, now);
        // An idle pass only reads: a write transaction every pass would take SQLite's write lock
        // from under other writers for nothing.
        let probe = self.begin(Scope::Platform).await?;
        let waiting = claimable().one(&probe).await.map_err(db)?;
        commit(probe).await?;
        if waiting.is_none() {
            return Ok(Vec::new());
        }
        let txn = self.begin(Scope::Platform).await?;
        self.write_lock(&txn).await?;
        let select = claimable()
            .order_by_asc(sim_quota_period::Column::ExceededAt)
            .limit(limit);
        let rows = claim_rows(&txn, select).await?;
        for r in &rows {
            sim_quota_period::Entity::update_many()
                .col_expr(sim_quota_period::Column::ClaimedUntil, Expr::value(until))
                .filter(sim_quota_period::Column::QuotaId.eq(r.quota_id))
                .filter(sim_quota_period::Column::PeriodStart.eq(r.period_start))
                .exec(&txn)
                .await
                .map_err(db)?;
        }
        let quotas = sim_quota::Entity::find()
            .filter(sim_quota::Column::Id.is_in(rows.iter().map(|r| r.quota_id)))
            .all(&txn)
            .await
            .map_err(db)?;
        let targets: HashMap<Uuid, QuotaTarget> = self
            .targets(&txn, quotas)
            .await?
            .into_iter()
            .map(|t| (t.quota.id, t))
            .collect();
        commit(txn).await?;
        rows.into_iter()
            .filter_map(|r| Some((targets.get(&r.quota_id)?.clone(), r)))
            .map(|(target, r)| {
                Ok(QuotaActionClaim {
                    target,
                    period: period_from(r)?,
                })
            })
            .collect()
    }

    async fn quota_defaults(&self, scope: Scope, tenant: TenantId) -> Result<Vec<QuotaDefault>> {
        if scope.tenant_id().is_some_and(|t| t != tenant) {
            return Ok(Vec::new());
        }
        let txn = self.begin(scope).await?;
        let rows = quota_default::Entity::find()
            .filter(quota_default::Column::TenantId.eq(tenant.0))
            .order_by_asc(quota_default::Column::TariffPlan)
            .all(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        rows.into_iter().map(default_from).collect()
    }

    async fn put_quota_default(&self, scope: Scope, d: &QuotaDefault) -> Result<QuotaDefault> {
        if scope.tenant_id().is_some_and(|t| t != d.tenant_id) {
            return Err(Error::not_found("tenant", d.tenant_id));
        }
        let plan = d.tariff_plan.clone().unwrap_or_default();
        let txn = self.begin(scope).await?;
        quota_default::Entity::insert(quota_default::ActiveModel {
            id: Set(d.id),
            tenant_id: Set(d.tenant_id.0),
            tariff_plan: Set(plan.clone()),
            limit_bytes: Set(bytes(d.rule.limit_bytes)),
            stages: Set(stages_text(&d.rule.stages)),
            action: Set(d.rule.action.as_str().to_owned()),
            resume_next_period: Set(d.rule.resume_next_period),
            set_by: Set(d.set_by.clone()),
            created_at: Set(d.created_at),
            updated_at: Set(d.updated_at),
        })
        .on_conflict(
            OnConflict::columns([quota_default::Column::TenantId, quota_default::Column::TariffPlan])
                .update_columns([
                    quota_default::Column::LimitBytes,
                    quota_default::Column::Stages,
                    quota_default::Column::Action,
                    quota_default::Column::ResumeNextPeriod,
                    quota_default::Column::SetBy,
                    quota_default::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(db)?;
        let stored = quota_default::Entity::find()
            .filter(quota_default::Column::TenantId.eq(d.tenant_id.0))
            .filter(quota_default::Column::TariffPlan.eq(plan))
            .one(&txn)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::Internal("a quota default just written is gone".into()))?;
        commit(txn).await?;
        default_from(stored)
    }

    async fn delete_quota_default(&self, scope: Scope, tenant: TenantId, plan: Option<&str>) -> Result<bool> {
        if scope.tenant_id().is_some_and(|t| t != tenant) {
            return Ok(false);
        }
        let txn = self.begin(scope).await?;
        // Read, then written: on SQLite the write lock first (see `write_lock`).
        self.write_lock(&txn).await?;
        let ids: Vec<Uuid> = quota_default::Entity::find()
            .select_only()
            .column(quota_default::Column::Id)
            .filter(quota_default::Column::TenantId.eq(tenant.0))
            .filter(quota_default::Column::TariffPlan.eq(plan.unwrap_or_default()))
            .into_tuple()
            .all(&txn)
            .await
            .map_err(db)?;
        if ids.is_empty() {
            commit(txn).await?;
            return Ok(false);
        }
        // The quotas following it go with it (SQLite may run without foreign-key cascades).
        sim_quota::Entity::delete_many()
            .filter(sim_quota::Column::DefaultId.is_in(ids.clone()))
            .exec(&txn)
            .await
            .map_err(db)?;
        quota_default::Entity::delete_many()
            .filter(quota_default::Column::Id.is_in(ids))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        Ok(true)
    }

    async fn apply_quota_defaults(
        &self,
        tenant: TenantId,
        changed_since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<DefaultsApplied> {
        #[derive(FromQueryResult)]
        struct SimPlan {
            id: Uuid,
            tariff_plan: Option<String>,
        }
        let txn = self.begin(Scope::Platform).await?;
        // One server at a time: two applying at once would both add a SIM's quota.
        self.write_lock(&txn).await?;
        let defaults: Vec<QuotaDefault> = quota_default::Entity::find()
            .filter(quota_default::Column::TenantId.eq(tenant.0))
            .all(&txn)
            .await
            .map_err(db)?
            .into_iter()
            .map(default_from)
            .collect::<Result<_>>()?;
        let mut sims_of = sim::Entity::find()
            .select_only()
            .columns([sim::Column::Id, sim::Column::TariffPlan])
            .filter(sim::Column::TenantId.eq(tenant.0));
        if let Some(since) = changed_since {
            sims_of = sims_of.filter(sim::Column::UpdatedAt.gte(since));
        }
        let sims = sims_of.into_model::<SimPlan>().all(&txn).await.map_err(db)?;
        let quotas: HashMap<Uuid, sim_quota::Model> = match changed_since {
            None => sim_quota::Entity::find()
                .filter(sim_quota::Column::TenantId.eq(tenant.0))
                .all(&txn)
                .await
                .map_err(db)?,
            Some(_) => {
                let mut found = Vec::new();
                for chunk in sims.chunks(QUOTA_CHUNK) {
                    found.extend(
                        sim_quota::Entity::find()
                            .filter(sim_quota::Column::TenantId.eq(tenant.0))
                            .filter(sim_quota::Column::SimId.is_in(chunk.iter().map(|s| s.id)))
                            .all(&txn)
                            .await
                            .map_err(db)?,
                    );
                }
                found
            }
        }
        .into_iter()
        .map(|q| (q.sim_id, q))
        .collect();
        if defaults.is_empty() && quotas.values().all(|q| q.default_id.is_none()) {
            commit(txn).await?;
            return Ok(DefaultsApplied::default());
        }
        let mut applied = DefaultsApplied::default();
        let mut add: Vec<SimQuota> = Vec::new();
        let mut change: Vec<SimQuota> = Vec::new();
        let mut remove: Vec<Uuid> = Vec::new();
        for s in sims {
            let want = default_for(&defaults, s.tariff_plan.as_deref());
            let have = quotas.get(&s.id);
            match (have, want) {
                // Set on the SIM: its own, whatever the defaults say.
                (Some(q), _) if q.default_id.is_none() => {}
                (Some(q), None) => remove.push(q.id),
                (Some(q), Some(d)) => {
                    let same = q.default_id == Some(d.id)
                        && q.source == d.source().as_str()
                        && rule_from(q.limit_bytes, &q.stages, &q.action, q.resume_next_period)
                            .is_ok_and(|r| r == d.rule);
                    if !same {
                        change.push(SimQuota {
                            id: q.id,
                            tenant_id: tenant,
                            sim_id: SimId(s.id),
                            rule: d.rule.clone(),
                            source: d.source(),
                            set_by: d.set_by.clone(),
                            created_at: q.created_at,
                            updated_at: now,
                        });
                    }
                }
                (None, Some(d)) => add.push(SimQuota {
                    id: Uuid::new_v4(),
                    tenant_id: tenant,
                    sim_id: SimId(s.id),
                    rule: d.rule.clone(),
                    source: d.source(),
                    set_by: d.set_by.clone(),
                    created_at: now,
                    updated_at: now,
                }),
                (None, None) => {}
            }
        }
        for chunk in remove.chunks(QUOTA_CHUNK) {
            applied.removed += sim_quota::Entity::delete_many()
                .filter(sim_quota::Column::Id.is_in(chunk.iter().copied()))
                .exec(&txn)
                .await
                .map_err(db)?
                .rows_affected;
        }
        for (list, count) in [(&add, &mut applied.added), (&change, &mut applied.changed)] {
            for chunk in list.chunks(QUOTA_CHUNK) {
                *count += sim_quota::Entity::insert_many(chunk.iter().map(quota_model))
                    .on_conflict(replace_quota())
                    .exec_without_returning(&txn)
                    .await
                    .map_err(db)?;
            }
        }
        commit(txn).await?;
        Ok(applied)
    }

    async fn tenants_with_quota_defaults(&self) -> Result<Vec<TenantId>> {
        let txn = self.begin(Scope::Platform).await?;
        let mut ids: Vec<Uuid> = quota_default::Entity::find()
            .select_only()
            .column(quota_default::Column::TenantId)
            .into_tuple()
            .all(&txn)
            .await
            .map_err(db)?;
        // Tenants that had defaults and dropped the last keep default quotas to take away.
        let following: Vec<Uuid> = sim_quota::Entity::find()
            .select_only()
            .column(sim_quota::Column::TenantId)
            .filter(sim_quota::Column::DefaultId.is_not_null())
            .distinct()
            .into_tuple()
            .all(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        ids.extend(following);
        ids.sort_unstable();
        ids.dedup();
        Ok(ids.into_iter().map(TenantId).collect())
    }

    async fn mark_quota_resumes(&self, now: DateTime<Utc>) -> Result<u64> {
        let resuming = Query::select()
            .column(sim_quota::Column::Id)
            .from(sim_quota::Entity)
            .and_where(sim_quota::Column::ResumeNextPeriod.eq(true))
            .to_owned();
        let due = || {
            sim_quota_period::Entity::find()
                .filter(sim_quota_period::Column::PeriodEnd.lte(now))
                .filter(sim_quota_period::Column::ActionState.eq(ActionState::Done.as_str()))
                .filter(sim_quota_period::Column::ResumeState.eq(ActionState::None.as_str()))
                .filter(sim_quota_period::Column::QuotaId.in_subquery(resuming.clone()))
        };
        // An idle pass only reads.
        let probe = self.begin(Scope::Platform).await?;
        let any = due().one(&probe).await.map_err(db)?;
        commit(probe).await?;
        if any.is_none() {
            return Ok(0);
        }
        let txn = self.begin(Scope::Platform).await?;
        let marked = sim_quota_period::Entity::update_many()
            .col_expr(
                sim_quota_period::Column::ResumeState,
                Expr::value(ActionState::Pending.as_str()),
            )
            .filter(sim_quota_period::Column::PeriodEnd.lte(now))
            .filter(sim_quota_period::Column::ActionState.eq(ActionState::Done.as_str()))
            .filter(sim_quota_period::Column::ResumeState.eq(ActionState::None.as_str()))
            .filter(sim_quota_period::Column::QuotaId.in_subquery(resuming))
            .exec(&txn)
            .await
            .map_err(db)?
            .rows_affected;
        commit(txn).await?;
        Ok(marked)
    }

    async fn record_quota_action(
        &self,
        quota: Uuid,
        start: DateTime<Utc>,
        step: QuotaStep,
        state: ActionState,
        bulk_job: Option<Uuid>,
        reason: Option<&str>,
    ) -> Result<()> {
        use sim_quota_period::Column as C;
        let (state_col, job_col, reason_col) = match step {
            QuotaStep::Suspend => (C::ActionState, C::BulkJobId, C::ActionReason),
            QuotaStep::Resume => (C::ResumeState, C::ResumeJobId, C::ResumeReason),
        };
        let txn = self.begin(Scope::Platform).await?;
        sim_quota_period::Entity::update_many()
            .col_expr(state_col, Expr::value(state.as_str()))
            .col_expr(job_col, Expr::value(bulk_job))
            .col_expr(reason_col, Expr::value(reason))
            .col_expr(
                sim_quota_period::Column::ClaimedUntil,
                Expr::value(None::<DateTime<Utc>>),
            )
            .filter(sim_quota_period::Column::QuotaId.eq(quota))
            .filter(sim_quota_period::Column::PeriodStart.eq(start))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }
}
