//! Tenants, sub-customers, users and SIMs; on Postgres with row-level security.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_directory"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DatabaseBackend::Postgres => include_str!("sql/0001_postgres.sql"),
            DatabaseBackend::Sqlite => include_str!("sql/0001_sqlite.sql"),
            DatabaseBackend::MySql => return Err(DbErr::Migration("MySQL is not supported".into())),
        };
        manager.get_connection().execute_unprepared(sql).await.map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql =
            String::from("DROP TABLE sims; DROP TABLE users; DROP TABLE customers; DROP TABLE tenants;");
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            sql.push_str("DROP FUNCTION ioto_login_lookup(text); DROP FUNCTION ioto_visible(uuid, uuid);");
        }
        manager
            .get_connection()
            .execute_unprepared(&sql)
            .await
            .map(|_| ())
    }
}
