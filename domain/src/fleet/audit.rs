//! The audit trail: every change to a SIM, a device or an API key, with who, when, old and new value and note.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Actor, CustomerId, Error, Result, TenantId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntityKind {
    Sim,
    Device,
    ApiKey,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sim => "SIM",
            Self::Device => "DEVICE",
            Self::ApiKey => "API_KEY",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "SIM" => Ok(Self::Sim),
            "DEVICE" => Ok(Self::Device),
            "API_KEY" => Ok(Self::ApiKey),
            _ => Err(Error::invalid(
                "entityKind",
                format!("'{s}' is not SIM, DEVICE or API_KEY"),
            )),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditAction {
    Created,
    Imported,
    Updated,
    StateChanged,
    Assigned,
    LabelsChanged,
    Bound,
    Unbound,
    Swapped,
    TransitionScheduled,
    TransitionCancelled,
    /// The network did not confirm a change; the SIM kept its state (`newValue` says why).
    NetworkFailed,
    /// The network was asked to cancel the SIM's location (the device attaches again).
    LocationUpdated,
    /// A credential was replaced by a new one (the old one works until its overlap ends).
    Rolled,
    /// A credential was revoked.
    Revoked,
}

impl AuditAction {
    pub const ALL: [AuditAction; 15] = [
        Self::Created,
        Self::Imported,
        Self::Updated,
        Self::StateChanged,
        Self::Assigned,
        Self::LabelsChanged,
        Self::Bound,
        Self::Unbound,
        Self::Swapped,
        Self::TransitionScheduled,
        Self::TransitionCancelled,
        Self::NetworkFailed,
        Self::LocationUpdated,
        Self::Rolled,
        Self::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Imported => "IMPORTED",
            Self::Updated => "UPDATED",
            Self::StateChanged => "STATE_CHANGED",
            Self::Assigned => "ASSIGNED",
            Self::LabelsChanged => "LABELS_CHANGED",
            Self::Bound => "BOUND",
            Self::Unbound => "UNBOUND",
            Self::Swapped => "SWAPPED",
            Self::TransitionScheduled => "TRANSITION_SCHEDULED",
            Self::TransitionCancelled => "TRANSITION_CANCELLED",
            Self::NetworkFailed => "NETWORK_FAILED",
            Self::LocationUpdated => "LOCATION_UPDATED",
            Self::Rolled => "ROLLED",
            Self::Revoked => "REVOKED",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| Error::invalid("action", format!("'{s}' is not an audit action")))
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made a change and why, shared by every entry one operation writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditStamp {
    /// The token subject (user id or service name), or `scheduler`.
    pub actor: String,
    pub actor_user_id: Option<UserId>,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

impl AuditStamp {
    pub fn new(actor: &Actor, note: Option<String>) -> Self {
        Self {
            actor: actor.subject.clone(),
            actor_user_id: actor.user_id,
            at: Utc::now(),
            note,
        }
    }
}

/// A note on a change: up to 500 printable characters; blank means none.
pub fn parse_note(note: Option<&str>) -> Result<Option<String>> {
    let Some(n) = note.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if n.chars().count() > 500 || n.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid("note", "must be at most 500 printable characters"));
    }
    Ok(Some(n.to_owned()))
}

/// An entry to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub entity_kind: EntityKind,
    pub entity_id: Uuid,
    /// ICCID or IMEI, so the trail stays readable after a swap or deletion.
    pub entity_ref: String,
    pub action: AuditAction,
    pub stamp: AuditStamp,
    pub old_value: serde_json::Value,
    pub new_value: serde_json::Value,
}

/// A written entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Increasing: newer entries have larger ids.
    pub id: i64,
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub entity_kind: EntityKind,
    pub entity_id: Uuid,
    pub entity_ref: String,
    pub action: AuditAction,
    pub actor: String,
    pub actor_user_id: Option<UserId>,
    pub at: DateTime<Utc>,
    pub old_value: serde_json::Value,
    pub new_value: serde_json::Value,
    pub note: Option<String>,
}

/// Which entries to list, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub entity_kind: Option<EntityKind>,
    pub entity_id: Option<Uuid>,
    pub actions: Vec<AuditAction>,
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Entries older than this id (the cursor of the previous page).
    pub before: Option<i64>,
    pub limit: u64,
}
