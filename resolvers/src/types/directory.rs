use async_graphql::{Context, Object, ID};
use chrono::{DateTime, Utc};
use ioto_domain::directory::{Customer, Tenant, User};
use ioto_domain::events::DirectoryEvent;

use super::{DirectoryChangeKind, RoleKind};
use crate::context::{actor, services};
use crate::error::GqlResult;

/// A company operating a fleet on the platform.
pub struct TenantObject(pub Tenant);

#[Object(name = "Tenant")]
impl TenantObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Short URL-safe handle, unique across the platform.
    async fn slug(&self) -> &str {
        self.0.slug.as_str()
    }
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Sub-customers of this tenant (a customer user sees only its own).
    async fn customers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CustomerObject>> {
        let list = services(ctx)
            .directory
            .customers(actor(ctx)?, Some(self.0.id))
            .await
            .gql()?;
        Ok(list.into_iter().map(CustomerObject).collect())
    }
    /// Users of this tenant. Needs a role that may read users.
    async fn users(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UserObject>> {
        let list = services(ctx)
            .directory
            .users(actor(ctx)?, Some(self.0.id))
            .await
            .gql()?;
        Ok(list.into_iter().map(UserObject).collect())
    }
}

/// A tenant's own customer.
pub struct CustomerObject(pub Customer);

#[Object(name = "Customer")]
impl CustomerObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn tenant_id(&self) -> ID {
        ID(self.0.tenant_id.to_string())
    }
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    /// The tenant's own reference (ERP/CRM id), unique within the tenant.
    async fn external_ref(&self) -> Option<&str> {
        self.0.external_ref.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A person who can sign in.
pub struct UserObject(pub User);

#[Object(name = "User")]
impl UserObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn tenant_id(&self) -> ID {
        ID(self.0.tenant_id.to_string())
    }
    /// Set for CUSTOMER_USER only.
    async fn customer_id(&self) -> Option<ID> {
        self.0.customer_id.map(|c| ID(c.to_string()))
    }
    async fn email(&self) -> &str {
        self.0.email.as_str()
    }
    async fn display_name(&self) -> &str {
        self.0.display_name.as_str()
    }
    async fn role(&self) -> RoleKind {
        self.0.role.into()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The signed-in caller.
pub struct Me {
    pub user: Option<User>,
    pub tenant: Tenant,
    pub role: ioto_domain::Role,
    pub customer_id: Option<ioto_domain::CustomerId>,
    pub subject: String,
}

#[Object]
impl Me {
    /// E-mail of the signed-in user; null for service tokens that name no user.
    async fn email(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.email.as_str())
    }
    async fn display_name(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.display_name.as_str())
    }
    /// The token's subject claim.
    async fn subject(&self) -> &str {
        &self.subject
    }
    async fn role(&self) -> RoleKind {
        self.role.into()
    }
    async fn tenant(&self) -> TenantObject {
        TenantObject(self.tenant.clone())
    }
    /// The sub-customer a CUSTOMER_USER belongs to.
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<CustomerObject>> {
        let Some(id) = self.customer_id else {
            return Ok(None);
        };
        Ok(services(ctx)
            .directory
            .customer(actor(ctx)?, id)
            .await
            .gql()?
            .map(CustomerObject))
    }
    async fn user(&self) -> Option<UserObject> {
        self.user.clone().map(UserObject)
    }
}

/// Result of a successful login.
pub struct LoginPayload {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: User,
}

#[Object]
impl LoginPayload {
    /// Send as `Authorization: Bearer <token>`.
    async fn token(&self) -> &str {
        &self.token
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
    async fn user(&self) -> UserObject {
        UserObject(self.user.clone())
    }
}

/// A change in a tenant's directory.
pub struct DirectoryEventObject(pub DirectoryEvent);

#[Object(name = "DirectoryEvent")]
impl DirectoryEventObject {
    async fn tenant_id(&self) -> ID {
        ID(self.0.tenant_id.to_string())
    }
    async fn change(&self) -> DirectoryChangeKind {
        self.0.change.into()
    }
    /// Id of the tenant, customer or user that changed.
    async fn entity_id(&self) -> ID {
        ID(self.0.entity_id.to_string())
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}
