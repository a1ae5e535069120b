//! Rating runs, closed periods and late adjustments on sea-orm.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::billing::adjustment::{DataDelta, FeeDelta, PeriodAdjustment};
use ioto_domain::billing::rate_card::RateCardKind;
use ioto_domain::billing::rating::{RatingRun, RatingTotals, RunStatus};
use ioto_domain::ports::billing::{ClosedPeriod, RatingRunStore, RunQuery};
use ioto_domain::{Error, Result, Scope, TenantId};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, Statement,
};
use uuid::Uuid;

use crate::entities::{closed_period, period_adjustment, rate_card, rating_run};
use crate::error::{db, map};
use crate::pool::commit;

use super::{corrupt, visible, SqlBilling};

fn run_from(r: rating_run::Model) -> Result<RatingRun> {
    Ok(RatingRun {
        id: r.id,
        tenant_id: TenantId(r.tenant_id),
        card_id: r.rate_card_id,
        kind: RateCardKind::parse(&r.kind)?,
        period_start: r.period_start,
        period_end: r.period_end,
        status: RunStatus::parse(&r.status).ok_or_else(|| corrupt("run status", &r.status))?,
        started_at: r.started_at,
        finished_at: r.finished_at,
        totals: match r.totals {
            Some(t) => serde_json::from_value(t).map_err(|e| corrupt("run totals", e))?,
            None => RatingTotals::default(),
        },
        error: r.error,
        requested_by: r.requested_by,
    })
}

#[async_trait]
impl RatingRunStore for SqlBilling {
    async fn start_run(&self, run: &RatingRun) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        rating_run::ActiveModel {
            id: Set(run.id),
            tenant_id: Set(run.tenant_id.0),
            rate_card_id: Set(run.card_id),
            kind: Set(run.kind.as_str().to_owned()),
            period_start: Set(run.period_start),
            period_end: Set(run.period_end),
            status: Set(RunStatus::Running.as_str().to_owned()),
            started_at: Set(run.started_at),
            finished_at: Set(None),
            totals: Set(None),
            error: Set(None),
            requested_by: Set(run.requested_by.clone()),
        }
        .insert(&txn)
        .await
        .map_err(db)?;
        commit(txn).await
    }

    async fn complete_run(&self, id: Uuid, totals: &RatingTotals, at: DateTime<Utc>) -> Result<Option<Uuid>> {
        let txn = self.begin(Scope::Platform).await?;
        // Read, then written: on SQLite the write lock first (see `write_lock`).
        self.write_lock(&txn).await?;
        let mut q = rating_run::Entity::find_by_id(id);
        if self.backend() == DbBackend::Postgres {
            q = q.lock_exclusive();
        }
        let run = q
            .one(&txn)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("rating run", id))?;
        // Serialise runs of the same card and period: lock the card's row.
        if self.backend() == DbBackend::Postgres {
            txn.execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM rate_cards WHERE id = $1 FOR UPDATE",
                [run.rate_card_id.into()],
            ))
            .await
            .map_err(db)?;
        }
        let previous = rating_run::Entity::find()
            .filter(rating_run::Column::RateCardId.eq(run.rate_card_id))
            .filter(rating_run::Column::PeriodStart.eq(run.period_start))
            .filter(rating_run::Column::Status.eq(RunStatus::Current.as_str()))
            .one(&txn)
            .await
            .map_err(db)?;
        if let Some(p) = &previous {
            rating_run::Entity::update_many()
                .col_expr(
                    rating_run::Column::Status,
                    Expr::value(RunStatus::Superseded.as_str()),
                )
                .filter(rating_run::Column::Id.eq(p.id))
                .exec(&txn)
                .await
                .map_err(db)?;
        }
        rating_run::Entity::update_many()
            .col_expr(
                rating_run::Column::Status,
                Expr::value(RunStatus::Current.as_str()),
            )
            .col_expr(rating_run::Column::FinishedAt, Expr::value(at))
            .col_expr(
                rating_run::Column::Totals,
                Expr::value(serde_json::to_value(totals).map_err(|e| Error::Internal(e.to_string()))?),
            )
            .filter(rating_run::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        Ok(previous.map(|p| p.id))
    }

    async fn fail_run(&self, id: Uuid, error: &str, at: DateTime<Utc>) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        rating_run::Entity::update_many()
            .col_expr(
                rating_run::Column::Status,
                Expr::value(RunStatus::Failed.as_str()),
            )
            .col_expr(rating_run::Column::FinishedAt, Expr::value(at))
            .col_expr(rating_run::Column::Error, Expr::value(error.to_owned()))
            .filter(rating_run::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }

    async fn runs(&self, scope: Scope, query: &RunQuery) -> Result<Vec<RatingRun>> {
        let mut q = rating_run::Entity::find().filter(visible(
            scope,
            rating_run::Column::TenantId,
            rating_run::Column::Kind,
        ));
        if let Some(t) = query.tenant {
            q = q.filter(rating_run::Column::TenantId.eq(t.0));
        }
        if let Some(f) = query.from {
            q = q.filter(rating_run::Column::PeriodStart.gte(f));
        }
        if let Some(t) = query.to {
            q = q.filter(rating_run::Column::PeriodStart.lt(t));
        }
        if query.current_only {
            q = q.filter(rating_run::Column::Status.eq(RunStatus::Current.as_str()));
        }
        let txn = self.begin(scope).await?;
        let rows = q
            .order_by_desc(rating_run::Column::PeriodStart)
            .order_by_desc(rating_run::Column::StartedAt)
            .limit(query.limit.max(1))
            .all(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        rows.into_iter().map(run_from).collect()
    }

    async fn close_period(&self, period: &ClosedPeriod) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        // Read, then written: on SQLite the write lock first (see `write_lock`).
        self.write_lock(&txn).await?;
        let kind = rate_card::Entity::find_by_id(period.card_id)
            .one(&txn)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("rate card", period.card_id))?
            .kind;
        closed_period::ActiveModel {
            rate_card_id: Set(period.card_id),
            period_start: Set(period.period_start),
            tenant_id: Set(period.tenant_id.0),
            kind: Set(kind),
            run_id: Set(period.run_id),
            closed_at: Set(period.closed_at),
            closed_by: Set(period.closed_by.clone()),
        }
        .insert(&txn)
        .await
        .map_err(|e| map(e, "that billing period is closed already"))?;
        commit(txn).await
    }

    async fn closed_periods(&self, scope: Scope, tenant: TenantId) -> Result<Vec<ClosedPeriod>> {
        let txn = self.begin(scope).await?;
        let rows = closed_period::Entity::find()
            .filter(visible(
                scope,
                closed_period::Column::TenantId,
                closed_period::Column::Kind,
            ))
            .filter(closed_period::Column::TenantId.eq(tenant.0))
            .order_by_asc(closed_period::Column::PeriodStart)
            .all(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        Ok(rows
            .into_iter()
            .map(|r| ClosedPeriod {
                card_id: r.rate_card_id,
                tenant_id: TenantId(r.tenant_id),
                period_start: r.period_start,
                run_id: r.run_id,
                closed_at: r.closed_at,
                closed_by: r.closed_by,
            })
            .collect())
    }

    async fn put_adjustment(&self, a: &PeriodAdjustment) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        // Read, then written: on SQLite the write lock first (see `write_lock`).
        self.write_lock(&txn).await?;
        let closed = closed_period::Entity::find_by_id((a.card_id, a.period_start))
            .one(&txn)
            .await
            .map_err(db)?;
        if closed.is_some() {
            return Err(Error::Conflict(format!(
                "the period starting {} is closed; its invoice is final",
                a.period_start
            )));
        }
        let lines = serde_json::to_value(AdjustmentLines {
            data: a.data.clone(),
            fees: a.fees.clone(),
        })
        .map_err(|e| Error::Internal(e.to_string()))?;
        let row = period_adjustment::ActiveModel {
            rate_card_id: Set(a.card_id),
            period_start: Set(a.period_start),
            adjusted_period_start: Set(a.adjusted_period_start),
            adjusted_period_end: Set(a.adjusted_period_end),
            tenant_id: Set(a.tenant_id.0),
            kind: Set(a.kind.as_str().to_owned()),
            basis_records: Set(i64::try_from(a.basis_records)
                .map_err(|_| Error::Internal("CDR count beyond 64 bits".into()))?),
            lines: Set(lines),
            computed_at: Set(a.computed_at),
        };
        period_adjustment::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    period_adjustment::Column::RateCardId,
                    period_adjustment::Column::PeriodStart,
                    period_adjustment::Column::AdjustedPeriodStart,
                ])
                .update_columns([
                    period_adjustment::Column::AdjustedPeriodEnd,
                    period_adjustment::Column::BasisRecords,
                    period_adjustment::Column::Lines,
                    period_adjustment::Column::ComputedAt,
                ])
                .to_owned(),
            )
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }

    async fn adjustments(&self, scope: Scope, tenant: TenantId) -> Result<Vec<PeriodAdjustment>> {
        let txn = self.begin(scope).await?;
        let rows = period_adjustment::Entity::find()
            .filter(visible(
                scope,
                period_adjustment::Column::TenantId,
                period_adjustment::Column::Kind,
            ))
            .filter(period_adjustment::Column::TenantId.eq(tenant.0))
            .order_by_asc(period_adjustment::Column::PeriodStart)
            .order_by_asc(period_adjustment::Column::AdjustedPeriodStart)
            .all(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        rows.into_iter()
            .map(|r| {
                let lines: AdjustmentLines =
                    serde_json::from_value(r.lines).map_err(|e| corrupt("adjustment lines", e))?;
                Ok(PeriodAdjustment {
                    card_id: r.rate_card_id,
                    tenant_id: TenantId(r.tenant_id),
                    kind: RateCardKind::parse(&r.kind)?,
                    period_start: r.period_start,
                    adjusted_period_start: r.adjusted_period_start,
                    adjusted_period_end: r.adjusted_period_end,
                    basis_records: r.basis_records.unsigned_abs(),
                    data: lines.data,
                    fees: lines.fees,
                    computed_at: r.computed_at,
                })
            })
            .collect()
    }
}

/// How an adjustment's lines are stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct AdjustmentLines {
    data: Vec<DataDelta>,
    fees: Vec<FeeDelta>,
}
