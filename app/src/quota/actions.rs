//! The action at the limit: SIMs whose quota suspends them are suspended through the network,
//! as one bulk job per tenant (so each change is audited, sent with the job's request ids and
//! retried as any bulk row is), and the job's outcome for each SIM is recorded on its period.
//! When the next period starts, a quota that resumes has the SIMs it suspended resumed the
//! same way.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use ioto_domain::fleet::bulk::{BulkJob, BulkJobStatus, RowOutcome};
use ioto_domain::fleet::network_action::NetworkAction;
use ioto_domain::ports::jobs::BulkRowQuery;
use ioto_domain::ports::quotas::QuotaActionClaim;
use ioto_domain::quota::{ActionState, QuotaStep};
use ioto_domain::{Actor, Result, Role, TenantId};
use uuid::Uuid;

use super::QuotaService;

/// Periods whose action one pass takes up.
const ACTIONS_PER_PASS: u64 = 1_000;
/// How long a claimed action is left to the server that claimed it.
const ACTION_LEASE_SECONDS: i64 = 120;

/// Who suspends a SIM at its limit, as the bulk job and its audit entries name it.
fn quota_actor(tenant: TenantId) -> Actor {
    Actor {
        user_id: None,
        subject: "data quota".to_owned(),
        tenant_id: tenant,
        role: Role::TenantAdmin,
        customer_id: None,
        issued_at: None,
        api_key: None,
        session_id: None,
    }
}

/// What a pass over the actions did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActionPass {
    /// SIMs handed to the network in new bulk jobs (suspensions and resumes).
    pub requested: usize,
    /// Actions that ended: the SIM suspended or resumed (or so already), or the network refused.
    pub done: usize,
    pub failed: usize,
}

/// The action a step sends, in words.
pub(super) fn step_words(step: QuotaStep) -> &'static str {
    match step {
        QuotaStep::Suspend => "suspension",
        QuotaStep::Resume => "resume",
    }
}

impl QuotaService {
    /// Hands these SIMs to the network as one bulk job by `actor`, confirmed at once (so each
    /// change is audited, sent with the job's request ids and retried as any bulk row is).
    pub(super) async fn send_bulk(
        &self,
        actor: &Actor,
        iccids: &[String],
        action: NetworkAction,
        note: &str,
    ) -> Result<BulkJob> {
        let submitted = self
            .fleet
            .submit_bulk_list(actor, None, iccids, action, Some(note))
            .await?;
        if submitted.job.status == BulkJobStatus::AwaitingConfirmation {
            self.fleet.confirm_bulk_job(actor, submitted.job.id).await
        } else {
            Ok(submitted.job)
        }
    }

    /// Sends the suspensions pending at `now` and looks at those sent before.
    pub async fn run_actions(&self, now: DateTime<Utc>) -> Result<ActionPass> {
        let until = now + Duration::seconds(ACTION_LEASE_SECONDS);
        let claims = self
            .store
            .claim_quota_actions(now, until, ACTIONS_PER_PASS)
            .await?;
        let mut pass = ActionPass::default();
        let mut pending: BTreeMap<(TenantId, QuotaStep), Vec<QuotaActionClaim>> = BTreeMap::new();
        let mut requested: BTreeMap<(Uuid, QuotaStep), Vec<QuotaActionClaim>> = BTreeMap::new();
        for c in claims {
            let (step, state, job) = c.period.step();
            match (state, job) {
                (ActionState::Requested, Some(job)) => requested.entry((job, step)).or_default().push(c),
                _ => pending
                    .entry((c.target.quota.tenant_id, step))
                    .or_default()
                    .push(c),
            }
        }
        for ((tenant, step), group) in pending {
            pass.requested += self.request(tenant, step, group).await?;
        }
        for ((job, step), group) in requested {
            let (done, failed) = self.look_at(job, step, group).await?;
            pass.done += done;
            pass.failed += failed;
        }
        Ok(pass)
    }

    /// One bulk job suspending (or resuming) these SIMs of a tenant.
    async fn request(
        &self,
        tenant: TenantId,
        step: QuotaStep,
        group: Vec<QuotaActionClaim>,
    ) -> Result<usize> {
        let actor = quota_actor(tenant);
        let iccids: Vec<String> = group.iter().map(|c| c.target.iccid.as_str().to_owned()).collect();
        let plural = if iccids.len() == 1 { "" } else { "s" };
        let (action, note) = match step {
            QuotaStep::Suspend => (
                NetworkAction::Suspend,
                format!("data quota reached ({} SIM{plural})", iccids.len()),
            ),
            QuotaStep::Resume => (
                NetworkAction::Resume,
                format!(
                    "data quota: a new period started ({} SIM{plural} suspended at the limit)",
                    iccids.len()
                ),
            ),
        };
        match self.send_bulk(&actor, &iccids, action, &note).await {
            Ok(job) => {
                for c in &group {
                    self.store
                        .record_quota_action(
                            c.period.quota_id,
                            c.period.start,
                            step,
                            ActionState::Requested,
                            Some(job.id),
                            None,
                        )
                        .await?;
                }
                Ok(group.len())
            }
            Err(e) => {
                let reason = format!("the {} could not be sent: {e}", step_words(step));
                for c in &group {
                    self.store
                        .record_quota_action(
                            c.period.quota_id,
                            c.period.start,
                            step,
                            ActionState::Failed,
                            None,
                            Some(&reason),
                        )
                        .await?;
                }
                Ok(0)
            }
        }
    }

    /// Records the outcome of a job's rows on the periods it carries, once the job has ended.
    async fn look_at(
        &self,
        job_id: Uuid,
        step: QuotaStep,
        group: Vec<QuotaActionClaim>,
    ) -> Result<(usize, usize)> {
        let Some(first) = group.first() else {
            return Ok((0, 0));
        };
        let actor = quota_actor(first.target.quota.tenant_id);
        let job = self.fleet.bulk_job(&actor, job_id).await?;
        let gone = job.is_none();
        let Some(job) = job.filter(|j| j.status.is_final()) else {
            // Still running: looked at again by a later pass. Gone: nothing will tell.
            for c in &group {
                let (state, reason) = if gone {
                    (
                        ActionState::Failed,
                        Some("the bulk job carrying the action is gone"),
                    )
                } else {
                    (ActionState::Requested, None)
                };
                self.store
                    .record_quota_action(
                        c.period.quota_id,
                        c.period.start,
                        step,
                        state,
                        Some(job_id),
                        reason,
                    )
                    .await?;
            }
            return Ok((0, 0));
        };
        let mut outcomes: HashMap<String, (RowOutcome, Option<String>)> = HashMap::new();
        let mut after = None;
        loop {
            let query = BulkRowQuery {
                outcomes: Vec::new(),
                after,
                limit: 1_000,
            };
            let rows = self.fleet.bulk_rows(&actor, job_id, &query).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.position);
            for r in rows {
                outcomes.insert(r.iccid.clone(), (r.outcome, r.reason));
            }
        }
        let (mut done, mut failed) = (0, 0);
        for c in &group {
            let outcome = outcomes.get(c.target.iccid.as_str());
            let (state, reason) = match outcome {
                Some((RowOutcome::Succeeded | RowOutcome::Skipped, _)) => (ActionState::Done, None),
                _ if job.status == BulkJobStatus::Cancelled => {
                    (ActionState::Failed, Some("the bulk job was cancelled".to_owned()))
                }
                Some((o, why)) => (
                    ActionState::Failed,
                    Some(
                        why.clone()
                            .unwrap_or_else(|| format!("the row ended {}", o.as_str())),
                    ),
                ),
                None => (
                    ActionState::Failed,
                    Some("the SIM is not in the bulk job".to_owned()),
                ),
            };
            if state == ActionState::Done {
                done += 1;
            } else {
                failed += 1;
            }
            self.store
                .record_quota_action(
                    c.period.quota_id,
                    c.period.start,
                    step,
                    state,
                    Some(job_id),
                    reason.as_deref(),
                )
                .await?;
        }
        Ok((done, failed))
    }
}
