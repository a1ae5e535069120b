//! Devices: every device the caller sees, by IMEI, with the SIMs bound to it.

use super::*;
use std::collections::HashMap;

use async_trait::async_trait;

use crate::export::ExportService;
use ioto_domain::export::{ColumnType, ExportBatch, ExportColumn};
use ioto_domain::fleet::query::{device_cursor, DeviceFilter, DeviceSort, Page};
use ioto_domain::ports::export::ExportSource;
use ioto_domain::{Actor, DeviceId, Result, TenantId};

pub(super) fn device_columns() -> Vec<ExportColumn> {
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

pub(super) struct Devices {
    pub(super) columns: Vec<ExportColumn>,
    pub(super) svc: ExportService,
    pub(super) actor: Actor,
    pub(super) tenant: Option<TenantId>,
    pub(super) filter: DeviceFilter,
    pub(super) pages: Keyset<ioto_domain::fleet::query::Cursor>,
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
        let (svc, actor, tenant, filter) = (&self.svc, &self.actor, self.tenant, &self.filter);
        let read = |after| async move {
            let page = Page {
                sort: DeviceSort::Imei,
                descending: false,
                after,
                limit: BATCH_ROWS,
            };
            svc.fleet.devices(actor, tenant, filter, &page).await
        };
        let Some(devices) = self
            .pages
            .next(read, |d| device_cursor(d, DeviceSort::Imei))
            .await?
        else {
            return Ok(None);
        };
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
