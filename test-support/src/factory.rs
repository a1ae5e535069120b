//! Factories: tenants, customers, users, SIMs straight through the `Directory` port.

use std::sync::{Arc, OnceLock};

use ioto_domain::directory::{Customer, NewCustomer, NewTenant, NewUser, Tenant, User};
use ioto_domain::identifiers::{Email, Iccid, Imsi, Name, Slug};
use ioto_domain::ports::Directory;
use ioto_domain::sim::{NewSim, Sim, SimState};
use ioto_domain::{CustomerId, Role, Scope};

/// Every factory user has this password.
pub const TEST_PASSWORD: &str = "test-password-123";

fn test_hash() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| ioto_domain::password::hash_password(TEST_PASSWORD).unwrap())
        .clone()
}

#[derive(Clone)]
pub struct Factory {
    pub dir: Arc<dyn Directory>,
}

fn short() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

impl Factory {
    pub fn new(dir: Arc<dyn Directory>) -> Self {
        Self { dir }
    }

    pub async fn tenant(&self, name: &str) -> Tenant {
        let slug = format!("t-{}", short());
        self.dir
            .create_tenant(
                Scope::Platform,
                NewTenant {
                    slug: Slug::parse(&slug).unwrap(),
                    name: Name::parse(name, "name").unwrap(),
                },
            )
            .await
            .unwrap()
    }

    pub async fn customer(&self, tenant: &Tenant, name: &str) -> Customer {
        self.dir
            .create_customer(
                Scope::Platform,
                NewCustomer {
                    tenant_id: tenant.id,
                    name: Name::parse(name, "name").unwrap(),
                    external_ref: None,
                },
            )
            .await
            .unwrap()
    }

    /// A user with [`TEST_PASSWORD`]; `customer` is required for `CUSTOMER_USER`.
    pub async fn user(&self, tenant: &Tenant, role: Role, customer: Option<CustomerId>) -> User {
        let email = format!("{}-{}@example.com", role.as_str().to_ascii_lowercase(), short());
        self.dir
            .create_user(
                Scope::Platform,
                NewUser {
                    tenant_id: tenant.id,
                    customer_id: customer,
                    email: Email::parse(&email).unwrap(),
                    display_name: Name::parse(&format!("Test {role}"), "displayName").unwrap(),
                    role,
                    password_hash: test_hash(),
                },
            )
            .await
            .unwrap()
    }

    /// `n` SIMs with unique, valid identifiers.
    pub async fn sims(&self, tenant: &Tenant, customer: Option<CustomerId>, n: usize) -> Vec<Sim> {
        let seed = u64::from(uuid::Uuid::new_v4().as_u128() as u32);
        let sims = (0..n as u64)
            .map(|i| NewSim {
                tenant_id: tenant.id,
                customer_id: customer,
                iccid: Iccid::with_check_digit(&format!("8988{:014}", seed * 1000 + i)).unwrap(),
                imsi: Imsi::parse(&format!("{:015}", seed * 1000 + i)).unwrap(),
                msisdn: None,
                state: SimState::Active,
            })
            .collect();
        self.dir.create_sims(Scope::Platform, sims).await.unwrap()
    }
}
