//! Usage store on ClickHouse.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use clickhouse::{Client, Row};
use ioto_domain::ports::usage::check_usage_batch;
use ioto_domain::ports::{
    period_start, CdrRecord, CustomerUsagePoint, DailyUsage, EngineInfo, Granularity, HistoryQuery,
    ReconciliationQuery, ReconciliationRow, SessionUpdate, UsagePoint, UsageRecord, UsageStore,
    SESSION_RETENTION_DAYS, TELEMETRY_RETENTION_DAYS,
};
use ioto_domain::usage::TelemetryReading;
use ioto_domain::{CustomerId, DeviceId, Error, Result, TenantId};
use ioto_migrations::CLICKHOUSE;
use serde::{Deserialize, Serialize};

use crate::{date_to_days, days_to_date, parse_version, roll_up, stored_customer};

/// How to reach ClickHouse.
#[derive(Clone)]
pub struct ClickHouseConfig {
    /// HTTP endpoint, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &ioto_domain::redact_url(&self.url))
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

#[derive(Clone)]
pub struct ClickHouseUsage {
    config: ClickHouseConfig,
    client: Client,
}

#[derive(Row, Serialize)]
struct UsageRow<'a> {
    tenant_id: String,
    customer_id: String,
    iccid: &'a str,
    network: &'a str,
    day: u16,
    bytes_up: u64,
    bytes_down: u64,
}

#[derive(Row, Deserialize)]
struct DailyRow {
    day: u16,
    network: String,
    bytes_up: u64,
    bytes_down: u64,
    sims: u64,
}

#[derive(Row, Serialize, Deserialize)]
struct SessionRow {
    tenant_id: String,
    customer_id: String,
    iccid: String,
    session_id: String,
    started_at: u32,
    event_time: u32,
    hour: u32,
    day: u16,
    month: u16,
    mcc_mnc: String,
    rat: String,
    ip_address: String,
    cell_id: String,
    terminated: u8,
    total_in: u64,
    total_out: u64,
    delta_in: u64,
    delta_out: u64,
}

/// A live session as the queries read it (no deltas).
#[derive(Row, Deserialize)]
struct LiveRow {
    tenant_id: String,
    customer_id: String,
    iccid: String,
    session_id: String,
    started_at: u32,
    event_time: u32,
    mcc_mnc: String,
    rat: String,
    ip_address: String,
    cell_id: String,
    terminated: u8,
    total_in: u64,
    total_out: u64,
}

#[derive(Row, Deserialize)]
struct PointRow {
    period: u32,
    mcc_mnc: String,
    bytes_in: u64,
    bytes_out: u64,
}

fn secs(t: DateTime<Utc>) -> Result<u32> {
    u32::try_from(t.timestamp()).map_err(|_| Error::invalid("time", format!("{t} is outside 1970..2106")))
}

fn time(s: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::from(s), 0).unwrap_or_default()
}

impl LiveRow {
    fn into_update(self) -> Result<SessionUpdate> {
        let started_at = time(self.started_at);
        let event_time = time(self.event_time);
        Ok(SessionUpdate {
            tenant_id: TenantId::parse(&self.tenant_id, "tenant_id")
                .map_err(|e| Error::Internal(format!("stored live_sessions.tenant_id: {e}")))?,
            customer_id: stored_customer(&self.customer_id, "live_sessions")?,
            iccid: self.iccid,
            session_id: self.session_id,
            started_at,
            event_time,
            hour: period_start(event_time, Granularity::Hour),
            mcc_mnc: self.mcc_mnc,
            rat: self.rat,
            ip_address: (!self.ip_address.is_empty()).then_some(self.ip_address),
            cell_id: (!self.cell_id.is_empty()).then_some(self.cell_id),
            terminated: self.terminated == 1,
            total_in: self.total_in,
            total_out: self.total_out,
            delta_in: 0,
            delta_out: 0,
        })
    }
}

/// Columns of a live session, newest update per session (`argMax` over the unmerged rows).
/// Aliases differ from the column names: ClickHouse would read an alias inside `WHERE`.
const LIVE_COLUMNS: &str = "any(tenant_id) AS l_tenant, argMax(customer_id, event_time) AS l_customer, iccid, session_id, \
     min(started_at) AS l_started, max(event_time) AS l_event, argMax(mcc_mnc, event_time) AS l_mcc_mnc, \
     argMax(rat, event_time) AS l_rat, argMax(ip_address, event_time) AS l_ip, argMax(cell_id, event_time) AS l_cell, \
     max(terminated) AS l_terminated, max(total_in) AS l_in, max(total_out) AS l_out";

#[derive(Row, Serialize)]
struct CdrRow<'a> {
    tenant_id: String,
    customer_id: String,
    cdr_id: &'a str,
    iccid: &'a str,
    start: u32,
    end: u32,
    day: u16,
    month: u16,
    mcc_mnc: &'a str,
    bytes_in: u64,
    bytes_out: u64,
    rating_group: u32,
}

#[derive(Row, Deserialize)]
struct IdRow {
    id: String,
}

#[derive(Row, Deserialize)]
struct ReconRow {
    iccid: String,
    day: u16,
    session_in: u64,
    session_out: u64,
    cdr_in: u64,
    cdr_out: u64,
}

#[derive(Row, Deserialize)]
struct CustomerPointRow {
    period: u32,
    customer_id: String,
    mcc_mnc: String,
    bytes_in: u64,
    bytes_out: u64,
}

#[derive(Row, Deserialize)]
struct PartitionRow {
    table: String,
    partition: String,
}

#[derive(Row, Serialize, Deserialize)]
struct TelemetryRow {
    tenant_id: String,
    device_id: String,
    at: u32,
    day: u16,
    temperature_c: Option<f64>,
    humidity_pct: Option<f64>,
    battery_pct: Option<f64>,
    light_lux: Option<f64>,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

/// Whether a partition of a table without TTL lies wholly before the retention cut-off.
fn partition_expired(table: &str, partition: &str, now: DateTime<Utc>) -> bool {
    let digits: String = partition.chars().filter(char::is_ascii_digit).collect();
    let session_cut = (now - chrono::Duration::days(SESSION_RETENTION_DAYS)).date_naive();
    let telemetry_cut = (now - chrono::Duration::days(TELEMETRY_RETENTION_DAYS)).date_naive();
    match table {
        // `day` ('2026-11-15') and toYYYYMMDD(started_at) (20261115): one day each.
        "session_updates" | "live_sessions" => NaiveDate::parse_from_str(&digits, "%Y%m%d")
            .map(|d| d < session_cut)
            .unwrap_or(false),
        // toYYYYMM(day): a month, dropped once its last day is past the cut-off.
        "device_telemetry" => NaiveDate::parse_from_str(&format!("{digits}01"), "%Y%m%d")
            .ok()
            .and_then(|first| first.checked_add_months(chrono::Months::new(1)))
            .map(|next| next <= telemetry_cut)
            .unwrap_or(false),
        _ => false,
    }
}

#[derive(Row, Deserialize)]
struct VersionRow {
    version: u32,
}

/// Maps a client error; the caller decides whether to log (the API logs `Unavailable` and
/// `Internal` with the request id; start-up prints it as its one line).
fn unavailable(config: &ClickHouseConfig, e: clickhouse::error::Error) -> Error {
    let url = ioto_domain::redact_url(&config.url);
    match e {
        clickhouse::error::Error::Network(e) => Error::Unavailable(format!("ClickHouse at {url} ({e})")),
        other => Error::Internal(format!("ClickHouse at {url}: {other}")),
    }
}

impl ClickHouseUsage {
    /// Builds the client and checks the server answers; does not create anything.
    pub async fn connect(config: ClickHouseConfig) -> Result<Self> {
        let client = Self::client(&config).with_database(&config.database);
        let store = Self { config, client };
        store.server_version().await?;
        Ok(store)
    }

    fn client(config: &ClickHouseConfig) -> Client {
        let mut c = Client::default().with_url(&config.url);
        if let Some(u) = &config.user {
            c = c.with_user(u);
        }
        if let Some(p) = &config.password {
            c = c.with_password(p);
        }
        c
    }

    /// Creates the database when missing (as `ioto migrate` does before the DDL).
    pub async fn create_database(config: &ClickHouseConfig) -> Result<()> {
        check_identifier(&config.database)?;
        Self::client(config)
            .query(&format!("CREATE DATABASE IF NOT EXISTS {}", config.database))
            .execute()
            .await
            .map_err(|e| unavailable(config, e))
    }

    /// Drops the database (tests clean up after themselves with this).
    pub async fn drop_database(config: &ClickHouseConfig) -> Result<()> {
        check_identifier(&config.database)?;
        Self::client(config)
            .query(&format!("DROP DATABASE IF EXISTS {}", config.database))
            .execute()
            .await
            .map_err(|e| unavailable(config, e))
    }

    fn err(&self, e: clickhouse::error::Error) -> Error {
        unavailable(&self.config, e)
    }

    /// One INSERT of `rows` into `table` (one request; a block per partition).
    async fn insert_rows<T>(&self, table: &str, rows: &[T]) -> Result<()>
    where
        T: Row + Serialize,
    {
        let mut insert = self.client.insert(table).map_err(|e| self.err(e))?;
        for row in rows {
            insert.write(row).await.map_err(|e| self.err(e))?;
        }
        insert.end().await.map_err(|e| self.err(e))
    }

    /// Whether the server understands `TTL` clauses (19.6 and later).
    async fn ttl_supported(&self) -> Result<bool> {
        let (major, minor) = parse_version(&self.server_version().await?);
        Ok(major > 19 || (major == 19 && minor >= 6))
    }
}

fn check_identifier(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "clickhouse.database",
            format!("'{name}' must be letters, digits and '_', not starting with a digit"),
        ))
    }
}

#[async_trait]
impl UsageStore for ClickHouseUsage {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            engine: "clickhouse",
            location: format!("{} (database {})", self.config.url, self.config.database),
        }
    }

    async fn ping(&self) -> Result<()> {
        self.client
            .query("SELECT 1")
            .execute()
            .await
            .map_err(|e| self.err(e))
    }

    async fn server_version(&self) -> Result<String> {
        Self::client(&self.config)
            .query("SELECT version()")
            .fetch_one::<String>()
            .await
            .map_err(|e| self.err(e))
    }

    async fn migrate(&self) -> Result<Vec<u32>> {
        Self::create_database(&self.config).await?;
        self.client
            .query(
                "CREATE TABLE IF NOT EXISTS ioto_schema_migrations \
                 (version UInt32, name String, applied_at DateTime) ENGINE = MergeTree ORDER BY version",
            )
            .execute()
            .await
            .map_err(|e| self.err(e))?;
        let applied: Vec<u32> = self
            .client
            .query("SELECT version FROM ioto_schema_migrations ORDER BY version")
            .fetch_all::<VersionRow>()
            .await
            .map_err(|e| self.err(e))?
            .into_iter()
            .map(|r| r.version)
            .collect();
        let ttl = self.ttl_supported().await?;
        let mut now_applied = Vec::new();
        for m in CLICKHOUSE.iter().filter(|m| !applied.contains(&m.version)) {
            for stmt in m.statements(ttl) {
                self.client.query(&stmt).execute().await.map_err(|e| {
                    tracing::error!(version = m.version, statement = %stmt, "ClickHouse migration failed");
                    self.err(e)
                })?;
            }
            self.client
                .query("INSERT INTO ioto_schema_migrations (version, name, applied_at) VALUES (?, ?, now())")
                .bind(m.version)
                .bind(m.name)
                .execute()
                .await
                .map_err(|e| self.err(e))?;
            now_applied.push(m.version);
        }
        Ok(now_applied)
    }

    async fn insert_usage(&self, records: &[UsageRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        // Validate every row before the first byte is sent: a bad row fails the whole batch.
        check_usage_batch(records)?;
        let mut rows = Vec::with_capacity(records.len());
        for r in records {
            rows.push(UsageRow {
                tenant_id: r.tenant_id.to_string(),
                customer_id: r.customer_id.map(|c| c.to_string()).unwrap_or_default(),
                iccid: &r.iccid,
                network: &r.network,
                day: date_to_days(r.day)?,
                bytes_up: r.bytes_up,
                bytes_down: r.bytes_down,
            });
        }
        self.insert_rows("usage_daily", &rows).await
    }

    async fn daily_usage(&self, tenant: TenantId, from: NaiveDate, to: NaiveDate) -> Result<Vec<DailyUsage>> {
        let rows = self
            .client
            .query(
                "SELECT toUInt16(day) AS day_number, network, sum(bytes_up) AS bytes_up, sum(bytes_down) AS bytes_down, \
                 uniqExact(iccid) AS sims FROM usage_daily \
                 WHERE tenant_id = ? AND day >= toDate(?) AND day <= toDate(?) \
                 GROUP BY day, network ORDER BY day, network",
            )
            .bind(tenant.to_string())
            .bind(from.to_string())
            .bind(to.to_string())
            .fetch_all::<DailyRow>()
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|r| DailyUsage {
                day: days_to_date(r.day),
                network: r.network,
                bytes_up: r.bytes_up,
                bytes_down: r.bytes_down,
                sims: r.sims,
            })
            .collect())
    }

    async fn write_session_updates(&self, updates: &[SessionUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(updates.len());
        for u in updates {
            rows.push(SessionRow {
                tenant_id: u.tenant_id.to_string(),
                customer_id: u.customer_id.map(|c| c.to_string()).unwrap_or_default(),
                iccid: u.iccid.clone(),
                session_id: u.session_id.clone(),
                started_at: secs(u.started_at)?,
                event_time: secs(u.event_time)?,
                hour: secs(u.hour)?,
                day: date_to_days(u.hour.date_naive())?,
                month: date_to_days(period_start(u.hour, Granularity::Month).date_naive())?,
                mcc_mnc: u.mcc_mnc.clone(),
                rat: u.rat.clone(),
                ip_address: u.ip_address.clone().unwrap_or_default(),
                cell_id: u.cell_id.clone().unwrap_or_default(),
                terminated: u8::from(u.terminated),
                total_in: u.total_in,
                total_out: u.total_out,
                delta_in: u.delta_in,
                delta_out: u.delta_out,
            });
        }
        // One INSERT (a block per day partition): what lands of a failed one is recognised on retry,
        // since progress is recovered per session from `live_sessions`.
        self.insert_rows("session_updates", &rows).await
    }

    async fn session_states(&self, keys: &[(String, String)]) -> Result<Vec<SessionUpdate>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Chunks are asked concurrently.
        let lookups = keys.chunks(1000).map(|chunk| async move {
            // One placeholder per value: `IN (?, ?, …)` works on every server version and uses
            // the (iccid, session_id) key.
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut q = self.client.query(&format!(
                "SELECT {LIVE_COLUMNS} FROM live_sessions WHERE iccid IN ({marks}) AND session_id IN ({marks}) \
                 GROUP BY iccid, session_id"
            ));
            for (iccid, _) in chunk {
                q = q.bind(iccid.as_str());
            }
            for (_, session) in chunk {
                q = q.bind(session.as_str());
            }
            let wanted: std::collections::HashSet<(&str, &str)> =
                chunk.iter().map(|(i, s)| (i.as_str(), s.as_str())).collect();
            let rows: Vec<LiveRow> = q
                .fetch_all::<LiveRow>()
                .await
                .map_err(|e| self.err(e))?
                .into_iter()
                // The two IN lists also match crossed pairs; keep the asked ones.
                .filter(|r| wanted.contains(&(r.iccid.as_str(), r.session_id.as_str())))
                .collect();
            rows.into_iter().map(LiveRow::into_update).collect::<Result<Vec<_>>>()
        });
        Ok(futures::future::try_join_all(lookups)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    async fn live_session(&self, tenant: TenantId, iccid: &str) -> Result<Option<SessionUpdate>> {
        let rows = self
            .client
            .query(&format!(
                "SELECT {LIVE_COLUMNS} FROM live_sessions WHERE iccid = ? AND tenant_id = ? \
                 AND started_at >= now() - 7 * 86400 GROUP BY iccid, session_id ORDER BY l_event DESC LIMIT 1"
            ))
            .bind(iccid)
            .bind(tenant.to_string())
            .fetch_all::<LiveRow>()
            .await
            .map_err(|e| self.err(e))?;
        rows.into_iter().next().map(LiveRow::into_update).transpose()
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
        let mut sql = String::from(
            "SELECT tenant_id, customer_id, iccid, session_id, toUInt32(started_at), toUInt32(event_time), toUInt32(hour), \
             toUInt16(day), toUInt16(month), mcc_mnc, rat, ip_address, cell_id, terminated, total_in, total_out, delta_in, delta_out \
             FROM session_updates WHERE tenant_id = ? AND iccid = ? AND event_time >= toDateTime(?) AND event_time < toDateTime(?) \
             AND event_time >= now() - 7 * 86400",
        );
        if mcc_mnc.is_some() {
            sql.push_str(" AND mcc_mnc = ?");
        }
        if before.is_some() {
            sql.push_str(
                " AND (event_time < toDateTime(?) OR (event_time = toDateTime(?) AND session_id < ?))",
            );
        }
        sql.push_str(" ORDER BY event_time DESC, session_id DESC LIMIT ?");
        let mut q = self
            .client
            .query(&sql)
            .bind(tenant.to_string())
            .bind(iccid)
            .bind(secs(from)?)
            .bind(secs(to)?);
        if let Some(m) = mcc_mnc {
            q = q.bind(m);
        }
        if let Some((t, s)) = &before {
            q = q.bind(secs(*t)?).bind(secs(*t)?).bind(s.as_str());
        }
        let rows = q
            .bind(limit)
            .fetch_all::<SessionRow>()
            .await
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|r| {
                Ok(SessionUpdate {
                    tenant_id: tenant,
                    customer_id: stored_customer(&r.customer_id, "session_updates")?,
                    iccid: r.iccid,
                    session_id: r.session_id,
                    started_at: time(r.started_at),
                    event_time: time(r.event_time),
                    hour: time(r.hour),
                    mcc_mnc: r.mcc_mnc,
                    rat: r.rat,
                    ip_address: (!r.ip_address.is_empty()).then_some(r.ip_address),
                    cell_id: (!r.cell_id.is_empty()).then_some(r.cell_id),
                    terminated: r.terminated == 1,
                    total_in: r.total_in,
                    total_out: r.total_out,
                    delta_in: r.delta_in,
                    delta_out: r.delta_out,
                })
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
        // Periods are computed here in UTC from the stored hour or month, not by the server's
        // time-zone-dependent functions.
        let (sql, lower, upper) = match granularity {
            Granularity::Hour | Granularity::Day => (
                "SELECT toUInt32(hour) AS period, mcc_mnc, sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out \
                 FROM usage_hourly WHERE tenant_id = ? AND iccid = ? AND hour >= toDateTime(?) AND hour < toDateTime(?) \
                 GROUP BY hour, mcc_mnc ORDER BY hour, mcc_mnc",
                secs(from)?,
                secs(to)?,
            ),
            Granularity::Month | Granularity::Year => (
                "SELECT toUInt32(toUInt32(toUInt16(month)) * 86400) AS period, mcc_mnc, sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out \
                 FROM usage_monthly WHERE tenant_id = ? AND iccid = ? AND toUInt16(month) * 86400 >= ? AND toUInt16(month) * 86400 < ? \
                 GROUP BY month, mcc_mnc ORDER BY month, mcc_mnc",
                secs(period_start(from, Granularity::Month))?,
                secs(to)?,
            ),
        };
        let rows = self
            .client
            .query(sql)
            .bind(tenant.to_string())
            .bind(iccid)
            .bind(lower)
            .bind(upper)
            .fetch_all::<PointRow>()
            .await
            .map_err(|e| self.err(e))?;
        Ok(roll_up(
            rows.into_iter()
                .map(|r| UsagePoint {
                    period: time(r.period),
                    mcc_mnc: r.mcc_mnc,
                    bytes_in: r.bytes_in,
                    bytes_out: r.bytes_out,
                })
                .collect(),
            granularity,
        ))
    }

    async fn known_cdrs(&self, ids: &[String]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(1000) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut q = self.client.query(&format!(
                "SELECT DISTINCT cdr_id AS id FROM cdrs WHERE cdr_id IN ({marks})"
            ));
            for id in chunk {
                q = q.bind(id.as_str());
            }
            out.extend(
                q.fetch_all::<IdRow>()
                    .await
                    .map_err(|e| self.err(e))?
                    .into_iter()
                    .map(|r| r.id),
            );
        }
        Ok(out)
    }

    async fn write_cdrs(&self, cdrs: &[CdrRecord]) -> Result<()> {
        if cdrs.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(cdrs.len());
        for c in cdrs {
            rows.push(CdrRow {
                tenant_id: c.tenant_id.to_string(),
                customer_id: c.customer_id.map(|c| c.to_string()).unwrap_or_default(),
                cdr_id: &c.cdr_id,
                iccid: &c.iccid,
                start: secs(c.start)?,
                end: secs(c.end)?,
                day: date_to_days(c.start.date_naive())?,
                month: date_to_days(period_start(c.start, Granularity::Month).date_naive())?,
                mcc_mnc: &c.mcc_mnc,
                bytes_in: c.bytes_in,
                bytes_out: c.bytes_out,
                rating_group: c.rating_group,
            });
        }
        self.insert_rows("cdrs", &rows).await
    }

    async fn reconciliation(
        &self,
        tenant: TenantId,
        query: &ReconciliationQuery,
    ) -> Result<Vec<ReconciliationRow>> {
        // Both views per SIM and day side by side (UNION ALL rather than a FULL JOIN, which old
        // servers handle poorly), then summed.
        let mut filter = String::from("tenant_id = ? AND day >= toDate(?) AND day <= toDate(?)");
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
            "SELECT iccid, toUInt16(day) AS day, sum(s_in) AS session_in, sum(s_out) AS session_out, \
             sum(c_in) AS cdr_in, sum(c_out) AS cdr_out FROM ( \
               SELECT iccid, day, bytes_up AS s_in, bytes_down AS s_out, toUInt64(0) AS c_in, toUInt64(0) AS c_out \
               FROM usage_daily WHERE {filter} \
               UNION ALL \
               SELECT iccid, day, toUInt64(0) AS s_in, toUInt64(0) AS s_out, bytes_in AS c_in, bytes_out AS c_out \
               FROM billing_daily WHERE {filter} \
             ) GROUP BY iccid, day{having} ORDER BY day, iccid LIMIT ?"
        );
        let mut q = self.client.query(&sql);
        for _ in 0..2 {
            q = q
                .bind(tenant.to_string())
                .bind(query.from.to_string())
                .bind(query.to.to_string());
            if let Some(i) = &query.iccid {
                q = q.bind(i.as_str());
            }
            if let Some(c) = query.customer {
                q = q.bind(c.to_string());
            }
        }
        let rows = q
            .bind(query.limit)
            .fetch_all::<ReconRow>()
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|r| ReconciliationRow {
                iccid: r.iccid,
                day: days_to_date(r.day),
                session_in: r.session_in,
                session_out: r.session_out,
                cdr_in: r.cdr_in,
                cdr_out: r.cdr_out,
            })
            .collect())
    }

    async fn customer_usage(
        &self,
        tenant: TenantId,
        customer: Option<CustomerId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<CustomerUsagePoint>> {
        let (period, table, lower) = match granularity {
            Granularity::Hour => (
                "toUInt32(hour)",
                "usage_hourly",
                period_start(from, Granularity::Hour),
            ),
            Granularity::Day => (
                "toUInt32(toUInt32(toUInt16(day)) * 86400)",
                "customer_usage_daily",
                period_start(from, Granularity::Day),
            ),
            Granularity::Month | Granularity::Year => (
                "toUInt32(toUInt32(toUInt16(month)) * 86400)",
                "customer_usage_monthly",
                period_start(from, Granularity::Month),
            ),
        };
        let mut sql = format!(
            "SELECT {period} AS period, customer_id, mcc_mnc, sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out \
             FROM {table} WHERE tenant_id = ? AND {period} >= ? AND {period} < ?"
        );
        if customer.is_some() {
            sql.push_str(" AND customer_id = ?");
        }
        sql.push_str(" GROUP BY period, customer_id, mcc_mnc ORDER BY period, customer_id, mcc_mnc");
        let mut q = self
            .client
            .query(&sql)
            .bind(tenant.to_string())
            .bind(secs(lower)?)
            .bind(secs(to)?);
        if let Some(c) = customer {
            q = q.bind(c.to_string());
        }
        let rows = q.fetch_all::<CustomerPointRow>().await.map_err(|e| self.err(e))?;
        let mut points = Vec::with_capacity(rows.len());
        for r in rows {
            points.push(CustomerUsagePoint {
                period: time(r.period),
                customer_id: stored_customer(&r.customer_id, "customer_usage")?,
                mcc_mnc: r.mcc_mnc,
                bytes_in: r.bytes_in,
                bytes_out: r.bytes_out,
            });
        }
        Ok(crate::roll_up_customers(points, granularity))
    }

    async fn drop_expired(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        if self.ttl_supported().await? {
            return Ok(Vec::new());
        }
        let parts = self
            .client
            .query(
                "SELECT DISTINCT table, partition FROM system.parts WHERE database = currentDatabase() \
                 AND active AND table IN ('session_updates', 'live_sessions', 'device_telemetry')",
            )
            .fetch_all::<PartitionRow>()
            .await
            .map_err(|e| self.err(e))?;
        let mut dropped = Vec::new();
        for p in parts
            .into_iter()
            .filter(|p| partition_expired(&p.table, &p.partition, now))
        {
            // The partition value as system.parts prints it is a valid literal for DROP PARTITION
            // ('2026-11-15' for a Date, 20261115 for a number).
            let literal = if p.partition.contains('-') {
                format!("'{}'", p.partition.trim_matches('\''))
            } else {
                p.partition.clone()
            };
            self.client
                .query(&format!("ALTER TABLE {} DROP PARTITION {literal}", p.table))
                .execute()
                .await
                .map_err(|e| self.err(e))?;
            dropped.push(format!("{} partition {}", p.table, p.partition));
        }
        Ok(dropped)
    }

    async fn write_telemetry(&self, readings: &[(TenantId, TelemetryReading)]) -> Result<()> {
        if readings.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(readings.len());
        for (tenant, r) in readings {
            rows.push(TelemetryRow {
                tenant_id: tenant.to_string(),
                device_id: r.device_id.to_string(),
                at: secs(r.at)?,
                day: date_to_days(r.at.date_naive())?,
                temperature_c: r.temperature_c,
                humidity_pct: r.humidity_pct,
                battery_pct: r.battery_pct,
                light_lux: r.light_lux,
                latitude: r.latitude,
                longitude: r.longitude,
            });
        }
        self.insert_rows("device_telemetry", &rows).await
    }

    async fn device_telemetry(
        &self,
        tenant: TenantId,
        device: DeviceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<TelemetryReading>> {
        // FINAL: a reading delivered twice (MQTT QoS 1) is one row.
        let rows = self
            .client
            .query(
                "SELECT tenant_id, device_id, toUInt32(at) AS at, toUInt16(day) AS day, temperature_c, humidity_pct, \
                 battery_pct, light_lux, latitude, longitude FROM device_telemetry FINAL \
                 WHERE tenant_id = ? AND device_id = ? AND at >= toDateTime(?) AND at < toDateTime(?) \
                 ORDER BY at DESC LIMIT ?",
            )
            .bind(tenant.to_string())
            .bind(device.to_string())
            .bind(secs(from)?)
            .bind(secs(to)?)
            .bind(limit)
            .fetch_all::<TelemetryRow>()
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .rev()
            .map(|r| TelemetryReading {
                device_id: device,
                at: time(r.at),
                temperature_c: r.temperature_c,
                humidity_pct: r.humidity_pct,
                battery_pct: r.battery_pct,
                light_lux: r.light_lux,
                latitude: r.latitude,
                longitude: r.longitude,
            })
            .collect())
    }
}
