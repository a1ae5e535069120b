//! Per-test Postgres databases cloned from a migrated template.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use ioto_store::StoreLocation;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::{env_or, unique};

/// The server URL tests connect to as the owning superuser.
pub fn admin_url() -> String {
    env_or("IOTO_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
}

fn with_db(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a database URL ends in /<database>");
    format!("{base}/{db}")
}

async fn admin() -> DatabaseConnection {
    let url = admin_url();
    Database::connect(&url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is not reachable at {url} ({e}); start it with scripts/engines.sh or set IOTO_TEST_PG_URL")
    })
}

fn template_name() -> String {
    let mut h = DefaultHasher::new();
    ioto_migrations::POSTGRES_SQL.hash(&mut h);
    format!("ioto_tpl_{:x}", h.finish())
}

/// A fresh, migrated database; returns its URL (connecting as the owner, like `ioto migrate`).
pub async fn database() -> String {
    let admin = admin().await;
    let template = template_name();
    let exec = |sql: String| Statement::from_string(sea_orm::DbBackend::Postgres, sql);
    // One process builds the template; the others wait on the lock and find it built.
    admin
        .execute(exec("SELECT pg_advisory_lock(7250002)".into()))
        .await
        .unwrap();
    let exists = admin
        .query_one(exec(format!(
            "SELECT 1 FROM pg_database WHERE datname = '{template}'"
        )))
        .await
        .unwrap()
        .is_some();
    if !exists {
        let building = format!("{template}_building");
        admin
            .execute(exec(format!("DROP DATABASE IF EXISTS {building}")))
            .await
            .unwrap();
        admin
            .execute(exec(format!("CREATE DATABASE {building}")))
            .await
            .unwrap();
        ioto_store::migrate(&StoreLocation::Postgres {
            url: with_db(&admin_url(), &building),
        })
        .await
        .expect("migrating the template database");
        admin
            .execute(exec(format!("ALTER DATABASE {building} RENAME TO {template}")))
            .await
            .unwrap();
    }
    admin
        .execute(exec("SELECT pg_advisory_unlock(7250002)".into()))
        .await
        .unwrap();
    let name = unique("ioto_test");
    admin
        .execute(exec(format!("CREATE DATABASE {name} TEMPLATE {template}")))
        .await
        .unwrap();
    admin.close().await.ok();
    with_db(&admin_url(), &name)
}
