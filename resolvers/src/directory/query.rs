//! The directory queries: who is asking, tenants, sub-customers and users.

use async_graphql::{Context, Object, ID};
use ioto_domain::{CustomerId, TenantId, UserId};

use crate::context::{actor, services};
use crate::directory::{customer_page, user_page, CustomerConnection, UserConnection};
use crate::directory::{CustomerObject, Me, TenantObject, UserObject};
use crate::error::{to_gql, GqlResult};
use crate::scalars::parse_tenant;

#[derive(Default)]
pub struct DirectoryQuery;

#[Object]
impl DirectoryQuery {
    /// The signed-in caller: user, role and tenant.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        let actor = actor(ctx)?;
        let (user, tenant) = services(ctx).directory.me(actor).await.gql()?;
        Ok(Me {
            user,
            tenant,
            role: actor.role,
            customer_id: actor.customer_id,
            subject: actor.subject.clone(),
        })
    }

    /// Tenants visible to the caller: all of them for platform admins, otherwise the caller's own.
    async fn tenants(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TenantObject>> {
        let list = services(ctx).directory.tenants(actor(ctx)?).await.gql()?;
        Ok(list.into_iter().map(TenantObject).collect())
    }

    async fn tenant(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<TenantObject>> {
        let id = TenantId::parse(&id, "id").map_err(to_gql)?;
        Ok(services(ctx)
            .directory
            .tenant(actor(ctx)?, id)
            .await
            .gql()?
            .map(TenantObject))
    }

    /// Sub-customers of the caller's tenant by name (platform admins may name another tenant),
    /// paged like `sims`.
    #[graphql(complexity = "crate::limits::page_cost(first, 50, child_complexity)")]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        #[graphql(desc = "Page size (default 50, at most 1000).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<CustomerConnection> {
        customer_page(ctx, parse_tenant(tenant_id.as_ref())?, first, after).await
    }

    async fn customer(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<CustomerObject>> {
        let id = CustomerId::parse(&id, "id").map_err(to_gql)?;
        Ok(services(ctx)
            .directory
            .customer(actor(ctx)?, id)
            .await
            .gql()?
            .map(CustomerObject))
    }

    /// Users of the caller's tenant by e-mail (platform admins may name another tenant), paged
    /// like `sims`.
    #[graphql(complexity = "crate::limits::page_cost(first, 50, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        #[graphql(desc = "Page size (default 50, at most 1000).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<UserConnection> {
        user_page(ctx, parse_tenant(tenant_id.as_ref())?, first, after).await
    }

    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<UserObject>> {
        let id = UserId::parse(&id, "id").map_err(to_gql)?;
        Ok(services(ctx)
            .directory
            .user(actor(ctx)?, id)
            .await
            .gql()?
            .map(UserObject))
    }
}
