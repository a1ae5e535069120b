//! The `Fleet` port on sea-orm, for Postgres and SQLite alike.

mod assign;
mod audit;
pub(crate) mod bulk;
mod changes;
mod devices;
pub(crate) mod filter;
mod labels;
mod schedules;
mod sims;

use std::ops::Deref;

use ioto_domain::{Error, Result, Scope, TenantId};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::entities::{device, scheduled_transition};
use crate::pool::SqlStore;

/// The fleet adapter. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqlFleet(pub(crate) SqlStore);

impl Deref for SqlFleet {
    type Target = SqlStore;

    fn deref(&self) -> &SqlStore {
        &self.0
    }
}

/// Ids per `IN (…)` list.
pub(super) const ID_CHUNK: usize = 1_000;

pub(super) fn devices_in(scope: Scope) -> sea_orm::Select<device::Entity> {
    let mut q = device::Entity::find();
    if let Some(t) = scope.tenant_id() {
        q = q.filter(device::Column::TenantId.eq(t.0));
    }
    if let Some(c) = scope.customer_id() {
        q = q.filter(device::Column::CustomerId.eq(c.0));
    }
    q
}

pub(super) fn schedules_in(scope: Scope) -> sea_orm::Select<scheduled_transition::Entity> {
    let mut q = scheduled_transition::Entity::find();
    if let Some(t) = scope.tenant_id() {
        q = q.filter(scheduled_transition::Column::TenantId.eq(t.0));
    }
    if let Some(c) = scope.customer_id() {
        q = q.filter(scheduled_transition::Column::CustomerId.eq(c.0));
    }
    q
}

/// A tenant outside the scope answers like a missing one (SQLite has no row-level security, so
/// this check is what keeps tenants apart there).
pub(super) fn tenant_in_scope(scope: Scope, tenant: TenantId) -> Result<()> {
    match scope.tenant_id() {
        Some(t) if t != tenant => Err(Error::not_found("tenant", tenant)),
        _ => Ok(()),
    }
}
