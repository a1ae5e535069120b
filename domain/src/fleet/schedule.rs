//! SIM transitions scheduled for later: listed and cancellable until the scheduler applies them.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::sim::SimState;
use crate::identifiers::Iccid;
use crate::{CustomerId, Error, Result, SimId, TenantId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScheduleStatus {
    /// Waiting for its time.
    Pending,
    /// Done.
    Applied,
    /// Its time came but the transition was refused (the SIM had moved on); `outcome` says why.
    Failed,
    Cancelled,
}

impl ScheduleStatus {
    pub const ALL: [ScheduleStatus; 4] = [Self::Pending, Self::Applied, Self::Failed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Applied => "APPLIED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| Error::invalid("status", format!("'{s}' is not a schedule status")))
    }
}

impl fmt::Display for ScheduleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledTransition {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub sim_id: SimId,
    pub iccid: Iccid,
    pub target: SimState,
    pub effective_at: DateTime<Utc>,
    pub status: ScheduleStatus,
    pub requested_by: String,
    pub requested_by_user: Option<UserId>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
}
