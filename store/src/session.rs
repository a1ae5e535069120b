//! Read sessions: every read of one GraphQL query in one transaction.
//!
//! On Postgres each scoped read costs `BEGIN`, `set_config(…)` (the row-level security context),
//! the query and `COMMIT`: four round trips for one. A [`ReadSession`] opened by the server for a
//! query operation lets every read of that request share one transaction begun in the caller's
//! scope, so a request pays `BEGIN` and `set_config` once and `COMMIT` once. RLS is unchanged: the
//! settings are still transaction-local and set before the first read; a read in another scope
//! (rare: the platform's login lookup) takes its own transaction as before.
//!
//! The session travels as a task-local, so ports keep their signatures. Work a request spawns
//! (dataloader batches) joins the session through [`ReadSession::wrap`]. Mutations never run in a
//! session: their writes take their own transactions, and a request holding one connection while
//! waiting for a second could exhaust the pool. SQLite has no round trips to save and keeps one
//! transaction per read.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use ioto_domain::{Result, Scope};
use sea_orm::{DatabaseTransaction, DbBackend};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use crate::pool::{commit, SqlStore};

tokio::task_local! {
    static READS: Arc<ReadSession>;
}

/// The reads of one request. Create with [`ReadSession::new`], run the request inside
/// [`ReadSession::run`], then [`ReadSession::finish`].
#[derive(Default)]
pub struct ReadSession {
    txn: Arc<Mutex<Option<(Scope, DatabaseTransaction)>>>,
}

impl ReadSession {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Runs `fut` with this session as its task's read session.
    pub async fn run<F: Future>(self: &Arc<Self>, fut: F) -> F::Output {
        READS.scope(Arc::clone(self), fut).await
    }

    /// `fut` joined to this session (for work the request spawns onto other tasks).
    pub fn wrap(self: &Arc<Self>, fut: BoxFuture<'static, ()>) -> BoxFuture<'static, ()> {
        let session = Arc::clone(self);
        Box::pin(READS.scope(session, fut))
    }

    /// Commits the session's transaction, if a read opened one.
    pub async fn finish(&self) -> Result<()> {
        match self.txn.lock().await.take() {
            Some((_, txn)) => commit(txn).await,
            None => Ok(()),
        }
    }
}

/// The current task's session transaction, held for one statement.
pub(crate) struct Shared {
    txn: OwnedMappedMutexGuard<Option<(Scope, DatabaseTransaction)>, DatabaseTransaction>,
    session: Arc<ReadSession>,
}

impl Shared {
    pub(crate) fn txn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// After a failed statement Postgres refuses everything until rollback: drop the transaction
    /// (rolled back) so the request's next read begins a new one.
    pub(crate) async fn discard(self) {
        drop(self.txn);
        self.session.txn.lock().await.take();
    }
}

/// The session transaction for `scope` on `store`, begun on first use; `None` when the task has
/// no session, the store is not Postgres, or the session's transaction is in another scope.
pub(crate) async fn open(store: &SqlStore, scope: Scope) -> Result<Option<Shared>> {
    if store.backend() != DbBackend::Postgres {
        return Ok(None);
    }
    let Ok(session) = READS.try_with(Arc::clone) else {
        return Ok(None);
    };
    let mut guard = Arc::clone(&session.txn).lock_owned().await;
    match guard.as_ref() {
        Some((s, _)) if *s != scope => return Ok(None),
        Some(_) => {}
        None => *guard = Some((scope, store.begin(scope).await?)),
    }
    Ok(
        OwnedMutexGuard::try_map(guard, |slot| slot.as_mut().map(|(_, txn)| txn))
            .ok()
            .map(|txn| Shared { txn, session }),
    )
}
