//! Sub-customers.

use async_trait::async_trait;
use chrono::Utc;
use ioto_domain::directory::{Customer, CustomerPatch, NewCustomer};
use ioto_domain::fleet::query::Page;
use ioto_domain::ports::CustomerStore;
use ioto_domain::{CustomerId, Error, Result, Scope, TenantId};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use uuid::Uuid;

use super::{customer_row, tenant_row, SqlDirectory};
use crate::entities::{customer, sim, user};
use crate::error::{db, map};
use crate::pool::{admit, commit, customers_in};

#[async_trait]
impl CustomerStore for SqlDirectory {
    async fn create_customer(&self, scope: Scope, new: NewCustomer) -> Result<Customer> {
        if scope.customer_id().is_some() {
            return Err(Error::forbidden("create customers"));
        }
        admit(scope, new.tenant_id, None)?;
        let txn = self.begin(scope).await?;
        tenant_row(&txn, scope, new.tenant_id).await?;
        let row = customer::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(new.tenant_id.0),
            name: Set(new.name.to_string()),
            external_ref: Set(new.external_ref.clone()),
            created_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await
        .map_err(|e| {
            map(
                e,
                &customer_conflict(new.name.as_str(), new.external_ref.as_deref()),
            )
        })?;
        commit(txn).await?;
        row.try_into()
    }

    async fn customer(&self, scope: Scope, id: CustomerId) -> Result<Option<Customer>> {
        self.read_one(scope, customers_in(scope).filter(customer::Column::Id.eq(id.0)))
            .await
    }

    async fn list_customers(&self, scope: Scope, tenant: TenantId, page: &Page<()>) -> Result<Vec<Customer>> {
        let q = customers_in(scope).filter(customer::Column::TenantId.eq(tenant.0));
        let q = crate::fleet::filter::keyset(
            q,
            customer::Column::Name,
            customer::Column::Id,
            page.after.as_ref().map(|c| (c.k.clone().into(), c.id)),
            false,
            page.limit,
        );
        self.read_all(scope, q).await
    }

    async fn update_customer(&self, scope: Scope, id: CustomerId, patch: CustomerPatch) -> Result<Customer> {
        let txn = self.begin(scope).await?;
        let row = customer_row(&txn, scope, id).await?;
        let name = patch
            .name
            .clone()
            .map_or_else(|| row.name.clone(), |n| n.to_string());
        let mut active: customer::ActiveModel = row.into();
        if let Some(n) = patch.name {
            active.name = Set(n.to_string());
        }
        if let Some(r) = patch.external_ref.clone() {
            active.external_ref = Set(r);
        }
        let conflict = customer_conflict(&name, patch.external_ref.flatten().as_deref());
        let row = active.update(&txn).await.map_err(|e| map(e, &conflict))?;
        commit(txn).await?;
        row.try_into()
    }

    async fn delete_customer(&self, scope: Scope, id: CustomerId) -> Result<()> {
        let txn = self.begin(scope).await?;
        let row = customer_row(&txn, scope, id).await?;
        let users = user::Entity::find()
            .filter(user::Column::CustomerId.eq(id.0))
            .count(&txn)
            .await
            .map_err(db)?;
        let sims = sim::Entity::find()
            .filter(sim::Column::CustomerId.eq(id.0))
            .count(&txn)
            .await
            .map_err(db)?;
        if users + sims > 0 {
            return Err(Error::Conflict(format!(
                "customer '{}' still has {users} user(s) and {sims} SIM(s); move or delete them first",
                row.name
            )));
        }
        customer::Entity::delete_by_id(id.0)
            .exec(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }
}

fn customer_conflict(name: &str, external_ref: Option<&str>) -> String {
    match external_ref {
        Some(r) => format!(
            "a customer named '{name}' or with external reference '{r}' already exists in this tenant"
        ),
        None => format!("a customer named '{name}' already exists in this tenant"),
    }
}
