//! Driver errors to domain meanings. The driver's message travels inside `Unavailable` and
//! `Internal` (the API logs it with the request id and answers a generic sentence).

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
    let unreachable = match &e {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => true,
        DbErr::Query(RuntimeErr::SqlxError(sqlx_err)) | DbErr::Exec(RuntimeErr::SqlxError(sqlx_err)) => {
            is_connection_error(sqlx_err)
        }
        _ => false,
    };
    if unreachable {
        Error::Unavailable(format!("the transactional store ({e})"))
    } else {
        Error::Internal(format!("transactional store: {e}"))
    }
}

fn is_connection_error(e: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    match e {
        E::Io(_) | E::PoolTimedOut | E::PoolClosed | E::Tls(_) | E::WorkerCrashed => true,
        // The server going away under a statement: shut down by an operator or crashed (class
        // 57P: `57P01` admin_shutdown, `57P02` crash_shutdown, `57P03` cannot_connect_now, as
        // when it is starting), a broken connection (class 08), or out of connections (53300).
        E::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("57P") || c.starts_with("08") || c == "53300"),
        _ => false,
    }
}

/// A driver error met past sea-orm (a `COPY`), wrapped as sea-orm wraps its own so that [`map`]
/// and [`db`] read it alike.
pub fn sqlx_err(e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(e))
}

/// For calls where a unique violation cannot happen.
pub fn db(e: DbErr) -> Error {
    map(e, "the record already exists")
}
