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
