//! The `QuotaPoolStore` port contract, on Postgres and SQLite: pools kept per tenant (unique
//! names, a most per tenant, a sub-customer's scope seeing its own), a period's stage moving up
//! once with its one notification, actions claimed by one server and resumes marked when a
//! period ends.

use super::open;
use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use chrono_tz::Tz;
use ioto_domain::directory::Tenant;
use ioto_domain::fleet::query::LabelFilter;
use ioto_domain::notify::{Notification, NotificationKind, NotificationQuery};
use ioto_domain::ports::quota_pools::QuotaPoolStore;
use ioto_domain::ports::NotificationStore;
use ioto_domain::quota::{ActionState, QuotaAction, QuotaRule, QuotaStep};
use ioto_domain::quota_pool::{pool_standing, PoolMembers, PoolPeriod, QuotaPool};
use ioto_domain::{Error, Scope, TenantId};
use ioto_store::{SqlFleet, StoreLocation};
use ioto_test_support::{pg, temp_dir, Factory};
use uuid::Uuid;

/// Now, to the microsecond both engines keep: a time written is read back equal.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn pool(tenant: &Tenant, name: &str, members: PoolMembers, at: DateTime<Utc>) -> QuotaPool {
    QuotaPool {
        id: Uuid::new_v4(),
        tenant_id: tenant.id,
        name: name.to_owned(),
        members,
        rule: QuotaRule {
            limit_bytes: 1_000,
            stages: vec![50, 80],
            action: QuotaAction::Suspend,
            resume_next_period: true,
        },
        set_by: "alice".into(),
        created_at: at,
        updated_at: at,
    }
}

fn labels() -> PoolMembers {
    PoolMembers::Labels(vec![
        LabelFilter {
            key: "site".into(),
            value: Some("north".into()),
        },
        LabelFilter {
            key: "fleet".into(),
            value: None,
        },
    ])
}

/// The pool-stage notifications of a tenant, oldest first, as (stage, used bytes).
async fn told(fleet: &SqlFleet, tenant: TenantId) -> Vec<(u64, u64)> {
    let query = NotificationQuery {
        tenant_wide: Some(tenant),
        limit: 100,
        ..NotificationQuery::default()
    };
    let mut notes = fleet.notifications(Scope::tenant(tenant), &query).await.unwrap();
    notes.retain(|n| n.kind == NotificationKind::QuotaStage && n.payload.get("pool").is_some());
    notes.reverse();
    notes
        .iter()
        .map(|n| {
            let p = &n.payload["pool"];
            (p["stage"].as_u64().unwrap(), p["usedBytes"].as_u64().unwrap())
        })
        .collect()
}

fn field(e: Result<(), Error>) -> String {
    match e {
        Err(Error::InvalidInput { field, .. }) => field,
        other => panic!("not refused on a field: {other:?}"),
    }
}

async fn contract(store: ioto_store::SqlStore) {
    let fleet = store.fleet();
    let f = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    let (a, b) = (f.tenant("Pools A").await, f.tenant("Pools B").await);
    let customer = f.customer(&a, "Fleet A").await;
    let (a_scope, b_scope) = (Scope::tenant(a.id), Scope::tenant(b.id));
    let customer_scope = Scope::Tenant {
        tenant_id: a.id,
        customer_id: Some(customer.id),
    };
    let t = now();

    // Kept as given, by name; a name is the tenant's once; a most per tenant.
    let fleet_a = pool(&a, "Fleet A", PoolMembers::Customer(customer.id), t);
    let north = pool(&a, "North", labels(), t);
    fleet.insert_pool(a_scope, &north, 3).await.unwrap();
    fleet.insert_pool(a_scope, &fleet_a, 3).await.unwrap();
    let read = fleet.pool(a_scope, north.id).await.unwrap();
    assert_eq!(read, Some(north.clone()), "a label pool reads back otherwise");
    let all = fleet.pools(a_scope, a.id).await.unwrap();
    assert_eq!(
        all,
        [fleet_a.clone(), north.clone()],
        "the pools are not kept, by name"
    );
    let twin = pool(&a, "Fleet A", labels(), t);
    assert_eq!(
        field(fleet.insert_pool(a_scope, &twin, 3).await),
        "name",
        "a name is taken twice"
    );
    fleet
        .insert_pool(a_scope, &pool(&a, "Third", labels(), t), 3)
        .await
        .unwrap();
    let fourth = fleet
        .insert_pool(a_scope, &pool(&a, "Fourth", labels(), t), 3)
        .await;
    assert!(
        matches!(&fourth, Err(Error::Conflict(m)) if m.contains("at most 3")),
        "a pool past the most is kept: {fourth:?}"
    );
    // The same name in another tenant is another pool.
    let theirs = pool(&b, "Fleet A", labels(), t);
    fleet.insert_pool(b_scope, &theirs, 3).await.unwrap();

    // Tenants apart; a sub-customer's scope sees its sub-customer's pool only.
    assert!(
        fleet.pools(b_scope, a.id).await.unwrap().is_empty(),
        "B lists A's pools"
    );
    assert_eq!(
        fleet.pool(b_scope, north.id).await.unwrap(),
        None,
        "B reads A's pool"
    );
    assert!(
        !fleet.delete_pool(b_scope, north.id).await.unwrap(),
        "B deletes A's pool"
    );
    let foreign = fleet.update_pool(b_scope, &north).await;
    assert!(
        matches!(foreign, Err(Error::NotFound { .. })),
        "B changes A's pool: {foreign:?}"
    );
    let planted = fleet
        .insert_pool(b_scope, &pool(&a, "Planted", labels(), t), 10)
        .await;
    assert!(
        matches!(planted, Err(Error::NotFound { .. })),
        "B adds a pool to A: {planted:?}"
    );
    let seen: Vec<Uuid> = fleet
        .pools(customer_scope, a.id)
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(seen, [fleet_a.id], "a sub-customer sees other pools");
    assert_eq!(fleet.pool(customer_scope, north.id).await.unwrap(), None);

    // Changed: name, members and rule replaced, id and creation kept; a taken name refused.
    let later = t + Duration::seconds(5);
    let changed = QuotaPool {
        name: "North and more".into(),
        members: PoolMembers::Labels(vec![LabelFilter {
            key: "site".into(),
            value: None,
        }]),
        rule: QuotaRule {
            limit_bytes: 2_000,
            stages: vec![90],
            action: QuotaAction::Notify,
            resume_next_period: false,
        },
        set_by: "bob".into(),
        updated_at: later,
        ..north.clone()
    };
    fleet.update_pool(a_scope, &changed).await.unwrap();
    let read = fleet.pool(a_scope, north.id).await.unwrap();
    assert_eq!(read, Some(changed.clone()), "a change reads back otherwise");
    let clash = QuotaPool {
        name: "Fleet A".into(),
        ..changed.clone()
    };
    assert_eq!(
        field(fleet.update_pool(a_scope, &clash).await),
        "name",
        "a change takes another pool's name"
    );

    // The sweep's view: every pool with its tenant's time zone.
    let targets = fleet.all_pools().await.unwrap();
    let fa = targets
        .iter()
        .find(|x| x.pool.id == fleet_a.id)
        .expect("a pool is left out of the sweep");
    assert_eq!(fa.time_zone, Tz::UTC);
    assert!(
        targets.iter().any(|x| x.pool.id == theirs.id),
        "B's pool is left out"
    );

    // Stages move up once each, each with one notification; the same usage again, or less,
    // changes nothing but the member count.
    let e1 = t + Duration::seconds(10);
    let half = pool_standing(&fleet_a, Tz::UTC, 600, 2, e1);
    let note = |p: &PoolPeriod, at| Notification::pool_stage(&fleet_a, Tz::UTC, p, at);
    assert!(fleet.advance_pool(&half, Some(&note(&half, e1))).await.unwrap());
    assert!(
        !fleet.advance_pool(&half, Some(&note(&half, e1))).await.unwrap(),
        "a stage is reached twice"
    );
    let less = pool_standing(&fleet_a, Tz::UTC, 100, 3, e1);
    assert!(
        !fleet.advance_pool(&less, None).await.unwrap(),
        "a stage goes down"
    );
    assert_eq!(
        told(&fleet, a.id).await,
        [(50, 600)],
        "one notification per stage"
    );
    let stored = fleet
        .pool_period(a_scope, fleet_a.id, half.start)
        .await
        .unwrap()
        .unwrap();
    let facts = (stored.stage, stored.used_bytes, stored.sims, stored.action_state);
    assert_eq!(
        facts,
        (50, 600, 3, ActionState::None),
        "the period's standing is not kept"
    );
    assert_eq!(
        fleet.pool_period(b_scope, fleet_a.id, half.start).await.unwrap(),
        None,
        "B reads A's period"
    );
    let theirs_seen = fleet
        .pool_period(customer_scope, fleet_a.id, half.start)
        .await
        .unwrap();
    assert!(
        theirs_seen.is_some(),
        "a sub-customer does not see its pool's period"
    );

    // A refusal to evaluate, recorded below the limit, is cleared by the next evaluation.
    fleet
        .record_pool_action(
            fleet_a.id,
            half.start,
            QuotaStep::Suspend,
            ActionState::Failed,
            None,
            Some("too many SIMs"),
        )
        .await
        .unwrap();
    assert!(!fleet.advance_pool(&half, None).await.unwrap());
    let stored = fleet
        .pool_period(a_scope, fleet_a.id, half.start)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.action_state, stored.action_reason),
        (ActionState::None, None),
        "a refusal outlives an evaluation"
    );

    // The limit: the suspension waits for a server, claimed by one at a time.
    let e2 = t + Duration::seconds(20);
    let over = pool_standing(&fleet_a, Tz::UTC, 1_250, 2, e2);
    assert!(fleet.advance_pool(&over, Some(&note(&over, e2))).await.unwrap());
    assert_eq!(told(&fleet, a.id).await, [(50, 600), (100, 1_250)]);
    let lease = e2 + Duration::minutes(2);
    let claimed = fleet.claim_pool_actions(e2, lease, 10).await.unwrap();
    let facts: Vec<_> = claimed
        .iter()
        .map(|c| (c.target.pool.id, c.period.step()))
        .collect();
    assert_eq!(
        facts,
        [(fleet_a.id, (QuotaStep::Suspend, ActionState::Pending, None))],
        "the pending suspension is not claimed"
    );
    let again = fleet.claim_pool_actions(e2, lease, 10).await.unwrap();
    assert!(again.is_empty(), "an action is claimed twice within its lease");
    let lapsed = fleet
        .claim_pool_actions(lease + Duration::seconds(1), lease, 10)
        .await
        .unwrap();
    assert_eq!(lapsed.len(), 1, "a lapsed claim is not taken over");

    // Sent as a job, looked at again until it ends; then, once the period is over, resumed.
    let job = Uuid::new_v4();
    fleet
        .record_pool_action(
            fleet_a.id,
            over.start,
            QuotaStep::Suspend,
            ActionState::Requested,
            Some(job),
            None,
        )
        .await
        .unwrap();
    let look = fleet.claim_pool_actions(e2, lease, 10).await.unwrap();
    let facts: Vec<_> = look.iter().map(|c| c.period.step()).collect();
    assert_eq!(
        facts,
        [(QuotaStep::Suspend, ActionState::Requested, Some(job))],
        "a requested action is not looked at again"
    );
    let why = "not suspended: 1 of 2 SIMs; the first, 8988: refused";
    fleet
        .record_pool_action(
            fleet_a.id,
            over.start,
            QuotaStep::Suspend,
            ActionState::Failed,
            Some(job),
            Some(why),
        )
        .await
        .unwrap();
    assert!(fleet.claim_pool_actions(e2, lease, 10).await.unwrap().is_empty());
    assert_eq!(
        fleet.mark_pool_resumes(e2).await.unwrap(),
        0,
        "a period still running is resumed"
    );
    let ended = over.end + Duration::minutes(1);
    assert_eq!(
        fleet.mark_pool_resumes(ended).await.unwrap(),
        1,
        "the SIMs a period's job suspended are not resumed when it ends"
    );
    assert_eq!(fleet.mark_pool_resumes(ended).await.unwrap(), 0, "marked twice");
    let resume = fleet
        .claim_pool_actions(ended, ended + Duration::minutes(2), 10)
        .await
        .unwrap();
    let facts: Vec<_> = resume
        .iter()
        .map(|c| (c.period.step(), c.period.bulk_job_id))
        .collect();
    assert_eq!(
        facts,
        [((QuotaStep::Resume, ActionState::Pending, None), Some(job))],
        "the resume is not claimed as one, with the job that suspended"
    );
    fleet
        .record_pool_action(
            fleet_a.id,
            over.start,
            QuotaStep::Resume,
            ActionState::Done,
            Some(Uuid::new_v4()),
            None,
        )
        .await
        .unwrap();
    let stored = fleet
        .pool_period(a_scope, fleet_a.id, over.start)
        .await
        .unwrap()
        .unwrap();
    let facts = (
        stored.action_state,
        stored.action_reason.as_deref(),
        stored.resume_state,
    );
    assert_eq!(
        facts,
        (ActionState::Failed, Some(why), ActionState::Done),
        "the actions' outcomes are not kept"
    );

    // Deleted with its periods; deleted again, nothing.
    assert!(fleet.delete_pool(a_scope, fleet_a.id).await.unwrap());
    assert_eq!(fleet.pool(a_scope, fleet_a.id).await.unwrap(), None);
    assert_eq!(
        fleet.pool_period(a_scope, fleet_a.id, over.start).await.unwrap(),
        None,
        "a deleted pool's period stays"
    );
    assert!(
        !fleet.delete_pool(a_scope, fleet_a.id).await.unwrap(),
        "deleted twice"
    );
}

#[tokio::test]
async fn quota_pools_contract_on_sqlite() {
    contract(
        open(StoreLocation::Sqlite {
            path: temp_dir().join("quota-pools.sqlite"),
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn quota_pools_contract_on_postgres() {
    contract(
        open(StoreLocation::Postgres {
            url: pg::database().await,
        })
        .await,
    )
    .await;
}
