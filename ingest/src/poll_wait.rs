//! The wait inside a batch poll, the same on every bus: for the next arrival until a deadline,
//! unless the caller says it has enough ([`ioto_domain::ports::BatchConsumer::poll_until`]).

use std::future::Future;
use std::pin::Pin;

use tokio::time::Instant;

/// What ended a poll's wait.
pub(crate) enum Woken<T> {
    /// Something arrived: the arrival's output.
    Arrived(T),
    /// The deadline passed first.
    TimedOut,
    /// The caller has enough (looked at first): take what is there and return.
    Enough,
}

/// Waits for `arrival` until `deadline`, or until `enough` completes.
pub(crate) async fn next_arrival<F: Future>(
    deadline: Instant,
    arrival: F,
    enough: Pin<&mut (dyn Future<Output = ()> + Send + '_)>,
) -> Woken<F::Output> {
    tokio::select! {
        biased;
        () = enough => Woken::Enough,
        got = tokio::time::timeout_at(deadline, arrival) => got.map_or(Woken::TimedOut, Woken::Arrived),
    }
}
