//! The directory mutations: signing in, tenants, sub-customers, users and passwords.

use async_graphql::{Context, InputObject, MaybeUndefined, Object, ID};
use ioto_app::CreateUser;
use ioto_domain::directory::{parse_external_ref, CustomerPatch, UserPatch};
use ioto_domain::events::{DirectoryChange, DirectoryEvent};
use ioto_domain::identifiers::{Email, Name, Slug};
use ioto_domain::{CustomerId, Error, TenantId, UserId};

use crate::context::{actor, services};
use crate::directory::{CustomerObject, LoginPayload, TenantObject, UserObject};
use crate::enums::RoleKind;
use crate::error::{to_gql, GqlResult};

#[derive(InputObject)]
pub struct CreateTenantInput {
    /// 2 to 40 lower-case letters, digits or '-'.
    pub slug: String,
    pub name: String,
}

#[derive(InputObject)]
pub struct CreateCustomerInput {
    /// Platform admins only: the tenant to create the customer in (default: your own).
    pub tenant_id: Option<ID>,
    pub name: String,
    pub external_ref: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateCustomerInput {
    pub name: Option<String>,
    /// Null clears the reference; leaving it out keeps it.
    pub external_ref: MaybeUndefined<String>,
}

#[derive(InputObject)]
pub struct CreateUserInput {
    /// Platform admins only: the tenant to create the user in (default: your own).
    pub tenant_id: Option<ID>,
    /// Required for CUSTOMER_USER, empty for every other role.
    pub customer_id: Option<ID>,
    pub email: String,
    pub display_name: String,
    pub role: RoleKind,
    /// At least 10 characters.
    pub password: String,
}

#[derive(InputObject)]
pub struct UpdateUserInput {
    pub display_name: Option<String>,
    pub email: Option<String>,
}

fn field<T>(r: ioto_domain::Result<T>, field: &str) -> async_graphql::Result<T> {
    r.map_err(|e| match e {
        Error::InvalidInput { reason, .. } => to_gql(Error::invalid(field, reason)),
        other => to_gql(other),
    })
}

fn customer_id(id: Option<ID>, name: &str) -> async_graphql::Result<Option<CustomerId>> {
    id.map(|id| CustomerId::parse(&id, name))
        .transpose()
        .map_err(to_gql)
}

#[derive(Default)]
pub struct DirectoryMutation;

#[Object]
impl DirectoryMutation {
    /// Signs in with e-mail and password: starts a session and answers its short-lived bearer
    /// token with the refresh token that continues it (`refreshSession`). A user with a second
    /// factor gets `mfa` instead: `verifyMfa` with a code finishes the sign-in (or, where the
    /// tenant requires a factor the user has not set up, `confirmTotpEnrolment`).
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> async_graphql::Result<LoginPayload> {
        let svc = services(ctx);
        let client = ctx.data_opt::<crate::RequestContext>().and_then(|r| r.client);
        svc.tokens.issues_tokens().gql()?;
        match svc.directory.sign_in(&email, &password, client).await.gql()? {
            ioto_app::SignIn::Done(user) => crate::directory::types::start(ctx, user).await,
            ioto_app::SignIn::Challenged {
                user,
                token,
                purpose,
                expires_at,
            } => Ok(LoginPayload {
                user,
                started: None,
                mfa: Some(crate::directory::types::MfaChallengeObject {
                    token,
                    enrol: purpose == ioto_domain::mfa::ChallengePurpose::Enrol,
                    expires_at,
                }),
            }),
        }
    }

    /// Changes the caller's own password.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> async_graphql::Result<bool> {
        services(ctx)
            .directory
            .change_password(
                actor(ctx)?,
                &current_password,
                &new_password,
                ctx.data_opt::<crate::RequestContext>().and_then(|r| r.client),
            )
            .await
            .gql()?;
        Ok(true)
    }

    /// PLATFORM_ADMIN only.
    async fn create_tenant(
        &self,
        ctx: &Context<'_>,
        input: CreateTenantInput,
    ) -> async_graphql::Result<TenantObject> {
        let slug = field(Slug::parse(&input.slug), "input.slug")?;
        let name = field(Name::parse(&input.name, "name"), "input.name")?;
        let svc = services(ctx);
        let t = svc.directory.create_tenant(actor(ctx)?, slug, name).await.gql()?;
        svc.realtime
            .directory_changed(DirectoryEvent::now(t.id, DirectoryChange::TenantCreated, t.id.0));
        Ok(TenantObject(t))
    }

    /// PLATFORM_ADMIN for any tenant, TENANT_ADMIN for their own.
    async fn rename_tenant(
        &self,
        ctx: &Context<'_>,
        id: ID,
        name: String,
    ) -> async_graphql::Result<TenantObject> {
        let id = TenantId::parse(&id, "id").map_err(to_gql)?;
        let name = field(Name::parse(&name, "name"), "name")?;
        let svc = services(ctx);
        let t = svc.directory.rename_tenant(actor(ctx)?, id, name).await.gql()?;
        svc.realtime
            .directory_changed(DirectoryEvent::now(t.id, DirectoryChange::TenantRenamed, t.id.0));
        Ok(TenantObject(t))
    }

    async fn create_customer(
        &self,
        ctx: &Context<'_>,
        input: CreateCustomerInput,
    ) -> async_graphql::Result<CustomerObject> {
        let tenant = input
            .tenant_id
            .map(|t| TenantId::parse(&t, "input.tenantId"))
            .transpose()
            .map_err(to_gql)?;
        let name = field(Name::parse(&input.name, "name"), "input.name")?;
        let external_ref = input
            .external_ref
            .as_deref()
            .map(|r| field(parse_external_ref(r), "input.externalRef"))
            .transpose()?;
        let svc = services(ctx);
        let c = svc
            .directory
            .create_customer(actor(ctx)?, tenant, name, external_ref)
            .await
            .gql()?;
        svc.realtime.directory_changed(DirectoryEvent::now(
            c.tenant_id,
            DirectoryChange::CustomerCreated,
            c.id.0,
        ));
        Ok(CustomerObject(c))
    }

    async fn update_customer(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateCustomerInput,
    ) -> async_graphql::Result<CustomerObject> {
        let id = CustomerId::parse(&id, "id").map_err(to_gql)?;
        let name = input
            .name
            .map(|n| field(Name::parse(&n, "name"), "input.name"))
            .transpose()?;
        let external_ref = match input.external_ref {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(r) => Some(Some(field(parse_external_ref(&r), "input.externalRef")?)),
        };
        let svc = services(ctx);
        let c = svc
            .directory
            .update_customer(actor(ctx)?, id, CustomerPatch { name, external_ref })
            .await
            .gql()?;
        svc.realtime.directory_changed(DirectoryEvent::now(
            c.tenant_id,
            DirectoryChange::CustomerUpdated,
            c.id.0,
        ));
        Ok(CustomerObject(c))
    }

    /// Refused while users or SIMs still belong to the customer.
    async fn delete_customer(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let cid = CustomerId::parse(&id, "id").map_err(to_gql)?;
        let svc = services(ctx);
        let actor = actor(ctx)?;
        let tenant = svc
            .directory
            .customer(actor, cid)
            .await
            .gql()?
            .map(|c| c.tenant_id);
        svc.directory.delete_customer(actor, cid).await.gql()?;
        if let Some(t) = tenant {
            svc.realtime
                .directory_changed(DirectoryEvent::now(t, DirectoryChange::CustomerDeleted, cid.0));
        }
        Ok(id)
    }

    async fn create_user(
        &self,
        ctx: &Context<'_>,
        input: CreateUserInput,
    ) -> async_graphql::Result<UserObject> {
        let create = CreateUser {
            tenant_id: input
                .tenant_id
                .map(|t| TenantId::parse(&t, "input.tenantId"))
                .transpose()
                .map_err(to_gql)?,
            customer_id: customer_id(input.customer_id, "input.customerId")?,
            email: field(Email::parse(&input.email), "input.email")?,
            display_name: field(
                Name::parse(&input.display_name, "displayName"),
                "input.displayName",
            )?,
            role: input.role.into(),
            password: input.password,
        };
        let svc = services(ctx);
        let u = svc
            .directory
            .create_user(actor(ctx)?, create)
            .await
            .map_err(|e| match e {
                Error::InvalidInput { field, reason } => {
                    to_gql(Error::invalid(format!("input.{field}"), reason))
                }
                other => to_gql(other),
            })?;
        svc.realtime.directory_changed(DirectoryEvent::now(
            u.tenant_id,
            DirectoryChange::UserCreated,
            u.id.0,
        ));
        Ok(UserObject(u))
    }

    /// Gives a user another role (and, for CUSTOMER_USER, the customer they belong to).
    async fn set_user_role(
        &self,
        ctx: &Context<'_>,
        id: ID,
        role: RoleKind,
        customer_id: Option<ID>,
    ) -> async_graphql::Result<UserObject> {
        let id = UserId::parse(&id, "id").map_err(to_gql)?;
        let customer = self::customer_id(customer_id, "customerId")?;
        let svc = services(ctx);
        let u = svc
            .directory
            .set_user_role(actor(ctx)?, id, role.into(), customer)
            .await
            .gql()?;
        svc.realtime.directory_changed(DirectoryEvent::now(
            u.tenant_id,
            DirectoryChange::UserRoleChanged,
            u.id.0,
        ));
        Ok(UserObject(u))
    }

    /// Changes display name or e-mail: your own, or (user managers) another user's.
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateUserInput,
    ) -> async_graphql::Result<UserObject> {
        let id = UserId::parse(&id, "id").map_err(to_gql)?;
        let patch = UserPatch {
            display_name: input
                .display_name
                .map(|n| field(Name::parse(&n, "displayName"), "input.displayName"))
                .transpose()?,
            email: input
                .email
                .map(|e| field(Email::parse(&e), "input.email"))
                .transpose()?,
        };
        let svc = services(ctx);
        let u = svc.directory.update_user(actor(ctx)?, id, patch).await.gql()?;
        svc.realtime.directory_changed(DirectoryEvent::now(
            u.tenant_id,
            DirectoryChange::UserUpdated,
            u.id.0,
        ));
        Ok(UserObject(u))
    }

    /// Sets another user's password (administrators' reset). For your own, use changePassword.
    async fn set_user_password(
        &self,
        ctx: &Context<'_>,
        id: ID,
        password: String,
    ) -> async_graphql::Result<bool> {
        let id = UserId::parse(&id, "id").map_err(to_gql)?;
        services(ctx)
            .directory
            .set_user_password(actor(ctx)?, id, &password)
            .await
            .gql()?;
        Ok(true)
    }

    async fn delete_user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let uid = UserId::parse(&id, "id").map_err(to_gql)?;
        let svc = services(ctx);
        let actor = actor(ctx)?;
        let tenant = svc.directory.user(actor, uid).await.gql()?.map(|u| u.tenant_id);
        svc.directory.delete_user(actor, uid).await.gql()?;
        if let Some(t) = tenant {
            svc.realtime
                .directory_changed(DirectoryEvent::now(t, DirectoryChange::UserDeleted, uid.0));
        }
        Ok(id)
    }
}
