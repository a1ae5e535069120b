//! The second-factor store on every engine: a set-up confirmed once, a step accepted once (and
//! never an earlier one), recovery codes used once, challenges found across tenants and
//! answered once, everything the user's and the tenant's own.

use std::sync::Arc;

use chrono::{Duration, Utc};
use ioto_domain::mfa::{self, Challenge, ChallengePurpose, ChallengeToken};
use ioto_domain::ports::Directory;
use ioto_domain::{Error, Role, Scope};
use ioto_store::StoreLocation;

use super::open;
use ioto_test_support::{pg, temp_dir, Factory};

async fn contract(store: ioto_store::SqlStore) {
    let dir: Arc<dyn Directory> = Arc::new(store.directory());
    let f = Factory::new(dir.clone(), Arc::new(store.fleet()));
    let a = f.tenant("Factors A").await;
    let b = f.tenant("Factors B").await;
    let acme = f.customer(&a, "Acme").await;
    let carol = f.user(&a, Role::CustomerUser, Some(acme.id)).await;
    let bob = f.user(&b, Role::Operator, None).await;
    let scope = Scope::Tenant {
        tenant_id: a.id,
        customer_id: Some(acme.id),
    };
    let now = Utc::now();

    assert_eq!(dir.mfa(scope, carol.id).await.unwrap(), None);
    dir.start_totp(&carol, "sealed-1".into(), now).await.unwrap();
    dir.start_totp(&carol, "sealed-2".into(), now)
        .await
        .expect("an unconfirmed set-up starts again");
    let record = dir.mfa(scope, carol.id).await.unwrap().unwrap();
    assert_eq!(
        (record.sealed_secret.as_str(), record.confirmed_at),
        ("sealed-2", None)
    );
    assert!(
        !dir.accept_totp_step(scope, carol.id, 10).await.unwrap(),
        "no step is accepted before the set-up is confirmed"
    );
    let hashes: Vec<String> = (0..3).map(|i| mfa::hash(&format!("code{i}"))).collect();
    dir.confirm_totp(&carol, 100, &hashes, now).await.unwrap();
    assert!(matches!(
        dir.confirm_totp(&carol, 101, &hashes, now).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        dir.start_totp(&carol, "sealed-3".into(), now).await,
        Err(Error::Conflict(_))
    ));
    let record = dir.mfa(scope, carol.id).await.unwrap().unwrap();
    assert_eq!((record.last_step, record.recovery_left), (Some(100), 3));

    // Steps: only later ones, each once.
    assert!(
        !dir.accept_totp_step(scope, carol.id, 100).await.unwrap(),
        "the confirming step"
    );
    assert!(
        !dir.accept_totp_step(scope, carol.id, 99).await.unwrap(),
        "an earlier step"
    );
    assert!(dir.accept_totp_step(scope, carol.id, 101).await.unwrap());
    assert!(
        !dir.accept_totp_step(scope, carol.id, 101).await.unwrap(),
        "the same step again"
    );
    assert!(
        !dir.accept_totp_step(Scope::tenant(b.id), carol.id, 105)
            .await
            .unwrap(),
        "another tenant's scope changes nothing"
    );

    // Recovery codes: each once; replaced wholesale.
    assert!(dir
        .use_recovery_code(scope, carol.id, &hashes[0], now)
        .await
        .unwrap());
    assert!(!dir
        .use_recovery_code(scope, carol.id, &hashes[0], now)
        .await
        .unwrap());
    assert!(!dir
        .use_recovery_code(scope, carol.id, &mfa::hash("nope"), now)
        .await
        .unwrap());
    assert_eq!(dir.mfa(scope, carol.id).await.unwrap().unwrap().recovery_left, 2);
    dir.replace_recovery_codes(&carol, &[mfa::hash("fresh")])
        .await
        .unwrap();
    assert!(
        !dir.use_recovery_code(scope, carol.id, &hashes[1], now)
            .await
            .unwrap(),
        "old codes are gone"
    );
    assert_eq!(dir.mfa(scope, carol.id).await.unwrap().unwrap().recovery_left, 1);

    // Challenges: found by hash without a tenant, counted, answered once.
    let token = ChallengeToken::generate();
    let challenge = Challenge {
        tenant_id: a.id,
        customer_id: Some(acme.id),
        user_id: carol.id,
        purpose: ChallengePurpose::SignIn,
        expires_at: mfa::challenge_expiry(now),
        attempts: 0,
        used_at: None,
    };
    dir.create_challenge(&token.hash(), &challenge, now)
        .await
        .unwrap();
    let found = dir.challenge(&token.hash()).await.unwrap().unwrap();
    assert_eq!(found.user_id, carol.id);
    assert!(dir.claim_challenge_attempt(&found, &token.hash()).await.unwrap());
    assert_eq!(dir.challenge(&token.hash()).await.unwrap().unwrap().attempts, 1);
    for _ in 1..mfa::CHALLENGE_ATTEMPTS {
        assert!(dir.claim_challenge_attempt(&found, &token.hash()).await.unwrap());
    }
    assert!(
        !dir.claim_challenge_attempt(&found, &token.hash()).await.unwrap(),
        "no attempt past the bound"
    );
    assert!(dir.finish_challenge(&found, &token.hash(), now).await.unwrap());
    assert!(!dir.finish_challenge(&found, &token.hash(), now).await.unwrap());
    assert!(dir
        .challenge(&token.hash())
        .await
        .unwrap()
        .unwrap()
        .used_at
        .is_some());
    assert_eq!(
        dir.challenge(&ChallengeToken::generate().hash()).await.unwrap(),
        None
    );
    // Expired challenges of the user go when the next one is made.
    let old = ChallengeToken::generate();
    let stale = Challenge {
        expires_at: now - Duration::minutes(1),
        ..challenge.clone()
    };
    dir.create_challenge(&old.hash(), &stale, now - Duration::minutes(6))
        .await
        .unwrap();
    dir.create_challenge(&ChallengeToken::generate().hash(), &challenge, now)
        .await
        .unwrap();
    assert_eq!(dir.challenge(&old.hash()).await.unwrap(), None);

    // Wrong codes in a row: every fifth locks the factor; a right one starts again.
    for n in 1..=4 {
        assert_eq!(
            dir.second_factor_failed(scope, carol.id, now).await.unwrap(),
            None,
            "{n}"
        );
    }
    let until = dir.second_factor_failed(scope, carol.id, now).await.unwrap();
    assert_eq!(until.map(|u| (u - now).num_minutes()), Some(15));
    let record = dir.mfa(scope, carol.id).await.unwrap().unwrap();
    assert_eq!(record.failures, 5);
    assert!(record.locked_until.is_some());
    dir.second_factor_passed(scope, carol.id).await.unwrap();
    let record = dir.mfa(scope, carol.id).await.unwrap().unwrap();
    assert_eq!((record.failures, record.locked_until), (0, None));
    assert_eq!(
        dir.second_factor_failed(Scope::tenant(b.id), carol.id, now)
            .await
            .unwrap(),
        None,
        "not from another tenant"
    );
    assert_eq!(dir.mfa(scope, carol.id).await.unwrap().unwrap().failures, 0);

    // The tenant's requirement; another tenant's user untouched; removal.
    assert!(!dir.mfa_required(Scope::tenant(a.id), a.id).await.unwrap());
    assert_eq!(dir.mfa(Scope::tenant(b.id), bob.id).await.unwrap(), None);
    assert!(
        !dir.remove_totp(Scope::tenant(b.id), carol.id).await.unwrap(),
        "not from another tenant"
    );
    assert!(dir.remove_totp(scope, carol.id).await.unwrap());
    assert_eq!(dir.mfa(scope, carol.id).await.unwrap(), None);
}

#[tokio::test]
async fn mfa_contract_on_sqlite() {
    contract(
        open(StoreLocation::Sqlite {
            path: temp_dir().join("ioto.sqlite"),
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn mfa_contract_on_postgres() {
    contract(
        open(StoreLocation::Postgres {
            url: pg::database().await,
        })
        .await,
    )
    .await;
}
