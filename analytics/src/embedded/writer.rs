//! The ingest worker's writes. What ClickHouse's materialized views do (live state, hourly,
//! monthly and daily cubes) happens here in the same transaction as the session update.

use std::collections::BTreeMap;

use async_trait::async_trait;
use ioto_domain::ports::{period_start, CdrRecord, Granularity, SessionKey, SessionUpdate, UsageWriter};
use ioto_domain::Result;
use sqlx::{QueryBuilder, Sqlite};

use super::{db_err, session, to_i64, EmbeddedUsage, LIVE};
use crate::stored::SessionText;

/// Rows per multi-row statement (SQLite allows 32,766 bound values; the widest row has 16).
/// A write of a full chunk is kept prepared, one statement text per table (six per connection at
/// most); shorter ones are not (`persistent(false)`): their text differs with each batch's row
/// count, and every connection's statement cache kept up to 32 of them, compiled programs of up to
/// ~1 MB each (17 MB of the demo's heap after 12 minutes, by `scripts/demo-heap.sh`).
const ROWS_PER_STATEMENT: usize = 1_000;

/// One session update as stored, its counters checked to fit SQLite's integers.
struct Stored<'a> {
    u: &'a SessionUpdate,
    text: SessionText,
    total_in: i64,
    total_out: i64,
    delta_in: i64,
    delta_out: i64,
    hour: i64,
    month: i64,
    day: String,
}

/// The live state a batch leaves for one session: what the row-by-row upsert (latest event wins
/// the descriptive fields, counters and `terminated` only grow, `started_at` only shrinks) would
/// leave, computed once so that each session is one row of one statement.
struct Live<'a> {
    latest: &'a Stored<'a>,
    started_at: i64,
    terminated: bool,
    total_in: i64,
    total_out: i64,
}

/// A cube row's key: tenant, customer, ICCID, network and the period (a timestamp, or the
/// day's date text for the daily cube).
type CubeKey<'a, P> = (&'a str, &'a str, &'a str, &'a str, P);

/// The batch's deltas summed per cube row.
fn cube<'a, P: Ord>(
    rows: &'a [Stored<'a>],
    period: impl Fn(&'a Stored<'a>) -> P,
) -> BTreeMap<CubeKey<'a, P>, (i64, i64)> {
    let mut out: BTreeMap<CubeKey<'a, P>, (i64, i64)> = BTreeMap::new();
    for r in rows {
        let key = (
            r.text.tenant_id.as_str(),
            r.text.customer_id.as_str(),
            r.u.iccid.as_str(),
            r.text.mcc_mnc.as_str(),
            period(r),
        );
        let e = out.entry(key).or_default();
        e.0 = e.0.saturating_add(r.delta_in);
        e.1 = e.1.saturating_add(r.delta_out);
    }
    out
}

/// Adds a cube's sums to `table` (`columns`: the key's five columns, then the two byte counts),
/// a multi-row upsert per [`ROWS_PER_STATEMENT`] rows.
async fn add_to_cube<'a, P>(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    table: &str,
    columns: &str,
    conflict: &str,
    sums: BTreeMap<CubeKey<'a, P>, (i64, i64)>,
) -> Result<()>
where
    P: sqlx::Encode<'a, Sqlite> + sqlx::Type<Sqlite> + Copy + Send + 'a,
{
    let sums: Vec<_> = sums.into_iter().collect();
    for chunk in sums.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<'a, Sqlite>::new(format!("INSERT INTO {table} ({columns}) "));
        q.push_values(
            chunk,
            |mut b, ((tenant, customer, iccid, network, period), (bytes_in, bytes_out))| {
                b.push_bind(*tenant)
                    .push_bind(*customer)
                    .push_bind(*iccid)
                    .push_bind(*network)
                    .push_bind(*period)
                    .push_bind(*bytes_in)
                    .push_bind(*bytes_out);
            },
        );
        q.push(format!(" ON CONFLICT {conflict}"));
        q.build()
            .persistent(chunk.len() == ROWS_PER_STATEMENT)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// Adds the batch to `sessions_hourly`: bytes per SIM, network, RAT and hour, and the sessions
/// the batch starts (an update that starts its session's counters), what ClickHouse's
/// `sessions_hourly_mv` computes.
async fn add_to_sessions_cube(tx: &mut sqlx::Transaction<'_, Sqlite>, rows: &[Stored<'_>]) -> Result<()> {
    type Key<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, i64);
    let mut sums: BTreeMap<Key<'_>, (i64, i64, i64)> = BTreeMap::new();
    for r in rows {
        let key = (
            r.text.tenant_id.as_str(),
            r.text.customer_id.as_str(),
            r.u.iccid.as_str(),
            r.text.mcc_mnc.as_str(),
            r.text.rat,
            r.hour,
        );
        let opened =
            r.u.event_time == r.u.started_at && r.delta_in == r.total_in && r.delta_out == r.total_out;
        let e = sums.entry(key).or_default();
        e.0 = e.0.saturating_add(r.delta_in);
        e.1 = e.1.saturating_add(r.delta_out);
        e.2 += i64::from(opened);
    }
    let sums: Vec<_> = sums.into_iter().collect();
    for chunk in sums.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO sessions_hourly (tenant_id, customer_id, iccid, mcc_mnc, rat, hour, bytes_in, bytes_out, sessions) ",
        );
        q.push_values(
            chunk,
            |mut b, ((tenant, customer, iccid, network, rat, hour), (bytes_in, bytes_out, sessions))| {
                b.push_bind(*tenant)
                    .push_bind(*customer)
                    .push_bind(*iccid)
                    .push_bind(*network)
                    .push_bind(*rat)
                    .push_bind(*hour)
                    .push_bind(*bytes_in)
                    .push_bind(*bytes_out)
                    .push_bind(*sessions);
            },
        );
        q.push(
            " ON CONFLICT (tenant_id, iccid, hour, mcc_mnc, rat, customer_id) DO UPDATE SET
               bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out,
               sessions = sessions + excluded.sessions",
        );
        q.build()
            .persistent(chunk.len() == ROWS_PER_STATEMENT)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

#[async_trait]
impl UsageWriter for EmbeddedUsage {
    /// One transaction per batch, with multi-row statements: the updates as they are, each
    /// session's resulting live state once, and each cube row once with the batch's sums (what
    /// ClickHouse's materialized views do for it).
    async fn write_session_updates(&self, updates: &[SessionUpdate]) -> Result<()> {
        let mut rows = Vec::with_capacity(updates.len());
        for (i, u) in updates.iter().enumerate() {
            let field = |f: &str| format!("updates[{i}].{f}");
            rows.push(Stored {
                u,
                text: SessionText::of(u),
                total_in: to_i64(u.total_in, field("totalIn"))?,
                total_out: to_i64(u.total_out, field("totalOut"))?,
                delta_in: to_i64(u.delta_in, field("deltaIn"))?,
                delta_out: to_i64(u.delta_out, field("deltaOut"))?,
                hour: u.hour.timestamp(),
                month: period_start(u.hour, Granularity::Month).timestamp(),
                day: u.hour.date_naive().to_string(),
            });
        }
        let mut live: BTreeMap<(&str, &str), Live<'_>> = BTreeMap::new();
        for r in &rows {
            let key = (r.u.iccid.as_str(), r.u.session_id.as_str());
            let started = r.u.started_at.timestamp();
            match live.get_mut(&key) {
                None => {
                    live.insert(
                        key,
                        Live {
                            latest: r,
                            started_at: started,
                            terminated: r.u.terminated,
                            total_in: r.total_in,
                            total_out: r.total_out,
                        },
                    );
                }
                Some(l) => {
                    if r.u.event_time >= l.latest.u.event_time {
                        l.latest = r;
                    }
                    l.started_at = l.started_at.min(started);
                    l.terminated |= r.u.terminated;
                    l.total_in = l.total_in.max(r.total_in);
                    l.total_out = l.total_out.max(r.total_out);
                }
            }
        }
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO session_updates (tenant_id, customer_id, iccid, session_id, started_at, event_time, hour,
                   mcc_mnc, rat, ip_address, cell_id, terminated, total_in, total_out, delta_in, delta_out) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.text.tenant_id.clone())
                    .push_bind(r.text.customer_id.clone())
                    .push_bind(r.u.iccid.as_str().to_owned())
                    .push_bind(r.u.session_id.clone())
                    .push_bind(r.u.started_at.timestamp())
                    .push_bind(r.u.event_time.timestamp())
                    .push_bind(r.hour)
                    .push_bind(r.text.mcc_mnc.clone())
                    .push_bind(r.text.rat)
                    .push_bind(r.text.ip_address.clone())
                    .push_bind(r.text.cell_id.clone())
                    .push_bind(i64::from(r.u.terminated))
                    .push_bind(r.total_in)
                    .push_bind(r.total_out)
                    .push_bind(r.delta_in)
                    .push_bind(r.delta_out);
            });
            q.build()
                .persistent(chunk.len() == ROWS_PER_STATEMENT)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let live: Vec<Live<'_>> = live.into_values().collect();
        for chunk in live.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO live_sessions (tenant_id, customer_id, iccid, session_id, started_at, event_time, mcc_mnc,
                   rat, ip_address, cell_id, terminated, total_in, total_out) ",
            );
            q.push_values(chunk, |mut b, l| {
                let r = l.latest;
                b.push_bind(r.text.tenant_id.clone())
                    .push_bind(r.text.customer_id.clone())
                    .push_bind(r.u.iccid.as_str().to_owned())
                    .push_bind(r.u.session_id.clone())
                    .push_bind(l.started_at)
                    .push_bind(r.u.event_time.timestamp())
                    .push_bind(r.text.mcc_mnc.clone())
                    .push_bind(r.text.rat)
                    .push_bind(r.text.ip_address.clone())
                    .push_bind(r.text.cell_id.clone())
                    .push_bind(i64::from(l.terminated))
                    .push_bind(l.total_in)
                    .push_bind(l.total_out);
            });
            q.push(
                " ON CONFLICT (iccid, session_id) DO UPDATE SET
                   customer_id = excluded.customer_id, event_time = excluded.event_time, mcc_mnc = excluded.mcc_mnc,
                   rat = excluded.rat, ip_address = excluded.ip_address, cell_id = excluded.cell_id,
                   terminated = MAX(terminated, excluded.terminated),
                   total_in = MAX(total_in, excluded.total_in), total_out = MAX(total_out, excluded.total_out),
                   started_at = MIN(started_at, excluded.started_at)
                 WHERE excluded.event_time >= live_sessions.event_time",
            );
            q.build()
                .persistent(chunk.len() == ROWS_PER_STATEMENT)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        add_to_cube(
            &mut tx,
            "usage_hourly",
            "tenant_id, customer_id, iccid, mcc_mnc, hour, bytes_in, bytes_out",
            "(tenant_id, iccid, hour, mcc_mnc, customer_id) DO UPDATE SET
               bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out",
            cube(&rows, |r| r.hour),
        )
        .await?;
        add_to_cube(
            &mut tx,
            "usage_monthly",
            "tenant_id, customer_id, iccid, mcc_mnc, month, bytes_in, bytes_out",
            "(tenant_id, iccid, month, mcc_mnc, customer_id) DO UPDATE SET
               bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out",
            cube(&rows, |r| r.month),
        )
        .await?;
        add_to_cube(
            &mut tx,
            "usage_daily",
            "tenant_id, customer_id, iccid, network, day, bytes_up, bytes_down",
            "(tenant_id, day, network, customer_id, iccid) DO UPDATE SET
               bytes_up = bytes_up + excluded.bytes_up, bytes_down = bytes_down + excluded.bytes_down",
            cube(&rows, |r| r.day.as_str()),
        )
        .await?;
        add_to_sessions_cube(&mut tx, &rows).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn visit_stored_sessions(
        &self,
        visit: &mut (dyn for<'s> FnMut(&'s str, &'s str) + Send),
    ) -> Result<()> {
        let mut rows = sqlx::query_as::<_, (String, String)>("SELECT iccid, session_id FROM live_sessions")
            .fetch(&self.pool);
        while let Some((iccid, session)) = futures::TryStreamExt::try_next(&mut rows).await.map_err(db_err)? {
            visit(&iccid, &session);
        }
        Ok(())
    }

    async fn session_states(&self, keys: &[SessionKey]) -> Result<Vec<SessionUpdate>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(format!(
                "SELECT {LIVE} FROM live_sessions WHERE (iccid, session_id) IN (VALUES "
            ));
            let mut pairs = q.separated(", ");
            for k in chunk {
                pairs.push("(");
                pairs.push_bind_unseparated(k.iccid.as_str().to_owned());
                pairs.push_unseparated(", ");
                pairs.push_bind_unseparated(k.session_id.clone());
                pairs.push_unseparated(")");
            }
            q.push(")");
            for r in q
                .build()
                .persistent(false)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?
            {
                out.push(session(&r, "live_sessions")?);
            }
        }
        Ok(out)
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
            .bind(c.iccid.as_str())
            .bind(c.start.timestamp())
            .bind(c.end.timestamp())
            .bind(c.start.date_naive().to_string())
            .bind(c.mcc_mnc.to_string())
            .bind(to_i64(c.bytes_in, format!("cdrs[{i}].bytesIn"))?)
            .bind(to_i64(c.bytes_out, format!("cdrs[{i}].bytesOut"))?)
            .bind(i64::from(c.rating_group))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }
}
