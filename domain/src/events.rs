//! Events the platform publishes on the bus, for realtime subscribers on any server instance.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::TenantId;

/// Topic carrying [`DirectoryEvent`]s.
pub const DIRECTORY_TOPIC: &str = "ioto.directory-events";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DirectoryChange {
    TenantCreated,
    TenantRenamed,
    CustomerCreated,
    CustomerUpdated,
    CustomerDeleted,
    UserCreated,
    UserRoleChanged,
    UserUpdated,
    UserDeleted,
}

/// Something changed in a tenant's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryEvent {
    pub tenant_id: TenantId,
    pub change: DirectoryChange,
    /// Id of the tenant, customer or user that changed.
    pub entity_id: Uuid,
    pub at: DateTime<Utc>,
}

impl DirectoryEvent {
    pub fn now(tenant_id: TenantId, change: DirectoryChange, entity_id: Uuid) -> Self {
        Self {
            tenant_id,
            change,
            entity_id,
            at: Utc::now(),
        }
    }
}

/// Topic carrying [`FleetEvent`]s.
pub const FLEET_TOPIC: &str = "ioto.fleet-events";

/// A SIM moved from one state to another (by a user, a coordinated operation or the scheduler).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStateChanged {
    pub tenant_id: TenantId,
    pub customer_id: Option<crate::CustomerId>,
    pub sim_id: crate::SimId,
    pub iccid: crate::Iccid,
    pub from: crate::fleet::SimState,
    pub to: crate::fleet::SimState,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// Where a bulk job stands: published after every batch of row outcomes, at least every
/// [`BULK_HEARTBEAT`] while it runs (a heartbeat: nothing may have changed), and on every status
/// change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkJobProgress {
    pub tenant_id: TenantId,
    pub job_id: Uuid,
    pub status: crate::fleet::bulk::BulkJobStatus,
    #[serde(flatten)]
    pub counts: crate::fleet::bulk::BulkCounts,
    pub eta_seconds: Option<u64>,
    pub summary: String,
    pub at: DateTime<Utc>,
}

/// Longest a running job goes without a progress event.
pub const BULK_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);

impl BulkJobProgress {
    pub fn of(job: &crate::fleet::bulk::BulkJob, at: DateTime<Utc>) -> Self {
        Self {
            tenant_id: job.tenant_id,
            job_id: job.id,
            status: job.status,
            counts: job.counts(),
            eta_seconds: job.eta(at).map(|d| d.as_secs()),
            summary: job.summary(at),
            at,
        }
    }
}

/// Fleet changes published for realtime subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum FleetEvent {
    SimStateChanged(SimStateChanged),
    BulkJobProgress(BulkJobProgress),
    Notification(NotificationCreated),
    ExportJobProgress(ExportJobProgress),
    VisibilityChanged(VisibilityChanged),
    AlertChanged(AlertChanged),
    ForecastsChanged(ForecastsChanged),
}

/// What the forecast pass stored for a tenant changed (a pass over it finished), or people
/// decided about one of its anomalies: the rules on forecasts and anomalies are evaluated again
/// at the next tick rather than within the minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForecastsChanged {
    pub tenant_id: TenantId,
    pub at: DateTime<Utc>,
}

/// An alert opened, fired, changed or resolved (for the `alerts` subscription, which reads the
/// alert itself: what the caller may see of it is decided then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertChanged {
    pub tenant_id: TenantId,
    pub customer_id: Option<crate::CustomerId>,
    pub alert_id: Uuid,
    pub rule_id: Uuid,
    /// `PENDING`, `FIRING` or `RESOLVED`.
    pub state: String,
    pub at: DateTime<Utc>,
}

impl AlertChanged {
    pub fn of(a: &crate::alert::lifecycle::Alert) -> Self {
        Self {
            tenant_id: a.tenant_id,
            customer_id: a.customer_id,
            alert_id: a.id,
            rule_id: a.rule_id,
            state: a.state.as_str().to_owned(),
            at: a.updated_at,
        }
    }
}

/// Who may see what in a tenant changed: SIMs or devices moved between sub-customers, or the
/// tenant's fleet settings (what customers see) changed. Open subscriptions of the tenant check
/// again whether their caller still sees what they stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VisibilityChanged {
    pub tenant_id: TenantId,
    pub at: DateTime<Utc>,
}

/// Where an export job stands: on every change of status and after every written batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportJobProgress {
    pub tenant_id: TenantId,
    pub job_id: Uuid,
    pub status: crate::export::ExportStatus,
    pub rows: u64,
    pub bytes: u64,
    pub expected_rows: Option<u64>,
    pub eta_seconds: Option<u64>,
    pub at: DateTime<Utc>,
}

impl ExportJobProgress {
    pub fn of(job: &crate::export::ExportJob, at: DateTime<Utc>) -> Self {
        Self {
            tenant_id: job.tenant_id,
            job_id: job.id,
            status: job.status,
            rows: job.rows,
            bytes: job.bytes,
            expected_rows: job.expected_rows,
            eta_seconds: job.eta_seconds(at),
            at,
        }
    }
}

/// A notification was written (for the `notifications` subscription).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationCreated {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub recipient: Option<crate::UserId>,
    pub kind: String,
    pub subject_id: Uuid,
    pub title: String,
    pub body: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// Shown in the inbox (an alert rule may speak only by e-mail or webhook).
    #[serde(default = "yes")]
    pub in_app: bool,
}

fn yes() -> bool {
    true
}

impl NotificationCreated {
    pub fn of(n: &crate::notify::Notification) -> Self {
        Self {
            tenant_id: n.tenant_id,
            id: n.id,
            recipient: n.recipient,
            kind: n.kind.as_str().to_owned(),
            subject_id: n.subject_id,
            title: n.title.clone(),
            body: n.body.clone(),
            payload: n.payload.clone(),
            created_at: n.created_at,
            in_app: n.audience.in_app,
        }
    }

    pub fn notification(&self) -> crate::Result<crate::notify::Notification> {
        Ok(crate::notify::Notification {
            id: self.id,
            tenant_id: self.tenant_id,
            recipient: self.recipient,
            kind: crate::notify::NotificationKind::parse(&self.kind)?,
            subject_id: self.subject_id,
            title: self.title.clone(),
            body: self.body.clone(),
            payload: self.payload.clone(),
            created_at: self.created_at,
            read_at: None,
            audience: crate::notify::Audience {
                in_app: self.in_app,
                ..Default::default()
            },
        })
    }
}

impl FleetEvent {
    pub fn tenant_id(&self) -> TenantId {
        match self {
            FleetEvent::SimStateChanged(e) => e.tenant_id,
            FleetEvent::BulkJobProgress(e) => e.tenant_id,
            FleetEvent::Notification(e) => e.tenant_id,
            FleetEvent::ExportJobProgress(e) => e.tenant_id,
            FleetEvent::VisibilityChanged(e) => e.tenant_id,
            FleetEvent::AlertChanged(e) => e.tenant_id,
            FleetEvent::ForecastsChanged(e) => e.tenant_id,
        }
    }

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            FleetEvent::SimStateChanged(e) => e.at,
            FleetEvent::BulkJobProgress(e) => e.at,
            FleetEvent::Notification(e) => e.created_at,
            FleetEvent::ExportJobProgress(e) => e.at,
            FleetEvent::VisibilityChanged(e) => e.at,
            FleetEvent::AlertChanged(e) => e.at,
            FleetEvent::ForecastsChanged(e) => e.at,
        }
    }
}

/// Topic carrying [`UsageEvent`]s: counted session updates and device readings, for live views.
pub const USAGE_EVENTS_TOPIC: &str = "ioto.usage-events";

/// What the ingest worker counted or stored, published after the fact for realtime subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum UsageEvent {
    /// Session updates of one batch (in the order counted).
    SessionsUpdated {
        at: DateTime<Utc>,
        updates: Vec<crate::usage::SessionUpdate>,
    },
    /// Device readings stored.
    TelemetryStored {
        at: DateTime<Utc>,
        readings: Vec<(TenantId, crate::usage::TelemetryReading)>,
    },
}

impl UsageEvent {
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            UsageEvent::SessionsUpdated { at, .. } | UsageEvent::TelemetryStored { at, .. } => *at,
        }
    }
}
