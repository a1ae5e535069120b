#![doc = include_str!("../README.md")]

mod context;
mod error;
mod fleet_mutation;
mod fleet_query;
mod loaders;
mod mutation;
mod query;
mod subscription;
mod throttle;
pub mod types;
mod usage_query;

pub use context::{Realtime, RequestContext, Services, TokenIssuer};
pub use error::{to_gql, ErrorCode};
pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;
pub use throttle::LoginThrottle;
