//! Usage store in a SQLite file: the embedded default for one machine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use ioto_domain::ports::usage::check_usage_batch;
use ioto_domain::ports::{
    period_start, DailyUsage, EngineInfo, Granularity, HistoryQuery, SessionUpdate, UsagePoint, UsageRecord,
    UsageStore,
};
use ioto_domain::{CustomerId, Error, Result, TenantId};
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
    (
        3,
        "CREATE TABLE IF NOT EXISTS session_updates (
            tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, iccid TEXT NOT NULL, session_id TEXT NOT NULL,
            started_at INTEGER NOT NULL, event_time INTEGER NOT NULL, hour INTEGER NOT NULL,
            mcc_mnc TEXT NOT NULL, rat TEXT NOT NULL, ip_address TEXT NOT NULL, cell_id TEXT NOT NULL,
            terminated INTEGER NOT NULL, total_in INTEGER NOT NULL, total_out INTEGER NOT NULL,
            delta_in INTEGER NOT NULL, delta_out INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS session_updates_sim ON session_updates (tenant_id, iccid, event_time);
        CREATE TABLE IF NOT EXISTS live_sessions (
            tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, iccid TEXT NOT NULL, session_id TEXT NOT NULL,
            started_at INTEGER NOT NULL, event_time INTEGER NOT NULL, mcc_mnc TEXT NOT NULL, rat TEXT NOT NULL,
            ip_address TEXT NOT NULL, cell_id TEXT NOT NULL, terminated INTEGER NOT NULL,
            total_in INTEGER NOT NULL, total_out INTEGER NOT NULL,
            PRIMARY KEY (iccid, session_id)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS usage_hourly (
            tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, iccid TEXT NOT NULL, mcc_mnc TEXT NOT NULL,
            hour INTEGER NOT NULL, bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, iccid, hour, mcc_mnc, customer_id)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS usage_monthly (
            tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, iccid TEXT NOT NULL, mcc_mnc TEXT NOT NULL,
            month INTEGER NOT NULL, bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, iccid, month, mcc_mnc, customer_id)
        ) WITHOUT ROWID",
    ),
];

const LIVE: &str =
    "tenant_id, customer_id, iccid, session_id, started_at, event_time, mcc_mnc, rat, ip_address, \
     cell_id, terminated, total_in, total_out";

fn live(r: &sqlx::sqlite::SqliteRow) -> Result<SessionUpdate> {
    let time = |c: &str| DateTime::from_timestamp(r.get::<i64, _>(c), 0).unwrap_or_default();
    let text = |c: &str| r.get::<String, _>(c);
    let event_time = time("event_time");
    Ok(SessionUpdate {
        tenant_id: TenantId::parse(&text("tenant_id"), "tenant_id")
            .map_err(|e| Error::Internal(format!("stored live_sessions.tenant_id: {e}")))?,
        customer_id: Some(text("customer_id"))
            .filter(|c| !c.is_empty())
            .map(|c| CustomerId::parse(&c, "customer_id"))
            .transpose()
            .map_err(|e| Error::Internal(format!("stored live_sessions.customer_id: {e}")))?,
        iccid: text("iccid"),
        session_id: text("session_id"),
        started_at: time("started_at"),
        event_time,
        hour: period_start(event_time, Granularity::Hour),
        mcc_mnc: text("mcc_mnc"),
        rat: text("rat"),
        ip_address: Some(text("ip_address")).filter(|s| !s.is_empty()),
        cell_id: Some(text("cell_id")).filter(|s| !s.is_empty()),
        terminated: r.get::<i64, _>("terminated") == 1,
        total_in: r.get::<i64, _>("total_in").unsigned_abs(),
        total_out: r.get::<i64, _>("total_out").unsigned_abs(),
        delta_in: 0,
        delta_out: 0,
    })
}

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
            for stmt in sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
                sqlx::query(stmt).execute(&mut *tx).await.map_err(db_err)?;
            }
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

    async fn write_session_updates(&self, updates: &[SessionUpdate]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for (i, u) in updates.iter().enumerate() {
            let field = |f: &str| format!("updates[{i}].{f}");
            let tenant = u.tenant_id.to_string();
            let customer = u.customer_id.map(|c| c.to_string()).unwrap_or_default();
            let (total_in, total_out) = (
                to_i64(u.total_in, field("totalIn"))?,
                to_i64(u.total_out, field("totalOut"))?,
            );
            let (delta_in, delta_out) = (
                to_i64(u.delta_in, field("deltaIn"))?,
                to_i64(u.delta_out, field("deltaOut"))?,
            );
            let hour = u.hour.timestamp();
            let month = period_start(u.hour, Granularity::Month).timestamp();
            let ip = u.ip_address.clone().unwrap_or_default();
            let cell = u.cell_id.clone().unwrap_or_default();
            sqlx::query(
                "INSERT INTO session_updates (tenant_id, customer_id, iccid, session_id, started_at, event_time, hour,
                   mcc_mnc, rat, ip_address, cell_id, terminated, total_in, total_out, delta_in, delta_out)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&tenant)
            .bind(&customer)
            .bind(&u.iccid)
            .bind(&u.session_id)
            .bind(u.started_at.timestamp())
            .bind(u.event_time.timestamp())
            .bind(hour)
            .bind(&u.mcc_mnc)
            .bind(&u.rat)
            .bind(&ip)
            .bind(&cell)
            .bind(i64::from(u.terminated))
            .bind(total_in)
            .bind(total_out)
            .bind(delta_in)
            .bind(delta_out)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            // What ClickHouse's materialized views do, in the same transaction.
            sqlx::query(
                "INSERT INTO live_sessions (tenant_id, customer_id, iccid, session_id, started_at, event_time, mcc_mnc,
                   rat, ip_address, cell_id, terminated, total_in, total_out)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (iccid, session_id) DO UPDATE SET
                   customer_id = excluded.customer_id, event_time = excluded.event_time, mcc_mnc = excluded.mcc_mnc,
                   rat = excluded.rat, ip_address = excluded.ip_address, cell_id = excluded.cell_id,
                   terminated = MAX(terminated, excluded.terminated),
                   total_in = MAX(total_in, excluded.total_in), total_out = MAX(total_out, excluded.total_out),
                   started_at = MIN(started_at, excluded.started_at)
                 WHERE excluded.event_time >= live_sessions.event_time",
            )
            .bind(&tenant)
            .bind(&customer)
            .bind(&u.iccid)
            .bind(&u.session_id)
            .bind(u.started_at.timestamp())
            .bind(u.event_time.timestamp())
            .bind(&u.mcc_mnc)
            .bind(&u.rat)
            .bind(&ip)
            .bind(&cell)
            .bind(i64::from(u.terminated))
            .bind(total_in)
            .bind(total_out)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            for (table, column, period) in [("usage_hourly", "hour", hour), ("usage_monthly", "month", month)]
            {
                sqlx::query(&format!(
                    "INSERT INTO {table} (tenant_id, customer_id, iccid, mcc_mnc, {column}, bytes_in, bytes_out)
                     VALUES (?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (tenant_id, iccid, {column}, mcc_mnc, customer_id) DO UPDATE SET
                       bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out"
                ))
                .bind(&tenant)
                .bind(&customer)
                .bind(&u.iccid)
                .bind(&u.mcc_mnc)
                .bind(period)
                .bind(delta_in)
                .bind(delta_out)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
            sqlx::query(
                "INSERT INTO usage_daily (tenant_id, customer_id, iccid, network, day, bytes_up, bytes_down)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (tenant_id, day, network, customer_id, iccid) DO UPDATE SET
                   bytes_up = bytes_up + excluded.bytes_up, bytes_down = bytes_down + excluded.bytes_down",
            )
            .bind(&tenant)
            .bind(&customer)
            .bind(&u.iccid)
            .bind(&u.mcc_mnc)
            .bind(u.hour.date_naive().to_string())
            .bind(delta_in)
            .bind(delta_out)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn session_states(&self, keys: &[(String, String)]) -> Result<Vec<SessionUpdate>> {
        let mut out = Vec::new();
        for (iccid, session) in keys {
            let row = sqlx::query(&format!(
                "SELECT {LIVE} FROM live_sessions WHERE iccid = ? AND session_id = ?"
            ))
            .bind(iccid)
            .bind(session)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
            if let Some(r) = row {
                out.push(live(&r)?);
            }
        }
        Ok(out)
    }

    async fn live_session(&self, tenant: TenantId, iccid: &str) -> Result<Option<SessionUpdate>> {
        let week_ago = (Utc::now() - chrono::Duration::days(7)).timestamp();
        let row = sqlx::query(&format!(
            "SELECT {LIVE} FROM live_sessions WHERE iccid = ? AND tenant_id = ? AND started_at >= ?
             ORDER BY event_time DESC LIMIT 1"
        ))
        .bind(iccid)
        .bind(tenant.to_string())
        .bind(week_ago)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(live).transpose()
    }

    async fn session_history(
        &self,
        tenant: TenantId,
        iccid: &str,
        query: &HistoryQuery,
    ) -> Result<Vec<SessionUpdate>> {
        let (mcc_mnc, from, to, before, limit) = (
            query.mcc_mnc.as_deref(),
            query.from,
            query.to,
            query.before.clone(),
            query.limit,
        );
        let week_ago = (Utc::now() - chrono::Duration::days(7)).timestamp();
        let (bt, bs) = before.map_or((i64::MAX, String::new()), |(t, s)| (t.timestamp(), s));
        let rows = sqlx::query(&format!(
            "SELECT {LIVE}, hour, delta_in, delta_out FROM session_updates
             WHERE tenant_id = ? AND iccid = ? AND event_time >= ? AND event_time < ? AND event_time >= ?
               AND (? IS NULL OR mcc_mnc = ?)
               AND (event_time < ? OR (event_time = ? AND session_id < ?) OR ? = 0)
             ORDER BY event_time DESC, session_id DESC LIMIT ?"
        ))
        .bind(tenant.to_string())
        .bind(iccid)
        .bind(from.timestamp())
        .bind(to.timestamp())
        .bind(week_ago)
        .bind(mcc_mnc)
        .bind(mcc_mnc)
        .bind(bt)
        .bind(bt)
        .bind(&bs)
        .bind(i64::from(bt != i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let mut u = live(r)?;
                u.hour = DateTime::from_timestamp(r.get::<i64, _>("hour"), 0).unwrap_or_default();
                u.delta_in = r.get::<i64, _>("delta_in").unsigned_abs();
                u.delta_out = r.get::<i64, _>("delta_out").unsigned_abs();
                Ok(u)
            })
            .collect()
    }

    async fn sim_usage(
        &self,
        tenant: TenantId,
        iccid: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<UsagePoint>> {
        let (table, column, lower) = match granularity {
            Granularity::Hour | Granularity::Day => ("usage_hourly", "hour", from.timestamp()),
            Granularity::Month | Granularity::Year => (
                "usage_monthly",
                "month",
                period_start(from, Granularity::Month).timestamp(),
            ),
        };
        let rows = sqlx::query(&format!(
            "SELECT {column} AS period, mcc_mnc, SUM(bytes_in) AS bytes_in, SUM(bytes_out) AS bytes_out FROM {table}
             WHERE tenant_id = ? AND iccid = ? AND {column} >= ? AND {column} < ?
             GROUP BY {column}, mcc_mnc ORDER BY {column}, mcc_mnc"
        ))
        .bind(tenant.to_string())
        .bind(iccid)
        .bind(lower)
        .bind(to.timestamp())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let points = rows
            .iter()
            .map(|r| UsagePoint {
                period: DateTime::from_timestamp(r.get::<i64, _>("period"), 0).unwrap_or_default(),
                mcc_mnc: r.get("mcc_mnc"),
                bytes_in: r.get::<i64, _>("bytes_in").unsigned_abs(),
                bytes_out: r.get::<i64, _>("bytes_out").unsigned_abs(),
            })
            .collect();
        Ok(crate::roll_up(points, granularity))
    }
}
