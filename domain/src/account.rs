//! Sign-in sessions: what a login starts, a refresh continues and a logout ends.
//!
//! A login starts a session and answers a short-lived access token (a JWT naming the session in
//! `sid`) with a refresh token. Refresh tokens follow RFC 9700 §4.14: each is good for one
//! refresh, which answers a new access token and a new refresh token; presenting a used one
//! again means that two parties hold the family, and ends the session, whoever presents it.
//! A session lasts at most its absolute lifetime and ends early when it is not refreshed within
//! its idle time, at a logout, when its user changes the password, or when the user ends it from
//! another session. Its access tokens stop working at the next session check.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api_key::{is_prefixed_alphanumeric, random_chars, BASE62};
pub use crate::ids::SessionId;
use crate::{CustomerId, Error, Result, TenantId, UserId};

/// What every refresh token starts with.
pub const REFRESH_PREFIX: &str = "iotr_";
const REFRESH_RANDOM: usize = 40;
/// A refresh token's whole length.
pub const REFRESH_LEN: usize = REFRESH_PREFIX.len() + REFRESH_RANDOM;
/// Open sessions a user may hold; a login past it ends the user's oldest.
pub const MAX_OPEN_SESSIONS_PER_USER: u64 = 50;
/// The longest user agent kept with a session.
pub const MAX_USER_AGENT_CHARS: usize = 300;

/// A refresh token whose form was checked (or one just made).
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken(***)")
    }
}

impl RefreshToken {
    pub fn generate() -> Self {
        Self(format!(
            "{REFRESH_PREFIX}{}",
            random_chars(BASE62, REFRESH_RANDOM)
        ))
    }

    /// Checks a presented token's form; nothing is looked up for one that fails.
    pub fn check(token: &str) -> Result<Self> {
        let ok = is_prefixed_alphanumeric(token, REFRESH_PREFIX, REFRESH_RANDOM);
        if ok {
            Ok(Self(token.to_owned()))
        } else {
            Err(Error::invalid(
                "refreshToken",
                format!(
                    "is not a refresh token (they are '{REFRESH_PREFIX}' and {REFRESH_RANDOM} letters and digits, as login answers them)"
                ),
            ))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored and looked up: the token's SHA-256, in hex.
    pub fn hash(&self) -> String {
        crate::api_key::hash_token(&self.0)
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionEnd {
    /// Signed out of this session.
    Logout,
    /// Ended by its user from another session, or by signing out everywhere.
    EndedByUser,
    /// A used refresh token was presented again: the family is in two hands.
    RefreshReused,
    /// The user's password changed.
    PasswordChanged,
    /// An administrator reset the user's second factor.
    FactorReset,
    /// The user signed in more often than sessions are kept: the oldest went.
    Replaced,
}

impl SessionEnd {
    pub const ALL: [SessionEnd; 6] = [
        Self::Logout,
        Self::EndedByUser,
        Self::RefreshReused,
        Self::PasswordChanged,
        Self::FactorReset,
        Self::Replaced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "LOGOUT",
            Self::EndedByUser => "ENDED_BY_USER",
            Self::RefreshReused => "REFRESH_REUSED",
            Self::PasswordChanged => "PASSWORD_CHANGED",
            Self::FactorReset => "FACTOR_RESET",
            Self::Replaced => "REPLACED",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| Error::Internal(format!("'{s}' is not a session end")))
    }

    /// Why the session's tokens are refused, in words.
    pub fn sentence(self) -> &'static str {
        match self {
            Self::Logout => "you signed out of this session; sign in again",
            Self::EndedByUser => "this session was ended; sign in again",
            Self::RefreshReused => {
                "this session was ended because its refresh token was used twice (it may have been copied); sign in again"
            }
            Self::PasswordChanged => "the password has changed; sign in again",
            Self::FactorReset => "an administrator reset your second factor; sign in again",
            Self::Replaced => "this session was ended by newer sign-ins; sign in again",
        }
    }
}

/// A sign-in session as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSession {
    pub id: SessionId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub customer_id: Option<CustomerId>,
    pub created_at: DateTime<Utc>,
    /// When a refresh last continued it (the login, at first).
    pub refreshed_at: DateTime<Utc>,
    /// Its absolute end: no refresh goes past it.
    pub expires_at: DateTime<Utc>,
    /// Where it was started or last refreshed from.
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<SessionEnd>,
}

impl UserSession {
    /// Whether the session still holds at `now` (not ended, not past its lifetime, refreshed
    /// within `idle`).
    pub fn check(&self, now: DateTime<Utc>, idle: chrono::Duration) -> Result<()> {
        if let Some(reason) = self.end_reason {
            return Err(Error::Unauthenticated(reason.sentence().into()));
        }
        if self.ended_at.is_some() || now >= self.expires_at {
            return Err(Error::Unauthenticated(
                "this session has expired; sign in again".into(),
            ));
        }
        if now - self.refreshed_at > idle {
            return Err(Error::Unauthenticated(
                "this session was idle too long and has expired; sign in again".into(),
            ));
        }
        Ok(())
    }
}

/// A session to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id: SessionId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub customer_id: Option<CustomerId>,
    pub at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    /// The token was good: it is used now, and the new one continues the session.
    Rotated(UserSession),
    /// The token was used before: the session is ended now (or was already).
    Reused(UserSession),
    /// The token belongs to a session that has ended or expired.
    Over(UserSession),
    /// No such token.
    Unknown,
}

/// A user agent as kept: printable, at most [`MAX_USER_AGENT_CHARS`] characters.
pub fn user_agent(raw: Option<&str>) -> Option<String> {
    let cleaned: String = raw?
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT_CHARS)
        .collect();
    let cleaned = cleaned.trim().to_owned();
    (!cleaned.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn refresh_tokens_check_their_form() {
        let t = RefreshToken::generate();
        assert_eq!(t.expose().len(), REFRESH_LEN);
        assert_eq!(RefreshToken::check(t.expose()).unwrap(), t);
        assert_ne!(RefreshToken::generate(), t);
        assert_eq!(format!("{t:?}"), "RefreshToken(***)");
        for bad in [
            "",
            "iotr_",
            "ioto_abc",
            &t.expose()[..REFRESH_LEN - 1],
            &format!("{}!", &t.expose()[..REFRESH_LEN - 1]),
        ] {
            let err = RefreshToken::check(bad).unwrap_err().to_string();
            assert!(err.contains("not a refresh token"), "{bad:?}: {err}");
        }
        let wide = format!("iotr_{}", "é".repeat(20));
        assert_eq!(wide.len(), REFRESH_LEN);
        assert!(
            RefreshToken::check(&wide).is_err(),
            "multi-byte characters are refused, not sliced"
        );
    }

    #[test]
    fn a_session_holds_until_its_end_its_lifetime_or_its_idle_time() {
        let now = Utc::now();
        let mut s = UserSession {
            id: SessionId::new(),
            tenant_id: TenantId::new(),
            user_id: UserId::new(),
            customer_id: None,
            created_at: now,
            refreshed_at: now,
            expires_at: now + Duration::days(30),
            client_address: None,
            user_agent: None,
            ended_at: None,
            end_reason: None,
        };
        let idle = Duration::days(7);
        assert!(s.check(now, idle).is_ok());
        assert!(s
            .check(now + Duration::days(8), idle)
            .unwrap_err()
            .to_string()
            .contains("idle"));
        s.refreshed_at = now + Duration::days(29);
        assert!(s
            .check(now + Duration::days(30), idle)
            .unwrap_err()
            .to_string()
            .contains("expired"));
        s.ended_at = Some(now);
        s.end_reason = Some(SessionEnd::RefreshReused);
        assert!(s.check(now, idle).unwrap_err().to_string().contains("used twice"));
        for e in SessionEnd::ALL {
            assert_eq!(SessionEnd::parse(e.as_str()).unwrap(), e);
        }
    }

    #[test]
    fn user_agents_are_kept_printable_and_bounded() {
        assert_eq!(user_agent(None), None);
        assert_eq!(user_agent(Some("  ")), None);
        assert_eq!(user_agent(Some("curl/8.5\u{0}\n")).as_deref(), Some("curl/8.5"));
        assert_eq!(
            user_agent(Some(&"x".repeat(5000))).unwrap().len(),
            MAX_USER_AGENT_CHARS
        );
    }
}
