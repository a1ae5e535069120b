//! Start-up, health and retention: the versioned DDL and dropping expired partitions on servers
//! without TTL.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ioto_domain::ports::{
    EngineInfo, EngineWork, UsageEngine, SESSION_RETENTION_DAYS, TELEMETRY_RETENTION_DAYS,
};
use ioto_domain::Result;
use ioto_migrations::CLICKHOUSE;

use super::rows::{PartitionRow, VersionRow};
use super::ClickHouseUsage;

/// Whether a partition of a table without TTL lies wholly before the retention cut-off.
fn partition_expired(table: &str, partition: &str, now: DateTime<Utc>) -> bool {
    let digits: String = partition.chars().filter(char::is_ascii_digit).collect();
    let session_cut = (now - chrono::Duration::days(SESSION_RETENTION_DAYS)).date_naive();
    let telemetry_cut = (now - chrono::Duration::days(TELEMETRY_RETENTION_DAYS)).date_naive();
    match table {
        // `day` ('2026-11-15') and toYYYYMMDD(started_at) (20261115): one day each.
        "session_updates" | "live_session_states" => NaiveDate::parse_from_str(&digits, "%Y%m%d")
            .map(|d| d < session_cut)
            .unwrap_or(false),
        // toYYYYMMDD(event_time): "online now" reads minutes; a day is kept.
        "session_activity" => NaiveDate::parse_from_str(&digits, "%Y%m%d")
            .map(|d| d < (now - chrono::Duration::days(1)).date_naive())
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

/// How long a migration waits for unfinished deletes before it gives up.
const MUTATIONS_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

#[async_trait]
impl UsageEngine for ClickHouseUsage {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            engine: "clickhouse",
            location: format!(
                "{} (database {})",
                ioto_domain::redact_url(&self.config.url),
                self.config.database
            ),
        }
    }

    /// `OPTIMIZE` of a Buffer table writes every layer of it to its store.
    async fn flush_pending(&self) -> Result<()> {
        for cube in super::BUFFERED_CUBES {
            self.client
                .query(&format!("OPTIMIZE TABLE {cube}"))
                .execute()
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        self.client
            .query("SELECT 1")
            .execute()
            .await
            .map_err(|e| self.err(e))
    }

    async fn work(&self) -> Result<Option<EngineWork>> {
        #[derive(clickhouse::Row, serde::Deserialize)]
        struct Event {
            event: String,
            value: u64,
        }
        // Server-wide counters (every database); an event not yet counted is absent.
        let events = Self::client(&self.config)
            .query(
                "SELECT event, value FROM system.events WHERE event IN ('InsertQuery', \
                 'MergeTreeDataWriterBlocks', 'MergeTreeDataWriterRows', 'MergedRows', \
                 'MergesTimeMilliseconds', 'UserTimeMicroseconds', 'SystemTimeMicroseconds')",
            )
            .fetch_all::<Event>()
            .await
            .map_err(|e| self.err(e))?;
        let mut work = EngineWork::default();
        for e in events {
            match e.event.as_str() {
                "InsertQuery" => work.inserts = e.value,
                "MergeTreeDataWriterBlocks" => work.parts_written = e.value,
                "MergeTreeDataWriterRows" => work.rows_written = e.value,
                "MergedRows" => work.merged_rows = e.value,
                "MergesTimeMilliseconds" => work.merge_time = std::time::Duration::from_millis(e.value),
                _ => work.statement_cpu += std::time::Duration::from_micros(e.value),
            }
        }
        Ok(Some(work))
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
        let ttl = self.ttl_supported().await?;
        let mut now_applied = Vec::new();
        for m in CLICKHOUSE {
            // Asked again before each migration: another process migrating at the same time
            // may have applied it meanwhile, and running an early one again after a later one
            // dropped what it creates would bring that back (migration 3's `live_sessions`
            // view after migration 10).
            if self.applied_versions().await?.contains(&m.version) {
                continue;
            }
            // Deletes still running on the tables it names finish first: a migration that
            // copies a table (11) would otherwise copy rows a delete was about to remove, and
            // they would stay.
            self.settle_mutations_of(m.sql, m.version).await?;
            for stmt in m.statements_in(ttl, &self.config.database) {
                // A rename that ran (a run that stopped later, or another process) is not
                // repeated: its new name exists.
                let renamed = ioto_migrations::renamed_to(&stmt);
                if let Some(to) = renamed {
                    if self.table_exists(to).await? {
                        continue;
                    }
                }
                if let Err(e) = self.client.query(&stmt).execute().await {
                    if let Some(to) = renamed {
                        if self.table_exists(to).await? {
                            continue;
                        }
                    }
                    tracing::error!(version = m.version, statement = %stmt, "ClickHouse migration failed");
                    return Err(self.err(e));
                }
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

    async fn drop_expired(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        if self.ttl_supported().await? {
            return Ok(Vec::new());
        }
        let parts = self
            .client
            .query(
                "SELECT DISTINCT table, partition FROM system.parts WHERE database = currentDatabase() \
                 AND active AND table IN ('session_updates', 'live_session_states', 'session_activity', 'device_telemetry')",
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
}

/// A table's unfinished mutations.
#[derive(clickhouse::Row, serde::Deserialize)]
pub(crate) struct PendingRow {
    table: String,
    pending: u64,
}

impl ClickHouseUsage {
    /// Waits (polling every 100 ms, at most [`MUTATIONS_WAIT`]) until no table named in
    /// migration `version`'s `sql` has an unfinished mutation.
    async fn settle_mutations_of(&self, sql: &str, version: u32) -> Result<()> {
        let pending = self
            .settle_mutations_where(|table| sql.contains(table), Some(MUTATIONS_WAIT))
            .await?;
        if pending.is_empty() {
            return Ok(());
        }
        let tables: Vec<String> = pending
            .iter()
            .map(|p| format!("{} ({} unfinished)", p.table, p.pending))
            .collect();
        Err(ioto_domain::Error::Unavailable(format!(
            "ClickHouse migration {version} waits for unfinished deletes (mutations) on {}, and gave up after {} s: \
             see the table system.mutations (ClickHouse 18 cannot kill a mutation, so one that failed never finishes)",
            tables.join(", "),
            MUTATIONS_WAIT.as_secs()
        )))
    }

    /// Polls every 100 ms until no table of this database that `wanted` accepts has an
    /// unfinished mutation (`ALTER … DELETE` runs in the background), or `limit` has passed;
    /// what is still unfinished then (nothing when settled).
    pub(crate) async fn settle_mutations_where(
        &self,
        wanted: impl Fn(&str) -> bool,
        limit: Option<std::time::Duration>,
    ) -> Result<Vec<PendingRow>> {
        let started = std::time::Instant::now();
        loop {
            let pending: Vec<PendingRow> = self
                .client
                .query(
                    "SELECT table, count() AS pending FROM system.mutations \
                     WHERE database = currentDatabase() AND is_done = 0 GROUP BY table ORDER BY table",
                )
                .fetch_all::<PendingRow>()
                .await
                .map_err(|e| self.err(e))?
                .into_iter()
                .filter(|p| wanted(&p.table))
                .collect();
            if pending.is_empty() || limit.is_some_and(|l| started.elapsed() >= l) {
                return Ok(pending);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Whether this database holds a table (or view) named `name`.
    async fn table_exists(&self, name: &str) -> Result<bool> {
        Ok(self
            .client
            .query("SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?")
            .bind(name)
            .fetch_one::<u64>()
            .await
            .map_err(|e| self.err(e))?
            > 0)
    }

    /// The usage-store migrations recorded as applied.
    async fn applied_versions(&self) -> Result<Vec<u32>> {
        Ok(self
            .client
            .query("SELECT version FROM ioto_schema_migrations ORDER BY version")
            .fetch_all::<VersionRow>()
            .await
            .map_err(|e| self.err(e))?
            .into_iter()
            .map(|r| r.version)
            .collect())
    }
}
