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

/// The codes clients branch on (`extensions.code` in GraphQL, `error.code` in REST and WebSocket
/// answers). One table for every transport: each error knows its code and what may be said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    RateLimited,
    Conflict,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [Self; 8] = [
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::BadUserInput,
        Self::RateLimited,
        Self::Conflict,
        Self::Unavailable,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::RateLimited => "RATE_LIMITED",
            Self::Conflict => "CONFLICT",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }

    /// The HTTP status a REST answer with this code carries.
    pub fn http_status(self) -> u16 {
        match self {
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::BadUserInput => 400,
            Self::RateLimited => 429,
            Self::Conflict => 409,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }
}

/// What an API answers for an error: its code, a message a person can act on (never a driver's
/// words for `UNAVAILABLE` and `INTERNAL`) and, for bad input, the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

/// The sentence answered for `UNAVAILABLE` (details are logged).
pub const UNAVAILABLE_MESSAGE: &str = "a backing service is unavailable; try again shortly";
/// The sentence answered for `INTERNAL` (details are logged with the request id).
pub const INTERNAL_MESSAGE: &str = "internal error; it has been logged";

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::InvalidInput { .. } => ErrorCode::BadUserInput,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The answer for a caller. `UNAVAILABLE` and `INTERNAL` carry a fixed sentence: the caller
    /// logs the details (`self`'s `Display`) with the request id.
    pub fn public(&self) -> PublicError {
        let code = self.code();
        let (message, field) = match self {
            Self::Unavailable(_) => (UNAVAILABLE_MESSAGE.to_owned(), None),
            Self::Internal(_) => (INTERNAL_MESSAGE.to_owned(), None),
            Self::InvalidInput { field, .. } => (self.to_string(), Some(field.clone())),
            other => (other.to_string(), None),
        };
        PublicError { code, message, field }
    }

    /// Whether the details must stay in the log (engines down, bugs).
    pub fn is_private(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Internal(_))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_and_bug_details_never_reach_the_caller() {
        let down = Error::Unavailable("postgres://app:hunter2@db:5432/ioto".into()).public();
        assert_eq!(down.code, ErrorCode::Unavailable);
        assert!(!down.message.contains("hunter2") && !down.message.contains("postgres"));
        let bug = Error::Internal("index out of bounds in sims.rs:42".into()).public();
        assert_eq!(bug.code, ErrorCode::Internal);
        assert!(!bug.message.contains("sims.rs"));
    }

    #[test]
    fn bad_input_names_its_field_and_what_is_allowed() {
        let e = Error::invalid("input.email", "must contain '@'").public();
        assert_eq!(e.code, ErrorCode::BadUserInput);
        assert_eq!(e.field.as_deref(), Some("input.email"));
        assert_eq!(e.message, "input.email: must contain '@'");
        assert_eq!(ErrorCode::BadUserInput.http_status(), 400);
    }
}
