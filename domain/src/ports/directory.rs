//! The transactional store of tenants, sub-customers, users and SIMs.
//!
//! Every call takes the [`Scope`] it runs in. Adapters must enforce it twice over: in the query
//! itself, and (on Postgres) through row-level security fed by transaction-local settings, so a
//! pooled connection never carries one tenant's context into another's work.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::account::{NewSession, Refreshed, SessionEnd, SessionId, UserSession};
use crate::api_key::{ApiKey, NewApiKey};
use crate::directory::{
    Customer, CustomerPatch, LoginRecord, NewCustomer, NewTenant, NewUser, Tenant, User, UserPatch,
};
use crate::fleet::audit::AuditStamp;
use crate::fleet::query::Page;
use crate::identifiers::{Email, Name, Slug};
use crate::mfa::{Challenge, MfaRecord};
use crate::ports::EngineInfo;
use crate::{ApiKeyId, CustomerId, Result, Role, Scope, TenantId, UserId};

/// The engine behind the directory, for start-up logs and `/readyz`.
#[async_trait]
pub trait DirectoryEngine: Send + Sync + 'static {
    fn info(&self) -> EngineInfo;
    /// Cheap round trip for `/readyz`.
    async fn ping(&self) -> Result<()>;
    /// The engine's version (`PostgreSQL 15.19`, `SQLite 3.46.0`), printed by every bench.
    async fn server_version(&self) -> Result<String>;
}

#[async_trait]
pub trait TenantStore: Send + Sync + 'static {
    async fn create_tenant(&self, scope: Scope, new: NewTenant) -> Result<Tenant>;
    async fn tenant(&self, scope: Scope, id: TenantId) -> Result<Option<Tenant>>;
    async fn tenant_by_slug(&self, scope: Scope, slug: &Slug) -> Result<Option<Tenant>>;
    async fn list_tenants(&self, scope: Scope) -> Result<Vec<Tenant>>;
    async fn rename_tenant(&self, scope: Scope, id: TenantId, name: Name) -> Result<Tenant>;
}

#[async_trait]
pub trait CustomerStore: Send + Sync + 'static {
    async fn create_customer(&self, scope: Scope, new: NewCustomer) -> Result<Customer>;
    async fn customer(&self, scope: Scope, id: CustomerId) -> Result<Option<Customer>>;
    /// The tenant's customers by name (ties by id), after `page.after`, at most `page.limit`.
    async fn list_customers(&self, scope: Scope, tenant: TenantId, page: &Page<()>) -> Result<Vec<Customer>>;
    async fn update_customer(&self, scope: Scope, id: CustomerId, patch: CustomerPatch) -> Result<Customer>;
    /// Refuses with `Conflict` while users or SIMs still belong to the customer.
    async fn delete_customer(&self, scope: Scope, id: CustomerId) -> Result<()>;
}

#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    async fn create_user(&self, scope: Scope, new: NewUser) -> Result<User>;
    async fn user(&self, scope: Scope, id: UserId) -> Result<Option<User>>;
    /// The tenant's users by e-mail (ties by id), after `page.after`, at most `page.limit`.
    async fn list_users(&self, scope: Scope, tenant: TenantId, page: &Page<()>) -> Result<Vec<User>>;
    async fn set_user_role(
        &self,
        scope: Scope,
        id: UserId,
        role: Role,
        customer: Option<CustomerId>,
    ) -> Result<User>;
    async fn update_user(&self, scope: Scope, id: UserId, patch: UserPatch) -> Result<User>;
    async fn set_password_hash(&self, scope: Scope, id: UserId, hash: String) -> Result<()>;
    async fn delete_user(&self, scope: Scope, id: UserId) -> Result<()>;
    /// Looks a user up by e-mail across tenants, for login only.
    async fn login_record(&self, email: &Email) -> Result<Option<LoginRecord>>;
}

/// A tenant's API keys. Every write stores its audit entry (kind `API_KEY`) in the same
/// transaction.
#[async_trait]
pub trait ApiKeyStore: Send + Sync + 'static {
    /// Stores a new key; `Conflict` when its tenant already holds
    /// [`crate::api_key::MAX_LIVE_KEYS_PER_TENANT`] keys that are neither revoked nor expired.
    async fn create_api_key(&self, scope: Scope, new: NewApiKey, stamp: AuditStamp) -> Result<ApiKey>;
    async fn api_key(&self, scope: Scope, id: ApiKeyId) -> Result<Option<ApiKey>>;
    /// The tenant's keys by name (ties by id), revoked and expired ones included, after
    /// `page.after`, at most `page.limit`.
    async fn list_api_keys(&self, scope: Scope, tenant: TenantId, page: &Page<()>) -> Result<Vec<ApiKey>>;
    /// Replaces key `id` with `new` in one transaction: the old key names its replacement and
    /// expires at `old_until` (or earlier, if it was to expire sooner). `Conflict` when the old
    /// key is revoked, expired or already rolled.
    async fn roll_api_key(
        &self,
        scope: Scope,
        id: ApiKeyId,
        new: NewApiKey,
        old_until: DateTime<Utc>,
        stamp: AuditStamp,
    ) -> Result<ApiKey>;
    /// Revokes a key from now on; a key already revoked is returned as it is (no second entry).
    async fn revoke_api_key(&self, scope: Scope, id: ApiKeyId, stamp: AuditStamp) -> Result<ApiKey>;
    /// Looks a key up by the SHA-256 of its text across tenants: how a request with a key is
    /// authenticated, before any tenant is known.
    async fn api_key_by_hash(&self, token_hash: &str) -> Result<Option<ApiKey>>;
    /// Records that a key was used at `at` from `address` (a later use is never overwritten by an
    /// earlier one).
    async fn touch_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        at: DateTime<Utc>,
        address: Option<String>,
    ) -> Result<()>;
}

/// Sign-in sessions and their refresh tokens (`crate::account`).
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Starts a session with its first refresh token (by hash). Past
    /// [`crate::account::MAX_OPEN_SESSIONS_PER_USER`] open sessions the user's oldest end
    /// (`REPLACED`); sessions over for a month are forgotten.
    async fn start_session(&self, new: NewSession, refresh_hash: &str) -> Result<UserSession>;
    /// Presents a refresh token (by hash): a good one is used up and `new_hash` continues the
    /// session (refreshed at `at`, from `client_address`); a used one ends the session
    /// (`REFRESH_REUSED`); one of a session that ended, expired or was idle longer than `idle`
    /// changes nothing. Found across tenants, then changed in its tenant's scope.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        at: DateTime<Utc>,
        idle: chrono::Duration,
        client_address: Option<String>,
    ) -> Result<Refreshed>;
    async fn session(&self, scope: Scope, id: SessionId) -> Result<Option<UserSession>>;
    /// The user's open sessions (not ended, not expired at `now`), last refreshed first.
    async fn list_sessions(&self, scope: Scope, user: UserId, now: DateTime<Utc>)
        -> Result<Vec<UserSession>>;
    /// Ends one of the user's sessions; `false` when it was not open (or not the user's).
    async fn end_session(
        &self,
        scope: Scope,
        user: UserId,
        id: SessionId,
        reason: SessionEnd,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Ends the user's open sessions but `except`; answers how many.
    async fn end_user_sessions(
        &self,
        scope: Scope,
        user: UserId,
        except: Option<SessionId>,
        reason: SessionEnd,
        at: DateTime<Utc>,
    ) -> Result<u64>;
}

/// Second factors, recovery codes and sign-in challenges (`crate::mfa`).
#[async_trait]
pub trait MfaStore: Send + Sync + 'static {
    async fn mfa(&self, scope: Scope, user: UserId) -> Result<Option<MfaRecord>>;
    /// Starts (or starts again) setting up a TOTP factor with its sealed secret; `Conflict` when
    /// a confirmed factor exists.
    async fn start_totp(&self, user: &User, sealed_secret: String, at: DateTime<Utc>) -> Result<()>;
    /// Confirms the set-up with the step of its first code and new recovery codes (by hash);
    /// `Conflict` when there is no set-up to confirm.
    async fn confirm_totp(
        &self,
        user: &User,
        step: i64,
        recovery_hashes: &[String],
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Accepts a code's step once: `false` when that step or a later one was accepted before
    /// (a replayed code), or when the user has no confirmed factor.
    async fn accept_totp_step(&self, scope: Scope, user: UserId, step: i64) -> Result<bool>;
    /// Uses a recovery code (by hash) once: `false` when it is not the user's or was used.
    async fn use_recovery_code(
        &self,
        scope: Scope,
        user: UserId,
        code_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Replaces the user's recovery codes.
    async fn replace_recovery_codes(&self, user: &User, recovery_hashes: &[String]) -> Result<()>;
    /// Removes the user's factor and recovery codes; `false` when there was none.
    async fn remove_totp(&self, scope: Scope, user: UserId) -> Result<bool>;
    /// Whether the tenant asks every user for a second factor.
    async fn mfa_required(&self, scope: Scope, tenant: TenantId) -> Result<bool>;
    /// Stores a sign-in challenge (by hash); the user's expired challenges go.
    async fn create_challenge(
        &self,
        token_hash: &str,
        challenge: &Challenge,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Finds a challenge by hash across tenants (a sign-in has no tenant yet).
    async fn challenge(&self, token_hash: &str) -> Result<Option<Challenge>>;
    /// Takes one of the challenge's attempts before a code is checked: `false` when none is left
    /// (or it was answered), checked and counted in one statement so that concurrent guesses
    /// cannot pass the bound.
    async fn claim_challenge_attempt(&self, challenge: &Challenge, token_hash: &str) -> Result<bool>;
    /// Counts a wrong code against the user's factor and locks it per [`crate::mfa::lockout`];
    /// answers until when it is locked, if it is.
    async fn second_factor_failed(
        &self,
        scope: Scope,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>>;
    /// A right code: wrong ones in a row start again from zero.
    async fn second_factor_passed(&self, scope: Scope, user: UserId) -> Result<()>;
    /// Marks the challenge answered; `false` when it was answered before.
    async fn finish_challenge(
        &self,
        challenge: &Challenge,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool>;
}

/// The whole directory: every adapter that implements the parts is one.
pub trait Directory:
    DirectoryEngine + TenantStore + CustomerStore + UserStore + ApiKeyStore + SessionStore + MfaStore
{
}

impl<T> Directory for T where
    T: DirectoryEngine + TenantStore + CustomerStore + UserStore + ApiKeyStore + SessionStore + MfaStore
{
}
