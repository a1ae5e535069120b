//! A pool's action at the limit: its active SIMs suspended through the network as one bulk job
//! (each change audited, sent with the job's request ids and retried as any bulk row is), the
//! job's outcome recorded on the period once final. When the next period starts, a pool that
//! resumes has the SIMs that job suspended resumed the same way. Periods are claimed with a
//! lease, so two servers never send one action twice.

use chrono::{DateTime, Duration, Utc};
use ioto_domain::fleet::bulk::{BulkJobStatus, BulkRow, RowOutcome};
use ioto_domain::fleet::network_action::NetworkAction;
use ioto_domain::fleet::query::SimFilter;
use ioto_domain::fleet::SimState;
use ioto_domain::ports::jobs::BulkRowQuery;
use ioto_domain::ports::quota_pools::PoolActionClaim;
use ioto_domain::quota::{ActionState, QuotaStep};
use ioto_domain::quota_pool::MAX_POOL_SIMS;
use ioto_domain::{Actor, Result};
use uuid::Uuid;

use super::evaluate::Members;
use super::{pool_actor, PoolPorts};
use crate::quota::actions::step_words;
use crate::quota::{ActionPass, QuotaService};

/// Pool periods whose action one pass takes up.
const ACTIONS_PER_PASS: u64 = 100;
/// How long a claimed action is left to the server that claimed it.
const ACTION_LEASE_SECONDS: i64 = 120;
/// Bulk rows read at a time.
const ROWS_PAGE: u64 = 1_000;

/// Where one claimed action got to in a pass.
enum Step {
    /// Handed to the network as a bulk job of this many SIMs.
    Requested(usize),
    /// The job is still running: looked at again by a later pass.
    Waiting,
    Done,
    Failed,
}

fn sims_text(n: usize) -> String {
    match n {
        1 => "1 SIM".to_owned(),
        n => format!("{n} SIMs"),
    }
}

impl QuotaService {
    /// Sends the pools' actions pending at `now` and looks at those sent before. An action that
    /// cannot be handled now is logged; its claim lapses and a later pass takes it up again.
    pub(super) async fn run_pool_actions(&self, ports: &PoolPorts, now: DateTime<Utc>) -> Result<ActionPass> {
        let until = now + Duration::seconds(ACTION_LEASE_SECONDS);
        let claims = ports
            .store
            .claim_pool_actions(now, until, ACTIONS_PER_PASS)
            .await?;
        let mut pass = ActionPass::default();
        for c in claims {
            let (step, state, job) = c.period.step();
            let done = match (state, job) {
                (ActionState::Requested, Some(job)) => self.look_at_pool(ports, &c, step, job).await,
                _ => self.request_pool(ports, &c, step).await,
            };
            match done {
                Ok(Step::Requested(n)) => pass.requested += n,
                Ok(Step::Waiting) => {}
                Ok(Step::Done) => pass.done += 1,
                Ok(Step::Failed) => pass.failed += 1,
                Err(e) => tracing::warn!(
                    pool = %c.target.pool.id,
                    error = %e,
                    "a quota pool's action could not be handled; again once its claim lapses"
                ),
            }
        }
        Ok(pass)
    }

    /// Records where the claimed period's `step` stands, releasing the claim.
    async fn record_pool_step(
        &self,
        ports: &PoolPorts,
        claim: &PoolActionClaim,
        step: QuotaStep,
        state: ActionState,
        job: Option<Uuid>,
        reason: Option<&str>,
    ) -> Result<()> {
        ports
            .store
            .record_pool_action(claim.period.pool_id, claim.period.start, step, state, job, reason)
            .await
    }

    /// One bulk job suspending the pool's active SIMs, or resuming those its suspension job
    /// suspended.
    async fn request_pool(
        &self,
        ports: &PoolPorts,
        claim: &PoolActionClaim,
        step: QuotaStep,
    ) -> Result<Step> {
        let pool = &claim.target.pool;
        let actor = pool_actor(pool.tenant_id);
        let (action, iccids, note) = match step {
            QuotaStep::Suspend => {
                let active = SimFilter {
                    states: vec![SimState::Active],
                    ..pool.members.filter()
                };
                match self.pool_members(pool.tenant_id, &active).await? {
                    Members::TooMany(n) => {
                        let reason = format!(
                            "the pool has {n} active SIMs, more than one bulk job takes ({MAX_POOL_SIMS}): none was suspended"
                        );
                        self.record_pool_step(ports, claim, step, ActionState::Failed, None, Some(&reason))
                            .await?;
                        return Ok(Step::Failed);
                    }
                    Members::Listed(list) => {
                        let note = format!(
                            "pool '{}' reached its data limit ({})",
                            pool.name,
                            sims_text(list.len())
                        );
                        let iccids: Vec<String> = list.iter().map(|i| i.as_str().to_owned()).collect();
                        (NetworkAction::Suspend, iccids, note)
                    }
                }
            }
            QuotaStep::Resume => {
                let Some(suspension) = claim.period.bulk_job_id else {
                    self.record_pool_step(ports, claim, step, ActionState::Done, None, None)
                        .await?;
                    return Ok(Step::Done);
                };
                if self.fleet.bulk_job(&actor, suspension).await?.is_none() {
                    let reason =
                        "the bulk job that suspended the pool's SIMs is gone: which to resume is not known";
                    self.record_pool_step(ports, claim, step, ActionState::Failed, None, Some(reason))
                        .await?;
                    return Ok(Step::Failed);
                }
                let suspended = self
                    .job_rows(&actor, suspension, vec![RowOutcome::Succeeded])
                    .await?;
                let note = format!(
                    "pool '{}': a new period started ({} suspended at the limit)",
                    pool.name,
                    sims_text(suspended.len())
                );
                let iccids: Vec<String> = suspended.into_iter().map(|r| r.iccid).collect();
                (NetworkAction::Resume, iccids, note)
            }
        };
        if iccids.is_empty() {
            // No SIM to suspend (none active) or to resume (none was suspended).
            self.record_pool_step(ports, claim, step, ActionState::Done, None, None)
                .await?;
            return Ok(Step::Done);
        }
        match self.send_bulk(&actor, &iccids, action, &note).await {
            Ok(job) => {
                self.record_pool_step(ports, claim, step, ActionState::Requested, Some(job.id), None)
                    .await?;
                Ok(Step::Requested(iccids.len()))
            }
            Err(e) => {
                let reason = format!("the {} could not be sent: {e}", step_words(step));
                self.record_pool_step(ports, claim, step, ActionState::Failed, None, Some(&reason))
                    .await?;
                Ok(Step::Failed)
            }
        }
    }

    /// Records the outcome of the job carrying the period's action once the job has ended: DONE
    /// when every row succeeded or was skipped (the SIM in that state already), else FAILED
    /// naming how many did not and the first one's reason.
    async fn look_at_pool(
        &self,
        ports: &PoolPorts,
        claim: &PoolActionClaim,
        step: QuotaStep,
        job_id: Uuid,
    ) -> Result<Step> {
        let actor = pool_actor(claim.target.pool.tenant_id);
        let Some(job) = self.fleet.bulk_job(&actor, job_id).await? else {
            let reason = "the bulk job carrying the action is gone";
            self.record_pool_step(
                ports,
                claim,
                step,
                ActionState::Failed,
                Some(job_id),
                Some(reason),
            )
            .await?;
            return Ok(Step::Failed);
        };
        if !job.status.is_final() {
            // Released, to be looked at again by a later pass.
            self.record_pool_step(ports, claim, step, ActionState::Requested, Some(job_id), None)
                .await?;
            return Ok(Step::Waiting);
        }
        let rows = self.job_rows(&actor, job_id, Vec::new()).await?;
        let missed: Vec<&BulkRow> = rows
            .iter()
            .filter(|r| !matches!(r.outcome, RowOutcome::Succeeded | RowOutcome::Skipped))
            .collect();
        let what = match step {
            QuotaStep::Suspend => "suspended",
            QuotaStep::Resume => "resumed",
        };
        let reason = match missed.first() {
            None => None,
            Some(_) if job.status == BulkJobStatus::Cancelled => Some(format!(
                "the bulk job was cancelled; not {what}: {} of {}",
                missed.len(),
                sims_text(rows.len())
            )),
            Some(first) => {
                let why = first
                    .reason
                    .clone()
                    .unwrap_or_else(|| format!("the row ended {}", first.outcome.as_str()));
                Some(format!(
                    "not {what}: {} of {}; the first, {}: {why}",
                    missed.len(),
                    sims_text(rows.len()),
                    first.iccid
                ))
            }
        };
        let state = if reason.is_some() {
            ActionState::Failed
        } else {
            ActionState::Done
        };
        self.record_pool_step(ports, claim, step, state, Some(job_id), reason.as_deref())
            .await?;
        Ok(if reason.is_some() {
            Step::Failed
        } else {
            Step::Done
        })
    }

    /// Every row of a job with one of `outcomes` (all when empty), in order.
    async fn job_rows(&self, actor: &Actor, job: Uuid, outcomes: Vec<RowOutcome>) -> Result<Vec<BulkRow>> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let query = BulkRowQuery {
                outcomes: outcomes.clone(),
                after,
                limit: ROWS_PAGE,
            };
            let rows = self.fleet.bulk_rows(actor, job, &query).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.position);
            let short = (rows.len() as u64) < ROWS_PAGE;
            all.extend(rows);
            if short {
                break;
            }
        }
        Ok(all)
    }
}
