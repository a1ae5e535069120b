//! Usage store on ClickHouse: the client and what every part shares; the roles live beside it
//! (`schema` start-up and retention, `writer` the ingest worker's writes, `reader` the API's
//! queries, `telemetry` device readings), the row layouts in `rows`.

mod config;
mod reader;
mod rows;
mod schema;
mod telemetry;
mod writer;

use clickhouse::{Client, Row};
use ioto_domain::ports::UsageEngine;
use ioto_domain::{Error, Result};
use serde::Serialize;

pub use config::ClickHouseConfig;
use config::{check_identifier, unavailable};

/// The cubes fed by `session_updates`' views through a Buffer table of the cube's name, written
/// to `<cube>_store` once a second (migrations 12 and 13).
pub const BUFFERED_CUBES: [&str; 9] = [
    "usage_hourly",
    "usage_monthly",
    "usage_daily",
    "customer_usage_daily",
    "customer_usage_monthly",
    "sessions_hourly",
    "network_usage_monthly",
    "sims_monthly",
    "sim_daily",
];

/// The table a read of `table` names: a buffered cube's store, any other table itself.
///
/// A read of a Buffer table reads its store and then its buffer, and a flush in between moves
/// rows out of the buffer into a store already read: the read misses them (ClickHouse#35249; a
/// pipeline test saw a day's session bytes come out short of its CDRs once in five runs). The
/// store only ever gains rows, so reads of it never go back; a byte shows there once its buffer
/// is written, within about a second of its insert (the live view, `live_session_states`, is
/// not buffered and shows it at once).
pub(crate) fn read_from(table: &str) -> std::borrow::Cow<'_, str> {
    if BUFFERED_CUBES.contains(&table) {
        format!("{table}_store").into()
    } else {
        table.into()
    }
}

#[derive(Clone)]
pub struct ClickHouseUsage {
    pub(crate) config: ClickHouseConfig,
    pub(crate) client: Client,
    /// Plain HTTP for what the client has no call for (`Native` inserts).
    pub(crate) http: reqwest::Client,
}

impl ClickHouseUsage {
    /// Builds the client and checks the server answers; does not create anything.
    pub async fn connect(config: ClickHouseConfig) -> Result<Self> {
        let client = Self::client(&config).with_database(&config.database);
        let store = Self {
            config,
            client,
            // Idle connections kept 2 s, as the `clickhouse` crate does: ClickHouse closes
            // them after 3, and a request with a streamed body cannot be retried.
            http: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .connect_timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(|e| Error::Internal(format!("HTTP client for ClickHouse: {e}")))?,
        };
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

    pub(crate) fn err(&self, e: clickhouse::error::Error) -> Error {
        unavailable(&self.config, e)
    }

    /// One INSERT of `rows` into `table` (one request; a block per partition).
    pub(crate) async fn insert_rows<T>(&self, table: &str, rows: &[T]) -> Result<()>
    where
        T: Row + Serialize,
    {
        // The materialized views an insert feeds (ten behind `session_updates`) are filled
        // side by side instead of one after the other: 700 session updates in 26 instead of
        // 27 ms at the median, 2,000 in 100 instead of 140 ms (ClickHouse 18.16; the view
        // writes wait on the file system as much as on the cores). What lands of a failed insert
        // is the same either way: some views or none.
        let mut insert = self
            .client
            .insert(table)
            .map_err(|e| self.err(e))?
            .with_option("parallel_view_processing", "1");
        for row in rows {
            insert.write(row).await.map_err(|e| self.err(e))?;
        }
        insert.end().await.map_err(|e| self.err(e))
    }

    /// Whether the server understands `TTL` clauses (19.6 and later).
    async fn ttl_supported(&self) -> Result<bool> {
        let (major, minor) = crate::parse_version(&self.server_version().await?);
        Ok(major > 19 || (major == 19 && minor >= 6))
    }
}
