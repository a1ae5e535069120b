//! Store queries counted per request: the server runs a request inside [`metered`], and the
//! adapters call [`count_store_query`] for each query they send (SQL statements, usage-store
//! reads). Outside a metered request the count goes nowhere.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

tokio::task_local! {
    static QUERIES: Arc<AtomicU64>;
}

/// Counts one store query against the request running on this task, if any.
pub fn count_store_query() {
    count_store_queries(1);
}

/// Counts `n` store queries against the request running on this task, if any.
pub fn count_store_queries(n: u64) {
    let _ = QUERIES.try_with(|q| q.fetch_add(n, Ordering::Relaxed));
}

/// Runs `fut` counting its store queries into `counter` (work the request spawns elsewhere is
/// counted when it runs inside [`metered`] with the same counter).
pub async fn metered<F: Future>(counter: Arc<AtomicU64>, fut: F) -> F::Output {
    QUERIES.scope(counter, fut).await
}

/// The counter of the request running on this task, to carry into work it spawns.
pub fn current() -> Option<Arc<AtomicU64>> {
    QUERIES.try_with(Arc::clone).ok()
}

/// A usage reader that counts each read as a store query of the request it serves.
pub struct MeteredUsage<S: ?Sized>(pub Arc<S>);

#[async_trait::async_trait]
impl<S: crate::ports::UsageStore + ?Sized> crate::ports::UsageReader for MeteredUsage<S> {
    async fn live_session(
        &self,
        tenant: crate::TenantId,
        iccid: &crate::Iccid,
    ) -> crate::Result<Option<crate::ports::usage::SessionUpdate>> {
        count_store_query();
        self.0.live_session(tenant, iccid).await
    }

    async fn session_history(
        &self,
        tenant: crate::TenantId,
        iccid: &crate::Iccid,
        query: &crate::ports::usage::HistoryQuery,
    ) -> crate::Result<Vec<crate::ports::usage::SessionUpdate>> {
        count_store_query();
        self.0.session_history(tenant, iccid, query).await
    }

    async fn sim_usage(
        &self,
        tenant: crate::TenantId,
        iccid: &crate::Iccid,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        granularity: crate::ports::usage::Granularity,
    ) -> crate::Result<Vec<crate::ports::usage::UsagePoint>> {
        count_store_query();
        self.0.sim_usage(tenant, iccid, from, to, granularity).await
    }

    async fn reconciliation(
        &self,
        tenant: crate::TenantId,
        query: &crate::ports::usage::ReconciliationQuery,
    ) -> crate::Result<Vec<crate::ports::usage::ReconciliationRow>> {
        count_store_query();
        self.0.reconciliation(tenant, query).await
    }

    async fn customer_usage(
        &self,
        tenant: crate::TenantId,
        customer: Option<crate::CustomerId>,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        granularity: crate::ports::usage::Granularity,
    ) -> crate::Result<Vec<crate::ports::usage::CustomerUsagePoint>> {
        count_store_query();
        self.0
            .customer_usage(tenant, customer, from, to, granularity)
            .await
    }

    async fn cube_rows(
        &self,
        tenant: crate::TenantId,
        query: &crate::analytics::CubeQuery,
    ) -> crate::Result<Vec<crate::analytics::CubeRow>> {
        count_store_query();
        self.0.cube_rows(tenant, query).await
    }

    async fn online_sims(
        &self,
        tenant: crate::TenantId,
        customer: Option<crate::CustomerId>,
        since: chrono::DateTime<chrono::Utc>,
    ) -> crate::Result<u64> {
        count_store_query();
        self.0.online_sims(tenant, customer, since).await
    }
}

#[async_trait::async_trait]
impl<S: crate::ports::UsageStore + ?Sized> crate::ports::TelemetryStore for MeteredUsage<S> {
    async fn write_telemetry(
        &self,
        readings: &[(crate::TenantId, crate::usage::TelemetryReading)],
    ) -> crate::Result<()> {
        self.0.write_telemetry(readings).await
    }

    async fn device_telemetry(
        &self,
        tenant: crate::TenantId,
        device: crate::DeviceId,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        limit: u64,
    ) -> crate::Result<Vec<crate::usage::TelemetryReading>> {
        count_store_query();
        self.0.device_telemetry(tenant, device, from, to, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queries_count_inside_their_request_only() {
        let counter = Arc::new(AtomicU64::new(0));
        count_store_query();
        metered(Arc::clone(&counter), async {
            count_store_query();
            count_store_query();
        })
        .await;
        assert_eq!(counter.load(Ordering::Relaxed), 2);
    }
}
