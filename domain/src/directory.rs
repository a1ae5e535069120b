//! Tenants, their sub-customers and their users.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::identifiers::{Email, Name, Slug};
use crate::{CustomerId, Role, TenantId, UserId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: Slug,
    pub name: Name,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTenant {
    pub slug: Slug,
    pub name: Name,
}

/// A tenant's own customer. Tenants resell connectivity; sub-customers see their own SIMs only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: CustomerId,
    pub tenant_id: TenantId,
    pub name: Name,
    /// The tenant's own reference for this customer (ERP or CRM id), unique within the tenant.
    pub external_ref: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    pub tenant_id: TenantId,
    pub name: Name,
    pub external_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerPatch {
    pub name: Option<Name>,
    /// `Some(None)` clears the reference.
    pub external_ref: Option<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub email: Email,
    pub display_name: Name,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// When the password last changed (tokens issued before then are refused).
    pub credentials_changed_at: Option<DateTime<Utc>>,
}

impl User {
    /// The scope the user's own rows are read and written in: their tenant, narrowed to their
    /// sub-customer for a `CUSTOMER_USER`.
    pub fn scope(&self) -> crate::Scope {
        crate::Scope::Tenant {
            tenant_id: self.tenant_id,
            customer_id: self.customer_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub email: Email,
    pub display_name: Name,
    pub role: Role,
    pub password_hash: String,
}

/// Changes to a user's details; `None` keeps a field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserPatch {
    pub display_name: Option<Name>,
    pub email: Option<Email>,
}

/// What login needs to know about a user, looked up by e-mail before any tenant is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub role: Role,
    pub password_hash: String,
}

/// Checks an external reference: 1 to 100 printable characters.
pub fn parse_external_ref(s: &str) -> crate::Result<String> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 100 || s.chars().any(char::is_control) {
        return Err(crate::Error::invalid(
            "externalRef",
            "must be 1 to 100 printable characters",
        ));
    }
    Ok(s.to_owned())
}
