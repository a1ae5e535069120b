//! Talking to the network (HLR/HSS) for SIMs: every request through the fair gate with its
//! transient failures retried, and what a confirmed request leaves on the SIM and in the audit
//! trail. Single-SIM changes and bulk jobs both go this way.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use ioto_domain::fleet::audit::AuditStamp;
use ioto_domain::fleet::sim::{Sim, SimState};
use ioto_domain::fleet::AuditAction;
use ioto_domain::ports::network::{NetworkAction, NetworkFailure, NetworkReceipt, NetworkRequest};

use super::{sim_entry, FleetService};

/// Attempts at a network request before a single-SIM change gives up (transient failures).
pub const NETWORK_ATTEMPTS: u32 = 3;

impl FleetService {
    /// Sends a request through the fair gate, retrying transient failures
    /// ([`NETWORK_ATTEMPTS`] attempts in all, backing off between them).
    pub(crate) async fn send_to_network(
        &self,
        request: &NetworkRequest,
    ) -> std::result::Result<NetworkReceipt, NetworkFailure> {
        let mut attempt = 1;
        loop {
            let answer = {
                let _slot = self.gate.acquire(request.tenant_id).await;
                self.network.send(request).await
            };
            match answer {
                Err(NetworkFailure::Transient(why)) if attempt < NETWORK_ATTEMPTS => {
                    tracing::debug!(iccid = %request.iccid, attempt, %why, "network busy; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * 4_u64.pow(attempt - 1))).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The SIM after a confirmed transition, and the audit entries saying so (terminating
    /// unbinds the device).
    pub(crate) fn transition_effects(
        &self,
        current: &Sim,
        target: SimState,
        action: NetworkAction,
        receipt: &NetworkReceipt,
        stamp: &AuditStamp,
        job: Option<Uuid>,
    ) -> (Sim, Vec<ioto_domain::fleet::NewAuditEntry>) {
        let mut sim = current.clone();
        sim.state = target;
        let mut new = json!({ "state": target.as_str(), "network": network_json(action, receipt) });
        if let Some(job) = job {
            new["bulkJobId"] = json!(job.to_string());
        }
        let mut effects = vec![sim_entry(
            &sim,
            AuditAction::StateChanged,
            stamp,
            json!({ "state": current.state.as_str() }),
            new,
        )];
        if target == SimState::Terminated {
            if let Some(device) = sim.device_id.take() {
                effects.push(sim_entry(
                    &sim,
                    AuditAction::Unbound,
                    stamp,
                    json!({ "deviceId": device.to_string() }),
                    json!({ "deviceId": null }),
                ));
            }
        }
        (sim, effects)
    }
}

/// What the audit trail keeps of a confirmed network request: the action, the network's
/// reference and how long the network took (milliseconds, to 0.1).
pub(crate) fn network_json(action: NetworkAction, receipt: &NetworkReceipt) -> serde_json::Value {
    json!({
        "action": action.as_str(),
        "reference": receipt.reference,
        "latencyMs": (receipt.latency.as_secs_f64() * 10_000.0).round() / 10.0})
}
