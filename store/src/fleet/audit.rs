//! The audit trail.

use async_trait::async_trait;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ioto_domain::fleet::audit::{AuditAction, AuditEntry, AuditQuery, EntityKind};
use ioto_domain::ports::AuditLog;
use ioto_domain::{Result, Scope, SimId, TenantId};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::*;
use crate::entities::audit_event;

#[async_trait]
impl AuditLog for SqlFleet {
    async fn audit(&self, scope: Scope, tenant: TenantId, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        if tenant_in_scope(scope, tenant).is_err() {
            return Ok(Vec::new());
        }
        let mut q = audit_event::Entity::find().filter(audit_event::Column::TenantId.eq(tenant.0));
        if let Some(c) = scope.customer_id() {
            q = q.filter(audit_event::Column::CustomerId.eq(c.0));
        }
        if let Some(k) = query.entity_kind {
            q = q.filter(audit_event::Column::EntityKind.eq(k.as_str()));
        }
        if let Some(id) = query.entity_id {
            q = q.filter(audit_event::Column::EntityId.eq(id));
        }
        if !query.actions.is_empty() {
            q = q.filter(audit_event::Column::Action.is_in(query.actions.iter().map(|a| a.as_str())));
        }
        if let Some(a) = &query.actor {
            q = q.filter(audit_event::Column::Actor.eq(a.as_str()));
        }
        if let Some(f) = query.from {
            q = q.filter(audit_event::Column::At.gte(f));
        }
        if let Some(t) = query.to {
            q = q.filter(audit_event::Column::At.lt(t));
        }
        if let Some(b) = query.before {
            q = q.filter(audit_event::Column::Id.lt(b));
        }
        let q = q.order_by_desc(audit_event::Column::Id).limit(query.limit);
        self.read_all(scope, q).await
    }

    async fn last_activations(
        &self,
        scope: Scope,
        tenant: TenantId,
        sims: &[SimId],
    ) -> Result<HashMap<SimId, DateTime<Utc>>> {
        let mut out: HashMap<SimId, DateTime<Utc>> = HashMap::new();
        if tenant_in_scope(scope, tenant).is_err() {
            return Ok(out);
        }
        let state = |v: &serde_json::Value| v.get("state").and_then(|s| s.as_str()).map(str::to_owned);
        for chunk in sims.chunks(1_000) {
            let q = audit_event::Entity::find()
                .filter(audit_event::Column::TenantId.eq(tenant.0))
                .filter(audit_event::Column::EntityKind.eq(EntityKind::Sim.as_str()))
                .filter(audit_event::Column::EntityId.is_in(chunk.iter().map(|s| s.0)))
                .filter(
                    audit_event::Column::Action.is_in(
                        [
                            AuditAction::Created,
                            AuditAction::Imported,
                            AuditAction::StateChanged,
                            AuditAction::Swapped,
                        ]
                        .map(AuditAction::as_str),
                    ),
                );
            let rows: Vec<AuditEntry> = self.read_all(scope, q).await?;
            for e in rows {
                let activated = state(&e.new_value).as_deref() == Some("ACTIVE")
                    && state(&e.old_value).as_deref() != Some("ACTIVE");
                if !activated {
                    continue;
                }
                let at = out.entry(SimId(e.entity_id)).or_insert(e.at);
                if e.at > *at {
                    *at = e.at;
                }
            }
        }
        Ok(out)
    }
}
