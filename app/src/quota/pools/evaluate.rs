//! Evaluating pools: their members from the SIM list, what those used in the period from the
//! hourly cube (summed, a chunk of SIMs per read), the stage reached; and the sweep that does it
//! for every pool, then marks the resumes due and runs the actions.

use chrono::{DateTime, Utc};
use ioto_domain::events::{FleetEvent, NotificationCreated};
use ioto_domain::fleet::query::SimFilter;
use ioto_domain::identifiers::Iccid;
use ioto_domain::notify::Notification;
use ioto_domain::ports::quota_pools::PoolTarget;
use ioto_domain::quota::{period_of, ActionState, QuotaStep, EXCEEDED};
use ioto_domain::quota_pool::{pool_standing, MAX_POOL_SIMS};
use ioto_domain::{Result, Scope, TenantId};

use super::{pool_actor, PoolPorts};
use crate::quota::{hourly_bytes, ActionPass, QuotaService};

/// SIMs whose usage one cube read asks for.
const USAGE_CHUNK: usize = 10_000;

/// How long before a pool's last evaluation the traffic of its SIMs makes a pool pass evaluate
/// it again: a SIM's activity is recorded a few seconds after its traffic is counted, and its
/// usage is readable a few seconds after that.
pub const POOL_PASS_OVERLAP: chrono::Duration = chrono::Duration::seconds(30);

/// What a sweep over the pools did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolSweep {
    /// Pools looked at.
    pub pools: usize,
    /// Periods whose stage moved up (each with its notification).
    pub stages_reached: usize,
    /// Of those, periods that reached their limit.
    pub exceeded: usize,
    /// Pools not evaluated: more members than a pool counts, or an error (logged).
    pub not_evaluated: usize,
    /// Resumes of ended periods marked to be sent.
    pub resumes: u64,
    /// The suspensions and resumes sent and looked at.
    pub actions: ActionPass,
}

impl PoolSweep {
    /// Whether the sweep changed nothing worth a log line.
    pub fn is_quiet(&self) -> bool {
        self.stages_reached
            + self.not_evaluated
            + self.actions.requested
            + self.actions.done
            + self.actions.failed
            == 0
            && self.resumes == 0
    }
}

impl PoolSweep {
    /// Counts what evaluating one pool did; a pool that could not be evaluated is logged (it
    /// is evaluated again at the next pass or sweep).
    fn count(&mut self, target: &PoolTarget, evaluated: Result<Evaluated>) {
        match evaluated {
            Ok(Evaluated::Measured { moved, exceeded }) => {
                self.stages_reached += usize::from(moved);
                self.exceeded += usize::from(exceeded);
            }
            Ok(Evaluated::TooMany) => self.not_evaluated += 1,
            Err(e) => {
                self.not_evaluated += 1;
                tracing::warn!(
                    pool = %target.pool.id,
                    error = %e,
                    "a quota pool could not be evaluated; again at the next pass"
                );
            }
        }
    }
}

/// A pool's members, or how many there are when too many to count.
pub(super) enum Members {
    Listed(Vec<Iccid>),
    TooMany(u64),
}

/// What evaluating one pool did.
pub(super) enum Evaluated {
    /// Measured: whether the stage moved up, and whether to the limit.
    Measured { moved: bool, exceeded: bool },
    /// Too many members to count: not evaluated, said on the period.
    TooMany,
}

impl QuotaService {
    /// Every pool evaluated at `now`, the resumes due marked, then the pools' actions sent and
    /// those sent before looked at. A pool that cannot be evaluated is logged and passed over
    /// (again at the next sweep). Without pools wired, nothing.
    pub async fn pool_sweep(&self, now: DateTime<Utc>) -> Result<PoolSweep> {
        let Some(ports) = self.pools.as_ref() else {
            return Ok(PoolSweep::default());
        };
        let targets = ports.store.all_pools().await?;
        let mut sweep = PoolSweep {
            pools: targets.len(),
            ..PoolSweep::default()
        };
        if !targets.is_empty() {
            // What was counted is read as counted.
            self.usage.settle().await?;
        }
        for t in &targets {
            let evaluated = self.evaluate_pool(ports, t, now).await;
            sweep.count(t, evaluated);
        }
        sweep.resumes = ports.store.mark_pool_resumes(now).await?;
        sweep.actions = self.run_pool_actions(ports, now).await?;
        Ok(sweep)
    }

    /// The pools whose SIMs carried traffic since each was last evaluated (less
    /// [`POOL_PASS_OVERLAP`], as a SIM's activity is recorded a few seconds after its traffic is
    /// counted) evaluated at `now`, and the pools' actions sent and looked at: what
    /// the traffic of a pool's SIMs does to it is seen within seconds, not at the next sweep. A
    /// pool not evaluated yet this period is left to the sweep. Without pools wired, nothing.
    pub async fn pool_pass(&self, now: DateTime<Utc>) -> Result<PoolSweep> {
        let Some(ports) = self.pools.as_ref() else {
            return Ok(PoolSweep::default());
        };
        let targets = ports.store.all_pools().await?;
        let mut sweep = PoolSweep::default();
        let mut settled = false;
        for t in &targets {
            let (start, _) = period_of(t.time_zone, now);
            let Some(last) = ports
                .store
                .pool_period(Scope::Platform, t.pool.id, start)
                .await?
                .map(|p| p.evaluated_at)
            else {
                continue;
            };
            let active = SimFilter {
                last_activity_from: Some(last - POOL_PASS_OVERLAP),
                ..t.pool.members.filter()
            };
            let actor = pool_actor(t.pool.tenant_id);
            let with_traffic = self
                .fleet
                .store()
                .count_sims(actor.scope(), t.pool.tenant_id, &active)
                .await?;
            if with_traffic == 0 {
                continue;
            }
            if !settled {
                // What was counted is read as counted.
                self.usage.settle().await?;
                settled = true;
            }
            sweep.pools += 1;
            let evaluated = self.evaluate_pool(ports, t, now).await;
            sweep.count(t, evaluated);
        }
        if !targets.is_empty() {
            // Suspensions of the limits reached now, and the jobs sent before looked at.
            sweep.actions = self.run_pool_actions(ports, now).await?;
        }
        Ok(sweep)
    }

    /// Evaluates one pool at `now`: safe to repeat, a stage reached already is not reached again.
    pub(super) async fn evaluate_pool(
        &self,
        ports: &PoolPorts,
        target: &PoolTarget,
        now: DateTime<Utc>,
    ) -> Result<Evaluated> {
        let pool = &target.pool;
        let tz = target.time_zone;
        let iccids = match self.pool_members(pool.tenant_id, &pool.members.filter()).await? {
            Members::Listed(list) => list,
            Members::TooMany(n) => {
                self.refuse_pool(ports, target, n, now).await?;
                return Ok(Evaluated::TooMany);
            }
        };
        let (start, end) = period_of(tz, now);
        let used = self.pool_usage(pool.tenant_id, &iccids, start, end).await?;
        let period = pool_standing(pool, tz, used, iccids.len() as u64, now);
        let note = (period.stage > 0).then(|| Notification::pool_stage(pool, tz, &period, now));
        let moved = ports.store.advance_pool(&period, note.as_ref()).await?;
        if moved {
            if let Some(n) = &note {
                ports
                    .notifier
                    .publish(FleetEvent::Notification(NotificationCreated::of(n)));
                if let Some(w) = &ports.delivery_wakeup {
                    w.notify_one();
                }
            }
        }
        Ok(Evaluated::Measured {
            moved,
            exceeded: moved && period.stage >= EXCEEDED,
        })
    }

    /// Records on the period that the pool has too many members to be evaluated: its member
    /// count, and — when no action is under way — a `FAILED` action saying so (cleared once it
    /// is evaluated again).
    async fn refuse_pool(
        &self,
        ports: &PoolPorts,
        target: &PoolTarget,
        sims: u64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let pool = &target.pool;
        let period = pool_standing(pool, target.time_zone, 0, sims, now);
        ports.store.advance_pool(&period, None).await?;
        let current = ports
            .store
            .pool_period(Scope::Platform, pool.id, period.start)
            .await?;
        if current.is_some_and(|p| p.action_state == ActionState::None && p.stage < EXCEEDED) {
            let reason = format!(
                "the pool counts {sims} SIMs, more than the {MAX_POOL_SIMS} a pool may: it is not evaluated until its members are narrowed"
            );
            ports
                .store
                .record_pool_action(
                    pool.id,
                    period.start,
                    QuotaStep::Suspend,
                    ActionState::Failed,
                    None,
                    Some(&reason),
                )
                .await?;
        }
        Ok(())
    }

    /// The ICCIDs of the tenant's SIMs `filter` matches, page by page; past [`MAX_POOL_SIMS`]
    /// only their count.
    pub(super) async fn pool_members(&self, tenant: TenantId, filter: &SimFilter) -> Result<Members> {
        let actor = pool_actor(tenant);
        let count = self
            .fleet
            .store()
            .count_sims(actor.scope(), tenant, filter)
            .await?;
        if count > MAX_POOL_SIMS {
            return Ok(Members::TooMany(count));
        }
        let mut iccids: Vec<Iccid> = Vec::new();
        let mut after = None;
        loop {
            let (sims, next) = self.page_of(&actor, tenant, filter, after).await?;
            iccids.extend(sims.into_iter().map(|s| s.iccid));
            // SIMs added since the count: still too many is too many.
            if iccids.len() as u64 > MAX_POOL_SIMS {
                return Ok(Members::TooMany(iccids.len() as u64));
            }
            match next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        Ok(Members::Listed(iccids))
    }

    /// Bytes (up and down) these SIMs used between `start` and `end`, summed.
    async fn pool_usage(
        &self,
        tenant: TenantId,
        iccids: &[Iccid],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<u64> {
        let mut used: u64 = 0;
        for chunk in iccids.chunks(USAGE_CHUNK) {
            let by_sim = hourly_bytes(self.usage.as_ref(), tenant, chunk.to_vec(), start, end).await?;
            used = used.saturating_add(by_sim.values().copied().fold(0u64, u64::saturating_add));
        }
        Ok(used)
    }
}
