//! The analytics query layer: one request shape (measures, dimensions, filter, time range,
//! granularity, time zone) answered from the coarsest cube that serves it exactly.
//!
//! The cubes, coarsest first:
//!
//! | cube | time grain | dimensions | measures |
//! |---|---|---|---|
//! | `NETWORK_MONTHLY` | UTC month | sub-customer, network | bytes, active SIMs |
//! | `USAGE_MONTHLY` | UTC month | sub-customer, SIM, network | bytes, active SIMs |
//! | `USAGE_DAILY` | UTC day | sub-customer, SIM, network | bytes, active SIMs |
//! | `USAGE_HOURLY` | hour | sub-customer, SIM, network | bytes, active SIMs |
//! | `SESSIONS_HOURLY` | hour | sub-customer, SIM, network, RAT | bytes, sessions, active SIMs |
//! | `RATED_DAILY` | UTC day | sub-customer, SIM, network | CDR bytes, rated bytes, cost, active SIMs |
//!
//! Country, label and tariff plan are looked up from the network catalogue and the fleet and
//! summed here. A cube serves a request when every boundary (the range's ends and each bucket's
//! start, in the request's time zone) falls on its grain in UTC: a day in Europe/Berlin starts at
//! 22:00 or 23:00 UTC, so it is answered from an hourly cube; a day in Asia/Kolkata starts at
//! 18:30 UTC, which no cube can serve ([`Unserved::TimeNotAligned`]).

pub mod dashboard;
pub mod plan;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use crate::billing::money::Cost;
use crate::identifiers::{Iccid, MccMnc};
use crate::usage::Granularity;
use crate::usage::RadioAccessType;
use crate::CustomerId;

pub use plan::{resolve_range, Plan, Preset};

/// What a request sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    BytesIn,
    BytesOut,
    BytesTotal,
    /// Bytes after the rate card's per-record rounding (rated CDRs).
    RatedBytes,
    /// Data cost of the retail card (rated CDRs; access fees are not usage and are not in it).
    Cost,
    /// SIMs with any usage in the row.
    ActiveSims,
    /// Sessions started in the row (a session counts in the hour of its first counted update).
    Sessions,
}

impl Measure {
    pub fn is_rated(self) -> bool {
        matches!(self, Measure::RatedBytes | Measure::Cost)
    }
}

/// What a request groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// The time bucket of the request's granularity.
    Time,
    Network,
    /// ISO 3166 alpha-2 of the network's country (empty for international codes).
    Country,
    SubCustomer,
    Sim,
    /// The value of the label named by the request's `label_key` (null for SIMs without it).
    Label,
    /// The SIM's tariff plan today.
    TariffPlan,
    /// Radio access type of the session.
    Rat,
}

/// The cubes a usage store keeps, coarsest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cube {
    /// No SIM column: a SIM set per row instead, so active SIMs are merged, not counted.
    NetworkMonthly,
    UsageMonthly,
    UsageDaily,
    UsageHourly,
    SessionsHourly,
    RatedDaily,
}

impl Cube {
    pub const ALL: [Cube; 6] = [
        Cube::NetworkMonthly,
        Cube::UsageMonthly,
        Cube::UsageDaily,
        Cube::UsageHourly,
        Cube::SessionsHourly,
        Cube::RatedDaily,
    ];

    pub fn grain(self) -> Granularity {
        match self {
            Cube::NetworkMonthly | Cube::UsageMonthly => Granularity::Month,
            Cube::UsageDaily | Cube::RatedDaily => Granularity::Day,
            Cube::UsageHourly | Cube::SessionsHourly => Granularity::Hour,
        }
    }

    /// The name clients see in `source`.
    pub fn name(self) -> &'static str {
        match self {
            Cube::NetworkMonthly => "NETWORK_MONTHLY",
            Cube::UsageMonthly => "USAGE_MONTHLY",
            Cube::UsageDaily => "USAGE_DAILY",
            Cube::UsageHourly => "USAGE_HOURLY",
            Cube::SessionsHourly => "SESSIONS_HOURLY",
            Cube::RatedDaily => "RATED_DAILY",
        }
    }

    pub fn has_rat(self) -> bool {
        self == Cube::SessionsHourly
    }

    pub fn has_sessions(self) -> bool {
        self == Cube::SessionsHourly
    }

    pub fn is_rated(self) -> bool {
        self == Cube::RatedDaily
    }

    /// Whether rows can be grouped or filtered by SIM.
    pub fn has_sims(self) -> bool {
        self != Cube::NetworkMonthly
    }

    /// The cube of the same grain and source that can be grouped or filtered by SIM.
    pub fn with_sim_column(self) -> Cube {
        match self {
            Cube::NetworkMonthly => Cube::UsageMonthly,
            c => c,
        }
    }
}

/// Why no cube serves a request exactly (machine-readable; the message says it in words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unserved {
    /// A boundary falls inside an hour in UTC (a time zone with a half-hour offset).
    TimeNotAligned,
    /// Rated measures (cost, rated bytes) come from CDRs, sessions and RAT from session updates:
    /// no cube holds both.
    MixedSources,
    /// Cost or rated bytes for a tenant without a retail rate card: nothing is rated.
    NoRateCard,
}

impl Unserved {
    pub fn code(self) -> &'static str {
        match self {
            Unserved::TimeNotAligned => "TIME_NOT_ALIGNED",
            Unserved::MixedSources => "MIXED_SOURCES",
            Unserved::NoRateCard => "NO_RATE_CARD",
        }
    }
}

/// Conditions on the rows (all must hold; an empty list does not filter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalyticsFilter {
    pub customer: Option<CustomerId>,
    pub iccids: Vec<Iccid>,
    pub networks: Vec<MccMnc>,
    /// ISO 3166 alpha-2 codes.
    pub countries: Vec<String>,
    /// `(key, value)`: SIMs carrying this label with this value.
    pub labels: Vec<(String, String)>,
    pub tariff_plans: Vec<String>,
    pub rats: Vec<RadioAccessType>,
}

/// One analytics request, its range resolved.
#[derive(Debug, Clone)]
pub struct AnalyticsRequest {
    pub measures: Vec<Measure>,
    pub dimensions: Vec<Dimension>,
    /// Which label the `Label` dimension groups by.
    pub label_key: Option<String>,
    pub filter: AnalyticsFilter,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `None`: the whole range is one bucket.
    pub granularity: Option<Granularity>,
    pub time_zone: Tz,
}

/// What the store groups a cube by (besides the time bucket).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CubeGroup {
    pub customer: bool,
    pub sim: bool,
    pub network: bool,
    pub rat: bool,
}

/// Conditions the store applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CubeFilter {
    pub customer: Option<CustomerId>,
    /// `Some(empty)` selects nothing.
    pub iccids: Option<Vec<Iccid>>,
    pub networks: Option<Vec<MccMnc>>,
    pub rats: Option<Vec<RadioAccessType>>,
}

/// A query of one cube: rows summed per time bucket and group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CubeQuery {
    pub cube: Cube,
    /// Bucket `i` is `[bounds[i], bounds[i + 1])`; every bound is on the cube's grain in UTC.
    pub bounds: Vec<DateTime<Utc>>,
    pub group: CubeGroup,
    pub filter: CubeFilter,
    /// Rating runs to read (`RatedDaily` only).
    pub runs: Vec<Uuid>,
    /// Whether rows need their distinct SIMs counted (`CubeRow::sims`; 0 when not asked).
    pub count_sims: bool,
}

impl CubeQuery {
    /// The same rows over the whole range as one ungrouped bucket, with the distinct SIMs
    /// counted (a SIM in several buckets or groups counts once).
    pub fn sims_over_range(&self) -> CubeQuery {
        let whole = match (self.bounds.first(), self.bounds.last()) {
            (Some(first), Some(last)) => vec![*first, *last],
            _ => Vec::new(),
        };
        CubeQuery {
            bounds: whole,
            group: CubeGroup::default(),
            count_sims: true,
            ..self.clone()
        }
    }

    /// The bucket `t` falls in.
    pub fn bucket_of(&self, t: DateTime<Utc>) -> Option<usize> {
        let i = self.bounds.partition_point(|b| *b <= t);
        (i >= 1 && i < self.bounds.len()).then(|| i - 1)
    }
}

/// One row of a cube query. Group fields are `None` when not grouped by (and `customer_id` is
/// `None` also for SIMs assigned to no sub-customer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CubeRow {
    pub bucket: usize,
    pub customer_id: Option<CustomerId>,
    pub iccid: Option<Iccid>,
    pub mcc_mnc: Option<MccMnc>,
    pub rat: Option<RadioAccessType>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub sessions: u64,
    pub rated_bytes: u64,
    pub cost: Cost,
    /// Distinct SIMs in the row.
    pub sims: u64,
}

/// The value of one dimension in an answer row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DimValue {
    Time(DateTime<Utc>),
    Text(Option<String>),
}

/// One answer row: the dimensions' values in the request's order, then the measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsRow {
    pub dims: Vec<DimValue>,
    pub values: Measures,
}

/// The measures of a row (those not asked for stay zero and are not shown).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Measures {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub rated_bytes: u64,
    pub cost: Cost,
    pub active_sims: u64,
    pub sessions: u64,
}

impl Measures {
    pub fn bytes_total(&self) -> u64 {
        self.bytes_in.saturating_add(self.bytes_out)
    }

    fn add(&mut self, r: &CubeRow) {
        self.bytes_in = self.bytes_in.saturating_add(r.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(r.bytes_out);
        self.rated_bytes = self.rated_bytes.saturating_add(r.rated_bytes);
        self.cost = self.cost + r.cost;
        self.sessions = self.sessions.saturating_add(r.sessions);
    }
}

/// An answer: where it came from, or why nothing could serve it.
#[derive(Debug, Clone)]
pub struct AnalyticsResult {
    pub source: Option<Cube>,
    pub unserved: Option<(Unserved, String)>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub granularity: Option<Granularity>,
    pub time_zone: Tz,
    /// Currency of `cost` (the retail card's), when cost was asked for and a card exists.
    pub currency: Option<crate::billing::money::Currency>,
    pub rows: Vec<AnalyticsRow>,
    pub totals: Measures,
}

/// The most rows one answer holds; a request with more says so and asks for a narrower one.
pub const MAX_ROWS: usize = 10_000;

/// Values one filter list may hold (ICCIDs, networks, countries, labels, tariff plans, RATs).
pub const MAX_FILTER_VALUES: usize = 1_000;
/// The most time buckets one request may span.
pub const MAX_BUCKETS: usize = 1_000;
