//! Answers read whole, bounded by their query (billing per sub-customer, invoice lines,
//! analytics rows): read on first use and handed out as one batch.

use super::*;

use async_trait::async_trait;

use crate::analytics::AnalyticsQuery;
use crate::export::ExportService;
use ioto_domain::export::{ExportBatch, ExportColumn};
use ioto_domain::ports::export::ExportSource;
use ioto_domain::{Actor, Result, TenantId};

pub(super) enum Reader {
    CustomerBilling {
        tenant: Option<TenantId>,
        day: chrono::NaiveDate,
    },
    Invoice {
        tenant: TenantId,
        day: chrono::NaiveDate,
    },
    Analytics {
        tenant: Option<TenantId>,
        query: Box<AnalyticsQuery>,
    },
}

pub(super) struct Whole {
    pub(super) columns: Vec<ExportColumn>,
    pub(super) read: Reader,
    pub(super) svc: ExportService,
    pub(super) actor: Actor,
    /// The answer, read on first use and handed out once.
    pub(super) rows: Option<Option<ExportBatch>>,
}

impl Whole {
    async fn load(&mut self) -> Result<()> {
        if self.rows.is_some() {
            return Ok(());
        }
        let (columns, batch) = match &self.read {
            Reader::CustomerBilling { tenant, day } => {
                customer_billing(&self.svc, &self.actor, *tenant, *day).await?
            }
            Reader::Invoice { tenant, day } => invoice(&self.svc, &self.actor, *tenant, *day).await?,
            Reader::Analytics { tenant, query } => analytics(&self.svc, &self.actor, *tenant, query).await?,
        };
        self.columns = columns;
        self.rows = Some(Some(batch));
        Ok(())
    }
}

#[async_trait]
impl ExportSource for Whole {
    fn columns(&self) -> &[ExportColumn] {
        &self.columns
    }

    async fn expected_rows(&mut self) -> Result<Option<u64>> {
        self.load().await?;
        Ok(self
            .rows
            .as_ref()
            .and_then(|r| r.as_ref())
            .map(|b| b.rows() as u64))
    }

    async fn next_batch(&mut self) -> Result<Option<ExportBatch>> {
        self.load().await?;
        Ok(self.rows.as_mut().and_then(Option::take))
    }
}
