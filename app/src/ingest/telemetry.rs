//! Device readings from MQTT: parsed, attributed to their device and written.

use super::*;
use chrono::Utc;
use ioto_domain::ports::{Fleet, TelemetryStore};
use ioto_domain::usage::{EventWindow, Rejection, TelemetryReading};
use ioto_domain::{DeviceId, Result, Scope, TenantId};
use std::collections::HashMap;
use std::sync::Arc;

/// What one batch of device readings did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelemetryOutcome {
    /// Readings stored, with their device's tenant (for live views).
    pub stored: Vec<(TenantId, TelemetryReading)>,
    pub rejected: Vec<DeadLetter>,
}

/// Device telemetry: readings checked, matched to their device's tenant, stored.
pub struct TelemetryIngest {
    usage: Arc<dyn TelemetryStore>,
    fleet: Arc<dyn Fleet>,
    tenants: HashMap<DeviceId, TenantId>,
    window: EventWindow,
}

impl TelemetryIngest {
    pub fn new(usage: Arc<dyn TelemetryStore>, fleet: Arc<dyn Fleet>) -> Self {
        Self {
            usage,
            fleet,
            tenants: HashMap::new(),
            window: EventWindow::default(),
        }
    }

    /// Accepts readings taken within `window` of now.
    pub fn with_window(mut self, window: EventWindow) -> Self {
        self.window = window;
        self
    }

    /// Processes `(topic, payload)` pairs as received from MQTT. The device the topic names must
    /// be the one the reading names. On `Err` nothing was stored for sure; the caller retries.
    pub async fn process(&mut self, batch: &[(String, Vec<u8>)]) -> Result<TelemetryOutcome> {
        let mut out = TelemetryOutcome::default();
        let mut readings = Vec::with_capacity(batch.len());
        let now = Utc::now();
        for (topic, payload) in batch {
            let reject = |rejection| DeadLetter {
                source: topic.clone(),
                rejection,
                payload: payload.clone(),
            };
            match TelemetryReading::from_json(payload).and_then(|r| {
                self.window.check("at", r.at, now)?;
                Ok(r)
            }) {
                Ok(r)
                    if ioto_domain::usage::telemetry::topic_device(topic)
                        .is_some_and(|d| d != r.device_id.to_string()) =>
                {
                    out.rejected.push(reject(Rejection::InvalidField {
                        field: "device_id".into(),
                        detail: format!("{} differs from the device the topic {topic} names", r.device_id),
                    }));
                }
                Ok(r) => readings.push((topic, payload, r)),
                Err(rejection) => out.rejected.push(reject(rejection)),
            }
        }
        let mut unknown: Vec<DeviceId> = readings
            .iter()
            .map(|(_, _, r)| r.device_id)
            .filter(|d| !self.tenants.contains_key(d))
            .collect();
        unknown.sort();
        unknown.dedup();
        if !unknown.is_empty() {
            for device in self.fleet.devices_by_id(Scope::Platform, &unknown).await? {
                self.tenants.insert(device.id, device.tenant_id);
            }
        }
        let mut sources = Vec::with_capacity(readings.len());
        for (topic, payload, r) in readings {
            match self.tenants.get(&r.device_id) {
                Some(tenant) => {
                    out.stored.push((*tenant, r));
                    sources.push((topic, payload));
                }
                None => out.rejected.push(DeadLetter {
                    source: topic.clone(),
                    rejection: Rejection::UnknownDevice {
                        device_id: r.device_id.to_string(),
                    },
                    payload: payload.clone(),
                }),
            }
        }
        if out.stored.is_empty() {
            return Ok(out);
        }
        match self.usage.write_telemetry(&out.stored).await {
            Ok(()) => {}
            // The store refused some reading's content: store them one by one, so only the
            // refused ones are dead-lettered (a reading stored twice is still one reading).
            Err(ioto_domain::Error::InvalidInput { .. }) => {
                for (reading, (topic, payload)) in std::mem::take(&mut out.stored).into_iter().zip(sources) {
                    match self.usage.write_telemetry(std::slice::from_ref(&reading)).await {
                        Ok(()) => out.stored.push(reading),
                        Err(ioto_domain::Error::InvalidInput { field, reason }) => {
                            out.rejected.push(DeadLetter {
                                source: topic.clone(),
                                rejection: Rejection::Unstorable {
                                    detail: format!("{field}: {reason}"),
                                },
                                payload: payload.clone(),
                            })
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        }
        Ok(out)
    }
}
