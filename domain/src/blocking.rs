//! CPU-heavy work — password hashing, reading and sealing uploaded files — runs on the blocking
//! thread pool, a bounded number of jobs of each kind at a time, so that it never stalls the
//! async workers serving everyone else, and a flood of such requests queues (then is refused
//! with `UNAVAILABLE`) instead of taking the machine.

use std::sync::LazyLock;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::{Error, Result};

/// A bounded lane for one kind of blocking work.
pub struct Lane {
    what: &'static str,
    permits: Semaphore,
    /// How long a job may wait for its turn before it is refused.
    wait: Duration,
}

impl Lane {
    const fn new(what: &'static str, permits: usize, wait: Duration) -> Self {
        Self {
            what,
            permits: Semaphore::const_new(permits),
            wait,
        }
    }

    /// Runs `f` on the blocking pool once a place in this lane is free.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let _permit = tokio::time::timeout(self.wait, self.permits.acquire())
            .await
            .map_err(|_| {
                Error::Unavailable(format!(
                    "too many {} in progress; none finished within {} s",
                    self.what,
                    self.wait.as_secs()
                ))
            })?
            .map_err(|e| Error::Internal(format!("{} lane closed: {e}", self.what)))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| Error::Internal(format!("{}: {e}", self.what)))
    }
}

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

/// Password hashes and checks (argon2id: about 20 MiB and tens of milliseconds each): as many
/// at a time as the machine has cores.
pub static PASSWORDS: LazyLock<Lane> = LazyLock::new(|| Lane {
    permits: Semaphore::new(cores().max(2)),
    ..Lane::new("password checks", 0, Duration::from_secs(10))
});

/// Uploaded files being read and sealed (up to the import size limit each): two at a time.
pub static FILES: Lane = Lane::new("file imports", 2, Duration::from_secs(120));

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

    #[tokio::test]
    async fn a_full_lane_queues_then_refuses_naming_the_work() {
        static ONE: Lane = Lane::new("test jobs", 1, Duration::from_millis(200));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn(ONE.run(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            1
        }));
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        let err = ONE.run(|| 2).await.unwrap_err();
        assert!(
            matches!(&err, Error::Unavailable(m) if m.contains("test jobs")),
            "{err}"
        );
        release_tx.send(()).unwrap();
        assert_eq!(busy.await.unwrap().unwrap(), 1);
        assert_eq!(ONE.run(|| 3).await.unwrap(), 3, "free again once the job ended");
    }
}
