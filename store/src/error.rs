//! Driver errors to domain meanings. The full driver message is logged; callers get a sentence.

use ioto_domain::Error;
use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// Maps a driver error; `unique` names what a unique violation means for this call
/// (e.g. "a customer named 'Acme' already exists in this tenant").
pub fn map(e: DbErr, unique: &str) -> Error {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => return Error::Conflict(unique.to_owned()),
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
            return Error::Conflict("it is still referenced by other records (users or SIMs), or refers to a record that does not exist".into())
        }
        _ => {}
    }
    match &e {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => {
            tracing::error!(error = %e, "transactional store unreachable");
            Error::Unavailable("the transactional store".into())
        }
        DbErr::Query(RuntimeErr::SqlxError(sqlx_err)) if is_connection_error(sqlx_err) => {
            tracing::error!(error = %e, "transactional store unreachable");
            Error::Unavailable("the transactional store".into())
        }
        _ => {
            tracing::error!(error = %e, "transactional store error");
            Error::Internal(format!("transactional store: {e}"))
        }
    }
}

fn is_connection_error(e: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    matches!(
        e,
        E::Io(_) | E::PoolTimedOut | E::PoolClosed | E::Tls(_) | E::WorkerCrashed
    )
}

/// For calls where a unique violation cannot happen.
pub fn db(e: DbErr) -> Error {
    map(e, "the record already exists")
}
