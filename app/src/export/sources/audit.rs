//! The audit trail: entries newest first, as the audit query pages them.

use super::*;

use async_trait::async_trait;

use crate::export::ExportService;
use ioto_domain::export::{ColumnType, ExportBatch, ExportColumn};
use ioto_domain::fleet::audit::AuditQuery;
use ioto_domain::ports::export::ExportSource;
use ioto_domain::{Actor, Result, TenantId};

pub(super) fn audit_columns() -> Vec<ExportColumn> {
    use ColumnType::*;
    vec![
        col("id", Int),
        col("at", Timestamp),
        col("entity_kind", Text),
        col("entity_id", Text),
        col("entity_ref", Text),
        col("action", Text),
        col("actor", Text),
        col("actor_user_id", Text),
        col("customer_id", Text),
        col("old_value", Text),
        col("new_value", Text),
        col("note", Text),
    ]
}

pub(super) struct Audit {
    pub(super) columns: Vec<ExportColumn>,
    pub(super) svc: ExportService,
    pub(super) actor: Actor,
    pub(super) tenant: Option<TenantId>,
    pub(super) query: AuditQuery,
    pub(super) pages: Keyset<i64>,
}

#[async_trait]
impl ExportSource for Audit {
    fn columns(&self) -> &[ExportColumn] {
        &self.columns
    }

    async fn expected_rows(&mut self) -> Result<Option<u64>> {
        // No count without reading the trail: a first (one-row) read checks access and filter.
        let probe = AuditQuery {
            limit: 1,
            before: None,
            ..self.query.clone()
        };
        self.svc.fleet.audit(&self.actor, self.tenant, &probe).await?;
        Ok(None)
    }

    async fn next_batch(&mut self) -> Result<Option<ExportBatch>> {
        let (svc, actor, tenant, query) = (&self.svc, &self.actor, self.tenant, &self.query);
        let read = |before: Option<i64>| async move {
            let query = AuditQuery {
                before: before.or(query.before),
                limit: BATCH_ROWS,
                ..query.clone()
            };
            svc.fleet.audit(actor, tenant, &query).await
        };
        let Some(entries) = self.pages.next(read, |e| e.id).await? else {
            return Ok(None);
        };
        let json = |v: &serde_json::Value| (!v.is_null()).then(|| v.to_string());
        let mut b = ExportBatch::new(&self.columns, entries.len());
        for e in &entries {
            b.push_int(0, Some(e.id));
            b.push_timestamp(1, Some(e.at));
            b.push_text(2, text(e.entity_kind.as_str()));
            b.push_text(3, text(e.entity_id));
            b.push_text(4, Some(e.entity_ref.clone()));
            b.push_text(5, text(e.action.as_str()));
            b.push_text(6, Some(e.actor.clone()));
            b.push_text(7, e.actor_user_id.map(|u| u.to_string()));
            b.push_text(8, e.customer_id.map(|c| c.to_string()));
            b.push_text(9, json(&e.old_value));
            b.push_text(10, json(&e.new_value));
            b.push_text(11, e.note.clone());
        }
        Ok(Some(b))
    }
}
