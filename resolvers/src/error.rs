//! Domain errors as GraphQL errors with `extensions.code`.

use async_graphql::ErrorExtensions;
use ioto_domain::Error;

/// The codes clients can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

/// Maps a domain error. Internal details are logged here and replaced by a generic sentence.
pub fn to_gql(e: Error) -> async_graphql::Error {
    let (code, message, field) = match e {
        Error::Unauthenticated(m) => (ErrorCode::Unauthenticated, m, None),
        Error::Forbidden(m) => (ErrorCode::Forbidden, m, None),
        e @ Error::NotFound { .. } => (ErrorCode::NotFound, e.to_string(), None),
        Error::InvalidInput { field, reason } => {
            (ErrorCode::BadUserInput, format!("{field}: {reason}"), Some(field))
        }
        Error::Conflict(m) => (ErrorCode::Conflict, m, None),
        Error::RateLimited(m) => (ErrorCode::RateLimited, m, None),
        Error::Unavailable(what) => {
            tracing::error!(what = %what, "engine unavailable");
            (
                ErrorCode::Unavailable,
                "a backing service is unavailable; try again shortly".to_owned(),
                None,
            )
        }
        Error::Internal(detail) => {
            tracing::error!(detail = %detail, "internal error");
            (
                ErrorCode::Internal,
                "internal error; it has been logged".to_owned(),
                None,
            )
        }
    };
    async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", code.as_str());
        if let Some(f) = &field {
            ext.set("field", f.as_str());
        }
    })
}

/// `?`-friendly conversion for resolver bodies.
pub(crate) trait GqlResult<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResult<T> for ioto_domain::Result<T> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(to_gql)
    }
}
