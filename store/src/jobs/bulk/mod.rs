//! Bulk jobs and their rows: stored with the job, claimed with a lease, results written in
//! batches together with the SIM changes and audit entries they stand for.

mod results;
mod rows;

use self::results::*;
use self::rows::*;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::fleet::bulk::{BulkJob, BulkJobStatus, BulkRow, RowOutcome, RowResult, SimStateRow};
use ioto_domain::fleet::sim::SimState;
use ioto_domain::identifiers::Iccid;
use ioto_domain::notify::Notification;
use ioto_domain::ports::{BulkJobQuery, BulkJobStore, BulkRowQuery, BulkStatusChange};
use ioto_domain::{Error, Result, Scope, TenantId};
use sea_orm::sea_query::{Expr, LockType};
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};
use uuid::Uuid;

use crate::convert::corrupt;
use crate::entities::{bulk_job, bulk_job_row, sim};
use crate::error::db;
use crate::fleet::*;
use crate::pool::{claim_rows, commit, sims_in};

/// The notification of a job's end, in the transaction that ends it (when the job is notified).
async fn notify_finished(txn: &DatabaseTransaction, job: &BulkJob, at: DateTime<Utc>) -> Result<()> {
    if !job.notify {
        return Ok(());
    }
    crate::notifications::insert_notification(txn, &Notification::bulk_job_finished(job, at)).await
}

fn placeholder(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "$1",
        _ => "?",
    }
}

fn jobs_in(scope: Scope) -> sea_orm::Select<bulk_job::Entity> {
    let mut q = bulk_job::Entity::find();
    if let Some(t) = scope.tenant_id() {
        q = q.filter(bulk_job::Column::TenantId.eq(t.0));
    }
    q
}

impl SqlFleet {
    /// Marks jobs claimed by `worker` until `until` (started now if not before) and returns them
    /// in the order confirmed.
    async fn take(
        &self,
        txn: &DatabaseTransaction,
        ids: Vec<Uuid>,
        worker: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<BulkJob>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.backend();
        bulk_job::Entity::update_many()
            .col_expr(bulk_job::Column::ClaimedBy, Expr::value(worker))
            .col_expr(bulk_job::Column::ClaimedUntil, Expr::value(until))
            .col_expr(bulk_job::Column::HeartbeatAt, Expr::value(now))
            .col_expr(
                bulk_job::Column::StartedAt,
                Expr::cust_with_values(format!("coalesce(started_at, {})", placeholder(backend)), [now]),
            )
            .filter(bulk_job::Column::Id.is_in(ids.clone()))
            .exec(txn)
            .await
            .map_err(db)?;
        let claimed = bulk_job::Entity::find()
            .filter(bulk_job::Column::Id.is_in(ids))
            .order_by_asc(bulk_job::Column::ConfirmedAt)
            .all(txn)
            .await
            .map_err(db)?;
        crate::convert::all(claimed)
    }

    /// The job, locked for this transaction (`FOR UPDATE` on Postgres, the write lock on SQLite).
    async fn locked_job(&self, txn: &DatabaseTransaction, id: Uuid) -> Result<Option<bulk_job::Model>> {
        self.write_lock(txn).await?;
        let mut q = bulk_job::Entity::find()
            .filter(bulk_job::Column::Id.eq(id))
            .into_query();
        if self.backend() == DbBackend::Postgres {
            q.lock(LockType::Update);
        }
        bulk_job::Model::find_by_statement(self.backend().build(&q))
            .one(txn)
            .await
            .map_err(db)
    }

    /// The job held by `worker`: `CONFLICT` when the claim went to someone else or lapsed into
    /// another worker's hands, or the job ended.
    async fn held_job(&self, txn: &DatabaseTransaction, id: Uuid, worker: &str) -> Result<bulk_job::Model> {
        let job = self
            .locked_job(txn, id)
            .await?
            .ok_or_else(|| Error::not_found("bulk job", id))?;
        let live = matches!(job.status.as_str(), "PROCESSING" | "CANCELLED");
        if job.claimed_by.as_deref() != Some(worker) || !live {
            return Err(Error::Conflict(format!(
                "bulk job {id} is no longer held by worker {worker} (status {}, held by {})",
                job.status,
                job.claimed_by.as_deref().unwrap_or("nobody")
            )));
        }
        Ok(job)
    }
}

#[async_trait]
impl BulkJobStore for SqlFleet {
    async fn sim_states(&self, scope: Scope, iccids: &[Iccid]) -> Result<Vec<SimStateRow>> {
        if iccids.is_empty() {
            return Ok(Vec::new());
        }
        #[derive(FromQueryResult)]
        struct Row {
            id: Uuid,
            iccid: String,
            customer_id: Option<Uuid>,
            state: String,
        }
        let q = sims_in(scope)
            .select_only()
            .column(sim::Column::Id)
            .column(sim::Column::Iccid)
            .column(sim::Column::CustomerId)
            .column(sim::Column::State)
            .filter(crate::fleet::bulk::iccid_among(self.backend(), iccids))
            .into_model::<Row>();
        let txn = self.begin(scope).await?;
        let rows = q.all(&txn).await.map_err(db)?;
        commit(txn).await?;
        rows.into_iter()
            .map(|r| {
                Ok(SimStateRow {
                    iccid: Iccid::parse(&r.iccid).map_err(|e| corrupt("sims", "iccid", e))?,
                    id: r.id.into(),
                    customer_id: r.customer_id.map(Into::into),
                    state: SimState::parse(&r.state).map_err(|e| corrupt("sims", "state", e))?,
                })
            })
            .collect()
    }

    async fn create_bulk_job(&self, scope: Scope, job: &BulkJob, rows: &[BulkRow]) -> Result<()> {
        tenant_in_scope(scope, job.tenant_id)?;
        let txn = self.begin(scope).await?;
        bulk_job::Entity::insert(job_model(job))
            .exec_without_returning(&txn)
            .await
            .map_err(db)?;
        if self.backend() == DbBackend::Postgres {
            for chunk in rows.chunks(crate::fleet::bulk::PG_CHUNK) {
                match row_columns(chunk) {
                    Some(columns) => insert_row_columns(&txn, job, columns).await?,
                    // A value the column form cannot carry (an empty or control-character ICCID
                    // cell of the file): this chunk as plain rows.
                    None => insert_row_models(&txn, job, chunk).await?,
                }
            }
        } else {
            for chunk in rows.chunks(INSERT_CHUNK) {
                insert_row_models(&txn, job, chunk).await?;
            }
        }
        commit(txn).await
    }

    async fn bulk_job(&self, scope: Scope, id: Uuid) -> Result<Option<BulkJob>> {
        self.read_one(scope, jobs_in(scope).filter(bulk_job::Column::Id.eq(id)))
            .await
    }

    async fn bulk_jobs(&self, scope: Scope, tenant: TenantId, query: &BulkJobQuery) -> Result<Vec<BulkJob>> {
        tenant_in_scope(scope, tenant)?;
        let mut q = jobs_in(scope).filter(bulk_job::Column::TenantId.eq(tenant.0));
        if !query.statuses.is_empty() {
            q = q.filter(bulk_job::Column::Status.is_in(query.statuses.iter().map(|s| s.as_str())));
        }
        if let Some((at, id)) = query.before {
            q = q.filter(
                Condition::any().add(bulk_job::Column::CreatedAt.lt(at)).add(
                    Condition::all()
                        .add(bulk_job::Column::CreatedAt.eq(at))
                        .add(bulk_job::Column::Id.lt(id)),
                ),
            );
        }
        let q = q
            .order_by_desc(bulk_job::Column::CreatedAt)
            .order_by_desc(bulk_job::Column::Id)
            .limit(query.limit);
        self.read_all(scope, q).await
    }

    async fn bulk_rows(&self, scope: Scope, job: Uuid, query: &BulkRowQuery) -> Result<Vec<BulkRow>> {
        let mut q = bulk_job_row::Entity::find().filter(bulk_job_row::Column::JobId.eq(job));
        if let Some(t) = scope.tenant_id() {
            q = q.filter(bulk_job_row::Column::TenantId.eq(t.0));
        }
        if !query.outcomes.is_empty() {
            q = q.filter(bulk_job_row::Column::Outcome.is_in(query.outcomes.iter().map(|o| o.as_str())));
        }
        if let Some(after) = query.after {
            q = q.filter(bulk_job_row::Column::Position.gt(i64::try_from(after).unwrap_or(i64::MAX)));
        }
        let q = q.order_by_asc(bulk_job_row::Column::Position).limit(query.limit);
        self.read_all(scope, q).await
    }

    async fn change_bulk_status(&self, scope: Scope, id: Uuid, change: &BulkStatusChange) -> Result<BulkJob> {
        let txn = self.begin(scope).await?;
        let job = self
            .locked_job(&txn, id)
            .await?
            .filter(|j| scope.tenant_id().is_none_or(|t| t.0 == j.tenant_id))
            .ok_or_else(|| Error::not_found("bulk job", id))?;
        let current = BulkJobStatus::parse(&job.status).map_err(|e| corrupt("bulk_jobs", "status", e))?;
        if !change.from.contains(&current) {
            return Err(Error::Conflict(format!(
                "bulk job {id} is {current}; it can be {} only when it is {}",
                match change.to {
                    BulkJobStatus::Cancelled => "cancelled".to_owned(),
                    BulkJobStatus::Processing => "confirmed".to_owned(),
                    other => format!("moved to {other}"),
                },
                change
                    .from
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        let mut update = bulk_job::Entity::update_many()
            .col_expr(bulk_job::Column::Status, Expr::value(change.to.as_str()))
            .filter(bulk_job::Column::Id.eq(id));
        match change.to {
            BulkJobStatus::Cancelled => {
                update = update
                    .col_expr(bulk_job::Column::CancelledBy, Expr::value(change.by.clone()))
                    .col_expr(bulk_job::Column::FinishedAt, Expr::value(change.at));
                // A job no worker holds is finished now; a held one is finished by its worker,
                // which records the rows in flight first.
            }
            BulkJobStatus::Processing => {
                update = update
                    .col_expr(bulk_job::Column::ConfirmedBy, Expr::value(change.by.clone()))
                    .col_expr(bulk_job::Column::ConfirmedAt, Expr::value(change.at));
                if let Some((worker, until)) = &change.claim {
                    update = update
                        .col_expr(bulk_job::Column::ClaimedBy, Expr::value(worker.clone()))
                        .col_expr(bulk_job::Column::ClaimedUntil, Expr::value(*until))
                        .col_expr(bulk_job::Column::HeartbeatAt, Expr::value(change.at))
                        .col_expr(bulk_job::Column::StartedAt, Expr::value(change.at));
                }
            }
            other if other.is_final() => {
                update = update
                    .col_expr(bulk_job::Column::ConfirmedBy, Expr::value(change.by.clone()))
                    .col_expr(bulk_job::Column::ConfirmedAt, Expr::value(change.at))
                    .col_expr(bulk_job::Column::FinishedAt, Expr::value(change.at));
            }
            _ => {}
        }
        if change.claim.is_some() {
            // Its caller waits for every outcome: nothing to notify.
            update = update.col_expr(bulk_job::Column::Notify, Expr::value(false));
        }
        update.exec(&txn).await.map_err(db)?;
        let job = self
            .locked_job(&txn, id)
            .await?
            .ok_or_else(|| Error::not_found("bulk job", id))
            .and_then(BulkJob::try_from)?;
        if change.to.is_final() {
            notify_finished(&txn, &job, change.at).await?;
        }
        commit(txn).await?;
        Ok(job)
    }

    async fn claim_bulk_jobs(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
        exclude: &[Uuid],
    ) -> Result<Vec<BulkJob>> {
        let backend = self.backend();
        // An idle worker's poll only reads: a write transaction every poll would take SQLite's
        // write lock from under other writers for nothing.
        let free = || {
            Condition::any()
                .add(bulk_job::Column::ClaimedUntil.is_null())
                .add(bulk_job::Column::ClaimedUntil.lt(now))
        };
        let mut probe = bulk_job::Entity::find()
            .filter(bulk_job::Column::Status.eq(BulkJobStatus::Processing.as_str()))
            .filter(free());
        if !exclude.is_empty() {
            probe = probe.filter(bulk_job::Column::Id.is_not_in(exclude.iter().copied()));
        }
        let candidate = self.read_one::<_, BulkJob>(Scope::Platform, probe).await?;
        if candidate.is_none() {
            return Ok(Vec::new());
        }
        let txn = self.begin(Scope::Platform).await?;
        self.write_lock(&txn).await?;
        // Oldest confirmed first; per tenant one job at a time, in the order confirmed: a job
        // waits while an older one of its tenant is unfinished or another is held.
        let mut select = bulk_job::Entity::find()
            .filter(bulk_job::Column::Status.eq(BulkJobStatus::Processing.as_str()))
            .filter(free())
            .filter(Expr::cust_with_values(
                format!(
                    "NOT EXISTS (SELECT 1 FROM bulk_jobs o WHERE o.tenant_id = bulk_jobs.tenant_id \
                     AND o.id <> bulk_jobs.id AND o.status = 'PROCESSING' \
                     AND (o.confirmed_at < bulk_jobs.confirmed_at OR o.claimed_until >= {}))",
                    placeholder(backend)
                ),
                [now],
            ))
            .order_by_asc(bulk_job::Column::ConfirmedAt)
            .limit(limit);
        if !exclude.is_empty() {
            select = select.filter(bulk_job::Column::Id.is_not_in(exclude.iter().copied()));
        }
        let rows = claim_rows(&txn, select).await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let claimed = self.take(&txn, ids, worker, now, until).await?;
        commit(txn).await?;
        Ok(claimed)
    }

    async fn open_bulk_rows(&self, job: Uuid, after: Option<u64>, limit: u64) -> Result<Vec<BulkRow>> {
        let mut q = bulk_job_row::Entity::find().filter(bulk_job_row::Column::JobId.eq(job));
        if let Some(after) = after {
            q = q.filter(bulk_job_row::Column::Position.gt(i64::try_from(after).unwrap_or(i64::MAX)));
        }
        let q = q
            .filter(
                bulk_job_row::Column::Outcome
                    .is_in([RowOutcome::Pending.as_str(), RowOutcome::Sent.as_str()]),
            )
            .order_by_asc(bulk_job_row::Column::Position)
            .limit(limit);
        self.read_all(Scope::Platform, q).await
    }

    async fn mark_bulk_rows_sent(
        &self,
        job: Uuid,
        worker: &str,
        positions: std::ops::RangeInclusive<u64>,
    ) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        self.write_lock(&txn).await?;
        // Checked without the job's row lock (the batch being written holds it) and without
        // renewing the lease, which every written batch does: only rows are written here.
        let held = bulk_job::Entity::find()
            .filter(bulk_job::Column::Id.eq(job))
            .one(&txn)
            .await
            .map_err(db)?
            .filter(|j| {
                j.claimed_by.as_deref() == Some(worker)
                    && j.status == BulkJobStatus::Processing.as_str()
                    && j.claimed_until.is_some_and(|u| u >= Utc::now())
            });
        if held.is_none() {
            return Err(Error::Conflict(format!(
                "bulk job {job} is no longer held by worker {worker} as PROCESSING"
            )));
        }
        let pos = |p: u64| i64::try_from(p).unwrap_or(i64::MAX);
        bulk_job_row::Entity::update_many()
            .col_expr(
                bulk_job_row::Column::Outcome,
                Expr::value(RowOutcome::Sent.as_str()),
            )
            .filter(bulk_job_row::Column::JobId.eq(job))
            .filter(bulk_job_row::Column::Position.between(pos(*positions.start()), pos(*positions.end())))
            .filter(bulk_job_row::Column::Outcome.eq(RowOutcome::Pending.as_str()))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }

    async fn record_bulk_results(
        &self,
        job: Uuid,
        worker: &str,
        results: Vec<RowResult>,
        until: DateTime<Utc>,
    ) -> Result<(BulkJob, Vec<u64>)> {
        let now = Utc::now();
        let txn = self.begin(Scope::Platform).await?;
        let held = self.held_job(&txn, job, worker).await?;
        let results = self.still_open(&txn, job, results).await?;
        let changes = results
            .iter()
            .filter_map(|r| r.sim.as_ref().map(|c| (r.position, c)))
            .map(|(position, c)| {
                Ok(SimChange {
                    position,
                    id: c.row.id.0,
                    version: c.expected_version.ok_or_else(|| {
                        Error::Internal("a bulk SIM change needs the version it was read at".into())
                    })?,
                    state: c.row.state.as_str(),
                    device: c.row.device_id.map(|d| d.0),
                })
            })
            .collect::<Result<Vec<SimChange>>>()?;
        let refused = self
            .write_sim_changes(&txn, held.tenant_id, &changes, now)
            .await?;
        let mut audit = Vec::new();
        let mut results = results;
        let (mut succeeded, mut failed, mut skipped) = (0_i64, 0_i64, 0_i64);
        for r in &mut results {
            if refused.contains(&r.position) {
                r.outcome = RowOutcome::Failed;
                r.reason = Some(format!(
                    "the network confirmed (reference {}), but the SIM was changed by someone else meanwhile, so its state here was not changed; check the SIM",
                    r.reference.as_deref().unwrap_or("-"),
                ));
                r.audit.clear();
            }
            match r.outcome {
                RowOutcome::Succeeded => succeeded += 1,
                RowOutcome::Failed => failed += 1,
                RowOutcome::Skipped => skipped += 1,
                _ => {}
            }
            audit.append(&mut r.audit);
        }
        self.write_row_outcomes(&txn, job, &results, now).await?;
        crate::fleet::bulk::insert_audit(&txn, self.backend(), &audit).await?;
        bulk_job::Entity::update_many()
            .col_expr(
                bulk_job::Column::Processed,
                Expr::col(bulk_job::Column::Processed).add(succeeded + failed + skipped),
            )
            .col_expr(
                bulk_job::Column::Succeeded,
                Expr::col(bulk_job::Column::Succeeded).add(succeeded),
            )
            .col_expr(
                bulk_job::Column::Failed,
                Expr::col(bulk_job::Column::Failed).add(failed),
            )
            .col_expr(
                bulk_job::Column::Skipped,
                Expr::col(bulk_job::Column::Skipped).add(skipped),
            )
            .col_expr(bulk_job::Column::HeartbeatAt, Expr::value(now))
            .col_expr(bulk_job::Column::ClaimedUntil, Expr::value(until))
            .filter(bulk_job::Column::Id.eq(job))
            .exec(&txn)
            .await
            .map_err(db)?;
        let job = self
            .locked_job(&txn, job)
            .await?
            .ok_or_else(|| Error::not_found("bulk job", job))?;
        commit(txn).await?;
        Ok((BulkJob::try_from(job)?, refused))
    }

    async fn notify_bulk_job(&self, scope: Scope, id: Uuid) -> Result<BulkJob> {
        let txn = self.begin(scope).await?;
        let row = self
            .locked_job(&txn, id)
            .await?
            .filter(|j| scope.tenant_id().is_none_or(|t| t.0 == j.tenant_id))
            .ok_or_else(|| Error::not_found("bulk job", id))?;
        bulk_job::Entity::update_many()
            .col_expr(bulk_job::Column::Notify, Expr::value(true))
            .filter(bulk_job::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db)?;
        let mut job = BulkJob::try_from(row)?;
        let was = job.notify;
        job.notify = true;
        // Ended while its caller still waited: the notification is written now.
        if !was && job.status.is_final() {
            notify_finished(&txn, &job, Utc::now()).await?;
        }
        commit(txn).await?;
        Ok(job)
    }

    async fn finish_bulk_job(
        &self,
        job: Uuid,
        worker: &str,
        status: BulkJobStatus,
        failure: Option<String>,
    ) -> Result<BulkJob> {
        let now = Utc::now();
        let txn = self.begin(Scope::Platform).await?;
        let held = self.held_job(&txn, job, worker).await?;
        let mut update = bulk_job::Entity::update_many()
            .col_expr(bulk_job::Column::ClaimedBy, Expr::value(Option::<String>::None))
            .col_expr(
                bulk_job::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(bulk_job::Column::HeartbeatAt, Expr::value(now))
            .filter(bulk_job::Column::Id.eq(job));
        // A job cancelled while it ran stays cancelled, with the time it was cancelled.
        if held.status == BulkJobStatus::Processing.as_str() {
            update = update
                .col_expr(bulk_job::Column::Status, Expr::value(status.as_str()))
                .col_expr(bulk_job::Column::Failure, Expr::value(failure))
                .col_expr(bulk_job::Column::FinishedAt, Expr::value(now));
        }
        update.exec(&txn).await.map_err(db)?;
        let done = self
            .locked_job(&txn, job)
            .await?
            .ok_or_else(|| Error::not_found("bulk job", job))
            .and_then(BulkJob::try_from)?;
        if held.status == BulkJobStatus::Processing.as_str() {
            notify_finished(&txn, &done, now).await?;
        }
        commit(txn).await?;
        Ok(done)
    }
}
