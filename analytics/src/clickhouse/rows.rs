//! Row layouts as ClickHouse sends and receives them (RowBinary: field order and widths matter;
//! `scripts/clickhouse-compat.py` checks each against its table). Times are seconds (`DateTime`
//! as UInt32), days are day numbers (`Date` as UInt16).

use chrono::{DateTime, Utc};
use clickhouse::Row;
use ioto_domain::ports::{period_start, Granularity, SessionUpdate};
use ioto_domain::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::date_to_days;
use crate::stored::{SessionColumns, SessionText};

pub(super) fn secs(t: DateTime<Utc>) -> Result<u32> {
    u32::try_from(t.timestamp()).map_err(|_| Error::invalid("time", format!("{t} is outside 1970..2106")))
}

pub(super) fn time(s: u32) -> DateTime<Utc> {
    crate::stored::time(i64::from(s))
}

#[derive(Row, Serialize, Deserialize)]
pub(super) struct SessionRow {
    pub tenant_id: String,
    pub customer_id: String,
    pub iccid: String,
    pub session_id: String,
    pub started_at: u32,
    pub event_time: u32,
    pub hour: u32,
    pub day: u16,
    pub month: u16,
    pub mcc_mnc: String,
    pub rat: String,
    pub ip_address: String,
    pub cell_id: String,
    pub terminated: u8,
    pub total_in: u64,
    pub total_out: u64,
    pub delta_in: u64,
    pub delta_out: u64,
}

impl SessionRow {
    pub(super) fn of(u: &SessionUpdate) -> Result<Self> {
        let text = SessionText::of(u);
        Ok(Self {
            tenant_id: text.tenant_id,
            customer_id: text.customer_id,
            iccid: u.iccid.to_string(),
            session_id: u.session_id.clone(),
            started_at: secs(u.started_at)?,
            event_time: secs(u.event_time)?,
            hour: secs(u.hour)?,
            day: date_to_days(u.hour.date_naive())?,
            month: date_to_days(period_start(u.hour, Granularity::Month).date_naive())?,
            mcc_mnc: text.mcc_mnc,
            rat: text.rat.to_owned(),
            ip_address: text.ip_address,
            cell_id: text.cell_id,
            terminated: u8::from(u.terminated),
            total_in: u.total_in,
            total_out: u.total_out,
            delta_in: u.delta_in,
            delta_out: u.delta_out,
        })
    }

    pub(super) fn into_update(self) -> Result<SessionUpdate> {
        SessionColumns {
            tenant_id: self.tenant_id,
            customer_id: self.customer_id,
            iccid: self.iccid,
            session_id: self.session_id,
            started_at: i64::from(self.started_at),
            event_time: i64::from(self.event_time),
            hour: Some(i64::from(self.hour)),
            mcc_mnc: self.mcc_mnc,
            rat: self.rat,
            ip_address: self.ip_address,
            cell_id: self.cell_id,
            terminated: self.terminated == 1,
            total_in: self.total_in,
            total_out: self.total_out,
            delta_in: self.delta_in,
            delta_out: self.delta_out,
        }
        .into_update("session_updates")
    }
}

/// A live session as the queries read it (no deltas).
#[derive(Row, Deserialize)]
pub(super) struct LiveRow {
    pub tenant_id: String,
    pub customer_id: String,
    pub iccid: String,
    pub session_id: String,
    pub started_at: u32,
    pub event_time: u32,
    pub mcc_mnc: String,
    pub rat: String,
    pub ip_address: String,
    pub cell_id: String,
    pub terminated: u8,
    pub total_in: u64,
    pub total_out: u64,
}

impl LiveRow {
    pub(super) fn into_update(self) -> Result<SessionUpdate> {
        SessionColumns {
            tenant_id: self.tenant_id,
            customer_id: self.customer_id,
            iccid: self.iccid,
            session_id: self.session_id,
            started_at: i64::from(self.started_at),
            event_time: i64::from(self.event_time),
            hour: None,
            mcc_mnc: self.mcc_mnc,
            rat: self.rat,
            ip_address: self.ip_address,
            cell_id: self.cell_id,
            terminated: self.terminated == 1,
            total_in: self.total_in,
            total_out: self.total_out,
            delta_in: 0,
            delta_out: 0,
        }
        .into_update("live_session_states")
    }
}

/// Columns of a live session, newest update per session (`argMax` over the unmerged rows).
/// Aliases differ from the column names: ClickHouse would read an alias inside `WHERE`.
pub(super) const LIVE_COLUMNS: &str = "any(tenant_id) AS l_tenant, argMax(customer_id, event_time) AS l_customer, iccid, session_id, \
     min(started_at) AS l_started, max(event_time) AS l_event, argMax(mcc_mnc, event_time) AS l_mcc_mnc, \
     argMax(rat, event_time) AS l_rat, argMax(ip_address, event_time) AS l_ip, argMax(cell_id, event_time) AS l_cell, \
     max(terminated) AS l_terminated, max(total_in) AS l_in, max(total_out) AS l_out";

#[derive(Row, Deserialize)]
pub(super) struct PointRow {
    pub period: u32,
    pub mcc_mnc: String,
    pub customer_id: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

#[derive(Row, Serialize)]
pub(super) struct CdrRow<'a> {
    pub tenant_id: String,
    pub customer_id: String,
    pub cdr_id: &'a str,
    pub iccid: &'a str,
    pub start: u32,
    pub end: u32,
    pub day: u16,
    pub month: u16,
    pub mcc_mnc: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub rating_group: u32,
}

#[derive(Row, Deserialize)]
pub(super) struct IdRow {
    pub id: String,
}

#[derive(Row, Deserialize)]
pub(super) struct ReconRow {
    pub iccid: String,
    pub day: u16,
    pub session_in: u64,
    pub session_out: u64,
    pub cdr_in: u64,
    pub cdr_out: u64,
}

#[derive(Row, Deserialize)]
pub(super) struct CustomerPointRow {
    pub period: u32,
    pub customer_id: String,
    pub mcc_mnc: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

#[derive(Row, Deserialize)]
pub(super) struct PartitionRow {
    pub table: String,
    pub partition: String,
}

#[derive(Row, Deserialize)]
pub(super) struct VersionRow {
    pub version: u32,
}

#[derive(Row, Serialize, Deserialize)]
pub(super) struct TelemetryRow {
    pub tenant_id: String,
    pub device_id: String,
    pub at: u32,
    pub day: u16,
    pub temperature_c: Option<f64>,
    pub humidity_pct: Option<f64>,
    pub battery_pct: Option<f64>,
    pub light_lux: Option<f64>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}
