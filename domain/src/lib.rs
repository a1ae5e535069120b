#![doc = include_str!("../README.md")]

pub mod account;
pub mod actor;
pub mod advice;
pub mod alert;
pub mod analytics;
pub mod api_key;
pub mod billing;
pub mod directory;
pub mod error;
pub mod events;
pub mod export;
pub mod fleet;
pub mod forecast;
pub mod identifiers;
pub mod ids;
pub mod mfa;
pub mod notify;
pub mod parallel;
pub mod password;
pub mod ports;
pub mod quota;
pub mod quota_import;
pub mod quota_pool;
pub mod role;
pub mod usage;

pub use actor::{Actor, Scope};
pub use error::{Error, ErrorCode, PublicError, Result};
pub use identifiers::{Iccid, MccMnc};
pub use ids::{ApiKeyId, CustomerId, DeviceId, SimId, TenantId, UserId};
pub use role::{Permission, Role};

/// Replaces the password of `scheme://user:password@host/…` with `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    // The credentials end at the last `@` of the authority (a password may hold `@`; the path,
    // query and fragment may too, and are not credentials).
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}
