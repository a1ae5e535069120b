//! The rows of each export kind, read in batches through the services (so every permission and
//! scope rule of the matching query holds) with keyset paging: memory holds one batch.

mod analytics;
mod audit;
mod customer_billing;
mod devices;
mod invoice;
mod rated;
mod reconciliation;
mod sessions;
mod sims;
mod whole;

use self::analytics::*;
use self::audit::*;
use self::customer_billing::*;
use self::devices::*;
use self::invoice::*;
use self::rated::*;
use self::reconciliation::*;
use self::sessions::*;
use self::sims::*;
use self::whole::*;

use std::collections::HashMap;

use super::{ExportRequest, ExportService};
use ioto_domain::billing::money::COST_SCALE;
use ioto_domain::export::{ColumnType, ExportColumn};
use ioto_domain::fleet::query::MAX_PAGE;
use ioto_domain::ports::export::ExportSource;
use ioto_domain::{Actor, CustomerId, Error, Result};

/// Rows one batch holds (one page of the store's largest page size).
pub const BATCH_ROWS: u64 = MAX_PAGE;

/// Keyset paging through one source: where the next page starts and whether the source is done.
/// Every paged source reads through one, so none can forget to stop or skip a row at a page's
/// edge.
pub(super) struct Keyset<K> {
    after: Option<K>,
    done: bool,
    /// Whether a page shorter than asked is the last (else only an empty page ends the source:
    /// a reader that leaves rows out of a page, such as a customer user's session history).
    short_page_ends: bool,
}

impl<K: Clone> Keyset<K> {
    pub(super) fn new() -> Self {
        Self {
            after: None,
            done: false,
            short_page_ends: true,
        }
    }

    /// A keyset where only an empty page ends the source.
    pub(super) fn until_empty() -> Self {
        Self {
            short_page_ends: false,
            ..Self::new()
        }
    }

    /// The next page, read by `read` from the key it is given (`None`: the start) with at most
    /// [`BATCH_ROWS`] rows; `None` once the source is done. `key` names a row's position.
    pub(super) async fn next<T, Fut>(
        &mut self,
        read: impl FnOnce(Option<K>) -> Fut,
        key: impl Fn(&T) -> K,
    ) -> Result<Option<Vec<T>>>
    where
        Fut: std::future::Future<Output = Result<Vec<T>>>,
    {
        if self.done {
            return Ok(None);
        }
        let rows = read(self.after.clone()).await?;
        let Some(last) = rows.last() else {
            self.done = true;
            return Ok(None);
        };
        self.done = self.short_page_ends && (rows.len() as u64) < BATCH_ROWS;
        self.after = Some(key(last));
        Ok(Some(rows))
    }
}

pub(super) fn open(svc: ExportService, actor: Actor, request: ExportRequest) -> Box<dyn ExportSource> {
    match request {
        ExportRequest::SimInventory { tenant, filter } => Box::new(SimInventory {
            columns: sim_columns(),
            svc,
            actor,
            tenant,
            filter,
            pages: Keyset::new(),
        }),
        ExportRequest::Devices { tenant, filter } => Box::new(Devices {
            columns: device_columns(),
            svc,
            actor,
            tenant,
            filter,
            pages: Keyset::new(),
        }),
        ExportRequest::AuditLog { tenant, query } => Box::new(Audit {
            columns: audit_columns(),
            svc,
            actor,
            tenant,
            query,
            pages: Keyset::new(),
        }),
        ExportRequest::SessionHistory { iccid, query } => Box::new(Sessions {
            columns: session_columns(),
            svc,
            actor,
            iccid,
            query,
            sim: None,
            pages: Keyset::until_empty(),
        }),
        ExportRequest::UsageReconciliation { tenant, query } => Box::new(Reconciliation {
            columns: reconciliation_columns(),
            svc,
            actor,
            tenant,
            query,
            pages: Keyset::new(),
        }),
        ExportRequest::RatedUsage { tenant, kind, day } => Box::new(Rated {
            columns: rated_columns(None),
            svc,
            actor,
            tenant,
            kind,
            day,
            rows: None,
        }),
        ExportRequest::CustomerBilling { tenant, day } => Box::new(Whole {
            columns: customer_billing_columns(None),
            read: Reader::CustomerBilling { tenant, day },
            svc,
            actor,
            rows: None,
        }),
        ExportRequest::InvoiceLines { tenant, day } => Box::new(Whole {
            columns: invoice_columns(None),
            read: Reader::Invoice { tenant, day },
            svc,
            actor,
            rows: None,
        }),
        ExportRequest::UsageAnalytics { tenant, query } => Box::new(Whole {
            columns: analytics_columns(&query, None),
            read: Reader::Analytics {
                tenant,
                query: Box::new(query),
            },
            svc,
            actor,
            rows: None,
        }),
    }
}

fn col(name: &str, ty: ColumnType) -> ExportColumn {
    ExportColumn::new(name, ty)
}

fn text(v: impl ToString) -> Option<String> {
    Some(v.to_string())
}

fn int(v: u64) -> Option<i64> {
    Some(i64::try_from(v).unwrap_or(i64::MAX))
}

fn cost(scale_of: Option<&str>) -> ColumnType {
    ColumnType::Money {
        scale: COST_SCALE as u8,
        currency: scale_of.map(str::to_owned),
    }
}

fn labels_json(labels: &ioto_domain::fleet::labels::Labels) -> Option<String> {
    (!labels.is_empty()).then(|| labels.to_json().to_string())
}

/// Names of the sub-customers of a page (empty when the reader may not read customers: the
/// ids stay).
async fn customer_names(
    svc: &ExportService,
    actor: &Actor,
    ids: Vec<CustomerId>,
) -> Result<HashMap<CustomerId, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    match svc.fleet.customers_by_id(actor, &ids).await {
        Ok(cs) => Ok(cs.into_iter().map(|c| (c.id, c.name.to_string())).collect()),
        Err(Error::Forbidden(_)) => Ok(HashMap::new()),
        Err(e) => Err(e),
    }
}

fn unique<T: Copy + Eq + std::hash::Hash>(it: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = std::collections::HashSet::new();
    it.filter(|x| seen.insert(*x)).collect()
}
