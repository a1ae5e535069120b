//! How to reach ClickHouse, and what its client errors mean to callers.

use ioto_domain::Error;

/// How to reach ClickHouse.
#[derive(Clone)]
pub struct ClickHouseConfig {
    /// HTTP endpoint, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &ioto_domain::redact_url(&self.url))
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Maps a client error; the caller decides whether to log (the API logs `Unavailable` and
/// `Internal` with the request id; start-up prints it as its one line).
pub(super) fn unavailable(config: &ClickHouseConfig, e: clickhouse::error::Error) -> Error {
    let url = ioto_domain::redact_url(&config.url);
    match e {
        clickhouse::error::Error::Network(e) => Error::Unavailable(format!("ClickHouse at {url} ({e})")),
        other => Error::Internal(format!("ClickHouse at {url}: {other}")),
    }
}

/// A database name is spliced into `CREATE DATABASE`: letters, digits and `_` only.
pub(super) fn check_identifier(name: &str) -> ioto_domain::Result<()> {
    let ok = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "clickhouse.database",
            format!("'{name}' must be letters, digits and '_', not starting with a digit"),
        ))
    }
}
