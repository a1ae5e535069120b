//! API keys: made, listed, rolled and revoked by tenant admins; checked on every request that
//! sends one.
//!
//! A request's key is checked in three steps: its form and checksum (no lookup for a key that
//! fails), then a cache of recent lookups by the key's SHA-256 (found and unknown keys alike, for
//! [`KeyChecks::ttl`]), then the store. Revoking a key forgets it here at once; other instances
//! refuse it within the cache's lifetime, the same cadence at which they re-check signed tokens.
//! Use is recorded (time and client address) at most once a minute per key, off the request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use ioto_domain::api_key::{self, ApiKey, CheckedToken, NewApiKey};
use ioto_domain::fleet::audit::AuditStamp;
use ioto_domain::fleet::query::Page;
use ioto_domain::identifiers::Name;
use ioto_domain::{Actor, ApiKeyId, CustomerId, Error, Permission, Result, Role, Scope, TenantId};

use super::DirectoryService;

/// Input of [`DirectoryService::create_api_key`], already parsed.
#[derive(Debug, Clone)]
pub struct CreateApiKey {
    /// Platform admins only: the tenant the key acts in (default: the caller's).
    pub tenant_id: Option<TenantId>,
    pub name: Name,
    pub role: Role,
    /// Required for `CUSTOMER_USER`, empty for every other role.
    pub customer_id: Option<CustomerId>,
    /// Days until the key stops working; `None`: it does not expire.
    pub expires_in_days: Option<i64>,
}

/// A key just made: the stored record and the key itself, shown this once.
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub token: CheckedToken,
}

/// Lookups kept at most this many (found and unknown keys); past it, stale ones are swept and,
/// if still full, all are forgotten.
const CACHE_CAP: usize = 10_000;
/// A key's use is written at most this often (and when its client address changes, at most
/// every [`TOUCH_ADDRESS_EVERY`]).
const TOUCH_EVERY: Duration = Duration::from_secs(60);
const TOUCH_ADDRESS_EVERY: Duration = Duration::from_secs(5);

/// Recent lookups of keys by hash, and when each key's use was last written.
pub(crate) struct KeyChecks {
    ttl: Duration,
    found: Mutex<HashMap<String, (Option<ApiKey>, Instant)>>,
    /// Counts [`KeyChecks::forget`]s: a lookup that began before one is not cached (it may
    /// have read the key before its revocation committed).
    forgets: AtomicU64,
    touched: Mutex<HashMap<ApiKeyId, (Instant, Option<IpAddr>)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KeyChecks {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            found: Mutex::new(HashMap::new()),
            forgets: AtomicU64::new(0),
            touched: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, hash: &str) -> Option<Option<ApiKey>> {
        lock(&self.found)
            .get(hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(key, _)| key.clone())
    }

    /// Where the forgets stand as a lookup begins.
    fn generation(&self) -> u64 {
        self.forgets.load(Ordering::SeqCst)
    }

    /// Caches a lookup that began at `generation`, unless a key was forgotten since.
    fn remember(&self, hash: String, key: Option<ApiKey>, generation: u64) {
        let mut found = lock(&self.found);
        if self.generation() != generation {
            return;
        }
        if found.len() >= CACHE_CAP {
            let ttl = self.ttl;
            found.retain(|_, (_, at)| at.elapsed() < ttl);
            if found.len() >= CACHE_CAP {
                found.clear();
            }
        }
        found.insert(hash, (key, Instant::now()));
    }

    /// Forgets a key (revoked or rolled here): its next use is looked up afresh.
    fn forget(&self, id: ApiKeyId) {
        let mut found = lock(&self.found);
        self.forgets.fetch_add(1, Ordering::SeqCst);
        found.retain(|_, (key, _)| key.as_ref().is_none_or(|k| k.id != id));
    }

    /// Whether this use should be written, and if so marks it written.
    fn due_for_touch(&self, id: ApiKeyId, client: Option<IpAddr>) -> bool {
        let mut touched = lock(&self.touched);
        let due = match touched.get(&id) {
            None => true,
            Some((at, addr)) => {
                at.elapsed() >= TOUCH_EVERY || (*addr != client && at.elapsed() >= TOUCH_ADDRESS_EVERY)
            }
        };
        if due {
            if touched.len() >= CACHE_CAP {
                touched.retain(|_, (at, _)| at.elapsed() < TOUCH_EVERY);
            }
            touched.insert(id, (Instant::now(), client));
        }
        due
    }
}

impl DirectoryService {
    /// Key management needs `ManageApiKeys` and a person: a key cannot make, roll or revoke
    /// keys (a leaked key must not be able to mint others that outlive it).
    fn may_manage_keys(actor: &Actor, action: &str) -> Result<()> {
        Self::person_only(actor, action)?;
        actor.require(Permission::ManageApiKeys, action)
    }

    /// Refuses a request made with an API key: managing keys, users and passwords needs a
    /// person (a leaked key must not be able to make a user or a key that outlives it).
    pub(super) fn person_only(actor: &Actor, action: &str) -> Result<()> {
        if actor.api_key.is_some() {
            return Err(Error::Forbidden(format!(
                "an API key cannot {action}; sign in as a person to do it"
            )));
        }
        Ok(())
    }

    /// A key the caller may manage: in its scope, and of a role the caller may grant.
    async fn managed_key(&self, actor: &Actor, id: ApiKeyId, action: &str) -> Result<ApiKey> {
        Self::may_manage_keys(actor, action)?;
        let key = self
            .store
            .api_key(actor.scope(), id)
            .await?
            .ok_or_else(|| Error::not_found("API key", id))?;
        if !actor.role.may_grant(key.role) {
            return Err(Error::Forbidden(format!(
                "your role cannot {action} with role {}",
                key.role
            )));
        }
        Ok(key)
    }

    pub async fn create_api_key(&self, actor: &Actor, input: CreateApiKey) -> Result<CreatedApiKey> {
        Self::may_manage_keys(actor, "create API keys")?;
        if !actor.role.may_grant(input.role) {
            return Err(Error::Forbidden(format!(
                "your role cannot create API keys with role {}: a key's role is never above its creator's",
                input.role
            )));
        }
        let tenant_id = actor.target_tenant(input.tenant_id)?;
        self.check_customer_for_role(actor, tenant_id, input.role, input.customer_id)
            .await?;
        let now = Utc::now();
        let expires_at = api_key::expiry(now, input.expires_in_days, "expiresInDays")?;
        let token = CheckedToken::generate();
        let new = NewApiKey {
            id: ApiKeyId::new(),
            tenant_id,
            customer_id: input.customer_id,
            name: input.name,
            role: input.role,
            token_hash: token.hash(),
            hint: token.hint(),
            created_by: actor.user_id,
            created_at: now,
            expires_at,
            rolled_from: None,
        };
        let key = self
            .store
            .create_api_key(actor.scope(), new, AuditStamp::new(actor, None))
            .await?;
        Ok(CreatedApiKey { key, token })
    }

    pub async fn api_keys(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        page: &Page<()>,
    ) -> Result<Vec<ApiKey>> {
        actor.require(Permission::ManageApiKeys, "list API keys")?;
        let tenant = actor.target_tenant(tenant)?;
        self.store.list_api_keys(actor.scope(), tenant, page).await
    }

    pub async fn api_key(&self, actor: &Actor, id: ApiKeyId) -> Result<Option<ApiKey>> {
        actor.require(Permission::ManageApiKeys, "read API keys")?;
        self.store.api_key(actor.scope(), id).await
    }

    /// Replaces a key with a new one of the same name, role and sub-customer. The old key keeps
    /// working for `overlap_hours` (0 to 168), so that services can move over; the new key
    /// lasts `expires_in_days`, or as long as the old one was made to last.
    pub async fn roll_api_key(
        &self,
        actor: &Actor,
        id: ApiKeyId,
        overlap_hours: i64,
        expires_in_days: Option<i64>,
    ) -> Result<CreatedApiKey> {
        let overlap = api_key::overlap(overlap_hours, "overlapHours")?;
        let old = self.managed_key(actor, id, "roll API keys").await?;
        let now = Utc::now();
        let expires_at = match expires_in_days {
            Some(days) => api_key::expiry(now, Some(days), "expiresInDays")?,
            None => old.expires_at.map(|e| now + (e - old.created_at)),
        };
        let token = CheckedToken::generate();
        let new = NewApiKey {
            id: ApiKeyId::new(),
            tenant_id: old.tenant_id,
            customer_id: old.customer_id,
            name: old.name.clone(),
            role: old.role,
            token_hash: token.hash(),
            hint: token.hint(),
            created_by: actor.user_id,
            created_at: now,
            expires_at,
            rolled_from: Some(old.id),
        };
        let key = self
            .store
            .roll_api_key(
                actor.scope(),
                id,
                new,
                now + overlap,
                AuditStamp::new(actor, None),
            )
            .await?;
        self.keys.forget(id);
        Ok(CreatedApiKey { key, token })
    }

    /// Revokes a key: every request with it is refused from now on (on other instances within
    /// the key cache's lifetime), and open subscriptions with it end.
    pub async fn revoke_api_key(&self, actor: &Actor, id: ApiKeyId) -> Result<ApiKey> {
        self.managed_key(actor, id, "revoke API keys").await?;
        let key = self
            .store
            .revoke_api_key(actor.scope(), id, AuditStamp::new(actor, None))
            .await?;
        self.keys.forget(id);
        Ok(key)
    }

    /// The caller a request's API key stands for. A key of the wrong form or checksum is refused
    /// before anything is looked up; an unknown, revoked or expired key is refused.
    pub async fn authenticate_key(&self, token: &str, client: Option<IpAddr>) -> Result<Actor> {
        let checked = CheckedToken::check(token)?;
        let hash = checked.hash();
        let key = match self.keys.cached(&hash) {
            Some(key) => key,
            None => {
                let generation = self.keys.generation();
                let key = self.store.api_key_by_hash(&hash).await?;
                self.keys.remember(hash, key.clone(), generation);
                key
            }
        };
        let key = key.ok_or_else(|| Error::Unauthenticated("this API key is not known".into()))?;
        let actor = key.actor(Utc::now())?;
        if self.keys.due_for_touch(key.id, client) {
            let store = self.store.clone();
            let (tenant, id) = (key.tenant_id, key.id);
            tokio::spawn(async move {
                let at = Utc::now();
                if let Err(e) = store
                    .touch_api_key(tenant, id, at, client.map(|c| c.to_string()))
                    .await
                {
                    tracing::warn!(error = %e, key = %id, "recording an API key's use failed");
                }
            });
        }
        Ok(actor)
    }

    /// Confirms that the key behind `actor` still works with the role and sub-customer it
    /// claims (open subscriptions re-check with this).
    pub(super) async fn confirm_key(&self, actor: &Actor, id: ApiKeyId) -> Result<()> {
        let key = self
            .store
            .api_key(Scope::tenant(actor.tenant_id), id)
            .await?
            .ok_or_else(|| Error::Unauthenticated("this API key no longer exists".into()))?;
        let now = key.actor(Utc::now())?;
        if now.role != actor.role || now.customer_id != actor.customer_id {
            return Err(Error::Unauthenticated(
                "this API key has changed; use it again".into(),
            ));
        }
        Ok(())
    }
}
