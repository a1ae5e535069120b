//! Users and the login lookup.

use async_trait::async_trait;
use chrono::Utc;
use ioto_domain::directory::{LoginRecord, NewUser, User, UserPatch};
use ioto_domain::fleet::query::Page;
use ioto_domain::identifiers::Email;
use ioto_domain::ports::UserStore;
use ioto_domain::{CustomerId, Error, Result, Role, Scope, TenantId, UserId};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, Set,
};
use uuid::Uuid;

use super::{user_row, SqlDirectory};
use crate::entities::user;
use crate::error::{db, map};
use crate::pool::{admit, commit, users_in};

#[derive(FromQueryResult)]
struct LoginRow {
    id: Uuid,
    tenant_id: Uuid,
    customer_id: Option<Uuid>,
    role: String,
    password_hash: String,
}

#[async_trait]
impl UserStore for SqlDirectory {
    async fn create_user(&self, scope: Scope, new: NewUser) -> Result<User> {
        admit(scope, new.tenant_id, new.customer_id)?;
        let txn = self.begin(scope).await?;
        let row = user::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(new.tenant_id.0),
            customer_id: Set(new.customer_id.map(|c| c.0)),
            email: Set(new.email.to_string()),
            display_name: Set(new.display_name.to_string()),
            role: Set(new.role.as_str().to_owned()),
            password_hash: Set(new.password_hash),
            created_at: Set(Utc::now()),
            credentials_changed_at: Set(None),
        }
        .insert(&txn)
        .await
        .map_err(|e| map(e, &format!("a user with e-mail '{}' already exists", new.email)))?;
        commit(txn).await?;
        row.try_into()
    }

    async fn user(&self, scope: Scope, id: UserId) -> Result<Option<User>> {
        self.read_one(scope, users_in(scope).filter(user::Column::Id.eq(id.0)))
            .await
    }

    async fn list_users(&self, scope: Scope, tenant: TenantId, page: &Page<()>) -> Result<Vec<User>> {
        let q = users_in(scope).filter(user::Column::TenantId.eq(tenant.0));
        let q = crate::fleet::filter::keyset(
            q,
            user::Column::Email,
            user::Column::Id,
            page.after.as_ref().map(|c| (c.k.clone().into(), c.id)),
            false,
            page.limit,
        );
        self.read_all(scope, q).await
    }

    async fn set_user_role(
        &self,
        scope: Scope,
        id: UserId,
        role: Role,
        customer: Option<CustomerId>,
    ) -> Result<User> {
        let txn = self.begin(scope).await?;
        let row = user_row(&txn, scope, id).await?;
        admit(scope, row.tenant_id.into(), customer)?;
        let mut active: user::ActiveModel = row.into();
        active.role = Set(role.as_str().to_owned());
        active.customer_id = Set(customer.map(|c| c.0));
        let row = active.update(&txn).await.map_err(db)?;
        commit(txn).await?;
        row.try_into()
    }

    async fn update_user(&self, scope: Scope, id: UserId, patch: UserPatch) -> Result<User> {
        let txn = self.begin(scope).await?;
        let row = user_row(&txn, scope, id).await?;
        let mut active: user::ActiveModel = row.into();
        if let Some(n) = &patch.display_name {
            active.display_name = Set(n.to_string());
        }
        if let Some(e) = &patch.email {
            active.email = Set(e.to_string());
        }
        let conflict = patch.email.as_ref().map_or_else(String::new, |e| {
            format!("a user with e-mail '{e}' already exists")
        });
        let row = active.update(&txn).await.map_err(|e| map(e, &conflict))?;
        commit(txn).await?;
        row.try_into()
    }

    async fn set_password_hash(&self, scope: Scope, id: UserId, hash: String) -> Result<()> {
        let txn = self.begin(scope).await?;
        let row = user_row(&txn, scope, id).await?;
        let mut active: user::ActiveModel = row.into();
        active.password_hash = Set(hash);
        active.credentials_changed_at = Set(Some(Utc::now()));
        active.update(&txn).await.map_err(db)?;
        commit(txn).await
    }

    async fn delete_user(&self, scope: Scope, id: UserId) -> Result<()> {
        let txn = self.begin(scope).await?;
        user_row(&txn, scope, id).await?;
        user::Entity::delete_by_id(id.0).exec(&txn).await.map_err(db)?;
        commit(txn).await
    }

    async fn login_record(&self, email: &Email) -> Result<Option<LoginRecord>> {
        let backend = self.db.get_database_backend();
        let row = if backend == DbBackend::Postgres {
            self.definer_lookup::<LoginRow>(
                "SELECT id, tenant_id, customer_id, role, password_hash FROM ioto_login_lookup($1)",
                email.as_str(),
            )
            .await?
        } else {
            user::Entity::find()
                .filter(Expr::expr(Func::lower(Expr::col(user::Column::Email))).eq(email.as_str()))
                .one(&self.db)
                .await
                .map_err(db)?
                .map(|m| LoginRow {
                    id: m.id,
                    tenant_id: m.tenant_id,
                    customer_id: m.customer_id,
                    role: m.role,
                    password_hash: m.password_hash,
                })
        };
        row.map(|r| {
            Ok(LoginRecord {
                user_id: r.id.into(),
                tenant_id: r.tenant_id.into(),
                customer_id: r.customer_id.map(Into::into),
                role: Role::parse(&r.role).map_err(|e| Error::Internal(format!("stored users.role: {e}")))?,
                password_hash: r.password_hash,
            })
        })
        .transpose()
    }
}
