//! `ioto demo`: a tenant with sub-customers, a user of every role and some SIMs, seeded once.

use std::sync::Arc;

use ioto_domain::directory::{NewCustomer, NewTenant, NewUser, Tenant, User};
use ioto_domain::identifiers::{Email, Iccid, Imsi, Msisdn, Name, Slug};
use ioto_domain::password::hash_password;
use ioto_domain::ports::Directory;
use ioto_domain::sim::{NewSim, SimState};
use ioto_domain::{Role, Scope};

/// Every demo user signs in with this password.
pub const DEMO_PASSWORD: &str = "ioto-demo-password";
pub const DEMO_TENANT: &str = "demo";
pub const PLATFORM_TENANT: &str = "platform";
pub const DEMO_SIMS: usize = 40;

/// What the demo holds: the demo tenant and one user per role.
pub struct Demo {
    pub tenant: Tenant,
    pub users: Vec<User>,
}

fn parse<T>(r: ioto_domain::Result<T>) -> anyhow::Result<T> {
    r.map_err(anyhow::Error::from)
}

/// Seeds the demo data unless the demo tenant exists; either way returns it.
pub async fn seed(dir: &Arc<dyn Directory>) -> anyhow::Result<Demo> {
    let scope = Scope::Platform;
    let demo_slug = parse(Slug::parse(DEMO_TENANT))?;
    if let Some(tenant) = dir.tenant_by_slug(scope, &demo_slug).await? {
        let platform = dir
            .tenant_by_slug(scope, &parse(Slug::parse(PLATFORM_TENANT))?)
            .await?;
        let mut users = dir.list_users(scope, tenant.id).await?;
        if let Some(p) = platform {
            users.extend(dir.list_users(scope, p.id).await?);
        }
        return Ok(Demo {
            tenant,
            users: one_per_role(users),
        });
    }

    let hash = hash_password(DEMO_PASSWORD)?;
    let platform = match dir
        .tenant_by_slug(scope, &parse(Slug::parse(PLATFORM_TENANT))?)
        .await?
    {
        Some(t) => t,
        None => {
            dir.create_tenant(
                scope,
                NewTenant {
                    slug: parse(Slug::parse(PLATFORM_TENANT))?,
                    name: parse(Name::parse("Ioto Platform", "name"))?,
                },
            )
            .await?
        }
    };
    let tenant = dir
        .create_tenant(
            scope,
            NewTenant {
                slug: demo_slug,
                name: parse(Name::parse("Demo Fleet GmbH", "name"))?,
            },
        )
        .await?;
    let mut customers = Vec::new();
    for (name, ext) in [
        ("Acme Logistics", "C-1001"),
        ("Bravo Energy", "C-1002"),
        ("Cargo Rail", "C-1003"),
    ] {
        customers.push(
            dir.create_customer(
                scope,
                NewCustomer {
                    tenant_id: tenant.id,
                    name: parse(Name::parse(name, "name"))?,
                    external_ref: Some(ext.into()),
                },
            )
            .await?,
        );
    }
    let people = [
        (
            platform.id,
            None,
            "platform@ioto.local",
            "Pat Platform",
            Role::PlatformAdmin,
        ),
        (tenant.id, None, "admin@demo.ioto", "Ada Admin", Role::TenantAdmin),
        (
            tenant.id,
            None,
            "operator@demo.ioto",
            "Otto Operator",
            Role::Operator,
        ),
        (
            tenant.id,
            Some(customers[0].id),
            "customer@demo.ioto",
            "Cora Customer",
            Role::CustomerUser,
        ),
        (tenant.id, None, "viewer@demo.ioto", "Vic Viewer", Role::Viewer),
    ];
    let mut users = Vec::new();
    for (tenant_id, customer_id, email, name, role) in people {
        users.push(
            dir.create_user(
                scope,
                NewUser {
                    tenant_id,
                    customer_id,
                    email: parse(Email::parse(email))?,
                    display_name: parse(Name::parse(name, "displayName"))?,
                    role,
                    password_hash: hash.clone(),
                },
            )
            .await?,
        );
    }
    let mut sims = Vec::new();
    for i in 0..DEMO_SIMS {
        sims.push(NewSim {
            tenant_id: tenant.id,
            customer_id: customers.get(i % 4).map(|c| c.id),
            iccid: parse(Iccid::with_check_digit(&format!("8988228066{i:08}")))?,
            imsi: parse(Imsi::parse(&format!("90128{i:010}")))?,
            msisdn: Some(parse(Msisdn::parse(&format!("+882360{i:07}")))?),
            state: match i % 5 {
                0 => SimState::Inventory,
                4 => SimState::Suspended,
                _ => SimState::Active,
            },
        });
    }
    dir.create_sims(scope, sims).await?;
    Ok(Demo { tenant, users })
}

/// The first user of each role, in role order.
fn one_per_role(users: Vec<User>) -> Vec<User> {
    Role::ALL
        .iter()
        .filter_map(|r| users.iter().find(|u| u.role == *r).cloned())
        .collect()
}
