//! Sample and hold for the provisioning API: a caller that sends single-ICCID `provisionSims`
//! calls in quick succession (more than [`RAPID_CALLS`] within a second) has the next ones held
//! for [`HOLD`] and sent together as one job, each call still answered with its own SIM's
//! outcome — and a warning recommending the list form. Calls at a normal pace run alone, with no
//! added wait.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::bulk::{ProvisionWait, Provisioned};
use super::FleetService;
use ioto_domain::fleet::bulk::{BulkRowError, ValidationReport};
use ioto_domain::ports::network::NetworkAction;
use ioto_domain::{Actor, Result, TenantId};

/// Single-ICCID calls within a second above which a caller's further calls are held.
pub const RAPID_CALLS: usize = 5;
/// How long a held call waits for others to join it.
pub const HOLD: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: TenantId,
    subject: String,
    action: NetworkAction,
}

type Answer = std::result::Result<Arc<Provisioned>, ioto_domain::Error>;

struct Batch {
    iccids: Vec<String>,
    waiters: Vec<(usize, oneshot::Sender<Answer>)>,
}

#[derive(Default)]
struct Slot {
    recent: VecDeque<Instant>,
    batch: Option<Batch>,
}

/// Held calls per caller and action.
#[derive(Default)]
pub struct Coalescer {
    slots: Mutex<HashMap<Key, Slot>>,
}

/// One call's share of a provisioning job, and a warning when it was held and sent with others.
#[derive(Debug, Clone)]
pub struct ProvisionedOne {
    pub provisioned: Provisioned,
    pub warning: Option<String>,
}

/// Callers tracked before idle ones are forgotten.
const MAX_SLOTS: usize = 10_000;

impl Coalescer {
    /// Forgets callers idle for a second, once there are many.
    fn prune(&self, now: Instant) {
        let mut slots = self.lock();
        if slots.len() > MAX_SLOTS {
            slots.retain(|_, s| {
                s.batch.is_some()
                    || s.recent
                        .back()
                        .is_some_and(|t| now.duration_since(*t) <= Duration::from_secs(1))
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The part of a job's answer that is about row `index`.
fn share(all: &Provisioned, index: usize) -> Provisioned {
    let line = index as u64 + 1;
    let errors: Vec<BulkRowError> = all
        .report
        .errors
        .iter()
        .filter(|e| e.row == line)
        .cloned()
        .collect();
    let mut report = ValidationReport {
        invalid: errors.len() as u64,
        errors,
        ..ValidationReport::default()
    };
    let rows = all.rows.as_ref().map(|rows| {
        rows.iter()
            .filter(|r| r.line == line)
            .cloned()
            .collect::<Vec<_>>()
    });
    if report.invalid == 0 {
        let skipped = rows.as_ref().is_some_and(|r| {
            r.iter()
                .any(|r| r.outcome == ioto_domain::fleet::bulk::RowOutcome::Skipped)
        });
        if skipped {
            report.already_in_state = 1;
        } else {
            report.valid = 1;
        }
    }
    Provisioned {
        job: all.job.clone(),
        report,
        rows,
    }
}

impl FleetService {
    /// `provisionSims` with one ICCID: alone at a normal pace, held and sent with the caller's
    /// other calls of the same action when they come in quick succession.
    pub async fn provision_one(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        iccid: &str,
        action: NetworkAction,
        note: Option<&str>,
        wait: ProvisionWait,
    ) -> Result<ProvisionedOne> {
        let key = Key {
            tenant: actor.target_tenant(tenant)?,
            subject: actor.subject.clone(),
            action,
        };
        let cap = wait.limit.max(1);
        let now = Instant::now();
        enum Role {
            Alone,
            Joined(oneshot::Receiver<Answer>, usize),
            Leader,
        }
        let role = {
            let mut slots = self.coalescer.lock();
            let slot = slots.entry(key.clone()).or_default();
            while slot
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1))
            {
                slot.recent.pop_front();
            }
            slot.recent.push_back(now);
            match &mut slot.batch {
                Some(b) if b.iccids.len() < cap => {
                    let (tx, rx) = oneshot::channel();
                    let index = b.iccids.len();
                    b.iccids.push(iccid.to_owned());
                    b.waiters.push((index, tx));
                    Role::Joined(rx, index)
                }
                Some(_) => Role::Alone,
                None if slot.recent.len() > RAPID_CALLS => {
                    slot.batch = Some(Batch {
                        iccids: vec![iccid.to_owned()],
                        waiters: Vec::new(),
                    });
                    Role::Leader
                }
                None => Role::Alone,
            }
        };
        self.coalescer.prune(now);
        match role {
            Role::Alone => {
                let provisioned = self
                    .provision_sims(actor, tenant, &[iccid.to_owned()], action, note, wait)
                    .await?;
                Ok(ProvisionedOne {
                    provisioned,
                    warning: None,
                })
            }
            Role::Joined(rx, index) => {
                let all = rx.await.map_err(|_| {
                    ioto_domain::Error::Internal("the held provisioning call was dropped".into())
                })??;
                Ok(ProvisionedOne {
                    provisioned: share(&all, index),
                    warning: Some(warning(all.job.id, all.job.total)),
                })
            }
            Role::Leader => {
                tokio::time::sleep(HOLD).await;
                let batch = {
                    let mut slots = self.coalescer.lock();
                    slots.get_mut(&key).and_then(|s| s.batch.take())
                };
                let Some(batch) = batch else {
                    return Err(ioto_domain::Error::Internal(
                        "a held provisioning batch vanished".into(),
                    ));
                };
                let answer = self
                    .provision_sims(actor, tenant, &batch.iccids, action, note, wait)
                    .await
                    .map(Arc::new);
                for (_, tx) in batch.waiters {
                    let _ = tx.send(answer.clone());
                }
                let all = answer?;
                let warning = (all.job.total > 1).then(|| warning(all.job.id, all.job.total));
                Ok(ProvisionedOne {
                    provisioned: share(&all, 0),
                    warning,
                })
            }
        }
    }
}

fn warning(job: uuid::Uuid, calls: u64) -> String {
    format!(
        "this call was one of {calls} single-SIM provisionSims calls sent within {} ms and was run with them as bulk job {job}; send the ICCIDs as one list (provisionSims(iccids: [...])) or a bulk file",
        HOLD.as_millis()
    )
}
