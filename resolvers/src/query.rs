//! The query root: every feature's queries merged into one type.

/// Every query: directory, fleet, usage, billing, analytics, bulk jobs, notifications, alerts,
/// anomalies, exports.
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    crate::directory::DirectoryQuery,
    crate::directory::ApiKeyQuery,
    crate::fleet::FleetQuery,
    crate::quota::QuotaQuery,
    crate::quota::QuotaPoolQuery,
    crate::usage::UsageQuery,
    crate::billing::BillingQuery,
    crate::analytics::AnalyticsQueryRoot,
    crate::bulk::BulkQuery,
    crate::notify::NotifyQuery,
    crate::alert::AlertQueryRoot,
    crate::forecast::ForecastQuery,
    crate::exports::ExportQuery,
);
