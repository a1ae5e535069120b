//! Who is asking, and the data scope their request runs in.

use serde::{Deserialize, Serialize};

use crate::ids::SessionId;
use crate::{ApiKeyId, CustomerId, Error, Permission, Result, Role, TenantId, UserId};

/// The authenticated caller, as established from a validated token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The user behind the token; `None` for tokens minted by `ioto token issue` or an external
    /// identity provider without a matching local user.
    pub user_id: Option<UserId>,
    /// The subject claim as given (user id, or an external subject).
    pub subject: String,
    pub tenant_id: TenantId,
    pub role: Role,
    /// Set exactly when `role` is `CUSTOMER_USER`.
    pub customer_id: Option<CustomerId>,
    /// When the token was issued (`iat`), if it says: a token older than its user's last
    /// password change is refused.
    pub issued_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The API key the request came with (`None` for signed tokens): such a caller is a
    /// service, and each request checks that the key still works.
    pub api_key: Option<ApiKeyId>,
    /// The sign-in session a login token belongs to (its `sid`): each request checks that the
    /// session has not ended.
    pub session_id: Option<SessionId>,
}

impl Actor {
    /// Checks the role-level permission, naming the action in the error.
    pub fn require(&self, permission: Permission, action: &str) -> Result<()> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(Error::forbidden(action))
        }
    }

    /// The scope the transactional store enforces for this caller (Postgres RLS settings).
    pub fn scope(&self) -> Scope {
        if self.role == Role::PlatformAdmin {
            Scope::Platform
        } else {
            Scope::Tenant {
                tenant_id: self.tenant_id,
                customer_id: self.customer_id,
            }
        }
    }

    /// Whether this caller may see data of `tenant`.
    pub fn sees_tenant(&self, tenant: TenantId) -> bool {
        self.role == Role::PlatformAdmin || self.tenant_id == tenant
    }

    /// Resolves which tenant an operation targets: the caller's own unless a platform admin names
    /// another. Anyone else naming a foreign tenant gets `NotFound`, the same answer as for a
    /// tenant that does not exist.
    pub fn target_tenant(&self, requested: Option<TenantId>) -> Result<TenantId> {
        match requested {
            None => Ok(self.tenant_id),
            Some(t) if self.sees_tenant(t) => Ok(t),
            Some(t) => Err(Error::not_found("tenant", t)),
        }
    }
}

/// The data scope of one unit of work. On Postgres it becomes transaction-local settings that the
/// row-level security policies read; every adapter also filters by it in its queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every tenant (platform administration, migrations, the demo seeder).
    Platform,
    /// One tenant, optionally narrowed to one of its sub-customers.
    Tenant {
        tenant_id: TenantId,
        customer_id: Option<CustomerId>,
    },
}

impl Scope {
    pub fn tenant(tenant_id: TenantId) -> Self {
        Scope::Tenant {
            tenant_id,
            customer_id: None,
        }
    }

    pub fn tenant_id(&self) -> Option<TenantId> {
        match self {
            Scope::Platform => None,
            Scope::Tenant { tenant_id, .. } => Some(*tenant_id),
        }
    }

    pub fn customer_id(&self) -> Option<CustomerId> {
        match self {
            Scope::Platform => None,
            Scope::Tenant { customer_id, .. } => *customer_id,
        }
    }

    /// Whether a row owned by (`tenant`, `customer`) is visible in this scope.
    pub fn admits(&self, tenant: TenantId, customer: Option<CustomerId>) -> bool {
        match self {
            Scope::Platform => true,
            Scope::Tenant {
                tenant_id,
                customer_id,
            } => *tenant_id == tenant && customer_id.is_none_or(|c| customer == Some(c)),
        }
    }
}
