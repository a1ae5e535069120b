//! Rating on ClickHouse: CDRs streamed in as borrowed rows, rated rows inserted as `Native`
//! blocks in two requests, fees in one.

mod write;

use write::{RatedColumns, RatedWriter, Slice, RATED_WRITERS};

use std::time::Instant;

use async_trait::async_trait;
use chrono::NaiveDate;
use clickhouse::Row;
use ioto_domain::billing::invoice::{FeeGroup, PricedUsage};
use ioto_domain::billing::money::{Cost, Price};
use ioto_domain::billing::rate_card::RateCardKind;
use ioto_domain::billing::rating::{RatingJob, RatingStages, RatingTotals};
use ioto_domain::ports::billing::{
    FeeSums, RatedDimension, RatedQuery, RatedRecord, RatedSums, RatingEngine,
};
use ioto_domain::{CustomerId, Result, TenantId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::columns::CdrColumns;
use super::engine;
use crate::clickhouse::ClickHouseUsage;
use crate::{date_to_days, days_to_date};
use std::sync::Arc;

#[derive(Row, Deserialize)]
struct CdrIn<'a> {
    iccid: &'a str,
    customer_id: &'a str,
    day: u16,
    mcc_mnc: &'a str,
    bytes_in: u64,
    bytes_out: u64,
}

#[derive(Row, Serialize)]
struct FeeOut<'a> {
    run_id: [u8; 16],
    tenant_id: [u8; 16],
    kind: i8,
    customer_id: [u8; 16],
    iccid: &'a str,
    month: u16,
    tariff_plan: &'a str,
    fee: i128,
}

#[async_trait]
impl RatingEngine for ClickHouseUsage {
    async fn rate_with_stages(&self, job: &RatingJob) -> Result<(RatingTotals, RatingStages)> {
        let mut stages = RatingStages::default();
        let started = Instant::now();
        let tenant = job.tenant_id.to_string();
        // The period read in day ranges on connections of their own, each decoded on its own
        // task (so both cores decode), then joined into one set of columns.
        let reads: Vec<_> = read_ranges(job.from, job.to)
            .into_iter()
            .map(|(from, to)| {
                let (client, tenant) = (self.client.clone(), tenant.clone());
                tokio::spawn(async move { read_cdrs(&client, &tenant, from, to).await })
            })
            .collect();
        let mut parts = Vec::with_capacity(reads.len());
        let mut reads = reads.into_iter();
        while let Some(read) = reads.next() {
            let part = match read.await {
                Ok(part) => part.map_err(|e| self.err(e)),
                Err(e) => Err(ioto_domain::Error::Internal(format!("reading CDRs: {e}"))),
            };
            match part {
                Ok(part) => parts.push(part),
                Err(e) => {
                    reads.for_each(|r| r.abort());
                    return Err(e);
                }
            }
        }
        let cdrs = tokio_blocking(move || Ok(CdrColumns::concat(parts))).await?;
        stages.read = started.elapsed();

        // Rated a slice of days at a time on a blocking thread while the slices before are
        // written: the slices go to `RATED_WRITERS` insert requests in turn, each receiving its
        // slices in the stored key's order, and ClickHouse stores each request on a thread of
        // its own. At most two slices per writer are in memory.
        let started = Instant::now();
        let job_copy = job.clone();
        let rater =
            tokio_blocking(move || engine::Rater::new(cdrs, &job_copy, engine::SLICE_RECORDS)).await?;
        let preparing = started.elapsed();
        let columns = Arc::new(RatedColumns::new(job, rater.names())?);
        let unpriced_records = rater.unpriced_records();
        let (senders, writers): (Vec<_>, Vec<_>) = (0..RATED_WRITERS)
            .map(|_| {
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                let out = RatedWriter {
                    store: self.clone(),
                    columns: Arc::clone(&columns),
                };
                (tx, tokio::spawn(out.write(rx)))
            })
            .unzip();
        let rating = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut busy = std::time::Duration::ZERO;
            let mut totals = RatingTotals::default();
            for i in 0..rater.slice_count() {
                let started = Instant::now();
                let rows = rater.rate_slice(i)?;
                busy += started.elapsed();
                engine::add_rows(&mut totals, &rows);
                if senders[i % senders.len()]
                    .blocking_send(Slice::Rows(rows))
                    .is_err()
                {
                    // That writer failed; its error is reported below.
                    return Ok((busy, totals));
                }
            }
            for s in &senders {
                let _ = s.blocking_send(Slice::Done);
            }
            Ok((busy, totals))
        });
        let rated = rating
            .await
            .map_err(|e| ioto_domain::Error::Internal(format!("rating task: {e}")));
        let mut write_busy = std::time::Duration::ZERO;
        for w in writers {
            let busy = w
                .await
                .map_err(|e| ioto_domain::Error::Internal(format!("writing rated rows: {e}")))??;
            write_busy = write_busy.max(busy);
        }
        let (rate_busy, mut totals) = rated??;
        totals.unpriced_records = unpriced_records;
        stages.rate = preparing + rate_busy;
        stages.write = write_busy;
        let (run, tenant) = (uuid_bytes(job.run_id), uuid_bytes(job.tenant_id.0));
        let kind = kind_value(job.card.kind);
        let started = Instant::now();
        let fees = engine::fees(job, &mut totals);
        let fees = fees
            .iter()
            .map(|f| {
                Ok(FeeOut {
                    run_id: run,
                    tenant_id: tenant,
                    kind,
                    customer_id: customer_bytes(&f.customer_id)?,
                    iccid: &f.iccid,
                    month: date_to_days(f.month)?,
                    tariff_plan: &f.tariff_plan,
                    fee: f.fee.units(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if !fees.is_empty() {
            self.insert_rows("rated_fees", &fees).await?;
        }
        stages.write += started.elapsed();
        Ok((totals, stages))
    }

    async fn cdr_count(&self, tenant: TenantId, from: NaiveDate, to: NaiveDate) -> Result<u64> {
        self.client
            .query("SELECT count() FROM cdrs WHERE tenant_id = ? AND day >= toDate(?) AND day < toDate(?)")
            .bind(tenant.to_string())
            .bind(from.to_string())
            .bind(to.to_string())
            .fetch_one::<u64>()
            .await
            .map_err(|e| self.err(e))
    }

    async fn discard_runs(&self, tenant: TenantId, runs: &[Uuid]) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = runs.iter().map(Uuid::to_string).collect();
        for table in ["rated_usage", "rated_fees"] {
            self.client
                .query(&format!("ALTER TABLE {table} DELETE WHERE {RUNS_FILTER}"))
                .bind(tenant.to_string())
                .bind(&ids)
                .execute()
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    async fn rated_usage(&self, query: &RatedQuery) -> Result<Vec<(String, RatedSums)>> {
        if query.runs.is_empty() {
            return Ok(Vec::new());
        }
        let key = ch_key(query.by, false)?;
        let (filter, customer) = filter(query);
        let mut q = self
            .client
            .query(&format!(
                "SELECT {key} AS k, sum(records), sum(bytes_in), sum(bytes_out), sum(rounded_bytes), sum(cost) \
                 FROM rated_usage WHERE {filter} GROUP BY k ORDER BY k"
            ))
            .bind(query.tenant.to_string())
            .bind(run_ids(query));
        if let Some(c) = customer {
            q = q.bind(c);
        }
        let rows = q.fetch_all::<UsageSumRow>().await.map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.key,
                    RatedSums {
                        records: r.records,
                        bytes_in: r.bytes_in,
                        bytes_out: r.bytes_out,
                        rounded_bytes: r.rounded_bytes,
                        cost: Cost::from_units(r.cost),
                    },
                )
            })
            .collect())
    }

    async fn rated_fees(&self, query: &RatedQuery) -> Result<Vec<(String, FeeSums)>> {
        if query.runs.is_empty() {
            return Ok(Vec::new());
        }
        let key = ch_key(query.by, true)?;
        let (filter, customer) = filter(query);
        let mut q = self
            .client
            .query(&format!(
                "SELECT {key} AS k, count(), sum(fee) FROM rated_fees WHERE {filter} GROUP BY k ORDER BY k"
            ))
            .bind(query.tenant.to_string())
            .bind(run_ids(query));
        if let Some(c) = customer {
            q = q.bind(c);
        }
        let rows = q.fetch_all::<FeeSumRow>().await.map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.key,
                    FeeSums {
                        charges: r.charges,
                        fees: Cost::from_units(r.fees),
                    },
                )
            })
            .collect())
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
        let this = self.clone();
        crate::channel_stream(move |tx| async move {
            let sql = format!(
                "SELECT toUInt16(day) AS day, iccid, mcc_mnc, {CUSTOMER_TEXT} AS customer, zone, tariff_plan, \
                 records, bytes_in, bytes_out, rounded_bytes, cost FROM rated_usage WHERE tenant_id = ? AND run_id = ?{} \
                 ORDER BY day, iccid, mcc_mnc",
                if customer.is_some() { " AND customer_id = ?" } else { "" }
            );
            let mut q = this
                .client
                .query(&sql)
                .bind(tenant.to_string())
                .bind(run.to_string());
            if let Some(c) = customer {
                q = q.bind(c.to_string());
            }
            let mut cursor = q.fetch::<RecordRow>().map_err(|e| this.err(e))?;
            let mut rows = crate::Batches::new(tx, batch);
            while let Some(r) = cursor.next().await.map_err(|e| this.err(e))? {
                let more = rows
                    .push(RatedRecord {
                        day: days_to_date(r.day),
                        iccid: r.iccid,
                        mcc_mnc: r.mcc_mnc,
                        customer_id: r.customer_id,
                        zone: r.zone,
                        tariff_plan: r.tariff_plan,
                        records: r.records,
                        bytes_in: r.bytes_in,
                        bytes_out: r.bytes_out,
                        rounded_bytes: r.rounded_bytes,
                        cost: Cost::from_units(r.cost),
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

impl ClickHouseUsage {
    async fn priced(&self, tenant: TenantId, run: Uuid) -> Result<Vec<PricedUsage>> {
        let rows = self
            .client
            .query(
                "SELECT zone, tariff_plan, toUInt16(day), sum(rounded_bytes), sum(cost) FROM rated_usage \
                 WHERE tenant_id = ? AND run_id = ? GROUP BY zone, tariff_plan, day ORDER BY zone, tariff_plan, day",
            )
            .bind(tenant.to_string())
            .bind(run.to_string())
            .fetch_all::<PricedRow>()
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|r| PricedUsage {
                zone: r.zone,
                tariff_plan: r.tariff_plan,
                day: days_to_date(r.day),
                rounded_bytes: r.rounded_bytes,
                cost: Cost::from_units(r.cost),
            })
            .collect())
    }

    async fn fee_grouped(&self, tenant: TenantId, run: Uuid) -> Result<Vec<FeeGroup>> {
        let rows = self
            .client
            .query("SELECT fee, count(), sum(fee) FROM rated_fees WHERE tenant_id = ? AND run_id = ? GROUP BY fee ORDER BY fee")
            .bind(tenant.to_string())
            .bind(run.to_string())
            .fetch_all::<FeeGroupRow>()
            .await
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|r| {
                Ok(FeeGroup {
                    fee: price_of(Cost::from_units(r.fee))?,
                    charges: r.charges,
                    total: Cost::from_units(r.total),
                })
            })
            .collect()
    }
}

/// A stored fee (12 decimals) back as the price it was (6 decimals).
pub(super) fn price_of(fee: Cost) -> Result<Price> {
    let units = fee.units();
    if units % 1_000_000 != 0 {
        return Err(ioto_domain::Error::Internal(format!(
            "stored fee {fee} is not a price"
        )));
    }
    Price::from_micros(
        i64::try_from(units / 1_000_000).map_err(|e| ioto_domain::Error::Internal(e.to_string()))?,
    )
}

#[derive(Row, Deserialize)]
struct PricedRow {
    zone: String,
    tariff_plan: String,
    day: u16,
    rounded_bytes: u64,
    cost: i128,
}

#[derive(Row, Deserialize)]
struct FeeGroupRow {
    fee: i128,
    charges: u64,
    total: i128,
}

#[derive(Row, Deserialize)]
struct RecordRow {
    day: u16,
    iccid: String,
    mcc_mnc: String,
    customer_id: String,
    zone: String,
    tariff_plan: String,
    records: u64,
    bytes_in: u64,
    bytes_out: u64,
    rounded_bytes: u64,
    cost: i128,
}

#[derive(Row, Deserialize)]
struct UsageSumRow {
    key: String,
    records: u64,
    bytes_in: u64,
    bytes_out: u64,
    rounded_bytes: u64,
    cost: i128,
}

#[derive(Row, Deserialize)]
struct FeeSumRow {
    key: String,
    charges: u64,
    fees: i128,
}

fn run_ids(query: &RatedQuery) -> Vec<String> {
    query.runs.iter().map(Uuid::to_string).collect()
}

/// Rows of a tenant (bound first, as text) and any of a list of runs (bound second, as a list of
/// text): ClickHouse compares a `UUID` column with a text literal, but `has` needs the list
/// turned into `UUID`s.
const RUNS_FILTER: &str = "tenant_id = ? AND has(arrayMap(r -> toUUID(r), ?), run_id)";

/// A rated row's sub-customer as text: '' for none (stored as the nil UUID), as elsewhere.
pub(crate) const CUSTOMER_TEXT: &str =
    "if(customer_id = toUUID('00000000-0000-0000-0000-000000000000'), '', toString(customer_id))";

fn filter(query: &RatedQuery) -> (String, Option<String>) {
    match query.customer {
        Some(c) => (format!("{RUNS_FILTER} AND customer_id = ?"), Some(c.to_string())),
        None => (RUNS_FILTER.to_owned(), None),
    }
}

/// ClickHouse's 16-byte `UUID`: the id's high 64 bits, then its low 64 bits, each little-endian
/// (as `RowBinary` and `Native` carry it).
fn uuid_bytes(id: Uuid) -> [u8; 16] {
    let (hi, lo) = id.as_u64_pair();
    let mut out = [0; 16];
    out[..8].copy_from_slice(&hi.to_le_bytes());
    out[8..].copy_from_slice(&lo.to_le_bytes());
    out
}

/// A sub-customer id as the engine holds it ('' for none) in ClickHouse's `UUID` layout, the
/// nil UUID for none.
fn customer_bytes(id: &str) -> Result<[u8; 16]> {
    if id.is_empty() {
        return Ok(uuid_bytes(Uuid::nil()));
    }
    Uuid::parse_str(id)
        .map(uuid_bytes)
        .map_err(|e| ioto_domain::Error::Internal(format!("sub-customer id '{id}' of a CDR: {e}")))
}

/// A card's kind as the `Enum8` of the rated tables stores it.
fn kind_value(kind: RateCardKind) -> i8 {
    match kind {
        RateCardKind::Retail => 1,
        RateCardKind::Supplier => 2,
    }
}

/// The rated tables' `kind` column type, named as ClickHouse prints it (a `Native` block names
/// each column's type).
const KIND_TYPE: &str = "Enum8('RETAIL' = 1, 'SUPPLIER' = 2)";

/// [`key_column`] on ClickHouse, where tenant and sub-customer ids are `UUID`s read as text.
fn ch_key(by: RatedDimension, fees: bool) -> Result<&'static str> {
    Ok(match by {
        RatedDimension::Tenant => "toString(tenant_id)",
        RatedDimension::Customer => CUSTOMER_TEXT,
        _ => key_column(by, fees)?,
    })
}

/// The column (or expression) a dimension sums by; fees have no network, zone or day. Tenant and
/// sub-customer are the columns as the embedded store holds them (text).
pub(super) fn key_column(by: RatedDimension, fees: bool) -> Result<&'static str> {
    Ok(match (by, fees) {
        (RatedDimension::Tenant, _) => "tenant_id",
        (RatedDimension::Sim, _) => "iccid",
        (RatedDimension::Customer, _) => "customer_id",
        (RatedDimension::TariffPlan, _) => "tariff_plan",
        (RatedDimension::Network, false) => "mcc_mnc",
        (RatedDimension::Zone, false) => "zone",
        (RatedDimension::Day, false) => "toString(day)",
        (RatedDimension::Month, false) => "toString(toStartOfMonth(day))",
        (RatedDimension::Month, true) => "toString(month)",
        (other, true) => {
            return Err(ioto_domain::Error::invalid(
                "by",
                format!("access fees are per SIM and month; they cannot be summed by {other:?}"),
            ))
        }
    })
}

/// How many connections read a period's CDRs at once.
const READ_CONNECTIONS: u64 = 2;

/// `[from, to)` cut into at most [`READ_CONNECTIONS`] ranges of whole days.
fn read_ranges(from: NaiveDate, to: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    let days = u64::try_from((to - from).num_days()).unwrap_or(0);
    let parts = READ_CONNECTIONS.min(days).max(1);
    let mut ranges = Vec::new();
    let mut start = from;
    for i in 1..=parts {
        let end = if i == parts {
            to
        } else {
            from + chrono::Days::new(days * i / parts)
        };
        ranges.push((start, end));
        start = end;
    }
    ranges
}

/// The CDRs of `tenant` on the days `[from, to)`, as columns.
async fn read_cdrs(
    client: &clickhouse::Client,
    tenant: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> std::result::Result<CdrColumns, clickhouse::error::Error> {
    let mut cursor = client
        .query(
            "SELECT iccid, customer_id, toUInt16(day), mcc_mnc, bytes_in, bytes_out FROM cdrs \
             WHERE tenant_id = ? AND day >= toDate(?) AND day < toDate(?)",
        )
        .bind(tenant)
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch::<CdrIn<'_>>()?;
    let mut cdrs = CdrColumns::default();
    while let Some(r) = cursor.next().await? {
        cdrs.push(
            r.iccid,
            r.customer_id,
            i32::from(r.day),
            r.mcc_mnc,
            r.bytes_in,
            r.bytes_out,
        );
    }
    Ok(cdrs)
}

/// Runs CPU-bound work off the async threads.
pub(super) async fn tokio_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ioto_domain::Error::Internal(format!("rating task: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_period_is_read_in_ranges_of_whole_days_that_cover_it_once() {
        assert_eq!(
            read_ranges(d("2026-03-01"), d("2026-04-01")),
            vec![
                (d("2026-03-01"), d("2026-03-16")),
                (d("2026-03-16"), d("2026-04-01"))
            ]
        );
        assert_eq!(
            read_ranges(d("2026-03-01"), d("2026-03-02")),
            vec![(d("2026-03-01"), d("2026-03-02"))]
        );
        assert_eq!(
            read_ranges(d("2026-03-01"), d("2026-03-01")),
            vec![(d("2026-03-01"), d("2026-03-01"))]
        );
    }
}
