#![doc = include_str!("../README.md")]

pub mod actor;
pub mod directory;
pub mod error;
pub mod events;
pub mod identifiers;
pub mod ids;
pub mod password;
pub mod ports;
pub mod role;
pub mod services;
pub mod sim;

pub use actor::{Actor, Scope};
pub use error::{Error, Result};
pub use ids::{CustomerId, SimId, TenantId, UserId};
pub use role::{Permission, Role};
