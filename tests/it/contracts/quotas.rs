//! The `QuotaStore` port contract, on Postgres and SQLite: quotas kept per SIM and tenant, a
//! period's stage moving up once with its one notification, and actions claimed by one server.

use super::open;
use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use ioto_domain::fleet::Sim;
use ioto_domain::identifiers::MccMnc;
use ioto_domain::notify::{Notification, NotificationKind, NotificationQuery};
use ioto_domain::ports::quotas::{QuotaStore, QuotaTarget};
use ioto_domain::ports::{NotificationStore, Sighting, SimStore as _};
use ioto_domain::quota::{ActionState, QuotaAction, QuotaPeriod, QuotaRule, SimQuota};
use ioto_domain::{Error, Scope, TenantId};
use ioto_store::{SqlFleet, StoreLocation};
use ioto_test_support::{pg, temp_dir, Factory};
use uuid::Uuid;

/// Now, to the microsecond both engines keep: a time written is read back equal.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn quota(sim: &Sim, limit: u64, stages: &[u8], action: QuotaAction, at: DateTime<Utc>) -> SimQuota {
    SimQuota {
        id: Uuid::new_v4(),
        tenant_id: sim.tenant_id,
        sim_id: sim.id,
        rule: QuotaRule {
            limit_bytes: limit,
            stages: stages.to_vec(),
            action,
            resume_next_period: false,
        },
        set_by: "alice".into(),
        created_at: at,
        updated_at: at,
    }
}

/// The standing `used` bytes give `target` at `at`, as an evaluation writes it.
fn standing(target: &QuotaTarget, used: u64, at: DateTime<Utc>) -> QuotaPeriod {
    ioto_domain::quota::standing(&target.quota, target.time_zone, used, at)
}

/// The quota-stage notifications of a tenant, oldest first, as (stage, used bytes).
async fn told(fleet: &SqlFleet, tenant: TenantId) -> Vec<(u64, u64)> {
    let query = NotificationQuery {
        tenant_wide: Some(tenant),
        limit: 100,
        ..NotificationQuery::default()
    };
    let mut notes = fleet.notifications(Scope::tenant(tenant), &query).await.unwrap();
    notes.retain(|n| n.kind == NotificationKind::QuotaStage);
    notes.reverse();
    notes
        .iter()
        .map(|n| {
            let q = &n.payload["quota"];
            (q["stage"].as_u64().unwrap(), q["usedBytes"].as_u64().unwrap())
        })
        .collect()
}

async fn contract(store: ioto_store::SqlStore) {
    let fleet = store.fleet();
    let f = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    let (a, b) = (f.tenant("Quotas A").await, f.tenant("Quotas B").await);
    let sims = f.sims(&a, None, 3).await;
    let b_sim = f.sims(&b, None, 1).await.remove(0);
    let (a_scope, b_scope) = (Scope::tenant(a.id), Scope::tenant(b.id));
    let t = now();

    // Setting, replacing, reading: one quota per SIM, its id and creation kept when replaced.
    let none = fleet.sim_quota(a_scope, sims[0].id).await.unwrap();
    assert_eq!(none, None, "a SIM without a quota has one");
    let q0 = quota(&sims[0], 1_000, &[50, 80], QuotaAction::Notify, t);
    let stored = fleet.put_sim_quota(a_scope, &q0).await.unwrap();
    assert_eq!(stored, q0, "the quota is not stored as given");
    let later = t + Duration::seconds(5);
    let replacement = SimQuota {
        id: Uuid::new_v4(),
        created_at: later,
        updated_at: later,
        set_by: "bob".into(),
        ..quota(&sims[0], 2_000, &[90], QuotaAction::Suspend, later)
    };
    let replaced = fleet.put_sim_quota(a_scope, &replacement).await.unwrap();
    let expected = SimQuota {
        id: q0.id,
        created_at: t,
        ..replacement.clone()
    };
    assert_eq!(
        replaced, expected,
        "a replaced quota loses its id or creation, or keeps the old rule"
    );
    let read = fleet.sim_quota(a_scope, sims[0].id).await.unwrap();
    assert_eq!(read, Some(expected.clone()), "the quota reads back otherwise");

    // Tenants apart: B neither sees, replaces nor removes A's quota.
    let seen = fleet.sim_quota(b_scope, sims[0].id).await.unwrap();
    assert_eq!(seen, None, "B sees A's quota");
    let foreign = fleet.put_sim_quota(b_scope, &q0).await;
    assert!(
        matches!(foreign, Err(Error::NotFound { .. })),
        "B sets A's quota: {foreign:?}"
    );
    let removed = fleet.delete_sim_quota(b_scope, sims[0].id).await.unwrap();
    assert!(!removed, "B removes A's quota");
    assert!(
        fleet.sim_quota(a_scope, sims[0].id).await.unwrap().is_some(),
        "A's quota is gone"
    );

    // The evaluator's view: quotas by ICCID across tenants, with the tenant's time zone.
    let q1 = quota(&sims[1], 1_000, &[50, 80], QuotaAction::Suspend, t);
    fleet.put_sim_quota(a_scope, &q1).await.unwrap();
    let qb = quota(&b_sim, 10, &[], QuotaAction::Notify, t);
    fleet.put_sim_quota(b_scope, &qb).await.unwrap();
    let asked = [sims[1].iccid.clone(), sims[2].iccid.clone(), b_sim.iccid.clone()];
    let mut targets = fleet.quotas_of(&asked).await.unwrap();
    targets.sort_by(|x, y| x.iccid.cmp(&y.iccid));
    let mut expected = vec![
        QuotaTarget {
            quota: q1.clone(),
            iccid: sims[1].iccid.clone(),
            time_zone: chrono_tz::UTC,
        },
        QuotaTarget {
            quota: qb.clone(),
            iccid: b_sim.iccid.clone(),
            time_zone: chrono_tz::UTC,
        },
    ];
    expected.sort_by(|x, y| x.iccid.cmp(&y.iccid));
    assert_eq!(
        targets, expected,
        "the quotas of the SIMs asked for, and only those"
    );
    let t1 = targets.into_iter().find(|x| x.quota.id == q1.id).unwrap();

    // A SIM that carried traffic lately is evaluated again by a sweep; a quiet one is not.
    let seen = Sighting {
        iccid: sims[1].iccid.clone(),
        network: MccMnc::parse("262-01").unwrap(),
        at: t,
        imei: None,
    };
    fleet.record_activity(&[seen]).await.unwrap();
    let active = fleet
        .quotas_active_since(t - Duration::minutes(2), 100)
        .await
        .unwrap();
    let ids: Vec<Uuid> = active.iter().map(|x| x.quota.id).collect();
    assert_eq!(ids, [q1.id], "the quotas of SIMs active lately");
    let quiet = fleet
        .quotas_active_since(t + Duration::minutes(1), 100)
        .await
        .unwrap();
    assert!(quiet.is_empty(), "quiet SIMs are swept: {quiet:?}");

    // Stages move up once each, each with one notification; evaluating the same usage again,
    // or less of it, changes nothing.
    let e1 = t + Duration::seconds(10);
    let mut p = standing(&t1, 600, e1);
    let note = |p: &QuotaPeriod| Notification::quota_stage(&t1, p, e1);
    assert!(
        fleet.advance_quota(&p, Some(&note(&p))).await.unwrap(),
        "the first stage is not reached"
    );
    assert!(
        !fleet.advance_quota(&p, Some(&note(&p))).await.unwrap(),
        "a stage is reached twice"
    );
    let less = standing(&t1, 100, e1);
    assert!(
        !fleet.advance_quota(&less, None).await.unwrap(),
        "a stage goes down"
    );
    assert_eq!(
        told(&fleet, a.id).await,
        [(50, 600)],
        "one notification per stage reached"
    );
    p.used_bytes = 700;
    assert!(
        !fleet.advance_quota(&p, None).await.unwrap(),
        "more usage at the same stage moves it"
    );
    let stored = fleet
        .quota_period(a_scope, q1.id, p.start)
        .await
        .unwrap()
        .unwrap();
    let facts = (stored.stage, stored.used_bytes, stored.action_state);
    assert_eq!(
        facts,
        (50, 700, ActionState::None),
        "the period's standing is not kept"
    );
    let b_view = fleet.quota_period(b_scope, q1.id, p.start).await.unwrap();
    assert_eq!(b_view, None, "B reads A's period");

    // The limit: the action waits for a server, claimed by one at a time.
    let e2 = t + Duration::seconds(20);
    let over = standing(&t1, 1_250, e2);
    assert!(fleet
        .advance_quota(&over, Some(&Notification::quota_stage(&t1, &over, e2)))
        .await
        .unwrap());
    assert_eq!(
        told(&fleet, a.id).await,
        [(50, 600), (100, 1_250)],
        "the limit is not told once"
    );
    let stored = fleet
        .quota_period(a_scope, q1.id, p.start)
        .await
        .unwrap()
        .unwrap();
    let facts = (stored.stage, stored.exceeded_at, stored.action_state);
    assert_eq!(
        facts,
        (100, Some(e2), ActionState::Pending),
        "the limit is not recorded"
    );
    let lease = e2 + Duration::minutes(2);
    let claimed = fleet.claim_quota_actions(e2, lease, 10).await.unwrap();
    let ids: Vec<Uuid> = claimed.iter().map(|c| c.target.quota.id).collect();
    assert_eq!(ids, [q1.id], "the pending action is not claimed");
    assert_eq!(
        claimed[0].target.iccid, sims[1].iccid,
        "the claim does not name its SIM"
    );
    let again = fleet.claim_quota_actions(e2, lease, 10).await.unwrap();
    assert!(again.is_empty(), "an action is claimed twice within its lease");
    let lapsed = fleet
        .claim_quota_actions(lease + Duration::seconds(1), lease, 10)
        .await
        .unwrap();
    assert_eq!(lapsed.len(), 1, "a lapsed claim is not taken over");

    // Handed to the network: looked at again until it ends, then left alone.
    let job = Uuid::new_v4();
    fleet
        .record_quota_action(q1.id, p.start, ActionState::Requested, Some(job), None)
        .await
        .unwrap();
    let look = fleet.claim_quota_actions(e2, lease, 10).await.unwrap();
    let facts: Vec<_> = look
        .iter()
        .map(|c| (c.period.action_state, c.period.bulk_job_id))
        .collect();
    assert_eq!(
        facts,
        [(ActionState::Requested, Some(job))],
        "a requested action is not looked at again"
    );
    let why = "the network refused: unknown subscriber";
    fleet
        .record_quota_action(q1.id, p.start, ActionState::Failed, Some(job), Some(why))
        .await
        .unwrap();
    let stored = fleet
        .quota_period(a_scope, q1.id, p.start)
        .await
        .unwrap()
        .unwrap();
    let facts = (stored.action_state, stored.action_reason.as_deref());
    assert_eq!(facts, (ActionState::Failed, Some(why)), "the failure is not kept");
    let ended = fleet.claim_quota_actions(e2, lease, 10).await.unwrap();
    assert!(ended.is_empty(), "an ended action is claimed: {ended:?}");

    // Removing the quota removes its periods; removing it again finds nothing.
    assert!(
        fleet.delete_sim_quota(a_scope, sims[1].id).await.unwrap(),
        "the quota stays"
    );
    let gone = fleet.quota_period(a_scope, q1.id, p.start).await.unwrap();
    assert_eq!(gone, None, "a removed quota's period stays");
    assert!(
        !fleet.delete_sim_quota(a_scope, sims[1].id).await.unwrap(),
        "removed twice"
    );
}

#[tokio::test]
async fn quotas_contract_on_sqlite() {
    contract(
        open(StoreLocation::Sqlite {
            path: temp_dir().join("quotas.sqlite"),
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn quotas_contract_on_postgres() {
    contract(
        open(StoreLocation::Postgres {
            url: pg::database().await,
        })
        .await,
    )
    .await;
}
