//! Where a SIM belongs: its labels, its sub-customer (one SIM or every SIM of a filter) and the
//! device it sits in (swap).

use super::*;
use crate::fleet::{opt_json, sim_entry, FleetService, LabelChange, Outcome};
use ioto_domain::fleet::audit::{parse_note, AuditStamp};
use ioto_domain::fleet::query::SimFilter;
use ioto_domain::fleet::sim::{Sim, SimState};
use ioto_domain::fleet::AuditAction;
use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::network::NetworkAction;
use ioto_domain::ports::{Changeset, Versioned};
use ioto_domain::{Actor, CustomerId, Error, Permission, Result, TenantId};
use serde_json::json;

impl FleetService {
    pub async fn change_sim_labels(
        &self,
        actor: &Actor,
        iccid: &Iccid,
        change: &LabelChange,
        expected: Option<i64>,
        note: Option<&str>,
    ) -> Result<Outcome<Sim>> {
        let current = self.sim_for_change(actor, iccid).await?;
        check_version(&current, expected)?;
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        let labels = change.apply_to(&current.labels)?;
        if labels == current.labels {
            return Ok(Outcome {
                value: current,
                effects: Vec::new(),
            });
        }
        let mut sim = current.clone();
        sim.labels = labels;
        let entry = sim_entry(
            &sim,
            AuditAction::LabelsChanged,
            &stamp,
            current.labels.to_json(),
            sim.labels.to_json(),
        );
        self.write_sims(actor.scope(), vec![(current.version, sim)], vec![entry])
            .await
    }

    /// Assigns one SIM to a sub-customer (`None`: back to the tenant).
    pub async fn assign_sim(
        &self,
        actor: &Actor,
        iccid: &Iccid,
        customer: Option<CustomerId>,
        expected: Option<i64>,
        note: Option<&str>,
    ) -> Result<Outcome<Sim>> {
        let current = self.sim_for_change(actor, iccid).await?;
        check_version(&current, expected)?;
        self.customer_in(actor, current.tenant_id, customer).await?;
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        if current.customer_id == customer {
            return Ok(Outcome {
                value: current,
                effects: Vec::new(),
            });
        }
        let mut sim = current.clone();
        sim.customer_id = customer;
        let entry = sim_entry(
            &sim,
            AuditAction::Assigned,
            &stamp,
            json!({ "customerId": opt_json(current.customer_id.as_ref()) }),
            json!({ "customerId": opt_json(customer.as_ref()) }),
        );
        self.write_sims(actor.scope(), vec![(current.version, sim)], vec![entry])
            .await
    }

    /// Assigns every SIM matching `filter` in one statement; returns how many changed.
    pub async fn assign_sims_where(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        filter: &SimFilter,
        customer: Option<CustomerId>,
        note: Option<&str>,
    ) -> Result<u64> {
        actor.require(Permission::ManageFleet, "assign SIMs")?;
        let tenant = actor.target_tenant(tenant)?;
        self.customer_in(actor, tenant, customer).await?;
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        let changed = self
            .store
            .assign_sims(actor.scope(), tenant, filter, customer, &stamp)
            .await?;
        if changed > 0 {
            self.visibility_changed(tenant);
        }
        Ok(changed)
    }

    /// Replaces a SIM by a new one: MSISDN, tariff plan, sub-customer, labels and device binding
    /// move to the new SIM, which takes the old one's state (or ACTIVE when the old one was not
    /// in service); the old one is terminated. One transaction, one audit entry per SIM.
    pub async fn swap_sim(
        &self,
        actor: &Actor,
        old_iccid: &Iccid,
        new_iccid: &Iccid,
        note: Option<&str>,
    ) -> Result<Outcome<(Sim, Sim)>> {
        if old_iccid == new_iccid {
            return Err(Error::invalid(
                "newIccid",
                "must differ from the SIM being replaced",
            ));
        }
        let old = self.sim_for_change(actor, old_iccid).await?;
        let new = self.sim_for_change(actor, new_iccid).await?;
        if old.state == SimState::Terminated {
            return Err(Error::Conflict(format!(
                "SIM {old_iccid} is already TERMINATED; there is nothing to swap from"
            )));
        }
        if new.state != SimState::Inventory {
            return Err(Error::Conflict(format!(
                "the replacement SIM {new_iccid} is {}; only a SIM in INVENTORY can take over another",
                new.state
            )));
        }
        if new.device_id.is_some() {
            return Err(Error::Conflict(format!(
                "the replacement SIM {new_iccid} is bound to a device; unbind it first"
            )));
        }
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        let target_state = match old.state {
            SimState::Suspended => SimState::Suspended,
            _ => SimState::Active,
        };
        // The network first: the successor is provisioned, then the old SIM removed. When the
        // removal fails the successor stays provisioned in the network (both in the audit trail)
        // and nothing changes here.
        self.tell_network(
            actor.scope(),
            &new,
            NetworkAction::for_transition(new.state, target_state),
            &stamp,
        )
        .await?;
        self.tell_network(actor.scope(), &old, NetworkAction::Terminate, &stamp)
            .await?;
        let mut retired = old.clone();
        retired.state = SimState::Terminated;
        retired.msisdn = None;
        retired.device_id = None;
        let mut successor = new.clone();
        successor.msisdn = old.msisdn.clone();
        successor.tariff_plan = old.tariff_plan.clone();
        successor.customer_id = old.customer_id;
        successor.labels = old.labels.clone();
        successor.device_id = old.device_id;
        successor.state = target_state;
        let moved = json!({
            "msisdn": opt_json(old.msisdn.as_ref()),
            "tariffPlan": old.tariff_plan,
            "customerId": opt_json(old.customer_id.as_ref()),
            "labels": old.labels.to_json(),
            "deviceId": opt_json(old.device_id.as_ref())});
        let effects = vec![
            sim_entry(
                &retired,
                AuditAction::Swapped,
                &stamp,
                json!({ "state": old.state.as_str(), "moved": moved, "replacedBy": null }),
                json!({ "state": "TERMINATED", "replacedBy": new_iccid.as_str() }),
            ),
            sim_entry(
                &successor,
                AuditAction::Swapped,
                &stamp,
                json!({ "state": new.state.as_str(), "replaces": null }),
                json!({ "state": target_state.as_str(), "replaces": old_iccid.as_str(), "moved": moved }),
            ),
        ];
        // The old row goes first: it gives up the MSISDN before the new one takes it.
        let changes = Changeset {
            sims: vec![
                Versioned {
                    expected_version: Some(old.version),
                    row: retired,
                },
                Versioned {
                    expected_version: Some(new.version),
                    row: successor,
                },
            ],
            audit: effects,
            ..Changeset::default()
        };
        let effects = self.commit(actor.scope(), changes).await?;
        let scope = actor.scope();
        let a = self
            .store
            .sim(scope, old_iccid)
            .await?
            .ok_or_else(|| Error::not_found("SIM", old_iccid))?;
        let b = self
            .store
            .sim(scope, new_iccid)
            .await?
            .ok_or_else(|| Error::not_found("SIM", new_iccid))?;
        Ok(Outcome {
            value: (a, b),
            effects,
        })
    }
}
