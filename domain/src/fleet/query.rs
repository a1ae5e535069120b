//! Filters, sort orders and keyset cursors for SIM and device lists.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::device::{DeviceKind, DeviceState};
use super::sim::{SimState, SimType};
use crate::identifiers::MccMnc;
use crate::{CustomerId, DeviceId, Error, Result};

/// Largest page one list call returns.
pub const MAX_PAGE: u64 = 1000;

/// Which sub-customer a list is narrowed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerFilter {
    Is(CustomerId),
    /// Held by the tenant itself, assigned to no sub-customer.
    Unassigned,
}

/// A label condition: the key is present, with the given value when one is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    pub key: String,
    pub value: Option<String>,
}

impl LabelFilter {
    /// Whether labels hold every one of these conditions (the key present, with the value when
    /// one is named).
    pub fn all_hold(filters: &[LabelFilter], labels: &super::labels::Labels) -> bool {
        filters.iter().all(|f| match (labels.get(&f.key), &f.value) {
            (Some(v), Some(want)) => v == want.as_str(),
            (Some(_), None) => true,
            (None, _) => false,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimFilter {
    pub states: Vec<SimState>,
    pub types: Vec<SimType>,
    pub customer: Option<CustomerFilter>,
    /// Every condition must hold.
    pub labels: Vec<LabelFilter>,
    /// Case-insensitive substring of any label key or value.
    pub label_search: Option<String>,
    pub networks: Vec<MccMnc>,
    pub iccid_prefix: Option<String>,
    pub msisdn_prefix: Option<String>,
    pub last_activity_from: Option<DateTime<Utc>>,
    pub last_activity_to: Option<DateTime<Utc>>,
    /// Not seen since this time: last seen before it, or never.
    pub quiet_since: Option<DateTime<Utc>>,
    pub device: Option<DeviceId>,
    /// `Some(true)`: only SIMs in a device; `Some(false)`: only loose ones.
    pub bound: Option<bool>,
    /// Only SIMs with a data quota, by the share of it used in the current period.
    pub quota_percent: Option<QuotaPercentFilter>,
}

/// The most a quota-percent filter names (a SIM can run past its limit before it is stopped).
pub const MAX_QUOTA_PERCENT: u32 = 1_000;

/// SIMs by the share of their data quota used in the period holding `at` (as last evaluated,
/// within seconds of the traffic): "close to their limit" is `at_least: 80`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaPercentFilter {
    /// At least this many percent used (0: every SIM with a quota).
    pub at_least: u32,
    /// Less than this many percent used.
    pub below: Option<u32>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    pub states: Vec<DeviceState>,
    pub kinds: Vec<DeviceKind>,
    pub customer: Option<CustomerFilter>,
    pub labels: Vec<LabelFilter>,
    pub label_search: Option<String>,
    pub imei_prefix: Option<String>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    pub last_activity_from: Option<DateTime<Utc>>,
    pub last_activity_to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimSort {
    #[default]
    Iccid,
    State,
    CreatedAt,
    UpdatedAt,
    /// The share of the data quota used in the current period, in per mille, as last evaluated
    /// (-1 for a SIM without a quota). The key is not on the SIM: a cursor after a row of this
    /// order carries the key the store reports for it (`SimStore::sim_quota_keys`), not
    /// [`sim_cursor`]'s.
    QuotaPercent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSort {
    #[default]
    Name,
    Imei,
    State,
    CreatedAt,
    UpdatedAt,
}

/// Position after the last row of a page: the sort key of that row and its id (the tie-break).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort key as text (RFC 3339 for times).
    pub k: String,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        B64.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(s: &str, field: &str) -> Result<Self> {
        B64.decode(s.trim())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| Error::invalid(field, "is not a cursor this list returned"))
    }

    pub fn time(&self, field: &str) -> Result<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.k)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| Error::invalid(field, "is not a cursor this list returned"))
    }
}

/// One page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<S> {
    pub sort: S,
    pub descending: bool,
    pub after: Option<Cursor>,
    /// Rows to return; the service asks one more to learn whether a next page exists.
    pub limit: u64,
}

impl<S: Default> Page<S> {
    pub fn first(limit: u64) -> Self {
        Self {
            sort: S::default(),
            descending: false,
            after: None,
            limit,
        }
    }
}

/// Checks a page size.
pub fn check_page_size(first: i64) -> Result<u64> {
    u64::try_from(first)
        .ok()
        .filter(|n| (1..=MAX_PAGE).contains(n))
        .ok_or_else(|| Error::invalid("first", format!("must be between 1 and {MAX_PAGE}")))
}

/// A digits-only prefix for ICCID, IMSI and IMEI filters.
pub fn parse_digit_prefix(s: &str, field: &str) -> Result<String> {
    let s = s.trim();
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(field, "must be 1 to 20 digits"));
    }
    Ok(s.to_owned())
}

/// An MSISDN prefix: digits with an optional leading `+`, stored form always with `+`.
pub fn parse_msisdn_prefix(s: &str) -> Result<String> {
    let digits = s.trim().trim_start_matches('+');
    parse_digit_prefix(digits, "msisdnPrefix").map(|d| format!("+{d}"))
}

/// Key of a SIM without a quota in a list sorted by [`SimSort::QuotaPercent`].
pub const NO_QUOTA_KEY: i64 = -1;

/// The cursor after `sim` in a list sorted by `sort`.
///
/// A SIM does not carry its share of its quota: for [`SimSort::QuotaPercent`] this is the
/// cursor after it as if it had no quota. Lists in that order build their cursors from the keys
/// the store reports ([`quota_cursor`]); the service's own paging (exports, scans) pages by ICCID.
pub fn sim_cursor(sim: &super::sim::Sim, sort: SimSort) -> Cursor {
    let k = match sort {
        SimSort::Iccid => sim.iccid.to_string(),
        SimSort::State => sim.state.as_str().to_owned(),
        SimSort::CreatedAt => sim.created_at.to_rfc3339(),
        SimSort::UpdatedAt => sim.updated_at.to_rfc3339(),
        SimSort::QuotaPercent => NO_QUOTA_KEY.to_string(),
    };
    Cursor { k, id: sim.id.0 }
}

/// The cursor after `sim` in a list sorted by [`SimSort::QuotaPercent`], given its key (per mille
/// of its quota used; `None`, a SIM the store reported no key for, counts as without a quota).
pub fn quota_cursor(sim: &super::sim::Sim, key: Option<i64>) -> Cursor {
    Cursor {
        k: key.unwrap_or(NO_QUOTA_KEY).to_string(),
        id: sim.id.0,
    }
}

/// The cursor after `device` in a list sorted by `sort`.
pub fn device_cursor(device: &super::device::Device, sort: DeviceSort) -> Cursor {
    let k = match sort {
        DeviceSort::Name => device.name.clone(),
        DeviceSort::Imei => device.imei.to_string(),
        DeviceSort::State => device.state.as_str().to_owned(),
        DeviceSort::CreatedAt => device.created_at.to_rfc3339(),
        DeviceSort::UpdatedAt => device.updated_at.to_rfc3339(),
    };
    Cursor { k, id: device.id.0 }
}
