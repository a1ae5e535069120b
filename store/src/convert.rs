//! Rows to domain types. A stored value that no longer parses is a bug or a manual edit: it is
//! reported as `Internal`, naming the table and column, never silently dropped.

use ioto_domain::directory::{Customer, Tenant, User};
use ioto_domain::identifiers::{Email, Iccid, Imsi, Msisdn, Name, Slug};
use ioto_domain::sim::{Sim, SimState};
use ioto_domain::{Error, Result, Role};

use crate::entities::{customer, sim, tenant, user};

fn corrupt(table: &str, column: &str, e: Error) -> Error {
    Error::Internal(format!("stored {table}.{column} is invalid: {e}"))
}

impl TryFrom<tenant::Model> for Tenant {
    type Error = Error;
    fn try_from(m: tenant::Model) -> Result<Self> {
        Ok(Tenant {
            id: m.id.into(),
            slug: Slug::parse(&m.slug).map_err(|e| corrupt("tenants", "slug", e))?,
            name: Name::parse(&m.name, "name").map_err(|e| corrupt("tenants", "name", e))?,
            created_at: m.created_at,
        })
    }
}

impl TryFrom<customer::Model> for Customer {
    type Error = Error;
    fn try_from(m: customer::Model) -> Result<Self> {
        Ok(Customer {
            id: m.id.into(),
            tenant_id: m.tenant_id.into(),
            name: Name::parse(&m.name, "name").map_err(|e| corrupt("customers", "name", e))?,
            external_ref: m.external_ref,
            created_at: m.created_at,
        })
    }
}

impl TryFrom<user::Model> for User {
    type Error = Error;
    fn try_from(m: user::Model) -> Result<Self> {
        Ok(User {
            id: m.id.into(),
            tenant_id: m.tenant_id.into(),
            customer_id: m.customer_id.map(Into::into),
            email: Email::parse(&m.email).map_err(|e| corrupt("users", "email", e))?,
            display_name: Name::parse(&m.display_name, "displayName")
                .map_err(|e| corrupt("users", "display_name", e))?,
            role: Role::parse(&m.role).map_err(|e| corrupt("users", "role", e))?,
            created_at: m.created_at,
        })
    }
}

impl TryFrom<sim::Model> for Sim {
    type Error = Error;
    fn try_from(m: sim::Model) -> Result<Self> {
        Ok(Sim {
            id: m.id.into(),
            tenant_id: m.tenant_id.into(),
            customer_id: m.customer_id.map(Into::into),
            iccid: Iccid::parse(&m.iccid).map_err(|e| corrupt("sims", "iccid", e))?,
            imsi: Imsi::parse(&m.imsi).map_err(|e| corrupt("sims", "imsi", e))?,
            msisdn: m
                .msisdn
                .as_deref()
                .map(Msisdn::parse)
                .transpose()
                .map_err(|e| corrupt("sims", "msisdn", e))?,
            state: SimState::parse(&m.state).map_err(|e| corrupt("sims", "state", e))?,
            created_at: m.created_at,
        })
    }
}

/// Converts every row, failing on the first that does not parse.
pub fn all<M, T: TryFrom<M, Error = Error>>(rows: Vec<M>) -> Result<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}
