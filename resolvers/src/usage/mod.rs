//! Usage: live sessions, history, per-period usage, reconciliation, telemetry.

mod query;
mod subscription;
pub(crate) mod types;

pub(crate) use self::query::UsageQuery;
pub(crate) use self::subscription::UsageSubscription;
pub(crate) use self::types::*;
