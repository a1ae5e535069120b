//! Moving SIMs and devices between the tenant and its sub-customers.

use chrono::{DateTime, Utc};
use ioto_domain::fleet::audit::{AuditStamp, EntityKind, NewAuditEntry};
use ioto_domain::fleet::AuditAction;
use ioto_domain::{CustomerId, Result};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::entities::{device, sim};
use crate::error::db;

/// A row that changed on assignment: id, reference, tenant and customer before.
#[derive(FromQueryResult)]
struct AssignRow {
    id: Uuid,
    tenant_id: Uuid,
    customer_id: Option<Uuid>,
    reference: String,
}

fn assigned_entry(
    kind: EntityKind,
    r: &AssignRow,
    to: Option<CustomerId>,
    stamp: &AuditStamp,
) -> NewAuditEntry {
    let text = |c: Option<Uuid>| c.map_or(serde_json::Value::Null, |c| json!(c.to_string()));
    NewAuditEntry {
        tenant_id: r.tenant_id.into(),
        customer_id: to,
        entity_kind: kind,
        entity_id: r.id,
        entity_ref: r.reference.clone(),
        action: AuditAction::Assigned,
        stamp: stamp.clone(),
        old_value: json!({ "customerId": text(r.customer_id) }),
        new_value: json!({ "customerId": text(to.map(|c| c.0)) }),
    }
}

/// What an assignment moves: SIMs or devices.
#[derive(Clone, Copy)]
pub(super) enum Moving {
    Sims,
    Devices,
}

impl Moving {
    fn kind(self) -> EntityKind {
        match self {
            Self::Sims => EntityKind::Sim,
            Self::Devices => EntityKind::Device,
        }
    }
}

/// The columns an assignment reads from `q` (id, tenant, customer before, and the reference the
/// audit shows), of the rows whose customer is not `to` yet.
pub(super) fn moving<E: EntityTrait>(
    q: sea_orm::Select<E>,
    [id, tenant, customer, reference]: [E::Column; 4],
    to: Option<CustomerId>,
) -> sea_orm::Select<E> {
    let differs = match to {
        Some(c) => Condition::any().add(customer.ne(c.0)).add(customer.is_null()),
        None => Condition::all().add(customer.is_not_null()),
    };
    q.select_only()
        .column(id)
        .column(tenant)
        .column(customer)
        .column_as(reference, "reference")
        .filter(differs)
}

pub(super) const SIM_COLUMNS: [sim::Column; 4] = [
    sim::Column::Id,
    sim::Column::TenantId,
    sim::Column::CustomerId,
    sim::Column::Iccid,
];

pub(super) const DEVICE_COLUMNS: [device::Column; 4] = [
    device::Column::Id,
    device::Column::TenantId,
    device::Column::CustomerId,
    device::Column::Imei,
];

/// Moves the rows `select` finds (built with [`moving`]) to `to`: locks them on Postgres, sets
/// their customer (with a new version), and returns their ids and one `ASSIGNED` audit entry
/// each.
pub(super) async fn move_rows(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    what: Moving,
    mut select: sea_orm::sea_query::SelectStatement,
    to: Option<CustomerId>,
    stamp: &AuditStamp,
) -> Result<(Vec<Uuid>, Vec<NewAuditEntry>)> {
    if backend == DbBackend::Postgres {
        select.lock(sea_orm::sea_query::LockType::Update);
    }
    let rows = AssignRow::find_by_statement(backend.build(&select))
        .all(txn)
        .await
        .map_err(db)?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    set_customer(txn, what, &ids, to, stamp.at).await?;
    let audit = rows
        .iter()
        .map(|r| assigned_entry(what.kind(), r, to, stamp))
        .collect();
    Ok((ids, audit))
}

/// Updates `customer_id`, `version` and `updated_at` of the rows `ids`.
async fn set_customer(
    txn: &DatabaseTransaction,
    what: Moving,
    ids: &[Uuid],
    customer: Option<CustomerId>,
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in ids.chunks(ID_CHUNK) {
        match what {
            Moving::Sims => sim::Entity::update_many()
                .col_expr(sim::Column::CustomerId, Expr::value(customer.map(|c| c.0)))
                .col_expr(sim::Column::Version, Expr::col(sim::Column::Version).add(1))
                .col_expr(sim::Column::UpdatedAt, Expr::value(now))
                .filter(sim::Column::Id.is_in(chunk.iter().copied()))
                .exec(txn)
                .await
                .map_err(db)?,
            Moving::Devices => device::Entity::update_many()
                .col_expr(device::Column::CustomerId, Expr::value(customer.map(|c| c.0)))
                .col_expr(device::Column::Version, Expr::col(device::Column::Version).add(1))
                .col_expr(device::Column::UpdatedAt, Expr::value(now))
                .filter(device::Column::Id.is_in(chunk.iter().copied()))
                .exec(txn)
                .await
                .map_err(db)?,
        };
    }
    Ok(())
}
