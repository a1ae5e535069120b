//! Typed identifiers: a `TenantId` cannot be passed where a `CustomerId` is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Error;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// A time-ordered id (UUIDv7), for rows created in bulk.
            pub fn ordered() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the textual form; `field` names the input in the error.
            pub fn parse(s: &str, field: &str) -> crate::Result<Self> {
                Uuid::parse_str(s.trim()).map(Self).map_err(|_| {
                    Error::invalid(field, concat!("is not a valid ", $what, " id (expected a UUID)"))
                })
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> crate::Result<Self> {
                Self::parse(s, "id")
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

uuid_id!(
    /// A tenant: one company operating a fleet on the platform.
    TenantId,
    "tenant"
);
uuid_id!(
    /// A sub-customer of a tenant (the tenant's own customer).
    CustomerId,
    "customer"
);
uuid_id!(
    /// A person who can log in.
    UserId,
    "user"
);
uuid_id!(
    /// A sign-in session: what a login starts and its refresh tokens continue.
    SessionId,
    "session"
);
uuid_id!(
    /// A tenant's API key: a credential for a service, not a person.
    ApiKeyId,
    "API key"
);
uuid_id!(
    /// A SIM card.
    SimId,
    "SIM"
);
uuid_id!(
    /// A device (tracker, sensor, gateway, …) that may hold SIMs.
    DeviceId,
    "device"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_garbage_naming_the_field() {
        let err = TenantId::parse("nope", "tenantId").unwrap_err();
        assert_eq!(
            err,
            Error::invalid("tenantId", "is not a valid tenant id (expected a UUID)")
        );
    }

    #[test]
    fn parse_round_trips() {
        let id = CustomerId::new();
        assert_eq!(CustomerId::parse(&id.to_string(), "x").unwrap(), id);
    }
}
