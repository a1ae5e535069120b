//! Applies scheduled SIM transitions when they fall due. Every instance may run it: schedules are
//! claimed through the database, so two instances never apply the same one.

use std::time::Duration;

use chrono::Utc;
use ioto_domain::services::FleetService;
use tokio::sync::watch;

/// Schedules claimed per tick.
const BATCH: u64 = 200;

/// Runs until shutdown, one tick every `interval`; a full batch ticks again at once.
pub fn spawn(fleet: FleetService, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            let full = match fleet.run_due(Utc::now(), BATCH).await {
                Ok(done) => {
                    for s in &done {
                        tracing::info!(schedule = %s.id, iccid = %s.iccid, target = %s.target, status = %s.status, outcome = ?s.outcome, "scheduled transition handled");
                    }
                    done.len() as u64 == BATCH
                }
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler tick failed; retrying next tick");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    });
}
