//! Runs confirmed bulk jobs. Every instance may run them: jobs are claimed through the database
//! with a lease (one job per tenant at a time, oldest confirmed first), so instances share the
//! work and a job whose instance died is taken over at its first row without an outcome.

use std::collections::HashSet;
use std::time::Duration;

use ioto_app::FleetService;
use tokio::sync::watch;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::config::BulkConfig;

/// Starts the worker unless `max_jobs` is 0. Runs until shutdown; jobs still running then are
/// left to their lease (another instance, or this one after a restart, resumes them).
pub fn spawn(fleet: FleetService, config: BulkConfig, mut shutdown: watch::Receiver<bool>) {
    if config.max_jobs == 0 {
        return;
    }
    let worker = format!("worker-{}", Uuid::new_v4());
    let lease = Duration::from_secs(config.lease_seconds);
    let poll = Duration::from_millis(config.poll_ms);
    tokio::spawn(async move {
        let wake = fleet.bulk_wakeup();
        let mut running: HashSet<Uuid> = HashSet::new();
        let mut tasks: JoinSet<Uuid> = JoinSet::new();
        loop {
            let free = config.max_jobs.saturating_sub(running.len()) as u64;
            if free > 0 {
                let exclude: Vec<Uuid> = running.iter().copied().collect();
                match fleet.claim_bulk_jobs(&worker, lease, free, &exclude).await {
                    Ok(jobs) => {
                        for job in jobs {
                            running.insert(job.id);
                            let (fleet, worker) = (fleet.clone(), worker.clone());
                            tasks.spawn(async move {
                                let id = job.id;
                                match fleet.run_bulk_job(job, &worker, lease).await {
                                    Ok(done) => tracing::info!(job = %id, status = %done.status, succeeded = done.succeeded, failed = done.failed, "bulk job finished"),
                                    Err(e) => tracing::warn!(job = %id, error = %e, "bulk job run stopped; its lease will let it resume"),
                                }
                                id
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming bulk jobs failed; retrying"),
                }
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                Some(done) = tasks.join_next() => {
                    if let Ok(id) = done {
                        running.remove(&id);
                    }
                    while let Some(Ok(id)) = tasks.try_join_next() {
                        running.remove(&id);
                    }
                }
            }
        }
        tasks.abort_all();
    });
}
