//! The API's reads: live sessions, session history, usage cubes, reconciliation and usage per
//! sub-customer, always within one tenant.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::ports::{
    period_start, CustomerUsagePoint, Granularity, HistoryQuery, ReconciliationQuery, ReconciliationRow,
    SessionUpdate, UsagePoint, UsageReader,
};
use ioto_domain::{CustomerId, Iccid, Result, TenantId};

use super::rows::{secs, time, CustomerPointRow, LiveRow, PointRow, ReconRow, SessionRow, LIVE_COLUMNS};
use super::ClickHouseUsage;
use crate::{days_to_date, roll_up, roll_up_customers, stored};

#[async_trait]
impl UsageReader for ClickHouseUsage {
    async fn live_session(&self, tenant: TenantId, iccid: &Iccid) -> Result<Option<SessionUpdate>> {
        // `live_session_states` is sorted by session (for the ingest worker's lookups): the SIM's
        // latest sessions come from `session_updates`, sorted by tenant and ICCID, and their
        // states from `live_session_states`. Every update of a session started within 7 days is
        // itself within 7 days; `day` (UTC) is cut a day wider so that no server time zone cuts
        // too much. Of sessions last updated in the same second, an open one is the live one
        // (one session ends as the next starts), then the greatest id, as in the embedded store.
        let rows = self
            .client
            .query(&format!(
                "SELECT {LIVE_COLUMNS} FROM live_session_states WHERE session_id IN (\
                 SELECT session_id FROM session_updates WHERE tenant_id = ? AND iccid = ? \
                 AND day >= toDate(now() - 8 * 86400) AND event_time >= now() - 7 * 86400 \
                 AND started_at >= now() - 7 * 86400 ORDER BY event_time DESC LIMIT 1 BY session_id LIMIT 10) \
                 AND iccid = ? AND tenant_id = ? GROUP BY iccid, session_id \
                 ORDER BY l_event DESC, l_terminated ASC, session_id DESC LIMIT 1"
            ))
            .bind(tenant.to_string())
            .bind(iccid.as_str())
            .bind(iccid.as_str())
            .bind(tenant.to_string())
            .fetch_all::<LiveRow>()
            .await
            .map_err(|e| self.err(e))?;
        rows.into_iter().next().map(LiveRow::into_update).transpose()
    }

    async fn session_history(
        &self,
        tenant: TenantId,
        iccid: &Iccid,
        query: &HistoryQuery,
    ) -> Result<Vec<SessionUpdate>> {
        let mut sql = String::from(
            "SELECT tenant_id, customer_id, iccid, session_id, toUInt32(started_at), toUInt32(event_time), toUInt32(hour), \
             toUInt16(day), toUInt16(month), mcc_mnc, rat, ip_address, cell_id, terminated, total_in, total_out, delta_in, delta_out \
             FROM session_updates WHERE tenant_id = ? AND iccid = ? AND event_time >= toDateTime(?) AND event_time < toDateTime(?) \
             AND event_time >= now() - 7 * 86400",
        );
        if query.mcc_mnc.is_some() {
            sql.push_str(" AND mcc_mnc = ?");
        }
        if query.before.is_some() {
            sql.push_str(
                " AND (event_time < toDateTime(?) OR (event_time = toDateTime(?) AND session_id < ?))",
            );
        }
        sql.push_str(" ORDER BY event_time DESC, session_id DESC LIMIT ?");
        let mut q = self
            .client
            .query(&sql)
            .bind(tenant.to_string())
            .bind(iccid.as_str())
            .bind(secs(query.from)?)
            .bind(secs(query.to)?);
        if let Some(m) = &query.mcc_mnc {
            q = q.bind(m.to_string());
        }
        if let Some((t, s)) = &query.before {
            q = q.bind(secs(*t)?).bind(secs(*t)?).bind(s.as_str());
        }
        let rows = q
            .bind(query.limit)
            .fetch_all::<SessionRow>()
            .await
            .map_err(|e| self.err(e))?;
        rows.into_iter().map(SessionRow::into_update).collect()
    }

    async fn sim_usage(
        &self,
        tenant: TenantId,
        iccid: &Iccid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<UsagePoint>> {
        // Periods are computed here in UTC from the stored hour or month, not by the server's
        // time-zone-dependent functions. The buffered cubes are read from their stores, as
        // everywhere (`read_from`).
        let (sql, lower, upper) = match granularity {
            Granularity::Hour | Granularity::Day => (
                "SELECT toUInt32(hour) AS period, mcc_mnc, customer_id, sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out \
                 FROM usage_hourly_store WHERE tenant_id = ? AND iccid = ? AND hour >= toDateTime(?) AND hour < toDateTime(?) \
                 GROUP BY hour, mcc_mnc, customer_id ORDER BY hour, mcc_mnc, customer_id",
                secs(from)?,
                secs(to)?,
            ),
            Granularity::Month | Granularity::Year => (
                "SELECT toUInt32(toUInt32(toUInt16(month)) * 86400) AS period, mcc_mnc, customer_id, sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out \
                 FROM usage_monthly_store WHERE tenant_id = ? AND iccid = ? AND toUInt16(month) * 86400 >= ? AND toUInt16(month) * 86400 < ? \
                 GROUP BY month, mcc_mnc, customer_id ORDER BY month, mcc_mnc, customer_id",
                secs(period_start(from, Granularity::Month))?,
                secs(to)?,
            ),
        };
        let rows = self
            .client
            .query(sql)
            .bind(tenant.to_string())
            .bind(iccid.as_str())
            .bind(lower)
            .bind(upper)
            .fetch_all::<PointRow>()
            .await
            .map_err(|e| self.err(e))?;
        let mut points = Vec::with_capacity(rows.len());
        for r in rows {
            points.push(UsagePoint {
                period: time(r.period),
                mcc_mnc: stored::mcc_mnc("usage_hourly", &r.mcc_mnc)?,
                customer_id: stored::customer("usage_hourly", &r.customer_id)?,
                bytes_in: r.bytes_in,
                bytes_out: r.bytes_out,
            });
        }
        Ok(roll_up(points, granularity))
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
        if query.after.is_some() {
            filter.push_str(" AND (day > toDate(?) OR (day = toDate(?) AND iccid > ?))");
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
               FROM usage_daily_store WHERE {filter} \
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
            if let Some((day, iccid)) = &query.after {
                q = q.bind(day.to_string()).bind(day.to_string()).bind(iccid.as_str());
            }
        }
        let rows = q
            .bind(query.limit)
            .fetch_all::<ReconRow>()
            .await
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|r| {
                Ok(ReconciliationRow {
                    iccid: stored::iccid("usage_daily", &r.iccid)?,
                    day: days_to_date(r.day),
                    session_in: r.session_in,
                    session_out: r.session_out,
                    cdr_in: r.cdr_in,
                    cdr_out: r.cdr_out,
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
             FROM {table} WHERE tenant_id = ? AND {period} >= ? AND {period} < ?",
            table = super::read_from(table)
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
                customer_id: stored::customer(table, &r.customer_id)?,
                mcc_mnc: stored::mcc_mnc(table, &r.mcc_mnc)?,
                bytes_in: r.bytes_in,
                bytes_out: r.bytes_out,
            });
        }
        Ok(roll_up_customers(points, granularity))
    }

    async fn settle(&self) -> Result<()> {
        // The reads name the cubes' stores (see `read_from`): their buffers written now.
        ioto_domain::ports::UsageEngine::flush_pending(self).await
    }

    async fn cube_rows(
        &self,
        tenant: TenantId,
        query: &ioto_domain::analytics::CubeQuery,
    ) -> Result<Vec<ioto_domain::analytics::CubeRow>> {
        crate::cubes::clickhouse::cube_rows(self, tenant, query).await
    }

    async fn online_sims(
        &self,
        tenant: TenantId,
        customer: Option<CustomerId>,
        since: DateTime<Utc>,
    ) -> Result<u64> {
        crate::cubes::clickhouse::online_sims(self, tenant, customer, since).await
    }
}
