//! Tenant, sub-customer and user management, and login.

mod api_keys;
mod mfa;
mod sessions;
pub mod throttle;

use self::api_keys::KeyChecks;
pub use self::api_keys::{CreateApiKey, CreatedApiKey};
pub use self::mfa::{Enrollee, MfaStatus, SignIn, TotpSetup};
use self::sessions::EndedHere;
pub use self::sessions::{ActiveSession, SessionPolicy};

use std::net::IpAddr;
use std::sync::Arc;

use self::throttle::LoginThrottle;
use crate::lanes::{
    hash_password_off_runtime as hash_password, verify_password_off_runtime as verify_password,
};
use ioto_domain::directory::{
    Customer, CustomerPatch, LoginRecord, NewCustomer, NewTenant, NewUser, Tenant, User, UserPatch,
};
use ioto_domain::fleet::query::Page;
use ioto_domain::identifiers::{Email, Name, Slug};
use ioto_domain::password::decoy_hash;
use ioto_domain::ports::Directory;
use ioto_domain::{Actor, CustomerId, Error, Permission, Result, Role, Scope, TenantId, UserId};

/// Input of [`DirectoryService::create_user`], already parsed.
#[derive(Debug, Clone)]
pub struct CreateUser {
    pub tenant_id: Option<TenantId>,
    pub customer_id: Option<CustomerId>,
    pub email: Email,
    pub display_name: Name,
    pub role: Role,
    pub password: String,
}

#[derive(Clone)]
pub struct DirectoryService {
    store: Arc<dyn Directory>,
    /// Every check of a password takes a slot here first ([`LoginThrottle`]).
    throttle: Arc<LoginThrottle>,
    /// Recent API key lookups, and when each key's use was last written.
    keys: Arc<KeyChecks>,
    /// How long sign-in sessions last.
    session_policy: SessionPolicy,
    /// Sessions ended on this instance lately.
    ended_here: Arc<EndedHere>,
    /// Seals second-factor secrets; none: second factors are unavailable.
    secrets: Option<Arc<ioto_domain::fleet::secret::SecretCipher>>,
}

/// How long an API key lookup is reused unless [`DirectoryService::with_key_checks_every`] says.
const KEY_CHECKS_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

impl DirectoryService {
    pub fn new(store: Arc<dyn Directory>) -> Self {
        Self {
            store,
            throttle: Arc::new(LoginThrottle::default()),
            keys: Arc::new(KeyChecks::new(KEY_CHECKS_EVERY)),
            session_policy: SessionPolicy::default(),
            ended_here: Arc::new(EndedHere::default()),
            secrets: None,
        }
    }

    /// Sets how long sign-in sessions last.
    pub fn with_session_policy(mut self, policy: SessionPolicy) -> Self {
        self.session_policy = policy;
        self
    }

    /// Reuses an API key lookup for `every` (the cadence at which signed tokens' users are
    /// re-checked): a key revoked on another instance is refused here within it.
    pub fn with_key_checks_every(mut self, every: std::time::Duration) -> Self {
        self.keys = Arc::new(KeyChecks::new(every));
        self
    }

    /// Checks `password` against `hash` for `email` from `client`, within the throttle: a slot
    /// is taken before the hash is computed and the outcome counted before it is given back.
    async fn check_password(
        &self,
        email: &str,
        client: Option<IpAddr>,
        password: &str,
        hash: &str,
    ) -> Result<bool> {
        let attempt = self
            .throttle
            .begin(email, client)
            .map_err(|refused| Error::RateLimited(refused.message()))?;
        let verified = verify_password(password, hash).await?;
        if verified {
            attempt.succeeded();
        } else {
            attempt.failed();
        }
        Ok(verified)
    }

    /// Checks e-mail and password; the same error for an unknown e-mail and a wrong password.
    /// Returns the login record and the user it belongs to. `client` is the caller's address,
    /// for the throttle.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<(LoginRecord, User)> {
        let denied = || Error::Unauthenticated("e-mail or password is wrong".into());
        let Ok(parsed) = Email::parse(email) else {
            self.check_password(email, client, password, decoy_hash()).await?;
            return Err(denied());
        };
        let record = self.store.login_record(&parsed).await?;
        let hash = record.as_ref().map_or(decoy_hash(), |r| r.password_hash.as_str());
        let verified = self
            .check_password(parsed.as_str(), client, password, hash)
            .await?;
        match record {
            Some(rec) if verified => {
                let scope = Scope::Tenant {
                    tenant_id: rec.tenant_id,
                    customer_id: rec.customer_id,
                };
                // Deleted between the lookup and now: the same answer as an unknown e-mail.
                let user = self.store.user(scope, rec.user_id).await?.ok_or_else(denied)?;
                Ok((rec, user))
            }
            Some(_) | None => Err(denied()),
        }
    }

    /// Checks that the user a token names still exists with the role, tenant and customer the
    /// token claims, so deleting or demoting a user takes effect before their token expires.
    pub async fn confirm_actor(&self, actor: &Actor) -> Result<()> {
        if let Some(key) = actor.api_key {
            return self.confirm_key(actor, key).await;
        }
        let Some(id) = actor.user_id else { return Ok(()) };
        match self.store.user(actor.scope(), id).await? {
            None => Err(Error::Unauthenticated(
                "the user behind this token no longer exists".into(),
            )),
            Some(u)
                if u.role != actor.role
                    || u.tenant_id != actor.tenant_id
                    || u.customer_id != actor.customer_id =>
            {
                Err(Error::Unauthenticated(
                    "your role has changed since this token was issued; sign in again".into(),
                ))
            }
            // `iat` has whole seconds: a token of the same second as the change is the new one.
            Some(u)
                if u.credentials_changed_at
                    .zip(actor.issued_at)
                    .is_some_and(|(changed, issued)| issued.timestamp() < changed.timestamp()) =>
            {
                Err(Error::Unauthenticated(
                    "the password has changed since this token was issued; sign in again".into(),
                ))
            }
            Some(_) => match actor.session_id {
                Some(session) => self.confirm_session(actor, session).await,
                None => Ok(()),
            },
        }
    }

    /// The caller's own user (when the token names one) and tenant.
    pub async fn me(&self, actor: &Actor) -> Result<(Option<User>, Tenant)> {
        let scope = actor.scope();
        let tenant = self
            .store
            .tenant(scope, actor.tenant_id)
            .await?
            .ok_or_else(|| Error::Unauthenticated("the token's tenant no longer exists".into()))?;
        let user = match actor.user_id {
            Some(id) => Some(
                self.store
                    .user(scope, id)
                    .await?
                    .ok_or_else(|| Error::Unauthenticated("the token's user no longer exists".into()))?,
            ),
            None => None,
        };
        Ok((user, tenant))
    }

    pub async fn tenants(&self, actor: &Actor) -> Result<Vec<Tenant>> {
        self.store.list_tenants(actor.scope()).await
    }

    pub async fn tenant(&self, actor: &Actor, id: TenantId) -> Result<Option<Tenant>> {
        if !actor.sees_tenant(id) {
            return Ok(None);
        }
        self.store.tenant(actor.scope(), id).await
    }

    /// Finds a tenant by id or slug (CLI convenience).
    pub async fn find_tenant(&self, actor: &Actor, id_or_slug: &str) -> Result<Tenant> {
        let found = match TenantId::parse(id_or_slug, "tenant") {
            Ok(id) => self.tenant(actor, id).await?,
            Err(_) => {
                self.store
                    .tenant_by_slug(actor.scope(), &Slug::parse(id_or_slug)?)
                    .await?
            }
        };
        found.ok_or_else(|| Error::not_found("tenant", id_or_slug))
    }

    pub async fn create_tenant(&self, actor: &Actor, slug: Slug, name: Name) -> Result<Tenant> {
        actor.require(Permission::ManageTenants, "create tenants")?;
        self.store
            .create_tenant(actor.scope(), NewTenant { slug, name })
            .await
    }

    /// Platform admins rename any tenant; tenant admins their own.
    pub async fn rename_tenant(&self, actor: &Actor, id: TenantId, name: Name) -> Result<Tenant> {
        let own = actor.role == Role::TenantAdmin && actor.tenant_id == id;
        if !(own || actor.role.allows(Permission::ManageTenants)) {
            return Err(Error::forbidden("rename this tenant"));
        }
        self.store.rename_tenant(actor.scope(), id, name).await
    }

    pub async fn customers(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        page: &Page<()>,
    ) -> Result<Vec<Customer>> {
        actor.require(Permission::ReadCustomers, "list customers")?;
        let tenant = actor.target_tenant(tenant)?;
        self.store.list_customers(actor.scope(), tenant, page).await
    }

    pub async fn customer(&self, actor: &Actor, id: CustomerId) -> Result<Option<Customer>> {
        actor.require(Permission::ReadCustomers, "read customers")?;
        self.store.customer(actor.scope(), id).await
    }

    pub async fn create_customer(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        name: Name,
        external_ref: Option<String>,
    ) -> Result<Customer> {
        actor.require(Permission::ManageCustomers, "create customers")?;
        let tenant_id = actor.target_tenant(tenant)?;
        self.store
            .create_customer(
                actor.scope(),
                NewCustomer {
                    tenant_id,
                    name,
                    external_ref,
                },
            )
            .await
    }

    pub async fn update_customer(
        &self,
        actor: &Actor,
        id: CustomerId,
        patch: CustomerPatch,
    ) -> Result<Customer> {
        actor.require(Permission::ManageCustomers, "change customers")?;
        self.store.update_customer(actor.scope(), id, patch).await
    }

    pub async fn delete_customer(&self, actor: &Actor, id: CustomerId) -> Result<()> {
        actor.require(Permission::ManageCustomers, "delete customers")?;
        self.store.delete_customer(actor.scope(), id).await
    }

    pub async fn users(&self, actor: &Actor, tenant: Option<TenantId>, page: &Page<()>) -> Result<Vec<User>> {
        actor.require(Permission::ReadUsers, "list users")?;
        let tenant = actor.target_tenant(tenant)?;
        self.store.list_users(actor.scope(), tenant, page).await
    }

    /// Anyone may read their own user; reading others needs `ReadUsers`.
    pub async fn user(&self, actor: &Actor, id: UserId) -> Result<Option<User>> {
        if actor.user_id != Some(id) {
            actor.require(Permission::ReadUsers, "read other users")?;
        }
        self.store.user(actor.scope(), id).await
    }

    /// Checks that `customer` exists in `tenant` when the role needs one, and is absent otherwise.
    async fn check_customer_for_role(
        &self,
        actor: &Actor,
        tenant: TenantId,
        role: Role,
        customer: Option<CustomerId>,
    ) -> Result<()> {
        match (role.is_customer_scoped(), customer) {
            (true, None) => Err(Error::invalid("customerId", "is required for role CUSTOMER_USER")),
            (false, Some(_)) => Err(Error::invalid(
                "customerId",
                format!("must be empty for role {role}; only CUSTOMER_USER belongs to a customer"),
            )),
            (true, Some(c)) => match self.store.customer(actor.scope(), c).await? {
                Some(found) if found.tenant_id == tenant => Ok(()),
                _ => Err(Error::invalid(
                    "customerId",
                    format!("customer {c} does not exist in this tenant"),
                )),
            },
            (false, None) => Ok(()),
        }
    }

    pub async fn create_user(&self, actor: &Actor, input: CreateUser) -> Result<User> {
        Self::person_only(actor, "create users")?;
        actor.require(Permission::ManageUsers, "create users")?;
        if !actor.role.may_grant(input.role) {
            return Err(Error::Forbidden(format!(
                "your role cannot create users with role {}",
                input.role
            )));
        }
        let tenant_id = actor.target_tenant(input.tenant_id)?;
        self.check_customer_for_role(actor, tenant_id, input.role, input.customer_id)
            .await?;
        let password_hash = hash_password(&input.password).await?;
        let email = input.email.clone();
        let create = self.store.create_user(
            actor.scope(),
            NewUser {
                tenant_id,
                customer_id: input.customer_id,
                email: input.email,
                display_name: input.display_name,
                role: input.role,
                password_hash,
            },
        );
        self.email_in_use_guarded(actor, Some(&email), create).await
    }

    /// Runs a write that sets a user's e-mail, so that it does not tell which addresses other
    /// tenants use: e-mails are unique on the whole platform, and the store's answer to a clash
    /// ("a user with e-mail … already exists") would tell it. A clash gets one answer wherever
    /// the other user is, and counts against the caller in the sign-in throttle, so that trying
    /// addresses one after another soon has to wait.
    async fn email_in_use_guarded<T>(
        &self,
        actor: &Actor,
        email: Option<&Email>,
        write: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let Some(email) = email else {
            return write.await;
        };
        let attempt = self
            .throttle
            .begin_email_change(&actor.subject)
            .map_err(|refused| Error::RateLimited(refused.message()))?;
        match write.await {
            Err(Error::Conflict(_)) => {
                attempt.failed();
                Err(Error::Conflict(format!(
                    "the e-mail address '{email}' cannot be used for this user; choose another"
                )))
            }
            other => other,
        }
    }

    /// Loads another user the caller may manage: `ManageUsers`, not the caller themself (`self_rule`
    /// says what to do instead), and not a user whose role is above the caller's.
    async fn managed_user(&self, actor: &Actor, id: UserId, action: &str, self_rule: &str) -> Result<User> {
        Self::person_only(actor, action)?;
        actor.require(Permission::ManageUsers, action)?;
        if actor.user_id == Some(id) {
            return Err(Error::Conflict(self_rule.into()));
        }
        let user = self
            .store
            .user(actor.scope(), id)
            .await?
            .ok_or_else(|| Error::not_found("user", id))?;
        if !actor.role.may_grant(user.role) {
            return Err(Error::Forbidden(format!(
                "your role cannot {action} of a {}",
                user.role
            )));
        }
        Ok(user)
    }

    pub async fn set_user_role(
        &self,
        actor: &Actor,
        id: UserId,
        role: Role,
        customer: Option<CustomerId>,
    ) -> Result<User> {
        let user = self
            .managed_user(
                actor,
                id,
                "change the role",
                "you cannot change your own role; ask another administrator",
            )
            .await?;
        if !actor.role.may_grant(role) {
            return Err(Error::Forbidden(format!("your role cannot make a user {role}")));
        }
        self.check_customer_for_role(actor, user.tenant_id, role, customer)
            .await?;
        self.store.set_user_role(actor.scope(), id, role, customer).await
    }

    pub async fn delete_user(&self, actor: &Actor, id: UserId) -> Result<()> {
        self.managed_user(actor, id, "delete the user", "you cannot delete your own user")
            .await?;
        self.store.delete_user(actor.scope(), id).await
    }

    /// Changes display name and e-mail: anyone for themselves, user managers for others.
    pub async fn update_user(&self, actor: &Actor, id: UserId, patch: UserPatch) -> Result<User> {
        if actor.user_id != Some(id) {
            self.managed_user(actor, id, "change the details", "").await?;
        }
        let email = patch.email.clone();
        self.email_in_use_guarded(
            actor,
            email.as_ref(),
            self.store.update_user(actor.scope(), id, patch),
        )
        .await
    }

    /// Sets another user's password (an administrator's reset); for your own use `change_password`.
    pub async fn set_user_password(&self, actor: &Actor, id: UserId, password: &str) -> Result<()> {
        self.managed_user(
            actor,
            id,
            "set the password",
            "use changePassword for your own password",
        )
        .await?;
        let user = self
            .store
            .user(actor.scope(), id)
            .await?
            .ok_or_else(|| Error::not_found("user", id))?;
        let hash = hash_password(password).await?;
        self.store.set_password_hash(actor.scope(), id, hash).await?;
        self.end_sessions_after_password_change(&user, None).await
    }

    /// Changes the caller's own password after checking the current one.
    /// The current password is checked within the same throttle as sign-ins, under the user's
    /// e-mail.
    pub async fn change_password(
        &self,
        actor: &Actor,
        current: &str,
        new: &str,
        client: Option<IpAddr>,
    ) -> Result<()> {
        let id = actor.user_id.ok_or_else(|| {
            Error::Forbidden("this token belongs to no user; there is no password to change".into())
        })?;
        let user = self
            .store
            .user(actor.scope(), id)
            .await?
            .ok_or_else(|| Error::not_found("user", id))?;
        let rec = self
            .store
            .login_record(&user.email)
            .await?
            .ok_or_else(|| Error::not_found("user", id))?;
        if !self
            .check_password(user.email.as_str(), client, current, &rec.password_hash)
            .await?
        {
            return Err(Error::invalid("currentPassword", "is not your current password"));
        }
        let hash = hash_password(new).await.map_err(|e| match e {
            Error::InvalidInput { reason, .. } => Error::invalid("newPassword", reason),
            other => other,
        })?;
        self.store.set_password_hash(actor.scope(), id, hash).await?;
        // The caller's own session goes on (its next refresh carries a token issued after the
        // change); every other session of the user ends.
        self.end_sessions_after_password_change(&user, actor.session_id)
            .await
    }
}
