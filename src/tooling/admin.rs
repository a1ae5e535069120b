//! `ioto admin`: what an operator needs on an empty production database — the first platform
//! admin, tenants, users — and the rotation of the token-signing secret. Everything goes through
//! the same domain service the API uses (same validation, same password hashing), acting as the
//! platform.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::Subcommand;
use ioto_app::{CreateUser, DirectoryService};
use ioto_domain::directory::{Customer, Tenant, User};
use ioto_domain::fleet::query::{Cursor, Page};
use ioto_domain::identifiers::{Email, Name, Slug};
use ioto_domain::ports::Directory;
use ioto_domain::{Actor, CustomerId, Role, TenantId};

use crate::config::Config;
use crate::engines;
use crate::tooling::demo::PLATFORM_TENANT;

/// Where a new user's password comes from, in this order: `--password-stdin`, the environment
/// variable `IOTO_ADMIN_PASSWORD`, an interactive prompt (asked twice, not echoed).
pub const PASSWORD_ENV: &str = "IOTO_ADMIN_PASSWORD";

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a platform admin (and the platform tenant on first use). The way in on an empty
    /// database: sign in with `login(email, password)` afterwards.
    CreatePlatformAdmin {
        #[arg(long)]
        email: String,
        /// Display name (default: the e-mail address).
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create a tenant; prints its id.
    CreateTenant {
        /// 2 to 40 lower-case letters, digits or '-'.
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
    },
    /// Create a user in a tenant; prints its id.
    CreateUser {
        /// Tenant id or slug.
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Sub-customer id or name (CUSTOMER_USER only).
        #[arg(long)]
        customer: Option<String>,
        /// Display name (default: the e-mail address).
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Replace the generated HS256 token-signing secret in the data directory. Every token issued
    /// before stops working (users sign in again); restart the servers sharing the directory.
    RotateJwtSecret,
}

pub fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).map_err(|e| e.to_string())
}

/// The directory service acting as the platform, on the configured transactional store
/// (migrated first, so an empty database works).
pub struct Admin {
    pub directory: DirectoryService,
    pub actor: Actor,
}

impl Admin {
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let loc = engines::store_location(config);
        ioto_store::migrate(&loc).await?;
        let dir: Arc<dyn Directory> = Arc::new(ioto_store::connect(&loc, 2).await?.directory());
        Ok(Self {
            directory: DirectoryService::new(dir),
            actor: Actor {
                user_id: None,
                subject: "cli".into(),
                tenant_id: TenantId(uuid::Uuid::nil()),
                role: Role::PlatformAdmin,
                customer_id: None,
                issued_at: None,
                api_key: None,
                session_id: None,
            },
        })
    }

    pub async fn tenant(&self, id_or_slug: &str) -> anyhow::Result<Tenant> {
        Ok(self.directory.find_tenant(&self.actor, id_or_slug).await?)
    }

    /// A sub-customer of `tenant` by id or (case-insensitive) name.
    pub async fn customer(&self, tenant: &Tenant, id_or_name: &str) -> anyhow::Result<Customer> {
        let mut page = Page::first(1000);
        loop {
            let customers = self
                .directory
                .customers(&self.actor, Some(tenant.id), &page)
                .await?;
            if let Some(found) = customers
                .iter()
                .find(|x| x.id.to_string() == id_or_name || x.name.as_str().eq_ignore_ascii_case(id_or_name))
            {
                return Ok(found.clone());
            }
            let Some(last) = customers.last().filter(|_| customers.len() as u64 == page.limit) else {
                bail!("--customer: no customer '{id_or_name}' in tenant {}", tenant.slug);
            };
            page.after = Some(Cursor {
                k: last.name.to_string(),
                id: last.id.0,
            });
        }
    }

    /// The customer a user of `role` needs: required for CUSTOMER_USER, refused otherwise.
    pub async fn customer_for_role(
        &self,
        tenant: &Tenant,
        role: Role,
        customer: Option<&str>,
    ) -> anyhow::Result<Option<CustomerId>> {
        match (role.is_customer_scoped(), customer) {
            (true, None) => bail!("--customer is required for role CUSTOMER_USER"),
            (false, Some(_)) => bail!("--customer is only allowed with role CUSTOMER_USER"),
            (false, None) => Ok(None),
            (true, Some(c)) => Ok(Some(self.customer(tenant, c).await?.id)),
        }
    }

    async fn platform_tenant(&self) -> anyhow::Result<Tenant> {
        let slug = Slug::parse(PLATFORM_TENANT)?;
        match self.directory.find_tenant(&self.actor, slug.as_str()).await {
            Ok(t) => Ok(t),
            Err(ioto_domain::Error::NotFound { .. }) => Ok(self
                .directory
                .create_tenant(&self.actor, slug, Name::parse("Platform", "name")?)
                .await?),
            Err(e) => Err(e.into()),
        }
    }

    async fn create_user(
        &self,
        tenant: &Tenant,
        email: &str,
        name: Option<&str>,
        role: Role,
        customer: Option<CustomerId>,
        password: String,
    ) -> anyhow::Result<User> {
        let email = Email::parse(email).context("--email")?;
        let display_name = Name::parse(name.unwrap_or(email.as_str()), "name").context("--name")?;
        Ok(self
            .directory
            .create_user(
                &self.actor,
                CreateUser {
                    tenant_id: Some(tenant.id),
                    customer_id: customer,
                    email,
                    display_name,
                    role,
                    password,
                },
            )
            .await?)
    }
}

/// Runs one admin command; returns what to print.
pub async fn run(config: &Config, command: AdminCommand) -> anyhow::Result<String> {
    match command {
        AdminCommand::RotateJwtSecret => rotate_jwt_secret(config),
        AdminCommand::CreatePlatformAdmin {
            email,
            name,
            password_stdin,
        } => {
            let admin = Admin::connect(config).await?;
            let password = read_password(password_stdin)?;
            let platform = admin.platform_tenant().await?;
            let user = admin
                .create_user(
                    &platform,
                    &email,
                    name.as_deref(),
                    Role::PlatformAdmin,
                    None,
                    password,
                )
                .await?;
            Ok(format!(
                "platform admin {} created (user {}); sign in with the login mutation",
                user.email, user.id
            ))
        }
        AdminCommand::CreateTenant { slug, name } => {
            let admin = Admin::connect(config).await?;
            let tenant = admin
                .directory
                .create_tenant(
                    &admin.actor,
                    Slug::parse(&slug).context("--slug")?,
                    Name::parse(&name, "name").context("--name")?,
                )
                .await?;
            Ok(tenant.id.to_string())
        }
        AdminCommand::CreateUser {
            tenant,
            email,
            role,
            customer,
            name,
            password_stdin,
        } => {
            let admin = Admin::connect(config).await?;
            let tenant = admin.tenant(&tenant).await?;
            let customer = admin
                .customer_for_role(&tenant, role, customer.as_deref())
                .await?;
            let password = read_password(password_stdin)?;
            let user = admin
                .create_user(&tenant, &email, name.as_deref(), role, customer, password)
                .await?;
            Ok(user.id.to_string())
        }
    }
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    #[expect(
        clippy::disallowed_methods,
        reason = "a one-off secret for this command, not configuration: it must not be layered or printed by `ioto config`"
    )]
    let from_env = std::env::var(PASSWORD_ENV);
    if let Ok(p) = from_env {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no password: pass --password-stdin, set {PASSWORD_ENV}, or run in a terminal to be asked");
    }
    let first = rpassword::prompt_password("Password: ").context("reading the password")?;
    let again = rpassword::prompt_password("Password (again): ").context("reading the password")?;
    if first != again {
        bail!("the two passwords differ");
    }
    Ok(first)
}

fn rotate_jwt_secret(config: &Config) -> anyhow::Result<String> {
    if config.auth.jwt_secret.is_some() {
        bail!("auth.jwt_secret is set in the configuration: change it there (the data directory's secret is not used)");
    }
    if config.auth.algorithm != crate::config::JwtAlgorithm::HS256 {
        bail!(
            "auth.algorithm is {}: tokens are verified with the identity provider's keys; nothing to rotate here",
            config.auth.algorithm
        );
    }
    let path = config.data_dir.join("jwt-secret");
    replace_secret(&path)?;
    crate::server::auth::hs256_secret(None, &config.data_dir)?;
    Ok(format!(
        "new token-signing secret written to {}; tokens issued before no longer verify — restart the servers using this data directory",
        path.display()
    ))
}

/// Moves the old secret aside (kept as `*.old` until the next rotation) so a new one is generated.
fn replace_secret(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        let old = path.with_extension("old");
        std::fs::rename(path, &old)
            .with_context(|| format!("moving {} to {}", path.display(), old.display()))?;
    }
    Ok(())
}
