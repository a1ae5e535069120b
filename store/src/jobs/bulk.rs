//! Bulk jobs and their rows: stored with the job, claimed with a lease, results written in
//! batches together with the SIM changes and audit entries they stand for.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::fleet::bulk::{
    parse_action, BulkJob, BulkJobStatus, BulkRow, BulkSource, RowOutcome, RowResult, SimStateRow,
};
use ioto_domain::fleet::sim::SimState;
use ioto_domain::identifiers::Iccid;
use ioto_domain::notify::Notification;
use ioto_domain::ports::{BulkJobQuery, BulkJobStore, BulkRowQuery, BulkStatusChange};
use ioto_domain::{Error, Result, Role, Scope, TenantId};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set, Statement,
};
use uuid::Uuid;

use crate::convert::corrupt;
use crate::entities::{bulk_job, bulk_job_row, sim};
use crate::error::db;
use crate::fleet::*;
use crate::pool::{commit, sims_in};

/// Rows per insert statement (SQLite allows 32,766 bound values; a row binds 12).
const INSERT_CHUNK: usize = 2_000;

/// An action as stored (`ACTIVATE`, …).
fn stored_action(a: Option<&str>) -> Result<Option<ioto_domain::ports::network::NetworkAction>> {
    a.map(|a| parse_action(a, "action")).transpose()
}

impl TryFrom<bulk_job::Model> for BulkJob {
    type Error = Error;
    fn try_from(m: bulk_job::Model) -> Result<Self> {
        let bad = |col: &str, e: Error| corrupt("bulk_jobs", col, e);
        let count = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(BulkJob {
            id: m.id,
            tenant_id: m.tenant_id.into(),
            source: BulkSource::parse(&m.source).map_err(|e| bad("source", e))?,
            file_name: m.file_name,
            action: stored_action(m.action.as_deref()).map_err(|e| bad("action", e))?,
            status: BulkJobStatus::parse(&m.status).map_err(|e| bad("status", e))?,
            total: count(m.total_rows),
            valid: count(m.valid_rows),
            invalid: count(m.invalid_rows),
            already_in_state: count(m.already_in_state),
            processed: count(m.processed),
            succeeded: count(m.succeeded),
            failed: count(m.failed),
            skipped: count(m.skipped),
            created_by: m.created_by,
            created_by_user: m.created_by_user.map(Into::into),
            created_by_role: Role::parse(&m.created_by_role).map_err(|e| bad("created_by_role", e))?,
            confirmed_by: m.confirmed_by,
            cancelled_by: m.cancelled_by,
            note: m.note,
            notify: m.notify,
            failure: m.failure,
            created_at: m.created_at,
            confirmed_at: m.confirmed_at,
            started_at: m.started_at,
            finished_at: m.finished_at,
            heartbeat_at: m.heartbeat_at,
        })
    }
}

impl TryFrom<bulk_job_row::Model> for BulkRow {
    type Error = Error;
    fn try_from(m: bulk_job_row::Model) -> Result<Self> {
        let bad = |col: &str, e: Error| corrupt("bulk_job_rows", col, e);
        Ok(BulkRow {
            job_id: m.job_id,
            position: u64::try_from(m.position).unwrap_or(0),
            line: u64::try_from(m.line).unwrap_or(0),
            iccid: m.iccid,
            sim_id: m.sim_id.map(Into::into),
            action: stored_action(m.action.as_deref()).map_err(|e| bad("action", e))?,
            outcome: RowOutcome::parse(&m.outcome).map_err(|e| bad("outcome", e))?,
            reason: m.reason,
            request_id: m.request_id,
            reference: m.reference,
            finished_at: m.finished_at,
        })
    }
}

fn job_model(j: &BulkJob) -> bulk_job::ActiveModel {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    bulk_job::ActiveModel {
        id: Set(j.id),
        tenant_id: Set(j.tenant_id.0),
        source: Set(j.source.as_str().to_owned()),
        file_name: Set(j.file_name.clone()),
        action: Set(j.action.map(|a| a.as_str().to_owned())),
        status: Set(j.status.as_str().to_owned()),
        total_rows: Set(n(j.total)),
        valid_rows: Set(n(j.valid)),
        invalid_rows: Set(n(j.invalid)),
        already_in_state: Set(n(j.already_in_state)),
        processed: Set(n(j.processed)),
        succeeded: Set(n(j.succeeded)),
        failed: Set(n(j.failed)),
        skipped: Set(n(j.skipped)),
        next_position: Set(0),
        created_by: Set(j.created_by.clone()),
        created_by_user: Set(j.created_by_user.map(|u| u.0)),
        created_by_role: Set(j.created_by_role.as_str().to_owned()),
        confirmed_by: Set(j.confirmed_by.clone()),
        cancelled_by: Set(j.cancelled_by.clone()),
        note: Set(j.note.clone()),
        notify: Set(j.notify),
        failure: Set(j.failure.clone()),
        created_at: Set(j.created_at),
        confirmed_at: Set(j.confirmed_at),
        started_at: Set(j.started_at),
        finished_at: Set(j.finished_at),
        heartbeat_at: Set(j.heartbeat_at),
        claimed_by: Set(None),
        claimed_until: Set(None),
    }
}

fn row_model(tenant: TenantId, r: &BulkRow) -> bulk_job_row::ActiveModel {
    bulk_job_row::ActiveModel {
        job_id: Set(r.job_id),
        position: Set(i64::try_from(r.position).unwrap_or(i64::MAX)),
        tenant_id: Set(tenant.0),
        line: Set(i64::try_from(r.line).unwrap_or(i64::MAX)),
        iccid: Set(r.iccid.clone()),
        sim_id: Set(r.sim_id.map(|s| s.0)),
        action: Set(r.action.map(|a| a.as_str().to_owned())),
        outcome: Set(r.outcome.as_str().to_owned()),
        reason: Set(r.reason.clone()),
        request_id: Set(r.request_id),
        reference: Set(r.reference.clone()),
        finished_at: Set(r.finished_at),
    }
}

/// The first bound value in a custom expression.
/// A job's rows as one text parameter per column (Postgres), or `None` when a value cannot
/// travel that way.
fn row_columns(rows: &[BulkRow]) -> Option<crate::fleet::bulk::Columns<9>> {
    let mut columns = crate::fleet::bulk::Columns::new([
        "position",
        "line",
        "iccid",
        "simId",
        "action",
        "outcome",
        "reason",
        "requestId",
        "finishedAt",
    ]);
    for r in rows {
        let (position, line) = (r.position.to_string(), r.line.to_string());
        let sim = r.sim_id.map(|s| s.0.to_string());
        let request = r.request_id.to_string();
        let finished = r.finished_at.map(|t| t.to_rfc3339());
        columns
            .row([
                Some(&position),
                Some(&line),
                Some(&r.iccid),
                sim.as_deref(),
                r.action.map(|a| a.as_str()),
                Some(r.outcome.as_str()),
                r.reason.as_deref().filter(|s| !s.is_empty()),
                Some(&request),
                finished.as_deref(),
            ])
            .ok()?;
    }
    Some(columns)
}

/// One statement for a chunk of rows (Postgres): the columns split by `string_to_array` and
/// joined by `unnest`, as the inventory import writes SIMs.
async fn insert_row_columns(
    txn: &DatabaseTransaction,
    job: &BulkJob,
    columns: crate::fleet::bulk::Columns<9>,
) -> Result<()> {
    let mut values: Vec<sea_orm::Value> = vec![job.id.into(), job.tenant_id.0.into()];
    values.extend(columns.params());
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO bulk_job_rows (job_id, position, tenant_id, line, iccid, sim_id, action, outcome, reason, \
         request_id, reference, finished_at) \
         SELECT $1, position, $2, line, iccid, sim_id, action, outcome, reason, request_id, NULL, finished_at \
         FROM unnest( \
           string_to_array($3, E'\\x1f', '')::bigint[], string_to_array($4, E'\\x1f', '')::bigint[], \
           string_to_array($5, E'\\x1f', ''), string_to_array($6, E'\\x1f', '')::uuid[], \
           string_to_array($7, E'\\x1f', ''), string_to_array($8, E'\\x1f', ''), \
           string_to_array($9, E'\\x1f', ''), string_to_array($10, E'\\x1f', '')::uuid[], \
           string_to_array($11, E'\\x1f', '')::timestamptz[]) \
         AS r(position, line, iccid, sim_id, action, outcome, reason, request_id, finished_at)",
        values,
    ))
    .await
    .map_err(db)?;
    Ok(())
}

async fn insert_row_models(txn: &DatabaseTransaction, job: &BulkJob, rows: &[BulkRow]) -> Result<()> {
    bulk_job_row::Entity::insert_many(rows.iter().map(|r| row_model(job.tenant_id, r)))
        .exec_without_returning(txn)
        .await
        .map_err(db)?;
    Ok(())
}

/// The notification of a job's end, in the transaction that ends it (when the job is notified).
async fn notify_finished(txn: &DatabaseTransaction, job: &BulkJob, at: DateTime<Utc>) -> Result<()> {
    if !job.notify {
        return Ok(());
    }
    crate::notifications::insert_notification(txn, &Notification::bulk_job_finished(job, at)).await
}

/// `iccid IN (…)`; on Postgres one text parameter split by the server (`= ANY`): thousands of
/// bound values cost more to send and plan than the lookup itself.
fn iccid_among(backend: DbBackend, iccids: &[Iccid]) -> sea_orm::sea_query::SimpleExpr {
    if backend == DbBackend::Postgres {
        let mut joined = String::with_capacity(iccids.len() * 21);
        for (i, iccid) in iccids.iter().enumerate() {
            if i > 0 {
                joined.push(crate::fleet::bulk::SEP);
            }
            joined.push_str(iccid.as_str());
        }
        Expr::cust_with_values("sims.iccid = ANY(string_to_array($1, E'\\x1f'))", [joined])
    } else {
        sim::Column::Iccid.is_in(iccids.iter().map(|i| i.as_str()))
    }
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

/// A SIM's new state (and binding) from a bulk row, checked against the version it was read at.
struct SimChange {
    position: u64,
    id: Uuid,
    version: i64,
    state: &'static str,
    device: Option<Uuid>,
}

/// Separates the values of a column sent as one text parameter (split again by
/// `string_to_array`); no value written here holds it (see [`text_column`]).
const SEP: char = '\u{1f}';

/// Values as one text parameter: control characters in free text become spaces, so none is
/// the separator; `None` is the empty string (NULL again on the server).
fn text_column<S: AsRef<str>>(values: impl Iterator<Item = Option<S>>) -> String {
    let mut out = String::new();
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        if let Some(v) = v {
            out.extend(v.as_ref().chars().map(|c| if c.is_control() { ' ' } else { c }));
        }
    }
    out
}

impl SqlFleet {
    /// Writes SIM state changes; returns the positions whose SIM had changed since it was read
    /// (nothing written for them). On Postgres one statement for the batch.
    async fn write_sim_changes(
        &self,
        txn: &DatabaseTransaction,
        tenant: Uuid,
        changes: &[SimChange],
        now: DateTime<Utc>,
    ) -> Result<Vec<u64>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let mut written = std::collections::HashSet::new();
        if self.backend() == DbBackend::Postgres {
            #[derive(FromQueryResult)]
            struct Id {
                id: Uuid,
            }
            let ids = text_column(changes.iter().map(|c| Some(c.id.to_string())));
            let versions = text_column(changes.iter().map(|c| Some(c.version.to_string())));
            let states = text_column(changes.iter().map(|c| Some(c.state)));
            let devices = text_column(changes.iter().map(|c| c.device.map(|d| d.to_string())));
            let rows = Id::find_by_statement(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE sims s SET state = v.state, device_id = v.device_id::uuid, \
                 version = s.version + 1, updated_at = $5 \
                 FROM (SELECT unnest(string_to_array($1, E'\\x1f'))::uuid AS id, \
                              unnest(string_to_array($2, E'\\x1f'))::bigint AS version, \
                              unnest(string_to_array($3, E'\\x1f')) AS state, \
                              unnest(string_to_array($4, E'\\x1f', '')) AS device_id) v \
                 WHERE s.id = v.id AND s.version = v.version AND s.tenant_id = $6 \
                 RETURNING s.id",
                [
                    ids.into(),
                    versions.into(),
                    states.into(),
                    devices.into(),
                    now.into(),
                    tenant.into(),
                ],
            ))
            .all(txn)
            .await
            .map_err(db)?;
            written.extend(rows.into_iter().map(|r| r.id));
        } else {
            for c in changes {
                let res = sim::Entity::update_many()
                    .col_expr(sim::Column::State, Expr::value(c.state))
                    .col_expr(sim::Column::DeviceId, Expr::value(c.device))
                    .col_expr(sim::Column::Version, Expr::value(c.version + 1))
                    .col_expr(sim::Column::UpdatedAt, Expr::value(now))
                    .filter(sim::Column::Id.eq(c.id))
                    .filter(sim::Column::TenantId.eq(tenant))
                    .filter(sim::Column::Version.eq(c.version))
                    .exec(txn)
                    .await
                    .map_err(db)?;
                if res.rows_affected == 1 {
                    written.insert(c.id);
                }
            }
        }
        Ok(changes
            .iter()
            .filter(|c| !written.contains(&c.id))
            .map(|c| c.position)
            .collect())
    }

    /// Writes rows' outcomes (a row going back to `PENDING` has no finish time). On Postgres one
    /// statement for the batch.
    async fn write_row_outcomes(
        &self,
        txn: &DatabaseTransaction,
        job: Uuid,
        results: &[RowResult],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        if self.backend() == DbBackend::Postgres {
            txn.execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE bulk_job_rows r SET outcome = v.outcome, reason = v.reason, reference = v.reference, \
                 finished_at = CASE WHEN v.outcome IN ('PENDING', 'SENT') THEN NULL ELSE $5 END \
                 FROM (SELECT unnest(string_to_array($1, E'\\x1f'))::bigint AS position, \
                              unnest(string_to_array($2, E'\\x1f')) AS outcome, \
                              unnest(string_to_array($3, E'\\x1f', '')) AS reason, \
                              unnest(string_to_array($4, E'\\x1f', '')) AS reference) v \
                 WHERE r.job_id = $6 AND r.position = v.position",
                [
                    text_column(results.iter().map(|r| Some(r.position.to_string()))).into(),
                    text_column(results.iter().map(|r| Some(r.outcome.as_str()))).into(),
                    text_column(results.iter().map(|r| r.reason.as_deref())).into(),
                    text_column(results.iter().map(|r| r.reference.as_deref())).into(),
                    now.into(),
                    job.into(),
                ],
            ))
            .await
            .map_err(db)?;
            return Ok(());
        }
        for r in results {
            let done = !r.outcome.is_open();
            bulk_job_row::Entity::update_many()
                .col_expr(bulk_job_row::Column::Outcome, Expr::value(r.outcome.as_str()))
                .col_expr(bulk_job_row::Column::Reason, Expr::value(r.reason.clone()))
                .col_expr(bulk_job_row::Column::Reference, Expr::value(r.reference.clone()))
                .col_expr(bulk_job_row::Column::FinishedAt, Expr::value(done.then_some(now)))
                .filter(bulk_job_row::Column::JobId.eq(job))
                .filter(bulk_job_row::Column::Position.eq(i64::try_from(r.position).unwrap_or(i64::MAX)))
                .exec(txn)
                .await
                .map_err(db)?;
        }
        Ok(())
    }

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

    /// On SQLite, takes the database's write lock first thing in a transaction that reads
    /// before it writes: a transaction that starts reading and then writes fails with "database
    /// is locked" when another committed in between (WAL snapshots cannot be upgraded), where
    /// one that starts with a write waits its turn (`busy_timeout`).
    pub(crate) async fn write_lock(&self, txn: &DatabaseTransaction) -> Result<()> {
        if self.backend() == DbBackend::Sqlite {
            txn.execute_unprepared("UPDATE bulk_jobs SET id = id WHERE 0")
                .await
                .map_err(db)?;
        }
        Ok(())
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
            .filter(iccid_among(self.backend(), iccids))
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
        let mut select = select.into_query();
        if backend == DbBackend::Postgres {
            select.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let rows = bulk_job::Model::find_by_statement(backend.build(&select))
            .all(&txn)
            .await
            .map_err(db)?;
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
