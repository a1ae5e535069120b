//! The ingest worker's writes: session updates (the cubes and live state follow from them by
//! materialized views), CDRs, and the state progress is recovered from.

use async_trait::async_trait;
use ioto_domain::ports::{period_start, CdrRecord, Granularity, SessionKey, SessionUpdate, UsageWriter};
use ioto_domain::Result;

use super::rows::{secs, CdrRow, IdRow, LiveRow, SessionRow, LIVE_COLUMNS};
use super::ClickHouseUsage;
use crate::date_to_days;

#[async_trait]
impl UsageWriter for ClickHouseUsage {
    async fn write_session_updates(&self, updates: &[SessionUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(updates.len());
        for u in updates {
            rows.push(SessionRow::of(u)?);
        }
        // One INSERT (a block per day partition): what lands of a failed one is recognised on retry,
        // since progress is recovered per session from `live_session_states`.
        self.insert_rows("session_updates", &rows).await
    }

    async fn visit_stored_sessions(
        &self,
        visit: &mut (dyn for<'s> FnMut(&'s str, &'s str) + Send),
    ) -> Result<()> {
        #[derive(clickhouse::Row, serde::Deserialize)]
        struct Key {
            iccid: String,
            session_id: String,
        }
        // Every row, unmerged rows of one session included: grouping would cost the server
        // more than the repeats cost the filter.
        let mut rows = self
            .client
            .query("SELECT iccid, session_id FROM live_session_states")
            .fetch::<Key>()
            .map_err(|e| self.err(e))?;
        while let Some(k) = rows.next().await.map_err(|e| self.err(e))? {
            visit(&k.iccid, &k.session_id);
        }
        Ok(())
    }

    async fn session_states(&self, keys: &[SessionKey]) -> Result<Vec<SessionUpdate>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Chunks are asked concurrently.
        let lookups = keys.chunks(1000).map(|chunk| async move {
            // One placeholder per value: `IN (?, ?, …)` works on every server version. The
            // sessions asked select the granules by the (session_id, iccid) key, so at most one
            // 256-row granule is read per session (migration 9), however long the table or each
            // SIM's history; the granules are kept decompressed between lookups (the
            // uncompressed cache). The ICCIDs are checked after grouping: beside the sessions
            // in `WHERE` they made ClickHouse 18.16 take ~1.7× as long (700 sessions, half of
            // them stored: 78 against 45 ms; none stored: 13 against 10 ms; docs/benchmarks.md),
            // and in `HAVING` a session id shared by many SIMs still sends back only the SIMs
            // asked.
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut q = self
                .client
                .query(&format!(
                    "SELECT {LIVE_COLUMNS} FROM live_session_states WHERE session_id IN ({marks}) \
                     GROUP BY iccid, session_id HAVING iccid IN ({marks})"
                ))
                .with_option("use_uncompressed_cache", "1");
            for k in chunk {
                q = q.bind(k.session_id.as_str());
            }
            for k in chunk {
                q = q.bind(k.iccid.as_str());
            }
            let wanted: std::collections::HashSet<(&str, &str)> = chunk
                .iter()
                .map(|k| (k.iccid.as_str(), k.session_id.as_str()))
                .collect();
            let rows: Vec<LiveRow> = q
                .fetch_all::<LiveRow>()
                .await
                .map_err(|e| self.err(e))?
                .into_iter()
                // The two IN lists also match crossed pairs; keep the asked ones.
                .filter(|r| wanted.contains(&(r.iccid.as_str(), r.session_id.as_str())))
                .collect();
            rows.into_iter()
                .map(LiveRow::into_update)
                .collect::<Result<Vec<_>>>()
        });
        Ok(futures::future::try_join_all(lookups)
            .await?
            .into_iter()
            .flatten()
            .collect())
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
                iccid: c.iccid.as_str(),
                start: secs(c.start)?,
                end: secs(c.end)?,
                day: date_to_days(c.start.date_naive())?,
                month: date_to_days(period_start(c.start, Granularity::Month).date_naive())?,
                mcc_mnc: c.mcc_mnc.to_string(),
                bytes_in: c.bytes_in,
                bytes_out: c.bytes_out,
                rating_group: c.rating_group,
            });
        }
        self.insert_rows("cdrs", &rows).await
    }
}
