//! API keys: `apiKeys`, `apiKey`, `createApiKey`, `rollApiKey`, `revokeApiKey`.

use async_graphql::{Context, InputObject, Object, ID};
use chrono::{DateTime, Utc};
use ioto_app::{CreateApiKey, CreatedApiKey};
use ioto_domain::api_key::ApiKey;
use ioto_domain::fleet::query::Cursor;
use ioto_domain::identifiers::Name;
use ioto_domain::{ApiKeyId, CustomerId, Error, TenantId};

use crate::context::{actor, services};
use crate::directory::{connection, ApiKeyConnection, CustomerObject, UserObject};
use crate::enums::{ApiKeyStateKind, RoleKind};
use crate::error::{to_gql, GqlResult};
use crate::paging::page;
use crate::scalars::parse_tenant;

/// A tenant's credential for a service or script. The key itself is shown once, when it is
/// created or rolled; here only its hint.
#[derive(Clone)]
pub struct ApiKeyObject(pub ApiKey);

#[Object(name = "ApiKey")]
impl ApiKeyObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    /// What requests with the key may do (never above the role of the person who made it).
    async fn role(&self) -> RoleKind {
        self.0.role.into()
    }
    /// The sub-customer a CUSTOMER_USER key acts for.
    #[graphql(complexity = "crate::limits::backend_call(child_complexity)")]
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<CustomerObject>> {
        let Some(id) = self.0.customer_id else {
            return Ok(None);
        };
        Ok(services(ctx)
            .directory
            .customer(actor(ctx)?, id)
            .await
            .gql()?
            .map(CustomerObject))
    }
    /// The key's first and last characters (`ioto_AbCd…wXyZ`), to recognise it.
    async fn hint(&self) -> &str {
        &self.0.hint
    }
    async fn state(&self) -> ApiKeyStateKind {
        self.0.state(Utc::now()).into()
    }
    /// The person who made the key; null when they have since been deleted.
    #[graphql(complexity = "crate::limits::backend_call(child_complexity)")]
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserObject>> {
        let Some(id) = self.0.created_by else {
            return Ok(None);
        };
        Ok(services(ctx)
            .directory
            .user(actor(ctx)?, id)
            .await
            .gql()?
            .map(UserObject))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the key stops working; null: it does not expire.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    /// When the key was last used (written at most once a minute).
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
    /// The client address it was last used from.
    async fn last_used_address(&self) -> Option<&str> {
        self.0.last_used_address.as_deref()
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
    /// The key this one replaced when it was rolled.
    async fn rolled_from(&self) -> Option<ID> {
        self.0.rolled_from.map(|k| ID(k.to_string()))
    }
    /// The key that replaced this one; this one works until `expiresAt`.
    async fn replaced_by(&self) -> Option<ID> {
        self.0.replaced_by.map(|k| ID(k.to_string()))
    }
}

/// A key just created or rolled.
pub struct CreatedApiKeyPayload(CreatedApiKey);

#[Object(name = "CreatedApiKey")]
impl CreatedApiKeyPayload {
    async fn api_key(&self) -> ApiKeyObject {
        ApiKeyObject(self.0.key.clone())
    }
    /// The key itself, shown this once (only its hash is kept): send it as
    /// `Authorization: Bearer <key>`.
    async fn secret(&self) -> &str {
        self.0.token.expose()
    }
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    /// Platform admins only: the tenant the key acts in (default: your own).
    pub tenant_id: Option<ID>,
    /// What the key is for (1 to 200 characters), e.g. "billing export".
    pub name: String,
    /// At most your own role.
    pub role: RoleKind,
    /// Required for CUSTOMER_USER, empty for every other role.
    pub customer_id: Option<ID>,
    /// Days until the key stops working (1 to 1096); leave it out for a key that does not expire.
    pub expires_in_days: Option<i32>,
}

#[derive(Default)]
pub struct ApiKeyQuery;

#[Object]
impl ApiKeyQuery {
    /// The tenant's API keys by name, revoked and expired ones included (platform admins may
    /// name another tenant). Needs TENANT_ADMIN or PLATFORM_ADMIN.
    #[graphql(complexity = "crate::limits::page_cost(first, 50, child_complexity)")]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        #[graphql(desc = "Page size (default 50, at most 1000).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ApiKeyConnection> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let page = page(first.unwrap_or(50), after.as_ref(), (), false)?;
        let rows = services(ctx)
            .directory
            .api_keys(actor(ctx)?, tenant, &page)
            .await
            .gql()?;
        Ok(connection(
            rows,
            &page,
            |k| Cursor {
                k: k.name.to_string(),
                id: k.id.0,
            },
            ApiKeyObject,
        )
        .into())
    }

    async fn api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<ApiKeyObject>> {
        let id = ApiKeyId::parse(&id, "id").map_err(to_gql)?;
        Ok(services(ctx)
            .directory
            .api_key(actor(ctx)?, id)
            .await
            .gql()?
            .map(ApiKeyObject))
    }
}

fn days(v: Option<i32>) -> Option<i64> {
    v.map(i64::from)
}

#[derive(Default)]
pub struct ApiKeyMutation;

#[Object]
impl ApiKeyMutation {
    /// Creates an API key for a service; the answer holds the key itself, shown this once.
    /// Needs TENANT_ADMIN or PLATFORM_ADMIN, signed in as a person.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> async_graphql::Result<CreatedApiKeyPayload> {
        let tenant_id = input
            .tenant_id
            .map(|t| TenantId::parse(&t, "input.tenantId"))
            .transpose()
            .map_err(to_gql)?;
        let name = Name::parse(&input.name, "input.name").map_err(to_gql)?;
        let customer_id = input
            .customer_id
            .map(|c| CustomerId::parse(&c, "input.customerId"))
            .transpose()
            .map_err(to_gql)?;
        let created = services(ctx)
            .directory
            .create_api_key(
                actor(ctx)?,
                CreateApiKey {
                    tenant_id,
                    name,
                    role: input.role.into(),
                    customer_id,
                    expires_in_days: days(input.expires_in_days),
                },
            )
            .await
            .map_err(|e| match e {
                Error::InvalidInput { field, reason } if !field.starts_with("input.") => {
                    to_gql(Error::invalid(format!("input.{field}"), reason))
                }
                other => to_gql(other),
            })?;
        Ok(CreatedApiKeyPayload(created))
    }

    /// Replaces a key with a new one of the same name, role and sub-customer; the old key keeps
    /// working for `overlapHours` (0 to 168, default 24) so services can move over. The new key
    /// lasts `expiresInDays`, or as long as the old one was made to last.
    async fn roll_api_key(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = 24)] overlap_hours: i32,
        expires_in_days: Option<i32>,
    ) -> async_graphql::Result<CreatedApiKeyPayload> {
        let id = ApiKeyId::parse(&id, "id").map_err(to_gql)?;
        let rolled = services(ctx)
            .directory
            .roll_api_key(actor(ctx)?, id, i64::from(overlap_hours), days(expires_in_days))
            .await
            .gql()?;
        Ok(CreatedApiKeyPayload(rolled))
    }

    /// Revokes a key: requests with it are refused from now on and its open subscriptions end.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ApiKeyObject> {
        let id = ApiKeyId::parse(&id, "id").map_err(to_gql)?;
        Ok(ApiKeyObject(
            services(ctx)
                .directory
                .revoke_api_key(actor(ctx)?, id)
                .await
                .gql()?,
        ))
    }
}
