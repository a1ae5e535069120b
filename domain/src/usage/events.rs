//! Event contracts on the bus: session rollups and CDRs, JSON, versioned by `v` (default 1).
//! Documented in `docs/events.md`. Parsing says exactly what is wrong, for the dead-letter topic.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::rat::RadioAccessType;
use crate::identifiers::{Iccid, MccMnc};

/// The contract version this build writes: 2 for session rollups (1 with an optional `imei`),
/// CDRs are at 1 (see [`CDR_VERSION`]).
pub const CONTRACT_VERSION: u64 = 2;

/// Session rollup versions this build reads: 1, and 2 (which adds the device's `imei`).
pub const SESSION_VERSIONS: [u64; 2] = [1, 2];

/// The CDR contract version this build reads and writes.
pub const CDR_VERSION: u64 = 1;

/// The device's IMEI as a session reports it: 15 digits with their Luhn check digit, or an
/// IMEISV (16 digits: the IMEI's 14, then a 2-digit software version), whose IMEI is kept.
pub fn session_imei(s: &str) -> Option<crate::fleet::device::Imei> {
    let t = s.trim();
    match t.len() {
        15 => crate::fleet::device::Imei::parse(t).ok(),
        16 if t.bytes().all(|b| b.is_ascii_digit()) => {
            crate::fleet::device::Imei::with_check_digit(&t[..14]).ok()
        }
        _ => None,
    }
}

/// The largest counter an event may carry: 2^53 − 1 bytes (8 PiB; the largest whole number
/// every JSON reader holds exactly). Sums of such counters stay within the stores' 64-bit
/// integers; anything larger is a producer's bug and is dead-lettered.
pub const MAX_COUNTER: u64 = (1 << 53) - 1;

/// How far from now an event's times may be. Older events would land in data already expired
/// (sessions are kept 7 days) or billed; later ones come from a wrong clock. Both are
/// dead-lettered as `OUT_OF_RANGE`, which also keeps every stored time within the stores'
/// range and a batch within a bounded number of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventWindow {
    pub max_age: chrono::Duration,
    pub max_ahead: chrono::Duration,
}

impl Default for EventWindow {
    fn default() -> Self {
        Self {
            max_age: chrono::Duration::days(35),
            max_ahead: chrono::Duration::minutes(10),
        }
    }
}

impl EventWindow {
    /// `OUT_OF_RANGE` naming `field` when `t` is outside the window around `now`.
    pub fn check(&self, field: &str, t: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Rejection> {
        let out = |detail: String| Rejection::OutOfRange {
            field: field.to_owned(),
            detail,
        };
        if t < now - self.max_age {
            return Err(out(format!(
                "{t} is more than {} days old; events are accepted up to {} days after the fact",
                self.max_age.num_days(),
                self.max_age.num_days()
            )));
        }
        if t > now + self.max_ahead {
            return Err(out(format!(
                "{t} is more than {} s ahead of this server's clock ({now})",
                self.max_ahead.num_seconds()
            )));
        }
        Ok(())
    }
}

/// Why an event cannot be counted; travels to the dead-letter topic with the original payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Rejection {
    /// Not JSON, or not a JSON object.
    MalformedJson {
        detail: String,
    },
    UnsupportedVersion {
        version: u64,
    },
    MissingField {
        field: String,
    },
    InvalidField {
        field: String,
        detail: String,
    },
    /// The ICCID is not a SIM of any tenant.
    UnknownIccid {
        iccid: String,
    },
    /// The device id is not a device of any tenant (telemetry).
    UnknownDevice {
        device_id: String,
    },
    /// Cumulative counters are lower than an earlier update of the same session.
    CountersWentBackwards {
        session_id: String,
        detail: String,
    },
    /// A time outside the window events are accepted in (see [`EventWindow`]).
    OutOfRange {
        field: String,
        detail: String,
    },
    /// The usage store refused this event alone (the rest of its batch was stored).
    Unstorable {
        detail: String,
    },
}

impl Rejection {
    /// A short machine-readable code (`MISSING_FIELD`), for metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson { .. } => "MALFORMED_JSON",
            Self::UnsupportedVersion { .. } => "UNSUPPORTED_VERSION",
            Self::MissingField { .. } => "MISSING_FIELD",
            Self::InvalidField { .. } => "INVALID_FIELD",
            Self::UnknownIccid { .. } => "UNKNOWN_ICCID",
            Self::UnknownDevice { .. } => "UNKNOWN_DEVICE",
            Self::CountersWentBackwards { .. } => "COUNTERS_WENT_BACKWARDS",
            Self::OutOfRange { .. } => "OUT_OF_RANGE",
            Self::Unstorable { .. } => "UNSTORABLE",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedJson { detail } => write!(f, "not a JSON object: {detail}"),
            Self::UnsupportedVersion { version } => {
                write!(
                    f,
                    "contract version {version} is not supported (this build reads session rollups at 1 and 2, CDRs and telemetry at {CDR_VERSION})"
                )
            }
            Self::MissingField { field } => write!(f, "field '{field}' is missing"),
            Self::InvalidField { field, detail } => write!(f, "field '{field}': {detail}"),
            Self::UnknownIccid { iccid } => write!(f, "ICCID {iccid} is not a SIM of any tenant"),
            Self::UnknownDevice { device_id } => {
                write!(f, "device {device_id} is not a device of any tenant")
            }
            Self::CountersWentBackwards { session_id, detail } => {
                write!(f, "session {session_id}: counters went backwards ({detail})")
            }
            Self::OutOfRange { field, detail } => write!(f, "field '{field}': {detail}"),
            Self::Unstorable { detail } => write!(f, "the usage store refused this event: {detail}"),
        }
    }
}

/// Whether a rollup continues or ends its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestType {
    Update,
    Terminate,
}

/// The state of one data session after an update; byte counters are cumulative for the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRollup {
    pub session_id: String,
    pub iccid: Iccid,
    pub event_timestamp: DateTime<Utc>,
    pub mcc_mnc: MccMnc,
    pub radio_access_type: RadioAccessType,
    pub ip_address: Option<IpAddr>,
    pub total_bytes_in: u64,
    pub total_bytes_out: u64,
    pub request_type: RequestType,
    pub cell_id: Option<String>,
    /// The device the SIM is in, as the network saw it (contract version 2).
    pub imei: Option<crate::fleet::device::Imei>,
}

/// A billing record of a closed session or charging period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cdr {
    pub cdr_id: String,
    pub iccid: Iccid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub mcc_mnc: MccMnc,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub rating_group: u32,
}

fn object(payload: &[u8]) -> Result<Map<String, Value>, Rejection> {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(Rejection::MalformedJson {
            detail: format!("expected an object, got {}", kind(&other)),
        }),
        Err(e) => Err(Rejection::MalformedJson {
            detail: e.to_string(),
        }),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct Fields(Map<String, Value>);

impl Fields {
    fn version(&self, accepted: &[u64]) -> Result<(), Rejection> {
        match self.0.get("v") {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|v| accepted.contains(&v)) => Ok(()),
            Some(Value::Number(n)) => Err(Rejection::UnsupportedVersion {
                version: n.as_u64().unwrap_or(0),
            }),
            Some(other) => Err(invalid("v", format!("must be a number, got {}", kind(other)))),
        }
    }

    fn raw(&self, field: &str) -> Result<&Value, Rejection> {
        match self.0.get(field) {
            None | Some(Value::Null) => Err(Rejection::MissingField {
                field: field.to_owned(),
            }),
            Some(v) => Ok(v),
        }
    }

    fn text(&self, field: &str) -> Result<String, Rejection> {
        match self.raw(field)? {
            Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            Value::String(_) => Err(invalid(field, "must not be empty")),
            // Codes sent as numbers (RAT types, MNCs) are read as their text.
            Value::Number(n) => Ok(n.to_string()),
            other => Err(invalid(field, format!("must be a string, got {}", kind(other)))),
        }
    }

    fn optional_text(&self, field: &str) -> Result<Option<String>, Rejection> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.text(field).map(Some),
        }
    }

    fn count(&self, field: &str) -> Result<u64, Rejection> {
        match self.raw(field)? {
            Value::Number(n) => n.as_u64().filter(|c| *c <= MAX_COUNTER).ok_or_else(|| {
                invalid(
                    field,
                    format!("must be a whole number from 0 to {MAX_COUNTER}, got {n}"),
                )
            }),
            other => Err(invalid(field, format!("must be a number, got {}", kind(other)))),
        }
    }

    fn time(&self, field: &str) -> Result<DateTime<Utc>, Rejection> {
        let s = self.text(field)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                invalid(
                    field,
                    format!("'{s}' is not an RFC 3339 time (2026-11-22T10:00:00Z)"),
                )
            })
    }

    fn parsed<T>(&self, field: &str, parse: impl Fn(&str) -> crate::Result<T>) -> Result<T, Rejection> {
        let s = self.text(field)?;
        parse(&s).map_err(|e| match e {
            crate::Error::InvalidInput { reason, .. } => invalid(field, reason),
            other => invalid(field, other.to_string()),
        })
    }
}

fn invalid(field: &str, detail: impl Into<String>) -> Rejection {
    Rejection::InvalidField {
        field: field.to_owned(),
        detail: detail.into(),
    }
}

/// A rollup as it usually arrives: every field of the expected JSON type. Reading it straight
/// into this skips building a JSON tree; anything else takes the general path, which also words
/// the rejections.
#[derive(Deserialize)]
struct WireRollup<'a> {
    #[serde(default)]
    v: Option<u64>,
    #[serde(borrow)]
    session_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    iccid: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    event_timestamp: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    mcc_mnc: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    radio_access_type: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    ip_address: Option<std::borrow::Cow<'a, str>>,
    total_bytes_in: u64,
    total_bytes_out: u64,
    #[serde(borrow)]
    request_type: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    cell_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    imei: Option<std::borrow::Cow<'a, str>>,
}

impl WireRollup<'_> {
    /// The rollup, when every field is valid as it stands; `None` sends it down the general path.
    fn rollup(&self) -> Option<SessionRollup> {
        let text = |s: &str| Some(s.trim()).filter(|t| !t.is_empty()).map(str::to_owned);
        if self.v.is_some_and(|v| !SESSION_VERSIONS.contains(&v))
            || self.total_bytes_in > MAX_COUNTER
            || self.total_bytes_out > MAX_COUNTER
        {
            return None;
        }
        let request_type = match self.request_type.trim().to_ascii_uppercase().as_str() {
            "UPDATE" => RequestType::Update,
            "TERMINATE" => RequestType::Terminate,
            _ => return None,
        };
        let ip_address = match &self.ip_address {
            None => None,
            Some(s) => Some(text(s)?.parse::<IpAddr>().ok()?),
        };
        let cell_id = match &self.cell_id {
            None => None,
            Some(s) => Some(text(s)?),
        };
        let imei = match &self.imei {
            None => None,
            Some(s) => Some(session_imei(s)?),
        };
        Some(SessionRollup {
            session_id: text(&self.session_id)?,
            iccid: Iccid::parse(&text(&self.iccid)?).ok()?,
            event_timestamp: DateTime::parse_from_rfc3339(&text(&self.event_timestamp)?)
                .ok()?
                .with_timezone(&Utc),
            mcc_mnc: MccMnc::parse(&text(&self.mcc_mnc)?).ok()?,
            radio_access_type: RadioAccessType::parse(&text(&self.radio_access_type)?).ok()?,
            ip_address,
            total_bytes_in: self.total_bytes_in,
            total_bytes_out: self.total_bytes_out,
            request_type,
            cell_id,
            imei,
        })
    }
}

impl SessionRollup {
    /// The session this rollup belongs to (the SIM and the id the network gave it).
    pub fn key(&self) -> crate::usage::SessionKey {
        crate::usage::SessionKey {
            iccid: self.iccid.clone(),
            session_id: self.session_id.clone(),
        }
    }

    /// Reads one rollup from its JSON form.
    pub fn from_json(payload: &[u8]) -> Result<Self, Rejection> {
        if let Some(r) = serde_json::from_slice::<WireRollup<'_>>(payload)
            .ok()
            .and_then(|w| w.rollup())
        {
            return Ok(r);
        }
        Self::from_json_tree(payload)
    }

    /// The general path: any JSON, every rejection worded.
    fn from_json_tree(payload: &[u8]) -> Result<Self, Rejection> {
        let f = Fields(object(payload)?);
        f.version(&SESSION_VERSIONS)?;
        let request_type = match f.text("request_type")?.to_ascii_uppercase().as_str() {
            "UPDATE" => RequestType::Update,
            "TERMINATE" => RequestType::Terminate,
            other => {
                return Err(invalid(
                    "request_type",
                    format!("'{other}' is not UPDATE or TERMINATE"),
                ))
            }
        };
        let ip_address = f
            .optional_text("ip_address")?
            .map(|s| {
                s.parse::<IpAddr>()
                    .map_err(|_| invalid("ip_address", format!("'{s}' is not an IP address")))
            })
            .transpose()?;
        Ok(Self {
            session_id: f.text("session_id")?,
            iccid: f.parsed("iccid", Iccid::parse)?,
            event_timestamp: f.time("event_timestamp")?,
            mcc_mnc: f.parsed("mcc_mnc", MccMnc::parse)?,
            radio_access_type: f.parsed("radio_access_type", RadioAccessType::parse)?,
            ip_address,
            total_bytes_in: f.count("total_bytes_in")?,
            total_bytes_out: f.count("total_bytes_out")?,
            request_type,
            cell_id: f.optional_text("cell_id")?,
            imei: f
                .optional_text("imei")?
                .map(|s| {
                    session_imei(&s).ok_or_else(|| {
                        invalid(
                            "imei",
                            format!("'{s}' is not an IMEI (15 digits with a Luhn check digit) or an IMEISV (16 digits)"),
                        )
                    })
                })
                .transpose()?,
        })
    }

    /// The JSON form (what producers and the simulator send).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "v": CONTRACT_VERSION,
            "session_id": self.session_id,
            "iccid": self.iccid.as_str(),
            "event_timestamp": self.event_timestamp.to_rfc3339(),
            "mcc_mnc": self.mcc_mnc.to_string(),
            "radio_access_type": self.radio_access_type.name(),
            "ip_address": self.ip_address.map(|i| i.to_string()),
            "total_bytes_in": self.total_bytes_in,
            "total_bytes_out": self.total_bytes_out,
            "request_type": match self.request_type { RequestType::Update => "UPDATE", RequestType::Terminate => "TERMINATE" },
            "cell_id": self.cell_id,
            "imei": self.imei.as_ref().map(crate::fleet::device::Imei::as_str),
        })
    }
}

impl Cdr {
    pub fn from_json(payload: &[u8]) -> Result<Self, Rejection> {
        let f = Fields(object(payload)?);
        f.version(&[CDR_VERSION])?;
        let start = f.time("start")?;
        let end = f.time("end")?;
        if end < start {
            return Err(invalid("end", format!("{end} is before start {start}")));
        }
        let rating_group = u32::try_from(f.count("rating_group")?)
            .map_err(|_| invalid("rating_group", "must fit in 32 bits"))?;
        Ok(Self {
            cdr_id: f.text("cdr_id")?,
            iccid: f.parsed("iccid", Iccid::parse)?,
            start,
            end,
            mcc_mnc: f.parsed("mcc_mnc", MccMnc::parse)?,
            bytes_in: f.count("bytes_in")?,
            bytes_out: f.count("bytes_out")?,
            rating_group,
        })
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "v": CDR_VERSION,
            "cdr_id": self.cdr_id,
            "iccid": self.iccid.as_str(),
            "start": self.start.to_rfc3339(),
            "end": self.end.to_rfc3339(),
            "mcc_mnc": self.mcc_mnc.to_string(),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "rating_group": self.rating_group,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_version_2_rollup_carries_the_devices_imei_and_a_bad_one_is_refused_naming_the_field() {
        let base = r#"{"v": 2, "session_id": "s", "iccid": "89882280660000000015", "event_timestamp": "2026-11-22T10:05:00Z", "mcc_mnc": "262-01", "radio_access_type": "LTE", "total_bytes_in": 1, "total_bytes_out": 2, "request_type": "UPDATE", "imei": IMEI}"#;
        let with = |imei: &str| SessionRollup::from_json(base.replace("IMEI", imei).as_bytes());
        let imei = |r: SessionRollup| r.imei.map(|i| i.as_str().to_owned());
        assert_eq!(
            imei(with(r#""352099001761481""#).unwrap()).as_deref(),
            Some("352099001761481")
        );
        // An IMEISV: the IMEI's 14 digits, then the software version; the IMEI is kept.
        assert_eq!(
            imei(with(r#""3520990017614807""#).unwrap()).as_deref(),
            Some("352099001761481")
        );
        assert_eq!(imei(with("null").unwrap()), None);
        for bad in [
            r#""352099001761482""#,
            r#""35209900176148""#,
            r#""IMEI-ONE""#,
            "42",
        ] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.starts_with("field 'imei'"), "{bad}: {e}");
        }
        // Version 1 still reads; a version this build does not know is refused as such.
        assert!(SessionRollup::from_json(
            base.replace(r#""v": 2"#, r#""v": 1"#)
                .replace("IMEI", "null")
                .as_bytes()
        )
        .is_ok());
        let e = SessionRollup::from_json(
            base.replace(r#""v": 2"#, r#""v": 3"#)
                .replace("IMEI", "null")
                .as_bytes(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("contract version 3 is not supported"), "{e}");
        // What this build writes reads back the same.
        let r = with(r#""352099001761481""#).unwrap();
        assert_eq!(
            SessionRollup::from_json(r.to_json().to_string().as_bytes()).unwrap(),
            r
        );
    }

    use super::*;

    fn rollup() -> Value {
        serde_json::json!({
            "session_id": "s-1",
            "iccid": crate::identifiers::Iccid::with_check_digit("894900000000000001").unwrap().as_str(),
            "event_timestamp": "2026-11-22T10:00:00Z",
            "mcc_mnc": "26201",
            "radio_access_type": 6,
            "ip_address": "10.0.0.7",
            "total_bytes_in": 1000,
            "total_bytes_out": 200,
            "request_type": "UPDATE",
            "cell_id": "0x1a2b",
        })
    }

    #[test]
    fn a_rollup_round_trips() {
        let r = SessionRollup::from_json(rollup().to_string().as_bytes()).unwrap();
        assert_eq!(r.radio_access_type, RadioAccessType::Lte);
        assert_eq!(r.mcc_mnc.to_string(), "262-01");
        let again = SessionRollup::from_json(r.to_json().to_string().as_bytes()).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn the_quick_path_reads_exactly_what_the_general_one_does() {
        let base = rollup();
        let mut variants = vec![base.clone()];
        let mut edit = |f: &dyn Fn(&mut Value)| {
            let mut v = base.clone();
            f(&mut v);
            variants.push(v);
        };
        edit(&|v| v["radio_access_type"] = "NB-IoT".into());
        edit(&|v| v["request_type"] = " terminate ".into());
        edit(&|v| v["session_id"] = "  padded  ".into());
        edit(&|v| v["ip_address"] = Value::Null);
        edit(&|v| v["v"] = 1.into());
        edit(&|v| v["v"] = 2.into());
        edit(&|v| v["ip_address"] = "".into());
        edit(&|v| v["mcc_mnc"] = 26201.into());
        edit(&|v| v["total_bytes_in"] = (-1).into());
        edit(&|v| v["iccid"] = "8949000000000000019".into());
        edit(&|v| v["event_timestamp"] = "yesterday".into());
        edit(&|v| v["cell_id"] = Value::Null);
        edit(&|v| v["extra"] = "ignored".into());
        for v in variants {
            let bytes = v.to_string().into_bytes();
            assert_eq!(
                SessionRollup::from_json(&bytes),
                SessionRollup::from_json_tree(&bytes),
                "{v}"
            );
        }
    }

    #[test]
    fn each_problem_is_named() {
        let reject = |v: Value| SessionRollup::from_json(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            SessionRollup::from_json(b"{nope").unwrap_err().code(),
            "MALFORMED_JSON"
        );
        assert_eq!(reject(serde_json::json!([1])).code(), "MALFORMED_JSON");
        let mut v = rollup();
        v.as_object_mut().unwrap().remove("iccid");
        assert_eq!(reject(v).to_string(), "field 'iccid' is missing");
        let mut v = rollup();
        v["total_bytes_in"] = serde_json::json!(-5);
        assert!(reject(v).to_string().contains("total_bytes_in"));
        let mut v = rollup();
        let good = v["iccid"].as_str().unwrap().to_owned();
        let last = good.chars().last().unwrap();
        let bad = format!(
            "{}{}",
            &good[..good.len() - 1],
            if last == '0' { '1' } else { '0' }
        );
        v["iccid"] = serde_json::json!(bad);
        assert!(reject(v).to_string().contains("Luhn"));
        let mut v = rollup();
        v["v"] = serde_json::json!(3);
        assert_eq!(reject(v).code(), "UNSUPPORTED_VERSION");
        let mut v = rollup();
        v["request_type"] = serde_json::json!("START");
        assert!(reject(v).to_string().contains("UPDATE or TERMINATE"));
    }

    #[test]
    fn cdr_end_after_start() {
        let iccid = crate::identifiers::Iccid::with_check_digit("894900000000000001").unwrap();
        let v = serde_json::json!({"cdr_id": "c1", "iccid": iccid.as_str(), "start": "2026-11-22T10:00:00Z",
            "end": "2026-11-22T09:00:00Z", "mcc_mnc": "262-01", "bytes_in": 1, "bytes_out": 2, "rating_group": 10});
        assert!(Cdr::from_json(v.to_string().as_bytes())
            .unwrap_err()
            .to_string()
            .contains("before start"));
    }
}
