//! The transactional store of tenants, sub-customers, users and SIMs.
//!
//! Every call takes the [`Scope`] it runs in. Adapters must enforce it twice over: in the query
//! itself, and (on Postgres) through row-level security fed by transaction-local settings, so a
//! pooled connection never carries one tenant's context into another's work.

use async_trait::async_trait;

use crate::directory::{
    Customer, CustomerPatch, LoginRecord, NewCustomer, NewTenant, NewUser, Tenant, User, UserPatch,
};
use crate::fleet::query::Page;
use crate::identifiers::{Email, Name, Slug};
use crate::ports::EngineInfo;
use crate::{CustomerId, Result, Role, Scope, TenantId, UserId};

/// The engine behind the directory, for start-up logs and `/readyz`.
#[async_trait]
pub trait DirectoryEngine: Send + Sync + 'static {
    fn info(&self) -> EngineInfo;
    /// Cheap round trip for `/readyz`.
    async fn ping(&self) -> Result<()>;
    /// The engine's version (`PostgreSQL 15.19`, `SQLite 3.46.0`), printed by every bench.
    async fn server_version(&self) -> Result<String>;
}

#[async_trait]
pub trait TenantStore: Send + Sync + 'static {
    async fn create_tenant(&self, scope: Scope, new: NewTenant) -> Result<Tenant>;
    async fn tenant(&self, scope: Scope, id: TenantId) -> Result<Option<Tenant>>;
    async fn tenant_by_slug(&self, scope: Scope, slug: &Slug) -> Result<Option<Tenant>>;
    async fn list_tenants(&self, scope: Scope) -> Result<Vec<Tenant>>;
    async fn rename_tenant(&self, scope: Scope, id: TenantId, name: Name) -> Result<Tenant>;
}

#[async_trait]
pub trait CustomerStore: Send + Sync + 'static {
    async fn create_customer(&self, scope: Scope, new: NewCustomer) -> Result<Customer>;
    async fn customer(&self, scope: Scope, id: CustomerId) -> Result<Option<Customer>>;
    /// The tenant's customers by name (ties by id), after `page.after`, at most `page.limit`.
    async fn list_customers(&self, scope: Scope, tenant: TenantId, page: &Page<()>) -> Result<Vec<Customer>>;
    async fn update_customer(&self, scope: Scope, id: CustomerId, patch: CustomerPatch) -> Result<Customer>;
    /// Refuses with `Conflict` while users or SIMs still belong to the customer.
    async fn delete_customer(&self, scope: Scope, id: CustomerId) -> Result<()>;
}

#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    async fn create_user(&self, scope: Scope, new: NewUser) -> Result<User>;
    async fn user(&self, scope: Scope, id: UserId) -> Result<Option<User>>;
    /// The tenant's users by e-mail (ties by id), after `page.after`, at most `page.limit`.
    async fn list_users(&self, scope: Scope, tenant: TenantId, page: &Page<()>) -> Result<Vec<User>>;
    async fn set_user_role(
        &self,
        scope: Scope,
        id: UserId,
        role: Role,
        customer: Option<CustomerId>,
    ) -> Result<User>;
    async fn update_user(&self, scope: Scope, id: UserId, patch: UserPatch) -> Result<User>;
    async fn set_password_hash(&self, scope: Scope, id: UserId, hash: String) -> Result<()>;
    async fn delete_user(&self, scope: Scope, id: UserId) -> Result<()>;
    /// Looks a user up by e-mail across tenants, for login only.
    async fn login_record(&self, email: &Email) -> Result<Option<LoginRecord>>;
}

/// The whole directory: every adapter that implements the parts is one.
pub trait Directory: DirectoryEngine + TenantStore + CustomerStore + UserStore {}

impl<T> Directory for T where T: DirectoryEngine + TenantStore + CustomerStore + UserStore {}
