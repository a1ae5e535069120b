//! Scheduled transitions.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::fleet::schedule::{ScheduleStatus, ScheduledTransition};
use ioto_domain::ports::{ScheduleQuery, ScheduleStore};
use ioto_domain::{Error, Result, Scope, TenantId};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::*;
use crate::convert;
use crate::entities::scheduled_transition;
use crate::error::db;
use crate::pool::{claim_rows, commit};

#[async_trait]
impl ScheduleStore for SqlFleet {
    async fn schedules(
        &self,
        scope: Scope,
        tenant: TenantId,
        query: &ScheduleQuery,
    ) -> Result<Vec<ScheduledTransition>> {
        let mut q = schedules_in(scope).filter(scheduled_transition::Column::TenantId.eq(tenant.0));
        if let Some(s) = query.sim {
            q = q.filter(scheduled_transition::Column::SimId.eq(s.0));
        }
        if !query.statuses.is_empty() {
            q = q.filter(
                scheduled_transition::Column::Status.is_in(query.statuses.iter().map(|s| s.as_str())),
            );
        }
        let q = q
            .order_by_asc(scheduled_transition::Column::EffectiveAt)
            .order_by_asc(scheduled_transition::Column::Id)
            .limit(query.limit);
        self.read_all(scope, q).await
    }

    async fn schedule(&self, scope: Scope, id: Uuid) -> Result<Option<ScheduledTransition>> {
        self.read_one(
            scope,
            schedules_in(scope).filter(scheduled_transition::Column::Id.eq(id)),
        )
        .await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<ScheduledTransition>> {
        let lease = chrono::Duration::from_std(lease).map_err(|e| Error::Internal(e.to_string()))?;
        let txn = self.begin(Scope::Platform).await?;
        let select = scheduled_transition::Entity::find()
            .filter(scheduled_transition::Column::Status.eq(ScheduleStatus::Pending.as_str()))
            .filter(scheduled_transition::Column::EffectiveAt.lte(now))
            .filter(
                sea_orm::Condition::any()
                    .add(scheduled_transition::Column::ClaimedUntil.is_null())
                    .add(scheduled_transition::Column::ClaimedUntil.lt(now)),
            )
            .order_by_asc(scheduled_transition::Column::EffectiveAt)
            .limit(limit);
        let rows = claim_rows(&txn, select).await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        if !ids.is_empty() {
            scheduled_transition::Entity::update_many()
                .col_expr(
                    scheduled_transition::Column::ClaimedUntil,
                    Expr::value(now + lease),
                )
                .filter(scheduled_transition::Column::Id.is_in(ids))
                .exec(&txn)
                .await
                .map_err(db)?;
        }
        commit(txn).await?;
        convert::all(rows)
    }

    async fn finish_schedule(&self, id: Uuid, status: ScheduleStatus, outcome: Option<String>) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        scheduled_transition::Entity::update_many()
            .col_expr(scheduled_transition::Column::Status, Expr::value(status.as_str()))
            .col_expr(scheduled_transition::Column::Outcome, Expr::value(outcome))
            .col_expr(scheduled_transition::Column::FinishedAt, Expr::value(Utc::now()))
            .filter(scheduled_transition::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }
}
