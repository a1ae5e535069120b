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
use ioto_domain::ports::quotas::{QuotaActionClaim, QuotaStore, QuotaTarget};
use ioto_domain::quota::{ActionState, QuotaAction, QuotaPeriod, QuotaRule, SimQuota, EXCEEDED};
use ioto_domain::{Error, Result, Scope, SimId, TenantId};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::entities::{sim, sim_quota, sim_quota_period, tenant};
use crate::error::db;
use crate::fleet::SqlFleet;
use crate::notifications::insert_notification;
use crate::pool::{claim_rows, commit};

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored quota: {what}: {e}"))
}

fn stages_text(stages: &[u8]) -> String {
    stages.iter().map(u8::to_string).collect::<Vec<_>>().join(",")
}

fn quota_from(m: sim_quota::Model) -> Result<SimQuota> {
    let stages = if m.stages.is_empty() {
        Vec::new()
    } else {
        m.stages
            .split(',')
            .map(|s| s.parse::<u8>().map_err(|e| corrupt("stages", e)))
            .collect::<Result<Vec<u8>>>()?
    };
    Ok(SimQuota {
        id: m.id,
        tenant_id: TenantId(m.tenant_id),
        sim_id: SimId(m.sim_id),
        rule: QuotaRule {
            limit_bytes: u64::try_from(m.limit_bytes).map_err(|e| corrupt("limit", e))?,
            stages,
            action: QuotaAction::parse(&m.action).map_err(|e| corrupt("action", e))?,
            resume_next_period: m.resume_next_period,
        },
        set_by: m.set_by,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

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
        evaluated_at: m.evaluated_at,
    })
}

fn bytes(v: u64) -> i64 {
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
        sim_quota::Entity::insert(sim_quota::ActiveModel {
            id: Set(quota.id),
            tenant_id: Set(quota.tenant_id.0),
            sim_id: Set(quota.sim_id.0),
            limit_bytes: Set(bytes(quota.rule.limit_bytes)),
            stages: Set(stages_text(&quota.rule.stages)),
            action: Set(quota.rule.action.as_str().to_owned()),
            resume_next_period: Set(quota.rule.resume_next_period),
            set_by: Set(quota.set_by.clone()),
            created_at: Set(quota.created_at),
            updated_at: Set(quota.updated_at),
        })
        .on_conflict(
            OnConflict::column(sim_quota::Column::SimId)
                .update_columns([
                    sim_quota::Column::LimitBytes,
                    sim_quota::Column::Stages,
                    sim_quota::Column::Action,
                    sim_quota::Column::ResumeNextPeriod,
                    sim_quota::Column::SetBy,
                    sim_quota::Column::UpdatedAt,
                ])
                .to_owned(),
        )
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
        let mut q = sim_quota::Entity::delete_many().filter(sim_quota::Column::SimId.eq(sim.0));
        if let Some(t) = scope.tenant_id() {
            q = q.filter(sim_quota::Column::TenantId.eq(t.0));
        }
        let gone = q.exec(&txn).await.map_err(db)?.rows_affected > 0;
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
            .and_where(sim::Column::Iccid.is_in(iccids.iter().map(Iccid::as_str)))
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

    async fn quotas_active_since(&self, since: DateTime<Utc>, limit: u64) -> Result<Vec<QuotaTarget>> {
        let txn = self.begin(Scope::Platform).await?;
        let active = Query::select()
            .column(sim::Column::Id)
            .from(sim::Entity)
            .and_where(sim::Column::LastActivityAt.gte(since))
            .to_owned();
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
        // Actions waiting, or requested and not looked at within their lease.
        let claimable = || {
            sim_quota_period::Entity::find()
                .filter(
                    sim_quota_period::Column::ActionState
                        .is_in([ActionState::Pending.as_str(), ActionState::Requested.as_str()]),
                )
                .filter(
                    sea_orm::Condition::any()
                        .add(sim_quota_period::Column::ClaimedUntil.is_null())
                        .add(sim_quota_period::Column::ClaimedUntil.lt(now)),
                )
        };
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

    async fn record_quota_action(
        &self,
        quota: Uuid,
        start: DateTime<Utc>,
        state: ActionState,
        bulk_job: Option<Uuid>,
        reason: Option<&str>,
    ) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        sim_quota_period::Entity::update_many()
            .col_expr(sim_quota_period::Column::ActionState, Expr::value(state.as_str()))
            .col_expr(sim_quota_period::Column::BulkJobId, Expr::value(bulk_job))
            .col_expr(sim_quota_period::Column::ActionReason, Expr::value(reason))
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
