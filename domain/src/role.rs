//! Roles and what each may do. The matrix lives here, once; resolvers and services ask it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A user's role. Every user has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Runs the platform: manages tenants, sees every tenant.
    PlatformAdmin,
    /// Administers one tenant: its sub-customers and users.
    TenantAdmin,
    /// Runs one tenant's fleet day to day; reads the tenant's directory.
    Operator,
    /// A person at one sub-customer; sees only that sub-customer.
    CustomerUser,
    /// Read-only access to one tenant's fleet; no user directory.
    Viewer,
}

/// Something a role may or may not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Create and rename tenants, see all of them.
    ManageTenants,
    /// Create, rename and delete sub-customers.
    ManageCustomers,
    /// List sub-customers (a customer user sees only its own).
    ReadCustomers,
    /// Create users, change their roles, delete them.
    ManageUsers,
    /// List users and their e-mail addresses.
    ReadUsers,
    /// Read SIMs (a customer user sees only its own customer's, and only where the tenant shares
    /// SIM data with its customers).
    ReadSims,
    /// Read devices (a customer user sees only its own customer's).
    ReadDevices,
    /// Change SIMs and devices: states, assignments, labels, bindings, swaps, imports.
    ManageFleet,
    /// See SIM PIN and PUK in clear (everyone else sees them masked).
    ReadSimSecrets,
    /// Read the tenant's audit trail.
    ReadAudit,
    /// Compare session usage with billed CDRs (reconciliation).
    ReadBilling,
    /// Read the tenant's rate card, rated usage and costs (a customer user: its own, only where
    /// the tenant shares costs with its customers).
    ReadCosts,
    /// Create, version and retire rate cards; close billing periods; enter invoice charges.
    ManageRateCards,
    /// See supplier (wholesale) rate cards, supplier cost and margin.
    ReadSupplierCosts,
    /// Start a rating run on demand.
    RunRating,
    /// Run bulk jobs of any size (operators run them up to their tenant's limit).
    RunBulkJobs,
    /// Add, enable, disable and remove the tenant's webhook endpoints; see their deliveries.
    ManageWebhooks,
    /// Create, roll and revoke the tenant's API keys; list them.
    ManageApiKeys,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::PlatformAdmin,
        Role::TenantAdmin,
        Role::Operator,
        Role::CustomerUser,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "PLATFORM_ADMIN",
            Role::TenantAdmin => "TENANT_ADMIN",
            Role::Operator => "OPERATOR",
            Role::CustomerUser => "CUSTOMER_USER",
            Role::Viewer => "VIEWER",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_uppercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == wanted)
            .ok_or_else(|| {
                Error::invalid(
                    "role",
                    format!(
                        "'{s}' is not a role; allowed: {}",
                        Self::ALL.map(Role::as_str).join(", ")
                    ),
                )
            })
    }

    /// The permission matrix. Documented in `docs/roles.md`; tests walk every cell.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        use Role::*;
        match (self, permission) {
            // PIN and PUK are the tenant's own secrets: not even the platform operator reads them.
            (_, ReadSimSecrets) => self == TenantAdmin,
            (PlatformAdmin, _) => true,
            // Prices are the platform's to set; supplier cost and margin are the platform's alone.
            (_, ManageRateCards | ReadSupplierCosts) => false,
            (TenantAdmin, ManageTenants) => false,
            (TenantAdmin, _) => true,
            (
                Operator,
                ReadCustomers | ReadUsers | ReadSims | ReadDevices | ManageFleet | ReadAudit | ReadBilling
                | ReadCosts,
            ) => true,
            (Operator, _) => false,
            (CustomerUser, ReadCustomers | ReadSims | ReadDevices | ReadCosts) => true,
            (CustomerUser, _) => false,
            (Viewer, ReadCustomers | ReadSims | ReadDevices | ReadAudit | ReadBilling | ReadCosts) => true,
            (Viewer, _) => false,
        }
    }

    /// Whether a user of this role may hand `other` to a new or existing user. Nobody grants a role
    /// above their own; only platform admins create platform admins.
    pub fn may_grant(self, other: Role) -> bool {
        match self {
            Role::PlatformAdmin => true,
            Role::TenantAdmin => other != Role::PlatformAdmin,
            _ => false,
        }
    }

    /// Whether users of this role belong to exactly one sub-customer.
    pub fn is_customer_scoped(self) -> bool {
        self == Role::CustomerUser
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_lenient_on_case_and_names_allowed_values() {
        assert_eq!(Role::parse("tenant-admin").unwrap(), Role::TenantAdmin);
        let err = Role::parse("root").unwrap_err().to_string();
        assert!(
            err.contains("PLATFORM_ADMIN, TENANT_ADMIN, OPERATOR, CUSTOMER_USER, VIEWER"),
            "{err}"
        );
    }

    #[test]
    fn only_platform_admin_manages_tenants() {
        for role in Role::ALL {
            assert_eq!(
                role.allows(Permission::ManageTenants),
                role == Role::PlatformAdmin,
                "{role}"
            );
        }
    }

    #[test]
    fn tenant_admin_cannot_mint_platform_admins() {
        assert!(!Role::TenantAdmin.may_grant(Role::PlatformAdmin));
        assert!(Role::TenantAdmin.may_grant(Role::TenantAdmin));
        assert!(!Role::Operator.may_grant(Role::Viewer));
    }
}
