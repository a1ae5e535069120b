//! The network side of a SIM: the element (HLR/HSS) that must know a SIM's state before the
//! platform records it. Every state change the network must know, and a location update, is a
//! [`NetworkRequest`]; the database changes only after the adapter confirms it.

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::EngineInfo;
pub use crate::fleet::network_action::NetworkAction;
use crate::identifiers::{Iccid, Imsi};
use crate::TenantId;

/// One request to the network. `id` is the idempotency key: an adapter that sees an id again
/// answers what it answered the first time and does not act twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRequest {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub iccid: Iccid,
    pub imsi: Imsi,
    pub action: NetworkAction,
}

/// The network confirmed the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkReceipt {
    /// The network's own reference of the transaction.
    pub reference: String,
    /// How long the network took.
    pub latency: Duration,
}

/// The network did not do it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkFailure {
    /// Worth retrying (timeout, congestion, the element busy).
    #[error("transient network failure: {0}")]
    Transient(String),
    /// Will not succeed as asked (unknown subscriber, refused by the operator).
    #[error("the network refused: {0}")]
    Permanent(String),
}

#[async_trait]
pub trait NetworkAdapter: Send + Sync + 'static {
    fn info(&self) -> EngineInfo;
    /// Sends one request and waits for the network's answer.
    async fn send(&self, request: &NetworkRequest) -> std::result::Result<NetworkReceipt, NetworkFailure>;
}
