//! Dataloaders for nested fields: a page of SIMs asks for its customers, devices and (for
//! devices) SIMs in one query each, whatever the page size.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use async_graphql::Lookahead;
use ioto_app::FleetService;
use ioto_domain::directory::Customer;
use ioto_domain::fleet::{Device, Sim};
use ioto_domain::{Actor, CustomerId, DeviceId};

use crate::error::to_gql;

/// Wraps work a request spawns onto other tasks (dataloader batches), so that it runs in the
/// request's context (the server's per-request read session).
pub type TaskScope = Arc<
    dyn Fn(futures::future::BoxFuture<'static, ()>) -> futures::future::BoxFuture<'static, ()> + Send + Sync,
>;

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

/// The request's loaders. Results are cached for the request, so a page can load everything its
/// selection needs up front ([`prefetch_for_sims`]) and the nested resolvers then find it there:
/// the number of statements does not depend on how the nested fields' futures happen to be
/// scheduled into batches.
pub struct Loaders {
    pub fleet: DataLoader<FleetLoader, HashMapCache>,
}

impl Loaders {
    pub fn new(fleet: FleetService, actor: Actor, task_scope: Option<TaskScope>) -> Self {
        Self {
            fleet: DataLoader::with_cache(
                FleetLoader { fleet, actor },
                move |batch| {
                    tokio::spawn(match &task_scope {
                        Some(wrap) => wrap(batch),
                        None => batch,
                    })
                },
                HashMapCache::default(),
            ),
        }
    }
}

/// A batch error as this field's error (every field of the batch gets the same one).
pub(crate) fn gql_err(e: Arc<async_graphql::Error>) -> async_graphql::Error {
    (*e).clone()
}

/// Loads what `keys` name that the request has not loaded yet, in one query, and keeps it in the
/// loader's cache for the nested resolvers. It calls the loader itself, in the request's own task:
/// going through `load_many` would wait out the dataloader's batching delay (a timer on a thread of
/// its own) for keys that are all known already.
async fn prefetch<K>(
    l: &DataLoader<FleetLoader, HashMapCache>,
    keys: impl IntoIterator<Item = K>,
) -> async_graphql::Result<HashMap<K, <FleetLoader as Loader<K>>::Value>>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    FleetLoader: Loader<K, Error = Arc<async_graphql::Error>>,
{
    let wanted: std::collections::HashSet<K> = keys.into_iter().collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let mut found = l.get_cached_values::<K>();
    found.retain(|k, _| wanted.contains(k));
    let missing: Vec<K> = wanted.into_iter().filter(|k| !found.contains_key(k)).collect();
    if !missing.is_empty() {
        let loaded = l.loader().load(&missing).await.map_err(gql_err)?;
        l.feed_many(loaded.iter().map(|(k, v)| (k.clone(), v.clone())))
            .await;
        found.extend(loaded);
    }
    Ok(found)
}

/// Loads, one query per kind, what `selection` (a SIM's selection set) asks for under every SIM
/// of `sims`: customers, devices, and the devices' customers and SIMs.
pub async fn prefetch_for_sims(
    loaders: &Loaders,
    selection: Lookahead<'_>,
    sims: &[Sim],
) -> async_graphql::Result<()> {
    let l = &loaders.fleet;
    if selection.field("customer").exists() {
        prefetch(l, sims.iter().filter_map(|s| s.customer_id)).await?;
    }
    let device = selection.field("device");
    if device.exists() {
        let devices = prefetch(l, sims.iter().filter_map(|s| s.device_id)).await?;
        let list: Vec<Device> = devices.into_values().collect();
        prefetch_for_devices(loaders, device, &list).await?;
    }
    Ok(())
}

/// The same for a device's selection set: customers and SIMs of `devices`.
pub async fn prefetch_for_devices(
    loaders: &Loaders,
    selection: Lookahead<'_>,
    devices: &[Device],
) -> async_graphql::Result<()> {
    let l = &loaders.fleet;
    if selection.field("customer").exists() {
        prefetch(l, devices.iter().filter_map(|d| d.customer_id)).await?;
    }
    if selection.field("sims").exists() {
        prefetch(l, devices.iter().map(|d| SimsIn(d.id))).await?;
    }
    Ok(())
}
