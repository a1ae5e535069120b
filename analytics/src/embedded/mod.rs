//! Usage store in a SQLite file: the embedded default for one machine. The pool and what every
//! part shares live here; the roles live beside it (`schema`, `writer`, `reader`, `telemetry`),
//! the DDL in `migrations/embedded/`.

mod reader;
mod schema;
mod telemetry;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ioto_domain::ports::SessionUpdate;
use ioto_domain::{Error, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow};
use sqlx::{Row, SqlitePool};

use crate::stored::SessionColumns;

#[derive(Clone)]
pub struct EmbeddedUsage {
    pub(crate) pool: SqlitePool,
    path: PathBuf,
}

pub(crate) fn db_err(e: sqlx::Error) -> Error {
    match e {
        e @ (sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) => {
            Error::Unavailable(format!("the embedded usage store ({e})"))
        }
        // A sum in a cube outgrew SQLite's 64-bit integers: this write's content, not the store.
        sqlx::Error::Database(d) if d.message().contains("integer overflow") => Error::invalid(
            "bytes",
            format!("a usage total would exceed {} ({})", i64::MAX, d.message()),
        ),
        other => Error::Internal(format!("embedded usage store: {other}")),
    }
}

/// SQLite stores signed 64-bit integers; byte counters beyond that are refused, not wrapped.
fn to_i64(v: u64, field: String) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::invalid(field, format!("{v} exceeds {}", i64::MAX)))
}

/// Counters are written through [`to_i64`], so they read back non-negative.
fn counter(r: &SqliteRow, column: &str) -> u64 {
    r.get::<i64, _>(column).unsigned_abs()
}

/// The columns of a live session (also the first columns of a session update).
const LIVE: &str =
    "tenant_id, customer_id, iccid, session_id, started_at, event_time, mcc_mnc, rat, ip_address, \
     cell_id, terminated, total_in, total_out";

/// A row selected with [`LIVE`] (and, from `session_updates`, `hour` and the deltas).
fn session(r: &SqliteRow, table: &str) -> Result<SessionUpdate> {
    let updates = table == "session_updates";
    SessionColumns {
        tenant_id: r.get("tenant_id"),
        customer_id: r.get("customer_id"),
        iccid: r.get("iccid"),
        session_id: r.get("session_id"),
        started_at: r.get("started_at"),
        event_time: r.get("event_time"),
        hour: updates.then(|| r.get("hour")),
        mcc_mnc: r.get("mcc_mnc"),
        rat: r.get("rat"),
        ip_address: r.get("ip_address"),
        cell_id: r.get("cell_id"),
        terminated: r.get::<i64, _>("terminated") == 1,
        total_in: counter(r, "total_in"),
        total_out: counter(r, "total_out"),
        delta_in: if updates { counter(r, "delta_in") } else { 0 },
        delta_out: if updates { counter(r, "delta_out") } else { 0 },
    }
    .into_update(table)
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
            // 1 MiB of page cache per connection (SQLite's default is 2 MiB); the OS caches
            // the file too, and the cubes' hot pages are few.
            .pragma("cache_size", "-1024")
            // Prepared statements kept per connection (sqlx's default is 100, each holding
            // SQLite's compiled program); the usage store runs a few dozen distinct ones.
            .statement_cache_capacity(32)
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
