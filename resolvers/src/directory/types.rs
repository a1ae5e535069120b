use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ioto_domain::directory::{Customer, Tenant, User};
use ioto_domain::events::DirectoryEvent;
use ioto_domain::fleet::query::{Cursor, Page as ListPage};
use ioto_domain::TenantId;

use crate::context::{actor, services};
use crate::enums::{DirectoryChangeKind, RoleKind};
use crate::error::GqlResult;
use crate::fleet::PageInfo;
use crate::paging::page;

/// A company operating a fleet on the platform.
pub struct TenantObject(pub Tenant);

#[Object(name = "Tenant")]
impl TenantObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Short URL-safe handle, unique across the platform.
    async fn slug(&self) -> &str {
        self.0.slug.as_str()
    }
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Sub-customers of this tenant by name (a customer user sees only its own), paged like `sims`.
    #[graphql(complexity = "crate::limits::page_cost(first, 50, child_complexity)")]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size (default 50, at most 1000).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<CustomerConnection> {
        customer_page(ctx, Some(self.0.id), first, after).await
    }
    /// Users of this tenant by e-mail, paged like `sims`. Needs a role that may read users.
    #[graphql(complexity = "crate::limits::page_cost(first, 50, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size (default 50, at most 1000).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<UserConnection> {
        user_page(ctx, Some(self.0.id), first, after).await
    }
}

/// A Relay connection and its edge for one node type (the directory's lists).
macro_rules! connection_type {
    ($connection:ident, $edge:ident, $node:ty) => {
        #[derive(SimpleObject)]
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        /// A page of the list (Relay connection).
        #[derive(SimpleObject)]
        pub struct $connection {
            pub edges: Vec<$edge>,
            pub nodes: Vec<$node>,
            pub page_info: PageInfo,
        }

        impl From<Page<$node>> for $connection {
            fn from(p: Page<$node>) -> Self {
                Self {
                    nodes: p.rows.iter().map(|(_, n)| n.clone()).collect(),
                    edges: p
                        .rows
                        .into_iter()
                        .map(|(cursor, node)| $edge { cursor, node })
                        .collect(),
                    page_info: p.info,
                }
            }
        }
    };
}

connection_type!(CustomerConnection, CustomerEdge, CustomerObject);
connection_type!(
    ApiKeyConnection,
    ApiKeyEdge,
    crate::directory::api_keys::ApiKeyObject
);
connection_type!(UserConnection, UserEdge, UserObject);

/// Rows with their cursors, and the page's position.
pub struct Page<T> {
    rows: Vec<(String, T)>,
    info: PageInfo,
}

/// Cuts the extra row the store was asked for (it tells whether a next page exists) and wraps
/// the rest with their cursors.
pub(crate) fn connection<R, T>(
    rows: Vec<R>,
    page: &ListPage<()>,
    cursor: impl Fn(&R) -> Cursor,
    wrap: impl Fn(R) -> T,
) -> Page<T> {
    let (edges, has_next_page) = crate::paging::edges(rows, page.limit, cursor);
    let rows: Vec<(String, T)> = edges.into_iter().map(|(c, r)| (c, wrap(r))).collect();
    Page {
        info: PageInfo {
            has_next_page,
            has_previous_page: page.after.is_some(),
            start_cursor: rows.first().map(|(c, _)| c.clone()),
            end_cursor: rows.last().map(|(c, _)| c.clone()),
        },
        rows,
    }
}

pub(crate) async fn customer_page(
    ctx: &Context<'_>,
    tenant: Option<TenantId>,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<CustomerConnection> {
    let page = page(first.unwrap_or(50), after.as_ref(), (), false)?;
    let rows = services(ctx)
        .directory
        .customers(actor(ctx)?, tenant, &page)
        .await
        .gql()?;
    Ok(connection(
        rows,
        &page,
        |c| Cursor {
            k: c.name.to_string(),
            id: c.id.0,
        },
        CustomerObject,
    )
    .into())
}

pub(crate) async fn user_page(
    ctx: &Context<'_>,
    tenant: Option<TenantId>,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<UserConnection> {
    let page = page(first.unwrap_or(50), after.as_ref(), (), false)?;
    let rows = services(ctx)
        .directory
        .users(actor(ctx)?, tenant, &page)
        .await
        .gql()?;
    Ok(connection(
        rows,
        &page,
        |u| Cursor {
            k: u.email.to_string(),
            id: u.id.0,
        },
        UserObject,
    )
    .into())
}

/// A tenant's own customer.
#[derive(Clone)]
pub struct CustomerObject(pub Customer);

#[Object(name = "Customer")]
impl CustomerObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn tenant_id(&self) -> ID {
        ID(self.0.tenant_id.to_string())
    }
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    /// The tenant's own reference (ERP/CRM id), unique within the tenant.
    async fn external_ref(&self) -> Option<&str> {
        self.0.external_ref.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The daily usage forecast of the sub-customer's SIMs together, `days` days of it from
    /// today (1–90; a forecast holds 31). Null without usage in the last 90 days.
    #[graphql(complexity = "crate::limits::backend_call(child_complexity)")]
    async fn forecast(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] days: i32,
    ) -> async_graphql::Result<Option<crate::forecast::UsageForecastObject>> {
        crate::forecast::forecast_of_customer(ctx, &self.0, days).await
    }
}

/// A person who can sign in.
#[derive(Clone)]
pub struct UserObject(pub User);

#[Object(name = "User")]
impl UserObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn tenant_id(&self) -> ID {
        ID(self.0.tenant_id.to_string())
    }
    /// Set for CUSTOMER_USER only.
    async fn customer_id(&self) -> Option<ID> {
        self.0.customer_id.map(|c| ID(c.to_string()))
    }
    async fn email(&self) -> &str {
        self.0.email.as_str()
    }
    async fn display_name(&self) -> &str {
        self.0.display_name.as_str()
    }
    async fn role(&self) -> RoleKind {
        self.0.role.into()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The signed-in caller.
pub struct Me {
    pub user: Option<User>,
    pub tenant: Tenant,
    pub role: ioto_domain::Role,
    pub customer_id: Option<ioto_domain::CustomerId>,
    pub subject: String,
}

#[Object]
impl Me {
    /// E-mail of the signed-in user; null for service tokens that name no user.
    async fn email(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.email.as_str())
    }
    async fn display_name(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.display_name.as_str())
    }
    /// The token's subject claim.
    async fn subject(&self) -> &str {
        &self.subject
    }
    async fn role(&self) -> RoleKind {
        self.role.into()
    }
    async fn tenant(&self) -> TenantObject {
        TenantObject(self.tenant.clone())
    }
    /// The sub-customer a CUSTOMER_USER belongs to.
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<CustomerObject>> {
        let Some(id) = self.customer_id else {
            return Ok(None);
        };
        Ok(services(ctx)
            .directory
            .customer(actor(ctx)?, id)
            .await
            .gql()?
            .map(CustomerObject))
    }
    async fn user(&self) -> Option<UserObject> {
        self.user.clone().map(UserObject)
    }
    /// The caller's second factor.
    #[graphql(complexity = "crate::limits::backend_call(child_complexity)")]
    async fn mfa(&self, ctx: &Context<'_>) -> async_graphql::Result<crate::directory::mfa::MfaStatusObject> {
        Ok(services(ctx)
            .directory
            .mfa_status(actor(ctx)?)
            .await
            .gql()?
            .into())
    }
    /// The caller's open sign-in sessions, last refreshed first (`current` marks this one).
    #[graphql(complexity = "crate::limits::backend_call(child_complexity * 50)")]
    async fn sessions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::directory::sessions::SessionObject>> {
        let actor = actor(ctx)?;
        let list = services(ctx).directory.my_sessions(actor).await.gql()?;
        Ok(list
            .into_iter()
            .map(|s| crate::directory::sessions::SessionObject {
                current: Some(s.id) == actor.session_id,
                session: s,
            })
            .collect())
    }
}

/// A started session: its access token and the session with its refresh token.
pub struct Started {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub session: ioto_app::ActiveSession,
}

/// What a second step of a sign-in needs.
pub struct MfaChallengeObject {
    pub token: ioto_domain::mfa::ChallengeToken,
    pub enrol: bool,
    pub expires_at: DateTime<Utc>,
}

/// The second step a sign-in waits for.
#[Object(name = "MfaChallenge")]
impl MfaChallengeObject {
    /// Send with the code to `verifyMfa` (or, when `enrol`, to `startTotpEnrolment` and
    /// `confirmTotpEnrolment`). Good once, for 5 minutes and 5 wrong codes.
    async fn challenge(&self) -> &str {
        self.token.expose()
    }
    /// The tenant requires a second factor and this user has none yet: setting one up finishes
    /// the sign-in.
    async fn enrol(&self) -> bool {
        self.enrol
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

/// Result of a sign-in or refresh: a short-lived access token and the refresh token that
/// continues the session — or, for a user with a second factor, the challenge that a code
/// answers first (`mfa`; the token fields are then null).
pub struct LoginPayload {
    pub user: User,
    pub started: Option<Started>,
    pub mfa: Option<MfaChallengeObject>,
}

#[Object]
impl LoginPayload {
    /// Send as `Authorization: Bearer <token>`. Short-lived (`auth.access_token_minutes`).
    /// Null while `mfa` waits for a code.
    async fn token(&self) -> Option<&str> {
        self.started.as_ref().map(|s| s.token.as_str())
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.started.as_ref().map(|s| s.expires_at)
    }
    /// Good for one `refreshSession`, which answers a new token and a new refresh token; a
    /// refresh token presented a second time ends the session. Keep it out of URLs and logs.
    async fn refresh_token(&self) -> Option<&str> {
        self.started.as_ref().map(|s| s.session.refresh.expose())
    }
    /// The sign-in session this token belongs to.
    async fn session(&self) -> Option<crate::directory::sessions::SessionObject> {
        self.started
            .as_ref()
            .map(|s| crate::directory::sessions::SessionObject {
                session: s.session.session.clone(),
                current: true,
            })
    }
    /// The second step this sign-in waits for (a code, or setting a factor up); null when
    /// signed in.
    async fn mfa(&self) -> Option<&MfaChallengeObject> {
        self.mfa.as_ref()
    }
    async fn user(&self) -> UserObject {
        UserObject(self.user.clone())
    }
}

/// Starts the session of a user who just signed in and answers its tokens.
pub(crate) async fn start(ctx: &Context<'_>, user: User) -> async_graphql::Result<LoginPayload> {
    let svc = services(ctx);
    let request = ctx.data_opt::<crate::RequestContext>();
    let session = svc
        .directory
        .start_session(
            &user,
            request.and_then(|r| r.client),
            request.and_then(|r| r.user_agent.as_deref()),
        )
        .await
        .gql()?;
    let (token, expires_at) = svc.tokens.issue(&user, session.session.id).gql()?;
    Ok(LoginPayload {
        user,
        started: Some(Started {
            token,
            expires_at,
            session,
        }),
        mfa: None,
    })
}

/// A change in a tenant's directory.
pub struct DirectoryEventObject(pub DirectoryEvent);

#[Object(name = "DirectoryEvent")]
impl DirectoryEventObject {
    async fn tenant_id(&self) -> ID {
        ID(self.0.tenant_id.to_string())
    }
    async fn change(&self) -> DirectoryChangeKind {
        self.0.change.into()
    }
    /// Id of the tenant, customer or user that changed.
    async fn entity_id(&self) -> ID {
        ID(self.0.entity_id.to_string())
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}
