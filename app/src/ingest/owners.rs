//! Who owns each SIM the ingest sees (tenant and sub-customer), cached within a byte budget and
//! forgotten whenever a SIM's owner may have changed.

use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::Fleet;
use ioto_domain::{CustomerId, Result, Scope, TenantId};
use std::collections::HashMap;
use std::sync::Arc;

/// Most bytes the cached SIM owners may hold, by the estimate of [`Owners::bytes`]; beyond it
/// the cache starts over (owners are looked up again, in one query per batch). At about 100
/// bytes a SIM this keeps some 160,000 SIMs. A worker has two such caches (session rollups and
/// CDRs), and the hash table's capacity grows in powers of two, so the memory behind them can
/// reach about 3.5 times this.
pub const MAX_OWNERS_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Which tenant and sub-customer each SIM belongs to, looked up in batches and cached, bounded
/// by the bytes it holds.
pub struct Owners {
    fleet: Arc<dyn Fleet>,
    known: HashMap<Iccid, (TenantId, Option<CustomerId>)>,
    bytes: usize,
    limit: usize,
}

impl Owners {
    pub fn new(fleet: Arc<dyn Fleet>) -> Self {
        Self::with_limit(fleet, MAX_OWNERS_CACHE_BYTES)
    }

    /// Owners cached up to `limit` bytes.
    pub fn with_limit(fleet: Arc<dyn Fleet>, limit: usize) -> Self {
        Self {
            fleet,
            known: HashMap::new(),
            bytes: 0,
            limit,
        }
    }

    /// What one cached owner holds: the entry, the ICCID's characters and the table's control
    /// byte and spare capacity (about one slot in eight).
    fn entry_bytes(iccid: &Iccid) -> usize {
        let slot = std::mem::size_of::<(Iccid, (TenantId, Option<CustomerId>))>();
        slot + slot / 8 + 1 + iccid.as_str().len()
    }

    /// The bytes the cache holds now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Looks up, in one query, the SIMs of `iccids` not cached yet. When they would take the
    /// cache past its limit, it starts over first (a batch's own SIMs are always all there
    /// afterwards, whatever the limit).
    pub async fn load<'a>(&mut self, iccids: impl Iterator<Item = &'a Iccid>) -> Result<()> {
        let wanted: Vec<&Iccid> = iccids.collect();
        let mut unknown: Vec<Iccid> = wanted
            .iter()
            .filter(|i| !self.known.contains_key(**i))
            .map(|i| (*i).clone())
            .collect();
        unknown.sort();
        unknown.dedup();
        if unknown.is_empty() {
            return Ok(());
        }
        let adding: usize = unknown.iter().map(Self::entry_bytes).sum();
        if self.bytes + adding > self.limit && !self.known.is_empty() {
            self.clear();
            unknown = wanted.into_iter().cloned().collect();
            unknown.sort();
            unknown.dedup();
        }
        for sim in self.fleet.sims_by_iccid(Scope::Platform, &unknown).await? {
            let bytes = Self::entry_bytes(&sim.iccid);
            if self
                .known
                .insert(sim.iccid, (sim.tenant_id, sim.customer_id))
                .is_none()
            {
                self.bytes += bytes;
            }
        }
        Ok(())
    }

    /// The owner of a SIM loaded before; `None` for an ICCID no tenant has.
    pub fn get(&self, iccid: &Iccid) -> Option<(TenantId, Option<CustomerId>)> {
        self.known.get(iccid).copied()
    }

    /// Forgets every owner (after assignments may have changed).
    pub fn clear(&mut self) {
        self.known.clear();
        self.known.shrink_to(0);
        self.bytes = 0;
    }
}
