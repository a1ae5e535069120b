//! API keys, their audit entries and the lookup by hash.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::api_key::{ApiKey, ApiKeyState, NewApiKey, MAX_LIVE_KEYS_PER_TENANT};
use ioto_domain::fleet::audit::{AuditAction, AuditStamp, EntityKind, NewAuditEntry};
use ioto_domain::fleet::query::Page;
use ioto_domain::identifiers::Name;
use ioto_domain::ports::ApiKeyStore;
use ioto_domain::{ApiKeyId, Error, Result, Role, Scope, TenantId};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect, Select, Set,
};
use serde_json::json;

use super::SqlDirectory;
use crate::convert::corrupt;
use crate::entities::{api_key, tenant};
use crate::error::{db, map};
use crate::fleet::bulk::insert_audit;
use crate::pool::{admit, commit_or_roll_back, find};

fn keys_in(scope: Scope) -> Select<api_key::Entity> {
    let q = api_key::Entity::find();
    match scope.tenant_id() {
        Some(t) => q.filter(api_key::Column::TenantId.eq(t.0)),
        None => q,
    }
}

impl TryFrom<api_key::Model> for ApiKey {
    type Error = Error;
    fn try_from(m: api_key::Model) -> Result<Self> {
        Ok(ApiKey {
            id: m.id.into(),
            tenant_id: m.tenant_id.into(),
            customer_id: m.customer_id.map(Into::into),
            name: Name::parse(&m.name, "name").map_err(|e| corrupt("api_keys", "name", e))?,
            role: Role::parse(&m.role).map_err(|e| corrupt("api_keys", "role", e))?,
            hint: m.hint,
            created_by: m.created_by.map(Into::into),
            created_at: m.created_at,
            expires_at: m.expires_at,
            last_used_at: m.last_used_at,
            last_used_address: m.last_used_address,
            revoked_at: m.revoked_at,
            rolled_from: m.rolled_from.map(Into::into),
            replaced_by: m.replaced_by.map(Into::into),
        })
    }
}

fn row(new: &NewApiKey) -> api_key::ActiveModel {
    api_key::ActiveModel {
        id: Set(new.id.0),
        tenant_id: Set(new.tenant_id.0),
        customer_id: Set(new.customer_id.map(|c| c.0)),
        name: Set(new.name.to_string()),
        role: Set(new.role.as_str().to_owned()),
        token_hash: Set(new.token_hash.clone()),
        hint: Set(new.hint.clone()),
        created_by: Set(new.created_by.map(|u| u.0)),
        created_at: Set(new.created_at),
        expires_at: Set(new.expires_at),
        last_used_at: Set(None),
        last_used_address: Set(None),
        revoked_at: Set(None),
        rolled_from: Set(new.rolled_from.map(|k| k.0)),
        replaced_by: Set(None),
    }
}

/// How a key reads in its audit entries.
fn described(key: &ApiKey) -> serde_json::Value {
    json!({
        "name": key.name.as_str(),
        "role": key.role.as_str(),
        "customerId": key.customer_id.map(|c| c.0),
        "hint": key.hint,
        "expiresAt": key.expires_at,
    })
}

fn entry(
    key: &ApiKey,
    action: AuditAction,
    stamp: &AuditStamp,
    old: serde_json::Value,
    new: serde_json::Value,
) -> NewAuditEntry {
    NewAuditEntry {
        tenant_id: key.tenant_id,
        // The tenant's staff read key entries; a sub-customer's users never do.
        customer_id: None,
        entity_kind: EntityKind::ApiKey,
        entity_id: key.id.0,
        entity_ref: key.name.to_string(),
        action,
        stamp: stamp.clone(),
        old_value: old,
        new_value: new,
    }
}

impl SqlDirectory {
    /// Locks the tenant (two creations at once cannot both pass the bound) and checks that it
    /// holds fewer live keys than the bound.
    async fn room_for_a_key(&self, txn: &DatabaseTransaction, scope: Scope, tenant: TenantId) -> Result<()> {
        let mut q = tenant::Entity::find_by_id(tenant.0);
        if self.backend() == DbBackend::Postgres {
            q = q.lock_exclusive();
        }
        find(txn, q, "tenant", tenant).await?;
        let now = Utc::now();
        let live = keys_in(scope)
            .filter(api_key::Column::TenantId.eq(tenant.0))
            .filter(api_key::Column::RevokedAt.is_null())
            .filter(
                Condition::any()
                    .add(api_key::Column::ExpiresAt.is_null())
                    .add(api_key::Column::ExpiresAt.gt(now)),
            )
            .count(txn)
            .await
            .map_err(db)?;
        if live >= MAX_LIVE_KEYS_PER_TENANT {
            return Err(Error::Conflict(format!(
                "the tenant holds {live} API keys that work (at most {MAX_LIVE_KEYS_PER_TENANT}); revoke one first"
            )));
        }
        Ok(())
    }

    async fn key_row(&self, txn: &DatabaseTransaction, scope: Scope, id: ApiKeyId) -> Result<api_key::Model> {
        let mut q = keys_in(scope).filter(api_key::Column::Id.eq(id.0));
        if self.backend() == DbBackend::Postgres {
            q = q.lock_exclusive();
        }
        find(txn, q, "API key", id).await
    }
}

#[async_trait]
impl ApiKeyStore for SqlDirectory {
    async fn create_api_key(&self, scope: Scope, new: NewApiKey, stamp: AuditStamp) -> Result<ApiKey> {
        admit(scope, new.tenant_id, None)?;
        let txn = self.begin(scope).await?;
        let written = async {
            self.write_lock(&txn).await?;
            self.room_for_a_key(&txn, scope, new.tenant_id).await?;
            let stored: ApiKey = row(&new)
                .insert(&txn)
                .await
                .map_err(|e| map(e, "this API key exists already"))?
                .try_into()?;
            insert_audit(
                &txn,
                self.backend(),
                &[entry(
                    &stored,
                    AuditAction::Created,
                    &stamp,
                    json!(null),
                    described(&stored),
                )],
            )
            .await?;
            Ok(stored)
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn api_key(&self, scope: Scope, id: ApiKeyId) -> Result<Option<ApiKey>> {
        self.read_one(scope, keys_in(scope).filter(api_key::Column::Id.eq(id.0)))
            .await
    }

    async fn list_api_keys(&self, scope: Scope, tenant: TenantId, page: &Page<()>) -> Result<Vec<ApiKey>> {
        let q = keys_in(scope).filter(api_key::Column::TenantId.eq(tenant.0));
        let q = crate::fleet::filter::keyset(
            q,
            api_key::Column::Name,
            api_key::Column::Id,
            page.after.as_ref().map(|c| (c.k.clone().into(), c.id)),
            false,
            page.limit,
        );
        self.read_all(scope, q).await
    }

    async fn roll_api_key(
        &self,
        scope: Scope,
        id: ApiKeyId,
        new: NewApiKey,
        old_until: DateTime<Utc>,
        stamp: AuditStamp,
    ) -> Result<ApiKey> {
        let txn = self.begin(scope).await?;
        let written = async {
            self.write_lock(&txn).await?;
            let old_row = self.key_row(&txn, scope, id).await?;
            let old = ApiKey::try_from(old_row.clone())?;
            if old.tenant_id != new.tenant_id {
                return Err(Error::not_found("API key", id));
            }
            let now = Utc::now();
            match old.state(now) {
                ApiKeyState::Active => {}
                ApiKeyState::Rolling => {
                    return Err(Error::Conflict(
                        "this API key was rolled already; roll its replacement instead".into(),
                    ))
                }
                ApiKeyState::Expired => {
                    return Err(Error::Conflict(
                        "this API key has expired; create a new one instead".into(),
                    ))
                }
                ApiKeyState::Revoked => {
                    return Err(Error::Conflict(
                        "this API key is revoked; create a new one instead".into(),
                    ))
                }
            }
            let until = old.expires_at.map_or(old_until, |e| e.min(old_until));
            let fresh: ApiKey = row(&new)
                .insert(&txn)
                .await
                .map_err(|e| map(e, "this API key exists already"))?
                .try_into()?;
            let mut active: api_key::ActiveModel = old_row.into();
            active.expires_at = Set(Some(until));
            active.replaced_by = Set(Some(fresh.id.0));
            let rolled: ApiKey = active.update(&txn).await.map_err(db)?.try_into()?;
            insert_audit(
                &txn,
                self.backend(),
                &[
                    entry(
                        &rolled,
                        AuditAction::Rolled,
                        &stamp,
                        json!({ "expiresAt": old.expires_at }),
                        json!({ "expiresAt": until, "replacedBy": fresh.id.0, "replacedByHint": fresh.hint }),
                    ),
                    entry(&fresh, AuditAction::Created, &stamp, json!(null), {
                        let mut v = described(&fresh);
                        v["rolledFrom"] = json!(old.id.0);
                        v
                    }),
                ],
            )
            .await?;
            Ok(fresh)
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn revoke_api_key(&self, scope: Scope, id: ApiKeyId, stamp: AuditStamp) -> Result<ApiKey> {
        let txn = self.begin(scope).await?;
        let written = async {
            self.write_lock(&txn).await?;
            let found = self.key_row(&txn, scope, id).await?;
            if found.revoked_at.is_some() {
                return ApiKey::try_from(found);
            }
            let mut active: api_key::ActiveModel = found.into();
            active.revoked_at = Set(Some(stamp.at));
            let revoked: ApiKey = active.update(&txn).await.map_err(db)?.try_into()?;
            insert_audit(
                &txn,
                self.backend(),
                &[entry(
                    &revoked,
                    AuditAction::Revoked,
                    &stamp,
                    json!({ "revokedAt": null }),
                    json!({ "revokedAt": stamp.at }),
                )],
            )
            .await?;
            Ok(revoked)
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn api_key_by_hash(&self, token_hash: &str) -> Result<Option<ApiKey>> {
        let found = if self.backend() == DbBackend::Postgres {
            self.definer_lookup::<api_key::Model>("SELECT * FROM ioto_api_key_lookup($1)", token_hash)
                .await?
        } else {
            api_key::Entity::find()
                .filter(api_key::Column::TokenHash.eq(token_hash))
                .one(&self.db)
                .await
                .map_err(db)?
        };
        found.map(ApiKey::try_from).transpose()
    }

    async fn touch_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        at: DateTime<Utc>,
        address: Option<String>,
    ) -> Result<()> {
        let scope = Scope::tenant(tenant);
        let txn = self.begin(scope).await?;
        let written = api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::value(at))
            .col_expr(api_key::Column::LastUsedAddress, Expr::value(address))
            .filter(api_key::Column::Id.eq(id.0))
            .filter(api_key::Column::TenantId.eq(tenant.0))
            .filter(
                Condition::any()
                    .add(api_key::Column::LastUsedAt.is_null())
                    .add(api_key::Column::LastUsedAt.lt(at)),
            )
            .exec(&txn)
            .await
            .map(|_| ())
            .map_err(db);
        commit_or_roll_back(txn, written).await
    }
}
