//! The API key store on every engine: written with its audit entries, looked up by hash across
//! tenants, rolled and revoked once, bounded per tenant, and invisible to other tenants.

use std::sync::Arc;

use chrono::{Duration, Utc};
use ioto_domain::api_key::{ApiKeyState, CheckedToken, NewApiKey, MAX_LIVE_KEYS_PER_TENANT};
use ioto_domain::fleet::audit::{AuditAction, AuditQuery, AuditStamp, EntityKind};
use ioto_domain::fleet::query::Page;
use ioto_domain::identifiers::Name;
use ioto_domain::ports::{Directory, Fleet};
use ioto_domain::{ApiKeyId, Error, Role, Scope, TenantId, UserId};
use ioto_store::StoreLocation;

use super::open;
use ioto_test_support::{pg, temp_dir, Factory};

fn new_key(tenant: TenantId, name: &str, role: Role) -> (NewApiKey, CheckedToken) {
    let token = CheckedToken::generate();
    (
        NewApiKey {
            id: ApiKeyId::new(),
            tenant_id: tenant,
            customer_id: None,
            name: Name::parse(name, "name").unwrap(),
            role,
            token_hash: token.hash(),
            hint: token.hint(),
            created_by: Some(UserId::new()),
            created_at: Utc::now(),
            expires_at: Some(Utc::now() + Duration::days(30)),
            rolled_from: None,
        },
        token,
    )
}

fn stamp(who: &str) -> AuditStamp {
    AuditStamp {
        actor: who.into(),
        actor_user_id: None,
        at: Utc::now(),
        note: None,
    }
}

fn all() -> Page<()> {
    Page {
        sort: (),
        descending: false,
        after: None,
        limit: 1000,
    }
}

async fn contract(store: ioto_store::SqlStore) {
    let dir: Arc<dyn Directory> = Arc::new(store.directory());
    let fleet: Arc<dyn Fleet> = Arc::new(store.fleet());
    let f = Factory::new(dir.clone(), fleet.clone());
    let a = f.tenant("Keys A").await;
    let b = f.tenant("Keys B").await;
    let (a_scope, b_scope) = (Scope::tenant(a.id), Scope::tenant(b.id));

    let (new, token) = new_key(a.id, "billing export", Role::Viewer);
    let key = dir
        .create_api_key(a_scope, new.clone(), stamp("admin"))
        .await
        .unwrap();
    assert_eq!(
        (key.role, key.state(Utc::now())),
        (Role::Viewer, ApiKeyState::Active)
    );
    assert_eq!(key.hint, token.hint());

    // Found by hash without a tenant; never by another tenant's scope.
    let found = dir.api_key_by_hash(&token.hash()).await.unwrap().unwrap();
    assert_eq!(found, key);
    assert_eq!(
        dir.api_key_by_hash(&CheckedToken::generate().hash())
            .await
            .unwrap(),
        None
    );
    assert_eq!(dir.api_key(b_scope, key.id).await.unwrap(), None);
    assert!(dir.list_api_keys(b_scope, a.id, &all()).await.unwrap().is_empty());
    assert!(matches!(
        dir.revoke_api_key(b_scope, key.id, stamp("intruder")).await,
        Err(Error::NotFound { .. })
    ));
    let (foreign, _) = new_key(a.id, "planted", Role::TenantAdmin);
    assert!(matches!(
        dir.create_api_key(b_scope, foreign, stamp("intruder")).await,
        Err(Error::NotFound { .. })
    ));

    // Use is recorded; an earlier use never overwrites a later one.
    let later = Utc::now();
    dir.touch_api_key(a.id, key.id, later, Some("192.0.2.7".into()))
        .await
        .unwrap();
    dir.touch_api_key(
        a.id,
        key.id,
        later - Duration::minutes(5),
        Some("198.51.100.1".into()),
    )
    .await
    .unwrap();
    let used = dir.api_key(a_scope, key.id).await.unwrap().unwrap();
    assert_eq!(used.last_used_address.as_deref(), Some("192.0.2.7"));
    assert_eq!(
        used.last_used_at.map(|t| t.timestamp_millis()),
        Some(later.timestamp_millis())
    );

    // Rolling: the old key names its replacement and expires at the overlap's end.
    let (replacement, new_token) = new_key(a.id, "billing export", Role::Viewer);
    let until = Utc::now() + Duration::hours(24);
    let fresh = dir
        .roll_api_key(
            a_scope,
            key.id,
            NewApiKey {
                rolled_from: Some(key.id),
                ..replacement.clone()
            },
            until,
            stamp("admin"),
        )
        .await
        .unwrap();
    assert_eq!(fresh.rolled_from, Some(key.id));
    let old = dir.api_key(a_scope, key.id).await.unwrap().unwrap();
    assert_eq!(old.replaced_by, Some(fresh.id));
    assert_eq!(old.state(Utc::now()), ApiKeyState::Rolling);
    assert_eq!(
        old.expires_at.map(|t| t.timestamp_millis()),
        Some(until.timestamp_millis())
    );
    assert_eq!(
        dir.api_key_by_hash(&new_token.hash())
            .await
            .unwrap()
            .map(|k| k.id),
        Some(fresh.id)
    );
    let (again, _) = new_key(a.id, "billing export", Role::Viewer);
    let twice = dir
        .roll_api_key(a_scope, key.id, again, until, stamp("admin"))
        .await;
    assert!(
        matches!(twice, Err(Error::Conflict(ref m)) if m.contains("rolled already")),
        "{twice:?}"
    );

    // Revoking: once, with one entry; a revoked key cannot be rolled.
    let revoked = dir
        .revoke_api_key(a_scope, fresh.id, stamp("admin"))
        .await
        .unwrap();
    assert_eq!(revoked.state(Utc::now()), ApiKeyState::Revoked);
    let again = dir
        .revoke_api_key(a_scope, fresh.id, stamp("admin"))
        .await
        .unwrap();
    assert_eq!(again.revoked_at, revoked.revoked_at);
    let (after_revoke, _) = new_key(a.id, "x", Role::Viewer);
    assert!(matches!(
        dir.roll_api_key(a_scope, fresh.id, after_revoke, until, stamp("admin"))
            .await,
        Err(Error::Conflict(_))
    ));

    // Every write left its audit entry, in the key's tenant only.
    let trail = fleet
        .audit(
            a_scope,
            a.id,
            &AuditQuery {
                entity_kind: Some(EntityKind::ApiKey),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut actions: Vec<(AuditAction, uuid::Uuid)> = trail.iter().map(|e| (e.action, e.entity_id)).collect();
    actions.reverse();
    assert_eq!(
        actions,
        vec![
            (AuditAction::Created, key.id.0),
            (AuditAction::Rolled, key.id.0),
            (AuditAction::Created, fresh.id.0),
            (AuditAction::Revoked, fresh.id.0),
        ]
    );
    assert!(trail
        .iter()
        .all(|e| e.entity_ref == "billing export" && e.customer_id.is_none()));
    assert!(fleet
        .audit(
            b_scope,
            b.id,
            &AuditQuery {
                entity_kind: Some(EntityKind::ApiKey),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .is_empty());

    // A customer key names a customer of its own tenant, and goes with that customer.
    let acme = f.customer(&a, "Acme").await;
    let (mut scoped, scoped_token) = new_key(a.id, "acme portal", Role::CustomerUser);
    scoped.customer_id = Some(acme.id);
    dir.create_api_key(a_scope, scoped, stamp("admin")).await.unwrap();
    let other = f.customer(&b, "Other").await;
    let (mut wrong, _) = new_key(a.id, "wrong customer", Role::CustomerUser);
    wrong.customer_id = Some(other.id);
    assert!(dir.create_api_key(a_scope, wrong, stamp("admin")).await.is_err());
    dir.delete_customer(a_scope, acme.id).await.unwrap();
    assert_eq!(dir.api_key_by_hash(&scoped_token.hash()).await.unwrap(), None);

    // At most so many live keys per tenant; revoked and expired ones do not count.
    let live = dir
        .list_api_keys(a_scope, a.id, &all())
        .await
        .unwrap()
        .into_iter()
        .filter(|k| matches!(k.state(Utc::now()), ApiKeyState::Active | ApiKeyState::Rolling))
        .count() as u64;
    for n in live..MAX_LIVE_KEYS_PER_TENANT {
        let (k, _) = new_key(a.id, &format!("service {n:03}"), Role::Viewer);
        dir.create_api_key(a_scope, k, stamp("admin")).await.unwrap();
    }
    let (one_more, _) = new_key(a.id, "one too many", Role::Viewer);
    let refused = dir
        .create_api_key(a_scope, one_more.clone(), stamp("admin"))
        .await;
    assert!(
        matches!(refused, Err(Error::Conflict(ref m)) if m.contains("revoke one first")),
        "{refused:?}"
    );
    let (b_key, _) = new_key(b.id, "other tenant", Role::Viewer);
    dir.create_api_key(b_scope, b_key, stamp("admin"))
        .await
        .expect("another tenant's bound is its own");
    let listed = dir.list_api_keys(a_scope, a.id, &all()).await.unwrap();
    let victim = listed.iter().find(|k| k.name.as_str() == "service 050").unwrap();
    dir.revoke_api_key(a_scope, victim.id, stamp("admin"))
        .await
        .unwrap();
    dir.create_api_key(a_scope, one_more, stamp("admin"))
        .await
        .expect("a revoked key makes room");

    // Listed by name, paged.
    let names: Vec<String> = listed.iter().map(|k| k.name.to_string()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[tokio::test]
async fn api_key_contract_on_sqlite() {
    contract(
        open(StoreLocation::Sqlite {
            path: temp_dir().join("ioto.sqlite"),
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn api_key_contract_on_postgres() {
    contract(
        open(StoreLocation::Postgres {
            url: pg::database().await,
        })
        .await,
    )
    .await;
}
