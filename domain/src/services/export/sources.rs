//! The rows of each export kind, read in batches through the services (so every permission and
//! scope rule of the matching query holds) with keyset paging: memory holds one batch.

use std::collections::HashMap;

use async_trait::async_trait;

use super::{ExportRequest, ExportService};
use crate::analytics::{DimValue, Dimension, Measure};
use crate::billing::money::{Cost, COST_SCALE};
use crate::export::{ColumnType, ExportBatch, ExportColumn};
use crate::fleet::audit::AuditQuery;
use crate::fleet::device::Device;
use crate::fleet::query::{
    device_cursor, sim_cursor, DeviceFilter, DeviceSort, Page, SimFilter, SimSort, MAX_PAGE,
};
use crate::fleet::sim::Sim;
use crate::ports::billing::RatedDimension;
use crate::ports::export::ExportSource;
use crate::ports::{HistoryQuery, ReconciliationQuery};
use crate::services::analytics::AnalyticsQuery;
use crate::{Actor, CustomerId, DeviceId, Error, Iccid, Result, TenantId};

/// Rows one batch holds (one page of the store's largest page size).
pub const BATCH_ROWS: u64 = MAX_PAGE;

pub(super) fn open(svc: ExportService, actor: Actor, request: ExportRequest) -> Box<dyn ExportSource> {
    match request {
        ExportRequest::SimInventory { tenant, filter } => Box::new(SimInventory {
            columns: sim_columns(),
            svc,
            actor,
            tenant,
            filter,
            after: None,
            done: false,
        }),
        ExportRequest::Devices { tenant, filter } => Box::new(Devices {
            columns: device_columns(),
            svc,
            actor,
            tenant,
            filter,
            after: None,
            done: false,
        }),
        ExportRequest::AuditLog { tenant, query } => Box::new(Audit {
            columns: audit_columns(),
            svc,
            actor,
            tenant,
            query,
            done: false,
        }),
        ExportRequest::SessionHistory { iccid, query } => Box::new(Sessions {
            columns: session_columns(),
            svc,
            actor,
            iccid,
            query,
            sim: None,
            done: false,
        }),
        ExportRequest::UsageReconciliation { tenant, query } => Box::new(Reconciliation {
            columns: reconciliation_columns(),
            svc,
            actor,
            tenant,
            query,
            done: false,
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

fn labels_json(labels: &crate::fleet::labels::Labels) -> Option<String> {
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

// ---- SIM inventory ----

fn sim_columns() -> Vec<ExportColumn> {
    use ColumnType::*;
    vec![
        col("iccid", Text),
        col("imsi", Text),
        col("msisdn", Text),
        col("sim_type", Text),
        col("state", Text),
        col("tariff_plan", Text),
        col("customer_id", Text),
        col("customer_name", Text),
        col("device_id", Text),
        col("device_imei", Text),
        col("device_name", Text),
        col("labels", Text),
        col("last_network", Text),
        col("last_activity_at", Timestamp),
        col("created_at", Timestamp),
        col("updated_at", Timestamp),
    ]
}

struct SimInventory {
    columns: Vec<ExportColumn>,
    svc: ExportService,
    actor: Actor,
    tenant: Option<TenantId>,
    filter: SimFilter,
    after: Option<crate::fleet::query::Cursor>,
    done: bool,
}

#[async_trait]
impl ExportSource for SimInventory {
    fn columns(&self) -> &[ExportColumn] {
        &self.columns
    }

    async fn expected_rows(&mut self) -> Result<Option<u64>> {
        let n = self
            .svc
            .fleet
            .count_sims(&self.actor, self.tenant, &self.filter)
            .await?;
        Ok(Some(n))
    }

    async fn next_batch(&mut self) -> Result<Option<ExportBatch>> {
        if self.done {
            return Ok(None);
        }
        let page = Page {
            sort: SimSort::Iccid,
            descending: false,
            after: self.after.clone(),
            limit: BATCH_ROWS,
        };
        let sims = self
            .svc
            .fleet
            .sims(&self.actor, self.tenant, &self.filter, &page)
            .await?;
        self.done = (sims.len() as u64) < BATCH_ROWS;
        let Some(last) = sims.last() else {
            self.done = true;
            return Ok(None);
        };
        self.after = Some(sim_cursor(last, SimSort::Iccid));
        let names = customer_names(
            &self.svc,
            &self.actor,
            unique(sims.iter().filter_map(|s| s.customer_id)),
        )
        .await?;
        let device_ids: Vec<DeviceId> = unique(sims.iter().filter_map(|s| s.device_id));
        let devices: HashMap<DeviceId, Device> = if device_ids.is_empty() {
            HashMap::new()
        } else {
            match self.svc.fleet.devices_by_id(&self.actor, &device_ids).await {
                Ok(ds) => ds.into_iter().map(|d| (d.id, d)).collect(),
                Err(Error::Forbidden(_)) => HashMap::new(),
                Err(e) => return Err(e),
            }
        };
        let mut b = ExportBatch::new(&self.columns, sims.len());
        for s in &sims {
            push_sim(&mut b, s, &names, &devices);
        }
        Ok(Some(b))
    }
}

fn push_sim(
    b: &mut ExportBatch,
    s: &Sim,
    names: &HashMap<CustomerId, String>,
    devices: &HashMap<DeviceId, Device>,
) {
    let device = s.device_id.and_then(|d| devices.get(&d));
    b.push_text(0, text(&s.iccid));
    b.push_text(1, text(&s.imsi));
    b.push_text(2, s.msisdn.as_ref().map(ToString::to_string));
    b.push_text(3, text(s.sim_type.as_str()));
    b.push_text(4, text(s.state.as_str()));
    b.push_text(5, s.tariff_plan.clone());
    b.push_text(6, s.customer_id.map(|c| c.to_string()));
    b.push_text(7, s.customer_id.and_then(|c| names.get(&c).cloned()));
    b.push_text(8, s.device_id.map(|d| d.to_string()));
    b.push_text(9, device.map(|d| d.imei.to_string()));
    b.push_text(10, device.map(|d| d.name.clone()));
    b.push_text(11, labels_json(&s.labels));
    b.push_text(12, s.last_network.as_ref().map(ToString::to_string));
    b.push_timestamp(13, s.last_activity_at);
    b.push_timestamp(14, Some(s.created_at));
    b.push_timestamp(15, Some(s.updated_at));
}

// ---- devices ----

fn device_columns() -> Vec<ExportColumn> {
    use ColumnType::*;
    vec![
        col("device_id", Text),
        col("imei", Text),
        col("name", Text),
        col("kind", Text),
        col("state", Text),
        col("customer_id", Text),
        col("customer_name", Text),
        col("sims", Text),
        col("labels", Text),
        col("last_activity_at", Timestamp),
        col("created_at", Timestamp),
        col("updated_at", Timestamp),
    ]
}

struct Devices {
    columns: Vec<ExportColumn>,
    svc: ExportService,
    actor: Actor,
    tenant: Option<TenantId>,
    filter: DeviceFilter,
    after: Option<crate::fleet::query::Cursor>,
    done: bool,
}

#[async_trait]
impl ExportSource for Devices {
    fn columns(&self) -> &[ExportColumn] {
        &self.columns
    }

    async fn expected_rows(&mut self) -> Result<Option<u64>> {
        let n = self
            .svc
            .fleet
            .count_devices(&self.actor, self.tenant, &self.filter)
            .await?;
        Ok(Some(n))
    }

    async fn next_batch(&mut self) -> Result<Option<ExportBatch>> {
        if self.done {
            return Ok(None);
        }
        let page = Page {
            sort: DeviceSort::Imei,
            descending: false,
            after: self.after.clone(),
            limit: BATCH_ROWS,
        };
        let devices = self
            .svc
            .fleet
            .devices(&self.actor, self.tenant, &self.filter, &page)
            .await?;
        self.done = (devices.len() as u64) < BATCH_ROWS;
        let Some(last) = devices.last() else {
            self.done = true;
            return Ok(None);
        };
        self.after = Some(device_cursor(last, DeviceSort::Imei));
        let names = customer_names(
            &self.svc,
            &self.actor,
            unique(devices.iter().filter_map(|d| d.customer_id)),
        )
        .await?;
        let ids: Vec<DeviceId> = devices.iter().map(|d| d.id).collect();
        let mut sims: HashMap<DeviceId, Vec<String>> = HashMap::new();
        for s in self.svc.fleet.sims_in_devices(&self.actor, &ids).await? {
            if let Some(d) = s.device_id {
                sims.entry(d).or_default().push(s.iccid.to_string());
            }
        }
        let mut b = ExportBatch::new(&self.columns, devices.len());
        for d in &devices {
            let mut bound = sims.remove(&d.id).unwrap_or_default();
            bound.sort();
            b.push_text(0, text(d.id));
            b.push_text(1, text(&d.imei));
            b.push_text(2, Some(d.name.clone()));
            b.push_text(3, text(d.kind.as_str()));
            b.push_text(4, text(d.state.as_str()));
            b.push_text(5, d.customer_id.map(|c| c.to_string()));
            b.push_text(6, d.customer_id.and_then(|c| names.get(&c).cloned()));
            b.push_text(7, (!bound.is_empty()).then(|| bound.join(" ")));
            b.push_text(8, labels_json(&d.labels));
            b.push_timestamp(9, d.last_activity_at);
            b.push_timestamp(10, Some(d.created_at));
            b.push_timestamp(11, Some(d.updated_at));
        }
        Ok(Some(b))
    }
}

// ---- audit log ----

fn audit_columns() -> Vec<ExportColumn> {
    use ColumnType::*;
    vec![
        col("id", Int),
        col("at", Timestamp),
        col("entity_kind", Text),
        col("entity_id", Text),
        col("entity_ref", Text),
        col("action", Text),
        col("actor", Text),
        col("actor_user_id", Text),
        col("customer_id", Text),
        col("old_value", Text),
        col("new_value", Text),
        col("note", Text),
    ]
}

struct Audit {
    columns: Vec<ExportColumn>,
    svc: ExportService,
    actor: Actor,
    tenant: Option<TenantId>,
    query: AuditQuery,
    done: bool,
}

#[async_trait]
impl ExportSource for Audit {
    fn columns(&self) -> &[ExportColumn] {
        &self.columns
    }

    async fn expected_rows(&mut self) -> Result<Option<u64>> {
        // No count without reading the trail: a first (one-row) read checks access and filter.
        let probe = AuditQuery {
            limit: 1,
            before: None,
            ..self.query.clone()
        };
        self.svc.fleet.audit(&self.actor, self.tenant, &probe).await?;
        Ok(None)
    }

    async fn next_batch(&mut self) -> Result<Option<ExportBatch>> {
        if self.done {
            return Ok(None);
        }
        self.query.limit = BATCH_ROWS;
        let entries = self
            .svc
            .fleet
            .audit(&self.actor, self.tenant, &self.query)
            .await?;
        self.done = (entries.len() as u64) < BATCH_ROWS;
        let Some(last) = entries.last() else {
            self.done = true;
            return Ok(None);
        };
        self.query.before = Some(last.id);
        let json = |v: &serde_json::Value| (!v.is_null()).then(|| v.to_string());
        let mut b = ExportBatch::new(&self.columns, entries.len());
        for e in &entries {
            b.push_int(0, Some(e.id));
            b.push_timestamp(1, Some(e.at));
            b.push_text(2, text(e.entity_kind.as_str()));
            b.push_text(3, text(e.entity_id));
            b.push_text(4, Some(e.entity_ref.clone()));
            b.push_text(5, text(e.action.as_str()));
            b.push_text(6, Some(e.actor.clone()));
            b.push_text(7, e.actor_user_id.map(|u| u.to_string()));
            b.push_text(8, e.customer_id.map(|c| c.to_string()));
            b.push_text(9, json(&e.old_value));
            b.push_text(10, json(&e.new_value));
            b.push_text(11, e.note.clone());
        }
        Ok(Some(b))
    }
}

// ---- session history ----

fn session_columns() -> Vec<ExportColumn> {
    use ColumnType::*;
    vec![
        col("iccid", Text),
        col("session_id", Text),
        col("at", Timestamp),
        col("mcc_mnc", Text),
        col("radio_access_type", Text),
        col("ip_address", Text),
        col("cell_id", Text),
        col("bytes_in", Int),
        col("bytes_out", Int),
        col("session_bytes_in", Int),
        col("session_bytes_out", Int),
        col("session_started_at", Timestamp),
        col("ended", Bool),
    ]
}

struct Sessions {
    columns: Vec<ExportColumn>,
    svc: ExportService,
    actor: Actor,
    iccid: Iccid,
    query: HistoryQuery,
    sim: Option<Sim>,
    done: bool,
}

impl Sessions {
    async fn sim(&mut self) -> Result<Sim> {
        if let Some(s) = &self.sim {
            return Ok(s.clone());
        }
        let sim = self
            .svc
            .fleet
            .sim(&self.actor, &self.iccid)
            .await?
            .ok_or_else(|| Error::not_found("SIM", &self.iccid))?;
        self.sim = Some(sim.clone());
        Ok(sim)
    }
}

#[async_trait]
impl ExportSource for Sessions {
    fn columns(&self) -> &[ExportColumn] {
        &self.columns
    }

    async fn expected_rows(&mut self) -> Result<Option<u64>> {
        let sim = self.sim().await?;
        let probe = HistoryQuery {
            limit: 1,
            before: None,
            ..self.query.clone()
        };
        self.svc.usage.session_history(&self.actor, &sim, &probe).await?;
        Ok(None)
    }

    async fn next_batch(&mut self) -> Result<Option<ExportBatch>> {
        if self.done {
            return Ok(None);
        }
        let sim = self.sim().await?;
        self.query.limit = BATCH_ROWS;
        let rows = self
            .svc
            .usage
            .session_history(&self.actor, &sim, &self.query)
            .await?;
        // A customer user's page may hold fewer rows than asked (updates from before the SIM
        // was theirs are left out): only an empty page ends the history.
        let Some(last) = rows.last() else {
            self.done = true;
            return Ok(None);
        };
        self.query.before = Some((last.event_time, last.session_id.clone()));
        let mut b = ExportBatch::new(&self.columns, rows.len());
        for u in &rows {
            b.push_text(0, text(&u.iccid));
            b.push_text(1, Some(u.session_id.clone()));
            b.push_timestamp(2, Some(u.event_time));
            b.push_text(3, text(&u.mcc_mnc));
            b.push_text(4, text(u.rat.name()));
            b.push_text(5, u.ip_address.map(|ip| ip.to_string()));
            b.push_text(6, u.cell_id.clone());
            b.push_int(7, int(u.delta_in));
            b.push_int(8, int(u.delta_out));
            b.push_int(9, int(u.total_in));
            b.push_int(10, int(u.total_out));
            b.push_timestamp(11, Some(u.started_at));
            b.push_bool(12, Some(u.terminated));
        }
        Ok(Some(b))
    }
}

// ---- rated usage (streamed from the usage store) ----

fn rated_columns(currency: Option<&str>) -> Vec<ExportColumn> {
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

type RatedRows = futures::stream::BoxStream<'static, Result<Vec<crate::ports::billing::RatedRecord>>>;

struct Rated {
    columns: Vec<ExportColumn>,
    svc: ExportService,
    actor: Actor,
    tenant: Option<TenantId>,
    kind: crate::billing::rate_card::RateCardKind,
    day: chrono::NaiveDate,
    /// The run's rows as they stream in, with its currency and id.
    rows: Option<(RatedRows, String, String)>,
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

// ---- usage reconciliation ----

fn reconciliation_columns() -> Vec<ExportColumn> {
    use ColumnType::*;
    vec![
        col("day", Date),
        col("iccid", Text),
        col("session_bytes_in", Int),
        col("session_bytes_out", Int),
        col("cdr_bytes_in", Int),
        col("cdr_bytes_out", Int),
        // CDR bytes minus session bytes, as `usageReconciliation` answers it.
        col("difference", Int),
    ]
}

struct Reconciliation {
    columns: Vec<ExportColumn>,
    svc: ExportService,
    actor: Actor,
    tenant: Option<TenantId>,
    query: ReconciliationQuery,
    done: bool,
}

#[async_trait]
impl ExportSource for Reconciliation {
    fn columns(&self) -> &[ExportColumn] {
        &self.columns
    }

    async fn expected_rows(&mut self) -> Result<Option<u64>> {
        let probe = ReconciliationQuery {
            limit: 1,
            after: None,
            ..self.query.clone()
        };
        self.svc
            .usage
            .reconciliation(&self.actor, self.tenant, probe)
            .await?;
        Ok(None)
    }

    async fn next_batch(&mut self) -> Result<Option<ExportBatch>> {
        if self.done {
            return Ok(None);
        }
        self.query.limit = BATCH_ROWS;
        let rows = self
            .svc
            .usage
            .reconciliation(&self.actor, self.tenant, self.query.clone())
            .await?;
        self.done = (rows.len() as u64) < BATCH_ROWS;
        let Some(last) = rows.last() else {
            self.done = true;
            return Ok(None);
        };
        self.query.after = Some((last.day, last.iccid.clone()));
        let mut b = ExportBatch::new(&self.columns, rows.len());
        for r in &rows {
            let session = i128::from(r.session_in) + i128::from(r.session_out);
            let billed = i128::from(r.cdr_in) + i128::from(r.cdr_out);
            b.push_date(0, Some(r.day));
            b.push_text(1, text(&r.iccid));
            b.push_int(2, int(r.session_in));
            b.push_int(3, int(r.session_out));
            b.push_int(4, int(r.cdr_in));
            b.push_int(5, int(r.cdr_out));
            b.push_int(6, i64::try_from(billed - session).ok());
        }
        Ok(Some(b))
    }
}

// ---- answers read whole (bounded by their query: billing per sub-customer, invoice lines,
// analytics rows) ----

enum Reader {
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

struct Whole {
    columns: Vec<ExportColumn>,
    read: Reader,
    svc: ExportService,
    actor: Actor,
    /// The answer, read on first use and handed out once.
    rows: Option<Option<ExportBatch>>,
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

fn customer_billing_columns(currency: Option<&str>) -> Vec<ExportColumn> {
    use ColumnType::*;
    vec![
        col("period_start", Date),
        col("period_end", Date),
        col("customer_id", Text),
        col("customer_name", Text),
        col("records", Int),
        col("bytes_in", Int),
        col("bytes_out", Int),
        col("rounded_bytes", Int),
        col("data_cost", cost(currency)),
        col("access_fee_sims", Int),
        col("access_fees", cost(currency)),
        col("total", cost(currency)),
        col("currency", Text),
        col("rating_run_id", Text),
    ]
}

async fn customer_billing(
    svc: &ExportService,
    actor: &Actor,
    tenant: Option<TenantId>,
    day: chrono::NaiveDate,
) -> Result<(Vec<ExportColumn>, ExportBatch)> {
    let rated = svc
        .billing
        .rated_usage(actor, tenant, crate::billing::rate_card::RateCardKind::Retail, day, RatedDimension::Customer)
        .await?
        .ok_or_else(|| {
            Error::invalid(
                "filter.day",
                format!("the billing period holding {day} has not been rated yet; rate it first (rateBillingPeriod) or pick a rated period"),
            )
        })?;
    let currency = rated.currency.code();
    let columns = customer_billing_columns(Some(currency));
    let fees: HashMap<&str, &crate::ports::billing::FeeSums> =
        rated.fees.iter().map(|(k, f)| (k.as_str(), f)).collect();
    let mut keys: Vec<&str> = rated.usage.iter().map(|(k, _)| k.as_str()).collect();
    keys.extend(
        fees.keys()
            .copied()
            .filter(|k| !rated.usage.iter().any(|(u, _)| u == k)),
    );
    keys.sort_unstable();
    let ids = unique(keys.iter().filter_map(|k| CustomerId::parse(k, "customer").ok()));
    let names = customer_names(svc, actor, ids).await?;
    let usage: HashMap<&str, &crate::ports::billing::RatedSums> =
        rated.usage.iter().map(|(k, s)| (k.as_str(), s)).collect();
    let mut b = ExportBatch::new(&columns, keys.len());
    for k in keys {
        let customer = CustomerId::parse(k, "customer").ok();
        let u = usage.get(k);
        let f = fees.get(k);
        let data = u.map_or(Cost::ZERO, |u| u.cost);
        let fee = f.map_or(Cost::ZERO, |f| f.fees);
        b.push_date(0, Some(rated.run.period_start));
        b.push_date(1, Some(rated.run.period_end));
        b.push_text(2, customer.map(|c| c.to_string()));
        b.push_text(3, customer.and_then(|c| names.get(&c).cloned()));
        b.push_int(4, int(u.map_or(0, |u| u.records)));
        b.push_int(5, int(u.map_or(0, |u| u.bytes_in)));
        b.push_int(6, int(u.map_or(0, |u| u.bytes_out)));
        b.push_int(7, int(u.map_or(0, |u| u.rounded_bytes)));
        b.push_decimal(8, Some(data.units()));
        b.push_int(9, int(f.map_or(0, |f| f.charges)));
        b.push_decimal(10, Some(fee.units()));
        b.push_decimal(11, Some(data.units().saturating_add(fee.units())));
        b.push_text(12, text(currency));
        b.push_text(13, text(rated.run.id));
    }
    Ok((columns, b))
}

fn invoice_columns(currency: Option<&str>) -> Vec<ExportColumn> {
    use ColumnType::*;
    vec![
        col("tenant_id", Text),
        col("period_start", Date),
        col("period_end", Date),
        col("line_kind", Text),
        col("item_code", Text),
        col("description", Text),
        col(
            "quantity",
            Decimal {
                scale: COST_SCALE as u8,
            },
        ),
        col("unit", Text),
        col("unit_price", Decimal { scale: 6 }),
        col("amount", cost(currency)),
        col("exact_amount", cost(currency)),
        col("adjusts_period_start", Date),
        col("currency", Text),
        col("is_final", Bool),
        col("rating_run_id", Text),
    ]
}

async fn invoice(
    svc: &ExportService,
    actor: &Actor,
    tenant: TenantId,
    day: chrono::NaiveDate,
) -> Result<(Vec<ExportColumn>, ExportBatch)> {
    let inv = svc
        .billing
        .tenant_invoice(actor, tenant, day)
        .await?
        .ok_or_else(|| {
            Error::invalid(
                "filter.day",
                format!("the tenant's billing period holding {day} has not been rated yet"),
            )
        })?;
    let currency = inv.currency.code();
    let columns = invoice_columns(Some(currency));
    let mut b = ExportBatch::new(&columns, inv.lines.len());
    for l in &inv.lines {
        b.push_text(0, text(inv.tenant_id));
        b.push_date(1, Some(inv.period_start));
        b.push_date(2, Some(inv.period_end));
        b.push_text(3, text(l.kind.as_str()));
        b.push_text(4, Some(l.item_code.clone()));
        b.push_text(5, Some(l.description.clone()));
        b.push_decimal(6, Some(l.quantity.units()));
        b.push_text(7, text(l.unit));
        b.push_decimal(8, Some(i128::from(l.unit_price.micros())));
        b.push_decimal(9, Some(l.amount.units()));
        b.push_decimal(10, Some(l.exact_amount.units()));
        b.push_date(11, l.adjusts_period_start);
        b.push_text(12, text(currency));
        b.push_bool(13, Some(inv.is_final));
        b.push_text(14, text(inv.run_id));
    }
    Ok((columns, b))
}

fn dimension_column(d: Dimension, label_key: Option<&str>) -> ExportColumn {
    match d {
        Dimension::Time => col("time", ColumnType::Timestamp),
        Dimension::Network => col("network", ColumnType::Text),
        Dimension::Country => col("country", ColumnType::Text),
        Dimension::SubCustomer => col("sub_customer_id", ColumnType::Text),
        Dimension::Sim => col("iccid", ColumnType::Text),
        Dimension::Label => col(
            &format!("label_{}", label_key.unwrap_or("value")),
            ColumnType::Text,
        ),
        Dimension::TariffPlan => col("tariff_plan", ColumnType::Text),
        Dimension::Rat => col("radio_access_type", ColumnType::Text),
    }
}

fn measure_column(m: Measure, currency: Option<&str>) -> ExportColumn {
    match m {
        Measure::BytesIn => col("bytes_in", ColumnType::Int),
        Measure::BytesOut => col("bytes_out", ColumnType::Int),
        Measure::BytesTotal => col("bytes_total", ColumnType::Int),
        Measure::RatedBytes => col("rated_bytes", ColumnType::Int),
        Measure::Cost => col("cost", cost(currency)),
        Measure::ActiveSims => col("active_sims", ColumnType::Int),
        Measure::Sessions => col("sessions", ColumnType::Int),
    }
}

fn analytics_columns(q: &AnalyticsQuery, currency: Option<&str>) -> Vec<ExportColumn> {
    let mut columns: Vec<ExportColumn> = q
        .dimensions
        .iter()
        .map(|d| dimension_column(*d, q.label_key.as_deref()))
        .collect();
    columns.extend(q.measures.iter().map(|m| measure_column(*m, currency)));
    columns
}

async fn analytics(
    svc: &ExportService,
    actor: &Actor,
    tenant: Option<TenantId>,
    q: &AnalyticsQuery,
) -> Result<(Vec<ExportColumn>, ExportBatch)> {
    let answer = svc.analytics.usage_analytics(actor, tenant, q.clone()).await?;
    if let Some((_, why)) = &answer.unserved {
        return Err(Error::invalid("filter.analytics", why.clone()));
    }
    let currency = answer.currency.map(|c| c.code());
    let columns = analytics_columns(q, currency);
    let mut b = ExportBatch::new(&columns, answer.rows.len());
    for row in &answer.rows {
        for (i, v) in row.dims.iter().enumerate() {
            match v {
                DimValue::Time(t) => b.push_timestamp(i, Some(*t)),
                DimValue::Text(t) => b.push_text(i, t.clone()),
            }
        }
        let base = row.dims.len();
        for (j, m) in q.measures.iter().enumerate() {
            let v = &row.values;
            match m {
                Measure::BytesIn => b.push_int(base + j, int(v.bytes_in)),
                Measure::BytesOut => b.push_int(base + j, int(v.bytes_out)),
                Measure::BytesTotal => b.push_int(base + j, int(v.bytes_total())),
                Measure::RatedBytes => b.push_int(base + j, int(v.rated_bytes)),
                Measure::Cost => b.push_decimal(base + j, Some(v.cost.units())),
                Measure::ActiveSims => b.push_int(base + j, int(v.active_sims)),
                Measure::Sessions => b.push_int(base + j, int(v.sessions)),
            }
        }
    }
    Ok((columns, b))
}
