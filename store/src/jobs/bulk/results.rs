//! A batch of answered rows written at once: the SIMs they change (each checked against the version
//! it was read at) and the rows' outcomes, in one statement each.

use crate::entities::{bulk_job_row, sim};
use crate::error::db;
use crate::fleet::bulk::text_column;
use crate::fleet::*;
use chrono::{DateTime, Utc};
use ioto_domain::fleet::bulk::RowResult;
use ioto_domain::Result;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, Statement,
};
use uuid::Uuid;

/// A SIM's new state (and binding) from a bulk row, checked against the version it was read at.
pub(super) struct SimChange {
    pub(super) position: u64,
    pub(super) id: Uuid,
    pub(super) version: i64,
    pub(super) state: &'static str,
    pub(super) device: Option<Uuid>,
}

impl SqlFleet {
    /// Writes SIM state changes; returns the positions whose SIM had changed since it was read
    /// (nothing written for them). On Postgres one statement for the batch.
    pub(super) async fn write_sim_changes(
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
    /// The results whose rows have no outcome yet (`PENDING` or `SENT`). A row answered already
    /// keeps its outcome: recording it again (a worker retrying a batch whose commit it did not
    /// hear back from) would count it twice and change its SIM again.
    pub(super) async fn still_open(
        &self,
        txn: &DatabaseTransaction,
        job: Uuid,
        results: Vec<RowResult>,
    ) -> Result<Vec<RowResult>> {
        if results.is_empty() {
            return Ok(results);
        }
        let positions: Vec<i64> = results
            .iter()
            .map(|r| i64::try_from(r.position).unwrap_or(i64::MAX))
            .collect();
        let open: std::collections::HashSet<i64> = bulk_job_row::Entity::find()
            .select_only()
            .column(bulk_job_row::Column::Position)
            .filter(bulk_job_row::Column::JobId.eq(job))
            .filter(bulk_job_row::Column::Position.is_in(positions))
            .filter(bulk_job_row::Column::Outcome.is_in(["PENDING", "SENT"]))
            .into_tuple::<i64>()
            .all(txn)
            .await
            .map_err(db)?
            .into_iter()
            .collect();
        Ok(results
            .into_iter()
            .filter(|r| i64::try_from(r.position).is_ok_and(|p| open.contains(&p)))
            .collect())
    }

    pub(super) async fn write_row_outcomes(
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
}
