//! One contract suite per port, run against every adapter.

mod advice;
mod alerts;
mod analytics;
mod api_keys;
mod billing;
mod bus;
mod directory;
mod export;
mod fleet;
mod forecasts;
mod jobs;
mod mfa;
mod network;
mod notifications;
mod quota_pools;
mod quotas;
mod sessions;
mod telemetry;
mod usage;

/// A migrated transactional store at `loc`, for the suites that run on Postgres and SQLite.
async fn open(loc: ioto_store::StoreLocation) -> ioto_store::SqlStore {
    ioto_store::migrate(&loc).await.unwrap();
    ioto_store::connect(&loc, 4).await.unwrap()
}
