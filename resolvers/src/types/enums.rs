use async_graphql::Enum;
use ioto_domain::events::DirectoryChange;
use ioto_domain::sim::SimState;
use ioto_domain::Role;

/// A user's role; see docs/roles.md for what each may do.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(name = "Role")]
pub enum RoleKind {
    /// Runs the platform: manages tenants, sees every tenant.
    PlatformAdmin,
    /// Administers one tenant: its sub-customers and users.
    TenantAdmin,
    /// Runs one tenant's fleet; reads its directory.
    Operator,
    /// A person at one sub-customer; sees only that sub-customer.
    CustomerUser,
    /// Read-only access to one tenant's fleet.
    Viewer,
}

impl From<Role> for RoleKind {
    fn from(r: Role) -> Self {
        match r {
            Role::PlatformAdmin => Self::PlatformAdmin,
            Role::TenantAdmin => Self::TenantAdmin,
            Role::Operator => Self::Operator,
            Role::CustomerUser => Self::CustomerUser,
            Role::Viewer => Self::Viewer,
        }
    }
}

impl From<RoleKind> for Role {
    fn from(r: RoleKind) -> Self {
        match r {
            RoleKind::PlatformAdmin => Self::PlatformAdmin,
            RoleKind::TenantAdmin => Self::TenantAdmin,
            RoleKind::Operator => Self::Operator,
            RoleKind::CustomerUser => Self::CustomerUser,
            RoleKind::Viewer => Self::Viewer,
        }
    }
}

/// Lifecycle state of a SIM.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(name = "SimState")]
pub enum SimStateKind {
    Inventory,
    Active,
    Suspended,
    Terminated,
}

impl From<SimState> for SimStateKind {
    fn from(s: SimState) -> Self {
        match s {
            SimState::Inventory => Self::Inventory,
            SimState::Active => Self::Active,
            SimState::Suspended => Self::Suspended,
            SimState::Terminated => Self::Terminated,
        }
    }
}

/// What changed in a directory event.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(name = "DirectoryChange")]
pub enum DirectoryChangeKind {
    TenantCreated,
    TenantRenamed,
    CustomerCreated,
    CustomerUpdated,
    CustomerDeleted,
    UserCreated,
    UserRoleChanged,
    UserUpdated,
    UserDeleted,
}

impl From<DirectoryChange> for DirectoryChangeKind {
    fn from(c: DirectoryChange) -> Self {
        match c {
            DirectoryChange::TenantCreated => Self::TenantCreated,
            DirectoryChange::TenantRenamed => Self::TenantRenamed,
            DirectoryChange::CustomerCreated => Self::CustomerCreated,
            DirectoryChange::CustomerUpdated => Self::CustomerUpdated,
            DirectoryChange::CustomerDeleted => Self::CustomerDeleted,
            DirectoryChange::UserCreated => Self::UserCreated,
            DirectoryChange::UserRoleChanged => Self::UserRoleChanged,
            DirectoryChange::UserUpdated => Self::UserUpdated,
            DirectoryChange::UserDeleted => Self::UserDeleted,
        }
    }
}
