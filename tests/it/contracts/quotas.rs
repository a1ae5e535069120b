//! The `QuotaStore` port contract, on Postgres and SQLite: quotas kept per SIM and tenant, a
//! period's stage moving up once with its one notification, and actions claimed by one server.

use super::open;
use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use ioto_domain::fleet::query::{quota_cursor, Cursor, Page, QuotaPercentFilter, SimFilter, SimSort};
use ioto_domain::fleet::Sim;
use ioto_domain::identifiers::MccMnc;
use ioto_domain::notify::{Notification, NotificationKind, NotificationQuery};
use ioto_domain::ports::quotas::{QuotaStore, QuotaTarget};
use ioto_domain::ports::{NotificationStore, Sighting, SimStore as _};
use ioto_domain::quota::{
    ActionState, QuotaAction, QuotaDefault, QuotaPeriod, QuotaRule, QuotaSource, QuotaStep, SimQuota,
};
use ioto_domain::{Error, Scope, SimId, TenantId};
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
        source: QuotaSource::Sim,
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
        .quotas_active_since(t - Duration::minutes(2), None, 100)
        .await
        .unwrap();
    let ids: Vec<Uuid> = active.iter().map(|x| x.quota.id).collect();
    assert_eq!(ids, [q1.id], "the quotas of SIMs active lately");
    let quiet = fleet
        .quotas_active_since(t + Duration::minutes(1), None, 100)
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
        .record_quota_action(
            q1.id,
            p.start,
            QuotaStep::Suspend,
            ActionState::Requested,
            Some(job),
            None,
        )
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
        .record_quota_action(
            q1.id,
            p.start,
            QuotaStep::Suspend,
            ActionState::Failed,
            Some(job),
            Some(why),
        )
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

fn default_of(tenant: TenantId, plan: Option<&str>, limit: u64, at: DateTime<Utc>) -> QuotaDefault {
    QuotaDefault {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        tariff_plan: plan.map(str::to_owned),
        rule: QuotaRule {
            limit_bytes: limit,
            stages: vec![80],
            action: QuotaAction::Suspend,
            resume_next_period: true,
        },
        set_by: "alice".into(),
        created_at: at,
        updated_at: at,
    }
}

/// Each SIM's quota: (limit, source kind), in the SIMs' order.
async fn quotas_by_sim(fleet: &SqlFleet, scope: Scope, sims: &[Sim]) -> Vec<Option<(u64, &'static str)>> {
    let mut out = Vec::new();
    for s in sims {
        let q = fleet.sim_quota(scope, s.id).await.unwrap();
        out.push(q.map(|q| (q.rule.limit_bytes, q.source.as_str())));
    }
    out
}

/// Defaults per tenant and tariff plan, quotas set and removed many at a time, the resume at a
/// period's end, and the SIM list by the share of a quota used.
async fn defaults_contract(store: ioto_store::SqlStore) {
    let fleet = store.fleet();
    let f = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    let (a, b) = (f.tenant("Defaults A").await, f.tenant("Defaults B").await);
    let iot = f.sims_on_plan(&a, "IoT 1 GB", 2).await;
    let other = f.sims_on_plan(&a, "Fleet", 1).await;
    let loose = f.sims(&a, None, 1).await;
    let all: Vec<Sim> = [iot.clone(), other.clone(), loose.clone()].concat();
    let b_sims = f.sims(&b, None, 1).await;
    let (a_scope, b_scope) = (Scope::tenant(a.id), Scope::tenant(b.id));
    let t = now();

    // A plan's default, and the tenant's for the others; one SIM keeps its own quota.
    let own = quota(&iot[1], 777, &[], QuotaAction::Notify, t);
    fleet.put_sim_quota(a_scope, &own).await.unwrap();
    let plan = fleet
        .put_quota_default(a_scope, &default_of(a.id, Some("IoT 1 GB"), 1_000, t))
        .await
        .unwrap();
    let tenant = fleet
        .put_quota_default(a_scope, &default_of(a.id, None, 5_000, t))
        .await
        .unwrap();
    let listed: Vec<Option<String>> = fleet
        .quota_defaults(a_scope, a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.tariff_plan)
        .collect();
    assert_eq!(
        listed,
        [None, Some("IoT 1 GB".to_owned())],
        "the tenant's default first"
    );
    assert!(
        fleet.quota_defaults(b_scope, a.id).await.unwrap().is_empty(),
        "another tenant reads the defaults"
    );
    assert!(
        matches!(
            fleet
                .put_quota_default(b_scope, &default_of(a.id, None, 1, t))
                .await,
            Err(Error::NotFound { .. })
        ),
        "another tenant sets a default"
    );
    // A pass over the SIMs changed since a time after they were created looks at none of them.
    let later = fleet
        .apply_quota_defaults(a.id, Some(Utc::now() + Duration::minutes(5)), t)
        .await
        .unwrap();
    assert_eq!(
        (later.added, later.changed, later.removed),
        (0, 0, 0),
        "SIMs not changed since are looked at"
    );
    // Since before they were created: the same as every SIM.
    let applied = fleet
        .apply_quota_defaults(a.id, Some(t - Duration::minutes(5)), t)
        .await
        .unwrap();
    assert_eq!(
        (applied.added, applied.changed, applied.removed),
        (3, 0, 0),
        "{applied:?}"
    );
    assert_eq!(
        quotas_by_sim(&fleet, a_scope, &all).await,
        [
            Some((1_000, "TARIFF_PLAN")),
            Some((777, "SIM")),
            Some((5_000, "TENANT")),
            Some((5_000, "TENANT"))
        ],
        "each SIM follows its plan's default, else the tenant's; its own quota stays"
    );
    assert_eq!(
        quotas_by_sim(&fleet, b_scope, &b_sims).await,
        [None],
        "another tenant's SIM follows the defaults"
    );
    let again = fleet.apply_quota_defaults(a.id, None, t).await.unwrap();
    assert_eq!(
        (again.added, again.changed, again.removed),
        (0, 0, 0),
        "applying twice changes"
    );
    let mut tenants = fleet.tenants_with_quota_defaults().await.unwrap();
    tenants.retain(|x| *x == a.id || *x == b.id);
    assert_eq!(tenants, [a.id], "the tenants with defaults");

    // A default changed: its SIMs follow, keeping their quota's id.
    let before = fleet.sim_quota(a_scope, iot[0].id).await.unwrap().unwrap();
    let raised = default_of(a.id, Some("IoT 1 GB"), 2_000, t);
    assert_eq!(
        fleet.put_quota_default(a_scope, &raised).await.unwrap().id,
        plan.id,
        "a replaced default's id"
    );
    let changed = fleet.apply_quota_defaults(a.id, None, t).await.unwrap();
    assert_eq!(
        (changed.added, changed.changed, changed.removed),
        (0, 1, 0),
        "{changed:?}"
    );
    let after = fleet.sim_quota(a_scope, iot[0].id).await.unwrap().unwrap();
    assert_eq!(
        (after.id, after.rule.limit_bytes),
        (before.id, 2_000),
        "the SIM's quota"
    );
    // A quota removed from SIMs by the many: only those set on the SIM go.
    let gone = fleet
        .delete_sim_quotas(a_scope, &all.iter().map(|s| s.id).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(gone, 1, "quotas following a default are removed as the SIMs' own");
    assert!(
        !fleet.delete_sim_quota(a_scope, iot[0].id).await.unwrap(),
        "a default's quota removed one by one"
    );
    let back = fleet.apply_quota_defaults(a.id, None, t).await.unwrap();
    assert_eq!(
        back.added, 1,
        "the SIM without its own quota does not take its plan's default"
    );

    // The plan's default removed: its SIMs take the tenant's; the tenant's removed: none.
    assert!(fleet
        .delete_quota_default(a_scope, a.id, Some("IoT 1 GB"))
        .await
        .unwrap());
    assert!(
        !fleet
            .delete_quota_default(a_scope, a.id, Some("IoT 1 GB"))
            .await
            .unwrap(),
        "removed twice"
    );
    let moved = fleet.apply_quota_defaults(a.id, None, t).await.unwrap();
    assert_eq!(moved.added, 2, "{moved:?}");
    assert_eq!(
        quotas_by_sim(&fleet, a_scope, &all).await,
        vec![Some((5_000, "TENANT")); 4],
        "every SIM follows the tenant's default"
    );
    assert!(fleet.delete_quota_default(a_scope, a.id, None).await.unwrap());
    assert_eq!(
        quotas_by_sim(&fleet, a_scope, &all).await,
        vec![None; 4],
        "quotas outlive their default"
    );
    assert_eq!(tenant.tariff_plan, None);

    // Many set at once, each replacing what its SIM had.
    let many: Vec<SimQuota> = all
        .iter()
        .map(|s| quota(s, 100, &[50], QuotaAction::Suspend, t))
        .collect();
    assert_eq!(fleet.put_sim_quotas(a_scope, &many).await.unwrap(), 4);
    assert!(
        matches!(
            fleet.put_sim_quotas(b_scope, &many[..1]).await,
            Err(Error::NotFound { .. })
        ),
        "quotas set on another tenant's SIMs"
    );
    assert_eq!(
        quotas_by_sim(&fleet, a_scope, &all).await,
        vec![Some((100, "SIM")); 4]
    );

    // The SIM list by the share used this period: 90 of 100 bytes, 20 of 100, none yet.
    let targets = fleet
        .quotas_of(&all.iter().map(|s| s.iccid.clone()).collect::<Vec<_>>())
        .await
        .unwrap();
    for (sim, used) in [(&all[0], 90), (&all[1], 20)] {
        let target = targets.iter().find(|x| x.quota.sim_id == sim.id).unwrap();
        fleet
            .advance_quota(&standing(target, used, t), None)
            .await
            .unwrap();
    }
    let by_percent = |at_least: u32, below: Option<u32>| {
        let fleet = &fleet;
        async move {
            let filter = SimFilter {
                quota_percent: Some(QuotaPercentFilter {
                    at_least,
                    below,
                    at: t,
                }),
                ..SimFilter::default()
            };
            fleet
                .list_sims(a_scope, a.id, &filter, &Page::<SimSort>::first(10))
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(by_percent(80, None).await, [all[0].id], "close to their limit");
    assert_eq!(by_percent(10, Some(80)).await, [all[1].id], "between 10 and 80 %");
    assert_eq!(by_percent(0, None).await.len(), 4, "every SIM with a quota");
    let next_month = t + Duration::days(40);
    let filter = SimFilter {
        quota_percent: Some(QuotaPercentFilter {
            at_least: 1,
            below: None,
            at: next_month,
        }),
        ..SimFilter::default()
    };
    let later = fleet
        .list_sims(a_scope, a.id, &filter, &Page::<SimSort>::first(10))
        .await
        .unwrap();
    assert!(later.is_empty(), "a new period counts from zero: {later:?}");

    // The resume at a period's end: a period that ended with its SIM suspended, of a quota
    // that resumes, is marked and claimed as a resume; one that does not resume is left.
    let resumes = |sim: &Sim, resume: bool| {
        let mut q = quota(sim, 100, &[], QuotaAction::Suspend, t);
        q.rule.resume_next_period = resume;
        q
    };
    fleet
        .put_sim_quota(a_scope, &resumes(&all[0], true))
        .await
        .unwrap();
    fleet
        .put_sim_quota(a_scope, &resumes(&all[1], false))
        .await
        .unwrap();
    let targets = fleet
        .quotas_of(&[all[0].iccid.clone(), all[1].iccid.clone()])
        .await
        .unwrap();
    let last_month = t - Duration::days(40);
    for target in &targets {
        let mut p = standing(target, 150, last_month);
        p.action_state = ActionState::Done;
        fleet.advance_quota(&p, None).await.unwrap();
    }
    assert_eq!(fleet.mark_quota_resumes(t).await.unwrap(), 1, "one resume due");
    assert_eq!(
        fleet.mark_quota_resumes(t).await.unwrap(),
        0,
        "a resume marked twice"
    );
    let claimed = fleet
        .claim_quota_actions(t, t + Duration::minutes(2), 10)
        .await
        .unwrap();
    let steps: Vec<_> = claimed
        .iter()
        .filter(|c| c.target.quota.tenant_id == a.id)
        .map(|c| (c.target.iccid.clone(), c.period.step()))
        .collect();
    assert_eq!(
        steps,
        [(
            all[0].iccid.clone(),
            (QuotaStep::Resume, ActionState::Pending, None)
        )],
        "the resume is not claimed as one"
    );
    let c = &claimed[0];
    let job = Uuid::new_v4();
    fleet
        .record_quota_action(
            c.period.quota_id,
            c.period.start,
            QuotaStep::Resume,
            ActionState::Done,
            Some(job),
            None,
        )
        .await
        .unwrap();
    let stored = fleet
        .quota_period(a_scope, c.period.quota_id, c.period.start)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.action_state, stored.resume_state, stored.resume_job_id),
        (ActionState::Done, ActionState::Done, Some(job)),
        "the resume is recorded on the suspension"
    );
    let idle = fleet
        .claim_quota_actions(t, t + Duration::minutes(2), 10)
        .await
        .unwrap();
    assert!(
        idle.iter().all(|c| c.target.quota.tenant_id != a.id),
        "a done resume is claimed: {idle:?}"
    );
}

/// Every SIM of the tenant the filter matches, in quota-share order, two a page: each page after
/// the cursor of the last SIM of the one before, built from the key the store reports for it.
async fn by_share(
    fleet: &SqlFleet,
    scope: Scope,
    tenant: TenantId,
    filter: &SimFilter,
    descending: bool,
) -> Vec<SimId> {
    let mut out = Vec::new();
    let mut after: Option<Cursor> = None;
    for _ in 0..20 {
        let page = Page {
            sort: SimSort::QuotaPercent,
            descending,
            after: after.clone(),
            limit: 2,
        };
        let sims = fleet.list_sims(scope, tenant, filter, &page).await.unwrap();
        out.extend(sims.iter().map(|s| s.id));
        let Some(last) = sims.last() else {
            return out;
        };
        if sims.len() < 2 {
            return out;
        }
        let keys = fleet
            .sim_quota_keys(scope, tenant, &[last.id], now())
            .await
            .unwrap();
        assert_eq!(keys.len(), 1, "no key for a SIM just listed: {keys:?}");
        after = Some(quota_cursor(last, Some(keys[0].1)));
    }
    panic!("the pages never end: {out:?}");
}

/// The SIM list sorted by the share of the quota used this period, paged through: past the limit
/// first when descending, equal shares by id, SIMs without a quota last; none repeated or lost.
async fn quota_order_contract(store: ioto_store::SqlStore) {
    let fleet = store.fleet();
    let f = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    let (a, b) = (f.tenant("Quota order A").await, f.tenant("Quota order B").await);
    let sims = f.sims(&a, None, 8).await;
    let b_sim = f.sims(&b, None, 1).await.remove(0);
    let (a_scope, b_scope) = (Scope::tenant(a.id), Scope::tenant(b.id));
    let t = now();

    // Each SIM's quota as (limit, bytes used this period as evaluated), and its share in per
    // mille: none for a SIM without a quota (-1), a quota never evaluated counts as nothing used.
    const MAX_LIMIT: u64 = 1 << 50;
    /// A quota as (limit, bytes used as evaluated), with the SIM's expected share.
    type Setup = (Option<(u64, Option<u64>)>, i64);
    let setup: [Setup; 8] = [
        (Some((1_000, Some(500))), 500),
        (Some((100, Some(150))), 1_500),
        (Some((1_000, Some(900))), 900),
        (None, -1),
        // The same share as the first: ordered by id.
        (Some((200, Some(100))), 500),
        (Some((1_000, None)), 0),
        // Far past the largest limit: used × 1000 would not fit 64 bits.
        (Some((MAX_LIMIT, Some(MAX_LIMIT << 4))), 16_000),
        // Rounded down.
        (Some((3, Some(2))), 666),
    ];
    for (sim, (q, _)) in sims.iter().zip(&setup) {
        if let Some((limit, _)) = q {
            fleet
                .put_sim_quota(a_scope, &quota(sim, *limit, &[], QuotaAction::Notify, t))
                .await
                .unwrap();
        }
    }
    fleet
        .put_sim_quota(b_scope, &quota(&b_sim, 10, &[], QuotaAction::Notify, t))
        .await
        .unwrap();
    let iccids: Vec<_> = sims.iter().chain([&b_sim]).map(|s| s.iccid.clone()).collect();
    let targets = fleet.quotas_of(&iccids).await.unwrap();
    let used_by: Vec<(&Sim, u64)> = sims
        .iter()
        .zip(&setup)
        .filter_map(|(sim, (q, _))| q.and_then(|(_, used)| used).map(|u| (sim, u)))
        .chain([(&b_sim, 1_000)])
        .collect();
    for (sim, used) in used_by {
        let target = targets.iter().find(|x| x.quota.sim_id == sim.id).unwrap();
        fleet
            .advance_quota(&standing(target, used, t), None)
            .await
            .unwrap();
    }

    // The keys as the store reports them, within the tenant only.
    let ids: Vec<SimId> = sims.iter().map(|s| s.id).collect();
    let mut keys = fleet.sim_quota_keys(a_scope, a.id, &ids, t).await.unwrap();
    keys.sort();
    let mut expected_keys: Vec<(SimId, i64)> =
        sims.iter().zip(&setup).map(|(s, (_, k))| (s.id, *k)).collect();
    expected_keys.sort();
    assert_eq!(keys, expected_keys, "the shares are not as used");
    let foreign = fleet.sim_quota_keys(b_scope, a.id, &ids, t).await.unwrap();
    assert!(foreign.is_empty(), "B reads A's shares: {foreign:?}");

    // Paged two at a time, ascending and descending: by share, then by id.
    let mut ranked: Vec<(i64, SimId)> = expected_keys.iter().map(|(id, k)| (*k, *id)).collect();
    ranked.sort();
    let ascending: Vec<SimId> = ranked.iter().map(|(_, id)| *id).collect();
    let descending: Vec<SimId> = ascending.iter().rev().copied().collect();
    let all = SimFilter::default();
    let down = by_share(&fleet, a_scope, a.id, &all, true).await;
    assert_eq!(down, descending, "not the closest to their limit first");
    assert_eq!(
        (down.first(), down.last()),
        (Some(&sims[6].id), Some(&sims[3].id)),
        "the furthest past its limit is not first, or the SIM without a quota not last"
    );
    let unique: std::collections::HashSet<_> = down.iter().collect();
    assert_eq!(
        unique.len(),
        sims.len(),
        "a SIM repeated or lost across pages: {down:?}"
    );
    let up = by_share(&fleet, a_scope, a.id, &all, false).await;
    assert_eq!(up, ascending, "ascending, not the reverse");
    assert_eq!(
        up.first(),
        Some(&sims[3].id),
        "the SIM without a quota is not first"
    );

    // With the quota-percent filter (its placeholders and the order's in one statement), after a
    // cursor: 60 % or more, past the first page.
    let close = SimFilter {
        quota_percent: Some(QuotaPercentFilter {
            at_least: 60,
            below: None,
            at: now(),
        }),
        ..SimFilter::default()
    };
    let page = Page {
        sort: SimSort::QuotaPercent,
        descending: true,
        after: Some(quota_cursor(&sims[6], Some(16_000))),
        limit: 10,
    };
    let listed: Vec<SimId> = fleet
        .list_sims(a_scope, a.id, &close, &page)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        listed,
        [sims[1].id, sims[2].id, sims[7].id],
        "filtered and sorted"
    );

    // A cursor of another order is refused, naming it.
    let wrong = Page {
        after: Some(Cursor {
            k: t.to_rfc3339(),
            id: sims[0].id.0,
        }),
        ..page
    };
    let refused = fleet.list_sims(a_scope, a.id, &all, &wrong).await;
    assert!(
        matches!(&refused, Err(Error::InvalidInput { field, .. }) if field == "after"),
        "a cursor of another order is taken: {refused:?}"
    );
}

#[tokio::test]
async fn quota_order_contract_on_sqlite() {
    quota_order_contract(
        open(StoreLocation::Sqlite {
            path: temp_dir().join("quota-order.sqlite"),
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn quota_order_contract_on_postgres() {
    quota_order_contract(
        open(StoreLocation::Postgres {
            url: pg::database().await,
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn quota_defaults_contract_on_sqlite() {
    defaults_contract(
        open(StoreLocation::Sqlite {
            path: temp_dir().join("quota-defaults.sqlite"),
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn quota_defaults_contract_on_postgres() {
    defaults_contract(
        open(StoreLocation::Postgres {
            url: pg::database().await,
        })
        .await,
    )
    .await;
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
