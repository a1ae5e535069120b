//! Rated usage: a run's stored rows, streamed from the usage store.

use super::*;

use async_trait::async_trait;

use crate::export::ExportService;
use ioto_domain::export::{ColumnType, ExportBatch, ExportColumn};
use ioto_domain::ports::export::ExportSource;
use ioto_domain::{Actor, Error, Result, TenantId};

pub(super) fn rated_columns(currency: Option<&str>) -> Vec<ExportColumn> {
    use ColumnType::*;
    vec![
        col("day", Date),
        col("iccid", Text),
        col("mcc_mnc", Text),
        col("zone", Text),
        col("tariff_plan", Text),
        col("customer_id", Text),
        col("records", Int),
        col("bytes_in", Int),
        col("bytes_out", Int),
        col("rounded_bytes", Int),
        col("cost", cost(currency)),
        col("currency", Text),
        col("rating_run_id", Text),
    ]
}

pub(super) type RatedRows =
    futures::stream::BoxStream<'static, Result<Vec<ioto_domain::ports::billing::RatedRecord>>>;

pub(super) struct Rated {
    pub(super) columns: Vec<ExportColumn>,
    pub(super) svc: ExportService,
    pub(super) actor: Actor,
    pub(super) tenant: Option<TenantId>,
    pub(super) kind: ioto_domain::billing::rate_card::RateCardKind,
    pub(super) day: chrono::NaiveDate,
    /// The run's rows as they stream in, with its currency and id.
    pub(super) rows: Option<(RatedRows, String, String)>,
}

impl Rated {
    async fn open(&mut self) -> Result<()> {
        if self.rows.is_some() {
            return Ok(());
        }
        let rated = self
            .svc
            .billing
            .rated_records(&self.actor, self.tenant, self.kind, self.day, BATCH_ROWS as usize)
            .await?
            .ok_or_else(|| {
                Error::invalid(
                    "filter.day",
                    format!("the billing period holding {} has not been rated yet; rate it first (rateBillingPeriod) or pick a rated period", self.day),
                )
            })?;
        let currency = rated.currency.code().to_owned();
        self.columns = rated_columns(Some(&currency));
        self.rows = Some((rated.rows, currency, rated.run.id.to_string()));
        Ok(())
    }
}

#[async_trait]
impl ExportSource for Rated {
    fn columns(&self) -> &[ExportColumn] {
        &self.columns
    }

    async fn expected_rows(&mut self) -> Result<Option<u64>> {
        self.open().await?;
        Ok(None)
    }

    async fn next_batch(&mut self) -> Result<Option<ExportBatch>> {
        use futures::StreamExt as _;
        self.open().await?;
        let Some((rows, currency, run)) = &mut self.rows else {
            return Ok(None);
        };
        let Some(rows) = rows.next().await.transpose()? else {
            return Ok(None);
        };
        let mut b = ExportBatch::new(&self.columns, rows.len());
        for r in &rows {
            b.push_date(0, Some(r.day));
            b.push_text(1, Some(r.iccid.clone()));
            b.push_text(2, Some(r.mcc_mnc.clone()));
            b.push_text(3, Some(r.zone.clone()));
            b.push_text(4, (!r.tariff_plan.is_empty()).then(|| r.tariff_plan.clone()));
            b.push_text(5, (!r.customer_id.is_empty()).then(|| r.customer_id.clone()));
            b.push_int(6, int(r.records));
            b.push_int(7, int(r.bytes_in));
            b.push_int(8, int(r.bytes_out));
            b.push_int(9, int(r.rounded_bytes));
            b.push_decimal(10, Some(r.cost.units()));
            b.push_text(11, Some(currency.clone()));
            b.push_text(12, Some(run.clone()));
        }
        Ok(Some(b))
    }
}
