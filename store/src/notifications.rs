//! Notifications (the outbox of their deliveries), webhook endpoints and deliveries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::notify::{
    Audience, Delivery, DeliveryAttempt, DeliveryChannel, DeliveryQuery, DeliveryStatus, DueDelivery,
    Notification, NotificationKind, NotificationQuery, WebhookEndpoint,
};
use ioto_domain::ports::NotificationStore;
use ioto_domain::{Error, Result, Scope, TenantId};
use sea_orm::sea_query::{Expr, LockType};
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set,
};
use uuid::Uuid;

use crate::convert::corrupt;
use crate::entities::{notification, notification_delivery, user, webhook_endpoint};
use crate::error::db;
use crate::fleet::*;
use crate::pool::{claim_rows, commit};

impl TryFrom<notification::Model> for Notification {
    type Error = Error;
    fn try_from(m: notification::Model) -> Result<Self> {
        Ok(Notification {
            id: m.id,
            tenant_id: m.tenant_id.into(),
            recipient: m.recipient.map(Into::into),
            kind: NotificationKind::parse(&m.kind).map_err(|e| corrupt("notifications", "kind", e))?,
            subject_id: m.subject_id,
            title: m.title,
            body: m.body,
            payload: m.payload,
            created_at: m.created_at,
            read_at: m.read_at,
            audience: Audience {
                in_app: m.in_app,
                webhook: m.webhook,
                emails: split_emails(&m.email_to),
            },
        })
    }
}

/// The addresses of a comma-separated list ('' for none).
pub(crate) fn split_emails(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

impl TryFrom<webhook_endpoint::Model> for WebhookEndpoint {
    type Error = Error;
    fn try_from(m: webhook_endpoint::Model) -> Result<Self> {
        Ok(WebhookEndpoint {
            id: m.id,
            tenant_id: m.tenant_id.into(),
            url: m.url,
            description: m.description,
            enabled: m.enabled,
            created_by: m.created_by,
            created_at: m.created_at,
        })
    }
}

impl TryFrom<notification_delivery::Model> for Delivery {
    type Error = Error;
    fn try_from(m: notification_delivery::Model) -> Result<Self> {
        let bad = |col: &str, e: Error| corrupt("notification_deliveries", col, e);
        Ok(Delivery {
            id: m.id,
            tenant_id: m.tenant_id.into(),
            notification_id: m.notification_id,
            channel: DeliveryChannel::parse(&m.channel).map_err(|e| bad("channel", e))?,
            endpoint_id: m.endpoint_id,
            target: m.target,
            status: DeliveryStatus::parse(&m.status).map_err(|e| bad("status", e))?,
            attempts: u32::try_from(m.attempts).unwrap_or(0),
            next_attempt_at: m.next_attempt_at,
            last_error: m.last_error,
            response_status: m.response_status.and_then(|s| u16::try_from(s).ok()),
            delivered_at: m.delivered_at,
            created_at: m.created_at,
        })
    }
}

/// Writes a notification inside the transaction of the change it tells of.
pub(crate) async fn insert_notification(txn: &DatabaseTransaction, n: &Notification) -> Result<()> {
    notification::Entity::insert(notification::ActiveModel {
        id: Set(n.id),
        tenant_id: Set(n.tenant_id.0),
        recipient: Set(n.recipient.map(|u| u.0)),
        kind: Set(n.kind.as_str().to_owned()),
        subject_id: Set(n.subject_id),
        title: Set(n.title.clone()),
        body: Set(n.body.clone()),
        payload: Set(n.payload.clone()),
        created_at: Set(n.created_at),
        read_at: Set(None),
        dispatched_at: Set(None),
        in_app: Set(n.audience.in_app),
        webhook: Set(n.audience.webhook),
        email_to: Set(n.audience.emails.join(",")),
    })
    .exec_without_returning(txn)
    .await
    .map_err(db)?;
    Ok(())
}

/// The notifications a query shows, in the scope (SQLite has no row-level security).
fn notifications_in(scope: Scope, query: &NotificationQuery) -> sea_orm::Select<notification::Entity> {
    // What speaks only by e-mail or webhook is not in the inbox.
    let mut q = notification::Entity::find().filter(notification::Column::InApp.eq(true));
    if let Some(t) = scope.tenant_id() {
        q = q.filter(notification::Column::TenantId.eq(t.0));
    }
    let mut whose = Condition::any();
    if let Some(u) = query.recipient {
        whose = whose.add(notification::Column::Recipient.eq(u.0));
    }
    if let Some(t) = query.tenant_wide {
        whose = whose.add(
            Condition::all()
                .add(notification::Column::Recipient.is_null())
                .add(notification::Column::TenantId.eq(t.0)),
        );
    }
    if query.recipient.is_none() && query.tenant_wide.is_none() {
        // Nobody's: an empty list, not everyone's.
        whose = whose.add(Expr::cust("1 = 0"));
    }
    q = q.filter(whose);
    if query.unread_only {
        q = q.filter(notification::Column::ReadAt.is_null());
    }
    q
}

fn endpoints_in(scope: Scope) -> sea_orm::Select<webhook_endpoint::Entity> {
    let mut q = webhook_endpoint::Entity::find();
    if let Some(t) = scope.tenant_id() {
        q = q.filter(webhook_endpoint::Column::TenantId.eq(t.0));
    }
    q
}

impl SqlFleet {
    async fn locked_endpoint(
        &self,
        txn: &DatabaseTransaction,
        scope: Scope,
        id: Uuid,
    ) -> Result<webhook_endpoint::Model> {
        self.write_lock(txn).await?;
        let mut q = endpoints_in(scope)
            .filter(webhook_endpoint::Column::Id.eq(id))
            .into_query();
        if self.backend() == DbBackend::Postgres {
            q.lock(LockType::Update);
        }
        webhook_endpoint::Model::find_by_statement(self.backend().build(&q))
            .one(txn)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("webhook endpoint", id))
    }
}

#[async_trait]
impl NotificationStore for SqlFleet {
    async fn notifications(&self, scope: Scope, query: &NotificationQuery) -> Result<Vec<Notification>> {
        let mut q = notifications_in(scope, query);
        if let Some((at, id)) = query.before {
            q = q.filter(
                Condition::any().add(notification::Column::CreatedAt.lt(at)).add(
                    Condition::all()
                        .add(notification::Column::CreatedAt.eq(at))
                        .add(notification::Column::Id.lt(id)),
                ),
            );
        }
        let q = q
            .order_by_desc(notification::Column::CreatedAt)
            .order_by_desc(notification::Column::Id)
            .limit(query.limit);
        self.read_all(scope, q).await
    }

    async fn unread_notifications(&self, scope: Scope, query: &NotificationQuery) -> Result<u64> {
        let query = NotificationQuery {
            unread_only: true,
            ..query.clone()
        };
        let q = notifications_in(scope, &query)
            .select_only()
            .column_as(notification::Column::Id.count(), "n")
            .into_tuple::<i64>();
        let txn = self.begin(scope).await?;
        let n = q.one(&txn).await.map_err(db)?.unwrap_or(0);
        commit(txn).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn mark_notifications_read(
        &self,
        scope: Scope,
        query: &NotificationQuery,
        ids: Option<&[Uuid]>,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let query = NotificationQuery {
            unread_only: true,
            ..query.clone()
        };
        let mut select = notifications_in(scope, &query)
            .select_only()
            .column(notification::Column::Id);
        if let Some(ids) = ids {
            if ids.is_empty() {
                return Ok(0);
            }
            select = select.filter(notification::Column::Id.is_in(ids.iter().copied()));
        }
        let txn = self.begin(scope).await?;
        let result = notification::Entity::update_many()
            .col_expr(notification::Column::ReadAt, Expr::value(at))
            .filter(notification::Column::Id.in_subquery(select.into_query()))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        Ok(result.rows_affected)
    }

    async fn notification_about(&self, scope: Scope, subject: Uuid) -> Result<Option<Notification>> {
        let mut q = notification::Entity::find().filter(notification::Column::SubjectId.eq(subject));
        if let Some(t) = scope.tenant_id() {
            q = q.filter(notification::Column::TenantId.eq(t.0));
        }
        self.read_one(scope, q.order_by_desc(notification::Column::CreatedAt))
            .await
    }

    async fn webhook_endpoints(&self, scope: Scope, tenant: TenantId) -> Result<Vec<WebhookEndpoint>> {
        tenant_in_scope(scope, tenant)?;
        let q = endpoints_in(scope)
            .filter(webhook_endpoint::Column::TenantId.eq(tenant.0))
            .order_by_asc(webhook_endpoint::Column::CreatedAt)
            .order_by_asc(webhook_endpoint::Column::Id);
        self.read_all(scope, q).await
    }

    async fn create_webhook_endpoint(&self, scope: Scope, e: &WebhookEndpoint, secret: &str) -> Result<()> {
        tenant_in_scope(scope, e.tenant_id)?;
        let txn = self.begin(scope).await?;
        webhook_endpoint::Entity::insert(webhook_endpoint::ActiveModel {
            id: Set(e.id),
            tenant_id: Set(e.tenant_id.0),
            url: Set(e.url.clone()),
            secret: Set(secret.to_owned()),
            description: Set(e.description.clone()),
            enabled: Set(e.enabled),
            created_by: Set(e.created_by.clone()),
            created_at: Set(e.created_at),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(db)?;
        commit(txn).await
    }

    async fn set_webhook_endpoint_enabled(
        &self,
        scope: Scope,
        id: Uuid,
        enabled: bool,
    ) -> Result<WebhookEndpoint> {
        let txn = self.begin(scope).await?;
        let mut row = self.locked_endpoint(&txn, scope, id).await?;
        webhook_endpoint::Entity::update_many()
            .col_expr(webhook_endpoint::Column::Enabled, Expr::value(enabled))
            .filter(webhook_endpoint::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db)?;
        if !enabled {
            // Pending deliveries stop; they are not sent when the endpoint comes back.
            notification_delivery::Entity::update_many()
                .col_expr(
                    notification_delivery::Column::Status,
                    Expr::value(DeliveryStatus::Failed.as_str()),
                )
                .col_expr(
                    notification_delivery::Column::LastError,
                    Expr::value("the endpoint was disabled"),
                )
                .col_expr(
                    notification_delivery::Column::NextAttemptAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .filter(notification_delivery::Column::EndpointId.eq(id))
                .filter(notification_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
                .exec(&txn)
                .await
                .map_err(db)?;
        }
        commit(txn).await?;
        row.enabled = enabled;
        WebhookEndpoint::try_from(row)
    }

    async fn delete_webhook_endpoint(&self, scope: Scope, id: Uuid) -> Result<()> {
        let txn = self.begin(scope).await?;
        self.locked_endpoint(&txn, scope, id).await?;
        // SQLite enforces foreign keys only when asked: the deliveries go explicitly.
        notification_delivery::Entity::delete_many()
            .filter(notification_delivery::Column::EndpointId.eq(id))
            .exec(&txn)
            .await
            .map_err(db)?;
        webhook_endpoint::Entity::delete_by_id(id)
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }

    async fn deliveries(&self, scope: Scope, query: &DeliveryQuery) -> Result<Vec<Delivery>> {
        let mut q = notification_delivery::Entity::find();
        if let Some(t) = scope.tenant_id() {
            q = q.filter(notification_delivery::Column::TenantId.eq(t.0));
        }
        if let Some(e) = query.endpoint {
            q = q.filter(notification_delivery::Column::EndpointId.eq(e));
        }
        if let Some(n) = query.notification {
            q = q.filter(notification_delivery::Column::NotificationId.eq(n));
        }
        let q = q
            .order_by_desc(notification_delivery::Column::CreatedAt)
            .order_by_asc(notification_delivery::Column::Id)
            .limit(query.limit);
        self.read_all(scope, q).await
    }

    async fn dispatch_notifications(&self, email: bool, now: DateTime<Utc>, limit: u64) -> Result<u64> {
        // An idle poll only reads (see `claim_bulk_jobs`).
        let probe = notification::Entity::find().filter(notification::Column::DispatchedAt.is_null());
        if self
            .read_one::<_, Notification>(Scope::Platform, probe)
            .await?
            .is_none()
        {
            return Ok(0);
        }
        let txn = self.begin(Scope::Platform).await?;
        self.write_lock(&txn).await?;
        let select = notification::Entity::find()
            .filter(notification::Column::DispatchedAt.is_null())
            .order_by_asc(notification::Column::CreatedAt)
            .limit(limit);
        let due = claim_rows(&txn, select).await?;
        if due.is_empty() {
            commit(txn).await?;
            return Ok(0);
        }
        let tenants: Vec<Uuid> = due.iter().map(|n| n.tenant_id).collect();
        let endpoints = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::TenantId.is_in(tenants))
            .filter(webhook_endpoint::Column::Enabled.eq(true))
            .all(&txn)
            .await
            .map_err(db)?;
        let recipients: Vec<Uuid> = due.iter().filter_map(|n| n.recipient).collect();
        let emails: std::collections::HashMap<Uuid, String> = if email && !recipients.is_empty() {
            user::Entity::find()
                .filter(user::Column::Id.is_in(recipients))
                .all(&txn)
                .await
                .map_err(db)?
                .into_iter()
                .map(|u| (u.id, u.email))
                .collect()
        } else {
            Default::default()
        };
        let mut rows = Vec::new();
        for n in &due {
            let delivery = |channel: DeliveryChannel, endpoint: Option<Uuid>, target: String| {
                notification_delivery::ActiveModel {
                    id: Set(Uuid::new_v4()),
                    tenant_id: Set(n.tenant_id),
                    notification_id: Set(n.id),
                    channel: Set(channel.as_str().to_owned()),
                    endpoint_id: Set(endpoint),
                    target: Set(target),
                    status: Set(DeliveryStatus::Pending.as_str().to_owned()),
                    attempts: Set(0),
                    next_attempt_at: Set(Some(now)),
                    last_error: Set(None),
                    response_status: Set(None),
                    delivered_at: Set(None),
                    created_at: Set(now),
                    claimed_by: Set(None),
                    claimed_until: Set(None),
                }
            };
            if n.webhook {
                for e in endpoints.iter().filter(|e| e.tenant_id == n.tenant_id) {
                    rows.push(delivery(DeliveryChannel::Webhook, Some(e.id), e.url.clone()));
                }
            }
            if email {
                let mut to: Vec<String> = n
                    .recipient
                    .and_then(|r| emails.get(&r))
                    .cloned()
                    .into_iter()
                    .collect();
                for address in split_emails(&n.email_to) {
                    if !to.contains(&address) {
                        to.push(address);
                    }
                }
                for address in to {
                    rows.push(delivery(DeliveryChannel::Email, None, address));
                }
            }
        }
        if !rows.is_empty() {
            notification_delivery::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await
                .map_err(db)?;
        }
        let ids: Vec<Uuid> = due.iter().map(|n| n.id).collect();
        notification::Entity::update_many()
            .col_expr(notification::Column::DispatchedAt, Expr::value(now))
            .filter(notification::Column::Id.is_in(ids))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await?;
        Ok(due.len() as u64)
    }

    async fn claim_deliveries(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<DueDelivery>> {
        let due = || {
            Condition::all()
                .add(notification_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
                .add(notification_delivery::Column::NextAttemptAt.lte(now))
                .add(
                    Condition::any()
                        .add(notification_delivery::Column::ClaimedUntil.is_null())
                        .add(notification_delivery::Column::ClaimedUntil.lt(now)),
                )
        };
        let probe = notification_delivery::Entity::find().filter(due());
        if self
            .read_one::<_, Delivery>(Scope::Platform, probe)
            .await?
            .is_none()
        {
            return Ok(Vec::new());
        }
        let txn = self.begin(Scope::Platform).await?;
        self.write_lock(&txn).await?;
        let select = notification_delivery::Entity::find()
            .filter(due())
            .order_by_asc(notification_delivery::Column::NextAttemptAt)
            .limit(limit);
        let rows = claim_rows(&txn, select).await?;
        if rows.is_empty() {
            commit(txn).await?;
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        notification_delivery::Entity::update_many()
            .col_expr(notification_delivery::Column::ClaimedBy, Expr::value(worker))
            .col_expr(notification_delivery::Column::ClaimedUntil, Expr::value(until))
            .filter(notification_delivery::Column::Id.is_in(ids))
            .exec(&txn)
            .await
            .map_err(db)?;
        let notification_ids: Vec<Uuid> = rows.iter().map(|r| r.notification_id).collect();
        let notifications: std::collections::HashMap<Uuid, notification::Model> =
            notification::Entity::find()
                .filter(notification::Column::Id.is_in(notification_ids))
                .all(&txn)
                .await
                .map_err(db)?
                .into_iter()
                .map(|n| (n.id, n))
                .collect();
        let endpoint_ids: Vec<Uuid> = rows.iter().filter_map(|r| r.endpoint_id).collect();
        let secrets: std::collections::HashMap<Uuid, String> = if endpoint_ids.is_empty() {
            Default::default()
        } else {
            webhook_endpoint::Entity::find()
                .filter(webhook_endpoint::Column::Id.is_in(endpoint_ids))
                .all(&txn)
                .await
                .map_err(db)?
                .into_iter()
                .map(|e| (e.id, e.secret))
                .collect()
        };
        commit(txn).await?;
        rows.into_iter()
            .map(|r| {
                let notification = notifications
                    .get(&r.notification_id)
                    .cloned()
                    .ok_or_else(|| Error::not_found("notification", r.notification_id))
                    .and_then(Notification::try_from)?;
                let secret = r.endpoint_id.and_then(|e| secrets.get(&e).cloned());
                Ok(DueDelivery {
                    delivery: Delivery::try_from(r)?,
                    notification,
                    secret,
                })
            })
            .collect()
    }

    async fn record_delivery(&self, id: Uuid, worker: &str, attempt: &DeliveryAttempt) -> Result<()> {
        let txn = self.begin(Scope::Platform).await?;
        let delivered = attempt.status == DeliveryStatus::Delivered;
        notification_delivery::Entity::update_many()
            .col_expr(
                notification_delivery::Column::Status,
                Expr::value(attempt.status.as_str()),
            )
            .col_expr(
                notification_delivery::Column::Attempts,
                Expr::col(notification_delivery::Column::Attempts).add(1),
            )
            .col_expr(
                notification_delivery::Column::NextAttemptAt,
                Expr::value(attempt.next_attempt_at),
            )
            .col_expr(
                notification_delivery::Column::LastError,
                Expr::value(attempt.error.clone()),
            )
            .col_expr(
                notification_delivery::Column::ResponseStatus,
                Expr::value(attempt.response_status.map(i32::from)),
            )
            .col_expr(
                notification_delivery::Column::DeliveredAt,
                Expr::value(delivered.then_some(attempt.at)),
            )
            .col_expr(
                notification_delivery::Column::ClaimedBy,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                notification_delivery::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(notification_delivery::Column::Id.eq(id))
            .filter(notification_delivery::Column::ClaimedBy.eq(worker))
            .filter(notification_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }
}
