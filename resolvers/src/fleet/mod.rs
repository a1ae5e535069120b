//! The fleet: SIMs and devices, their connections and filters, labels, the audit trail,
//! schedules and settings.

mod connection;
mod device;
mod device_mutation;
mod fleet_mutation;
mod mutation;
mod query;
mod sim;
mod subscription;
pub(crate) mod types;

pub(crate) use self::connection::{DeviceConnection, SimConnection};
pub(crate) use self::device::{DeviceObject, DevicePayload};
pub(crate) use self::query::{parse_device, FleetQuery};
pub(crate) use self::sim::{SimObject, SimPayload};
pub(crate) use self::subscription::FleetSubscription;
pub(crate) use self::types::*;

/// Every fleet mutation: SIMs, devices and fleet-wide settings.
#[derive(async_graphql::MergedObject, Default)]
pub struct FleetMutation(
    self::mutation::SimMutation,
    self::device_mutation::DeviceMutation,
    self::fleet_mutation::FleetWideMutation,
);
