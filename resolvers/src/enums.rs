use async_graphql::Enum;
use ioto_app::fleet::RetireSims;
use ioto_domain::api_key::ApiKeyState;
use ioto_domain::events::DirectoryChange;
use ioto_domain::fleet::audit::{AuditAction, EntityKind};
use ioto_domain::fleet::bulk::{BulkJobStatus, RowOutcome};
use ioto_domain::fleet::device::{Connectivity, DeviceKind, DeviceState};
use ioto_domain::fleet::import::TableFormat;
use ioto_domain::fleet::query::{DeviceSort, SimSort};
use ioto_domain::fleet::schedule::ScheduleStatus;
use ioto_domain::fleet::sim::{SimState, SimType};
use ioto_domain::notify::{DeliveryChannel, DeliveryStatus, NotificationKind};
use ioto_domain::ports::network::NetworkAction;
use ioto_domain::quota::{ActionState, QuotaAction};
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

/// Mirrors a domain enum as a GraphQL enum, with conversions both ways.
macro_rules! mirror_enum {
    ($(#[$doc:meta])* $gql:ident, $name:literal, $domain:ident, [$($(#[$vdoc:meta])* $v:ident),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
        #[graphql(name = $name)]
        pub enum $gql { $($(#[$vdoc])* $v),+ }

        impl From<$domain> for $gql {
            fn from(x: $domain) -> Self {
                match x { $($domain::$v => Self::$v),+ }
            }
        }

        impl From<$gql> for $domain {
            fn from(x: $gql) -> Self {
                match x { $($gql::$v => $domain::$v),+ }
            }
        }
    };
}
pub(crate) use mirror_enum;

mirror_enum!(
    /// Lifecycle state of a SIM. Allowed moves: INVENTORY → ACTIVE; ACTIVE ⇄ SUSPENDED;
    /// ACTIVE or SUSPENDED → LOST_STOLEN; LOST_STOLEN → SUSPENDED (found); any → TERMINATED (final).
    SimStateKind, "SimState", SimState, [
        /// Provisioned, not in service; not billed.
        Inventory,
        /// May attach and pass traffic.
        Active,
        /// Temporarily barred.
        Suspended,
        /// Reported lost or stolen; barred.
        LostStolen,
        /// Permanently retired.
        Terminated,
    ]
);

mirror_enum!(
    /// Commercial kind of a SIM.
    SimTypeKind, "SimType", SimType, [Prepaid, Postpaid, DataOnly]
);

mirror_enum!(
    /// Lifecycle state of a device: REGISTERED → IN_SERVICE ⇄ MAINTENANCE; any → RETIRED (final).
    DeviceStateKind, "DeviceState", DeviceState, [Registered, InService, Maintenance, Retired]
);

mirror_enum!(
    /// What a device is.
    DeviceKindKind, "DeviceKind", DeviceKind, [Tracker, Sensor, Gateway, Meter, Camera, Wearable, Vehicle, Other]
);

mirror_enum!(
    /// How a device reaches the network.
    ConnectivityKind, "Connectivity", Connectivity, [Cellular, Wifi, Lora, Ethernet, Satellite]
);

mirror_enum!(
    /// What an audit entry records.
    AuditActionKind, "AuditAction", AuditAction, [
        Created, Imported, Updated, StateChanged, Assigned, LabelsChanged, Bound, Unbound, Swapped,
        TransitionScheduled, TransitionCancelled, NetworkFailed, LocationUpdated, Rolled, Revoked,
    ]
);

mirror_enum!(
    /// What an audit entry is about: a SIM, a device or an API key.
    EntityKindKind, "EntityKind", EntityKind, [Sim, Device, ApiKey]
);

mirror_enum!(
    /// Where a scheduled transition stands.
    ScheduleStatusKind, "ScheduleStatus", ScheduleStatus, [Pending, Applied, Failed, Cancelled]
);

mirror_enum!(
    /// What retiring a device does to the SIMs in it (they stay bound either way).
    RetireSimsKind, "RetireSims", RetireSims, [
        /// SIMs keep their states.
        Leave,
        /// ACTIVE SIMs are suspended.
        Suspend,
    ]
);

mirror_enum!(
    /// Format of an uploaded table.
    TableFormatKind, "TableFormat", TableFormat, [Csv, Xlsx]
);

#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum SortDirection {
    #[default]
    Asc,
    Desc,
}

mirror_enum!(
    /// What a SIM list is sorted by (ties broken by id).
    SimOrderField, "SimOrderField", SimSort, [
        Iccid,
        State,
        CreatedAt,
        UpdatedAt,
        /// Share of the data quota used in the current period, as last evaluated (within seconds
        /// of the traffic); SIMs without a quota last when descending (first when ascending).
        QuotaPercent,
    ]
);

mirror_enum!(
    /// What a device list is sorted by (ties broken by id).
    DeviceOrderField, "DeviceOrderField", DeviceSort, [Name, Imei, State, CreatedAt, UpdatedAt]
);

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

mirror_enum!(
    /// What the network is asked to do with a SIM.
    BulkActionKind, "BulkAction", NetworkAction, [
        /// INVENTORY → ACTIVE (a SUSPENDED SIM is resumed).
        Activate,
        /// ACTIVE → SUSPENDED.
        Suspend,
        /// SUSPENDED → ACTIVE.
        Resume,
        /// ACTIVE or SUSPENDED → LOST_STOLEN.
        ReportLostStolen,
        /// → TERMINATED (final; unbinds the SIM from its device).
        Terminate,
        /// Cancels the SIM's location so its device attaches again (ACTIVE or SUSPENDED SIMs).
        LocationUpdate,
    ]
);

mirror_enum!(
    /// Where a bulk job stands.
    BulkJobStatusKind, "BulkJobStatus", BulkJobStatus, [
        Validating,
        /// Validated; nothing runs until it is confirmed.
        AwaitingConfirmation,
        /// Confirmed: queued or running.
        Processing,
        Completed,
        /// Finished; some rows failed or were invalid.
        CompletedWithErrors,
        /// Finished; no row succeeded.
        Failed,
        Cancelled,
    ]
);

mirror_enum!(
    /// What became of one row of a bulk job.
    BulkRowOutcomeKind, "BulkRowOutcome", RowOutcome, [
        /// Waiting for its turn.
        Pending,
        /// Sent to the network; answer not recorded yet.
        Sent,
        Succeeded,
        /// The network refused or did not answer, or the SIM moved on; `reason` says which.
        Failed,
        /// Nothing to do: the SIM was already in the asked state.
        Skipped,
        /// Refused by validation; never sent.
        Invalid,
    ]
);

mirror_enum!(
    /// What a notification is about.
    NotificationKindGql, "NotificationKind", NotificationKind, [
        /// A bulk job reached its final status.
        BulkJobFinished,
        /// A SIM's data quota reached a stage (a warning percentage, or the limit).
        QuotaStage,
        /// Alerts of a rule fired (or, in a reminder, still fire).
        AlertFiring,
        /// Alerts of a rule resolved.
        AlertResolved,
        /// The forecast pass found a high-severity anomaly on a SIM.
        Anomaly,
    ]
);

mirror_enum!(
    /// What happens when a SIM reaches its data limit.
    QuotaActionKind, "QuotaAction", QuotaAction, [
        /// A notification; the SIM keeps its service.
        Notify,
        /// A notification, and the SIM is suspended through the network (as a bulk job).
        Suspend,
    ]
);

mirror_enum!(
    /// Where the action at a SIM's data limit stands this period.
    QuotaActionStateKind, "QuotaActionState", ActionState, [
        /// Nothing to do (limit not reached, or the quota only notifies).
        None,
        /// The SIM is to be suspended; a server sends it within a minute.
        Pending,
        /// The suspension was handed to the network as a bulk job.
        Requested,
        /// The SIM was suspended (or was not active any more).
        Done,
        /// The network refused or did not answer; `actionReason` says which.
        Failed,
    ]
);

mirror_enum!(
    /// How a notification is delivered.
    DeliveryChannelKind, "DeliveryChannel", DeliveryChannel, [
        /// A signed POST to a webhook endpoint of the tenant.
        Webhook,
        /// An e-mail to the notification's user.
        Email,
    ]
);

mirror_enum!(
    /// Where a delivery stands.
    DeliveryStatusKind, "DeliveryStatus", DeliveryStatus, [
        /// Waiting for its (next) attempt.
        Pending,
        Delivered,
        /// Given up after its last attempt (or refused for good).
        Failed,
    ]
);

mirror_enum!(
    /// Where an API key stands.
    ApiKeyStateKind, "ApiKeyState", ApiKeyState, [Active, Rolling, Expired, Revoked]
);
