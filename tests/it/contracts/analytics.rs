//! The `AnalyticsFleet` port contract, on the transactional store (`SqlStore`), on Postgres and
//! SQLite: what analytics and the dashboard read about SIMs created and changed through the fleet
//! adapter.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use ioto_domain::fleet::{
    AuditAction, AuditStamp, DeviceKind, EntityKind, Labels, NewAuditEntry, NewSim, Sim, SimState,
};
use ioto_domain::identifiers::{Iccid, Imsi};
use ioto_domain::ports::analytics::{AnalyticsFleet, FleetCounts, SimFactsRow};
use ioto_domain::ports::{Changeset, Fleet, Versioned};
use ioto_domain::{CustomerId, Scope, SimId, TenantId};
use ioto_store::StoreLocation;

use super::open;
use ioto_test_support::{pg, temp_dir, Factory};
use serde_json::json;
use uuid::Uuid;

/// A time of March 2025, in whole seconds.
fn march(d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, d, h, mi, s).unwrap()
}

fn stamp(when: DateTime<Utc>) -> AuditStamp {
    AuditStamp {
        actor: "contract".into(),
        actor_user_id: None,
        at: when,
        note: None,
    }
}

/// The audit entry of a state change, as the fleet service writes it.
fn moved(sim: &Sim, when: DateTime<Utc>, from: SimState, to: SimState) -> NewAuditEntry {
    NewAuditEntry {
        tenant_id: sim.tenant_id,
        customer_id: sim.customer_id,
        entity_kind: EntityKind::Sim,
        entity_id: sim.id.0,
        entity_ref: sim.iccid.to_string(),
        action: AuditAction::StateChanged,
        stamp: stamp(when),
        old_value: json!({ "state": from.as_str() }),
        new_value: json!({ "state": to.as_str() }),
    }
}

/// Changes a SIM through the fleet adapter at `when`; a new state is audited.
async fn edit(fleet: &dyn Fleet, id: SimId, when: DateTime<Utc>, change: impl FnOnce(&mut Sim)) {
    let before = fleet.sims_by_id(Scope::Platform, &[id]).await.unwrap().remove(0);
    let mut after = before.clone();
    change(&mut after);
    let audit = if after.state == before.state {
        vec![]
    } else {
        vec![moved(&before, when, before.state, after.state)]
    };
    let sims = vec![Versioned {
        expected_version: Some(before.version),
        row: after,
    }];
    let changes = Changeset {
        sims,
        audit,
        ..Changeset::default()
    };
    fleet.apply(Scope::Platform, changes).await.unwrap();
}

/// Activations summed per 15 minutes (an adapter may answer each one's time or its 15 minutes').
fn per_quarter_hour(points: Vec<(DateTime<Utc>, u64)>) -> Vec<(DateTime<Utc>, u64)> {
    assert!(
        points.windows(2).all(|w| w[0].0 <= w[1].0),
        "oldest first: {points:?}"
    );
    let mut out: BTreeMap<DateTime<Utc>, u64> = BTreeMap::new();
    for (t, n) in points {
        let start = t.timestamp() - t.timestamp().rem_euclid(900);
        *out.entry(DateTime::from_timestamp(start, 0).unwrap())
            .or_default() += n;
    }
    out.into_iter().collect()
}

fn sorted(mut counts: FleetCounts) -> FleetCounts {
    counts.by_state.sort_by_key(|(state, _)| state.as_str());
    counts.by_tariff_plan.sort();
    counts
}

async fn contract(store: ioto_store::SqlStore) {
    let fleet: Arc<dyn Fleet> = Arc::new(store.fleet());
    let f = Factory::new(Arc::new(store.directory()), fleet.clone());
    let analytics: &dyn AnalyticsFleet = &store;
    let (a, b) = (f.tenant("Analytics A").await, f.tenant("Analytics B").await);
    let acme = f.customer(&a, "Acme").await;
    let (a_scope, b_scope) = (Scope::tenant(a.id), Scope::tenant(b.id));
    let acme_scope = Scope::Tenant {
        tenant_id: a.id,
        customer_id: Some(acme.id),
    };

    // A's SIMs: two of Acme's, two unassigned; one of B's.
    let base = Uuid::new_v4().as_u128() % 1_000_000_000_000;
    let sim =
        |tenant: TenantId, n: u128, customer: Option<CustomerId>, state: SimState, plan: Option<&str>| {
            let iccid = Iccid::with_check_digit(&format!("8966{:014}", base * 100 + n)).unwrap();
            let mut s = NewSim::basic(
                tenant,
                iccid,
                Imsi::parse(&format!("{:015}", base * 100 + n)).unwrap(),
            );
            s.customer_id = customer;
            s.state = state;
            s.tariff_plan = plan.map(str::to_owned);
            s
        };
    let (active, inventory) = (SimState::Active, SimState::Inventory);
    let mut s1 = sim(a.id, 1, Some(acme.id), active, Some("iot-m"));
    s1.labels = Labels::parse([("site", "berlin"), ("fleet", "vans")]).unwrap();
    let mut s2 = sim(a.id, 2, None, active, None);
    s2.labels = Labels::parse([("site", "hamburg")]).unwrap();
    let s3 = sim(a.id, 3, Some(acme.id), inventory, Some("iot-m"));
    let s4 = sim(a.id, 4, None, inventory, Some("iot-s"));
    let mut b1 = sim(b.id, 5, None, active, Some("iot-m"));
    b1.labels = Labels::parse([("site", "berlin")]).unwrap();
    let created = march(10, 10, 7, 30);
    let action = AuditAction::Created;
    let ids = fleet
        .insert_sims(
            Scope::Platform,
            &[&s1, &s2, &s3, &s4],
            action,
            &stamp(created),
            None,
        )
        .await
        .unwrap();
    fleet
        .insert_sims(Scope::Platform, &[&b1], action, &stamp(created), None)
        .await
        .unwrap();

    // A tracker of Acme's and an unassigned sensor.
    let tracker = f.device(&a, Some(acme.id), "van 1").await;
    let mut sensor = f.device(&a, None, "meter 1").await;
    sensor.kind = DeviceKind::Sensor;
    let devices = vec![Versioned {
        expected_version: Some(sensor.version),
        row: sensor.clone(),
    }];
    let changes = Changeset {
        devices,
        ..Changeset::default()
    };
    fleet.apply(Scope::Platform, changes).await.unwrap();

    // s3 activated; s1 suspended, then resumed in the tracker; s2 suspended in the sensor.
    let fleet = fleet.as_ref();
    edit(fleet, ids[2], march(10, 11, 40, 0), |s| s.state = active).await;
    edit(fleet, ids[0], march(11, 9, 0, 0), |s| {
        s.state = SimState::Suspended
    })
    .await;
    edit(fleet, ids[0], march(11, 9, 20, 5), |s| {
        s.state = active;
        s.device_id = Some(tracker.id);
    })
    .await;
    edit(fleet, ids[1], march(11, 10, 0, 0), |s| {
        s.state = SimState::Suspended;
        s.device_id = Some(sensor.id);
    })
    .await;
    // An entry saying ACTIVE again of a SIM that was ACTIVE is no activation.
    let s3_now = fleet
        .sims_by_id(Scope::Platform, &ids[2..3])
        .await
        .unwrap()
        .remove(0);
    let again = moved(&s3_now, march(11, 10, 30, 0), active, active);
    let changes = Changeset {
        audit: vec![again],
        ..Changeset::default()
    };
    fleet.apply(Scope::Platform, changes).await.unwrap();

    // SIM facts: every SIM of the tenant (of the sub-customer), with labels and device kind.
    let fact = |s: &NewSim, state: SimState, kind: Option<&str>| SimFactsRow {
        iccid: s.iccid.clone(),
        customer_id: s.customer_id,
        state,
        tariff_plan: s.tariff_plan.clone(),
        labels: s.labels.clone(),
        device_kind: kind.map(str::to_owned),
    };
    let facts = |scope: Scope, tenant: TenantId, customer: Option<CustomerId>| async move {
        let mut rows = analytics.sim_facts(scope, tenant, customer).await.unwrap();
        rows.sort_by(|x, y| x.iccid.cmp(&y.iccid));
        rows
    };
    let (suspended, tracked, sensed) = (SimState::Suspended, Some("TRACKER"), Some("SENSOR"));
    assert_eq!(
        facts(a_scope, a.id, None).await,
        vec![
            fact(&s1, active, tracked),
            fact(&s2, suspended, sensed),
            fact(&s3, active, None),
            fact(&s4, inventory, None),
        ],
        "the tenant's SIMs with state, tariff plan, labels and the kind of the device they are in"
    );
    assert_eq!(
        facts(acme_scope, a.id, Some(acme.id)).await,
        vec![fact(&s1, active, tracked), fact(&s3, active, None)],
        "a sub-customer's SIMs only"
    );
    assert_eq!(
        facts(b_scope, b.id, None).await,
        vec![fact(&b1, active, None)],
        "another tenant's SIMs are its own"
    );

    // SIMs in devices.
    let bound = |scope: Scope, tenant: TenantId, customer: Option<CustomerId>| async move {
        let mut rows = analytics.bound_sims(scope, tenant, customer).await.unwrap();
        rows.sort();
        rows
    };
    let pair = |s: &NewSim, kind: &str| (s.iccid.clone(), kind.to_owned());
    let in_devices = (
        bound(a_scope, a.id, None).await,
        bound(acme_scope, a.id, Some(acme.id)).await,
        bound(b_scope, b.id, None).await,
    );
    assert_eq!(
        in_devices,
        (
            vec![pair(&s1, "TRACKER"), pair(&s2, "SENSOR")],
            vec![pair(&s1, "TRACKER")],
            vec![]
        ),
        "the SIMs in devices, with the device's kind: the tenant's, the sub-customer's, none of B's"
    );

    // Counts per state and per tariff plan.
    let counts = |scope: Scope, tenant: TenantId, customer: Option<CustomerId>| async move {
        sorted(analytics.fleet_counts(scope, tenant, customer).await.unwrap())
    };
    let tenant_counts = FleetCounts {
        by_state: vec![(active, 2), (inventory, 1), (suspended, 1)],
        by_tariff_plan: vec![(None, 1), (Some("iot-m".into()), 2), (Some("iot-s".into()), 1)],
    };
    assert_eq!(
        counts(a_scope, a.id, None).await,
        tenant_counts,
        "SIMs per state and per plan after every change"
    );
    let acme_counts = FleetCounts {
        by_state: vec![(active, 2)],
        by_tariff_plan: vec![(Some("iot-m".into()), 2)],
    };
    assert_eq!(
        counts(acme_scope, a.id, Some(acme.id)).await,
        acme_counts,
        "Acme's"
    );
    let b_counts = FleetCounts {
        by_state: vec![(active, 1)],
        by_tariff_plan: vec![(Some("iot-m".into()), 1)],
    };
    assert_eq!(counts(b_scope, b.id, None).await, b_counts, "B's");

    // A scope bounds what a read sees, whatever the read asks for: B's scope sees nothing of
    // A's fleet, Acme's nothing beyond Acme.
    let foreign = (
        facts(b_scope, a.id, None).await,
        bound(b_scope, a.id, None).await,
        counts(b_scope, a.id, None).await,
    );
    let nothing = (vec![], vec![], FleetCounts::default());
    assert_eq!(foreign, nothing, "B's scope reads A's fleet");
    let narrowed = (
        facts(acme_scope, a.id, None).await,
        counts(acme_scope, a.id, None).await,
    );
    let acme_only = vec![fact(&s1, active, tracked), fact(&s3, active, None)];
    assert_eq!(
        narrowed,
        (acme_only, acme_counts),
        "Acme's scope reads beyond Acme"
    );

    // Activations: made ACTIVE from another state or on creation, per 15 minutes.
    let (from, to) = (march(10, 0, 0, 0), march(12, 0, 0, 0));
    let activations = |scope: Scope, tenant: TenantId, customer: Option<CustomerId>, from| async move {
        let points = analytics
            .activations(scope, tenant, customer, from, to)
            .await
            .unwrap();
        per_quarter_hour(points)
    };
    let quarters = (
        activations(a_scope, a.id, None, from).await,
        activations(acme_scope, a.id, Some(acme.id), from).await,
        activations(a_scope, a.id, None, march(11, 0, 0, 0)).await,
        activations(b_scope, b.id, None, from).await,
    );
    let (ten, half_past_eleven, quarter_past_nine) =
        (march(10, 10, 0, 0), march(10, 11, 30, 0), march(11, 9, 15, 0));
    assert_eq!(
        quarters,
        (
            vec![(ten, 2), (half_past_eleven, 1), (quarter_past_nine, 1)],
            vec![(ten, 1), (half_past_eleven, 1), (quarter_past_nine, 1)],
            vec![(quarter_past_nine, 1)],
            vec![(ten, 1)],
        ),
        "two created active, s3 activated, s1 resumed (a suspension and a repeated ACTIVE are none): \
         the tenant's, Acme's, from the 11th, B's"
    );

    // Folding the counters changes no count; once folded, nothing is left to fold.
    analytics.compact_counters().await.unwrap();
    assert_eq!(
        counts(a_scope, a.id, None).await,
        tenant_counts,
        "counts after folding"
    );
    assert_eq!(
        analytics.compact_counters().await.unwrap(),
        0,
        "a second fold folds nothing"
    );
}

#[tokio::test]
async fn analytics_fleet_contract_on_sqlite() {
    let path = temp_dir().join("analytics.sqlite");
    contract(open(StoreLocation::Sqlite { path }).await).await;
}

#[tokio::test]
async fn analytics_fleet_contract_on_postgres() {
    let url = pg::database().await;
    contract(open(StoreLocation::Postgres { url }).await).await;
}
