//! Synthetic session updates for `ioto-bench analytics`, inserted into ClickHouse's
//! `session_updates` by ClickHouse itself (`INSERT … SELECT … FROM numbers()`), so they go through
//! the same materialized views the ingest worker's inserts feed.

use chrono::{DateTime, Utc};
use clickhouse::Row;
use ioto_domain::ports::UsageEngine;
use ioto_domain::{Error, Iccid, Result, TenantId};
use serde::Serialize;

use crate::ClickHouseUsage;

/// What to generate: `updates` spread evenly over `sims` and `[from, to)`, ten updates per
/// session (the first opens it, the last terminates it), each SIM mostly on one network of
/// `networks` and moving on every 50 updates.
pub struct SyntheticSessions<'a> {
    pub tenant: TenantId,
    pub sims: &'a [Iccid],
    pub networks: &'a [String],
    pub updates: u64,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(Row, Serialize)]
struct SimRow {
    idx: u32,
    iccid: String,
}

/// Rows per `INSERT … SELECT` (ClickHouse's memory stays bounded).
const CHUNK: u64 = 10_000_000;

impl ClickHouseUsage {
    /// Generates the session updates; returns how many were inserted.
    pub async fn load_synthetic_sessions(&self, spec: &SyntheticSessions<'_>) -> Result<u64> {
        if spec.sims.is_empty() || spec.networks.is_empty() || spec.to <= spec.from {
            return Err(Error::invalid("sims", "give SIMs, networks and a range"));
        }
        let table = format!("bench_sims_{}", uuid::Uuid::new_v4().simple());
        let run =
            |sql: String| async move { self.client.query(&sql).execute().await.map_err(|e| self.err(e)) };
        run(format!(
            "CREATE TABLE {table} (idx UInt32, iccid String) ENGINE = Memory"
        ))
        .await?;
        let rows: Vec<SimRow> = spec
            .sims
            .iter()
            .enumerate()
            .map(|(i, s)| SimRow {
                idx: u32::try_from(i).unwrap_or(u32::MAX),
                iccid: s.as_str().to_owned(),
            })
            .collect();
        self.insert_rows(&table, &rows).await?;
        let sims = spec.sims.len() as u64;
        let per_sim = spec.updates.div_ceil(sims).max(1);
        let span = u64::try_from((spec.to - spec.from).num_seconds())
            .unwrap_or(1)
            .max(1);
        let step = (span / per_sim).max(1);
        let nets: Vec<String> = spec.networks.iter().map(|n| format!("'{n}'")).collect();
        let mut offset = 0;
        while offset < spec.updates {
            let chunk = CHUNK.min(spec.updates - offset);
            let from = spec.from.timestamp();
            let sql = format!(
                "INSERT INTO session_updates (tenant_id, customer_id, iccid, session_id, started_at, event_time, hour, day, month, \
                   mcc_mnc, rat, ip_address, cell_id, terminated, total_in, total_out, delta_in, delta_out) \
                 SELECT '{tenant}', '', s.iccid, concat('b', toString(j_session)), \
                   toDateTime({from} + j_session * 10 * {step} + idx % {step}), toDateTime({from} + j * {step} + idx % {step}) AS at, \
                   toStartOfHour(at, 'UTC'), toDate(at, 'UTC'), toStartOfMonth(at, 'UTC'), \
                   arrayElement([{nets}], (idx + intDiv(j, 50)) % {n_nets} + 1), arrayElement(['LTE', 'LTE-M', 'NB-IoT'], idx % 3 + 1), \
                   '', '', toUInt8(j % 10 = 9), \
                   (1000 + n % 997) * (j % 10 + 1), (100 + n % 97) * (j % 10 + 1), 1000 + n % 997, 100 + n % 97 \
                 FROM (SELECT number + {offset} AS n, toUInt32(n % {sims}) AS idx, intDiv(n, {sims}) AS j, intDiv(j, 10) AS j_session \
                       FROM numbers({chunk})) ANY LEFT JOIN {table} s USING idx",
                tenant = spec.tenant,
                nets = nets.join(", "),
                n_nets = nets.len(),
            );
            if let Err(e) = run(sql).await {
                let _ = run(format!("DROP TABLE IF EXISTS {table}")).await;
                return Err(e);
            }
            offset += chunk;
        }
        run(format!("DROP TABLE IF EXISTS {table}")).await?;
        Ok(spec.updates)
    }
}

impl ClickHouseUsage {
    /// Merges the parts of the tables analytics reads (`OPTIMIZE TABLE … FINAL`): what
    /// ClickHouse's background merges reach in time, done at once for a benchmark. A cube behind
    /// a buffer (migration 12) writes its buffer to its store first (`OPTIMIZE` of a Buffer
    /// table), then its store is merged.
    pub async fn merge_analytics_tables(&self) -> Result<()> {
        let run =
            |sql: String| async move { self.client.query(&sql).execute().await.map_err(|e| self.err(e)) };
        self.flush_pending().await?;
        for table in crate::clickhouse::BUFFERED_CUBES {
            run(format!("OPTIMIZE TABLE {table}_store FINAL")).await?;
        }
        for table in ["live_session_states", "session_activity"] {
            run(format!("OPTIMIZE TABLE {table} FINAL")).await?;
        }
        Ok(())
    }
}
