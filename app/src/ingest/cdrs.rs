//! CDRs: parsed, attributed to their SIM's owner and written once; the rating reads them.

use super::*;
use chrono::Utc;
use ioto_domain::ports::{CdrRecord, Fleet, UsageWriter};
use ioto_domain::usage::{Cdr, EventWindow, Rejection};
use ioto_domain::Result;
use std::collections::HashSet;
use std::sync::Arc;

/// What one batch of CDRs did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdrOutcome {
    pub written: usize,
    /// CDRs stored before (redeliveries, or duplicates from mediation) and skipped.
    pub already_counted: usize,
    pub dead: Vec<DeadLetter>,
}

impl CdrOutcome {
    /// Adds what a later part of the same batch did.
    pub fn merge(&mut self, other: Self) {
        self.written += other.written;
        self.already_counted += other.already_counted;
        self.dead.extend(other.dead);
    }
}

/// CDR ingest: billing records stored once each, by `cdr_id`.
///
/// A CDR id already stored (asked of the store for every batch), being written in the batch
/// before, or seen earlier in the batch is skipped, so redeliveries and duplicate records from
/// mediation bill nothing twice.
pub struct CdrIngest {
    usage: Arc<dyn UsageWriter>,
    owners: Owners,
    /// Ids of the batch being written.
    pending: HashSet<String>,
    window: EventWindow,
}

/// A batch of CDRs checked and ready to write.
#[derive(Debug, Default)]
pub struct PreparedCdrs {
    pub records: Vec<CdrRecord>,
    pub already_counted: usize,
    pub dead: Vec<DeadLetter>,
    /// Time spent waiting for the store's answers (SIM owners, CDRs already stored).
    pub lookup: std::time::Duration,
}

impl CdrIngest {
    pub fn new(usage: Arc<dyn UsageWriter>, fleet: Arc<dyn Fleet>) -> Self {
        Self {
            usage,
            owners: Owners::new(fleet),
            pending: HashSet::new(),
            window: EventWindow::default(),
        }
    }

    /// Accepts records whose start and end are within `window` of now.
    pub fn with_window(mut self, window: EventWindow) -> Self {
        self.window = window;
        self
    }

    pub fn forget_owners(&mut self) {
        self.owners.clear();
    }
}

#[async_trait::async_trait]
impl Counted for CdrIngest {
    type Prepared = PreparedCdrs;
    type Outcome = CdrOutcome;

    /// Checks a batch and leaves out what is stored or being written, without writing anything.
    async fn prepare(&mut self, batch: &[(String, Vec<u8>)]) -> Result<PreparedCdrs> {
        let mut out = PreparedCdrs::default();
        let mut cdrs = Vec::with_capacity(batch.len());
        let now = Utc::now();
        for (source, payload) in batch {
            match Cdr::from_json(payload).and_then(|c| {
                self.window.check("start", c.start, now)?;
                self.window.check("end", c.end, now)?;
                Ok(c)
            }) {
                Ok(c) => cdrs.push((source, payload, c)),
                Err(rejection) => out.dead.push(DeadLetter {
                    source: source.clone(),
                    rejection,
                    payload: payload.clone(),
                }),
            }
        }
        let looking_up = std::time::Instant::now();
        self.owners.load(cdrs.iter().map(|(_, _, c)| &c.iccid)).await?;
        let ids: Vec<String> = cdrs.iter().map(|(_, _, c)| c.cdr_id.clone()).collect();
        let mut seen: HashSet<String> = if ids.is_empty() {
            HashSet::new()
        } else {
            self.usage.known_cdrs(&ids).await?.into_iter().collect()
        };
        out.lookup = looking_up.elapsed();
        seen.extend(self.pending.iter().cloned());
        for (source, payload, c) in cdrs {
            let Some((tenant_id, customer_id)) = self.owners.get(&c.iccid) else {
                out.dead.push(DeadLetter {
                    source: source.clone(),
                    rejection: Rejection::UnknownIccid {
                        iccid: c.iccid.to_string(),
                    },
                    payload: payload.clone(),
                });
                continue;
            };
            if !seen.insert(c.cdr_id.clone()) {
                out.already_counted += 1;
                continue;
            }
            out.records.push(CdrRecord {
                tenant_id,
                customer_id,
                cdr_id: c.cdr_id,
                iccid: c.iccid,
                start: c.start,
                end: c.end,
                mcc_mnc: c.mcc_mnc,
                bytes_in: c.bytes_in,
                bytes_out: c.bytes_out,
                rating_group: c.rating_group,
            });
        }
        Ok(out)
    }

    /// Marks a prepared batch as being written.
    fn stage(&mut self, prepared: &PreparedCdrs) {
        self.pending = prepared.records.iter().map(|r| r.cdr_id.clone()).collect();
    }

    async fn write(usage: &dyn UsageWriter, prepared: &PreparedCdrs) -> Result<()> {
        if prepared.records.is_empty() {
            return Ok(());
        }
        usage.write_cdrs(&prepared.records).await
    }

    /// The store acknowledged the staged batch.
    fn acknowledge(&mut self, prepared: PreparedCdrs) -> CdrOutcome {
        self.pending.clear();
        CdrOutcome {
            written: prepared.records.len(),
            already_counted: prepared.already_counted,
            dead: prepared.dead,
        }
    }

    /// Forgets the batch being written (it failed, or the assignment changed).
    fn forget(&mut self) {
        self.pending.clear();
    }

    fn usage(&self) -> Arc<dyn UsageWriter> {
        Arc::clone(&self.usage)
    }
}
