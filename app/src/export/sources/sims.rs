//! The SIM inventory: every SIM the caller sees, by ICCID, with its device and sub-customer.

use super::*;
use std::collections::HashMap;

use async_trait::async_trait;

use crate::export::ExportService;
use ioto_domain::export::{ColumnType, ExportBatch, ExportColumn};
use ioto_domain::fleet::device::Device;
use ioto_domain::fleet::query::{sim_cursor, Page, SimFilter, SimSort};
use ioto_domain::fleet::sim::Sim;
use ioto_domain::ports::export::ExportSource;
use ioto_domain::{Actor, CustomerId, DeviceId, Error, Result, TenantId};

pub(super) fn sim_columns() -> Vec<ExportColumn> {
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

pub(super) struct SimInventory {
    pub(super) columns: Vec<ExportColumn>,
    pub(super) svc: ExportService,
    pub(super) actor: Actor,
    pub(super) tenant: Option<TenantId>,
    pub(super) filter: SimFilter,
    pub(super) pages: Keyset<ioto_domain::fleet::query::Cursor>,
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
        let (svc, actor, tenant, filter) = (&self.svc, &self.actor, self.tenant, &self.filter);
        let read = |after| async move {
            let page = Page {
                sort: SimSort::Iccid,
                descending: false,
                after,
                limit: BATCH_ROWS,
            };
            svc.fleet.sims(actor, tenant, filter, &page).await
        };
        let Some(sims) = self.pages.next(read, |s| sim_cursor(s, SimSort::Iccid)).await? else {
            return Ok(None);
        };
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

pub(super) fn push_sim(
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
