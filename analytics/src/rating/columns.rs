//! What the rating takes and gives: CDR columns with their strings held once in dictionaries, and the rated rows, access fees and names a run produces.

use chrono::NaiveDate;
use ioto_domain::billing::money::Cost;
use ioto_domain::billing::rating::RatingTotals;
use polars::prelude::*;

/// Strings of one column, each stored once; rows hold their index. Hashed with Polars' hasher
/// (foldhash) rather than SipHash: every CDR read looks up three strings here.
#[derive(Debug, Default, Clone)]
pub struct Dictionary {
    index: PlHashMap<String, u32>,
    values: Vec<String>,
}

impl Dictionary {
    /// The index of `value`, added when new.
    pub fn id(&mut self, value: &str) -> u32 {
        if let Some(&i) = self.index.get(value) {
            return i;
        }
        let i = self.values.len() as u32;
        self.index.insert(value.to_owned(), i);
        self.values.push(value.to_owned());
        i
    }

    pub fn get(&self, value: &str) -> Option<u32> {
        self.index.get(value).copied()
    }

    pub fn value(&self, id: u32) -> &str {
        self.values.get(id as usize).map(String::as_str).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The indexes in their values' byte order (what a store's `ORDER BY` on the string column
    /// sorts by).
    pub fn sorted_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = (0..self.values.len() as u32).collect();
        ids.sort_unstable_by(|&a, &b| self.values[a as usize].cmp(&self.values[b as usize]));
        ids
    }
}

/// Days since 1970-01-01, as Polars and the stores count them.
pub fn epoch_days(day: NaiveDate) -> i32 {
    (day - NaiveDate::default()).num_days() as i32
}

pub fn from_epoch_days(days: i32) -> NaiveDate {
    NaiveDate::default() + chrono::Duration::days(i64::from(days))
}

/// The CDRs of one tenant and period, as columns.
#[derive(Debug, Default, Clone)]
pub struct CdrColumns {
    pub sims: Dictionary,
    pub customers: Dictionary,
    pub networks: Dictionary,
    pub sim: Vec<u32>,
    pub customer: Vec<u32>,
    pub day: Vec<i32>,
    pub network: Vec<u32>,
    pub bytes_in: Vec<u64>,
    pub bytes_out: Vec<u64>,
}

impl CdrColumns {
    /// The parts joined in order (each one's dictionary indexes mapped onto the first's).
    pub fn concat(parts: Vec<CdrColumns>) -> CdrColumns {
        parts.into_iter().fold(CdrColumns::default(), |mut all, part| {
            all.append(part);
            all
        })
    }

    pub fn push(
        &mut self,
        iccid: &str,
        customer: &str,
        day: i32,
        mcc_mnc: &str,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        let sim = self.sims.id(iccid);
        let customer = self.customers.id(customer);
        let network = self.networks.id(mcc_mnc);
        self.sim.push(sim);
        self.customer.push(customer);
        self.day.push(day);
        self.network.push(network);
        self.bytes_in.push(bytes_in);
        self.bytes_out.push(bytes_out);
    }

    /// Adds `other`'s records, its dictionary indexes mapped onto this one's.
    pub fn append(&mut self, other: CdrColumns) {
        if self.is_empty() {
            *self = other;
            return;
        }
        let remap = |into: &mut Dictionary, from: &Dictionary| -> Vec<u32> {
            from.values.iter().map(|v| into.id(v)).collect()
        };
        let sims = remap(&mut self.sims, &other.sims);
        let customers = remap(&mut self.customers, &other.customers);
        let networks = remap(&mut self.networks, &other.networks);
        self.sim.extend(other.sim.iter().map(|&i| sims[i as usize]));
        self.customer
            .extend(other.customer.iter().map(|&i| customers[i as usize]));
        self.network
            .extend(other.network.iter().map(|&i| networks[i as usize]));
        self.day.extend(other.day);
        self.bytes_in.extend(other.bytes_in);
        self.bytes_out.extend(other.bytes_out);
    }

    pub fn len(&self) -> usize {
        self.sim.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sim.is_empty()
    }
}

/// One SIM × customer × day × network × zone row of a run; strings by dictionary index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatedRow {
    pub sim: u32,
    pub customer: u32,
    pub day: i32,
    pub network: u32,
    pub zone: u32,
    pub plan: u32,
    pub records: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub rounded_bytes: u64,
    pub cost: Cost,
}

/// An access fee of one SIM for one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeRow {
    pub iccid: String,
    pub customer_id: String,
    pub month: NaiveDate,
    pub tariff_plan: String,
    pub fee: Cost,
}

/// The strings behind a run's dictionary indexes.
#[derive(Debug, Default)]
pub struct Names {
    pub sims: Dictionary,
    pub customers: Dictionary,
    pub networks: Dictionary,
    pub zones: Dictionary,
    pub plans: Dictionary,
}

/// What a run produced.
#[derive(Debug, Default)]
pub struct Rated {
    pub names: Names,
    pub rows: Vec<RatedRow>,
    pub fees: Vec<FeeRow>,
    pub totals: RatingTotals,
}
