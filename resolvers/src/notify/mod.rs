//! Notifications (in-app list, read marks, subscription) and the tenant's webhook endpoints
//! with their deliveries.

mod mutation;
mod query;
mod subscription;

pub(crate) use self::mutation::NotifyMutation;
pub(crate) use self::query::NotifyQuery;
pub(crate) use self::subscription::NotifySubscription;

use async_graphql::{Context, InputObject, Json, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ioto_app::fleet::CreatedEndpoint;
use ioto_domain::notify::{Delivery, Notification, NotificationKind, WebhookEndpoint};
use ioto_domain::Error;
use uuid::Uuid;

use crate::bulk::BulkJobObject;
use crate::context::{actor, services};
use crate::enums::{DeliveryChannelKind, DeliveryStatusKind, NotificationKindGql};
use crate::error::GqlResult;
use crate::fleet::PageInfo;
use crate::to_gql;

/// Deliveries listed per endpoint at most.
const MAX_DELIVERIES: u64 = 100;

fn uuid_of(id: &ID, field: &str, what: &str) -> async_graphql::Result<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| to_gql(Error::invalid(field, format!("is not a {what} id"))))
}

pub struct NotificationObject(pub Notification);

/// Something the caller was waiting for happened (a bulk job ended).
#[Object(name = "Notification")]
impl NotificationObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> NotificationKindGql {
        self.0.kind.into()
    }
    /// One line, e.g. "Bulk job 'march.csv' completed".
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// One plain-language paragraph.
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// The id of what it is about (the bulk job).
    async fn subject_id(&self) -> ID {
        ID(self.0.subject_id.to_string())
    }
    /// The facts, as webhooks carry them in `data`.
    async fn data(&self) -> Json<serde_json::Value> {
        Json(self.0.payload.clone())
    }
    /// The bulk job, as it is now (for `BULK_JOB_FINISHED`).
    #[graphql(complexity = "crate::limits::backend_call(child_complexity)")]
    async fn bulk_job(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<BulkJobObject>> {
        if self.0.kind != NotificationKind::BulkJobFinished {
            return Ok(None);
        }
        Ok(services(ctx)
            .fleet
            .bulk_job(actor(ctx)?, self.0.subject_id)
            .await
            .gql()?
            .map(BulkJobObject))
    }
    /// Whether it is for the caller alone (false: for the tenant's fleet managers).
    async fn personal(&self) -> bool {
        self.0.recipient.is_some()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }
    /// How it went out: each webhook endpoint's and the e-mail's delivery.
    #[graphql(complexity = "crate::limits::page_cost(None, 10, child_complexity)")]
    async fn deliveries(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<DeliveryObject>> {
        Ok(services(ctx)
            .fleet
            .notification_deliveries(actor(ctx)?, &self.0)
            .await
            .gql()?
            .into_iter()
            .map(DeliveryObject)
            .collect())
    }
}

pub struct DeliveryObject(pub Delivery);

/// One notification sent one way, with its attempts so far.
#[Object(name = "NotificationDelivery")]
impl DeliveryObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn notification_id(&self) -> ID {
        ID(self.0.notification_id.to_string())
    }
    async fn channel(&self) -> DeliveryChannelKind {
        self.0.channel.into()
    }
    /// The endpoint's URL or the e-mail address.
    async fn target(&self) -> &str {
        &self.0.target
    }
    async fn status(&self) -> DeliveryStatusKind {
        self.0.status.into()
    }
    async fn attempts(&self) -> i32 {
        i32::try_from(self.0.attempts).unwrap_or(i32::MAX)
    }
    /// When it is tried again (pending deliveries).
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_attempt_at
    }
    /// Why the last attempt failed.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// The HTTP status of the endpoint's last answer (webhooks).
    async fn response_status(&self) -> Option<i32> {
        self.0.response_status.map(i32::from)
    }
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

pub struct WebhookEndpointObject(pub WebhookEndpoint);

/// A URL of the tenant's that receives its notifications as signed POSTs (Standard Webhooks:
/// `webhook-id`, `webhook-timestamp`, `webhook-signature` headers).
#[Object(name = "WebhookEndpoint")]
impl WebhookEndpointObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn url(&self) -> &str {
        &self.0.url
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Disabled endpoints get no deliveries.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Its latest deliveries, newest first (at most 100).
    #[graphql(complexity = "crate::limits::page_cost(first.map(|f| f.min(100)), 20, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many (default 20, at most 100).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<DeliveryObject>> {
        let first = first.unwrap_or(20);
        if !(1..=MAX_DELIVERIES as i32).contains(&first) {
            return Err(to_gql(Error::invalid(
                "first",
                format!("{first}; between 1 and {MAX_DELIVERIES}"),
            )));
        }
        Ok(services(ctx)
            .fleet
            .webhook_deliveries(actor(ctx)?, self.0.id, first as u64)
            .await
            .gql()?
            .into_iter()
            .map(DeliveryObject)
            .collect())
    }
}

/// A new endpoint and its signing secret.
#[derive(SimpleObject)]
pub struct CreatedWebhookEndpoint {
    pub endpoint: WebhookEndpointObject,
    /// The HMAC-SHA256 key (`whsec_…`, base64 after the prefix). Shown this once: keep it where
    /// the receiver checks signatures.
    pub secret: String,
}

impl From<CreatedEndpoint> for CreatedWebhookEndpoint {
    fn from(c: CreatedEndpoint) -> Self {
        Self {
            endpoint: WebhookEndpointObject(c.endpoint),
            secret: c.secret,
        }
    }
}

#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// A platform admin names the tenant; everyone else adds to their own.
    pub tenant_id: Option<ID>,
    /// `https://…` (plain `http` only to loopback where the server allows it); no credentials,
    /// no fragment, not a private or reserved address unless the server allows it.
    pub url: String,
    /// At most 200 characters.
    pub description: Option<String>,
}

/// A page of notifications, with how many are unread in all.
#[derive(SimpleObject)]
pub struct NotificationConnection {
    pub nodes: Vec<NotificationObject>,
    pub page_info: PageInfo,
    /// Unread notifications of the caller (all pages).
    pub unread_count: i32,
}
