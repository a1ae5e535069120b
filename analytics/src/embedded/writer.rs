//! The ingest worker's writes. What ClickHouse's materialized views do (live state, hourly,
//! monthly and daily cubes) happens here in the same transaction as the session update.

use async_trait::async_trait;
use ioto_domain::ports::{period_start, CdrRecord, Granularity, SessionKey, SessionUpdate, UsageWriter};
use ioto_domain::Result;

use super::{db_err, session, to_i64, EmbeddedUsage, LIVE};
use crate::stored::SessionText;

#[async_trait]
impl UsageWriter for EmbeddedUsage {
    async fn write_session_updates(&self, updates: &[SessionUpdate]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for (i, u) in updates.iter().enumerate() {
            let field = |f: &str| format!("updates[{i}].{f}");
            let text = SessionText::of(u);
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
            sqlx::query(
                "INSERT INTO session_updates (tenant_id, customer_id, iccid, session_id, started_at, event_time, hour,
                   mcc_mnc, rat, ip_address, cell_id, terminated, total_in, total_out, delta_in, delta_out)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&text.tenant_id)
            .bind(&text.customer_id)
            .bind(u.iccid.as_str())
            .bind(&u.session_id)
            .bind(u.started_at.timestamp())
            .bind(u.event_time.timestamp())
            .bind(hour)
            .bind(&text.mcc_mnc)
            .bind(text.rat)
            .bind(&text.ip_address)
            .bind(&text.cell_id)
            .bind(i64::from(u.terminated))
            .bind(total_in)
            .bind(total_out)
            .bind(delta_in)
            .bind(delta_out)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
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
            .bind(&text.tenant_id)
            .bind(&text.customer_id)
            .bind(u.iccid.as_str())
            .bind(&u.session_id)
            .bind(u.started_at.timestamp())
            .bind(u.event_time.timestamp())
            .bind(&text.mcc_mnc)
            .bind(text.rat)
            .bind(&text.ip_address)
            .bind(&text.cell_id)
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
                .bind(&text.tenant_id)
                .bind(&text.customer_id)
                .bind(u.iccid.as_str())
                .bind(&text.mcc_mnc)
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
            .bind(&text.tenant_id)
            .bind(&text.customer_id)
            .bind(u.iccid.as_str())
            .bind(&text.mcc_mnc)
            .bind(u.hour.date_naive().to_string())
            .bind(delta_in)
            .bind(delta_out)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn session_states(&self, keys: &[SessionKey]) -> Result<Vec<SessionUpdate>> {
        let mut out = Vec::new();
        for k in keys {
            let row = sqlx::query(&format!(
                "SELECT {LIVE} FROM live_sessions WHERE iccid = ? AND session_id = ?"
            ))
            .bind(k.iccid.as_str())
            .bind(&k.session_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
            if let Some(r) = row {
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
