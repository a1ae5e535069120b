//! Bulk jobs and rows as stored: conversions both ways and the set-based insert of a job's rows.

use crate::convert::corrupt;
use crate::entities::{bulk_job, bulk_job_row};
use crate::error::db;
use ioto_domain::fleet::bulk::{parse_action, BulkJob, BulkJobStatus, BulkRow, BulkSource, RowOutcome};
use ioto_domain::{Error, Result, Role, TenantId};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, Set, Statement};

/// Rows per insert statement (SQLite allows 32,766 bound values; a row binds 12).
pub(super) const INSERT_CHUNK: usize = 2_000;

/// An action as stored (`ACTIVATE`, …).
pub(super) fn stored_action(a: Option<&str>) -> Result<Option<ioto_domain::ports::network::NetworkAction>> {
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

pub(super) fn job_model(j: &BulkJob) -> bulk_job::ActiveModel {
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

pub(super) fn row_model(tenant: TenantId, r: &BulkRow) -> bulk_job_row::ActiveModel {
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
pub(super) fn row_columns(rows: &[BulkRow]) -> Option<crate::fleet::bulk::Columns<9>> {
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
pub(super) async fn insert_row_columns(
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

pub(super) async fn insert_row_models(
    txn: &DatabaseTransaction,
    job: &BulkJob,
    rows: &[BulkRow],
) -> Result<()> {
    bulk_job_row::Entity::insert_many(rows.iter().map(|r| row_model(job.tenant_id, r)))
        .exec_without_returning(txn)
        .await
        .map_err(db)?;
    Ok(())
}
