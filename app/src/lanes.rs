//! CPU-heavy work — password hashing, reading and sealing uploaded files, forecasting — runs on the blocking
//! thread pool, a bounded number of jobs of each kind at a time, so that it never stalls the
//! async workers serving everyone else, and a flood of such requests queues (then is refused
//! with `UNAVAILABLE`) instead of taking the machine.

use std::sync::LazyLock;
use std::time::Duration;

use tokio::sync::Semaphore;

use ioto_domain::parallel::cores;
use ioto_domain::{Error, Result};

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

/// Password hashes and checks (argon2id: about 20 MiB and tens of milliseconds each): as many
/// at a time as the machine has cores.
pub static PASSWORDS: LazyLock<Lane> = LazyLock::new(|| Lane {
    permits: Semaphore::new(cores().max(2)),
    ..Lane::new("password checks", 0, Duration::from_secs(10))
});

/// Uploaded files being read and sealed (up to the import size limit each): two at a time.
pub static FILES: Lane = Lane::new("file imports", 2, Duration::from_secs(120));

/// A forecast pass's computations (forecasts and anomaly detection of a chunk of SIMs, about
/// 0.1 ms a SIM): one chunk at a time, so a pass over a large fleet leaves the other cores to
/// everyone else.
pub static FORECASTS: Lane = Lane::new("forecast computations", 1, Duration::from_secs(600));

/// [`hash_password`](ioto_domain::password::hash_password) on the blocking pool.
pub async fn hash_password_off_runtime(password: &str) -> Result<String> {
    let password = password.to_owned();
    PASSWORDS
        .run(move || ioto_domain::password::hash_password(&password))
        .await?
}

/// [`verify_password`](ioto_domain::password::verify_password) on the blocking pool.
pub async fn verify_password_off_runtime(password: &str, phc: &str) -> Result<bool> {
    let (password, phc) = (password.to_owned(), phc.to_owned());
    PASSWORDS
        .run(move || ioto_domain::password::verify_password(&password, &phc))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

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
