//! Writing a run's rated rows to ClickHouse: `Native` blocks spread over a few insert requests, each fed slice by slice as the rater produces them.

use std::time::Instant;

use ioto_domain::billing::rating::RatingJob;
use ioto_domain::Result;

use super::{customer_bytes, kind_value, tokio_blocking, uuid_bytes, KIND_TYPE};
use crate::clickhouse::ClickHouseUsage;
use crate::date_to_days;
use crate::rating::columns::{self, RatedRow};
use crate::rating::native::{Block, NativeInsert};
use std::sync::Arc;

/// Insert requests the rated rows of a run are spread over (ClickHouse stores each on a thread
/// of its own).
pub(super) const RATED_WRITERS: usize = 2;

/// Rows per `Native` block: ClickHouse squashes the blocks of an insert into parts of up to
/// `min_insert_block_size_rows` (1,048,576) itself, so small blocks cost no extra parts and
/// keep what waits in memory small.
pub(super) const BLOCK_ROWS: usize = 1 << 16;

/// What the rater hands a writer: a slice's rows, or the end of the run (a writer whose channel
/// closes without it abandons its request).
pub(super) enum Slice {
    Rows(Vec<RatedRow>),
    Done,
}

/// One insert request of a run's rated rows.
pub(super) struct RatedWriter {
    pub(super) store: ClickHouseUsage,
    pub(super) columns: Arc<RatedColumns>,
}

impl RatedWriter {
    /// Writes the slices it receives into one insert request, as `Native` blocks of
    /// [`BLOCK_ROWS`] rows; the time spent writing.
    pub(super) async fn write(
        self,
        mut slices: tokio::sync::mpsc::Receiver<Slice>,
    ) -> Result<std::time::Duration> {
        let mut busy = std::time::Duration::ZERO;
        let mut insert = None;
        while let Some(slice) = slices.recv().await {
            let started = Instant::now();
            match slice {
                Slice::Rows(rows) => {
                    if rows.is_empty() {
                        continue;
                    }
                    let insert = insert.get_or_insert_with(|| NativeInsert::new(&self.store, "rated_usage"));
                    let rows = Arc::new(rows);
                    for start in (0..rows.len()).step_by(BLOCK_ROWS) {
                        let block = tokio_blocking({
                            let (out, rows) = (Arc::clone(&self.columns), Arc::clone(&rows));
                            move || out.block(&rows[start..rows.len().min(start + BLOCK_ROWS)])
                        })
                        .await?;
                        insert.send(block).await?;
                    }
                }
                Slice::Done => {
                    if let Some(insert) = insert.take() {
                        insert.end().await?;
                    }
                    busy += started.elapsed();
                    return Ok(busy);
                }
            }
            busy += started.elapsed();
        }
        Ok(busy)
    }
}

/// What a `rated_usage` block is made of besides the rows.
pub(super) struct RatedColumns {
    run: [u8; 16],
    tenant: [u8; 16],
    kind: i8,
    names: Arc<columns::Names>,
    /// Each sub-customer's id in ClickHouse's layout, by its index in `names`.
    customers: Vec<[u8; 16]>,
}

impl RatedColumns {
    pub(super) fn new(job: &RatingJob, names: Arc<columns::Names>) -> Result<Self> {
        let customers = (0..names.customers.len())
            .map(|i| customer_bytes(names.customers.value(i as u32)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            run: uuid_bytes(job.run_id),
            tenant: uuid_bytes(job.tenant_id.0),
            kind: kind_value(job.card.kind),
            names,
            customers,
        })
    }

    /// The rows as one `Native` block, columns in the table's order.
    pub(super) fn block(&self, rows: &[RatedRow]) -> Result<Block> {
        let n = &self.names;
        let days = rows
            .iter()
            .map(|r| date_to_days(columns::from_epoch_days(r.day)).map(u16::to_le_bytes))
            .collect::<Result<Vec<_>>>()?;
        let customer = |r: &RatedRow| {
            self.customers.get(r.customer as usize).copied().ok_or_else(|| {
                ioto_domain::Error::Internal(format!("rated row of unknown sub-customer {}", r.customer))
            })
        };
        let customer_ids = rows.iter().map(customer).collect::<Result<Vec<_>>>()?;
        let u64s = |f: fn(&RatedRow) -> u64| rows.iter().map(move |r| f(r).to_le_bytes());
        let mut b = Block::new(14, rows.len());
        b.numbers("run_id", "UUID", rows.iter().map(|_| self.run));
        b.numbers("tenant_id", "UUID", rows.iter().map(|_| self.tenant));
        b.numbers("kind", KIND_TYPE, rows.iter().map(|_| self.kind.to_le_bytes()));
        b.numbers("customer_id", "UUID", customer_ids.into_iter());
        b.strings("iccid", rows.iter().map(|r| n.sims.value(r.sim)));
        b.numbers("day", "Date", days.into_iter());
        b.strings("mcc_mnc", rows.iter().map(|r| n.networks.value(r.network)));
        b.strings("zone", rows.iter().map(|r| n.zones.value(r.zone)));
        b.strings("tariff_plan", rows.iter().map(|r| n.plans.value(r.plan)));
        b.numbers("records", "UInt64", u64s(|r| r.records));
        b.numbers("bytes_in", "UInt64", u64s(|r| r.bytes_in));
        b.numbers("bytes_out", "UInt64", u64s(|r| r.bytes_out));
        b.numbers("rounded_bytes", "UInt64", u64s(|r| r.rounded_bytes));
        b.numbers(
            "cost",
            "Decimal(38, 12)",
            rows.iter().map(|r| r.cost.units().to_le_bytes()),
        );
        Ok(b)
    }
}
