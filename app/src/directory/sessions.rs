//! Sign-in sessions: started at login, continued by refresh tokens used once each (RFC 9700),
//! ended by logging out (this session or all of them), by a password change, or by a refresh
//! token presented twice. See `ioto_domain::account`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use ioto_domain::account::{self, NewSession, RefreshToken, Refreshed, SessionEnd, SessionId, UserSession};
use ioto_domain::directory::User;
use ioto_domain::{Actor, Error, Result, Scope, UserId};

use super::DirectoryService;

/// How long sessions last.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// The longest a session lasts, refreshes included.
    pub lifetime: chrono::Duration,
    /// A session not refreshed for this long ends.
    pub idle: chrono::Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            lifetime: chrono::Duration::days(30),
            idle: chrono::Duration::days(7),
        }
    }
}

/// A session just started or continued, with the refresh token that continues it next (shown
/// to its holder only).
#[derive(Debug, Clone)]
pub struct ActiveSession {
    pub session: UserSession,
    pub refresh: RefreshToken,
}

/// Sessions ended on this instance lately: their tokens are refused here at once, before any
/// cached confirmation of them (other instances refuse them at their next check).
#[derive(Default)]
pub(crate) struct EndedHere(Mutex<HashMap<SessionId, (Instant, SessionEnd)>>);

/// How long an end is remembered here: longer than any cached confirmation.
const REMEMBER_ENDS: Duration = Duration::from_secs(15 * 60);

impl EndedHere {
    fn note(&self, ids: impl IntoIterator<Item = SessionId>, why: SessionEnd) {
        let mut ended = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if ended.len() > 100_000 {
            ended.retain(|_, (at, _)| at.elapsed() < REMEMBER_ENDS);
        }
        for id in ids {
            ended.insert(id, (Instant::now(), why));
        }
    }

    fn get(&self, id: SessionId) -> Option<SessionEnd> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .filter(|(at, _)| at.elapsed() < REMEMBER_ENDS)
            .map(|(_, why)| *why)
    }
}

impl DirectoryService {
    /// Why `id` was ended on this instance lately, if it was (its tokens are refused at once).
    pub fn session_ended_here(&self, id: SessionId) -> Option<SessionEnd> {
        self.ended_here.get(id)
    }

    /// Starts a session for `user` (just signed in) from `client` with `user_agent`.
    pub async fn start_session(
        &self,
        user: &User,
        client: Option<IpAddr>,
        user_agent: Option<&str>,
    ) -> Result<ActiveSession> {
        let now = Utc::now();
        let refresh = RefreshToken::generate();
        let session = self
            .store
            .start_session(
                NewSession {
                    id: SessionId::new(),
                    tenant_id: user.tenant_id,
                    user_id: user.id,
                    customer_id: user.customer_id,
                    at: now,
                    expires_at: now + self.session_policy.lifetime,
                    client_address: client.map(|c| c.to_string()),
                    user_agent: account::user_agent(user_agent),
                },
                &refresh.hash(),
            )
            .await?;
        Ok(ActiveSession { session, refresh })
    }

    /// Continues a session with its refresh token: answers the user as they are now (their
    /// role may have changed) and the session with its next refresh token. A token used before
    /// ends its session and is refused.
    pub async fn refresh_session(
        &self,
        token: &str,
        client: Option<IpAddr>,
    ) -> Result<(User, ActiveSession)> {
        let presented = RefreshToken::check(token)?;
        let next = RefreshToken::generate();
        let outcome = self
            .store
            .rotate_refresh(
                &presented.hash(),
                &next.hash(),
                Utc::now(),
                self.session_policy.idle,
                client.map(|c| c.to_string()),
            )
            .await?;
        let session = match outcome {
            Refreshed::Rotated(session) => session,
            Refreshed::Unknown => {
                return Err(Error::Unauthenticated(
                    "this refresh token is not known; sign in again".into(),
                ))
            }
            Refreshed::Reused(session) => {
                tracing::warn!(
                    session = %session.id,
                    user = %session.user_id,
                    client = ?client,
                    "a used refresh token was presented again: the session is ended"
                );
                self.ended_here.note([session.id], SessionEnd::RefreshReused);
                return Err(Error::Unauthenticated(
                    SessionEnd::RefreshReused.sentence().into(),
                ));
            }
            Refreshed::Over(session) => {
                session.check(Utc::now(), self.session_policy.idle)?;
                return Err(Error::Unauthenticated(
                    "this session has ended; sign in again".into(),
                ));
            }
        };
        let scope = Scope::Tenant {
            tenant_id: session.tenant_id,
            customer_id: session.customer_id,
        };
        let Some(user) = self.store.user(scope, session.user_id).await? else {
            return Err(Error::Unauthenticated(
                "the user behind this session no longer exists".into(),
            ));
        };
        // A tenant that came to require a second factor: a session started with the password
        // alone does not go on; signing in again sets the factor up.
        let has_factor = self
            .store
            .mfa(scope, user.id)
            .await?
            .is_some_and(|m| m.confirmed_at.is_some());
        if !has_factor && self.store.mfa_required(scope, user.tenant_id).await? {
            self.ended_here.note([session.id], SessionEnd::EndedByUser);
            self.store
                .end_session(scope, user.id, session.id, SessionEnd::EndedByUser, Utc::now())
                .await?;
            return Err(Error::Unauthenticated(
                "your organisation now requires a second factor; sign in again to set it up".into(),
            ));
        }
        Ok((
            user,
            ActiveSession {
                session,
                refresh: next,
            },
        ))
    }

    /// The session a caller's token belongs to, or why it has none.
    fn own_session(actor: &Actor, action: &str) -> Result<(UserId, SessionId)> {
        match (actor.user_id, actor.session_id) {
            (Some(user), Some(session)) => Ok((user, session)),
            _ => Err(Error::Forbidden(format!(
                "this token belongs to no sign-in session (an API key or an issued token): there is no session to {action}"
            ))),
        }
    }

    fn own_user(actor: &Actor, action: &str) -> Result<UserId> {
        actor.user_id.ok_or_else(|| {
            Error::Forbidden(format!(
                "this token belongs to no user (an API key or an issued token): there are no sessions to {action}"
            ))
        })
    }

    /// Signs out of the caller's session: its tokens and refresh token stop working.
    pub async fn logout(&self, actor: &Actor) -> Result<bool> {
        let (user, session) = Self::own_session(actor, "sign out of")?;
        self.ended_here.note([session], SessionEnd::Logout);
        self.store
            .end_session(actor.scope(), user, session, SessionEnd::Logout, Utc::now())
            .await
    }

    /// Ends every session of the caller's user, this one included; answers how many ended.
    pub async fn logout_everywhere(&self, actor: &Actor) -> Result<u64> {
        let user = Self::own_user(actor, "sign out of")?;
        let open = self.store.list_sessions(actor.scope(), user, Utc::now()).await?;
        self.ended_here.note(
            open.iter().map(|s| s.id).chain(actor.session_id),
            SessionEnd::EndedByUser,
        );
        self.store
            .end_user_sessions(actor.scope(), user, None, SessionEnd::EndedByUser, Utc::now())
            .await
    }

    /// The caller's open sessions, last refreshed first.
    pub async fn my_sessions(&self, actor: &Actor) -> Result<Vec<UserSession>> {
        let user = Self::own_user(actor, "list")?;
        let now = Utc::now();
        let open = self.store.list_sessions(actor.scope(), user, now).await?;
        // Sessions idle too long are over although nothing ended them.
        Ok(open
            .into_iter()
            .filter(|s| s.check(now, self.session_policy.idle).is_ok())
            .collect())
    }

    /// Ends one of the caller's own sessions (another device, say); `NOT_FOUND` for one that is
    /// not the caller's or not open.
    pub async fn end_my_session(&self, actor: &Actor, id: SessionId) -> Result<()> {
        let user = Self::own_user(actor, "end")?;
        // Only the caller's own sessions are noted: another user's id must not be refused here.
        let own = self
            .store
            .session(actor.scope(), id)
            .await?
            .filter(|s| s.user_id == user);
        if own.is_some() {
            self.ended_here.note([id], SessionEnd::EndedByUser);
        }
        if self
            .store
            .end_session(actor.scope(), user, id, SessionEnd::EndedByUser, Utc::now())
            .await?
        {
            Ok(())
        } else {
            Err(Error::not_found("session", id))
        }
    }

    /// Ends the sessions of `user` but `except` after a password change.
    pub(super) async fn end_sessions_after_password_change(
        &self,
        user: &User,
        except: Option<SessionId>,
    ) -> Result<()> {
        self.end_user_sessions_because(user, except, SessionEnd::PasswordChanged)
            .await
    }

    /// Ends the sessions of `user` but `except`, saying `why`.
    pub(super) async fn end_user_sessions_because(
        &self,
        user: &User,
        except: Option<SessionId>,
        why: SessionEnd,
    ) -> Result<()> {
        let scope = user.scope();
        let open = self.store.list_sessions(scope, user.id, Utc::now()).await?;
        self.ended_here
            .note(open.iter().map(|s| s.id).filter(|id| Some(*id) != except), why);
        self.store
            .end_user_sessions(scope, user.id, except, why, Utc::now())
            .await
            .map(|_| ())
    }

    /// Confirms that the session behind a token still holds.
    pub(super) async fn confirm_session(&self, actor: &Actor, id: SessionId) -> Result<()> {
        if let Some(why) = self.ended_here.get(id) {
            return Err(Error::Unauthenticated(why.sentence().into()));
        }
        let session =
            self.store.session(actor.scope(), id).await?.ok_or_else(|| {
                Error::Unauthenticated("this session no longer exists; sign in again".into())
            })?;
        if Some(session.user_id) != actor.user_id {
            return Err(Error::Unauthenticated(
                "the token's session is another user's".into(),
            ));
        }
        session.check(Utc::now(), self.session_policy.idle)
    }
}
