//! Notifications for their users, webhook endpoints for tenant admins, and what the delivery
//! workers need (see [`ioto_domain::notify`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::FleetService;
use ioto_domain::events::{FleetEvent, NotificationCreated};
use ioto_domain::fleet::bulk::BulkJob;
use ioto_domain::notify::{
    new_webhook_secret, Delivery, DeliveryAttempt, DeliveryQuery, DueDelivery, Notification,
    NotificationQuery, WebhookEndpoint,
};
use ioto_domain::{Actor, Error, Permission, Result, Scope, TenantId};

/// Webhook endpoints a tenant may have.
pub const MAX_WEBHOOK_ENDPOINTS: usize = 10;
/// Longest endpoint description.
pub const MAX_DESCRIPTION_LEN: usize = 200;

/// A new endpoint and its signing secret (shown this once).
#[derive(Debug, Clone)]
pub struct CreatedEndpoint {
    pub endpoint: WebhookEndpoint,
    pub secret: String,
}

impl FleetService {
    /// What the caller's notification lists show: their own, and their tenant's tenant-wide ones
    /// when they manage the fleet.
    fn notification_query(actor: &Actor) -> NotificationQuery {
        NotificationQuery {
            recipient: actor.user_id,
            tenant_wide: actor
                .role
                .allows(Permission::ManageFleet)
                .then_some(actor.tenant_id),
            ..NotificationQuery::default()
        }
    }

    /// The caller's notifications, newest first (`before`: the cursor of the last one seen).
    pub async fn notifications(
        &self,
        actor: &Actor,
        unread_only: bool,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u64,
    ) -> Result<Vec<Notification>> {
        let query = NotificationQuery {
            unread_only,
            before,
            limit,
            ..Self::notification_query(actor)
        };
        self.notes.notifications(actor.scope(), &query).await
    }

    pub async fn unread_notifications(&self, actor: &Actor) -> Result<u64> {
        self.notes
            .unread_notifications(actor.scope(), &Self::notification_query(actor))
            .await
    }

    /// Marks the caller's notifications read (all of them when `ids` is `None`); others' ids are
    /// ignored. Returns how many changed.
    pub async fn mark_notifications_read(&self, actor: &Actor, ids: Option<&[Uuid]>) -> Result<u64> {
        self.notes
            .mark_notifications_read(actor.scope(), &Self::notification_query(actor), ids, Utc::now())
            .await
    }

    /// Whether the caller's notification list shows `n`.
    pub fn sees_notification(actor: &Actor, n: &NotificationCreated) -> bool {
        let q = Self::notification_query(actor);
        // What speaks only by e-mail or webhook is not in the inbox.
        let mine = q.recipient.is_some() && n.recipient == q.recipient;
        let tenants = n.recipient.is_none() && q.tenant_wide == Some(n.tenant_id);
        n.in_app && (mine || tenants)
    }

    /// After a job ended: the notification written with its end goes to subscribers and the
    /// delivery workers are woken. Never fails the caller (the outbox row is already committed).
    pub(crate) async fn job_ended(&self, job: &BulkJob) {
        if !job.notify || !job.status.is_final() {
            return;
        }
        match self.notes.notification_about(Scope::Platform, job.id).await {
            Ok(Some(n)) => {
                self.notifier
                    .publish(FleetEvent::Notification(NotificationCreated::of(&n)));
                self.delivery_wakeup.notify_one();
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(job = %job.id, error = %e, "reading a job's notification failed"),
        }
    }

    pub fn delivery_wakeup(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.delivery_wakeup)
    }

    pub async fn webhook_endpoints(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
    ) -> Result<Vec<WebhookEndpoint>> {
        actor.require(Permission::ManageWebhooks, "see webhook endpoints")?;
        let tenant = actor.target_tenant(tenant)?;
        self.notes.webhook_endpoints(actor.scope(), tenant).await
    }

    /// Adds an endpoint: `https` (see [`ioto_domain::notify::AddressPolicy::check_url`]), at most
    /// [`MAX_WEBHOOK_ENDPOINTS`] per tenant. The secret is returned this once.
    pub async fn create_webhook_endpoint(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        url: &str,
        description: Option<&str>,
    ) -> Result<CreatedEndpoint> {
        actor.require(Permission::ManageWebhooks, "add webhook endpoints")?;
        let tenant = actor.target_tenant(tenant)?;
        let url = self.webhook_policy.check_url(url)?;
        let description = match description.map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) if d.chars().count() > MAX_DESCRIPTION_LEN => {
                return Err(Error::invalid(
                    "description",
                    format!("at most {MAX_DESCRIPTION_LEN} characters"),
                ))
            }
            Some(d) if d.chars().any(char::is_control) => {
                return Err(Error::invalid(
                    "description",
                    "one line of text, without control characters",
                ))
            }
            d => d.map(str::to_owned),
        };
        let existing = self.notes.webhook_endpoints(actor.scope(), tenant).await?;
        if existing.len() >= MAX_WEBHOOK_ENDPOINTS {
            return Err(Error::invalid(
                "url",
                format!("the tenant has {MAX_WEBHOOK_ENDPOINTS} webhook endpoints, the most allowed; remove one first"),
            ));
        }
        let endpoint = WebhookEndpoint {
            id: Uuid::new_v4(),
            tenant_id: tenant,
            url: url.to_string(),
            description,
            enabled: true,
            created_by: actor.subject.clone(),
            created_at: Utc::now(),
        };
        let secret = new_webhook_secret();
        self.notes
            .create_webhook_endpoint(actor.scope(), &endpoint, &secret)
            .await?;
        Ok(CreatedEndpoint { endpoint, secret })
    }

    pub async fn set_webhook_endpoint_enabled(
        &self,
        actor: &Actor,
        id: Uuid,
        enabled: bool,
    ) -> Result<WebhookEndpoint> {
        actor.require(Permission::ManageWebhooks, "enable or disable webhook endpoints")?;
        self.notes
            .set_webhook_endpoint_enabled(actor.scope(), id, enabled)
            .await
    }

    pub async fn delete_webhook_endpoint(&self, actor: &Actor, id: Uuid) -> Result<()> {
        actor.require(Permission::ManageWebhooks, "remove webhook endpoints")?;
        self.notes.delete_webhook_endpoint(actor.scope(), id).await
    }

    /// An endpoint's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        actor: &Actor,
        endpoint: Uuid,
        limit: u64,
    ) -> Result<Vec<Delivery>> {
        actor.require(Permission::ManageWebhooks, "see webhook deliveries")?;
        let query = DeliveryQuery {
            endpoint: Some(endpoint),
            notification: None,
            limit,
        };
        self.notes.deliveries(actor.scope(), &query).await
    }

    /// A notification's deliveries, for its reader: the e-mail, and the webhooks for those who
    /// manage them (an endpoint's URL and errors are theirs to see).
    pub async fn notification_deliveries(
        &self,
        actor: &Actor,
        notification: &Notification,
    ) -> Result<Vec<Delivery>> {
        let query = DeliveryQuery {
            endpoint: None,
            notification: Some(notification.id),
            limit: 100,
        };
        let webhooks = actor.role.allows(Permission::ManageWebhooks);
        let mut all = self.notes.deliveries(actor.scope(), &query).await?;
        all.retain(|d| webhooks || d.channel == ioto_domain::notify::DeliveryChannel::Email);
        Ok(all)
    }

    /// Fans notifications out into deliveries (see [`ioto_domain::ports::NotificationStore`]).
    pub async fn dispatch_notifications(&self, email: bool, limit: u64) -> Result<u64> {
        self.notes.dispatch_notifications(email, Utc::now(), limit).await
    }

    pub async fn claim_deliveries(
        &self,
        worker: &str,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<DueDelivery>> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60));
        self.notes.claim_deliveries(worker, now, until, limit).await
    }

    pub async fn record_delivery(&self, id: Uuid, worker: &str, attempt: &DeliveryAttempt) -> Result<()> {
        self.notes.record_delivery(id, worker, attempt).await
    }
}
