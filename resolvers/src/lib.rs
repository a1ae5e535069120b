#![doc = include_str!("../README.md")]

mod analytics;
mod billing;
mod bulk;
mod context;
mod error;
pub mod exports;
mod fleet_mutation;
mod fleet_query;
pub mod limits;
mod loaders;
mod mutation;
mod notify;
mod query;
pub mod rate_limit;
pub mod scalars;
mod subscription;
pub mod types;
mod usage_query;

pub use context::{
    Realtime, RequestContext, RequestMeter, Services, SubscriptionSlots, TaskScope, TokenIssuer,
};
pub use error::to_gql;
pub use ioto_domain::ErrorCode;
pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;
