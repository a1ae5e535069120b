//! Second factors, recovery codes and sign-in challenges.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ioto_domain::directory::User;
use ioto_domain::mfa::{self, Challenge, ChallengePurpose, MfaRecord};
use ioto_domain::ports::MfaStore;
use ioto_domain::{Error, Result, Scope, TenantId, UserId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbBackend, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QuerySelect, Set,
};
use uuid::Uuid;

use super::{tenant_row, SqlDirectory};
use crate::entities::{mfa_challenge, mfa_recovery_code, user_mfa};
use crate::error::db;
use crate::pool::{admit, commit_or_roll_back};

fn in_scope<E: EntityTrait>(q: sea_orm::Select<E>, scope: Scope, tenant: E::Column) -> sea_orm::Select<E> {
    match scope.tenant_id() {
        Some(t) => q.filter(tenant.eq(t.0)),
        None => q,
    }
}

#[derive(FromQueryResult)]
struct Owner {
    tenant_id: Uuid,
    customer_id: Option<Uuid>,
}

impl TryFrom<mfa_challenge::Model> for Challenge {
    type Error = Error;
    fn try_from(m: mfa_challenge::Model) -> Result<Self> {
        Ok(Challenge {
            tenant_id: m.tenant_id.into(),
            customer_id: m.customer_id.map(Into::into),
            user_id: m.user_id.into(),
            purpose: ChallengePurpose::parse(&m.purpose)?,
            expires_at: m.expires_at,
            attempts: m.attempts,
            used_at: m.used_at,
        })
    }
}

#[async_trait]
impl MfaStore for SqlDirectory {
    async fn mfa(&self, scope: Scope, user: UserId) -> Result<Option<MfaRecord>> {
        let txn = self.begin(scope).await?;
        let read = async {
            let Some(row) = in_scope(
                user_mfa::Entity::find().filter(user_mfa::Column::UserId.eq(user.0)),
                scope,
                user_mfa::Column::TenantId,
            )
            .one(&txn)
            .await
            .map_err(db)?
            else {
                return Ok(None);
            };
            let left = mfa_recovery_code::Entity::find()
                .filter(mfa_recovery_code::Column::UserId.eq(user.0))
                .filter(mfa_recovery_code::Column::UsedAt.is_null())
                .count(&txn)
                .await
                .map_err(db)?;
            Ok(Some(MfaRecord {
                user_id: row.user_id.into(),
                sealed_secret: row.totp_secret,
                confirmed_at: row.confirmed_at,
                last_step: row.last_step,
                recovery_left: u32::try_from(left).unwrap_or(u32::MAX),
                failures: u32::try_from(row.failures).unwrap_or(0),
                locked_until: row.locked_until,
            }))
        }
        .await;
        commit_or_roll_back(txn, read).await
    }

    async fn start_totp(&self, user: &User, sealed_secret: String, at: DateTime<Utc>) -> Result<()> {
        let scope = user.scope();
        admit(scope, user.tenant_id, user.customer_id)?;
        let txn = self.begin(scope).await?;
        let written = async {
            self.write_lock(&txn).await?;
            let existing = user_mfa::Entity::find_by_id(user.id.0)
                .one(&txn)
                .await
                .map_err(db)?;
            if existing.as_ref().is_some_and(|m| m.confirmed_at.is_some()) {
                return Err(Error::Conflict(
                    "a second factor is set up already; turn it off first to set up another".into(),
                ));
            }
            if existing.is_some() {
                user_mfa::Entity::delete_by_id(user.id.0)
                    .exec(&txn)
                    .await
                    .map_err(db)?;
            }
            user_mfa::ActiveModel {
                user_id: Set(user.id.0),
                tenant_id: Set(user.tenant_id.0),
                customer_id: Set(user.customer_id.map(|c| c.0)),
                totp_secret: Set(sealed_secret),
                created_at: Set(at),
                confirmed_at: Set(None),
                last_step: Set(None),
                failures: Set(0),
                locked_until: Set(None),
            }
            .insert(&txn)
            .await
            .map_err(db)?;
            Ok(())
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn confirm_totp(
        &self,
        user: &User,
        step: i64,
        recovery_hashes: &[String],
        at: DateTime<Utc>,
    ) -> Result<()> {
        let scope = user.scope();
        let txn = self.begin(scope).await?;
        let written = async {
            let confirmed = user_mfa::Entity::update_many()
                .col_expr(user_mfa::Column::ConfirmedAt, Expr::value(at))
                .col_expr(user_mfa::Column::LastStep, Expr::value(step))
                .filter(user_mfa::Column::UserId.eq(user.id.0))
                .filter(user_mfa::Column::TenantId.eq(user.tenant_id.0))
                .filter(user_mfa::Column::ConfirmedAt.is_null())
                .exec(&txn)
                .await
                .map_err(db)?;
            if confirmed.rows_affected == 0 {
                return Err(Error::Conflict(
                    "there is no set-up of a second factor to confirm; start one first".into(),
                ));
            }
            self.put_recovery_codes(&txn, user, recovery_hashes).await
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn accept_totp_step(&self, scope: Scope, user: UserId, step: i64) -> Result<bool> {
        let txn = self.begin(scope).await?;
        let written = async {
            let mut q = user_mfa::Entity::update_many()
                .col_expr(user_mfa::Column::LastStep, Expr::value(step))
                .filter(user_mfa::Column::UserId.eq(user.0))
                .filter(user_mfa::Column::ConfirmedAt.is_not_null())
                .filter(
                    sea_orm::Condition::any()
                        .add(user_mfa::Column::LastStep.is_null())
                        .add(user_mfa::Column::LastStep.lt(step)),
                );
            if let Some(t) = scope.tenant_id() {
                q = q.filter(user_mfa::Column::TenantId.eq(t.0));
            }
            q.exec(&txn).await.map(|r| r.rows_affected == 1).map_err(db)
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn use_recovery_code(
        &self,
        scope: Scope,
        user: UserId,
        code_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let txn = self.begin(scope).await?;
        let written = async {
            let mut q = mfa_recovery_code::Entity::update_many()
                .col_expr(mfa_recovery_code::Column::UsedAt, Expr::value(at))
                .filter(mfa_recovery_code::Column::UserId.eq(user.0))
                .filter(mfa_recovery_code::Column::CodeHash.eq(code_hash))
                .filter(mfa_recovery_code::Column::UsedAt.is_null());
            if let Some(t) = scope.tenant_id() {
                q = q.filter(mfa_recovery_code::Column::TenantId.eq(t.0));
            }
            q.exec(&txn).await.map(|r| r.rows_affected == 1).map_err(db)
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn replace_recovery_codes(&self, user: &User, recovery_hashes: &[String]) -> Result<()> {
        let txn = self.begin(user.scope()).await?;
        let written = self.put_recovery_codes(&txn, user, recovery_hashes).await;
        commit_or_roll_back(txn, written).await
    }

    async fn remove_totp(&self, scope: Scope, user: UserId) -> Result<bool> {
        let txn = self.begin(scope).await?;
        let written = async {
            let mut q = user_mfa::Entity::delete_many().filter(user_mfa::Column::UserId.eq(user.0));
            if let Some(t) = scope.tenant_id() {
                q = q.filter(user_mfa::Column::TenantId.eq(t.0));
            }
            q.exec(&txn).await.map(|r| r.rows_affected > 0).map_err(db)
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn mfa_required(&self, scope: Scope, tenant: TenantId) -> Result<bool> {
        let txn = self.begin(scope).await?;
        let row = tenant_row(&txn, scope, tenant).await;
        commit_or_roll_back(txn, row).await.map(|t| t.require_mfa)
    }

    async fn create_challenge(
        &self,
        token_hash: &str,
        challenge: &Challenge,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let scope = Scope::Tenant {
            tenant_id: challenge.tenant_id,
            customer_id: challenge.customer_id,
        };
        let txn = self.begin(scope).await?;
        let written = async {
            // The user's challenges that can no longer be answered go.
            mfa_challenge::Entity::delete_many()
                .filter(mfa_challenge::Column::UserId.eq(challenge.user_id.0))
                .filter(mfa_challenge::Column::ExpiresAt.lt(at))
                .exec(&txn)
                .await
                .map_err(db)?;
            mfa_challenge::ActiveModel {
                token_hash: Set(token_hash.to_owned()),
                tenant_id: Set(challenge.tenant_id.0),
                customer_id: Set(challenge.customer_id.map(|c| c.0)),
                user_id: Set(challenge.user_id.0),
                purpose: Set(challenge.purpose.as_str().to_owned()),
                created_at: Set(at),
                expires_at: Set(challenge.expires_at),
                attempts: Set(0),
                used_at: Set(None),
            }
            .insert(&txn)
            .await
            .map_err(db)?;
            Ok(())
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn challenge(&self, token_hash: &str) -> Result<Option<Challenge>> {
        let owner = if self.backend() == DbBackend::Postgres {
            self.definer_lookup::<Owner>(
                "SELECT tenant_id, customer_id FROM ioto_challenge_lookup($1)",
                token_hash,
            )
            .await?
        } else {
            mfa_challenge::Entity::find_by_id(token_hash.to_owned())
                .one(&self.db)
                .await
                .map_err(db)?
                .map(|c| Owner {
                    tenant_id: c.tenant_id,
                    customer_id: c.customer_id,
                })
        };
        let Some(owner) = owner else { return Ok(None) };
        let scope = Scope::Tenant {
            tenant_id: owner.tenant_id.into(),
            customer_id: owner.customer_id.map(Into::into),
        };
        self.read_one(
            scope,
            mfa_challenge::Entity::find_by_id(token_hash.to_owned())
                .filter(mfa_challenge::Column::TenantId.eq(owner.tenant_id)),
        )
        .await
    }

    async fn claim_challenge_attempt(&self, challenge: &Challenge, token_hash: &str) -> Result<bool> {
        let scope = Scope::Tenant {
            tenant_id: challenge.tenant_id,
            customer_id: challenge.customer_id,
        };
        let txn = self.begin(scope).await?;
        let written = mfa_challenge::Entity::update_many()
            .col_expr(
                mfa_challenge::Column::Attempts,
                Expr::col(mfa_challenge::Column::Attempts).add(1),
            )
            .filter(mfa_challenge::Column::TokenHash.eq(token_hash))
            .filter(mfa_challenge::Column::TenantId.eq(challenge.tenant_id.0))
            .filter(mfa_challenge::Column::Attempts.lt(mfa::CHALLENGE_ATTEMPTS))
            .filter(mfa_challenge::Column::UsedAt.is_null())
            .exec(&txn)
            .await
            .map(|r| r.rows_affected == 1)
            .map_err(db);
        commit_or_roll_back(txn, written).await
    }

    async fn second_factor_failed(
        &self,
        scope: Scope,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        let txn = self.begin(scope).await?;
        let written = async {
            self.write_lock(&txn).await?;
            let mut q = in_scope(
                user_mfa::Entity::find().filter(user_mfa::Column::UserId.eq(user.0)),
                scope,
                user_mfa::Column::TenantId,
            );
            if self.backend() == DbBackend::Postgres {
                q = q.lock_exclusive();
            }
            let Some(row) = q.one(&txn).await.map_err(db)? else {
                return Ok(None);
            };
            let failures = u32::try_from(row.failures).unwrap_or(0).saturating_add(1);
            let locked = mfa::lockout(failures).map(|d| at + d);
            let mut active: user_mfa::ActiveModel = row.into();
            active.failures = Set(i32::try_from(failures).unwrap_or(i32::MAX));
            if locked.is_some() {
                active.locked_until = Set(locked);
            }
            active.update(&txn).await.map_err(db)?;
            Ok(locked)
        }
        .await;
        commit_or_roll_back(txn, written).await
    }

    async fn second_factor_passed(&self, scope: Scope, user: UserId) -> Result<()> {
        let txn = self.begin(scope).await?;
        let mut q = user_mfa::Entity::update_many()
            .col_expr(user_mfa::Column::Failures, Expr::value(0))
            .col_expr(
                user_mfa::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(user_mfa::Column::UserId.eq(user.0));
        if let Some(t) = scope.tenant_id() {
            q = q.filter(user_mfa::Column::TenantId.eq(t.0));
        }
        let written = q.exec(&txn).await.map(|_| ()).map_err(db);
        commit_or_roll_back(txn, written).await
    }

    async fn finish_challenge(
        &self,
        challenge: &Challenge,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let scope = Scope::Tenant {
            tenant_id: challenge.tenant_id,
            customer_id: challenge.customer_id,
        };
        let txn = self.begin(scope).await?;
        let written = mfa_challenge::Entity::update_many()
            .col_expr(mfa_challenge::Column::UsedAt, Expr::value(at))
            .filter(mfa_challenge::Column::TokenHash.eq(token_hash))
            .filter(mfa_challenge::Column::TenantId.eq(challenge.tenant_id.0))
            .filter(mfa_challenge::Column::UsedAt.is_null())
            .exec(&txn)
            .await
            .map(|r| r.rows_affected == 1)
            .map_err(db);
        commit_or_roll_back(txn, written).await
    }
}

impl SqlDirectory {
    async fn put_recovery_codes(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        user: &User,
        recovery_hashes: &[String],
    ) -> Result<()> {
        mfa_recovery_code::Entity::delete_many()
            .filter(mfa_recovery_code::Column::UserId.eq(user.id.0))
            .exec(txn)
            .await
            .map_err(db)?;
        if recovery_hashes.is_empty() {
            return Ok(());
        }
        let rows = recovery_hashes.iter().map(|h| mfa_recovery_code::ActiveModel {
            user_id: Set(user.id.0),
            code_hash: Set(h.clone()),
            tenant_id: Set(user.tenant_id.0),
            customer_id: Set(user.customer_id.map(|c| c.0)),
            used_at: Set(None),
        });
        mfa_recovery_code::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await
            .map_err(db)?;
        Ok(())
    }
}
