//! The API's reads, within one tenant. Sub-customer usage is summed from the per-SIM cubes (one
//! machine needs no separate sub-customer cube).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::ports::{
    period_start, CustomerUsagePoint, Granularity, HistoryQuery, ReconciliationQuery, ReconciliationRow,
    SessionUpdate, UsagePoint, UsageReader,
};
use ioto_domain::{CustomerId, Error, Iccid, Result, TenantId};
use sqlx::Row;

use super::{counter, db_err, session, EmbeddedUsage, LIVE};
use crate::stored::{self, time};

fn week_ago() -> i64 {
    (Utc::now() - chrono::Duration::days(ioto_domain::ports::SESSION_RETENTION_DAYS)).timestamp()
}

#[async_trait]
impl UsageReader for EmbeddedUsage {
    async fn live_session(&self, tenant: TenantId, iccid: &Iccid) -> Result<Option<SessionUpdate>> {
        let row = sqlx::query(&format!(
            "SELECT {LIVE} FROM live_sessions WHERE iccid = ? AND tenant_id = ? AND started_at >= ?
             ORDER BY event_time DESC, terminated ASC, session_id DESC LIMIT 1"
        ))
        .bind(iccid.as_str())
        .bind(tenant.to_string())
        .bind(week_ago())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| session(&r, "live_sessions")).transpose()
    }

    async fn session_history(
        &self,
        tenant: TenantId,
        iccid: &Iccid,
        query: &HistoryQuery,
    ) -> Result<Vec<SessionUpdate>> {
        let mcc_mnc = query.mcc_mnc.as_ref().map(ToString::to_string);
        let (bt, bs) = query
            .before
            .clone()
            .map_or((i64::MAX, String::new()), |(t, s)| (t.timestamp(), s));
        let rows = sqlx::query(&format!(
            "SELECT {LIVE}, hour, delta_in, delta_out FROM session_updates
             WHERE tenant_id = ? AND iccid = ? AND event_time >= ? AND event_time < ? AND event_time >= ?
               AND (? IS NULL OR mcc_mnc = ?)
               AND (event_time < ? OR (event_time = ? AND session_id < ?) OR ? = 0)
             ORDER BY event_time DESC, session_id DESC LIMIT ?"
        ))
        .bind(tenant.to_string())
        .bind(iccid.as_str())
        .bind(query.from.timestamp())
        .bind(query.to.timestamp())
        .bind(week_ago())
        .bind(&mcc_mnc)
        .bind(&mcc_mnc)
        .bind(bt)
        .bind(bt)
        .bind(&bs)
        .bind(i64::from(bt != i64::MAX))
        .bind(i64::try_from(query.limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| session(r, "session_updates")).collect()
    }

    async fn sim_usage(
        &self,
        tenant: TenantId,
        iccid: &Iccid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<UsagePoint>> {
        let (table, column, lower) = match granularity {
            Granularity::Hour | Granularity::Day => ("usage_hourly", "hour", from.timestamp()),
            Granularity::Month | Granularity::Year => (
                "usage_monthly",
                "month",
                period_start(from, Granularity::Month).timestamp(),
            ),
        };
        let rows = sqlx::query(&format!(
            "SELECT {column} AS period, mcc_mnc, customer_id, SUM(bytes_in) AS bytes_in, SUM(bytes_out) AS bytes_out
             FROM {table} WHERE tenant_id = ? AND iccid = ? AND {column} >= ? AND {column} < ?
             GROUP BY {column}, mcc_mnc, customer_id ORDER BY {column}, mcc_mnc, customer_id"
        ))
        .bind(tenant.to_string())
        .bind(iccid.as_str())
        .bind(lower)
        .bind(to.timestamp())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut points = Vec::with_capacity(rows.len());
        for r in &rows {
            points.push(UsagePoint {
                period: time(r.get("period")),
                mcc_mnc: stored::mcc_mnc(table, r.get("mcc_mnc"))?,
                customer_id: stored::customer(table, r.get("customer_id"))?,
                bytes_in: counter(r, "bytes_in"),
                bytes_out: counter(r, "bytes_out"),
            });
        }
        Ok(crate::roll_up(points, granularity))
    }

    async fn reconciliation(
        &self,
        tenant: TenantId,
        query: &ReconciliationQuery,
    ) -> Result<Vec<ReconciliationRow>> {
        let mut filter = String::from("tenant_id = ? AND day >= ? AND day <= ?");
        if query.iccid.is_some() {
            filter.push_str(" AND iccid = ?");
        }
        if query.customer.is_some() {
            filter.push_str(" AND customer_id = ?");
        }
        if query.after.is_some() {
            filter.push_str(" AND (day > ? OR (day = ? AND iccid > ?))");
        }
        let having = if query.only_differences {
            " HAVING session_in != cdr_in OR session_out != cdr_out"
        } else {
            ""
        };
        let sql = format!(
            "SELECT iccid, day, SUM(s_in) AS session_in, SUM(s_out) AS session_out, SUM(c_in) AS cdr_in, SUM(c_out) AS cdr_out
             FROM (SELECT iccid, day, bytes_up AS s_in, bytes_down AS s_out, 0 AS c_in, 0 AS c_out FROM usage_daily WHERE {filter}
                   UNION ALL
                   SELECT iccid, day, 0, 0, bytes_in, bytes_out FROM cdrs WHERE {filter})
             GROUP BY iccid, day{having} ORDER BY day, iccid LIMIT ?"
        );
        let mut q = sqlx::query(&sql);
        for _ in 0..2 {
            q = q
                .bind(tenant.to_string())
                .bind(query.from.to_string())
                .bind(query.to.to_string());
            if let Some(i) = &query.iccid {
                q = q.bind(i.to_string());
            }
            if let Some(c) = query.customer {
                q = q.bind(c.to_string());
            }
            if let Some((day, iccid)) = &query.after {
                q = q
                    .bind(day.to_string())
                    .bind(day.to_string())
                    .bind(iccid.to_string());
            }
        }
        let rows = q
            .bind(i64::try_from(query.limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let day: String = r.get("day");
                Ok(ReconciliationRow {
                    iccid: stored::iccid("usage_daily", r.get("iccid"))?,
                    day: day
                        .parse()
                        .map_err(|_| Error::Internal(format!("stored usage day '{day}' is invalid")))?,
                    session_in: counter(r, "session_in"),
                    session_out: counter(r, "session_out"),
                    cdr_in: counter(r, "cdr_in"),
                    cdr_out: counter(r, "cdr_out"),
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
        let (table, column, lower) = match granularity {
            Granularity::Hour | Granularity::Day => (
                "usage_hourly",
                "hour",
                period_start(from, granularity).timestamp(),
            ),
            Granularity::Month | Granularity::Year => (
                "usage_monthly",
                "month",
                period_start(from, Granularity::Month).timestamp(),
            ),
        };
        let mut sql = format!(
            "SELECT {column} AS period, customer_id, mcc_mnc, SUM(bytes_in) AS bytes_in, SUM(bytes_out) AS bytes_out
             FROM {table} WHERE tenant_id = ? AND {column} >= ? AND {column} < ?"
        );
        if customer.is_some() {
            sql.push_str(" AND customer_id = ?");
        }
        sql.push_str(&format!(" GROUP BY {column}, customer_id, mcc_mnc"));
        let mut q = sqlx::query(&sql)
            .bind(tenant.to_string())
            .bind(lower)
            .bind(to.timestamp());
        if let Some(c) = customer {
            q = q.bind(c.to_string());
        }
        let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
        let mut points = Vec::with_capacity(rows.len());
        for r in &rows {
            points.push(CustomerUsagePoint {
                period: time(r.get("period")),
                customer_id: stored::customer(table, r.get("customer_id"))?,
                mcc_mnc: stored::mcc_mnc(table, r.get("mcc_mnc"))?,
                bytes_in: counter(r, "bytes_in"),
                bytes_out: counter(r, "bytes_out"),
            });
        }
        Ok(crate::roll_up_customers(points, granularity))
    }

    async fn cube_rows(
        &self,
        tenant: TenantId,
        query: &ioto_domain::analytics::CubeQuery,
    ) -> Result<Vec<ioto_domain::analytics::CubeRow>> {
        crate::cubes::embedded::cube_rows(self, tenant, query).await
    }

    async fn online_sims(
        &self,
        tenant: TenantId,
        customer: Option<CustomerId>,
        since: DateTime<Utc>,
    ) -> Result<u64> {
        crate::cubes::embedded::online_sims(self, tenant, customer, since).await
    }
}
