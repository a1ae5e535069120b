//! Start-up, health and retention of the embedded store (SQLite has no TTL: expired rows are
//! deleted).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::ports::{EngineInfo, UsageEngine, SESSION_RETENTION_DAYS, TELEMETRY_RETENTION_DAYS};
use ioto_domain::Result;
use ioto_migrations::EMBEDDED_USAGE;

use super::{db_err, EmbeddedUsage};

#[async_trait]
impl UsageEngine for EmbeddedUsage {
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
        for m in EMBEDDED_USAGE
            .iter()
            .filter(|m| !applied.contains(&i64::from(m.version)))
        {
            for stmt in m.statements(false) {
                sqlx::query(&stmt).execute(&mut *tx).await.map_err(db_err)?;
            }
            sqlx::query(
                "INSERT INTO ioto_schema_migrations (version, applied_at) VALUES (?, datetime('now'))",
            )
            .bind(i64::from(m.version))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            now.push(m.version);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(now)
    }

    async fn drop_expired(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        let session_cut = (now - chrono::Duration::days(SESSION_RETENTION_DAYS)).timestamp();
        let telemetry_cut = (now - chrono::Duration::days(TELEMETRY_RETENTION_DAYS)).timestamp();
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let mut dropped = Vec::new();
        for (table, column, cut) in [
            ("session_updates", "event_time", session_cut),
            ("live_sessions", "started_at", session_cut),
            ("device_telemetry", "at", telemetry_cut),
        ] {
            let n = sqlx::query(&format!("DELETE FROM {table} WHERE {column} < ?"))
                .bind(cut)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
            if n > 0 {
                dropped.push(format!("{table}: {n} rows"));
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(dropped)
    }
}
