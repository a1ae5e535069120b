//! The directory: tenants, sub-customers, users, signing in.

mod api_keys;
pub(crate) mod mfa;
mod mutation;
mod query;
pub(crate) mod sessions;
mod subscription;
pub(crate) mod types;

pub(crate) use self::api_keys::{ApiKeyMutation, ApiKeyQuery};
pub(crate) use self::mfa::MfaMutation;
pub(crate) use self::mutation::DirectoryMutation;
pub(crate) use self::query::DirectoryQuery;
pub(crate) use self::sessions::SessionMutation;
pub(crate) use self::subscription::DirectorySubscription;
pub(crate) use self::types::*;
