//! The mutation root: every feature's mutations merged into one type.

/// Every mutation: directory, fleet, quotas, billing, bulk jobs, notifications, alerts,
/// anomalies, exports.
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    crate::directory::DirectoryMutation,
    crate::directory::ApiKeyMutation,
    crate::directory::SessionMutation,
    crate::directory::MfaMutation,
    crate::fleet::FleetMutation,
    crate::quota::QuotaMutation,
    crate::quota::QuotaPoolMutation,
    crate::billing::BillingMutation,
    crate::bulk::BulkMutation,
    crate::notify::NotifyMutation,
    crate::alert::AlertMutation,
    crate::forecast::ForecastMutation,
    crate::exports::ExportMutation,
);
