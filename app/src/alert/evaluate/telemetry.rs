//! The telemetry rules (`TELEMETRY_ABOVE`, `TELEMETRY_BELOW`) on device readings as they are
//! stored:
//!
//! ```text
//! readings stored (tenant, reading) ─► the tenants with a telemetry rule? none: done
//!   ─► latest reading per device and field ─► the SIMs in those devices (one read)
//!   ─► per rule: each SIM in a device whose field it reads, if its target matches
//!   ─► firing / holding / clear ─► step each alert (as every metric: pending, reminders, …)
//! ```
//!
//! An alert is about a SIM, as every alert: a reading concerns the SIMs bound to its device
//! (each SIM the rule's target matches). A device without a SIM is passed over: there is no
//! subject to tell of. An open alert stays as it is while its device sends nothing.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use ioto_domain::alert::lifecycle::Subject;
use ioto_domain::alert::{AlertRule, Observation, TelemetryField};
use ioto_domain::fleet::Sim;
use ioto_domain::usage::TelemetryReading;
use ioto_domain::{DeviceId, Result, Scope, TenantId};

use super::{AlertEvaluator, Pass};

impl AlertEvaluator {
    /// Evaluates the telemetry rules on readings just stored, each with its device's tenant:
    /// per rule, the latest reading (by its time) in the batch of each of the tenant's devices
    /// that carries the rule's field, observed on the SIMs bound to the device that the rule's
    /// target matches. Does nothing but look at the cached rules when no rule of the readings'
    /// tenants reads telemetry.
    pub async fn on_telemetry(
        &self,
        stored: &[(TenantId, TelemetryReading)],
        now: DateTime<Utc>,
    ) -> Result<Pass> {
        if stored.is_empty() {
            return Ok(Pass::default());
        }
        let rules = self.rules().await?;
        let watching: Vec<&AlertRule> = rules
            .iter()
            .filter(|r| r.spec.condition.metric.is_telemetry() && r.spec.condition.telemetry.is_some())
            .collect();
        if watching.is_empty() {
            return Ok(Pass::default());
        }
        // The fields each tenant's rules read.
        let wanted: HashSet<(TenantId, TelemetryField)> = watching
            .iter()
            .filter_map(|r| r.spec.condition.telemetry.map(|t| (r.tenant_id, t.field)))
            .collect();
        // The latest reading of each device and field read, and the device's tenant.
        let mut latest: HashMap<(DeviceId, TelemetryField), (DateTime<Utc>, f64)> = HashMap::new();
        let mut owner: HashMap<DeviceId, TenantId> = HashMap::new();
        for (tenant, r) in stored {
            for field in TelemetryField::ALL {
                if !wanted.contains(&(*tenant, field)) {
                    continue;
                }
                let Some(x) = field.of(r) else {
                    continue;
                };
                owner.insert(r.device_id, *tenant);
                let e = latest.entry((r.device_id, field)).or_insert((r.at, x));
                if r.at >= e.0 {
                    *e = (r.at, x);
                }
            }
        }
        if latest.is_empty() {
            return Ok(Pass::default());
        }
        let mut devices: Vec<DeviceId> = owner.keys().copied().collect();
        devices.sort_unstable();
        // The SIMs of every device of the batch, in one read.
        let sims = self.fleet.sims_in_devices(Scope::Platform, &devices).await?;
        let mut in_device: HashMap<DeviceId, Vec<&Sim>> = HashMap::new();
        for s in &sims {
            if let Some(d) = s.device_id.filter(|d| owner.get(d) == Some(&s.tenant_id)) {
                in_device.entry(d).or_default().push(s);
            }
        }
        let mut pass = Pass::default();
        for rule in watching {
            let Some(limit) = rule.spec.condition.telemetry else {
                continue;
            };
            let mut observed: Vec<(Subject, Observation)> = Vec::new();
            for ((device, field), (_, x)) in &latest {
                if *field != limit.field || owner.get(device) != Some(&rule.tenant_id) {
                    continue;
                }
                // A device without a SIM (in the rule's tenant) has no subject: passed over.
                let Some(bound) = in_device.get(device) else {
                    continue;
                };
                let Some(obs) = rule.spec.condition.observe_reading(*x) else {
                    continue;
                };
                for s in bound.iter().filter(|s| rule.spec.target.matches(s)) {
                    observed.push((Subject::of(s), obs.clone()));
                }
            }
            pass.rules += 1;
            pass += self.apply(rule, observed, now).await?;
        }
        Ok(pass)
    }
}
