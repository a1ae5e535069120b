//! Usage store on ClickHouse.

use async_trait::async_trait;
use chrono::NaiveDate;
use clickhouse::{Client, Row};
use ioto_domain::ports::usage::check_usage_batch;
use ioto_domain::ports::{DailyUsage, EngineInfo, UsageRecord, UsageStore};
use ioto_domain::{Error, Result, TenantId};
use ioto_migrations::CLICKHOUSE;
use serde::{Deserialize, Serialize};

use crate::{date_to_days, days_to_date, parse_version};

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
        let mut insert = self.client.insert("usage_daily").map_err(|e| self.err(e))?;
        for row in &rows {
            insert.write(row).await.map_err(|e| self.err(e))?;
        }
        insert.end().await.map_err(|e| self.err(e))
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
}
