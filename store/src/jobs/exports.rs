//! Export jobs: created in the requester's scope, claimed by workers with a lease (`FOR UPDATE
//! SKIP LOCKED` on Postgres, the write lock first on SQLite).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::export::{ExportFormat, ExportJob, ExportKind, ExportStatus};
use ioto_domain::ports::jobs::{ExportEnd, ExportJobQuery, ExportJobStore, ExportProgressUpdate};
use ioto_domain::{Error, Result, Role, Scope};
use sea_orm::sea_query::{Expr, LockType};
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set,
};
use uuid::Uuid;

use crate::convert::corrupt;
use crate::entities::export_job;
use crate::error::db;
use crate::fleet::*;
use crate::pool::{claim_rows, commit};

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn uncount(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl TryFrom<export_job::Model> for ExportJob {
    type Error = Error;
    fn try_from(m: export_job::Model) -> Result<Self> {
        let bad = |col: &str, e: Error| corrupt("export_jobs", col, e);
        Ok(ExportJob {
            id: m.id,
            tenant_id: m.tenant_id.into(),
            kind: ExportKind::parse(&m.kind).map_err(|e| bad("kind", e))?,
            format: ExportFormat::parse(&m.format).map_err(|e| bad("format", e))?,
            filter: m.filter,
            status: ExportStatus::parse(&m.status).map_err(|e| bad("status", e))?,
            rows: uncount(m.rows_written),
            bytes: uncount(m.bytes_written),
            expected_rows: m.expected_rows.map(uncount),
            created_by: m.created_by,
            created_by_user: m.created_by_user.map(Into::into),
            created_by_role: Role::parse(&m.created_by_role).map_err(|e| bad("created_by_role", e))?,
            created_by_customer: m.created_by_customer.map(Into::into),
            failure: m.failure,
            created_at: m.created_at,
            started_at: m.started_at,
            finished_at: m.finished_at,
            heartbeat_at: m.heartbeat_at,
            expires_at: m.expires_at,
            sha256: m.sha256,
        })
    }
}

fn jobs_in(scope: Scope) -> sea_orm::Select<export_job::Entity> {
    let mut q = export_job::Entity::find();
    if let Some(t) = scope.tenant_id() {
        q = q.filter(export_job::Column::TenantId.eq(t.0));
    }
    q
}

fn open_statuses() -> [&'static str; 2] {
    [ExportStatus::Queued.as_str(), ExportStatus::Running.as_str()]
}

impl SqlFleet {
    /// The job, locked for this transaction, if held by `worker` and still running.
    async fn held_export(
        &self,
        txn: &DatabaseTransaction,
        id: Uuid,
        worker: &str,
    ) -> Result<Option<export_job::Model>> {
        self.write_lock(txn).await?;
        let mut q = export_job::Entity::find()
            .filter(export_job::Column::Id.eq(id))
            .filter(export_job::Column::ClaimedBy.eq(worker))
            .filter(export_job::Column::Status.eq(ExportStatus::Running.as_str()))
            .into_query();
        if self.backend() == DbBackend::Postgres {
            q.lock(LockType::Update);
        }
        export_job::Model::find_by_statement(self.backend().build(&q))
            .one(txn)
            .await
            .map_err(db)
    }
}

#[async_trait]
impl ExportJobStore for SqlFleet {
    async fn create_export_job(&self, scope: Scope, j: &ExportJob) -> Result<()> {
        tenant_in_scope(scope, j.tenant_id)?;
        let txn = self.begin(scope).await?;
        export_job::Entity::insert(export_job::ActiveModel {
            id: Set(j.id),
            tenant_id: Set(j.tenant_id.0),
            kind: Set(j.kind.as_str().to_owned()),
            format: Set(j.format.as_str().to_owned()),
            filter: Set(j.filter.clone()),
            status: Set(j.status.as_str().to_owned()),
            rows_written: Set(count(j.rows)),
            bytes_written: Set(count(j.bytes)),
            expected_rows: Set(j.expected_rows.map(count)),
            created_by: Set(j.created_by.clone()),
            created_by_user: Set(j.created_by_user.map(|u| u.0)),
            created_by_role: Set(j.created_by_role.as_str().to_owned()),
            created_by_customer: Set(j.created_by_customer.map(|c| c.0)),
            failure: Set(None),
            sha256: Set(None),
            created_at: Set(j.created_at),
            started_at: Set(None),
            finished_at: Set(None),
            heartbeat_at: Set(None),
            expires_at: Set(None),
            claimed_by: Set(None),
            claimed_until: Set(None),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(db)?;
        commit(txn).await
    }

    async fn export_job(&self, scope: Scope, id: Uuid) -> Result<Option<ExportJob>> {
        self.read_one(scope, jobs_in(scope).filter(export_job::Column::Id.eq(id)))
            .await
    }

    async fn export_jobs(&self, scope: Scope, query: &ExportJobQuery) -> Result<Vec<ExportJob>> {
        let mut q = jobs_in(scope);
        if let Some(t) = query.tenant {
            q = q.filter(export_job::Column::TenantId.eq(t.0));
        }
        if let Some(u) = query.requested_by {
            q = q.filter(export_job::Column::CreatedByUser.eq(u.0));
        }
        if let Some(s) = &query.requested_by_subject {
            q = q
                .filter(export_job::Column::CreatedByUser.is_null())
                .filter(export_job::Column::CreatedBy.eq(s.as_str()));
        }
        if query.hide_platform {
            q = q.filter(export_job::Column::CreatedByRole.ne(Role::PlatformAdmin.as_str()));
        }
        if !query.statuses.is_empty() {
            q = q.filter(export_job::Column::Status.is_in(query.statuses.iter().map(|s| s.as_str())));
        }
        if let Some((at, id)) = query.before {
            q = q.filter(
                Condition::any().add(export_job::Column::CreatedAt.lt(at)).add(
                    Condition::all()
                        .add(export_job::Column::CreatedAt.eq(at))
                        .add(export_job::Column::Id.lt(id)),
                ),
            );
        }
        let q = q
            .order_by_desc(export_job::Column::CreatedAt)
            .order_by_desc(export_job::Column::Id)
            .limit(query.limit);
        self.read_all(scope, q).await
    }

    async fn cancel_export_job(&self, scope: Scope, id: Uuid, at: DateTime<Utc>) -> Result<ExportJob> {
        let txn = self.begin(scope).await?;
        self.write_lock(&txn).await?;
        let mut q = jobs_in(scope).filter(export_job::Column::Id.eq(id)).into_query();
        if self.backend() == DbBackend::Postgres {
            q.lock(LockType::Update);
        }
        let row = export_job::Model::find_by_statement(self.backend().build(&q))
            .one(&txn)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("export job", id))?;
        let status = ExportStatus::parse(&row.status).map_err(|e| corrupt("export_jobs", "status", e))?;
        if status.is_final() {
            return Err(Error::Conflict(format!(
                "the export has ended ({status}); only queued or running exports can be cancelled"
            )));
        }
        export_job::Entity::update_many()
            .col_expr(
                export_job::Column::Status,
                Expr::value(ExportStatus::Cancelled.as_str()),
            )
            .col_expr(export_job::Column::FinishedAt, Expr::value(at))
            .col_expr(export_job::Column::ClaimedBy, Expr::value(Option::<String>::None))
            .col_expr(
                export_job::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(export_job::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db)?;
        let row = export_job::Entity::find_by_id(id)
            .one(&txn)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("export job", id))?;
        commit(txn).await?;
        ExportJob::try_from(row)
    }

    async fn claim_export_jobs(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<ExportJob>> {
        let claimable = || {
            Condition::any()
                .add(export_job::Column::Status.eq(ExportStatus::Queued.as_str()))
                .add(
                    Condition::all()
                        .add(export_job::Column::Status.eq(ExportStatus::Running.as_str()))
                        .add(export_job::Column::ClaimedUntil.lt(now)),
                )
        };
        // An idle poll only reads (no write lock taken from other writers for nothing).
        let probe = export_job::Entity::find()
            .filter(export_job::Column::Status.is_in(open_statuses()))
            .filter(claimable());
        if self
            .read_one::<_, ExportJob>(Scope::Platform, probe)
            .await?
            .is_none()
        {
            return Ok(Vec::new());
        }
        let txn = self.begin(Scope::Platform).await?;
        self.write_lock(&txn).await?;
        let select = export_job::Entity::find()
            .filter(export_job::Column::Status.is_in(open_statuses()))
            .filter(claimable())
            .order_by_asc(export_job::Column::CreatedAt)
            .limit(limit);
        let ids: Vec<Uuid> = claim_rows(&txn, select)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        if ids.is_empty() {
            commit(txn).await?;
            return Ok(Vec::new());
        }
        // A job taken over restarts its file: its counters start again.
        export_job::Entity::update_many()
            .col_expr(
                export_job::Column::Status,
                Expr::value(ExportStatus::Running.as_str()),
            )
            .col_expr(export_job::Column::ClaimedBy, Expr::value(worker))
            .col_expr(export_job::Column::ClaimedUntil, Expr::value(until))
            .col_expr(export_job::Column::HeartbeatAt, Expr::value(now))
            .col_expr(export_job::Column::StartedAt, Expr::value(now))
            .col_expr(export_job::Column::RowsWritten, Expr::value(0_i64))
            .col_expr(export_job::Column::BytesWritten, Expr::value(0_i64))
            .filter(export_job::Column::Id.is_in(ids.clone()))
            .exec(&txn)
            .await
            .map_err(db)?;
        let rows = export_job::Entity::find()
            .filter(export_job::Column::Id.is_in(ids))
            .order_by_asc(export_job::Column::CreatedAt)
            .all(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        crate::convert::all(rows)
    }

    async fn export_progress(&self, id: Uuid, worker: &str, u: &ExportProgressUpdate) -> Result<bool> {
        let txn = self.begin(Scope::Platform).await?;
        if self.held_export(&txn, id, worker).await?.is_none() {
            commit(txn).await?;
            return Ok(false);
        }
        export_job::Entity::update_many()
            .col_expr(export_job::Column::RowsWritten, Expr::value(count(u.rows)))
            .col_expr(export_job::Column::BytesWritten, Expr::value(count(u.bytes)))
            .col_expr(
                export_job::Column::ExpectedRows,
                Expr::value(u.expected_rows.map(count)),
            )
            .col_expr(export_job::Column::HeartbeatAt, Expr::value(u.at))
            .col_expr(export_job::Column::ClaimedUntil, Expr::value(u.until))
            .filter(export_job::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        Ok(true)
    }

    async fn finish_export_job(&self, id: Uuid, worker: &str, end: &ExportEnd) -> Result<Option<ExportJob>> {
        let txn = self.begin(Scope::Platform).await?;
        if self.held_export(&txn, id, worker).await?.is_none() {
            commit(txn).await?;
            return Ok(None);
        }
        export_job::Entity::update_many()
            .col_expr(export_job::Column::Status, Expr::value(end.status.as_str()))
            .col_expr(export_job::Column::RowsWritten, Expr::value(count(end.rows)))
            .col_expr(export_job::Column::BytesWritten, Expr::value(count(end.bytes)))
            .col_expr(export_job::Column::Sha256, Expr::value(end.sha256.clone()))
            .col_expr(export_job::Column::Failure, Expr::value(end.failure.clone()))
            .col_expr(export_job::Column::FinishedAt, Expr::value(end.at))
            .col_expr(export_job::Column::HeartbeatAt, Expr::value(end.at))
            .col_expr(export_job::Column::ExpiresAt, Expr::value(end.expires_at))
            .col_expr(export_job::Column::ClaimedBy, Expr::value(Option::<String>::None))
            .col_expr(
                export_job::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(export_job::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db)?;
        let row = export_job::Entity::find_by_id(id).one(&txn).await.map_err(db)?;
        commit(txn).await?;
        row.map(ExportJob::try_from).transpose()
    }

    async fn expired_exports(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<ExportJob>> {
        let q = export_job::Entity::find()
            .filter(export_job::Column::Status.eq(ExportStatus::Completed.as_str()))
            .filter(export_job::Column::ExpiresAt.lt(now))
            .order_by_asc(export_job::Column::ExpiresAt)
            .limit(limit);
        self.read_all(Scope::Platform, q).await
    }

    async fn expire_export_job(&self, id: Uuid) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        export_job::Entity::update_many()
            .col_expr(
                export_job::Column::Status,
                Expr::value(ExportStatus::Expired.as_str()),
            )
            .filter(export_job::Column::Id.eq(id))
            .filter(export_job::Column::Status.eq(ExportStatus::Completed.as_str()))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }
}
