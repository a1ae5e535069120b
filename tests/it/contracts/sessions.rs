//! The session store on every engine: a refresh token is good once and its replay ends the
//! session; idle and ended sessions refresh nothing; sessions are the user's and the tenant's
//! own; a user holds a bounded number of open sessions.

use std::sync::Arc;

use chrono::{Duration, Utc};
use ioto_domain::account::{
    NewSession, RefreshToken, Refreshed, SessionEnd, SessionId, MAX_OPEN_SESSIONS_PER_USER,
};
use ioto_domain::directory::User;
use ioto_domain::ports::Directory;
use ioto_domain::{Role, Scope};
use ioto_store::StoreLocation;

use super::open;
use ioto_test_support::{pg, temp_dir, Factory};

fn new_session(user: &User, minutes_ago: i64) -> NewSession {
    let at = Utc::now() - Duration::minutes(minutes_ago);
    NewSession {
        id: SessionId::new(),
        tenant_id: user.tenant_id,
        user_id: user.id,
        customer_id: user.customer_id,
        at,
        expires_at: at + Duration::days(30),
        client_address: Some("192.0.2.1".into()),
        user_agent: Some("contract/1".into()),
    }
}

async fn contract(store: ioto_store::SqlStore) {
    let dir: Arc<dyn Directory> = Arc::new(store.directory());
    let f = Factory::new(dir.clone(), Arc::new(store.fleet()));
    let a = f.tenant("Sessions A").await;
    let b = f.tenant("Sessions B").await;
    let acme = f.customer(&a, "Acme").await;
    let alice = f.user(&a, Role::Operator, None).await;
    let carol = f.user(&a, Role::CustomerUser, Some(acme.id)).await;
    let bob = f.user(&b, Role::Operator, None).await;
    let a_scope = Scope::tenant(a.id);
    let idle = Duration::days(7);

    // Start, then rotate: the first token is used up, the second continues.
    let first = RefreshToken::generate();
    let s = dir
        .start_session(new_session(&alice, 5), &first.hash())
        .await
        .unwrap();
    assert_eq!(s.user_agent.as_deref(), Some("contract/1"));
    let second = RefreshToken::generate();
    let now = Utc::now();
    let rotated = dir
        .rotate_refresh(
            &first.hash(),
            &second.hash(),
            now,
            idle,
            Some("198.51.100.9".into()),
        )
        .await
        .unwrap();
    let Refreshed::Rotated(r) = rotated else {
        panic!("{rotated:?}")
    };
    assert_eq!(r.id, s.id);
    assert_eq!(r.client_address.as_deref(), Some("198.51.100.9"));
    assert_eq!(r.refreshed_at.timestamp_millis(), now.timestamp_millis());

    // The first token again: the family is in two hands, the session ends, and its live token
    // is refused too.
    let third = RefreshToken::generate();
    let replay = dir
        .rotate_refresh(&first.hash(), &third.hash(), Utc::now(), idle, None)
        .await
        .unwrap();
    let Refreshed::Reused(ended) = replay else {
        panic!("{replay:?}")
    };
    assert_eq!(ended.end_reason, Some(SessionEnd::RefreshReused));
    let after = dir
        .rotate_refresh(&second.hash(), &third.hash(), Utc::now(), idle, None)
        .await
        .unwrap();
    assert!(
        matches!(after, Refreshed::Over(ref o) if o.id == s.id),
        "{after:?}"
    );
    assert_eq!(
        dir.rotate_refresh(
            &third.hash(),
            &RefreshToken::generate().hash(),
            Utc::now(),
            idle,
            None
        )
        .await
        .unwrap(),
        Refreshed::Unknown,
        "a token never issued is unknown"
    );

    // Idle too long: nothing refreshes.
    let stale = RefreshToken::generate();
    let old = dir
        .start_session(new_session(&alice, 8 * 24 * 60), &stale.hash())
        .await
        .unwrap();
    let idle_out = dir
        .rotate_refresh(
            &stale.hash(),
            &RefreshToken::generate().hash(),
            Utc::now(),
            idle,
            None,
        )
        .await
        .unwrap();
    assert!(
        matches!(idle_out, Refreshed::Over(ref o) if o.id == old.id),
        "{idle_out:?}"
    );

    // A sub-customer's user's session is narrowed like the user; the tenants never meet.
    let carols = RefreshToken::generate();
    let cs = dir
        .start_session(new_session(&carol, 1), &carols.hash())
        .await
        .unwrap();
    let acme_scope = Scope::Tenant {
        tenant_id: a.id,
        customer_id: Some(acme.id),
    };
    assert!(dir.session(acme_scope, cs.id).await.unwrap().is_some());
    assert!(dir.session(acme_scope, old.id).await.unwrap().is_none());
    assert!(dir.session(Scope::tenant(b.id), cs.id).await.unwrap().is_none());
    assert!(
        !dir.end_session(
            Scope::tenant(b.id),
            carol.id,
            cs.id,
            SessionEnd::Logout,
            Utc::now()
        )
        .await
        .unwrap(),
        "another tenant cannot end it"
    );
    let bobs = RefreshToken::generate();
    let bs = dir
        .start_session(new_session(&bob, 1), &bobs.hash())
        .await
        .unwrap();
    assert!(
        !dir.end_session(a_scope, alice.id, bs.id, SessionEnd::Logout, Utc::now())
            .await
            .unwrap(),
        "a user ends their own sessions only"
    );
    assert!(
        matches!(
            dir.rotate_refresh(
                &bobs.hash(),
                &RefreshToken::generate().hash(),
                Utc::now(),
                idle,
                None
            )
            .await
            .unwrap(),
            Refreshed::Rotated(_)
        ),
        "another tenant's session is found by its token"
    );

    // Listing and ending: open sessions only, newest refresh first.
    let mut open_ids = Vec::new();
    for m in [30, 20, 10] {
        let t = RefreshToken::generate();
        open_ids.push(
            dir.start_session(new_session(&alice, m), &t.hash())
                .await
                .unwrap()
                .id,
        );
    }
    let listed: Vec<SessionId> = dir
        .list_sessions(a_scope, alice.id, Utc::now())
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    // The idle session is still listed (the store knows no idle time); the oldest refresh last.
    let mut expected: Vec<SessionId> = open_ids.iter().rev().copied().collect();
    expected.push(old.id);
    assert_eq!(listed, expected);
    assert!(dir
        .end_session(a_scope, alice.id, open_ids[0], SessionEnd::Logout, Utc::now())
        .await
        .unwrap());
    assert!(
        !dir.end_session(a_scope, alice.id, open_ids[0], SessionEnd::Logout, Utc::now())
            .await
            .unwrap(),
        "ended once"
    );
    let n = dir
        .end_user_sessions(
            a_scope,
            alice.id,
            Some(open_ids[2]),
            SessionEnd::PasswordChanged,
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(n, 2, "the one left open and the idle one");
    let left = dir.list_sessions(a_scope, alice.id, Utc::now()).await.unwrap();
    assert_eq!(left.iter().map(|s| s.id).collect::<Vec<_>>(), vec![open_ids[2]]);
    let ended = dir.session(a_scope, open_ids[1]).await.unwrap().unwrap();
    assert_eq!(ended.end_reason, Some(SessionEnd::PasswordChanged));

    // Past the bound, the oldest open session ends.
    let mut newest = Vec::new();
    for _ in 0..MAX_OPEN_SESSIONS_PER_USER {
        let t = RefreshToken::generate();
        newest.push(
            dir.start_session(new_session(&alice, 0), &t.hash())
                .await
                .unwrap()
                .id,
        );
    }
    for id in &newest {
        let s = dir.session(a_scope, *id).await.unwrap().unwrap();
        assert_eq!(
            s.end_reason, None,
            "the newest {MAX_OPEN_SESSIONS_PER_USER} stay open"
        );
    }
    let replaced = dir.session(a_scope, open_ids[2]).await.unwrap().unwrap();
    assert_eq!(replaced.end_reason, Some(SessionEnd::Replaced));

    // A deleted user's sessions go with them.
    dir.delete_user(a_scope, alice.id).await.unwrap();
    assert!(dir
        .list_sessions(a_scope, alice.id, Utc::now())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn session_contract_on_sqlite() {
    contract(
        open(StoreLocation::Sqlite {
            path: temp_dir().join("ioto.sqlite"),
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn session_contract_on_postgres() {
    contract(
        open(StoreLocation::Postgres {
            url: pg::database().await,
        })
        .await,
    )
    .await;
}
