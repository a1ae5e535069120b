//! SIM operations: create, change, state transitions (now or scheduled), labels, assignment,
//! swap.

mod assignment;
mod schedules;

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::fleet::{opt_json, sim_entry, FleetService, Outcome};
use ioto_domain::fleet::audit::{parse_note, AuditStamp};
use ioto_domain::fleet::import::parse_activation_code;
use ioto_domain::fleet::lifecycle::Lifecycle;
use ioto_domain::fleet::schedule::ScheduledTransition;
use ioto_domain::fleet::sim::{parse_pin, parse_tariff_plan, NewSim, Sim, SimState, SimType};
use ioto_domain::fleet::{AuditAction, Labels};
use ioto_domain::identifiers::{Iccid, Imsi, Msisdn};
use ioto_domain::ports::network::{NetworkAction, NetworkFailure, NetworkReceipt, NetworkRequest};
use ioto_domain::ports::{Changeset, Versioned};
use ioto_domain::{Actor, CustomerId, Error, Permission, Result, Scope, TenantId};

/// A SIM to create by hand (imports go through [`super::ImportRequest`]).
#[derive(Debug, Clone)]
pub struct SimInput {
    pub tenant_id: Option<TenantId>,
    pub customer_id: Option<CustomerId>,
    pub iccid: Iccid,
    pub imsi: Imsi,
    pub msisdn: Option<Msisdn>,
    pub sim_type: SimType,
    pub tariff_plan: Option<String>,
    pub labels: Labels,
    pub pin: Option<String>,
    pub puk: Option<String>,
    pub activation_code: Option<String>,
}

/// Changes to a SIM's settings; `None` keeps a field, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct SimPatch {
    pub msisdn: Option<Option<Msisdn>>,
    pub sim_type: Option<SimType>,
    pub tariff_plan: Option<Option<String>>,
    pub activation_code: Option<Option<String>>,
    pub pin: Option<Option<String>>,
    pub puk: Option<Option<String>>,
}

/// What a state change request led to.
#[derive(Debug, Clone)]
pub enum StateChangeOutcome {
    Applied(Outcome<Sim>),
    Scheduled(ScheduledTransition),
}

fn check_version(sim: &Sim, expected: Option<i64>) -> Result<()> {
    match expected {
        Some(v) if v != sim.version => Err(stale("SIM", sim.iccid.as_str(), v, sim.version)),
        _ => Ok(()),
    }
}

pub(crate) fn stale(what: &str, id: &str, expected: i64, current: i64) -> Error {
    Error::Conflict(format!(
        "{what} {id} has changed since you read it (you have version {expected}, it is at version {current}); reload and try again"
    ))
}

impl FleetService {
    pub async fn create_sim(&self, actor: &Actor, input: SimInput, note: Option<&str>) -> Result<Sim> {
        actor.require(Permission::ManageFleet, "create SIMs")?;
        let tenant = actor.target_tenant(input.tenant_id)?;
        self.customer_in(actor, tenant, input.customer_id).await?;
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        let pin = input
            .pin
            .as_deref()
            .map(|p| parse_pin(p, "pin", 4..=8))
            .transpose()?;
        let puk = input
            .puk
            .as_deref()
            .map(|p| parse_pin(p, "puk", 8..=8))
            .transpose()?;
        let iccid = input.iccid.clone();
        let sim = NewSim {
            tenant_id: tenant,
            customer_id: input.customer_id,
            pin: pin
                .map(|p| self.cipher.seal(iccid.as_str(), "pin", &p))
                .transpose()?,
            puk: puk
                .map(|p| self.cipher.seal(iccid.as_str(), "puk", &p))
                .transpose()?,
            iccid: input.iccid,
            imsi: input.imsi,
            msisdn: input.msisdn,
            sim_type: input.sim_type,
            tariff_plan: input.tariff_plan.as_deref().map(parse_tariff_plan).transpose()?,
            state: SimState::Inventory,
            labels: input.labels,
            activation_code: input
                .activation_code
                .as_deref()
                .map(parse_activation_code)
                .transpose()?,
        };
        let taken = self
            .store
            .taken_identifiers(
                &[sim.iccid.to_string()],
                &[sim.imsi.to_string()],
                &sim.msisdn.iter().map(ToString::to_string).collect::<Vec<_>>(),
            )
            .await?;
        if !taken.iccids.is_empty() {
            return Err(Error::Conflict(format!(
                "ICCID {} is already registered",
                sim.iccid
            )));
        }
        if !taken.imsis.is_empty() {
            return Err(Error::Conflict(format!(
                "IMSI {} is already registered",
                sim.imsi
            )));
        }
        if let Some(m) = taken.msisdns.iter().next() {
            return Err(Error::Conflict(format!("MSISDN {m} is already in use")));
        }
        self.store
            .insert_sims(actor.scope(), &[&sim], AuditAction::Created, &stamp, None)
            .await?;
        self.store
            .sim(actor.scope(), &iccid)
            .await?
            .ok_or_else(|| Error::Internal(format!("SIM {iccid} vanished after it was created")))
    }

    pub async fn update_sim(
        &self,
        actor: &Actor,
        iccid: &Iccid,
        patch: SimPatch,
        expected: Option<i64>,
        note: Option<&str>,
    ) -> Result<Outcome<Sim>> {
        let current = self.sim_for_change(actor, iccid).await?;
        check_version(&current, expected)?;
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        let mut sim = current.clone();
        let mut old = serde_json::Map::new();
        let mut new = serde_json::Map::new();
        if let Some(m) = patch.msisdn {
            if m != sim.msisdn {
                if let Some(m) = &m {
                    let taken = self.store.taken_identifiers(&[], &[], &[m.to_string()]).await?;
                    if !taken.msisdns.is_empty() {
                        return Err(Error::Conflict(format!("MSISDN {m} is already in use")));
                    }
                }
                old.insert("msisdn".into(), opt_json(sim.msisdn.as_ref()));
                new.insert("msisdn".into(), opt_json(m.as_ref()));
                sim.msisdn = m;
            }
        }
        if let Some(t) = patch.sim_type.filter(|t| *t != sim.sim_type) {
            old.insert("type".into(), json!(sim.sim_type.as_str()));
            new.insert("type".into(), json!(t.as_str()));
            sim.sim_type = t;
        }
        if let Some(t) = patch.tariff_plan {
            let t = t.as_deref().map(parse_tariff_plan).transpose()?;
            if t != sim.tariff_plan {
                old.insert("tariffPlan".into(), json!(sim.tariff_plan));
                new.insert("tariffPlan".into(), json!(t));
                sim.tariff_plan = t;
            }
        }
        if let Some(a) = patch.activation_code {
            let a = a.as_deref().map(parse_activation_code).transpose()?;
            if a != sim.activation_code {
                old.insert("activationCode".into(), json!(sim.activation_code));
                new.insert("activationCode".into(), json!(a));
                sim.activation_code = a;
            }
        }
        // Secrets: the trail records that they changed, never their values.
        if let Some(p) = patch.pin {
            let p = p.as_deref().map(|p| parse_pin(p, "pin", 4..=8)).transpose()?;
            sim.pin = p
                .map(|p| self.cipher.seal(iccid.as_str(), "pin", &p))
                .transpose()?;
            old.insert("pin".into(), json!("***"));
            new.insert(
                "pin".into(),
                json!(if sim.pin.is_some() { "changed" } else { "cleared" }),
            );
        }
        if let Some(p) = patch.puk {
            let p = p.as_deref().map(|p| parse_pin(p, "puk", 8..=8)).transpose()?;
            sim.puk = p
                .map(|p| self.cipher.seal(iccid.as_str(), "puk", &p))
                .transpose()?;
            old.insert("puk".into(), json!("***"));
            new.insert(
                "puk".into(),
                json!(if sim.puk.is_some() { "changed" } else { "cleared" }),
            );
        }
        if new.is_empty() {
            return Ok(Outcome {
                value: current,
                effects: Vec::new(),
            });
        }
        let entry = sim_entry(&sim, AuditAction::Updated, &stamp, old.into(), new.into());
        self.write_sims(actor.scope(), vec![(current.version, sim)], vec![entry])
            .await
    }

    /// Moves a SIM to `target`, now or at `effective_at`. Terminating a SIM also unbinds it from
    /// its device.
    pub async fn change_sim_state(
        &self,
        actor: &Actor,
        iccid: &Iccid,
        target: SimState,
        expected: Option<i64>,
        effective_at: Option<DateTime<Utc>>,
        note: Option<&str>,
    ) -> Result<StateChangeOutcome> {
        let current = self.sim_for_change(actor, iccid).await?;
        check_version(&current, expected)?;
        current.state.check(target)?;
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        if let Some(at) = effective_at.filter(|at| *at > Utc::now()) {
            return self
                .schedule_transition(actor, current, target, at, stamp)
                .await
                .map(StateChangeOutcome::Scheduled);
        }
        self.transition(actor.scope(), current, target, &stamp)
            .await
            .map(StateChangeOutcome::Applied)
    }

    /// Applies a checked transition with its coordinated effects.
    async fn transition(
        &self,
        scope: Scope,
        current: Sim,
        target: SimState,
        stamp: &AuditStamp,
    ) -> Result<Outcome<Sim>> {
        current.state.check(target)?;
        // The network first: the database records only what the network confirmed.
        let action = NetworkAction::for_transition(current.state, target);
        let receipt = self.tell_network(scope, &current, action, stamp).await?;
        let (sim, effects) = self.transition_effects(&current, target, action, &receipt, stamp, None);
        self.write_sims(scope, vec![(current.version, sim)], effects)
            .await
    }

    /// Sends `action` for `sim` to the network, retrying transient failures
    /// ([`crate::fleet::network::NETWORK_ATTEMPTS`] attempts in all, backing off). A failure is recorded in the SIM's
    /// audit trail with the reason and answered as `CONFLICT` (refused) or `UNAVAILABLE` (the
    /// network did not answer); the SIM keeps its state.
    pub(crate) async fn tell_network(
        &self,
        scope: Scope,
        sim: &Sim,
        action: NetworkAction,
        stamp: &AuditStamp,
    ) -> Result<NetworkReceipt> {
        let request = NetworkRequest {
            id: Uuid::new_v4(),
            tenant_id: sim.tenant_id,
            iccid: sim.iccid.clone(),
            imsi: sim.imsi.clone(),
            action,
        };
        let failure = match self.send_to_network(&request).await {
            Ok(receipt) => return Ok(receipt),
            Err(f) => f,
        };
        let (kind, error) = match &failure {
            NetworkFailure::Permanent(why) => (
                "REFUSED",
                Error::Conflict(format!(
                    "the network refused {} for SIM {}: {why}; the SIM stays {}",
                    action.as_str(),
                    sim.iccid,
                    sim.state.as_str()
                )),
            ),
            NetworkFailure::Transient(why) => (
                "NO_ANSWER",
                Error::Unavailable(format!(
                    "the network ({} attempts at {}: {why}; SIM {} stays {})",
                    crate::fleet::network::NETWORK_ATTEMPTS,
                    action.as_str(),
                    sim.iccid,
                    sim.state.as_str()
                )),
            ),
        };
        let entry = sim_entry(
            sim,
            AuditAction::NetworkFailed,
            stamp,
            json!({ "state": sim.state.as_str() }),
            json!({ "action": action.as_str(), "failure": kind, "reason": failure.to_string(), "requestId": request.id.to_string() }),
        );
        self.commit(
            scope,
            Changeset {
                audit: vec![entry],
                ..Changeset::default()
            },
        )
        .await?;
        Err(error)
    }

    /// Asks the network to cancel the SIM's location so its device attaches again; audited.
    pub async fn request_location_update(
        &self,
        actor: &Actor,
        iccid: &Iccid,
        note: Option<&str>,
    ) -> Result<Sim> {
        let sim = self.sim_for_change(actor, iccid).await?;
        if !matches!(sim.state, SimState::Active | SimState::Suspended) {
            return Err(Error::Conflict(format!(
                "SIM {iccid} is {}; a location update needs an ACTIVE or SUSPENDED SIM",
                sim.state.as_str()
            )));
        }
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        let receipt = self
            .tell_network(actor.scope(), &sim, NetworkAction::LocationUpdate, &stamp)
            .await?;
        let entry = sim_entry(
            &sim,
            AuditAction::LocationUpdated,
            &stamp,
            json!(null),
            json!({ "network": crate::fleet::network::network_json(NetworkAction::LocationUpdate, &receipt) }),
        );
        self.commit(
            actor.scope(),
            Changeset {
                audit: vec![entry],
                ..Changeset::default()
            },
        )
        .await?;
        Ok(sim)
    }

    /// Writes SIM rows checked against their read versions, with audit entries.
    pub(crate) async fn write_sims(
        &self,
        scope: Scope,
        sims: Vec<(i64, Sim)>,
        effects: Vec<ioto_domain::fleet::NewAuditEntry>,
    ) -> Result<Outcome<Sim>> {
        let first = sims.first().map(|(_, s)| s.iccid.clone());
        let changes = Changeset {
            sims: sims
                .into_iter()
                .map(|(v, row)| Versioned {
                    expected_version: Some(v),
                    row,
                })
                .collect(),
            audit: effects,
            ..Changeset::default()
        };
        let effects = self.commit(scope, changes).await?;
        let iccid = first.ok_or_else(|| Error::Internal("no SIM to write".into()))?;
        let value = self
            .store
            .sim(scope, &iccid)
            .await?
            .ok_or_else(|| Error::Internal(format!("SIM {iccid} vanished after a change")))?;
        Ok(Outcome { value, effects })
    }
}
