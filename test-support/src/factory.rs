//! Factories: tenants, customers, users, SIMs and devices straight through the ports.

use std::sync::{Arc, OnceLock};

use ioto_domain::directory::{Customer, NewCustomer, NewTenant, NewUser, Tenant, User};
use ioto_domain::fleet::{
    AuditAction, AuditStamp, Connectivity, Device, DeviceKind, DeviceState, Imei, Labels, NewSim, Sim,
    SimState,
};
use ioto_domain::identifiers::{Email, Iccid, Imsi, Name, Slug};
use ioto_domain::ports::{Changeset, Directory, Fleet, Versioned};
use ioto_domain::{CustomerId, DeviceId, Role, Scope};

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
    pub fleet: Arc<dyn Fleet>,
}

fn short() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

impl Factory {
    pub fn new(dir: Arc<dyn Directory>, fleet: Arc<dyn Fleet>) -> Self {
        Self { dir, fleet }
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

    /// `n` ACTIVE SIMs with unique, valid identifiers, in ICCID order.
    pub async fn sims(&self, tenant: &Tenant, customer: Option<CustomerId>, n: usize) -> Vec<Sim> {
        self.sims_created_at(tenant, customer, n, chrono::Utc::now())
            .await
    }

    /// `n` ACTIVE SIMs as if created (and so activated) at `at`, as the audit trail tells.
    pub async fn sims_created_at(
        &self,
        tenant: &Tenant,
        customer: Option<CustomerId>,
        n: usize,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Sim> {
        self.sims_of(tenant, customer, n, at, None).await
    }

    /// `n` ACTIVE SIMs on a tariff plan.
    pub async fn sims_on_plan(&self, tenant: &Tenant, plan: &str, n: usize) -> Vec<Sim> {
        self.sims_of(tenant, None, n, chrono::Utc::now(), Some(plan))
            .await
    }

    async fn sims_of(
        &self,
        tenant: &Tenant,
        customer: Option<CustomerId>,
        n: usize,
        at: chrono::DateTime<chrono::Utc>,
        plan: Option<&str>,
    ) -> Vec<Sim> {
        let seed = u64::from(uuid::Uuid::new_v4().as_u128() as u32);
        let sims: Vec<NewSim> = (0..n as u64)
            .map(|i| {
                let mut s = NewSim::basic(
                    tenant.id,
                    Iccid::with_check_digit(&format!("8988{:014}", seed * 1000 + i)).unwrap(),
                    Imsi::parse(&format!("{:015}", seed * 1000 + i)).unwrap(),
                );
                s.customer_id = customer;
                s.tariff_plan = plan.map(str::to_owned);
                s.state = SimState::Active;
                s
            })
            .collect();
        let stamp = AuditStamp {
            actor: "factory".into(),
            actor_user_id: None,
            at,
            note: None,
        };
        let ids = self
            .fleet
            .insert_sims(
                Scope::Platform,
                &sims.iter().collect::<Vec<_>>(),
                AuditAction::Created,
                &stamp,
                None,
            )
            .await
            .unwrap();
        let mut out = self.fleet.sims_by_id(Scope::Platform, &ids).await.unwrap();
        out.sort_by(|a, b| a.iccid.cmp(&b.iccid));
        out
    }

    /// A device in state `REGISTERED` with a unique IMEI.
    pub async fn device(&self, tenant: &Tenant, customer: Option<CustomerId>, name: &str) -> Device {
        let n = uuid::Uuid::new_v4().as_u128() % 100_000_000_000_000;
        let now = chrono::Utc::now();
        let d = Device {
            id: DeviceId::new(),
            tenant_id: tenant.id,
            customer_id: customer,
            imei: Imei::with_check_digit(&format!("{n:014}")).unwrap(),
            name: name.to_owned(),
            kind: DeviceKind::Tracker,
            connectivity: vec![Connectivity::Cellular],
            state: DeviceState::Registered,
            labels: Labels::new(),
            last_activity_at: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.fleet
            .apply(
                Scope::Platform,
                Changeset {
                    devices: vec![Versioned {
                        expected_version: None,
                        row: d.clone(),
                    }],
                    ..Changeset::default()
                },
            )
            .await
            .unwrap();
        d
    }
}

/// A fresh migrated Postgres database: the directory and fleet ports on it, and a factory.
pub async fn postgres_ports() -> (Arc<dyn Directory>, Arc<dyn Fleet>, Factory) {
    let (store, factory) = postgres_store().await;
    (Arc::new(store.directory()), Arc::new(store.fleet()), factory)
}

/// A fresh migrated Postgres database's store (every port's adapter is one call away) and a
/// factory on it.
pub async fn postgres_store() -> (ioto_store::SqlStore, Factory) {
    let url = crate::pg::database().await;
    let store = ioto_store::connect(&ioto_store::StoreLocation::Postgres { url }, 2)
        .await
        .unwrap();
    let factory = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    (store, factory)
}
