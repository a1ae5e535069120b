//! Rating on the embedded store (SQLite): CDRs read with one query, results written in one
//! transaction. Costs are stored as whole 10⁻¹² units in 64-bit integers; a row beyond that
//! (over 9.2 million currency units for one SIM, day and network) is refused, never wrapped.

use async_trait::async_trait;
use chrono::NaiveDate;
use ioto_domain::billing::invoice::{FeeGroup, PricedUsage};
use ioto_domain::billing::money::Cost;
use ioto_domain::billing::rating::{RatingJob, RatingStages, RatingTotals};
use std::collections::BTreeMap;
use std::time::Instant;

use ioto_domain::ports::billing::{
    FeeSums, RatedDimension, RatedQuery, RatedRecord, RatedSums, RatingEngine,
};
use ioto_domain::{CustomerId, Error, Result, TenantId};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use uuid::Uuid;

use super::clickhouse::tokio_blocking;
use super::columns::{self, CdrColumns};
use super::engine;
use crate::embedded::{db_err, EmbeddedUsage};

fn units(c: Cost, field: &str) -> Result<i64> {
    i64::try_from(c.units()).map_err(|_| {
        Error::invalid(
            field,
            format!("{c} is beyond what the embedded store keeps in one row"),
        )
    })
}

fn counter(v: u64, field: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::invalid(field, format!("{v} exceeds {}", i64::MAX)))
}

#[async_trait]
impl RatingEngine for EmbeddedUsage {
    async fn rate_with_stages(&self, job: &RatingJob) -> Result<(RatingTotals, RatingStages)> {
        let mut stages = RatingStages::default();
        let started = Instant::now();
        let tenant = job.tenant_id.to_string();
        let rows = sqlx::query(
            "SELECT iccid, customer_id, day, mcc_mnc, bytes_in, bytes_out FROM cdrs \
             WHERE tenant_id = ? AND day >= ? AND day < ?",
        )
        .bind(&tenant)
        .bind(job.from.to_string())
        .bind(job.to.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut cdrs = CdrColumns::default();
        for r in &rows {
            let day: &str = r.get("day");
            let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
                .map_err(|e| Error::Internal(format!("stored CDR day '{day}': {e}")))?;
            cdrs.push(
                r.get("iccid"),
                r.get("customer_id"),
                columns::epoch_days(day),
                r.get("mcc_mnc"),
                r.get::<i64, _>("bytes_in").unsigned_abs(),
                r.get::<i64, _>("bytes_out").unsigned_abs(),
            );
        }
        drop(rows);
        stages.read = started.elapsed();
        let started = Instant::now();
        let job_copy = job.clone();
        let rated = tokio_blocking(move || engine::rate(cdrs, &job_copy)).await?;
        stages.rate = started.elapsed();
        let started = Instant::now();

        let run = job.run_id.to_string();
        let kind = job.card.kind.as_str();
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for r in &rated.rows {
            sqlx::query(
                "INSERT INTO rated_usage (run_id, tenant_id, kind, customer_id, iccid, day, mcc_mnc, zone, \
                 tariff_plan, records, bytes_in, bytes_out, rounded_bytes, cost_units) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&run)
            .bind(&tenant)
            .bind(kind)
            .bind(rated.names.customers.value(r.customer))
            .bind(rated.names.sims.value(r.sim))
            .bind(columns::from_epoch_days(r.day).to_string())
            .bind(rated.names.networks.value(r.network))
            .bind(rated.names.zones.value(r.zone))
            .bind(rated.names.plans.value(r.plan))
            .bind(counter(r.records, "records")?)
            .bind(counter(r.bytes_in, "bytesIn")?)
            .bind(counter(r.bytes_out, "bytesOut")?)
            .bind(counter(r.rounded_bytes, "roundedBytes")?)
            .bind(units(r.cost, "cost")?)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        for f in &rated.fees {
            sqlx::query(
                "INSERT INTO rated_fees (run_id, tenant_id, kind, customer_id, iccid, month, tariff_plan, fee_units) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&run)
            .bind(&tenant)
            .bind(kind)
            .bind(&f.customer_id)
            .bind(&f.iccid)
            .bind(f.month.to_string())
            .bind(&f.tariff_plan)
            .bind(units(f.fee, "fee")?)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        stages.write = started.elapsed();
        Ok((rated.totals, stages))
    }

    async fn cdr_count(&self, tenant: TenantId, from: NaiveDate, to: NaiveDate) -> Result<u64> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM cdrs WHERE tenant_id = ? AND day >= ? AND day < ?")
                .bind(tenant.to_string())
                .bind(from.to_string())
                .bind(to.to_string())
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(n.unsigned_abs())
    }

    async fn discard_runs(&self, tenant: TenantId, runs: &[Uuid]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for run in runs {
            for table in ["rated_usage", "rated_fees"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = ? AND run_id = ?"))
                    .bind(tenant.to_string())
                    .bind(run.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
        }
        tx.commit().await.map_err(db_err)
    }

    async fn rated_usage(&self, query: &RatedQuery) -> Result<Vec<(String, RatedSums)>> {
        let key = sqlite_key(query.by, false)?;
        let mut sums: BTreeMap<String, RatedSums> = BTreeMap::new();
        // Summed here with 128-bit costs: SQLite's SUM would stop at 64 bits.
        for r in self
            .select_runs(
                query,
                &format!("{key} AS k, records, bytes_in, bytes_out, rounded_bytes, cost_units"),
                "rated_usage",
            )
            .await?
        {
            let row = RatedSums {
                records: r.get::<i64, _>("records").unsigned_abs(),
                bytes_in: r.get::<i64, _>("bytes_in").unsigned_abs(),
                bytes_out: r.get::<i64, _>("bytes_out").unsigned_abs(),
                rounded_bytes: r.get::<i64, _>("rounded_bytes").unsigned_abs(),
                cost: Cost::from_units(i128::from(r.get::<i64, _>("cost_units"))),
            };
            sums.entry(r.get("k")).or_default().add(&row);
        }
        Ok(sums.into_iter().collect())
    }

    async fn rated_fees(&self, query: &RatedQuery) -> Result<Vec<(String, FeeSums)>> {
        let key = sqlite_key(query.by, true)?;
        let mut sums: BTreeMap<String, FeeSums> = BTreeMap::new();
        for r in self
            .select_runs(query, &format!("{key} AS k, fee_units"), "rated_fees")
            .await?
        {
            let e = sums.entry(r.get("k")).or_default();
            e.charges += 1;
            e.fees = e.fees + Cost::from_units(i128::from(r.get::<i64, _>("fee_units")));
        }
        Ok(sums.into_iter().collect())
    }

    async fn priced_usage(&self, tenant: TenantId, run: Uuid) -> Result<Vec<PricedUsage>> {
        self.priced(tenant, run).await
    }

    async fn fee_groups(&self, tenant: TenantId, run: Uuid) -> Result<Vec<FeeGroup>> {
        self.fee_grouped(tenant, run).await
    }

    fn rated_records(
        &self,
        tenant: TenantId,
        run: Uuid,
        customer: Option<CustomerId>,
        batch: usize,
    ) -> futures::stream::BoxStream<'static, Result<Vec<RatedRecord>>> {
        let pool = self.pool.clone();
        crate::channel_stream(move |tx| async move {
            use futures::TryStreamExt as _;
            let sql =
                format!(
                "SELECT day, iccid, mcc_mnc, customer_id, zone, tariff_plan, records, bytes_in, bytes_out, \
                 rounded_bytes, cost_units FROM rated_usage WHERE tenant_id = ? AND run_id = ?{} \
                 ORDER BY day, iccid, mcc_mnc",
                if customer.is_some() { " AND customer_id = ?" } else { "" }
            );
            let mut q = sqlx::query(&sql).bind(tenant.to_string()).bind(run.to_string());
            if let Some(c) = customer {
                q = q.bind(c.to_string());
            }
            let mut cursor = q.fetch(&pool);
            let mut rows = crate::Batches::new(tx, batch);
            let count = |r: &SqliteRow, c: &str| r.get::<i64, _>(c).unsigned_abs();
            while let Some(r) = cursor.try_next().await.map_err(db_err)? {
                let day: String = r.get("day");
                let more = rows
                    .push(RatedRecord {
                        day: day
                            .parse()
                            .map_err(|_| Error::Internal(format!("stored rated day '{day}' is invalid")))?,
                        iccid: r.get("iccid"),
                        mcc_mnc: r.get("mcc_mnc"),
                        customer_id: r.get("customer_id"),
                        zone: r.get("zone"),
                        tariff_plan: r.get("tariff_plan"),
                        records: count(&r, "records"),
                        bytes_in: count(&r, "bytes_in"),
                        bytes_out: count(&r, "bytes_out"),
                        rounded_bytes: count(&r, "rounded_bytes"),
                        cost: Cost::from_units(i128::from(r.get::<i64, _>("cost_units"))),
                    })
                    .await;
                if !more {
                    // The consumer stopped reading: the query's answer is dropped.
                    return Ok(());
                }
            }
            rows.finish().await;
            Ok(())
        })
    }
}

impl EmbeddedUsage {
    async fn priced(&self, tenant: TenantId, run: Uuid) -> Result<Vec<PricedUsage>> {
        let rows = sqlx::query(
            "SELECT zone, tariff_plan, day, rounded_bytes, cost_units FROM rated_usage WHERE tenant_id = ? AND run_id = ?",
        )
        .bind(tenant.to_string())
        .bind(run.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut sums: BTreeMap<(String, String, String), (u64, Cost)> = BTreeMap::new();
        for r in rows {
            let e = sums
                .entry((r.get("zone"), r.get("tariff_plan"), r.get("day")))
                .or_insert((0, Cost::ZERO));
            e.0 += r.get::<i64, _>("rounded_bytes").unsigned_abs();
            e.1 = e.1 + Cost::from_units(i128::from(r.get::<i64, _>("cost_units")));
        }
        sums.into_iter()
            .map(|((zone, tariff_plan, day), (rounded_bytes, cost))| {
                Ok(PricedUsage {
                    zone,
                    tariff_plan,
                    day: chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                        .map_err(|e| Error::Internal(format!("stored rated day '{day}': {e}")))?,
                    rounded_bytes,
                    cost,
                })
            })
            .collect()
    }

    async fn fee_grouped(&self, tenant: TenantId, run: Uuid) -> Result<Vec<FeeGroup>> {
        let rows = sqlx::query("SELECT fee_units FROM rated_fees WHERE tenant_id = ? AND run_id = ?")
            .bind(tenant.to_string())
            .bind(run.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut groups: BTreeMap<i64, u64> = BTreeMap::new();
        for r in rows {
            *groups.entry(r.get("fee_units")).or_default() += 1;
        }
        groups
            .into_iter()
            .map(|(fee, charges)| {
                let fee = Cost::from_units(i128::from(fee));
                Ok(FeeGroup {
                    fee: super::clickhouse::price_of(fee)?,
                    charges,
                    total: Cost::from_units(fee.units() * i128::from(charges)),
                })
            })
            .collect()
    }

    async fn select_runs(&self, query: &RatedQuery, columns: &str, table: &str) -> Result<Vec<SqliteRow>> {
        if query.runs.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; query.runs.len()].join(", ");
        let customer = if query.customer.is_some() {
            " AND customer_id = ?"
        } else {
            ""
        };
        let sql =
            format!("SELECT {columns} FROM {table} WHERE tenant_id = ? AND run_id IN ({marks}){customer}");
        let mut q = sqlx::query(&sql).bind(query.tenant.to_string());
        for run in &query.runs {
            q = q.bind(run.to_string());
        }
        if let Some(c) = query.customer {
            q = q.bind(c.to_string());
        }
        q.fetch_all(&self.pool).await.map_err(db_err)
    }
}

fn sqlite_key(by: RatedDimension, fees: bool) -> Result<&'static str> {
    Ok(match (by, fees) {
        (RatedDimension::Day, false) => "day",
        (RatedDimension::Month, false) => "substr(day, 1, 8) || '01'",
        (RatedDimension::Month, true) => "month",
        (other, fees) => super::clickhouse::key_column(other, fees)?,
    })
}
