//! The `Directory` port on sea-orm, for Postgres and SQLite alike.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use ioto_domain::directory::{
    Customer, CustomerPatch, LoginRecord, NewCustomer, NewTenant, NewUser, Tenant, User, UserPatch,
};
use ioto_domain::fleet::query::Page;
use ioto_domain::identifiers::{Email, Name, Slug};
use ioto_domain::ports::{Directory, EngineInfo};
use ioto_domain::{CustomerId, Error, Result, Role, Scope, TenantId, UserId};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, Select, Set, Statement,
    TransactionTrait,
};
use uuid::Uuid;

use crate::convert;
use crate::entities::{customer, sim, tenant, user};
use crate::error::{db, map};

/// The `Directory` adapter. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqlDirectory {
    pub(crate) db: DatabaseConnection,
    info: EngineInfo,
    statements: Arc<AtomicU64>,
}

impl SqlDirectory {
    pub fn new(mut db: DatabaseConnection, info: EngineInfo) -> Self {
        let statements = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&statements);
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        Self { db, info, statements }
    }

    /// SQL statements sent so far through this pool (including transaction control).
    pub fn statement_count(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Starts a transaction in `scope`: on Postgres the RLS settings are set transaction-locally.
    pub async fn begin(&self, scope: Scope) -> Result<DatabaseTransaction> {
        let txn = self.db.begin().await.map_err(db)?;
        if self.db.get_database_backend() == DbBackend::Postgres {
            let (tenant, customer, platform) = match scope {
                Scope::Platform => (String::new(), String::new(), "on"),
                Scope::Tenant {
                    tenant_id,
                    customer_id,
                } => (
                    tenant_id.to_string(),
                    customer_id.map(|c| c.to_string()).unwrap_or_default(),
                    "",
                ),
            };
            txn.execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT set_config('app.tenant_id', $1, true), set_config('app.customer_id', $2, true), \
                 set_config('app.platform', $3, true)",
                [tenant.into(), customer.into(), platform.into()],
            ))
            .await
            .map_err(db)?;
        }
        Ok(txn)
    }
}

impl SqlDirectory {
    /// One row of `q` (already narrowed to the scope), read in the request's read session or in
    /// its own scoped transaction.
    pub(crate) async fn read_one<E, T>(&self, scope: Scope, q: Select<E>) -> Result<Option<T>>
    where
        E: EntityTrait,
        T: TryFrom<E::Model, Error = Error>,
    {
        if let Some(shared) = crate::session::open(self, scope).await? {
            return match q.one(shared.txn()).await {
                Ok(row) => row.map(T::try_from).transpose(),
                Err(e) => {
                    shared.discard().await;
                    Err(db(e))
                }
            };
        }
        let txn = self.begin(scope).await?;
        let row = q.one(&txn).await.map_err(db)?;
        commit(txn).await?;
        row.map(T::try_from).transpose()
    }

    /// Every row of `q`, read in the request's read session or in its own scoped transaction.
    pub(crate) async fn read_all<E, T>(&self, scope: Scope, q: Select<E>) -> Result<Vec<T>>
    where
        E: EntityTrait,
        T: TryFrom<E::Model, Error = Error>,
    {
        if let Some(shared) = crate::session::open(self, scope).await? {
            return match q.all(shared.txn()).await {
                Ok(rows) => convert::all(rows),
                Err(e) => {
                    shared.discard().await;
                    Err(db(e))
                }
            };
        }
        let txn = self.begin(scope).await?;
        let rows = q.all(&txn).await.map_err(db)?;
        commit(txn).await?;
        convert::all(rows)
    }
}

/// The row `q` finds inside `txn`, or `NotFound` naming `what` and `id`.
pub(crate) async fn find<E: EntityTrait>(
    txn: &DatabaseTransaction,
    q: Select<E>,
    what: &'static str,
    id: impl ToString,
) -> Result<E::Model> {
    q.one(txn)
        .await
        .map_err(db)?
        .ok_or_else(|| Error::not_found(what, id))
}

pub(crate) async fn tenant_row(
    txn: &DatabaseTransaction,
    scope: Scope,
    id: TenantId,
) -> Result<tenant::Model> {
    find(
        txn,
        tenants_in(scope).filter(tenant::Column::Id.eq(id.0)),
        "tenant",
        id,
    )
    .await
}

pub(crate) async fn customer_row(
    txn: &DatabaseTransaction,
    scope: Scope,
    id: CustomerId,
) -> Result<customer::Model> {
    find(
        txn,
        customers_in(scope).filter(customer::Column::Id.eq(id.0)),
        "customer",
        id,
    )
    .await
}

async fn user_row(txn: &DatabaseTransaction, scope: Scope, id: UserId) -> Result<user::Model> {
    find(txn, users_in(scope).filter(user::Column::Id.eq(id.0)), "user", id).await
}

pub(crate) fn tenants_in(scope: Scope) -> Select<tenant::Entity> {
    let q = tenant::Entity::find();
    match scope.tenant_id() {
        Some(t) => q.filter(tenant::Column::Id.eq(t.0)),
        None => q,
    }
}

pub(crate) fn customers_in(scope: Scope) -> Select<customer::Entity> {
    let mut q = customer::Entity::find();
    if let Some(t) = scope.tenant_id() {
        q = q.filter(customer::Column::TenantId.eq(t.0));
    }
    if let Some(c) = scope.customer_id() {
        q = q.filter(customer::Column::Id.eq(c.0));
    }
    q
}

pub(crate) fn users_in(scope: Scope) -> Select<user::Entity> {
    let mut q = user::Entity::find();
    if let Some(t) = scope.tenant_id() {
        q = q.filter(user::Column::TenantId.eq(t.0));
    }
    if let Some(c) = scope.customer_id() {
        q = q.filter(user::Column::CustomerId.eq(c.0));
    }
    q
}

pub(crate) fn sims_in(scope: Scope) -> Select<sim::Entity> {
    let mut q = sim::Entity::find();
    if let Some(t) = scope.tenant_id() {
        q = q.filter(sim::Column::TenantId.eq(t.0));
    }
    if let Some(c) = scope.customer_id() {
        q = q.filter(sim::Column::CustomerId.eq(c.0));
    }
    q
}

/// Writing a row for a tenant outside the scope answers like a missing tenant.
pub(crate) fn admit(scope: Scope, tenant: TenantId, customer: Option<CustomerId>) -> Result<()> {
    if scope.admits(tenant, customer) {
        Ok(())
    } else {
        Err(Error::not_found("tenant", tenant))
    }
}

pub(crate) async fn commit(txn: DatabaseTransaction) -> Result<()> {
    txn.commit().await.map_err(db)
}

#[derive(FromQueryResult)]
struct LoginRow {
    id: Uuid,
    tenant_id: Uuid,
    customer_id: Option<Uuid>,
    role: String,
    password_hash: String,
}

#[async_trait]
impl Directory for SqlDirectory {
    fn info(&self) -> EngineInfo {
        self.info.clone()
    }

    async fn ping(&self) -> Result<()> {
        self.db.ping().await.map_err(db)
    }

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
            let txn = self.begin(Scope::tenant(TenantId(Uuid::nil()))).await?;
            let row = LoginRow::find_by_statement(Statement::from_sql_and_values(
                backend,
                "SELECT id, tenant_id, customer_id, role, password_hash FROM ioto_login_lookup($1)",
                [email.as_str().into()],
            ))
            .one(&txn)
            .await
            .map_err(db)?;
            commit(txn).await?;
            row
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

fn customer_conflict(name: &str, external_ref: Option<&str>) -> String {
    match external_ref {
        Some(r) => format!(
            "a customer named '{name}' or with external reference '{r}' already exists in this tenant"
        ),
        None => format!("a customer named '{name}' already exists in this tenant"),
    }
}
