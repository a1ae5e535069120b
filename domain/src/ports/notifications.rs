//! Notifications: what users are told (the inbox), the webhook endpoints tenants register, and
//! the deliveries to them, each written by the store in the transaction of the change it tells of.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::notify::{
    Delivery, DeliveryAttempt, DeliveryQuery, DueDelivery, Notification, NotificationQuery, WebhookEndpoint,
};
use crate::{Result, Scope, TenantId};

/// Notifications, webhook endpoints and deliveries. A notification is written by the store in
/// the transaction of the change it tells of (a bulk job reaching its final status); workers fan
/// it out into deliveries and send them, claimed with a lease like bulk jobs.
#[async_trait]
pub trait NotificationStore: Send + Sync + 'static {
    /// The caller's notifications (and the tenant-wide ones when asked), newest first.
    async fn notifications(&self, scope: Scope, query: &NotificationQuery) -> Result<Vec<Notification>>;
    /// How many of those are unread.
    async fn unread_notifications(&self, scope: Scope, query: &NotificationQuery) -> Result<u64>;
    /// Marks the listed notifications (all of the query's when `ids` is `None`) read at `at`;
    /// returns how many changed.
    async fn mark_notifications_read(
        &self,
        scope: Scope,
        query: &NotificationQuery,
        ids: Option<&[Uuid]>,
        at: DateTime<Utc>,
    ) -> Result<u64>;
    /// The notification about `subject` (a bulk job), if one was written.
    async fn notification_about(&self, scope: Scope, subject: Uuid) -> Result<Option<Notification>>;

    async fn webhook_endpoints(&self, scope: Scope, tenant: TenantId) -> Result<Vec<WebhookEndpoint>>;
    async fn create_webhook_endpoint(
        &self,
        scope: Scope,
        endpoint: &WebhookEndpoint,
        secret: &str,
    ) -> Result<()>;
    /// Enables or disables an endpoint (disabled ones get no new deliveries; pending ones stop).
    async fn set_webhook_endpoint_enabled(
        &self,
        scope: Scope,
        id: Uuid,
        enabled: bool,
    ) -> Result<WebhookEndpoint>;
    /// Removes an endpoint with its deliveries.
    async fn delete_webhook_endpoint(&self, scope: Scope, id: Uuid) -> Result<()>;
    async fn deliveries(&self, scope: Scope, query: &DeliveryQuery) -> Result<Vec<Delivery>>;

    /// Fans up to `limit` notifications not yet dispatched out into deliveries (one per enabled
    /// endpoint of their tenant; an e-mail to the recipient when `email`), atomically. Returns
    /// how many were dispatched.
    async fn dispatch_notifications(&self, email: bool, now: DateTime<Utc>, limit: u64) -> Result<u64>;
    /// Claims up to `limit` pending deliveries due at `now` for `worker` until `until`.
    async fn claim_deliveries(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<DueDelivery>>;
    /// Records an attempt of a delivery held by `worker` (ignored when the claim was lost).
    async fn record_delivery(&self, id: Uuid, worker: &str, attempt: &DeliveryAttempt) -> Result<()>;
}
