//! Devices and the coordination layer: device lifecycle, binding SIMs to devices, and what a
//! device's changes do to the SIMs in it.

use chrono::Utc;
use serde_json::json;

use super::sims::stale;
use super::{device_entry, opt_json, sim_entry, FleetService, LabelChange, Outcome};
use ioto_domain::fleet::audit::{parse_note, AuditStamp};
use ioto_domain::fleet::device::{
    normalise_connectivity, parse_device_name, Connectivity, Device, DeviceKind, DeviceState, Imei,
};
use ioto_domain::fleet::lifecycle::Lifecycle;
use ioto_domain::fleet::query::DeviceFilter;
use ioto_domain::fleet::sim::{Sim, SimState};
use ioto_domain::fleet::{AuditAction, Labels};
use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::network::NetworkAction;
use ioto_domain::ports::{Changeset, Versioned};
use ioto_domain::{Actor, CustomerId, DeviceId, Error, Permission, Result, TenantId};

#[derive(Debug, Clone)]
pub struct DeviceInput {
    pub tenant_id: Option<TenantId>,
    pub customer_id: Option<CustomerId>,
    pub imei: Imei,
    pub name: String,
    pub kind: DeviceKind,
    pub connectivity: Vec<Connectivity>,
    pub labels: Labels,
}

#[derive(Debug, Clone, Default)]
pub struct DevicePatch {
    pub name: Option<String>,
    pub kind: Option<DeviceKind>,
    pub connectivity: Option<Vec<Connectivity>>,
}

/// What retiring a device does to the SIMs in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetireSims {
    /// SIMs keep their state and stay bound (unbind them when they are taken out).
    #[default]
    Leave,
    /// ACTIVE SIMs are suspended; SIMs stay bound.
    Suspend,
}

fn check_version(d: &Device, expected: Option<i64>) -> Result<()> {
    match expected {
        Some(v) if v != d.version => Err(stale("device", &d.id.to_string(), v, d.version)),
        _ => Ok(()),
    }
}

impl FleetService {
    async fn device_for_change(&self, actor: &Actor, id: DeviceId) -> Result<Device> {
        actor.require(Permission::ManageFleet, "change devices")?;
        self.store
            .device(actor.scope(), id)
            .await?
            .ok_or_else(|| Error::not_found("device", id))
    }

    pub async fn create_device(
        &self,
        actor: &Actor,
        input: DeviceInput,
        note: Option<&str>,
    ) -> Result<Device> {
        actor.require(Permission::ManageFleet, "create devices")?;
        let tenant = actor.target_tenant(input.tenant_id)?;
        self.customer_in(actor, tenant, input.customer_id).await?;
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        let now = Utc::now();
        let device = Device {
            id: DeviceId::ordered(),
            tenant_id: tenant,
            customer_id: input.customer_id,
            imei: input.imei,
            name: parse_device_name(&input.name)?,
            kind: input.kind,
            connectivity: normalise_connectivity(input.connectivity)?,
            state: DeviceState::Registered,
            labels: input.labels,
            last_activity_at: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let entry = device_entry(
            &device,
            AuditAction::Created,
            &stamp,
            serde_json::Value::Null,
            json!({ "imei": device.imei.as_str(), "name": device.name, "kind": device.kind.as_str(), "state": device.state.as_str() }),
        );
        self.commit(
            actor.scope(),
            Changeset {
                devices: vec![Versioned {
                    expected_version: None,
                    row: device.clone(),
                }],
                audit: vec![entry],
                ..Changeset::default()
            },
        )
        .await?;
        Ok(device)
    }

    async fn write_device(
        &self,
        actor: &Actor,
        current: &Device,
        device: Device,
        extra_sims: Vec<(i64, Sim)>,
        effects: Vec<ioto_domain::fleet::NewAuditEntry>,
    ) -> Result<Outcome<Device>> {
        let id = device.id;
        let changes = Changeset {
            devices: vec![Versioned {
                expected_version: Some(current.version),
                row: device,
            }],
            sims: extra_sims
                .into_iter()
                .map(|(v, row)| Versioned {
                    expected_version: Some(v),
                    row,
                })
                .collect(),
            audit: effects,
            ..Changeset::default()
        };
        let effects = self.commit(actor.scope(), changes).await?;
        let value = self
            .store
            .device(actor.scope(), id)
            .await?
            .ok_or_else(|| Error::Internal(format!("device {id} vanished after a change")))?;
        Ok(Outcome { value, effects })
    }

    pub async fn update_device(
        &self,
        actor: &Actor,
        id: DeviceId,
        patch: DevicePatch,
        expected: Option<i64>,
        note: Option<&str>,
    ) -> Result<Outcome<Device>> {
        let current = self.device_for_change(actor, id).await?;
        check_version(&current, expected)?;
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        let mut d = current.clone();
        let mut old = serde_json::Map::new();
        let mut new = serde_json::Map::new();
        if let Some(n) = patch.name {
            let n = parse_device_name(&n)?;
            if n != d.name {
                old.insert("name".into(), json!(d.name));
                new.insert("name".into(), json!(n));
                d.name = n;
            }
        }
        if let Some(k) = patch.kind.filter(|k| *k != d.kind) {
            old.insert("kind".into(), json!(d.kind.as_str()));
            new.insert("kind".into(), json!(k.as_str()));
            d.kind = k;
        }
        if let Some(c) = patch.connectivity {
            let c = normalise_connectivity(c)?;
            if c != d.connectivity {
                old.insert(
                    "connectivity".into(),
                    json!(d.connectivity.iter().map(|c| c.as_str()).collect::<Vec<_>>()),
                );
                new.insert(
                    "connectivity".into(),
                    json!(c.iter().map(|c| c.as_str()).collect::<Vec<_>>()),
                );
                d.connectivity = c;
            }
        }
        if new.is_empty() {
            return Ok(Outcome {
                value: current,
                effects: Vec::new(),
            });
        }
        let entry = device_entry(&d, AuditAction::Updated, &stamp, old.into(), new.into());
        self.write_device(actor, &current, d, Vec::new(), vec![entry])
            .await
    }

    /// Moves a device to `target`. Its SIMs keep their own states, except that retiring with
    /// [`RetireSims::Suspend`] suspends the ACTIVE ones.
    pub async fn change_device_state(
        &self,
        actor: &Actor,
        id: DeviceId,
        target: DeviceState,
        on_retire: RetireSims,
        expected: Option<i64>,
        note: Option<&str>,
    ) -> Result<Outcome<Device>> {
        let current = self.device_for_change(actor, id).await?;
        check_version(&current, expected)?;
        current.state.check(target)?;
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        let mut d = current.clone();
        d.state = target;
        let mut effects = vec![device_entry(
            &d,
            AuditAction::StateChanged,
            &stamp,
            json!({ "state": current.state.as_str() }),
            json!({ "state": target.as_str() }),
        )];
        let mut sims = Vec::new();
        if target == DeviceState::Retired && on_retire == RetireSims::Suspend {
            for sim in self.store.sims_in_devices(actor.scope(), &[id]).await? {
                if sim.state == SimState::Active {
                    // A SIM the network does not suspend stays ACTIVE (its audit trail says
                    // why); the device is retired all the same.
                    let receipt = match self
                        .tell_network(actor.scope(), &sim, NetworkAction::Suspend, &stamp)
                        .await
                    {
                        Ok(r) => r,
                        Err(Error::Conflict(why) | Error::Unavailable(why)) => {
                            tracing::warn!(iccid = %sim.iccid, %why, "a SIM of a retired device was not suspended");
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    let mut s = sim.clone();
                    s.state = SimState::Suspended;
                    effects.push(sim_entry(
                        &s,
                        AuditAction::StateChanged,
                        &stamp,
                        json!({ "state": "ACTIVE" }),
                        json!({ "state": "SUSPENDED", "because": format!("device {} retired", d.imei),
                                "network": { "action": "SUSPEND", "reference": receipt.reference } }),
                    ));
                    sims.push((sim.version, s));
                }
            }
        }
        self.write_device(actor, &current, d, sims, effects).await
    }

    pub async fn change_device_labels(
        &self,
        actor: &Actor,
        id: DeviceId,
        change: &LabelChange,
        expected: Option<i64>,
        note: Option<&str>,
    ) -> Result<Outcome<Device>> {
        let current = self.device_for_change(actor, id).await?;
        check_version(&current, expected)?;
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        let labels = change.apply_to(&current.labels)?;
        if labels == current.labels {
            return Ok(Outcome {
                value: current,
                effects: Vec::new(),
            });
        }
        let mut d = current.clone();
        d.labels = labels;
        let entry = device_entry(
            &d,
            AuditAction::LabelsChanged,
            &stamp,
            current.labels.to_json(),
            d.labels.to_json(),
        );
        self.write_device(actor, &current, d, Vec::new(), vec![entry])
            .await
    }

    /// Assigns a device to a sub-customer; the SIMs in it follow.
    pub async fn assign_device(
        &self,
        actor: &Actor,
        id: DeviceId,
        customer: Option<CustomerId>,
        expected: Option<i64>,
        note: Option<&str>,
    ) -> Result<Outcome<Device>> {
        let current = self.device_for_change(actor, id).await?;
        check_version(&current, expected)?;
        self.customer_in(actor, current.tenant_id, customer).await?;
        if current.customer_id == customer {
            return Ok(Outcome {
                value: current,
                effects: Vec::new(),
            });
        }
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        let mut d = current.clone();
        d.customer_id = customer;
        let change = |from: Option<CustomerId>| {
            (
                json!({ "customerId": opt_json(from.as_ref()) }),
                json!({ "customerId": opt_json(customer.as_ref()) }),
            )
        };
        let (old, new) = change(current.customer_id);
        let mut effects = vec![device_entry(&d, AuditAction::Assigned, &stamp, old, new)];
        let mut sims = Vec::new();
        for sim in self.store.sims_in_devices(actor.scope(), &[id]).await? {
            if sim.customer_id != customer {
                let mut s = sim.clone();
                s.customer_id = customer;
                let (old, new) = change(sim.customer_id);
                effects.push(sim_entry(&s, AuditAction::Assigned, &stamp, old, new));
                sims.push((sim.version, s));
            }
        }
        self.write_device(actor, &current, d, sims, effects).await
    }

    /// Assigns every device matching `filter`, and the SIMs in them; returns how many devices
    /// changed.
    pub async fn assign_devices_where(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        filter: &DeviceFilter,
        customer: Option<CustomerId>,
        note: Option<&str>,
    ) -> Result<u64> {
        actor.require(Permission::ManageFleet, "assign devices")?;
        let tenant = actor.target_tenant(tenant)?;
        self.customer_in(actor, tenant, customer).await?;
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        let changed = self
            .store
            .assign_devices(actor.scope(), tenant, filter, customer, &stamp)
            .await?;
        if changed > 0 {
            self.visibility_changed(tenant);
        }
        Ok(changed)
    }

    /// Puts a SIM into a device. A device may hold several SIMs; a SIM sits in at most one.
    pub async fn bind(
        &self,
        actor: &Actor,
        iccid: &Iccid,
        device: DeviceId,
        note: Option<&str>,
    ) -> Result<Outcome<(Sim, Device)>> {
        let sim = self.sim_for_change(actor, iccid).await?;
        let d = self.device_for_change(actor, device).await?;
        if sim.device_id == Some(device) {
            return Ok(Outcome {
                value: (sim, d),
                effects: Vec::new(),
            });
        }
        if let Some(other) = sim.device_id {
            return Err(Error::Conflict(format!(
                "SIM {iccid} is already in device {other}; unbind it first"
            )));
        }
        if sim.state == SimState::Terminated {
            return Err(Error::Conflict(format!(
                "SIM {iccid} is TERMINATED and cannot be put into a device"
            )));
        }
        if d.state == DeviceState::Retired {
            return Err(Error::Conflict(format!(
                "device {device} is RETIRED and takes no SIMs"
            )));
        }
        if d.customer_id.is_some() && sim.customer_id != d.customer_id {
            return Err(Error::Conflict(format!(
                "device {device} belongs to customer {}, SIM {iccid} does not; assign the SIM to that customer first",
                opt_json(d.customer_id.as_ref())
            )));
        }
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        let mut s = sim.clone();
        s.device_id = Some(device);
        let effects = vec![
            sim_entry(
                &s,
                AuditAction::Bound,
                &stamp,
                json!({ "deviceId": null }),
                json!({ "deviceId": device.to_string(), "imei": d.imei.as_str() }),
            ),
            device_entry(
                &d,
                AuditAction::Bound,
                &stamp,
                serde_json::Value::Null,
                json!({ "iccid": iccid.as_str() }),
            ),
        ];
        let out = self
            .write_sims(actor.scope(), vec![(sim.version, s)], effects)
            .await?;
        Ok(Outcome {
            value: (out.value, d),
            effects: out.effects,
        })
    }

    /// Takes a SIM out of its device.
    pub async fn unbind(&self, actor: &Actor, iccid: &Iccid, note: Option<&str>) -> Result<Outcome<Sim>> {
        let sim = self.sim_for_change(actor, iccid).await?;
        let Some(device) = sim.device_id else {
            return Err(Error::Conflict(format!("SIM {iccid} is not in a device")));
        };
        let stamp = AuditStamp::new(actor, parse_note(note)?);
        let d = self.store.device(actor.scope(), device).await?;
        let mut s = sim.clone();
        s.device_id = None;
        let mut effects = vec![sim_entry(
            &s,
            AuditAction::Unbound,
            &stamp,
            json!({ "deviceId": device.to_string() }),
            json!({ "deviceId": null }),
        )];
        if let Some(d) = &d {
            effects.push(device_entry(
                d,
                AuditAction::Unbound,
                &stamp,
                json!({ "iccid": iccid.as_str() }),
                serde_json::Value::Null,
            ));
        }
        self.write_sims(actor.scope(), vec![(sim.version, s)], effects)
            .await
    }
}
