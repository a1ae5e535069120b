//! Tenants.

use async_trait::async_trait;
use chrono::Utc;
use ioto_domain::directory::{NewTenant, Tenant};
use ioto_domain::identifiers::{Name, Slug};
use ioto_domain::ports::TenantStore;
use ioto_domain::{Error, Result, Scope, TenantId};
use sea_orm::{ActiveModelTrait, ColumnTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use super::{tenant_row, SqlDirectory};
use crate::entities::tenant;
use crate::error::{db, map};
use crate::pool::{commit, tenants_in};

#[async_trait]
impl TenantStore for SqlDirectory {
    async fn create_tenant(&self, scope: Scope, new: NewTenant) -> Result<Tenant> {
        if scope != Scope::Platform {
            return Err(Error::forbidden("create tenants"));
        }
        let txn = self.begin(scope).await?;
        let row = tenant::ActiveModel {
            id: Set(Uuid::new_v4()),
            slug: Set(new.slug.to_string()),
            name: Set(new.name.to_string()),
            created_at: Set(Utc::now()),
            customers_see_sims: Set(true),
            customers_see_costs: Set(false),
            operator_bulk_limit: Set(i64::from(
                ioto_domain::fleet::FleetSettings::default().operator_bulk_limit,
            )),
            time_zone: Set("UTC".to_owned()),
            require_mfa: Set(false),
        }
        .insert(&txn)
        .await
        .map_err(|e| map(e, &format!("a tenant with slug '{}' already exists", new.slug)))?;
        commit(txn).await?;
        row.try_into()
    }

    async fn tenant(&self, scope: Scope, id: TenantId) -> Result<Option<Tenant>> {
        self.read_one(scope, tenants_in(scope).filter(tenant::Column::Id.eq(id.0)))
            .await
    }

    async fn tenant_by_slug(&self, scope: Scope, slug: &Slug) -> Result<Option<Tenant>> {
        self.read_one(
            scope,
            tenants_in(scope).filter(tenant::Column::Slug.eq(slug.as_str())),
        )
        .await
    }

    async fn list_tenants(&self, scope: Scope) -> Result<Vec<Tenant>> {
        self.read_all(scope, tenants_in(scope).order_by_asc(tenant::Column::Slug))
            .await
    }

    async fn rename_tenant(&self, scope: Scope, id: TenantId, name: Name) -> Result<Tenant> {
        let txn = self.begin(scope).await?;
        let row = tenant_row(&txn, scope, id).await?;
        let mut active: tenant::ActiveModel = row.into();
        active.name = Set(name.to_string());
        let row = active.update(&txn).await.map_err(db)?;
        commit(txn).await?;
        row.try_into()
    }
}
