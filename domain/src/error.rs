//! The one error type of the domain. Adapters map driver errors onto these meanings; the API maps
//! them onto `extensions.code`.

/// What went wrong, in terms a caller can act on.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// No or bad credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but the role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The thing does not exist, or is not visible to the caller (never "exists but not yours").
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// A field of the input is not acceptable; `reason` says what is allowed.
    #[error("{field}: {reason}")]
    InvalidInput { field: String, reason: String },
    /// Too many attempts; the message says when to try again.
    #[error("{0}")]
    RateLimited(String),
    /// The change collides with existing state (a unique name, a state transition).
    #[error("{0}")]
    Conflict(String),
    /// An engine behind a port cannot be reached.
    #[error("{0} is unavailable")]
    Unavailable(String),
    /// A bug or an unexpected engine answer; logged in full, answered generically.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub fn forbidden(action: &str) -> Self {
        Self::Forbidden(format!("your role does not allow you to {action}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
