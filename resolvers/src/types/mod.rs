//! GraphQL wrappers around domain types.

mod device;
pub(crate) mod directory;
mod enums;
pub mod fleet;
mod sim;
pub mod usage;

pub use device::{DeviceObject, DevicePayload};
pub use directory::{CustomerObject, DirectoryEventObject, LoginPayload, Me, TenantObject, UserObject};
pub use enums::*;
pub use sim::{SimObject, SimPayload};
