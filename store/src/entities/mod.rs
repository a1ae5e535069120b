//! sea-orm entities, one per table. Rows convert into domain types in `convert.rs`.

pub mod customer;
pub mod sim;
pub mod tenant;
pub mod user;
