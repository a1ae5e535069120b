#![doc = include_str!("../README.md")]

mod advice;
mod alerts;
mod analytics;
mod billing;
mod convert;
mod directory;
pub mod entities;
mod error;
mod fleet;
mod forecasts;
mod jobs;
mod notifications;
mod pool;
mod quota_pools;
mod quotas;
mod session;

use std::time::Duration;

use ioto_domain::ports::EngineInfo;
use ioto_domain::{Error, Result};
use ioto_migrations::{Migrator, MigratorTrait, APP_ROLE};
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sea_orm::sqlx::{ConnectOptions as _, Executor as _};
use sea_orm::{DatabaseConnection, SqlxPostgresConnector, SqlxSqliteConnector};

pub use billing::SqlBilling;
pub use directory::SqlDirectory;
pub use fleet::SqlFleet;
pub use pool::SqlStore;
pub use session::ReadSession;

/// Where the transactional store lives.
#[derive(Debug, Clone)]
pub enum StoreLocation {
    /// `postgres://…` URL.
    Postgres { url: String },
    /// SQLite database file (created when missing).
    Sqlite { path: std::path::PathBuf },
}

impl StoreLocation {
    /// What to print about it: the URL without its password, or the file path.
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::Postgres { url } => redact_url(url),
            StoreLocation::Sqlite { path } => path.display().to_string(),
        }
    }
}

pub use ioto_domain::redact_url;

fn unreachable(loc: &StoreLocation, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("transactional store at {} ({e})", loc.describe()))
}

/// Applies pending migrations as the connecting (owning) user, not as `ioto_app`.
pub async fn migrate(loc: &StoreLocation) -> Result<()> {
    let db = match loc {
        StoreLocation::Postgres { url } => {
            let opts: PgConnectOptions = url.parse().map_err(|e| unreachable(loc, e))?;
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts.disable_statement_logging())
                .await
                .map_err(|e| unreachable(loc, e))?;
            // Creating the shared `ioto_app` role races when several databases migrate at once.
            pool.execute("SELECT pg_advisory_lock(7250001)")
                .await
                .map_err(|e| unreachable(loc, e))?;
            SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
        }
        StoreLocation::Sqlite { .. } => sqlite_connection(loc, 1).await?,
    };
    Migrator::up(&db, None)
        .await
        .map_err(|e| Error::Internal(format!("migration failed: {e}")))?;
    db.close().await.map_err(error::db)?;
    Ok(())
}

/// Held while the usage store migrates, so that processes started together (several `ioto serve`
/// instances) apply a usage-store migration one at a time: ClickHouse migration 11 copies its
/// tables into new ones and renames them, which two processes side by side would lose or
/// double. A session-level advisory lock on the transactional store, released when this is
/// dropped (its connection closes). A SQLite store belongs to one process: nothing is held.
pub struct MigrationLock {
    _connection: Option<sea_orm::sqlx::PgConnection>,
}

/// Waits for, then takes, the usage-store migration lock (see [`MigrationLock`]).
pub async fn lock_usage_migrations(loc: &StoreLocation) -> Result<MigrationLock> {
    match loc {
        StoreLocation::Postgres { url } => {
            let opts: PgConnectOptions = url.parse().map_err(|e| unreachable(loc, e))?;
            let mut connection = opts
                .disable_statement_logging()
                .connect()
                .await
                .map_err(|e| unreachable(loc, e))?;
            connection
                .execute("SELECT pg_advisory_lock(7250003)")
                .await
                .map_err(|e| unreachable(loc, e))?;
            Ok(MigrationLock {
                _connection: Some(connection),
            })
        }
        StoreLocation::Sqlite { .. } => Ok(MigrationLock { _connection: None }),
    }
}

/// Refreshes planner statistics (Postgres `ANALYZE`, SQLite `ANALYZE`) as the connecting user, after
/// bulk loads that autovacuum has not caught up with yet.
pub async fn analyze(loc: &StoreLocation) -> Result<()> {
    let db = match loc {
        StoreLocation::Postgres { url } => {
            let opts: PgConnectOptions = url.parse().map_err(|e| unreachable(loc, e))?;
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(opts.disable_statement_logging())
                .await
                .map_err(|e| unreachable(loc, e))?;
            SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
        }
        StoreLocation::Sqlite { .. } => sqlite_connection(loc, 1).await?,
    };
    use sea_orm::ConnectionTrait as _;
    db.execute_unprepared("ANALYZE").await.map_err(error::db)?;
    db.close().await.map_err(error::db)?;
    Ok(())
}

/// Page cache per SQLite connection, in KiB (a negative `cache_size` is KiB, not pages).
const SQLITE_CACHE_KIB: &str = "-512";

/// Prepared statements each SQLite connection keeps (sqlx's default is 100; each holds SQLite's
/// compiled program, and a pool of 16 connections serving many different queries kept adding to a
/// long-running demo's memory for half an hour).
pub const SQLITE_STATEMENTS: usize = 24;

async fn sqlite_connection(loc: &StoreLocation, max: u32) -> Result<DatabaseConnection> {
    let StoreLocation::Sqlite { path } = loc else {
        unreachable!("sqlite location")
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| unreachable(loc, e))?;
    }
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .foreign_keys(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10))
        // Each pooled connection keeps its own page cache (2 MiB by default); with a pool of
        // 16 that was 30 MB of a demo's heap. The OS page cache holds the file as well.
        .pragma("cache_size", SQLITE_CACHE_KIB)
        .statement_cache_capacity(SQLITE_STATEMENTS)
        .disable_statement_logging();
    let pool = SqlitePoolOptions::new()
        .max_connections(max)
        .connect_with(opts)
        .await
        .map_err(|e| unreachable(loc, e))?;
    Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
}

/// Opens the store for serving. On Postgres every pooled connection works as `ioto_app`.
pub async fn connect(loc: &StoreLocation, max_connections: u32) -> Result<SqlStore> {
    let (db, engine) = match loc {
        StoreLocation::Postgres { url } => {
            let opts: PgConnectOptions = url.parse().map_err(|e| unreachable(loc, e))?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(5))
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute(format!("SET ROLE {APP_ROLE}").as_str()).await?;
                        Ok(())
                    })
                })
                .connect_with(opts.disable_statement_logging())
                .await
                .map_err(|e| unreachable(loc, e))?;
            (SqlxPostgresConnector::from_sqlx_postgres_pool(pool), "postgres")
        }
        StoreLocation::Sqlite { .. } => (sqlite_connection(loc, max_connections).await?, "sqlite"),
    };
    Ok(SqlStore::new(
        db,
        EngineInfo {
            engine,
            location: loc.describe(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://ioto:s3cret@db:5432/ioto"),
            "postgres://ioto:***@db:5432/ioto"
        );
        assert_eq!(redact_url("postgres://ioto@db/ioto"), "postgres://ioto@db/ioto");
        assert_eq!(redact_url("/var/lib/ioto.sqlite"), "/var/lib/ioto.sqlite");
        // A password holding `@` is hidden whole; an `@` after the host is not a password.
        assert_eq!(
            redact_url("postgres://ioto:p@ss@w0rd@db:5432/ioto?x=a@b"),
            "postgres://ioto:***@db:5432/ioto?x=a@b"
        );
        assert_eq!(redact_url("http://ch:8123/?user=a@b"), "http://ch:8123/?user=a@b");
    }
}
