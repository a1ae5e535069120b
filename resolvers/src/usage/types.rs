//! Usage as GraphQL types: a SIM's live session and its usage over time.

use crate::scalars::Date;
use crate::scalars::{BigInt, IccidScalar, MccMncScalar};
use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};
use ioto_app::usage::LiveSession;
use ioto_domain::identifiers::MccMnc;
use ioto_domain::ports::{Granularity, UsagePoint};
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
    pub mcc_mnc: MccMncScalar,
    /// Brand or operator; null when the code is not in the reference table.
    pub name: Option<String>,
    /// ISO 3166 alpha-2.
    pub country_code: Option<String>,
    pub country: Option<String>,
}

impl NetworkInfo {
    pub fn of(mcc_mnc: &MccMnc) -> Self {
        let known = Networks::builtin().get(mcc_mnc).cloned();
        Self {
            mcc_mnc: MccMncScalar(mcc_mnc.clone()),
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
    pub bytes_in: BigInt,
    /// Bytes to the device so far in this session.
    pub bytes_out: BigInt,
    pub started_at: DateTime<Utc>,
    pub last_update_at: DateTime<Utc>,
}

impl From<LiveSession> for LiveSessionObject {
    fn from(s: LiveSession) -> Self {
        Self {
            online: s.online,
            network: NetworkInfo::of(&s.mcc_mnc),
            radio_access_type: s.rat.name().to_owned(),
            ip_address: s.ip_address.map(|ip| ip.to_string()),
            bytes_in: s.bytes_in.into(),
            bytes_out: s.bytes_out.into(),
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
    pub bytes_in: BigInt,
    pub bytes_out: BigInt,
}

impl From<UsagePoint> for UsagePointObject {
    fn from(p: UsagePoint) -> Self {
        Self {
            period: p.period,
            network: NetworkInfo::of(&p.mcc_mnc),
            bytes_in: p.bytes_in.into(),
            bytes_out: p.bytes_out.into(),
        }
    }
}

/// One counted update of a SIM's data session, as `liveSessions` pushes it.
#[derive(SimpleObject)]
#[graphql(name = "LiveSessionUpdate")]
pub struct LiveSessionUpdateObject {
    pub iccid: IccidScalar,
    /// The sub-customer the SIM belonged to when the update was counted.
    pub customer_id: Option<async_graphql::ID>,
    /// The session after this update.
    pub session: LiveSessionObject,
    /// Bytes from the device since the previous update.
    pub added_bytes_in: BigInt,
    /// Bytes to the device since the previous update.
    pub added_bytes_out: BigInt,
    /// The network closed the session with this update.
    pub terminated: bool,
}

impl LiveSessionUpdateObject {
    pub fn new(u: ioto_domain::ports::SessionUpdate, now: DateTime<Utc>) -> Self {
        Self {
            iccid: IccidScalar(u.iccid.clone()),
            customer_id: u.customer_id.map(|c| async_graphql::ID(c.to_string())),
            added_bytes_in: u.delta_in.into(),
            added_bytes_out: u.delta_out.into(),
            terminated: u.terminated,
            session: LiveSession::from_update(u, now).into(),
        }
    }
}

/// One reading of a device's sensors. Absent measurements are null.
#[derive(SimpleObject)]
#[graphql(name = "TelemetryReading")]
pub struct TelemetryReadingObject {
    pub at: DateTime<Utc>,
    pub temperature_c: Option<f64>,
    pub humidity_pct: Option<f64>,
    pub battery_pct: Option<f64>,
    pub light_lux: Option<f64>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

impl From<ioto_domain::usage::TelemetryReading> for TelemetryReadingObject {
    fn from(r: ioto_domain::usage::TelemetryReading) -> Self {
        Self {
            at: r.at,
            temperature_c: r.temperature_c,
            humidity_pct: r.humidity_pct,
            battery_pct: r.battery_pct,
            light_lux: r.light_lux,
            latitude: r.latitude,
            longitude: r.longitude,
        }
    }
}

/// How the session view and the billing (CDR) view of one SIM-day compare.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReconciliationStatus {
    /// Both views count the same bytes.
    Match,
    /// Sessions counted bytes no CDR bills (yet): a session still open, or a missing CDR.
    SessionsOnly,
    /// CDRs bill bytes no session update counted: missing or late session events.
    CdrsOnly,
    /// Both views have bytes, but not the same.
    Different,
}

/// One SIM on one day, in both views.
#[derive(SimpleObject)]
#[graphql(name = "ReconciliationRow")]
pub struct ReconciliationRowObject {
    pub iccid: IccidScalar,
    pub day: Date,
    pub status: ReconciliationStatus,
    pub session_bytes_in: BigInt,
    pub session_bytes_out: BigInt,
    pub cdr_bytes_in: BigInt,
    pub cdr_bytes_out: BigInt,
    /// CDR bytes minus session bytes (in + out); positive when billing counts more.
    pub difference: BigInt,
}

fn signed(v: u64) -> i64 {
    BigInt::from(v).0
}

impl From<ioto_domain::ports::ReconciliationRow> for ReconciliationRowObject {
    fn from(r: ioto_domain::ports::ReconciliationRow) -> Self {
        let sessions = r.session_in.saturating_add(r.session_out);
        let cdrs = r.cdr_in.saturating_add(r.cdr_out);
        let status = if r.session_in == r.cdr_in && r.session_out == r.cdr_out {
            ReconciliationStatus::Match
        } else if cdrs == 0 {
            ReconciliationStatus::SessionsOnly
        } else if sessions == 0 {
            ReconciliationStatus::CdrsOnly
        } else {
            ReconciliationStatus::Different
        };
        Self {
            iccid: IccidScalar(r.iccid),
            day: Date(r.day),
            status,
            session_bytes_in: r.session_in.into(),
            session_bytes_out: r.session_out.into(),
            cdr_bytes_in: r.cdr_in.into(),
            cdr_bytes_out: r.cdr_out.into(),
            difference: BigInt(signed(cdrs).saturating_sub(signed(sessions))),
        }
    }
}

/// Bytes of one sub-customer in one period on one network.
#[derive(SimpleObject)]
#[graphql(name = "CustomerUsagePoint")]
pub struct CustomerUsagePointObject {
    pub period: DateTime<Utc>,
    /// Null for SIMs assigned to no sub-customer.
    pub customer_id: Option<async_graphql::ID>,
    pub network: NetworkInfo,
    pub bytes_in: BigInt,
    pub bytes_out: BigInt,
}

impl From<ioto_domain::ports::CustomerUsagePoint> for CustomerUsagePointObject {
    fn from(p: ioto_domain::ports::CustomerUsagePoint) -> Self {
        Self {
            period: p.period,
            customer_id: p.customer_id.map(|c| async_graphql::ID(c.to_string())),
            network: NetworkInfo::of(&p.mcc_mnc),
            bytes_in: p.bytes_in.into(),
            bytes_out: p.bytes_out.into(),
        }
    }
}
