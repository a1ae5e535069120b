//! Rows to domain types. A stored value that no longer parses is a bug or a manual edit: it is
//! reported as `Internal`, naming the table and column, never silently dropped.

use ioto_domain::directory::{Customer, Tenant, User};
use ioto_domain::fleet::audit::{AuditAction, AuditEntry, EntityKind};
use ioto_domain::fleet::device::{Connectivity, Device, DeviceKind, DeviceState, Imei};
use ioto_domain::fleet::labels::{LabelSuggestion, Labels};
use ioto_domain::fleet::schedule::{ScheduleStatus, ScheduledTransition};
use ioto_domain::fleet::secret::Sealed;
use ioto_domain::fleet::sim::{Sim, SimState, SimType};
use ioto_domain::identifiers::MccMnc;
use ioto_domain::identifiers::{Email, Iccid, Imsi, Msisdn, Name, Slug};
use ioto_domain::{Error, Result, Role};

use crate::entities::{
    audit_event, customer, device, label_suggestion, scheduled_transition, sim, tenant, user,
};

pub(crate) fn corrupt(table: &str, column: &str, e: Error) -> Error {
    Error::Internal(format!("stored {table}.{column} is invalid: {e}"))
}

impl TryFrom<tenant::Model> for Tenant {
    type Error = Error;
    fn try_from(m: tenant::Model) -> Result<Self> {
        Ok(Tenant {
            id: m.id.into(),
            slug: Slug::parse(&m.slug).map_err(|e| corrupt("tenants", "slug", e))?,
            name: Name::parse(&m.name, "name").map_err(|e| corrupt("tenants", "name", e))?,
            created_at: m.created_at,
        })
    }
}

impl TryFrom<customer::Model> for Customer {
    type Error = Error;
    fn try_from(m: customer::Model) -> Result<Self> {
        Ok(Customer {
            id: m.id.into(),
            tenant_id: m.tenant_id.into(),
            name: Name::parse(&m.name, "name").map_err(|e| corrupt("customers", "name", e))?,
            external_ref: m.external_ref,
            created_at: m.created_at,
        })
    }
}

impl TryFrom<user::Model> for User {
    type Error = Error;
    fn try_from(m: user::Model) -> Result<Self> {
        Ok(User {
            id: m.id.into(),
            tenant_id: m.tenant_id.into(),
            customer_id: m.customer_id.map(Into::into),
            email: Email::parse(&m.email).map_err(|e| corrupt("users", "email", e))?,
            display_name: Name::parse(&m.display_name, "displayName")
                .map_err(|e| corrupt("users", "display_name", e))?,
            role: Role::parse(&m.role).map_err(|e| corrupt("users", "role", e))?,
            created_at: m.created_at,
            credentials_changed_at: m.credentials_changed_at,
        })
    }
}

impl TryFrom<sim::Model> for Sim {
    type Error = Error;
    fn try_from(m: sim::Model) -> Result<Self> {
        Ok(Sim {
            id: m.id.into(),
            tenant_id: m.tenant_id.into(),
            customer_id: m.customer_id.map(Into::into),
            iccid: Iccid::parse(&m.iccid).map_err(|e| corrupt("sims", "iccid", e))?,
            imsi: Imsi::parse(&m.imsi).map_err(|e| corrupt("sims", "imsi", e))?,
            msisdn: m
                .msisdn
                .as_deref()
                .map(Msisdn::parse)
                .transpose()
                .map_err(|e| corrupt("sims", "msisdn", e))?,
            sim_type: SimType::parse(&m.sim_type).map_err(|e| corrupt("sims", "sim_type", e))?,
            tariff_plan: m.tariff_plan,
            state: SimState::parse(&m.state).map_err(|e| corrupt("sims", "state", e))?,
            labels: labels(m.labels).map_err(|e| corrupt("sims", "labels", e))?,
            device_id: m.device_id.map(Into::into),
            pin: m.pin_sealed.map(Sealed::from_stored),
            puk: m.puk_sealed.map(Sealed::from_stored),
            activation_code: m.activation_code,
            last_network: m
                .last_network
                .as_deref()
                .map(MccMnc::parse)
                .transpose()
                .map_err(|e| corrupt("sims", "last_network", e))?,
            last_activity_at: m.last_activity_at,
            version: m.version,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

impl TryFrom<device::Model> for Device {
    type Error = Error;
    fn try_from(m: device::Model) -> Result<Self> {
        Ok(Device {
            id: m.id.into(),
            tenant_id: m.tenant_id.into(),
            customer_id: m.customer_id.map(Into::into),
            imei: Imei::parse(&m.imei).map_err(|e| corrupt("devices", "imei", e))?,
            name: m.name,
            kind: DeviceKind::parse(&m.kind).map_err(|e| corrupt("devices", "kind", e))?,
            connectivity: m
                .connectivity
                .split(',')
                .filter(|s| !s.is_empty())
                .map(Connectivity::parse)
                .collect::<Result<_>>()
                .map_err(|e| corrupt("devices", "connectivity", e))?,
            state: DeviceState::parse(&m.state).map_err(|e| corrupt("devices", "state", e))?,
            labels: labels(m.labels).map_err(|e| corrupt("devices", "labels", e))?,
            last_activity_at: m.last_activity_at,
            version: m.version,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

impl TryFrom<audit_event::Model> for AuditEntry {
    type Error = Error;
    fn try_from(m: audit_event::Model) -> Result<Self> {
        Ok(AuditEntry {
            id: m.id,
            tenant_id: m.tenant_id.into(),
            customer_id: m.customer_id.map(Into::into),
            entity_kind: EntityKind::parse(&m.entity_kind)
                .map_err(|e| corrupt("audit_events", "entity_kind", e))?,
            entity_id: m.entity_id,
            entity_ref: m.entity_ref,
            action: AuditAction::parse(&m.action).map_err(|e| corrupt("audit_events", "action", e))?,
            actor: m.actor,
            actor_user_id: m.actor_user_id.map(Into::into),
            at: m.at,
            old_value: m.old_value.unwrap_or_default(),
            new_value: m.new_value.unwrap_or_default(),
            note: m.note,
        })
    }
}

impl TryFrom<scheduled_transition::Model> for ScheduledTransition {
    type Error = Error;
    fn try_from(m: scheduled_transition::Model) -> Result<Self> {
        let bad = |col: &str, e: Error| corrupt("scheduled_transitions", col, e);
        Ok(ScheduledTransition {
            id: m.id,
            tenant_id: m.tenant_id.into(),
            customer_id: m.customer_id.map(Into::into),
            sim_id: m.sim_id.into(),
            iccid: Iccid::parse(&m.iccid).map_err(|e| bad("iccid", e))?,
            target: SimState::parse(&m.target_state).map_err(|e| bad("target_state", e))?,
            effective_at: m.effective_at,
            status: ScheduleStatus::parse(&m.status).map_err(|e| bad("status", e))?,
            requested_by: m.requested_by,
            requested_by_user: m.requested_by_user.map(Into::into),
            note: m.note,
            created_at: m.created_at,
            finished_at: m.finished_at,
            outcome: m.outcome,
        })
    }
}

impl TryFrom<label_suggestion::Model> for LabelSuggestion {
    type Error = Error;
    fn try_from(m: label_suggestion::Model) -> Result<Self> {
        Ok(LabelSuggestion {
            key: m.key,
            values: serde_json::from_value(m.suggested)
                .map_err(|e| corrupt("label_suggestions", "suggested", Error::Internal(e.to_string())))?,
            description: m.description,
        })
    }
}

/// Labels as stored: a JSON object of strings (SQLite hands back the text form).
pub(crate) fn labels(v: serde_json::Value) -> Result<Labels> {
    let v = match v {
        serde_json::Value::String(s) => {
            serde_json::from_str(&s).map_err(|e| Error::Internal(e.to_string()))?
        }
        other => other,
    };
    serde_json::from_value(v).map_err(|e| Error::Internal(e.to_string()))
}

/// Converts every row, failing on the first that does not parse.
pub fn all<M, T: TryFrom<M, Error = Error>>(rows: Vec<M>) -> Result<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}
