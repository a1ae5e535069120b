//! Devices: reads and assignment.

use async_trait::async_trait;
use ioto_domain::fleet::audit::AuditStamp;
use ioto_domain::fleet::device::Device;
use ioto_domain::fleet::query::{DeviceFilter, DeviceSort, Page};
use ioto_domain::ports::DeviceStore;
use ioto_domain::{CustomerId, DeviceId, Result, Scope, TenantId};
use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter, QueryTrait};

use super::assign::*;
use super::*;
use crate::entities::{device, sim};
use crate::error::db;
use crate::pool::{admit, commit, sims_in};

#[async_trait]
impl DeviceStore for SqlFleet {
    async fn device(&self, scope: Scope, id: DeviceId) -> Result<Option<Device>> {
        self.read_one(scope, devices_in(scope).filter(device::Column::Id.eq(id.0)))
            .await
    }

    async fn devices_by_id(&self, scope: Scope, ids: &[DeviceId]) -> Result<Vec<Device>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read_all(
            scope,
            devices_in(scope).filter(device::Column::Id.is_in(ids.iter().map(|i| i.0))),
        )
        .await
    }

    async fn list_devices(
        &self,
        scope: Scope,
        tenant: TenantId,
        f: &DeviceFilter,
        page: &Page<DeviceSort>,
    ) -> Result<Vec<Device>> {
        let q = devices_in(scope).filter(filter::device_condition(self.backend(), tenant, f));
        let q = filter::device_page(q, page)?;
        self.read_all(scope, q).await
    }

    async fn count_devices(&self, scope: Scope, tenant: TenantId, f: &DeviceFilter) -> Result<u64> {
        let q = devices_in(scope).filter(filter::device_condition(self.backend(), tenant, f));
        let txn = self.begin(scope).await?;
        let n = q.count(&txn).await.map_err(db)?;
        commit(txn).await?;
        Ok(n)
    }

    async fn assign_devices(
        &self,
        scope: Scope,
        tenant: TenantId,
        f: &DeviceFilter,
        customer: Option<CustomerId>,
        stamp: &AuditStamp,
    ) -> Result<u64> {
        admit(scope, tenant, customer)?;
        let backend = self.backend();
        let select = moving(devices_in(scope), DEVICE_COLUMNS, customer)
            .filter(filter::device_condition(backend, tenant, f))
            .into_query();
        let txn = self.begin(scope).await?;
        let (device_ids, mut audit) =
            move_rows(&txn, backend, Moving::Devices, select, customer, stamp).await?;
        // The SIMs in those devices follow them.
        for chunk in device_ids.chunks(ID_CHUNK) {
            let select = moving(sims_in(scope), SIM_COLUMNS, customer)
                .filter(sim::Column::DeviceId.is_in(chunk.iter().copied()))
                .into_query();
            audit.extend(
                move_rows(&txn, backend, Moving::Sims, select, customer, stamp)
                    .await?
                    .1,
            );
        }
        bulk::insert_audit(&txn, backend, &audit).await?;
        commit(txn).await?;
        Ok(device_ids.len() as u64)
    }
}
