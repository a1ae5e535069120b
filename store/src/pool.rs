//! The connection pool every transactional adapter shares: scoped transactions (RLS settings on
//! Postgres), reads inside the request's read session, and the scope filters of each table.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ioto_domain::ports::EngineInfo;
use ioto_domain::{CustomerId, Error, Result, Scope, TenantId};
use sea_orm::sqlx;
use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::postgres::{PgConnection, PgTransaction, Postgres};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, Select, Statement, TransactionTrait,
};

use crate::convert;
use crate::entities::{customer, sim, tenant, user};
use crate::error::{db, sqlx_err};
use crate::{SqlDirectory, SqlFleet};

/// The sea-orm connection pool behind every transactional adapter, with the scoped
/// transaction and read helpers they share. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) db: DatabaseConnection,
    pub(crate) info: EngineInfo,
    statements: Arc<AtomicU64>,
}

impl SqlStore {
    /// On SQLite, takes the database's write lock first thing in a transaction that reads
    /// before it writes: a transaction that starts reading and then writes fails with "database
    /// is locked" when another committed in between (WAL snapshots cannot be upgraded), where
    /// one that starts with a write waits its turn (`busy_timeout`).
    pub(crate) async fn write_lock(&self, txn: &DatabaseTransaction) -> Result<()> {
        if self.backend() == DbBackend::Sqlite {
            txn.execute_unprepared("UPDATE bulk_jobs SET id = id WHERE 0")
                .await
                .map_err(db)?;
        }
        Ok(())
    }

    pub fn new(mut db: DatabaseConnection, info: EngineInfo) -> Self {
        let statements = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&statements);
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
            ioto_metering::count_store_query();
        });
        Self { db, info, statements }
    }

    /// SQL statements sent so far through this pool (not counting `BEGIN` and `COMMIT`).
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
    ///
    /// `BEGIN` runs on a task of its own, to completion even when this caller is dropped while
    /// it is answered (the other branch of a `try_join!` failed first, a client went away): sqlx
    /// 0.8 counts a transaction only once `BEGIN`'s answer is read, so a caller dropped in
    /// between queued no rollback and the connection went back to the pool inside a transaction
    /// that the next caller ran in (launchbadge/sqlx#4393). Begun for a caller that is gone, the
    /// transaction is dropped by the task and rolled back. The scope statement stays here: the
    /// statements a request sends are counted per task.
    pub async fn begin(&self, scope: Scope) -> Result<DatabaseTransaction> {
        let pool = self.db.clone();
        let txn = tokio::spawn(async move { pool.begin().await })
            .await
            .map_err(|e| Error::Internal(format!("starting a transaction: {e}")))?
            .map_err(db)?;
        if self.db.get_database_backend() == DbBackend::Postgres {
            let values = scope_settings(scope).map(Into::into);
            txn.execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                SCOPE_SQL,
                values,
            ))
            .await
            .map_err(db)?;
        }
        Ok(txn)
    }

    /// A connection of the Postgres pool itself, for what sea-orm does not offer: `COPY`.
    pub(crate) async fn postgres_connection(&self) -> Result<CopyConnection> {
        let conn = self
            .db
            .get_postgres_connection_pool()
            .acquire()
            .await
            .map_err(|e| db(sqlx_err(e)))?;
        Ok(CopyConnection {
            conn,
            released: false,
        })
    }

    /// Starts a scoped transaction (as [`Self::begin`]) on `conn`. Statements sent through it are
    /// counted with [`Self::count_statements`].
    pub(crate) async fn begin_postgres<'c>(
        &self,
        conn: &'c mut PgConnection,
        scope: Scope,
    ) -> Result<PgTransaction<'c>> {
        let mut txn = sqlx::Acquire::begin(conn).await.map_err(|e| db(sqlx_err(e)))?;
        let [tenant, customer, platform] = scope_settings(scope);
        self.count_statements(1);
        sqlx::query(SCOPE_SQL)
            .bind(tenant)
            .bind(customer)
            .bind(platform)
            .execute(&mut *txn)
            .await
            .map_err(|e| db(sqlx_err(e)))?;
        Ok(txn)
    }

    /// Counts statements sent past sea-orm (whose own are counted by its metric callback, failed
    /// ones included, transaction control not).
    pub(crate) fn count_statements(&self, n: u64) {
        self.statements.fetch_add(n, Ordering::Relaxed);
        ioto_metering::count_store_queries(n);
    }
}

/// A connection taken from the Postgres pool for a `COPY`. Unless [`Self::release`]d once its
/// transaction has committed, it is closed when dropped instead of going back to the pool: a
/// caller dropped after `CopyDone` was sent (a client gone, a shutdown) leaves the replies due to
/// it unread, which sqlx does not track, and a connection back in the pool with them would answer
/// every later statement with the previous one's result. A failed import closes it too (one
/// reconnect, against an import's seconds).
pub(crate) struct CopyConnection {
    conn: PoolConnection<Postgres>,
    released: bool,
}

impl CopyConnection {
    /// Marks the connection clean: its transaction committed, every reply read.
    pub(crate) fn release(mut self) {
        self.released = true;
    }
}

impl std::ops::Deref for CopyConnection {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for CopyConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl Drop for CopyConnection {
    fn drop(&mut self) {
        if !self.released {
            self.conn.close_on_drop();
        }
    }
}

/// Sets the row-level security context of a transaction (`set_config(…, true)`: until it ends).
const SCOPE_SQL: &str = "SELECT set_config('app.tenant_id', $1, true), \
                         set_config('app.customer_id', $2, true), set_config('app.platform', $3, true)";

/// `SCOPE_SQL`'s values for `scope`: its tenant, its sub-customer, whether it is the platform's.
fn scope_settings(scope: Scope) -> [String; 3] {
    match scope {
        Scope::Platform => [String::new(), String::new(), "on".to_owned()],
        Scope::Tenant {
            tenant_id,
            customer_id,
        } => [
            tenant_id.to_string(),
            customer_id.map(|c| c.to_string()).unwrap_or_default(),
            String::new(),
        ],
    }
}

impl SqlStore {
    /// On Postgres, the row a `SECURITY DEFINER` lookup (`ioto_login_lookup`,
    /// `ioto_api_key_lookup`, …) answers for `value`: the one way to find a row before its
    /// tenant is known. It runs in a scope of no tenant, so nothing else is visible.
    pub(crate) async fn definer_lookup<T: sea_orm::FromQueryResult>(
        &self,
        sql: &str,
        value: &str,
    ) -> Result<Option<T>> {
        let txn = self.begin(Scope::tenant(TenantId(uuid::Uuid::nil()))).await?;
        let found = T::find_by_statement(sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [value.into()],
        ))
        .one(&txn)
        .await
        .map_err(db);
        commit_or_roll_back(txn, found).await
    }

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

impl SqlStore {
    /// The directory adapter (tenants, customers, users) on this pool.
    pub fn directory(&self) -> SqlDirectory {
        SqlDirectory(self.clone())
    }

    /// The fleet adapter (SIMs, devices, audit, schedules, labels) on this pool.
    pub fn fleet(&self) -> SqlFleet {
        SqlFleet(self.clone())
    }

    /// The billing adapter (rate cards, rating runs, billing facts of the fleet) on this pool.
    pub fn billing(&self) -> crate::SqlBilling {
        crate::SqlBilling(self.clone())
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

/// Commits `txn` after a successful write; after a failed one rolls it back before the error is
/// answered. A dropped transaction is rolled back whenever its connection next goes back to the
/// pool, and until then holds its locks: on SQLite the one writer's lock, which a transaction that
/// read before writing cannot wait for (SQLite answers "database is locked" at once), so the next
/// write right after a conflict could fail.
pub(crate) async fn commit_or_roll_back<T>(txn: DatabaseTransaction, written: Result<T>) -> Result<T> {
    match written {
        Ok(value) => {
            commit(txn).await?;
            Ok(value)
        }
        Err(e) => {
            // The write's own error is the one to answer; a failed rollback closes the connection.
            txn.rollback().await.ok();
            Err(e)
        }
    }
}

/// The rows of `select`, locked for the transaction on Postgres with `FOR UPDATE SKIP LOCKED`:
/// rows another server is claiming at the same moment are passed over, neither waited for nor
/// taken twice. SQLite has one writer at a time (a claim takes the write lock first), so the
/// clause is left out there.
pub(crate) async fn claim_rows<E>(
    txn: &sea_orm::DatabaseTransaction,
    select: sea_orm::Select<E>,
) -> Result<Vec<E::Model>>
where
    E: sea_orm::EntityTrait,
    E::Model: sea_orm::FromQueryResult,
{
    use sea_orm::{ConnectionTrait as _, FromQueryResult as _, QueryTrait as _};
    let backend = txn.get_database_backend();
    let mut query = select.into_query();
    if backend == DbBackend::Postgres {
        query.lock_with_behavior(
            sea_orm::sea_query::LockType::Update,
            sea_orm::sea_query::LockBehavior::SkipLocked,
        );
    }
    E::Model::find_by_statement(backend.build(&query))
        .all(txn)
        .await
        .map_err(db)
}
