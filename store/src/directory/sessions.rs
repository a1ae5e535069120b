//! Sign-in sessions and the rotation of their refresh tokens.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use ioto_domain::account::{
    NewSession, Refreshed, SessionEnd, SessionId, UserSession, MAX_OPEN_SESSIONS_PER_USER,
};
use ioto_domain::ports::SessionStore;
use ioto_domain::{CustomerId, Error, Result, Scope, TenantId, UserId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, Select, Set,
};
use uuid::Uuid;

use super::SqlDirectory;
use crate::convert::corrupt;
use crate::entities::{refresh_token, user_session};
use crate::error::db;
use crate::pool::{admit, commit_or_roll_back};

fn sessions_in(scope: Scope) -> Select<user_session::Entity> {
    let mut q = user_session::Entity::find();
    if let Some(t) = scope.tenant_id() {
        q = q.filter(user_session::Column::TenantId.eq(t.0));
    }
    if let Some(c) = scope.customer_id() {
        q = q.filter(user_session::Column::CustomerId.eq(c.0));
    }
    q
}

impl TryFrom<user_session::Model> for UserSession {
    type Error = Error;
    fn try_from(m: user_session::Model) -> Result<Self> {
        Ok(UserSession {
            id: m.id.into(),
            tenant_id: m.tenant_id.into(),
            user_id: m.user_id.into(),
            customer_id: m.customer_id.map(Into::into),
            created_at: m.created_at,
            refreshed_at: m.refreshed_at,
            expires_at: m.expires_at,
            client_address: m.client_address,
            user_agent: m.user_agent,
            ended_at: m.ended_at,
            end_reason: m
                .end_reason
                .as_deref()
                .map(SessionEnd::parse)
                .transpose()
                .map_err(|e| corrupt("user_sessions", "end_reason", e))?,
        })
    }
}

fn token_row(
    hash: &str,
    session: SessionId,
    tenant: TenantId,
    customer: Option<CustomerId>,
    at: DateTime<Utc>,
) -> refresh_token::ActiveModel {
    refresh_token::ActiveModel {
        token_hash: Set(hash.to_owned()),
        session_id: Set(session.0),
        tenant_id: Set(tenant.0),
        customer_id: Set(customer.map(|c| c.0)),
        issued_at: Set(at),
        used_at: Set(None),
    }
}

#[derive(FromQueryResult)]
struct Owner {
    session_id: Uuid,
    tenant_id: Uuid,
    customer_id: Option<Uuid>,
}

impl SqlDirectory {
    /// Ends the sessions `q` selects that are still open, with `reason` at `at`.
    async fn end_where(
        &self,
        txn: &DatabaseTransaction,
        q: sea_orm::UpdateMany<user_session::Entity>,
        reason: SessionEnd,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        q.col_expr(user_session::Column::EndedAt, Expr::value(at))
            .col_expr(user_session::Column::EndReason, Expr::value(reason.as_str()))
            .filter(user_session::Column::EndedAt.is_null())
            .exec(txn)
            .await
            .map(|r| r.rows_affected)
            .map_err(db)
    }

    /// Which session (and tenant) a refresh token belongs to, before any tenant is known.
    async fn refresh_owner(&self, hash: &str) -> Result<Option<Owner>> {
        if self.backend() == DbBackend::Postgres {
            self.definer_lookup(
                "SELECT session_id, tenant_id, customer_id FROM ioto_refresh_lookup($1)",
                hash,
            )
            .await
        } else {
            Ok(refresh_token::Entity::find_by_id(hash.to_owned())
                .one(&self.db)
                .await
                .map_err(db)?
                .map(|t| Owner {
                    session_id: t.session_id,
                    tenant_id: t.tenant_id,
                    customer_id: t.customer_id,
                }))
        }
    }
}

#[async_trait]
impl SessionStore for SqlDirectory {
    async fn start_session(&self, new: NewSession, refresh_hash: &str) -> Result<UserSession> {
        let scope = Scope::Tenant {
            tenant_id: new.tenant_id,
            customer_id: new.customer_id,
        };
        admit(scope, new.tenant_id, new.customer_id)?;
        let txn = self.begin(scope).await?;
        let written = async {
            self.write_lock(&txn).await?;
            // Past the bound, the user's oldest open sessions end.
            let open: Vec<Uuid> = sessions_in(scope)
                .select_only()
                .column(user_session::Column::Id)
                .filter(user_session::Column::UserId.eq(new.user_id.0))
                .filter(user_session::Column::EndedAt.is_null())
                .filter(user_session::Column::ExpiresAt.gt(new.at))
                .order_by_desc(user_session::Column::CreatedAt)
                .into_tuple()
                .all(&txn)
                .await
                .map_err(db)?;
            let keep = usize::try_from(MAX_OPEN_SESSIONS_PER_USER - 1).unwrap_or(usize::MAX);
            if open.len() > keep {
                let oldest = open[keep..].to_vec();
                self.end_where(
                    &txn,
                    user_session::Entity::update_many().filter(user_session::Column::Id.is_in(oldest)),
                    SessionEnd::Replaced,
                    new.at,
                )
                .await?;
            }
            // Sessions over for a month are forgotten with their tokens.
            let month_ago = new.at - Duration::days(30);
            user_session::Entity::delete_many()
                .filter(user_session::Column::UserId.eq(new.user_id.0))
                .filter(user_session::Column::ExpiresAt.lt(month_ago))
                .exec(&txn)
                .await
                .map_err(db)?;
            let row = user_session::ActiveModel {
                id: Set(new.id.0),
                tenant_id: Set(new.tenant_id.0),
                user_id: Set(new.user_id.0),
                customer_id: Set(new.customer_id.map(|c| c.0)),
                created_at: Set(new.at),
                refreshed_at: Set(new.at),
                expires_at: Set(new.expires_at),
                client_address: Set(new.client_address.clone()),
                user_agent: Set(new.user_agent.clone()),
                ended_at: Set(None),
                end_reason: Set(None),
            }
            .insert(&txn)
            .await
            .map_err(db)?;
            token_row(refresh_hash, new.id, new.tenant_id, new.customer_id, new.at)
                .insert(&txn)
                .await
                .map_err(db)?;
            UserSession::try_from(row)
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        at: DateTime<Utc>,
        idle: Duration,
        client_address: Option<String>,
    ) -> Result<Refreshed> {
        let Some(owner) = self.refresh_owner(old_hash).await? else {
            return Ok(Refreshed::Unknown);
        };
        let scope = Scope::Tenant {
            tenant_id: owner.tenant_id.into(),
            customer_id: owner.customer_id.map(Into::into),
        };
        let postgres = self.backend() == DbBackend::Postgres;
        let txn = self.begin(scope).await?;
        let written = async {
            self.write_lock(&txn).await?;
            let mut q = sessions_in(scope).filter(user_session::Column::Id.eq(owner.session_id));
            if postgres {
                q = q.lock_exclusive();
            }
            let Some(row) = q.one(&txn).await.map_err(db)? else {
                return Ok(Refreshed::Unknown);
            };
            let session = UserSession::try_from(row.clone())?;
            let mut tq = refresh_token::Entity::find_by_id(old_hash.to_owned());
            if postgres {
                tq = tq.lock_exclusive();
            }
            let Some(token) = tq.one(&txn).await.map_err(db)? else {
                return Ok(Refreshed::Unknown);
            };
            if token.used_at.is_some() {
                // Presented twice: whoever holds the other copy loses the session too.
                if session.ended_at.is_none() {
                    self.end_where(
                        &txn,
                        user_session::Entity::update_many()
                            .filter(user_session::Column::Id.eq(owner.session_id)),
                        SessionEnd::RefreshReused,
                        at,
                    )
                    .await?;
                    let ended = sessions_in(scope)
                        .filter(user_session::Column::Id.eq(owner.session_id))
                        .one(&txn)
                        .await
                        .map_err(db)?
                        .ok_or_else(|| Error::Internal("a session vanished while it was ended".into()))?;
                    return Ok(Refreshed::Reused(ended.try_into()?));
                }
                return Ok(Refreshed::Reused(session));
            }
            if session.check(at, idle).is_err() {
                return Ok(Refreshed::Over(session));
            }
            let mut used: refresh_token::ActiveModel = token.into();
            used.used_at = Set(Some(at));
            used.update(&txn).await.map_err(db)?;
            // Used tokens are kept to notice a replay; past the idle time the session would have
            // ended without refreshes anyway, and older ones go.
            refresh_token::Entity::delete_many()
                .filter(refresh_token::Column::SessionId.eq(owner.session_id))
                .filter(refresh_token::Column::UsedAt.lt(at - idle))
                .exec(&txn)
                .await
                .map_err(db)?;
            token_row(new_hash, session.id, session.tenant_id, session.customer_id, at)
                .insert(&txn)
                .await
                .map_err(db)?;
            let mut active: user_session::ActiveModel = row.into();
            active.refreshed_at = Set(at);
            if client_address.is_some() {
                active.client_address = Set(client_address);
            }
            let refreshed = active.update(&txn).await.map_err(db)?;
            Ok(Refreshed::Rotated(refreshed.try_into()?))
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn session(&self, scope: Scope, id: SessionId) -> Result<Option<UserSession>> {
        self.read_one(
            scope,
            sessions_in(scope).filter(user_session::Column::Id.eq(id.0)),
        )
        .await
    }

    async fn list_sessions(
        &self,
        scope: Scope,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserSession>> {
        let q = sessions_in(scope)
            .filter(user_session::Column::UserId.eq(user.0))
            .filter(user_session::Column::EndedAt.is_null())
            .filter(user_session::Column::ExpiresAt.gt(now))
            .order_by_desc(user_session::Column::RefreshedAt)
            .order_by_desc(user_session::Column::Id)
            .limit(MAX_OPEN_SESSIONS_PER_USER);
        self.read_all(scope, q).await
    }

    async fn end_session(
        &self,
        scope: Scope,
        user: UserId,
        id: SessionId,
        reason: SessionEnd,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let txn = self.begin(scope).await?;
        let mut q = user_session::Entity::update_many()
            .filter(user_session::Column::Id.eq(id.0))
            .filter(user_session::Column::UserId.eq(user.0));
        if let Some(t) = scope.tenant_id() {
            q = q.filter(user_session::Column::TenantId.eq(t.0));
        }
        let ended = self.end_where(&txn, q, reason, at).await.map(|n| n > 0);
        commit_or_roll_back(txn, ended).await
    }

    async fn end_user_sessions(
        &self,
        scope: Scope,
        user: UserId,
        except: Option<SessionId>,
        reason: SessionEnd,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let txn = self.begin(scope).await?;
        let mut q = user_session::Entity::update_many().filter(user_session::Column::UserId.eq(user.0));
        if let Some(t) = scope.tenant_id() {
            q = q.filter(user_session::Column::TenantId.eq(t.0));
        }
        if let Some(keep) = except {
            q = q.filter(user_session::Column::Id.ne(keep.0));
        }
        let ended = self.end_where(&txn, q, reason, at).await;
        commit_or_roll_back(txn, ended).await
    }
}
