//! CPU work of one request spread over the machine's cores: scoped threads, joined before the
//! results are looked at, so a panic or a failing piece is an error of the call and never a
//! thread left running.

use crate::{Error, Result};

/// The threads CPU work of one request may use: the machine's cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Runs `work` on each of `pieces`, one scoped thread per piece (on the calling thread when
/// there is one piece), and returns the results in the pieces' order. Every thread is joined
/// before the results are looked at: a failing piece returns its error, a panicking one an
/// `Internal` error naming `what`, and a thread that cannot be started `Unavailable`.
pub fn in_parallel<P, R, F>(what: &str, pieces: Vec<P>, work: F) -> Result<Vec<R>>
where
    P: Send,
    R: Send,
    F: Fn(P) -> Result<R> + Sync,
{
    if pieces.len() <= 1 {
        return pieces.into_iter().map(&work).collect();
    }
    let work = &work;
    std::thread::scope(|scope| {
        let mut threads = Vec::with_capacity(pieces.len());
        for piece in pieces {
            let thread = std::thread::Builder::new()
                .spawn_scoped(scope, move || work(piece))
                .map_err(|e| Error::Unavailable(format!("no thread could be started for {what}: {e}")))?;
            threads.push(thread);
        }
        let joined: Vec<_> = threads.into_iter().map(|t| t.join()).collect();
        joined
            .into_iter()
            .map(|j| j.map_err(|_| Error::Internal(format!("a thread {what} panicked")))?)
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_in_parallel_comes_back_in_order_and_a_failing_or_panicking_piece_is_an_error() {
        let squares = in_parallel("squaring", (0..8u64).collect(), |n| Ok(n * n)).unwrap();
        assert_eq!(squares, (0..8u64).map(|n| n * n).collect::<Vec<_>>());
        // One piece runs on the calling thread.
        let here = std::thread::current().id();
        assert_eq!(
            in_parallel("one", vec![()], |()| Ok(std::thread::current().id())).unwrap(),
            vec![here]
        );
        let failed = in_parallel("checking", (0..4).collect(), |n| {
            if n == 2 {
                Err(Error::invalid("row", "is bad"))
            } else {
                Ok(n)
            }
        })
        .unwrap_err();
        assert!(matches!(failed, Error::InvalidInput { .. }), "{failed}");
        // Two pieces panic: every thread is joined and the caller gets an error, not a panic.
        let panicked = in_parallel("sealing", (0..4).collect(), |n: i32| -> Result<i32> {
            assert!(n % 2 == 0, "piece {n} panics");
            Ok(n)
        })
        .unwrap_err();
        assert!(
            matches!(&panicked, Error::Internal(m) if m.contains("sealing")),
            "{panicked}"
        );
    }
}
