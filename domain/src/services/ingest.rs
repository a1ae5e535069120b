//! Session ingest: a batch of rollups from the bus becomes counted session updates, exactly once.
//!
//! ```text
//! payloads ──parse──► rollups ──owner (SIM lookup)──► progress (cache, else recovered from the
//!    │                   │                                usage store) ──step──► updates ──► one write
//!    └─ rejections ──────┴──────────────► dead letters (with the original payload)
//! ```
//!
//! The progress of each session (its counters so far) decides what a rollup adds; a redelivered
//! rollup adds nothing. Progress lives in a cache that is only advanced after the usage store has
//! acknowledged the write. After a failed or ambiguous write the cache forgets the batch's
//! sessions, so a retry recovers them from what the store actually holds — a write that did land
//! is then recognised, and nothing is counted twice.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ports::{Fleet, SessionUpdate, UsageStore};
use crate::usage::{step, Rejection, RequestType, SessionProgress, SessionRollup, Step};
use crate::{CustomerId, Result, Scope, TenantId};

/// An event that cannot be counted, for the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Where it came from (`topic/partition/offset`), for people tracing it.
    pub source: String,
    pub rejection: Rejection,
    pub payload: Vec<u8>,
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Updates written (including keep-alives that counted zero bytes).
    pub written: usize,
    /// Redeliveries recognised and skipped.
    pub already_counted: usize,
    pub dead: Vec<DeadLetter>,
}

/// Most sessions whose progress is kept in memory; beyond it the cache starts over (progress is
/// then recovered from the store, which is always correct, only slower).
const MAX_CACHED_SESSIONS: usize = 1_000_000;

pub struct SessionIngest {
    usage: Arc<dyn UsageStore>,
    fleet: Arc<dyn Fleet>,
    progress: HashMap<String, SessionProgress>,
    owners: HashMap<String, (TenantId, Option<CustomerId>)>,
}

impl SessionIngest {
    pub fn new(usage: Arc<dyn UsageStore>, fleet: Arc<dyn Fleet>) -> Self {
        Self {
            usage,
            fleet,
            progress: HashMap::new(),
            owners: HashMap::new(),
        }
    }

    /// Forgets cached SIM owners (after assignments change, or periodically).
    pub fn forget_owners(&mut self) {
        self.owners.clear();
    }

    /// Processes one batch of `(source, payload)` in order. On `Err` nothing of the batch counted;
    /// the caller retries the same batch later.
    pub async fn process(&mut self, batch: &[(String, Vec<u8>)]) -> Result<BatchOutcome> {
        let mut out = BatchOutcome::default();
        let mut rollups = Vec::with_capacity(batch.len());
        for (source, payload) in batch {
            match SessionRollup::from_json(payload) {
                Ok(r) => rollups.push((source, payload, r)),
                Err(rejection) => out.dead.push(DeadLetter {
                    source: source.clone(),
                    rejection,
                    payload: payload.clone(),
                }),
            }
        }
        // Owners of SIMs not seen before, in one lookup.
        let mut unknown: Vec<String> = rollups
            .iter()
            .map(|(_, _, r)| r.iccid.to_string())
            .filter(|i| !self.owners.contains_key(i))
            .collect();
        unknown.sort();
        unknown.dedup();
        if !unknown.is_empty() {
            for sim in self.fleet.sims_by_iccid(Scope::Platform, &unknown).await? {
                self.owners
                    .insert(sim.iccid.to_string(), (sim.tenant_id, sim.customer_id));
            }
        }
        // Progress of sessions not in the cache, recovered from the store in one query.
        let mut missing: Vec<(String, String)> = rollups
            .iter()
            .filter(|(_, _, r)| !self.progress.contains_key(&r.session_id))
            .map(|(_, _, r)| (r.iccid.to_string(), r.session_id.clone()))
            .collect();
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            for s in self.usage.session_states(&missing).await? {
                self.progress.insert(
                    s.session_id.clone(),
                    SessionProgress {
                        session_id: s.session_id,
                        started_at: s.started_at,
                        last_event: s.event_time,
                        bytes_in: s.total_in,
                        bytes_out: s.total_out,
                    },
                );
            }
        }
        let mut local: HashMap<String, SessionProgress> = HashMap::new();
        let mut updates = Vec::with_capacity(rollups.len());
        let mut terminated = Vec::new();
        for (source, payload, r) in rollups {
            let Some((tenant_id, customer_id)) = self.owners.get(r.iccid.as_str()).copied() else {
                out.dead.push(DeadLetter {
                    source: source.clone(),
                    rejection: Rejection::UnknownIccid {
                        iccid: r.iccid.to_string(),
                    },
                    payload: payload.clone(),
                });
                continue;
            };
            let previous = local
                .get(&r.session_id)
                .or_else(|| self.progress.get(&r.session_id));
            match step(previous, &r) {
                Ok(Step::AlreadyCounted) => out.already_counted += 1,
                Ok(Step::Count { delta, progress }) => {
                    if r.request_type == RequestType::Terminate {
                        terminated.push(r.session_id.clone());
                    }
                    updates.push(SessionUpdate {
                        tenant_id,
                        customer_id,
                        iccid: r.iccid.to_string(),
                        session_id: r.session_id.clone(),
                        started_at: progress.started_at,
                        event_time: r.event_timestamp,
                        hour: delta.hour,
                        mcc_mnc: r.mcc_mnc.to_string(),
                        rat: r.radio_access_type.name().to_owned(),
                        ip_address: r.ip_address.map(|i| i.to_string()),
                        cell_id: r.cell_id.clone(),
                        terminated: r.request_type == RequestType::Terminate,
                        total_in: progress.bytes_in,
                        total_out: progress.bytes_out,
                        delta_in: delta.bytes_in,
                        delta_out: delta.bytes_out,
                    });
                    local.insert(r.session_id.clone(), progress);
                }
                Err(rejection) => out.dead.push(DeadLetter {
                    source: source.clone(),
                    rejection,
                    payload: payload.clone(),
                }),
            }
        }
        if let Err(e) = self.usage.write_session_updates(&updates).await {
            // The write may or may not have landed: let the retry ask the store.
            for id in local.keys() {
                self.progress.remove(id);
            }
            return Err(e);
        }
        out.written = updates.len();
        if self.progress.len() + local.len() > MAX_CACHED_SESSIONS {
            self.progress.clear();
        }
        self.progress.extend(local);
        // A terminated session's later redeliveries are recognised from the store.
        for id in terminated {
            self.progress.remove(&id);
        }
        Ok(out)
    }
}
