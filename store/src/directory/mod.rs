//! The directory ports (tenants, customers, users) on sea-orm, for Postgres and SQLite alike.

mod api_keys;
mod customers;
mod mfa;
mod sessions;
mod tenants;
mod users;

use std::ops::Deref;

use async_trait::async_trait;
use ioto_domain::ports::{DirectoryEngine, EngineInfo};
use ioto_domain::{CustomerId, Result, Scope, TenantId, UserId};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, QueryFilter, Statement};

use crate::entities::{customer, tenant, user};
use crate::error::db;
use crate::pool::{customers_in, find, tenants_in, users_in, SqlStore};

/// The directory adapter. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqlDirectory(pub(crate) SqlStore);

impl Deref for SqlDirectory {
    type Target = SqlStore;

    fn deref(&self) -> &SqlStore {
        &self.0
    }
}

pub(crate) async fn tenant_row(
    txn: &DatabaseTransaction,
    scope: Scope,
    id: TenantId,
) -> Result<tenant::Model> {
    find(
        txn,
        tenants_in(scope).filter(tenant::Column::Id.eq(id.0)),
        "tenant",
        id,
    )
    .await
}

pub(crate) async fn customer_row(
    txn: &DatabaseTransaction,
    scope: Scope,
    id: CustomerId,
) -> Result<customer::Model> {
    find(
        txn,
        customers_in(scope).filter(customer::Column::Id.eq(id.0)),
        "customer",
        id,
    )
    .await
}

pub(crate) async fn user_row(txn: &DatabaseTransaction, scope: Scope, id: UserId) -> Result<user::Model> {
    find(txn, users_in(scope).filter(user::Column::Id.eq(id.0)), "user", id).await
}

#[async_trait]
impl DirectoryEngine for SqlDirectory {
    fn info(&self) -> EngineInfo {
        self.info.clone()
    }

    async fn ping(&self) -> Result<()> {
        self.db.ping().await.map_err(db)
    }

    async fn server_version(&self) -> Result<String> {
        let backend = self.backend();
        let (sql, name) = match backend {
            DbBackend::Postgres => ("SELECT current_setting('server_version') AS v", "PostgreSQL"),
            _ => ("SELECT sqlite_version() AS v", "SQLite"),
        };
        let row = self
            .db
            .query_one(Statement::from_string(backend, sql))
            .await
            .map_err(db)?
            .ok_or_else(|| ioto_domain::Error::Internal("the store returned no version".into()))?;
        let version: String = row.try_get("", "v").map_err(db)?;
        Ok(format!("{name} {version}"))
    }
}
