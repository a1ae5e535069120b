//! Scheduled SIM transitions: set for a time, cancelled, and run when due.

use super::*;
use crate::fleet::{sim_entry, FleetService};
use ioto_domain::fleet::audit::{parse_note, AuditStamp};
use ioto_domain::fleet::schedule::{ScheduleStatus, ScheduledTransition};
use ioto_domain::fleet::sim::{Sim, SimState};
use ioto_domain::fleet::AuditAction;
use ioto_domain::ports::Changeset;
use ioto_domain::{Actor, Error, Permission, Result, Scope};
use serde_json::json;
use uuid::Uuid;

impl FleetService {
    pub(super) async fn schedule_transition(
        &self,
        actor: &Actor,
        sim: Sim,
        target: SimState,
        at: DateTime<Utc>,
        stamp: AuditStamp,
    ) -> Result<ScheduledTransition> {
        let pending = self
            .store
            .schedules(
                actor.scope(),
                sim.tenant_id,
                &ioto_domain::ports::ScheduleQuery {
                    sim: Some(sim.id),
                    statuses: vec![ScheduleStatus::Pending],
                    limit: 1,
                },
            )
            .await?;
        if let Some(p) = pending.first() {
            return Err(Error::Conflict(format!(
                "SIM {} already has a transition to {} scheduled for {}; cancel it first (schedule {})",
                sim.iccid, p.target, p.effective_at, p.id
            )));
        }
        let schedule = ScheduledTransition {
            id: Uuid::new_v4(),
            tenant_id: sim.tenant_id,
            customer_id: sim.customer_id,
            sim_id: sim.id,
            iccid: sim.iccid.clone(),
            target,
            effective_at: at,
            status: ScheduleStatus::Pending,
            requested_by: stamp.actor.clone(),
            requested_by_user: stamp.actor_user_id,
            note: stamp.note.clone(),
            created_at: stamp.at,
            finished_at: None,
            outcome: None,
        };
        let entry = sim_entry(
            &sim,
            AuditAction::TransitionScheduled,
            &stamp,
            json!({ "state": sim.state.as_str() }),
            json!({ "state": target.as_str(), "effectiveAt": at.to_rfc3339(), "scheduleId": schedule.id.to_string() }),
        );
        self.commit(
            actor.scope(),
            Changeset {
                audit: vec![entry],
                schedules: vec![schedule.clone()],
                ..Changeset::default()
            },
        )
        .await?;
        Ok(schedule)
    }

    pub async fn cancel_schedule(
        &self,
        actor: &Actor,
        id: Uuid,
        note: Option<&str>,
    ) -> Result<ScheduledTransition> {
        actor.require(Permission::ManageFleet, "cancel scheduled transitions")?;
        let mut s = self
            .store
            .schedule(actor.scope(), id)
            .await?
            .ok_or_else(|| Error::not_found("scheduled transition", id))?;
        if s.status != ScheduleStatus::Pending {
            return Err(Error::Conflict(format!(
                "scheduled transition {id} is {} and can no longer be cancelled",
                s.status
            )));
        }
        let sim = self.sim_for_change(actor, &s.iccid).await?;
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        s.status = ScheduleStatus::Cancelled;
        s.finished_at = Some(stamp.at);
        s.outcome = Some(format!("cancelled by {}", stamp.actor));
        let entry = sim_entry(
            &sim,
            AuditAction::TransitionCancelled,
            &stamp,
            json!({ "state": s.target.as_str(), "effectiveAt": s.effective_at.to_rfc3339(), "scheduleId": id.to_string() }),
            serde_json::Value::Null,
        );
        self.commit(
            actor.scope(),
            Changeset {
                audit: vec![entry],
                schedules: vec![s.clone()],
                ..Changeset::default()
            },
        )
        .await?;
        Ok(s)
    }

    /// Applies due scheduled transitions (the scheduler's tick). Returns the schedules handled,
    /// each `APPLIED` or `FAILED` with the reason.
    pub async fn run_due(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<ScheduledTransition>> {
        let claimed = self
            .store
            .claim_due(now, std::time::Duration::from_secs(300), limit)
            .await?;
        let mut done = Vec::with_capacity(claimed.len());
        for mut s in claimed {
            let scope = Scope::Tenant {
                tenant_id: s.tenant_id,
                customer_id: None,
            };
            let stamp = AuditStamp {
                actor: format!("scheduler (requested by {})", s.requested_by),
                actor_user_id: s.requested_by_user,
                at: Utc::now(),
                note: s.note.clone(),
            };
            let result = match self.store.sim(scope, &s.iccid).await? {
                None => Err(Error::not_found("SIM", &s.iccid)),
                Some(sim) => self.transition(scope, sim, s.target, &stamp).await.map(|_| ()),
            };
            let (status, outcome) = match result {
                Ok(()) => (ScheduleStatus::Applied, None),
                Err(e @ (Error::Conflict(_) | Error::NotFound { .. })) => {
                    (ScheduleStatus::Failed, Some(e.to_string()))
                }
                // Engine trouble: leave the claim to expire and retry later.
                Err(e) => return Err(e),
            };
            self.store.finish_schedule(s.id, status, outcome.clone()).await?;
            s.status = status;
            s.outcome = outcome;
            s.finished_at = Some(Utc::now());
            done.push(s);
        }
        Ok(done)
    }
}
