//! What a server remembers of its last pass of each tenant, so that the next pass on the same
//! UTC day computes again only the SIMs whose inputs changed.
//!
//! Within a day a SIM's forecast and advice depend on its completed days (fixed until midnight),
//! its plan, sub-customer, pools and quota, and the tenant's cards and pools; its anomalies also
//! on today's bytes, sessions, networks, devices and what people dismissed. A pass digests those
//! of every SIM with usage ([`Digest`]); a SIM whose digest is the one remembered keeps what the
//! last pass stored, its costs (remembered too) still summed into its groups'. The groups are
//! forecast again every pass: their sums are read whole anyway.
//!
//! A pass is whole (every SIM computed, what was not written again removed) when this server has
//! nothing to go by: the first pass it makes of the tenant, the first of a UTC day (the window
//! moved), the first after another server's pass or after one that failed or died (the store's
//! last finished pass is not the one remembered), one after the tenant's cards or pools changed,
//! and one that would leave a SIM of the last pass unwritten (gone from the window). Otherwise
//! it removes what it did not write again of the groups only (it writes each of them again).
//! SIMs with at most [`OWN_HISTORY_MIN_DAYS`] days of history are judged against their cohort
//! (today, or yesterday), whose statistics move with every SIM's usage during the day: they are
//! computed every pass. A network seen today only in updates that carried no bytes and opened no
//! session does not change a SIM's digest; the day's next whole pass (the next day's first, for
//! yesterday) takes it in.
//!
//! Memory is the process's: digests use the standard library's hasher, compared within one
//! process only (about 100 bytes per SIM, plus its costs where the tenant has a card).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use ioto_domain::billing::RateCard;
use ioto_domain::ports::quota_pools::PoolTarget;
use ioto_domain::{SimId, TenantId};
pub(crate) use ioto_forecast::anomaly::thresholds::OWN_HISTORY_MIN_DAYS;

use super::advice::CostSums;

/// What a pass left of one SIM: the digest of its inputs and its costs.
#[derive(Debug, Clone)]
pub(crate) struct Remembered {
    pub inputs: u64,
    pub costs: Option<CostSums>,
}

/// What a server remembers of its last pass of a tenant.
#[derive(Debug, Clone)]
pub(crate) struct PassMemory {
    /// The UTC day it passed.
    pub day: NaiveDate,
    /// When it finished, as the store records it.
    pub finished_at: DateTime<Utc>,
    /// The tenant's rate cards and pools it read.
    pub cards: Vec<RateCard>,
    pub pools: Vec<PoolTarget>,
    /// Every SIM it forecast, computed then or kept from before.
    pub sims: HashMap<SimId, Remembered>,
}

impl PassMemory {
    /// Whether a pass at `day`, after the store's last finished pass `finished`, with these
    /// cards and pools, may go by this memory.
    pub fn holds(
        &self,
        day: NaiveDate,
        finished: Option<DateTime<Utc>>,
        cards: &[RateCard],
        pools: &[PoolTarget],
    ) -> bool {
        self.day == day && finished == Some(self.finished_at) && self.cards == cards && self.pools == pools
    }

    /// Whether every SIM it forecast is among the SIMs with usage of a pass (one that keeps SIMs
    /// as stored removes no SIM's forecast).
    pub fn covered_by<'a>(&self, sims: impl IntoIterator<Item = &'a SimId>) -> bool {
        let sims: HashSet<&SimId> = sims.into_iter().collect();
        self.sims.keys().all(|s| sims.contains(s))
    }

    /// The SIM's remembered costs, when `inputs` is the digest it was computed from.
    pub fn unchanged(&self, sim: SimId, inputs: u64) -> Option<&Remembered> {
        self.sims.get(&sim).filter(|r| r.inputs == inputs)
    }
}

/// Every tenant's memory on this server.
#[derive(Clone, Default)]
pub(crate) struct Memories(Arc<Mutex<HashMap<TenantId, PassMemory>>>);

impl Memories {
    /// Takes the tenant's memory: a pass that fails leaves none behind.
    pub fn take(&self, tenant: TenantId) -> Option<PassMemory> {
        self.0.lock().ok()?.remove(&tenant)
    }

    /// Forgets the tenants not among `tenants` (deleted since).
    pub fn retain(&self, tenants: &HashSet<TenantId>) {
        if let Ok(mut all) = self.0.lock() {
            all.retain(|t, _| tenants.contains(t));
        }
    }

    pub fn keep(&self, tenant: TenantId, memory: PassMemory) {
        if let Ok(mut all) = self.0.lock() {
            all.insert(tenant, memory);
        }
    }
}

/// A digest of a SIM's inputs, fed piece by piece.
pub(crate) struct Digest(DefaultHasher);

impl Digest {
    pub fn new() -> Self {
        Self(DefaultHasher::new())
    }

    /// Adds a value that hashes.
    pub fn add(mut self, v: &impl Hash) -> Self {
        v.hash(&mut self.0);
        self
    }

    /// Adds daily figures (bit for bit).
    pub fn figures(mut self, values: &[f64]) -> Self {
        values.len().hash(&mut self.0);
        for v in values {
            v.to_bits().hash(&mut self.0);
        }
        self
    }

    /// Adds a value as its JSON (for what holds figures that do not hash).
    pub fn json(mut self, v: &impl serde::Serialize) -> Self {
        // A value that does not serialise digests as the error's text: never equal by chance
        // to a value that does.
        match serde_json::to_vec(v) {
            Ok(bytes) => bytes.hash(&mut self.0),
            Err(e) => e.to_string().hash(&mut self.0),
        }
        self
    }

    pub fn finish(&self) -> u64 {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_tell_figures_apart_bit_for_bit_and_by_length() {
        let d = |v: &[f64]| Digest::new().figures(v).finish();
        assert_eq!(d(&[1.0, 2.0]), d(&[1.0, 2.0]));
        assert_ne!(d(&[1.0, 2.0]), d(&[1.0, 2.5]));
        assert_ne!(d(&[1.0, 2.0]), d(&[1.0, 2.0, 0.0]));
        assert_ne!(d(&[0.0]), d(&[-0.0]));
    }

    #[test]
    fn a_memory_holds_on_its_day_after_its_own_pass_with_the_same_cards_and_pools() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 18).unwrap();
        let finished = day.and_hms_opt(10, 0, 0).unwrap().and_utc();
        let m = PassMemory {
            day,
            finished_at: finished,
            cards: Vec::new(),
            pools: Vec::new(),
            sims: HashMap::new(),
        };
        assert!(m.holds(day, Some(finished), &[], &[]));
        assert!(
            !m.holds(day.succ_opt().unwrap(), Some(finished), &[], &[]),
            "a new day"
        );
        assert!(
            !m.holds(day, Some(finished + chrono::Duration::minutes(5)), &[], &[]),
            "another server passed since"
        );
        assert!(!m.holds(day, None, &[], &[]));
    }
}
