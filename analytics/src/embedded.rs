//! Usage store in a SQLite file: the embedded default for one machine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use ioto_domain::ports::usage::check_usage_batch;
use ioto_domain::ports::{
    period_start, CdrRecord, CustomerUsagePoint, DailyUsage, EngineInfo, Granularity, HistoryQuery,
    ReconciliationQuery, ReconciliationRow, SessionUpdate, UsagePoint, UsageRecord, UsageStore,
    SESSION_RETENTION_DAYS, TELEMETRY_RETENTION_DAYS,
};
use ioto_domain::usage::TelemetryReading;
use ioto_domain::{CustomerId, DeviceId, Error, Result, TenantId};
use ioto_migrations::EMBEDDED_USAGE;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

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
        customer_id: crate::stored_customer(&text("customer_id"), "live_sessions")?,
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

    async fn known_cdrs(&self, ids: &[String]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!("SELECT cdr_id FROM cdrs WHERE cdr_id IN ({marks})");
            let mut q = sqlx::query_scalar::<_, String>(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            out.extend(q.fetch_all(&self.pool).await.map_err(db_err)?);
        }
        Ok(out)
    }

    async fn write_cdrs(&self, cdrs: &[CdrRecord]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for (i, c) in cdrs.iter().enumerate() {
            sqlx::query(
                "INSERT INTO cdrs (cdr_id, tenant_id, customer_id, iccid, start, end, day, mcc_mnc, bytes_in, bytes_out, rating_group)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (cdr_id) DO NOTHING",
            )
            .bind(&c.cdr_id)
            .bind(c.tenant_id.to_string())
            .bind(c.customer_id.map(|c| c.to_string()).unwrap_or_default())
            .bind(&c.iccid)
            .bind(c.start.timestamp())
            .bind(c.end.timestamp())
            .bind(c.start.date_naive().to_string())
            .bind(&c.mcc_mnc)
            .bind(to_i64(c.bytes_in, format!("cdrs[{i}].bytesIn"))?)
            .bind(to_i64(c.bytes_out, format!("cdrs[{i}].bytesOut"))?)
            .bind(i64::from(c.rating_group))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn reconciliation(
        &self,
        tenant: TenantId,
        query: &ReconciliationQuery,
    ) -> Result<Vec<ReconciliationRow>> {
        let mut filter = String::from("tenant_id = ? AND day >= ? AND day <= ?");
        if query.iccid.is_some() {
            filter.push_str(" AND iccid = ?");
        }
        if query.customer.is_some() {
            filter.push_str(" AND customer_id = ?");
        }
        let having = if query.only_differences {
            " HAVING session_in != cdr_in OR session_out != cdr_out"
        } else {
            ""
        };
        let sql = format!(
            "SELECT iccid, day, SUM(s_in) AS session_in, SUM(s_out) AS session_out, SUM(c_in) AS cdr_in, SUM(c_out) AS cdr_out
             FROM (SELECT iccid, day, bytes_up AS s_in, bytes_down AS s_out, 0 AS c_in, 0 AS c_out FROM usage_daily WHERE {filter}
                   UNION ALL
                   SELECT iccid, day, 0, 0, bytes_in, bytes_out FROM cdrs WHERE {filter})
             GROUP BY iccid, day{having} ORDER BY day, iccid LIMIT ?"
        );
        let mut q = sqlx::query(&sql);
        for _ in 0..2 {
            q = q
                .bind(tenant.to_string())
                .bind(query.from.to_string())
                .bind(query.to.to_string());
            if let Some(i) = &query.iccid {
                q = q.bind(i.clone());
            }
            if let Some(c) = query.customer {
                q = q.bind(c.to_string());
            }
        }
        let rows = q
            .bind(i64::try_from(query.limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let day: String = r.get("day");
                Ok(ReconciliationRow {
                    iccid: r.get("iccid"),
                    day: day
                        .parse()
                        .map_err(|_| Error::Internal(format!("stored usage day '{day}' is invalid")))?,
                    session_in: r.get::<i64, _>("session_in").unsigned_abs(),
                    session_out: r.get::<i64, _>("session_out").unsigned_abs(),
                    cdr_in: r.get::<i64, _>("cdr_in").unsigned_abs(),
                    cdr_out: r.get::<i64, _>("cdr_out").unsigned_abs(),
                })
            })
            .collect()
    }

    async fn customer_usage(
        &self,
        tenant: TenantId,
        customer: Option<CustomerId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<CustomerUsagePoint>> {
        // Summed from the per-SIM cubes (one machine needs no separate sub-customer cube).
        let (table, column, lower) = match granularity {
            Granularity::Hour | Granularity::Day => (
                "usage_hourly",
                "hour",
                period_start(from, granularity).timestamp(),
            ),
            Granularity::Month | Granularity::Year => (
                "usage_monthly",
                "month",
                period_start(from, Granularity::Month).timestamp(),
            ),
        };
        let mut sql = format!(
            "SELECT {column} AS period, customer_id, mcc_mnc, SUM(bytes_in) AS bytes_in, SUM(bytes_out) AS bytes_out
             FROM {table} WHERE tenant_id = ? AND {column} >= ? AND {column} < ?"
        );
        if customer.is_some() {
            sql.push_str(" AND customer_id = ?");
        }
        sql.push_str(&format!(" GROUP BY {column}, customer_id, mcc_mnc"));
        let mut q = sqlx::query(&sql)
            .bind(tenant.to_string())
            .bind(lower)
            .bind(to.timestamp());
        if let Some(c) = customer {
            q = q.bind(c.to_string());
        }
        let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
        let mut points = Vec::with_capacity(rows.len());
        for r in &rows {
            let c: String = r.get("customer_id");
            points.push(CustomerUsagePoint {
                period: DateTime::from_timestamp(r.get::<i64, _>("period"), 0).unwrap_or_default(),
                customer_id: crate::stored_customer(&c, table)?,
                mcc_mnc: r.get("mcc_mnc"),
                bytes_in: r.get::<i64, _>("bytes_in").unsigned_abs(),
                bytes_out: r.get::<i64, _>("bytes_out").unsigned_abs(),
            });
        }
        Ok(crate::roll_up_customers(points, granularity))
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

    async fn write_telemetry(&self, readings: &[(TenantId, TelemetryReading)]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for (tenant, r) in readings {
            sqlx::query(
                "INSERT INTO device_telemetry (tenant_id, device_id, at, temperature_c, humidity_pct, battery_pct,
                   light_lux, latitude, longitude) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (tenant_id, device_id, at) DO UPDATE SET
                   temperature_c = excluded.temperature_c, humidity_pct = excluded.humidity_pct,
                   battery_pct = excluded.battery_pct, light_lux = excluded.light_lux,
                   latitude = excluded.latitude, longitude = excluded.longitude",
            )
            .bind(tenant.to_string())
            .bind(r.device_id.to_string())
            .bind(r.at.timestamp())
            .bind(r.temperature_c)
            .bind(r.humidity_pct)
            .bind(r.battery_pct)
            .bind(r.light_lux)
            .bind(r.latitude)
            .bind(r.longitude)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn device_telemetry(
        &self,
        tenant: TenantId,
        device: DeviceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<TelemetryReading>> {
        let rows = sqlx::query(
            "SELECT at, temperature_c, humidity_pct, battery_pct, light_lux, latitude, longitude FROM device_telemetry
             WHERE tenant_id = ? AND device_id = ? AND at >= ? AND at < ? ORDER BY at DESC LIMIT ?",
        )
        .bind(tenant.to_string())
        .bind(device.to_string())
        .bind(from.timestamp())
        .bind(to.timestamp())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(rows
            .iter()
            .rev()
            .map(|r| TelemetryReading {
                device_id: device,
                at: DateTime::from_timestamp(r.get::<i64, _>("at"), 0).unwrap_or_default(),
                temperature_c: r.get("temperature_c"),
                humidity_pct: r.get("humidity_pct"),
                battery_pct: r.get("battery_pct"),
                light_lux: r.get("light_lux"),
                latitude: r.get("latitude"),
                longitude: r.get("longitude"),
            })
            .collect())
    }
}
