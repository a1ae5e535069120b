//! GraphQL wrappers around domain types.

mod directory;
mod enums;
mod sim;

pub use directory::{CustomerObject, DirectoryEventObject, LoginPayload, Me, TenantObject, UserObject};
pub use enums::{DirectoryChangeKind, RoleKind, SimStateKind};
pub use sim::{SimObject, SimPage};
