//! A transactional migration that is one SQL file per backend and cannot be rolled back.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

pub struct SqlMigration {
    pub name: &'static str,
    pub postgres: &'static str,
    pub sqlite: &'static str,
    /// Why rolling it back is refused.
    pub irreversible: &'static str,
}

impl MigrationName for SqlMigration {
    fn name(&self) -> &str {
        self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SqlMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DatabaseBackend::Postgres => self.postgres,
            DatabaseBackend::Sqlite => self.sqlite,
            DatabaseBackend::MySql => return Err(DbErr::Migration("MySQL is not supported".into())),
        };
        manager.get_connection().execute_unprepared(sql).await.map(|_| ())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(format!(
            "{} cannot be rolled back: {}",
            self.name, self.irreversible
        )))
    }
}
