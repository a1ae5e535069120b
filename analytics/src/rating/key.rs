//! How a rated row's key packs into one `u64`, whose order is the stored key's order.

use ioto_domain::{Error, Result};

use super::columns::Dictionary;

/// How a rated row's key packs into a `u64`: day offset, ICCID rank, network rank and, when the
/// bits suffice, the customer (otherwise the customer is a second grouping column).
pub(super) struct KeyLayout {
    pub(super) sim_bits: u32,
    pub(super) network_bits: u32,
    pub(super) customer_bits: u32,
    pub(super) customer_packed: bool,
    /// Dictionary index of the SIM and network at each byte-order rank, and the inverse.
    pub(super) sim_by_rank: Vec<u32>,
    pub(super) network_by_rank: Vec<u32>,
    pub(super) sim_rank: Vec<u32>,
    pub(super) network_rank: Vec<u32>,
}

/// Bits to tell `n` values apart.
fn bits_for(n: usize) -> u32 {
    usize::BITS - n.saturating_sub(1).leading_zeros()
}

impl KeyLayout {
    /// The layout for a run's dictionaries and days, in at most `key_bits` (64 but in tests).
    pub(super) fn new(
        sims: &Dictionary,
        networks: &Dictionary,
        customers: usize,
        days: usize,
        key_bits: u32,
    ) -> Result<Self> {
        let (sim_bits, network_bits) = (bits_for(sims.len()), bits_for(networks.len()));
        let customer_bits = bits_for(customers);
        let used = bits_for(days) + sim_bits + network_bits;
        if used > key_bits {
            return Err(Error::Internal(format!(
                "rating: {} SIMs on {} networks over {days} days do not fit a 64-bit row key",
                sims.len(),
                networks.len()
            )));
        }
        let customer_packed = used + customer_bits <= key_bits;
        let (sim_by_rank, network_by_rank) = (sims.sorted_ids(), networks.sorted_ids());
        let inverse = |by_rank: &[u32]| {
            let mut rank = vec![0; by_rank.len()];
            for (r, &id) in by_rank.iter().enumerate() {
                rank[id as usize] = r as u32;
            }
            rank
        };
        Ok(Self {
            sim_bits,
            network_bits,
            customer_bits: if customer_packed { customer_bits } else { 0 },
            customer_packed,
            sim_rank: inverse(&sim_by_rank),
            network_rank: inverse(&network_by_rank),
            sim_by_rank,
            network_by_rank,
        })
    }

    pub(super) fn pack(&self, day_offset: u32, sim: u32, network: u32, customer: u32) -> u64 {
        let mut k = u64::from(day_offset);
        k = (k << self.sim_bits) | u64::from(self.sim_rank[sim as usize]);
        k = (k << self.network_bits) | u64::from(self.network_rank[network as usize]);
        if self.customer_packed {
            k = (k << self.customer_bits) | u64::from(customer);
        }
        k
    }

    /// Day offset, SIM, network and (when packed) customer of a key.
    pub(super) fn unpack(&self, key: u64) -> (u32, u32, u32, Option<u32>) {
        let mask = |bits: u32| (1u64 << bits) - 1;
        let mut k = key;
        let customer = self
            .customer_packed
            .then(|| (k & mask(self.customer_bits)) as u32);
        k >>= self.customer_bits;
        let network = self.network_by_rank[(k & mask(self.network_bits)) as usize];
        k >>= self.network_bits;
        let sim = self.sim_by_rank[(k & mask(self.sim_bits)) as usize];
        k >>= self.sim_bits;
        (k as u32, sim, network, customer)
    }
}
