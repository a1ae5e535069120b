//! Sign-in sessions: `refreshSession`, `logout`, `logoutEverywhere`, `endSession`, and the
//! `Session` object (`Me.sessions`, `LoginPayload.session`).

use async_graphql::{Context, Object, ID};
use chrono::{DateTime, Utc};
use ioto_domain::account::{SessionId, UserSession};

use crate::context::{actor, services};
use crate::directory::LoginPayload;
use crate::error::{to_gql, GqlResult};

/// A sign-in session: started by a login, continued by refreshes.
pub struct SessionObject {
    pub session: UserSession,
    /// Whether the request's token belongs to it.
    pub current: bool,
}

#[Object(name = "Session")]
impl SessionObject {
    async fn id(&self) -> ID {
        ID(self.session.id.to_string())
    }
    /// Whether this is the session of the token that asks.
    async fn current(&self) -> bool {
        self.current
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.session.created_at
    }
    /// When it was last refreshed (the sign-in, at first).
    async fn refreshed_at(&self) -> DateTime<Utc> {
        self.session.refreshed_at
    }
    /// When it ends at the latest, whatever its refreshes.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.session.expires_at
    }
    /// The client address it was started or last refreshed from.
    async fn client_address(&self) -> Option<&str> {
        self.session.client_address.as_deref()
    }
    /// The browser or program that started it, as it said.
    async fn user_agent(&self) -> Option<&str> {
        self.session.user_agent.as_deref()
    }
}

#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Continues a session: answers a new access token and a new refresh token for the one
    /// presented, which is used up. A refresh token presented a second time ends its session
    /// (RFC 9700): sign in again.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<LoginPayload> {
        let svc = services(ctx);
        svc.tokens.issues_tokens().gql()?;
        let client = ctx.data_opt::<crate::RequestContext>().and_then(|r| r.client);
        let (user, session) = svc
            .directory
            .refresh_session(&refresh_token, client)
            .await
            .gql()?;
        let (token, expires_at) = svc.tokens.issue(&user, session.session.id).gql()?;
        Ok(LoginPayload {
            user,
            started: Some(crate::directory::types::Started {
                token,
                expires_at,
                session,
            }),
            mfa: None,
        })
    }

    /// Signs out of this session: its tokens and its refresh token stop working.
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        services(ctx).directory.logout(actor(ctx)?).await.gql()
    }

    /// Signs out of every session of the caller, this one included; answers how many ended.
    async fn logout_everywhere(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        let n = services(ctx)
            .directory
            .logout_everywhere(actor(ctx)?)
            .await
            .gql()?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Ends one of the caller's own sessions (another browser, a lost phone).
    async fn end_session(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let id = SessionId::parse(&id, "id").map_err(to_gql)?;
        services(ctx)
            .directory
            .end_my_session(actor(ctx)?, id)
            .await
            .gql()?;
        Ok(true)
    }
}
