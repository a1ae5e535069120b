//! The usage store as the request-serving use cases read it: each read counted as a store query
//! of the request it serves ([`ioto_metering`]).

use std::sync::Arc;

use ioto_metering::count_store_query;

/// A usage reader that counts each read as a store query of the request it serves.
pub struct MeteredUsage<S: ?Sized>(pub Arc<S>);

#[async_trait::async_trait]
impl<S: ioto_domain::ports::UsageStore + ?Sized> ioto_domain::ports::UsageReader for MeteredUsage<S> {
    async fn settle(&self) -> ioto_domain::Result<()> {
        self.0.settle().await
    }

    async fn live_session(
        &self,
        tenant: ioto_domain::TenantId,
        iccid: &ioto_domain::Iccid,
    ) -> ioto_domain::Result<Option<ioto_domain::ports::usage::SessionUpdate>> {
        count_store_query();
        self.0.live_session(tenant, iccid).await
    }

    async fn session_history(
        &self,
        tenant: ioto_domain::TenantId,
        iccid: &ioto_domain::Iccid,
        query: &ioto_domain::ports::usage::HistoryQuery,
    ) -> ioto_domain::Result<Vec<ioto_domain::ports::usage::SessionUpdate>> {
        count_store_query();
        self.0.session_history(tenant, iccid, query).await
    }

    async fn sim_usage(
        &self,
        tenant: ioto_domain::TenantId,
        iccid: &ioto_domain::Iccid,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        granularity: ioto_domain::ports::usage::Granularity,
    ) -> ioto_domain::Result<Vec<ioto_domain::ports::usage::UsagePoint>> {
        count_store_query();
        self.0.sim_usage(tenant, iccid, from, to, granularity).await
    }

    async fn reconciliation(
        &self,
        tenant: ioto_domain::TenantId,
        query: &ioto_domain::ports::usage::ReconciliationQuery,
    ) -> ioto_domain::Result<Vec<ioto_domain::ports::usage::ReconciliationRow>> {
        count_store_query();
        self.0.reconciliation(tenant, query).await
    }

    async fn customer_usage(
        &self,
        tenant: ioto_domain::TenantId,
        customer: Option<ioto_domain::CustomerId>,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        granularity: ioto_domain::ports::usage::Granularity,
    ) -> ioto_domain::Result<Vec<ioto_domain::ports::usage::CustomerUsagePoint>> {
        count_store_query();
        self.0
            .customer_usage(tenant, customer, from, to, granularity)
            .await
    }

    async fn cube_rows(
        &self,
        tenant: ioto_domain::TenantId,
        query: &ioto_domain::analytics::CubeQuery,
    ) -> ioto_domain::Result<Vec<ioto_domain::analytics::CubeRow>> {
        count_store_query();
        self.0.cube_rows(tenant, query).await
    }

    async fn online_sims(
        &self,
        tenant: ioto_domain::TenantId,
        customer: Option<ioto_domain::CustomerId>,
        since: chrono::DateTime<chrono::Utc>,
    ) -> ioto_domain::Result<u64> {
        count_store_query();
        self.0.online_sims(tenant, customer, since).await
    }
}

#[async_trait::async_trait]
impl<S: ioto_domain::ports::UsageStore + ?Sized> ioto_domain::ports::TelemetryStore for MeteredUsage<S> {
    async fn write_telemetry(
        &self,
        readings: &[(ioto_domain::TenantId, ioto_domain::usage::TelemetryReading)],
    ) -> ioto_domain::Result<()> {
        self.0.write_telemetry(readings).await
    }

    async fn device_telemetry(
        &self,
        tenant: ioto_domain::TenantId,
        device: ioto_domain::DeviceId,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        limit: u64,
    ) -> ioto_domain::Result<Vec<ioto_domain::usage::TelemetryReading>> {
        count_store_query();
        self.0.device_telemetry(tenant, device, from, to, limit).await
    }
}
