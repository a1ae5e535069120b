//! Usage as GraphQL types: a SIM's live session and its usage over time.

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};
use ioto_domain::identifiers::MccMnc;
use ioto_domain::ports::{Granularity, UsagePoint};
use ioto_domain::services::usage::LiveSession;
use ioto_domain::usage::Networks;

/// How finely usage is summed.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(name = "Granularity")]
pub enum GranularityKind {
    Hour,
    Day,
    Month,
    Year,
}

impl From<GranularityKind> for Granularity {
    fn from(g: GranularityKind) -> Self {
        match g {
            GranularityKind::Hour => Self::Hour,
            GranularityKind::Day => Self::Day,
            GranularityKind::Month => Self::Month,
            GranularityKind::Year => Self::Year,
        }
    }
}

/// A mobile network, named from its MCC/MNC.
#[derive(SimpleObject, Clone)]
pub struct NetworkInfo {
    /// `MCC-MNC`, e.g. `262-01`.
    pub mcc_mnc: String,
    /// Brand or operator; null when the code is not in the reference table.
    pub name: Option<String>,
    /// ISO 3166 alpha-2.
    pub country_code: Option<String>,
    pub country: Option<String>,
}

impl NetworkInfo {
    pub fn of(mcc_mnc: &str) -> Self {
        let known = MccMnc::parse(mcc_mnc)
            .ok()
            .and_then(|m| Networks::builtin().get(&m).cloned());
        Self {
            mcc_mnc: mcc_mnc.to_owned(),
            name: known.as_ref().map(|n| n.name.clone()),
            country_code: known
                .as_ref()
                .map(|n| n.country_code.clone())
                .filter(|c| !c.is_empty()),
            country: known.map(|n| n.country_name).filter(|c| !c.is_empty()),
        }
    }
}

/// What a SIM is doing now: its latest data session (within the last 7 days).
#[derive(SimpleObject)]
#[graphql(name = "LiveSession")]
pub struct LiveSessionObject {
    /// Updated within the last 15 minutes and not terminated.
    pub online: bool,
    pub network: NetworkInfo,
    /// GERAN, UTRAN, LTE, LTE-M, NB-IoT or 5G NR.
    pub radio_access_type: String,
    pub ip_address: Option<String>,
    /// Bytes from the device so far in this session.
    pub bytes_in: i64,
    /// Bytes to the device so far in this session.
    pub bytes_out: i64,
    pub started_at: DateTime<Utc>,
    pub last_update_at: DateTime<Utc>,
}

impl From<LiveSession> for LiveSessionObject {
    fn from(s: LiveSession) -> Self {
        Self {
            online: s.online,
            network: NetworkInfo::of(&s.mcc_mnc),
            radio_access_type: s.rat,
            ip_address: s.ip_address,
            bytes_in: i64::try_from(s.bytes_in).unwrap_or(i64::MAX),
            bytes_out: i64::try_from(s.bytes_out).unwrap_or(i64::MAX),
            started_at: s.started_at,
            last_update_at: s.last_update_at,
        }
    }
}

/// Bytes of one period on one network.
#[derive(SimpleObject)]
#[graphql(name = "UsagePoint")]
pub struct UsagePointObject {
    /// Start of the period (UTC).
    pub period: DateTime<Utc>,
    pub network: NetworkInfo,
    pub bytes_in: i64,
    pub bytes_out: i64,
}

impl From<UsagePoint> for UsagePointObject {
    fn from(p: UsagePoint) -> Self {
        Self {
            period: p.period,
            network: NetworkInfo::of(&p.mcc_mnc),
            bytes_in: i64::try_from(p.bytes_in).unwrap_or(i64::MAX),
            bytes_out: i64::try_from(p.bytes_out).unwrap_or(i64::MAX),
        }
    }
}
