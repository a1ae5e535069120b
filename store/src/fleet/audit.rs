//! The audit trail.

use async_trait::async_trait;
use ioto_domain::fleet::audit::{AuditEntry, AuditQuery};
use ioto_domain::ports::AuditLog;
use ioto_domain::{Result, Scope, TenantId};
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
}
