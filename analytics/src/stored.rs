//! Values read back from a usage engine. Everything was parsed before it was written, so a value
//! that does not parse now is an internal error naming the table and column, never a user error.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ioto_domain::ports::SessionUpdate;
use ioto_domain::usage::RadioAccessType;
use ioto_domain::{CustomerId, Error, Iccid, MccMnc, Result, TenantId};

fn stored<T>(table: &str, column: &str, value: &str, parse: impl FnOnce(&str) -> Result<T>) -> Result<T> {
    parse(value).map_err(|e| Error::Internal(format!("stored {table}.{column} '{value}': {e}")))
}

pub(crate) fn tenant(table: &str, s: &str) -> Result<TenantId> {
    stored(table, "tenant_id", s, |s| TenantId::parse(s, "tenant_id"))
}

/// A `customer_id` column ('' for SIMs of no sub-customer).
pub(crate) fn customer(table: &str, s: &str) -> Result<Option<CustomerId>> {
    if s.is_empty() {
        return Ok(None);
    }
    stored(table, "customer_id", s, |s| CustomerId::parse(s, "customer_id")).map(Some)
}

pub(crate) fn iccid(table: &str, s: &str) -> Result<Iccid> {
    stored(table, "iccid", s, Iccid::parse)
}

pub(crate) fn mcc_mnc(table: &str, s: &str) -> Result<MccMnc> {
    stored(table, "mcc_mnc", s, MccMnc::parse)
}

/// An `ip_address` column ('' when the network sent none).
fn ip(table: &str, s: &str) -> Result<Option<IpAddr>> {
    if s.is_empty() {
        return Ok(None);
    }
    stored(table, "ip_address", s, |s| {
        s.parse()
            .map_err(|_| Error::invalid("ip_address", "not an IP address"))
    })
    .map(Some)
}

/// A session row as both engines store it: identifiers as text, times as seconds.
pub(crate) struct SessionColumns {
    pub tenant_id: String,
    pub customer_id: String,
    pub iccid: String,
    pub session_id: String,
    pub started_at: i64,
    pub event_time: i64,
    /// `None` for live-session rows, which keep no hour: it is the event's.
    pub hour: Option<i64>,
    pub mcc_mnc: String,
    pub rat: String,
    pub ip_address: String,
    pub cell_id: String,
    pub terminated: bool,
    pub total_in: u64,
    pub total_out: u64,
    pub delta_in: u64,
    pub delta_out: u64,
}

pub(crate) fn time(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

impl SessionColumns {
    pub(crate) fn into_update(self, table: &str) -> Result<SessionUpdate> {
        use ioto_domain::ports::{period_start, Granularity};
        let event_time = time(self.event_time);
        Ok(SessionUpdate {
            tenant_id: tenant(table, &self.tenant_id)?,
            customer_id: customer(table, &self.customer_id)?,
            iccid: iccid(table, &self.iccid)?,
            session_id: self.session_id,
            started_at: time(self.started_at),
            event_time,
            hour: self
                .hour
                .map_or_else(|| period_start(event_time, Granularity::Hour), time),
            mcc_mnc: mcc_mnc(table, &self.mcc_mnc)?,
            rat: stored(table, "rat", &self.rat, RadioAccessType::parse)?,
            ip_address: ip(table, &self.ip_address)?,
            cell_id: Some(self.cell_id).filter(|c| !c.is_empty()),
            terminated: self.terminated,
            total_in: self.total_in,
            total_out: self.total_out,
            delta_in: self.delta_in,
            delta_out: self.delta_out,
            imei: None,
        })
    }
}

/// The text columns of a session update as both engines write them.
pub(crate) struct SessionText {
    pub tenant_id: String,
    pub customer_id: String,
    pub mcc_mnc: String,
    pub rat: &'static str,
    pub ip_address: String,
    pub cell_id: String,
}

impl SessionText {
    pub(crate) fn of(u: &SessionUpdate) -> Self {
        Self {
            tenant_id: u.tenant_id.to_string(),
            customer_id: u.customer_id.map(|c| c.to_string()).unwrap_or_default(),
            mcc_mnc: u.mcc_mnc.to_string(),
            rat: u.rat.name(),
            ip_address: u.ip_address.map(|ip| ip.to_string()).unwrap_or_default(),
            cell_id: u.cell_id.clone().unwrap_or_default(),
        }
    }
}
