//! Usage reconciliation: the network's CDRs against the counted sessions, per SIM and day.

use super::*;
use ioto_domain::Iccid;

use async_trait::async_trait;

use crate::export::ExportService;
use ioto_domain::export::{ColumnType, ExportBatch, ExportColumn};
use ioto_domain::ports::export::ExportSource;
use ioto_domain::ports::ReconciliationQuery;
use ioto_domain::{Actor, Result, TenantId};

pub(super) fn reconciliation_columns() -> Vec<ExportColumn> {
    use ColumnType::*;
    vec![
        col("day", Date),
        col("iccid", Text),
        col("session_bytes_in", Int),
        col("session_bytes_out", Int),
        col("cdr_bytes_in", Int),
        col("cdr_bytes_out", Int),
        // CDR bytes minus session bytes, as `usageReconciliation` answers it.
        col("difference", Int),
    ]
}

pub(super) struct Reconciliation {
    pub(super) columns: Vec<ExportColumn>,
    pub(super) svc: ExportService,
    pub(super) actor: Actor,
    pub(super) tenant: Option<TenantId>,
    pub(super) query: ReconciliationQuery,
    pub(super) pages: Keyset<(chrono::NaiveDate, Iccid)>,
}

#[async_trait]
impl ExportSource for Reconciliation {
    fn columns(&self) -> &[ExportColumn] {
        &self.columns
    }

    async fn expected_rows(&mut self) -> Result<Option<u64>> {
        let probe = ReconciliationQuery {
            limit: 1,
            after: None,
            ..self.query.clone()
        };
        self.svc
            .usage
            .reconciliation(&self.actor, self.tenant, probe)
            .await?;
        Ok(None)
    }

    async fn next_batch(&mut self) -> Result<Option<ExportBatch>> {
        let (svc, actor, tenant, query) = (&self.svc, &self.actor, self.tenant, &self.query);
        let read = |after: Option<(chrono::NaiveDate, Iccid)>| async move {
            let query = ReconciliationQuery {
                after: after.or_else(|| query.after.clone()),
                limit: BATCH_ROWS,
                ..query.clone()
            };
            svc.usage.reconciliation(actor, tenant, query).await
        };
        let Some(rows) = self.pages.next(read, |r| (r.day, r.iccid.clone())).await? else {
            return Ok(None);
        };
        let mut b = ExportBatch::new(&self.columns, rows.len());
        for r in &rows {
            let session = i128::from(r.session_in) + i128::from(r.session_out);
            let billed = i128::from(r.cdr_in) + i128::from(r.cdr_out);
            b.push_date(0, Some(r.day));
            b.push_text(1, text(&r.iccid));
            b.push_int(2, int(r.session_in));
            b.push_int(3, int(r.session_out));
            b.push_int(4, int(r.cdr_in));
            b.push_int(5, int(r.cdr_out));
            b.push_int(6, i64::try_from(billed - session).ok());
        }
        Ok(Some(b))
    }
}
