//! Usage store in a SQLite file: the embedded default for one machine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use ioto_domain::ports::usage::check_usage_batch;
use ioto_domain::ports::{DailyUsage, EngineInfo, UsageRecord, UsageStore};
use ioto_domain::{Error, Result, TenantId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

/// Schema versions of the embedded store, mirroring the ClickHouse ones it needs.
const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        "CREATE TABLE IF NOT EXISTS usage_daily (
            tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, iccid TEXT NOT NULL,
            network TEXT NOT NULL, day TEXT NOT NULL,
            bytes_up INTEGER NOT NULL, bytes_down INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, day, network, customer_id, iccid)
        ) WITHOUT ROWID",
    ),
    (
        2,
        "CREATE TABLE IF NOT EXISTS session_landing (
            received_at TEXT NOT NULL, tenant_id TEXT NOT NULL, iccid TEXT NOT NULL,
            session_id TEXT NOT NULL, network TEXT NOT NULL,
            bytes_up INTEGER NOT NULL, bytes_down INTEGER NOT NULL, event_time TEXT NOT NULL
        )",
    ),
];

#[derive(Clone)]
pub struct EmbeddedUsage {
    pool: SqlitePool,
    path: PathBuf,
}

fn db_err(e: sqlx::Error) -> Error {
    match e {
        e @ (sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) => {
            Error::Unavailable(format!("the embedded usage store ({e})"))
        }
        other => Error::Internal(format!("embedded usage store: {other}")),
    }
}

/// SQLite stores signed 64-bit integers; byte counters beyond that are refused, not wrapped.
fn to_i64(v: u64, field: String) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::invalid(field, format!("{v} exceeds {}", i64::MAX)))
}

impl EmbeddedUsage {
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::Unavailable(format!("embedded usage store at {} ({e})", path.display()))
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|e| Error::Unavailable(format!("embedded usage store at {} ({e})", path.display())))?;
        Ok(Self {
            pool,
            path: path.to_owned(),
        })
    }
}

#[async_trait]
impl UsageStore for EmbeddedUsage {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            engine: "embedded",
            location: self.path.display().to_string(),
        }
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db_err)
    }

    async fn server_version(&self) -> Result<String> {
        let v: String = sqlx::query_scalar("SELECT sqlite_version()")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(format!("embedded (SQLite {v})"))
    }

    async fn migrate(&self) -> Result<Vec<u32>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("CREATE TABLE IF NOT EXISTS ioto_schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM ioto_schema_migrations")
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut now = Vec::new();
        for (version, sql) in MIGRATIONS
            .iter()
            .filter(|(v, _)| !applied.contains(&i64::from(*v)))
        {
            sqlx::query(sql).execute(&mut *tx).await.map_err(db_err)?;
            sqlx::query(
                "INSERT INTO ioto_schema_migrations (version, applied_at) VALUES (?, datetime('now'))",
            )
            .bind(i64::from(*version))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            now.push(*version);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(now)
    }

    async fn insert_usage(&self, records: &[UsageRecord]) -> Result<()> {
        check_usage_batch(records)?;
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for (i, r) in records.iter().enumerate() {
            sqlx::query(
                "INSERT INTO usage_daily (tenant_id, customer_id, iccid, network, day, bytes_up, bytes_down)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (tenant_id, day, network, customer_id, iccid) DO UPDATE SET
                   bytes_up = bytes_up + excluded.bytes_up, bytes_down = bytes_down + excluded.bytes_down",
            )
            .bind(r.tenant_id.to_string())
            .bind(r.customer_id.map(|c| c.to_string()).unwrap_or_default())
            .bind(&r.iccid)
            .bind(&r.network)
            .bind(r.day.to_string())
            .bind(to_i64(r.bytes_up, format!("records[{i}].bytesUp"))?)
            .bind(to_i64(r.bytes_down, format!("records[{i}].bytesDown"))?)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        // Nothing is visible until every row went in.
        tx.commit().await.map_err(db_err)
    }

    async fn daily_usage(&self, tenant: TenantId, from: NaiveDate, to: NaiveDate) -> Result<Vec<DailyUsage>> {
        let rows = sqlx::query(
            "SELECT day, network, SUM(bytes_up) AS up, SUM(bytes_down) AS down, COUNT(DISTINCT iccid) AS sims
             FROM usage_daily WHERE tenant_id = ? AND day >= ? AND day <= ?
             GROUP BY day, network ORDER BY day, network",
        )
        .bind(tenant.to_string())
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter()
            .map(|row| {
                let day: String = row.get("day");
                let up: i64 = row.get("up");
                let down: i64 = row.get("down");
                let sims: i64 = row.get("sims");
                Ok(DailyUsage {
                    day: day
                        .parse()
                        .map_err(|_| Error::Internal(format!("stored usage day '{day}' is invalid")))?,
                    network: row.get("network"),
                    bytes_up: up.unsigned_abs(),
                    bytes_down: down.unsigned_abs(),
                    sims: sims.unsigned_abs(),
                })
            })
            .collect()
    }
}
