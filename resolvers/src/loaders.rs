//! Dataloaders for nested fields: a page of SIMs asks for its customers, devices and (for
//! devices) SIMs in one query each, whatever the page size.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use ioto_domain::directory::Customer;
use ioto_domain::fleet::{Device, Sim};
use ioto_domain::services::FleetService;
use ioto_domain::{Actor, CustomerId, DeviceId};

use crate::error::to_gql;

/// Loads for one caller; their scope and permissions apply to every batch.
pub struct FleetLoader {
    fleet: FleetService,
    actor: Actor,
}

/// The SIMs in a device (key for [`FleetLoader`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SimsIn(pub DeviceId);

impl Loader<CustomerId> for FleetLoader {
    type Value = Customer;
    type Error = Arc<async_graphql::Error>;

    async fn load(&self, keys: &[CustomerId]) -> Result<HashMap<CustomerId, Customer>, Self::Error> {
        let list = self
            .fleet
            .customers_by_id(&self.actor, keys)
            .await
            .map_err(|e| Arc::new(to_gql(e)))?;
        Ok(list.into_iter().map(|c| (c.id, c)).collect())
    }
}

impl Loader<DeviceId> for FleetLoader {
    type Value = Device;
    type Error = Arc<async_graphql::Error>;

    async fn load(&self, keys: &[DeviceId]) -> Result<HashMap<DeviceId, Device>, Self::Error> {
        let list = self
            .fleet
            .devices_by_id(&self.actor, keys)
            .await
            .map_err(|e| Arc::new(to_gql(e)))?;
        Ok(list.into_iter().map(|d| (d.id, d)).collect())
    }
}

impl Loader<SimsIn> for FleetLoader {
    type Value = Vec<Sim>;
    type Error = Arc<async_graphql::Error>;

    async fn load(&self, keys: &[SimsIn]) -> Result<HashMap<SimsIn, Vec<Sim>>, Self::Error> {
        let ids: Vec<DeviceId> = keys.iter().map(|k| k.0).collect();
        let list = self
            .fleet
            .sims_in_devices(&self.actor, &ids)
            .await
            .map_err(|e| Arc::new(to_gql(e)))?;
        let mut out: HashMap<SimsIn, Vec<Sim>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for sim in list {
            if let Some(d) = sim.device_id {
                out.entry(SimsIn(d)).or_default().push(sim);
            }
        }
        Ok(out)
    }
}

pub struct Loaders {
    pub fleet: DataLoader<FleetLoader>,
}

impl Loaders {
    pub fn new(fleet: FleetService, actor: Actor) -> Self {
        Self {
            fleet: DataLoader::new(FleetLoader { fleet, actor }, tokio::spawn),
        }
    }
}
