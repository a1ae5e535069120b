//! Quota pools on sea-orm, for Postgres and SQLite alike: each tenant's pools and their standing
//! per period. As for a SIM's quota (see `quotas.rs`), a period's stage moves up in one
//! conditional `UPDATE … WHERE stage < new` that also writes the notification telling of it, and
//! actions are claimed with a lease (`FOR UPDATE SKIP LOCKED` on Postgres, the write lock on
//! SQLite). Row-level security keeps tenants apart on Postgres; every scoped read also filters by
//! the scope's tenant (SQLite has no row-level security) and, in a sub-customer's scope, by the
//! pools of that sub-customer.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use ioto_domain::fleet::query::LabelFilter;
use ioto_domain::notify::Notification;
use ioto_domain::ports::quota_pools::{PoolActionClaim, PoolTarget, QuotaPoolStore};
use ioto_domain::quota::{ActionState, QuotaStep, EXCEEDED};
use ioto_domain::quota_pool::{PoolMembers, PoolPeriod, QuotaPool};
use ioto_domain::{CustomerId, Error, Result, Scope, TenantId};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue, ColumnTrait, DatabaseTransaction, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

use crate::entities::{quota_pool, quota_pool_period, tenant};
use crate::error::{db, map};
use crate::fleet::SqlFleet;
use crate::notifications::insert_notification;
use crate::pool::{claim_rows, commit, commit_or_roll_back};
use crate::quotas::{bytes, claimable, rule_from, stages_text};

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored quota pool: {what}: {e}"))
}

fn members_from(customer: Option<Uuid>, labels: Option<serde_json::Value>) -> Result<PoolMembers> {
    match (customer, labels) {
        (Some(c), None) => Ok(PoolMembers::Customer(CustomerId(c))),
        (None, Some(list)) => {
            let items = list.as_array().ok_or_else(|| corrupt("labels", "not a list"))?;
            let filters = items
                .iter()
                .map(|i| {
                    Ok(LabelFilter {
                        key: i["key"]
                            .as_str()
                            .ok_or_else(|| corrupt("labels", "a condition without a key"))?
                            .to_owned(),
                        value: i["value"].as_str().map(str::to_owned),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(PoolMembers::Labels(filters))
        }
        _ => Err(corrupt("members", "not exactly one of a sub-customer and labels")),
    }
}

impl TryFrom<quota_pool::Model> for QuotaPool {
    type Error = Error;
    fn try_from(m: quota_pool::Model) -> Result<Self> {
        Ok(QuotaPool {
            id: m.id,
            tenant_id: TenantId(m.tenant_id),
            name: m.name,
            members: members_from(m.customer_id, m.labels)?,
            rule: rule_from(m.limit_bytes, &m.stages, &m.action, m.resume_next_period)?,
            set_by: m.set_by,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

impl TryFrom<quota_pool_period::Model> for PoolPeriod {
    type Error = Error;
    fn try_from(m: quota_pool_period::Model) -> Result<Self> {
        Ok(PoolPeriod {
            pool_id: m.pool_id,
            tenant_id: TenantId(m.tenant_id),
            start: m.period_start,
            end: m.period_end,
            used_bytes: u64::try_from(m.used_bytes).map_err(|e| corrupt("used bytes", e))?,
            sims: u64::try_from(m.sims).map_err(|e| corrupt("sims", e))?,
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
}

/// A pool as a row to write.
fn pool_model(p: &QuotaPool) -> quota_pool::ActiveModel {
    let (customer, labels) = match &p.members {
        PoolMembers::Customer(c) => (Some(c.0), None),
        PoolMembers::Labels(list) => (
            None,
            Some(json!(list
                .iter()
                .map(|f| json!({"key": f.key, "value": f.value}))
                .collect::<Vec<_>>())),
        ),
    };
    quota_pool::ActiveModel {
        id: Set(p.id),
        tenant_id: Set(p.tenant_id.0),
        name: Set(p.name.trim().to_owned()),
        customer_id: Set(customer),
        labels: Set(labels),
        limit_bytes: Set(bytes(p.rule.limit_bytes)),
        stages: Set(stages_text(&p.rule.stages)),
        action: Set(p.rule.action.as_str().to_owned()),
        resume_next_period: Set(p.rule.resume_next_period),
        set_by: Set(p.set_by.clone()),
        created_at: Set(p.created_at),
        updated_at: Set(p.updated_at),
    }
}

/// The pools the scope sees: its tenant's and, in a sub-customer's scope, that sub-customer's.
fn pools_in(scope: Scope) -> sea_orm::Select<quota_pool::Entity> {
    let mut q = quota_pool::Entity::find();
    if let Some(t) = scope.tenant_id() {
        q = q.filter(quota_pool::Column::TenantId.eq(t.0));
    }
    if let Some(c) = scope.customer_id() {
        q = q.filter(quota_pool::Column::CustomerId.eq(c.0));
    }
    q
}

fn taken(name: &str) -> String {
    format!("another quota pool is named '{name}'")
}

impl SqlFleet {
    /// Refuses a name another pool of the tenant has (names are how people find pools).
    async fn pool_name_free(&self, txn: &DatabaseTransaction, pool: &QuotaPool) -> Result<()> {
        let name = pool.name.trim();
        let others = quota_pool::Entity::find()
            .filter(quota_pool::Column::TenantId.eq(pool.tenant_id.0))
            .filter(quota_pool::Column::Name.eq(name))
            .filter(quota_pool::Column::Id.ne(pool.id))
            .count(txn)
            .await
            .map_err(db)?;
        if others > 0 {
            return Err(Error::invalid("name", taken(name)));
        }
        Ok(())
    }

    async fn insert_pool_in(
        &self,
        txn: &DatabaseTransaction,
        scope: Scope,
        pool: &QuotaPool,
        max: u64,
    ) -> Result<()> {
        let count = pools_in(scope)
            .filter(quota_pool::Column::TenantId.eq(pool.tenant_id.0))
            .count(txn)
            .await
            .map_err(db)?;
        if count >= max {
            return Err(Error::Conflict(format!(
                "a tenant keeps at most {max} quota pools; this one has {count}: delete or change one instead"
            )));
        }
        self.pool_name_free(txn, pool).await?;
        quota_pool::Entity::insert(pool_model(pool))
            .exec_without_returning(txn)
            .await
            .map_err(|e| map(e, &taken(pool.name.trim())))?;
        Ok(())
    }

    async fn update_pool_in(&self, txn: &DatabaseTransaction, pool: &QuotaPool) -> Result<()> {
        self.pool_name_free(txn, pool).await?;
        let mut model = pool_model(pool);
        model.id = ActiveValue::NotSet;
        model.tenant_id = ActiveValue::NotSet;
        model.created_at = ActiveValue::NotSet;
        let done = quota_pool::Entity::update_many()
            .set(model)
            .filter(quota_pool::Column::Id.eq(pool.id))
            .filter(quota_pool::Column::TenantId.eq(pool.tenant_id.0))
            .exec(txn)
            .await
            .map_err(|e| map(e, &taken(pool.name.trim())))?;
        if done.rows_affected == 0 {
            return Err(Error::not_found("quota pool", pool.id));
        }
        Ok(())
    }

    /// The time zones of these tenants.
    async fn pool_zones(
        &self,
        txn: &DatabaseTransaction,
        pools: &[quota_pool::Model],
    ) -> Result<HashMap<Uuid, Tz>> {
        #[derive(FromQueryResult)]
        struct Zone {
            id: Uuid,
            time_zone: String,
        }
        let mut tenants: Vec<Uuid> = pools.iter().map(|p| p.tenant_id).collect();
        tenants.sort_unstable();
        tenants.dedup();
        if tenants.is_empty() {
            return Ok(HashMap::new());
        }
        tenant::Entity::find()
            .select_only()
            .columns([tenant::Column::Id, tenant::Column::TimeZone])
            .filter(tenant::Column::Id.is_in(tenants))
            .into_model::<Zone>()
            .all(txn)
            .await
            .map_err(db)?
            .into_iter()
            .map(|z| {
                Ok((
                    z.id,
                    z.time_zone.parse::<Tz>().map_err(|e| corrupt("time zone", e))?,
                ))
            })
            .collect()
    }

    /// These pools as the evaluator needs them, each with its tenant's time zone.
    async fn pool_targets(
        &self,
        txn: &DatabaseTransaction,
        pools: Vec<quota_pool::Model>,
    ) -> Result<Vec<PoolTarget>> {
        let zones = self.pool_zones(txn, &pools).await?;
        pools
            .into_iter()
            .filter_map(|p| Some((*zones.get(&p.tenant_id)?, p)))
            .map(|(time_zone, p)| {
                Ok(PoolTarget {
                    pool: QuotaPool::try_from(p)?,
                    time_zone,
                })
            })
            .collect()
    }
}

#[async_trait]
impl QuotaPoolStore for SqlFleet {
    async fn pools(&self, scope: Scope, tenant: TenantId) -> Result<Vec<QuotaPool>> {
        if scope.tenant_id().is_some_and(|t| t != tenant) {
            return Ok(Vec::new());
        }
        self.read_all(
            scope,
            pools_in(scope)
                .filter(quota_pool::Column::TenantId.eq(tenant.0))
                .order_by_asc(quota_pool::Column::Name)
                .order_by_asc(quota_pool::Column::Id),
        )
        .await
    }

    async fn pool(&self, scope: Scope, id: Uuid) -> Result<Option<QuotaPool>> {
        self.read_one(scope, pools_in(scope).filter(quota_pool::Column::Id.eq(id)))
            .await
    }

    async fn insert_pool(&self, scope: Scope, pool: &QuotaPool, max: u64) -> Result<()> {
        if scope.tenant_id().is_some_and(|t| t != pool.tenant_id) {
            return Err(Error::not_found("tenant", pool.tenant_id));
        }
        let txn = self.begin(scope).await?;
        // SQLite: the write lock first, as this transaction reads (the count, the name) before it
        // writes.
        self.write_lock(&txn).await?;
        let written = self.insert_pool_in(&txn, scope, pool, max).await;
        commit_or_roll_back(txn, written).await
    }

    async fn update_pool(&self, scope: Scope, pool: &QuotaPool) -> Result<()> {
        if scope.tenant_id().is_some_and(|t| t != pool.tenant_id) {
            return Err(Error::not_found("quota pool", pool.id));
        }
        let txn = self.begin(scope).await?;
        self.write_lock(&txn).await?;
        let written = self.update_pool_in(&txn, pool).await;
        commit_or_roll_back(txn, written).await
    }

    async fn delete_pool(&self, scope: Scope, id: Uuid) -> Result<bool> {
        let txn = self.begin(scope).await?;
        self.write_lock(&txn).await?;
        let seen: Vec<Uuid> = pools_in(scope)
            .select_only()
            .column(quota_pool::Column::Id)
            .filter(quota_pool::Column::Id.eq(id))
            .into_tuple()
            .all(&txn)
            .await
            .map_err(db)?;
        if seen.is_empty() {
            commit(txn).await?;
            return Ok(false);
        }
        // Its periods go with it (SQLite may run without foreign-key cascades).
        quota_pool_period::Entity::delete_many()
            .filter(quota_pool_period::Column::PoolId.eq(id))
            .exec(&txn)
            .await
            .map_err(db)?;
        let gone = quota_pool::Entity::delete_many()
            .filter(quota_pool::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db)?
            .rows_affected
            > 0;
        commit(txn).await?;
        Ok(gone)
    }

    async fn all_pools(&self) -> Result<Vec<PoolTarget>> {
        let txn = self.begin(Scope::Platform).await?;
        let pools = quota_pool::Entity::find()
            .order_by_asc(quota_pool::Column::TenantId)
            .order_by_asc(quota_pool::Column::Name)
            .all(&txn)
            .await
            .map_err(db)?;
        let targets = self.pool_targets(&txn, pools).await?;
        commit(txn).await?;
        Ok(targets)
    }

    async fn pool_period(
        &self,
        scope: Scope,
        pool: Uuid,
        start: DateTime<Utc>,
    ) -> Result<Option<PoolPeriod>> {
        let mut q = quota_pool_period::Entity::find()
            .filter(quota_pool_period::Column::PoolId.eq(pool))
            .filter(quota_pool_period::Column::PeriodStart.eq(start));
        if let Some(t) = scope.tenant_id() {
            q = q.filter(quota_pool_period::Column::TenantId.eq(t.0));
        }
        if let Some(c) = scope.customer_id() {
            let theirs = Query::select()
                .column(quota_pool::Column::Id)
                .from(quota_pool::Entity)
                .and_where(quota_pool::Column::CustomerId.eq(c.0))
                .to_owned();
            q = q.filter(quota_pool_period::Column::PoolId.in_subquery(theirs));
        }
        self.read_one(scope, q).await
    }

    async fn advance_pool(&self, period: &PoolPeriod, note: Option<&Notification>) -> Result<bool> {
        use quota_pool_period::Column as C;
        let txn = self.begin(Scope::Platform).await?;
        let key = |q: sea_orm::UpdateMany<quota_pool_period::Entity>| {
            q.filter(C::PoolId.eq(period.pool_id))
                .filter(C::PeriodStart.eq(period.start))
        };
        // The period's row, at no stage, when it is the first evaluation of the period.
        quota_pool_period::Entity::insert(quota_pool_period::ActiveModel {
            pool_id: Set(period.pool_id),
            period_start: Set(period.start),
            tenant_id: Set(period.tenant_id.0),
            period_end: Set(period.end),
            used_bytes: Set(0),
            sims: Set(0),
            stage: Set(0),
            exceeded_at: Set(None),
            action_state: Set(ActionState::None.as_str().to_owned()),
            action_reason: Set(None),
            bulk_job_id: Set(None),
            resume_state: Set(ActionState::None.as_str().to_owned()),
            resume_reason: Set(None),
            resume_job_id: Set(None),
            claimed_until: Set(None),
            evaluated_at: Set(period.evaluated_at),
        })
        .on_conflict(
            OnConflict::columns([C::PoolId, C::PeriodStart])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(db)?;
        let sims = bytes(period.sims);
        // Up only: a stage reached already (by this evaluation's twin) is left as it is.
        let mut up = key(quota_pool_period::Entity::update_many())
            .col_expr(C::Stage, Expr::value(i16::from(period.stage)))
            .col_expr(C::UsedBytes, Expr::value(bytes(period.used_bytes)))
            .col_expr(C::Sims, Expr::value(sims))
            .col_expr(C::EvaluatedAt, Expr::value(period.evaluated_at))
            .col_expr(C::ActionState, Expr::value(period.action_state.as_str()))
            .col_expr(C::ActionReason, Expr::value(None::<String>))
            .filter(C::Stage.lt(i16::from(period.stage)));
        if period.stage >= EXCEEDED {
            up = up.col_expr(C::ExceededAt, Expr::value(period.exceeded_at));
        }
        let moved = up.exec(&txn).await.map_err(db)?.rows_affected > 0;
        if moved {
            if let Some(n) = note {
                insert_notification(&txn, n).await?;
            }
        } else {
            key(quota_pool_period::Entity::update_many())
                .col_expr(C::Sims, Expr::value(sims))
                .col_expr(C::EvaluatedAt, Expr::value(period.evaluated_at))
                .exec(&txn)
                .await
                .map_err(db)?;
            // Usage only grows within a period; an evaluation that read less (a store replica
            // behind) does not take it back.
            key(quota_pool_period::Entity::update_many())
                .col_expr(C::UsedBytes, Expr::value(bytes(period.used_bytes)))
                .filter(C::UsedBytes.lt(bytes(period.used_bytes)))
                .exec(&txn)
                .await
                .map_err(db)?;
            // Below the limit no action runs: a failure there without a bulk job is a refusal to
            // evaluate (too many members), over once the pool was evaluated.
            key(quota_pool_period::Entity::update_many())
                .col_expr(C::ActionState, Expr::value(ActionState::None.as_str()))
                .col_expr(C::ActionReason, Expr::value(None::<String>))
                .filter(C::ActionState.eq(ActionState::Failed.as_str()))
                .filter(C::BulkJobId.is_null())
                .filter(C::Stage.lt(i16::from(EXCEEDED)))
                .exec(&txn)
                .await
                .map_err(db)?;
        }
        commit(txn).await?;
        Ok(moved)
    }

    async fn claim_pool_actions(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<PoolActionClaim>> {
        use quota_pool_period::Column as C;
        let claimable =
            || claimable::<quota_pool_period::Entity>(C::ActionState, C::ResumeState, C::ClaimedUntil, now);
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
            .order_by_asc(C::ExceededAt)
            .order_by_asc(C::PoolId)
            .limit(limit);
        let rows = claim_rows(&txn, select).await?;
        for r in &rows {
            quota_pool_period::Entity::update_many()
                .col_expr(C::ClaimedUntil, Expr::value(until))
                .filter(C::PoolId.eq(r.pool_id))
                .filter(C::PeriodStart.eq(r.period_start))
                .exec(&txn)
                .await
                .map_err(db)?;
        }
        let pools = if rows.is_empty() {
            Vec::new()
        } else {
            quota_pool::Entity::find()
                .filter(quota_pool::Column::Id.is_in(rows.iter().map(|r| r.pool_id)))
                .all(&txn)
                .await
                .map_err(db)?
        };
        let targets: HashMap<Uuid, PoolTarget> = self
            .pool_targets(&txn, pools)
            .await?
            .into_iter()
            .map(|t| (t.pool.id, t))
            .collect();
        commit(txn).await?;
        rows.into_iter()
            .filter_map(|r| Some((targets.get(&r.pool_id)?.clone(), r)))
            .map(|(target, r)| {
                Ok(PoolActionClaim {
                    target,
                    period: PoolPeriod::try_from(r)?,
                })
            })
            .collect()
    }

    async fn record_pool_action(
        &self,
        pool: Uuid,
        start: DateTime<Utc>,
        step: QuotaStep,
        state: ActionState,
        bulk_job: Option<Uuid>,
        reason: Option<&str>,
    ) -> Result<()> {
        use quota_pool_period::Column as C;
        let (state_col, job_col, reason_col) = match step {
            QuotaStep::Suspend => (C::ActionState, C::BulkJobId, C::ActionReason),
            QuotaStep::Resume => (C::ResumeState, C::ResumeJobId, C::ResumeReason),
        };
        let txn = self.begin(Scope::Platform).await?;
        quota_pool_period::Entity::update_many()
            .col_expr(state_col, Expr::value(state.as_str()))
            .col_expr(job_col, Expr::value(bulk_job))
            .col_expr(reason_col, Expr::value(reason))
            .col_expr(C::ClaimedUntil, Expr::value(None::<DateTime<Utc>>))
            .filter(C::PoolId.eq(pool))
            .filter(C::PeriodStart.eq(start))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }

    async fn mark_pool_resumes(&self, now: DateTime<Utc>) -> Result<u64> {
        use quota_pool_period::Column as C;
        let resuming = Query::select()
            .column(quota_pool::Column::Id)
            .from(quota_pool::Entity)
            .and_where(quota_pool::Column::ResumeNextPeriod.eq(true))
            .to_owned();
        // Ended periods whose suspension went out as a bulk job (done, or failed for some SIMs:
        // those it did suspend are resumed all the same).
        let sent = [ActionState::Done.as_str(), ActionState::Failed.as_str()];
        let due = sea_orm::Condition::all()
            .add(C::PeriodEnd.lte(now))
            .add(C::ActionState.is_in(sent))
            .add(C::BulkJobId.is_not_null())
            .add(C::ResumeState.eq(ActionState::None.as_str()))
            .add(C::PoolId.in_subquery(resuming));
        // An idle pass only reads.
        let probe = self.begin(Scope::Platform).await?;
        let any = quota_pool_period::Entity::find()
            .filter(due.clone())
            .one(&probe)
            .await
            .map_err(db)?;
        commit(probe).await?;
        if any.is_none() {
            return Ok(0);
        }
        let txn = self.begin(Scope::Platform).await?;
        let marked = quota_pool_period::Entity::update_many()
            .col_expr(C::ResumeState, Expr::value(ActionState::Pending.as_str()))
            .filter(due)
            .exec(&txn)
            .await
            .map_err(db)?
            .rows_affected;
        commit(txn).await?;
        Ok(marked)
    }
}
