//! A counted session as the stores keep it: one update of a session's rollup with the usage it
//! added, the key that names a session, and the periods usage is summed over.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::usage::RadioAccessType;
use crate::{CustomerId, Iccid, MccMnc, TenantId};

/// One counted session update, as the ingest worker writes it: the rollup's state and the usage
/// it added (`delta_*`), attributed to `hour` (and its `day` and `month`, computed in UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUpdate {
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub iccid: Iccid,
    pub session_id: String,
    pub started_at: DateTime<Utc>,
    pub event_time: DateTime<Utc>,
    pub hour: DateTime<Utc>,
    pub mcc_mnc: MccMnc,
    /// Stored and sent by its readable name (`LTE`, `NB-IoT`, …).
    pub rat: RadioAccessType,
    pub ip_address: Option<IpAddr>,
    pub cell_id: Option<String>,
    pub terminated: bool,
    pub total_in: u64,
    pub total_out: u64,
    pub delta_in: u64,
    pub delta_out: u64,
    /// The device's IMEI as the rollup reported it (15 digits), not stored with the usage: it
    /// feeds the SIM's last IMEI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imei: Option<String>,
}

impl SessionUpdate {
    /// The key the stores and the ingest worker's progress use for this session.
    pub fn key(&self) -> SessionKey {
        SessionKey {
            iccid: self.iccid.clone(),
            session_id: self.session_id.clone(),
        }
    }
}

/// A session is named by its SIM and the id the network gave it: two SIMs may use the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionKey {
    pub iccid: Iccid,
    pub session_id: String,
}

/// How finely usage is summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Granularity {
    Hour,
    Day,
    Month,
    Year,
}

/// The start of the period `t` falls in (UTC).
pub fn period_start(t: DateTime<Utc>, g: Granularity) -> DateTime<Utc> {
    use chrono::{Datelike, TimeZone, Timelike};
    let hour = t
        .with_nanosecond(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_minute(0))
        .unwrap_or(t);
    let at = |y: i32, m: u32, d: u32| Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).single().unwrap_or(hour);
    match g {
        Granularity::Hour => hour,
        Granularity::Day => at(t.year(), t.month(), t.day()),
        Granularity::Month => at(t.year(), t.month(), 1),
        Granularity::Year => at(t.year(), 1, 1),
    }
}
