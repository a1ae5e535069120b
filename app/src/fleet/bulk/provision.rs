//! The provisioning API: a few SIMs activated (or changed) at once, as a bulk job that the caller
//! may wait for.

use super::*;
use crate::fleet::FleetService;
use chrono::Utc;
use ioto_domain::fleet::bulk::{BulkJob, BulkRow, ValidationReport, MAX_BULK_ROWS};
use ioto_domain::ports::network::NetworkAction;
use ioto_domain::ports::BulkRowQuery;
use ioto_domain::{Actor, Error, Result, TenantId};
use std::time::Duration;
use uuid::Uuid;

/// What `provisionSims` answers.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub job: BulkJob,
    pub report: ValidationReport,
    /// Every row's outcome, when the job finished within the wait.
    pub rows: Option<Vec<BulkRow>>,
}

/// How long the provisioning API waits, and for how many SIMs.
#[derive(Debug, Clone, Copy)]
pub struct ProvisionWait {
    pub limit: usize,
    pub timeout: Duration,
    pub lease: Duration,
}

impl FleetService {
    /// The provisioning API: the list becomes a job (validated like a file) that starts at once.
    /// Up to `wait.limit` SIMs it runs here and the answer carries every SIM's outcome (unless it
    /// takes longer than `wait.timeout`: then the job goes on and is returned running); larger
    /// lists are queued for the workers and the job is returned.
    pub async fn provision_sims(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        iccids: &[String],
        action: NetworkAction,
        note: Option<&str>,
        wait: ProvisionWait,
    ) -> Result<Provisioned> {
        let Submitted { job, report } = self.submit_bulk_list(actor, tenant, iccids, action, note).await?;
        let scope = actor.scope();
        if job.valid as usize > wait.limit {
            let job = self.confirm_bulk_job(actor, job.id).await?;
            return Ok(Provisioned {
                job,
                report,
                rows: None,
            });
        }
        let worker = format!("provision-{}", Uuid::new_v4());
        let until = Utc::now() + lease_of(wait.lease);
        let job = self.confirm(actor, job.id, Some((worker.clone(), until))).await?;
        let all_rows = |id: Uuid| {
            let query = BulkRowQuery {
                outcomes: Vec::new(),
                after: None,
                limit: MAX_BULK_ROWS as u64,
            };
            async move { self.jobs.bulk_rows(scope, id, &query).await }
        };
        if job.status.is_final() {
            let rows = all_rows(job.id).await?;
            return Ok(Provisioned {
                job,
                report,
                rows: Some(rows),
            });
        }
        // The run goes on by itself if the wait ends first (or the caller goes away).
        let runner = self.clone();
        let claimed = job.clone();
        let run = tokio::spawn(async move { runner.run_bulk_job(claimed, &worker, wait.lease).await });
        match tokio::time::timeout(wait.timeout, run).await {
            Ok(Ok(Ok(done))) => {
                let rows = all_rows(done.id).await?;
                Ok(Provisioned {
                    job: done,
                    report,
                    rows: Some(rows),
                })
            }
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(join)) => Err(Error::Internal(format!("provisioning task failed: {join}"))),
            Err(_) => {
                // The caller stops waiting: the job's end is notified after all.
                let job = self.jobs.notify_bulk_job(scope, job.id).await?;
                self.job_ended(&job).await;
                Ok(Provisioned {
                    job,
                    report,
                    rows: None,
                })
            }
        }
    }
}
