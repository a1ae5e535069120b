#![doc = include_str!("../README.md")]

mod alert;
mod analytics;
mod billing;
mod bulk;
mod context;
mod directory;
mod enums;
mod error;
pub mod exports;
mod fleet;
mod forecast;
pub mod limits;
mod loaders;
mod mutation;
mod notify;
mod paging;
mod query;
mod quota;
pub mod rate_limit;
pub mod scalars;
mod subscription;
mod usage;

pub use context::{
    Realtime, RequestContext, RequestMeter, Services, SubscriptionSlots, TaskScope, TokenIssuer,
};
pub use error::to_gql;
pub use ioto_domain::ErrorCode;
pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;
