use std::sync::Arc;

use ioto_domain::directory::{CustomerPatch, NewCustomer, NewUser, UserPatch};
use ioto_domain::identifiers::{Email, Name, Slug};
use ioto_domain::ports::Directory;
use ioto_domain::{Error, Role, Scope};
use ioto_store::StoreLocation;

use super::open;
use ioto_test_support::{pg, temp_dir, Factory};

fn name(s: &str) -> Name {
    Name::parse(s, "name").unwrap()
}

async fn contract(store: ioto_store::SqlStore) {
    let dir: Arc<dyn Directory> = Arc::new(store.directory());
    let f = Factory::new(dir.clone(), Arc::new(store.fleet()));
    let a = f.tenant("Tenant A").await;
    let b = f.tenant("Tenant B").await;
    let a_scope = Scope::tenant(a.id);

    // Tenants: unique slugs; a tenant scope sees only its own tenant.
    let dup = dir
        .create_tenant(
            Scope::Platform,
            ioto_domain::directory::NewTenant {
                slug: a.slug.clone(),
                name: name("Again"),
            },
        )
        .await;
    assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");
    assert_eq!(dir.list_tenants(a_scope).await.unwrap(), vec![a.clone()]);
    assert_eq!(dir.tenant(a_scope, b.id).await.unwrap(), None);
    assert_eq!(
        dir.tenant_by_slug(a_scope, &Slug::parse(b.slug.as_str()).unwrap())
            .await
            .unwrap(),
        None
    );
    assert!(dir.list_tenants(Scope::Platform).await.unwrap().len() >= 2);

    // Customers: unique name per tenant, the same name in another tenant is fine.
    let acme = f.customer(&a, "Acme").await;
    f.customer(&b, "Acme").await;
    let again = dir
        .create_customer(
            a_scope,
            NewCustomer {
                tenant_id: a.id,
                name: name("Acme"),
                external_ref: None,
            },
        )
        .await;
    assert!(
        matches!(again, Err(Error::Conflict(ref m)) if m.contains("Acme")),
        "{again:?}"
    );
    let foreign = dir
        .create_customer(
            a_scope,
            NewCustomer {
                tenant_id: b.id,
                name: name("Sneaky"),
                external_ref: None,
            },
        )
        .await;
    assert!(matches!(foreign, Err(Error::NotFound { .. })), "{foreign:?}");
    let bravo = f.customer(&a, "Bravo").await;
    let listed = dir
        .list_customers(a_scope, a.id, &ioto_domain::fleet::query::Page::first(1000))
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["Acme", "Bravo"]
    );
    assert!(dir
        .list_customers(a_scope, b.id, &ioto_domain::fleet::query::Page::first(1000))
        .await
        .unwrap()
        .is_empty());
    // Pages: the first row, then the rows after its cursor.
    let one = dir
        .list_customers(a_scope, a.id, &ioto_domain::fleet::query::Page::first(1))
        .await
        .unwrap();
    assert_eq!(one.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Acme"]);
    let mut rest_page = ioto_domain::fleet::query::Page::first(10);
    rest_page.after = Some(ioto_domain::fleet::query::Cursor {
        k: one[0].name.to_string(),
        id: one[0].id.0,
    });
    let rest = dir.list_customers(a_scope, a.id, &rest_page).await.unwrap();
    assert_eq!(
        rest.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["Bravo"]
    );
    let acme_scope = Scope::Tenant {
        tenant_id: a.id,
        customer_id: Some(acme.id),
    };
    assert_eq!(
        dir.list_customers(acme_scope, a.id, &ioto_domain::fleet::query::Page::first(1000))
            .await
            .unwrap(),
        vec![acme.clone()]
    );
    let renamed = dir
        .update_customer(
            a_scope,
            bravo.id,
            CustomerPatch {
                name: Some(name("Bravo 2")),
                external_ref: Some(Some("X-1".into())),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.external_ref.as_deref()),
        ("Bravo 2", Some("X-1"))
    );

    // Users: e-mail unique regardless of case; login finds them across tenants.
    let admin = f.user(&a, Role::TenantAdmin, None).await;
    let cu = f.user(&a, Role::CustomerUser, Some(acme.id)).await;
    f.user(&b, Role::Viewer, None).await;
    let upper = Email::parse(&admin.email.as_str().to_uppercase()).unwrap();
    let dup_user = dir
        .create_user(
            Scope::Platform,
            NewUser {
                tenant_id: b.id,
                customer_id: None,
                email: upper.clone(),
                display_name: name("Dup"),
                role: Role::Viewer,
                password_hash: "x".into(),
            },
        )
        .await;
    assert!(matches!(dup_user, Err(Error::Conflict(_))), "{dup_user:?}");
    let rec = dir.login_record(&upper).await.unwrap().expect("login record");
    assert_eq!(
        (rec.user_id, rec.tenant_id, rec.role),
        (admin.id, a.id, Role::TenantAdmin)
    );
    assert!(dir
        .login_record(&Email::parse("nobody@example.com").unwrap())
        .await
        .unwrap()
        .is_none());
    let in_a: Vec<_> = dir
        .list_users(a_scope, a.id, &ioto_domain::fleet::query::Page::first(1000))
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(in_a.len(), 2);
    assert_eq!(
        dir.list_users(acme_scope, a.id, &ioto_domain::fleet::query::Page::first(1000))
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.id)
            .collect::<Vec<_>>(),
        vec![cu.id]
    );
    assert_eq!(dir.user(Scope::tenant(b.id), admin.id).await.unwrap(), None);

    // Details change; an e-mail taken by another user is a conflict; other tenants cannot touch them.
    let patch = UserPatch {
        display_name: Some(name("Renamed")),
        email: Some(Email::parse("renamed@example.com").unwrap()),
    };
    let changed = dir.update_user(a_scope, admin.id, patch).await.unwrap();
    assert_eq!(
        (changed.display_name.as_str(), changed.email.as_str()),
        ("Renamed", "renamed@example.com")
    );
    let taken = UserPatch {
        display_name: None,
        email: Some(Email::parse("renamed@example.com").unwrap()),
    };
    assert!(matches!(
        dir.update_user(a_scope, cu.id, taken.clone()).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        dir.update_user(Scope::tenant(b.id), cu.id, taken).await,
        Err(Error::NotFound { .. })
    ));

    // A customer with users cannot be deleted; once they are gone it can.
    let blocked = dir.delete_customer(a_scope, acme.id).await;
    assert!(
        matches!(blocked, Err(Error::Conflict(ref m)) if m.contains("1 user")),
        "{blocked:?}"
    );
    let moved = dir
        .set_user_role(a_scope, cu.id, Role::Viewer, None)
        .await
        .unwrap();
    assert_eq!((moved.role, moved.customer_id), (Role::Viewer, None));
    dir.delete_user(a_scope, cu.id).await.unwrap();
    dir.delete_customer(a_scope, acme.id).await.unwrap();
    assert_eq!(dir.customer(a_scope, acme.id).await.unwrap(), None);
    assert!(matches!(
        dir.delete_user(Scope::tenant(b.id), admin.id).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn directory_contract_on_sqlite() {
    contract(
        open(StoreLocation::Sqlite {
            path: temp_dir().join("ioto.sqlite"),
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn directory_contract_on_postgres() {
    contract(
        open(StoreLocation::Postgres {
            url: pg::database().await,
        })
        .await,
    )
    .await;
}
