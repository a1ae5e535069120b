//! The `ForecastStore` port contract, on Postgres and SQLite: a forecast replaced by the next and
//! the stale ones removed, anomalies stored once per SIM, kind, day and value with the
//! notifications of the high-severity ones, another tenant (and another sub-customer) seeing
//! none, a dismissal read back as the detector needs it, pages by cursor covering every anomaly
//! once, and a tenant's pass claimed by one server at a time.

use super::open;
use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, NaiveDate, SubsecRound, Utc};
use ioto_domain::billing::money::{Cost, Currency};
use ioto_domain::fleet::Sim;
use ioto_domain::forecast::{
    Anomaly, AnomalyDecision, AnomalyFilter, AnomalyKind, AnomalyRecord, AnomalyStatus, Baseline,
    DayForecast, Evidence, ForecastQuota, ForecastSubject, HourForecast, HourlyForecast, HourlyMethod,
    HourlyOutlook, Method, ProjectedCost, Severity, StoredForecast, TodayProjection, Unwritten,
};
use ioto_domain::notify::{NotificationKind, NotificationQuery};
use ioto_domain::ports::forecasts::ForecastStore;
use ioto_domain::ports::NotificationStore;
use ioto_domain::{Error, Scope, TenantId};
use ioto_store::StoreLocation;
use ioto_test_support::{pg, temp_dir, Factory};
use uuid::Uuid;

/// Now, in whole seconds: a time written is read back equal on both engines.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// A group's hourly outlook: 48 hours from `at`'s hour at `level` a hour, and today's projection.
fn outlook(at: DateTime<Utc>, level: f64) -> HourlyOutlook {
    let hour = at.duration_trunc(Duration::hours(1)).unwrap();
    HourlyOutlook {
        forecast: HourlyForecast {
            method: HourlyMethod::EtsProfile,
            hours: (0..48)
                .map(|i| HourForecast {
                    at: hour + Duration::hours(i),
                    point: level,
                    lo80: level * 0.75,
                    hi80: level * 1.25,
                    lo95: 0.0,
                    hi95: level * 2.5,
                })
                .collect(),
            backtest_mase: Some(0.61),
            backtest_wape: None,
        },
        today: Some(TodayProjection {
            day_start: at.duration_trunc(Duration::days(1)).unwrap(),
            hours_so_far: 11,
            so_far: level * 11.0,
            point: level * 24.0,
            lo80: level * 20.0,
            hi80: level * 28.5,
            lo95: level * 18.0,
            hi95: level * 31.0,
            method: HourlyMethod::SeasonalNaiveDay,
            backtest_wape: Some(0.07),
        }),
    }
}

fn forecast(
    tenant: TenantId,
    subject: ForecastSubject,
    at: DateTime<Utc>,
    level: f64,
    quota: bool,
) -> StoredForecast {
    let start = at.date_naive();
    StoredForecast {
        tenant_id: tenant,
        subject,
        computed_at: at,
        history_days: 60,
        method: Method::SeasonalNaive,
        backtest_mase: Some(0.8),
        backtest_wape: Some(0.125),
        days: (0..31)
            .map(|i| DayForecast {
                date: start + Duration::days(i),
                point: level,
                lo80: level / 2.0,
                hi80: level * 1.5,
                lo95: 0.0,
                hi95: level * 2.0,
            })
            .collect(),
        quota: quota.then(|| ForecastQuota {
            limit_bytes: 30_000_000,
            used_bytes: 12_000_000,
            period_end: start + Duration::days(12),
            exhaustion_likely: Some(start + Duration::days(9)),
            exhaustion_earliest: Some(start + Duration::days(6)),
            exhaustion_latest: None,
            projected_period_bytes: 40_000_000,
            projected_period_bytes_hi80: 52_000_000,
        }),
        // Exact amounts, past two decimals.
        projected_cost: quota.then(|| ProjectedCost {
            currency: Currency::parse("currency", "EUR").unwrap(),
            cost_so_far: Cost::parse("cost", "12.345678901234").unwrap(),
            projected: Cost::parse("cost", "31.1").unwrap(),
            projected_high80: Cost::parse("cost", "40").unwrap(),
        }),
        // The groups' outlook hour by hour, beside their days.
        hourly: (!matches!(subject, ForecastSubject::Sim(_))).then(|| outlook(at, level / 24.0)),
    }
}

fn anomaly(
    sim: &Sim,
    kind: AnomalyKind,
    day: NaiveDate,
    score: f64,
    value: Option<&str>,
    at: DateTime<Utc>,
) -> AnomalyRecord {
    AnomalyRecord::open(
        sim.tenant_id,
        (sim.id, sim.customer_id, sim.iccid.clone()),
        Anomaly {
            kind,
            day,
            score,
            severity: Severity::from_score(kind, score),
            sentence: format!("{kind} on {day}"),
            evidence: Evidence {
                observed: 500_000_000.0,
                expected: 50_000_000.0,
                band_lo: 500_000.0,
                band_hi: 150_000_000.0,
                series: vec![50_000_000.0, 48_000_000.0, 500_000_000.0],
                baseline: Baseline::Own,
            },
            value: value.map(str::to_owned),
        },
        at,
    )
}

async fn contract(store: ioto_store::SqlStore) {
    let fleet = store.fleet();
    let f = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    let (a, b) = (f.tenant("Forecasts A").await, f.tenant("Forecasts B").await);
    let customer = f.customer(&a, "Fleet A").await;
    let theirs = f.sims(&a, Some(customer.id), 1).await.remove(0);
    let loose = f.sims(&a, None, 1).await.remove(0);
    let (a_scope, b_scope) = (Scope::tenant(a.id), Scope::tenant(b.id));
    let customer_scope = Scope::Tenant {
        tenant_id: a.id,
        customer_id: Some(customer.id),
    };
    let t = now();

    // A forecast reads back as written, quota and all; the next one replaces it.
    let sim_subject = ForecastSubject::Sim(theirs.id);
    let first = forecast(a.id, sim_subject, t, 1_000_000.0, true);
    let whole = forecast(a.id, ForecastSubject::Tenant, t, 9_000_000.0, false);
    let group = forecast(
        a.id,
        ForecastSubject::Customer(customer.id),
        t,
        3_000_000.0,
        false,
    );
    fleet
        .put_forecasts(&[first.clone(), whole.clone(), group.clone()])
        .await
        .unwrap();
    let read = fleet.forecast(a_scope, a.id, sim_subject).await.unwrap();
    assert_eq!(read, Some(first.clone()), "a forecast reads back otherwise");
    assert!(whole.hourly.is_some());
    assert_eq!(
        fleet
            .forecast(a_scope, a.id, ForecastSubject::Tenant)
            .await
            .unwrap(),
        Some(whole)
    );
    let later = t + Duration::seconds(10);
    let second = StoredForecast {
        method: Method::Ets,
        backtest_mase: None,
        ..forecast(a.id, sim_subject, later, 2_000_000.0, false)
    };
    fleet.put_forecasts(std::slice::from_ref(&second)).await.unwrap();
    assert_eq!(
        fleet.forecast(a_scope, a.id, sim_subject).await.unwrap(),
        Some(second.clone()),
        "an upsert does not replace the forecast (quota and projected cost included)"
    );
    // Another tenant reads none of them.
    assert_eq!(fleet.forecast(b_scope, a.id, sim_subject).await.unwrap(), None);
    assert_eq!(
        fleet
            .forecast(b_scope, b.id, ForecastSubject::Tenant)
            .await
            .unwrap(),
        None
    );
    // What the later pass did not write again is removed: the groups' only by a pass that kept
    // SIMs as stored, everything by a whole pass.
    let kept = forecast(a.id, ForecastSubject::Sim(loose.id), t, 4_000_000.0, false);
    fleet.put_forecasts(std::slice::from_ref(&kept)).await.unwrap();
    assert_eq!(
        fleet
            .delete_forecasts_before(a.id, later, Unwritten::Groups)
            .await
            .unwrap(),
        2,
        "the tenant's and the sub-customer's"
    );
    assert_eq!(
        fleet
            .forecast(a_scope, a.id, ForecastSubject::Sim(loose.id))
            .await
            .unwrap(),
        Some(kept)
    );
    assert_eq!(
        fleet
            .delete_forecasts_before(a.id, later, Unwritten::All)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        fleet
            .forecast(a_scope, a.id, ForecastSubject::Customer(customer.id))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        fleet.forecast(a_scope, a.id, sim_subject).await.unwrap(),
        Some(second)
    );

    // Anomalies are stored once per SIM, kind, day and value; the high ones with their notification.
    let day = t.date_naive() - Duration::days(1);
    let spike = anomaly(&theirs, AnomalyKind::UsageSpike, day, 25.0, None, t);
    let silence = anomaly(&loose, AnomalyKind::Silence, day, 12.0, None, t);
    let france = anomaly(&theirs, AnomalyKind::NewCountry, day, 10.0, Some("France"), t);
    let stored = fleet
        .put_anomalies(&[spike.clone(), silence.clone(), france.clone()])
        .await
        .unwrap();
    let new: HashSet<Uuid> = stored.new.iter().copied().collect();
    assert_eq!(new, HashSet::from([spike.id, silence.id, france.id]));
    assert_eq!(stored.notifications.len(), 2, "the high-severity ones notify");
    // The same found again (new ids, as a second pass makes them): nothing new, nobody told.
    let again: Vec<AnomalyRecord> = [&spike, &silence, &france]
        .iter()
        .map(|r| AnomalyRecord {
            id: Uuid::new_v4(),
            ..(*r).clone()
        })
        .collect();
    let stored = fleet.put_anomalies(&again).await.unwrap();
    assert!(
        stored.new.is_empty() && stored.notifications.is_empty(),
        "a pass run twice stores anomalies twice: {stored:?}"
    );
    // Another country the same day is another anomaly.
    let spain = anomaly(&theirs, AnomalyKind::NewCountry, day, 10.0, Some("Spain"), t);
    assert_eq!(
        fleet
            .put_anomalies(std::slice::from_ref(&spain))
            .await
            .unwrap()
            .new,
        [spain.id]
    );
    let query = NotificationQuery {
        tenant_wide: Some(a.id),
        limit: 100,
        ..NotificationQuery::default()
    };
    let mut notes = fleet.notifications(a_scope, &query).await.unwrap();
    notes.retain(|n| n.kind == NotificationKind::Anomaly);
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(notes
        .iter()
        .any(|n| n.subject_id == spike.id && n.body == spike.anomaly.sentence));

    // Read back whole; another tenant sees none; a sub-customer sees its own SIMs'.
    let read = fleet.anomaly(a_scope, spike.id).await.unwrap();
    assert_eq!(read, Some(spike.clone()), "an anomaly reads back otherwise");
    assert_eq!(
        fleet
            .anomaly(a_scope, france.id)
            .await
            .unwrap()
            .and_then(|r| r.anomaly.value),
        Some("France".to_owned())
    );
    assert_eq!(fleet.anomaly(b_scope, spike.id).await.unwrap(), None);
    let everything = AnomalyFilter::default();
    assert!(fleet
        .anomalies(b_scope, a.id, &everything, None, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(fleet
        .anomalies(b_scope, b.id, &everything, None, 100)
        .await
        .unwrap()
        .is_empty());
    let of_customer: HashSet<Uuid> = fleet
        .anomalies(customer_scope, a.id, &everything, None, 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(of_customer, HashSet::from([spike.id, france.id, spain.id]));
    assert_eq!(fleet.anomaly(customer_scope, silence.id).await.unwrap(), None);
    // Filters: kinds, least severity, SIM.
    let spikes = AnomalyFilter {
        kinds: vec![AnomalyKind::UsageSpike, AnomalyKind::Silence],
        min_severity: Some(Severity::High),
        ..AnomalyFilter::default()
    };
    let found: Vec<Uuid> = fleet
        .anomalies(a_scope, a.id, &spikes, None, 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(found, [spike.id]);
    let of_loose = AnomalyFilter {
        sim: Some(loose.id),
        ..AnomalyFilter::default()
    };
    assert_eq!(
        fleet
            .anomalies(a_scope, a.id, &of_loose, None, 100)
            .await
            .unwrap()
            .len(),
        1
    );

    // Decisions: another tenant's is not found; a dismissal is what the detector reads.
    let until = t.date_naive() + Duration::days(30);
    let dismiss = AnomalyDecision {
        status: AnomalyStatus::Dismissed,
        by: "alice".into(),
        at: t,
        comment: Some("a firmware roll-out".into()),
        until: Some(until),
    };
    let foreign = fleet.decide_anomaly(b_scope, spike.id, &dismiss).await;
    assert!(
        matches!(foreign, Err(Error::NotFound { .. })),
        "B decides A's anomaly: {foreign:?}"
    );
    let decided = fleet.decide_anomaly(a_scope, spike.id, &dismiss).await.unwrap();
    assert_eq!(
        (
            decided.status,
            decided.decided_by.as_deref(),
            decided.decided_at,
            decided.dismissed_until
        ),
        (AnomalyStatus::Dismissed, Some("alice"), Some(t), Some(until))
    );
    let confirm = AnomalyDecision {
        status: AnomalyStatus::Confirmed,
        until: None,
        ..dismiss.clone()
    };
    fleet.decide_anomaly(a_scope, silence.id, &confirm).await.unwrap();
    let dismissals = fleet.dismissals_of(a.id, &[theirs.id, loose.id]).await.unwrap();
    assert_eq!(dismissals.len(), 1, "{dismissals:?}");
    let (sim, d) = &dismissals[0];
    assert_eq!(
        (*sim, d.kind, d.level_bytes, d.until, d.value.clone()),
        (
            theirs.id,
            AnomalyKind::UsageSpike,
            Some(500_000_000.0),
            Some(until),
            None
        )
    );
    assert!(fleet.dismissals_of(b.id, &[theirs.id]).await.unwrap().is_empty());

    // Pages by cursor: day (newest first), score (highest first), id; every one once.
    let mut many = Vec::new();
    for back in 2..6 {
        for score in [7.0, 7.0, 15.5] {
            many.push(anomaly(
                &loose,
                AnomalyKind::NewNetwork,
                day - Duration::days(back),
                score,
                Some(&format!("262-0{back}{}", many.len())),
                t,
            ));
        }
    }
    fleet.put_anomalies(&many).await.unwrap();
    let total = 4 + many.len();
    let mut seen: Vec<AnomalyRecord> = Vec::new();
    let mut after = None;
    loop {
        let page = fleet
            .anomalies(a_scope, a.id, &everything, after.as_ref(), 5)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(AnomalyRecord::cursor);
        seen.extend(page);
    }
    let ids: HashSet<Uuid> = seen.iter().map(|r| r.id).collect();
    assert_eq!(
        (seen.len(), ids.len()),
        (total, total),
        "pages repeat or miss anomalies"
    );
    assert!(
        seen.windows(2).all(|w| {
            let (x, y) = (&w[0].anomaly, &w[1].anomaly);
            x.day > y.day || (x.day == y.day && x.score >= y.score)
        }),
        "pages out of order"
    );

    // A tenant's pass is held by one server at a time; a scheduled pass passes over a fresh one.
    let lease = t + Duration::minutes(30);
    assert_eq!(
        fleet.forecast_run_finished(a.id).await.unwrap(),
        None,
        "never passed"
    );
    assert!(fleet.claim_forecast_run(a.id, t, lease, None).await.unwrap());
    assert!(
        !fleet.claim_forecast_run(a.id, t, lease, None).await.unwrap(),
        "a held pass is claimed twice"
    );
    assert!(
        fleet.claim_forecast_run(b.id, t, lease, None).await.unwrap(),
        "another tenant's pass waits"
    );
    fleet.end_forecast_run(a.id, Some(t)).await.unwrap();
    assert_eq!(fleet.forecast_run_finished(a.id).await.unwrap(), Some(t));
    assert_eq!(
        fleet.forecast_run_finished(b.id).await.unwrap(),
        None,
        "a claimed pass has not finished"
    );
    assert!(
        !fleet
            .claim_forecast_run(a.id, t, lease, Some(t - Duration::minutes(59)))
            .await
            .unwrap(),
        "a pass finished within the interval is run again on schedule"
    );
    assert!(
        fleet.claim_forecast_run(a.id, t, lease, None).await.unwrap(),
        "a pass on demand waits for a finished one"
    );
    fleet.end_forecast_run(a.id, None).await.unwrap();
    assert_eq!(
        fleet.forecast_run_finished(a.id).await.unwrap(),
        None,
        "a pass that failed leaves no last pass behind it"
    );
    assert!(
        fleet
            .claim_forecast_run(a.id, t, lease, Some(t + Duration::seconds(1)))
            .await
            .unwrap(),
        "a pass due is not claimed"
    );
    // A lease that lapsed is taken over.
    assert!(fleet
        .claim_forecast_run(
            a.id,
            lease + Duration::seconds(1),
            lease + Duration::minutes(30),
            None
        )
        .await
        .unwrap());
    let t2 = lease + Duration::minutes(1);
    fleet.end_forecast_run(a.id, Some(t2)).await.unwrap();
    assert_eq!(fleet.forecast_run_finished(a.id).await.unwrap(), Some(t2));
    // A server dies in its pass: the last pass stands while the claim holds; whoever takes the
    // lapsed claim over finds none.
    assert!(fleet
        .claim_forecast_run(a.id, t2, t2 + Duration::minutes(30), None)
        .await
        .unwrap());
    assert_eq!(fleet.forecast_run_finished(a.id).await.unwrap(), Some(t2));
    assert!(fleet
        .claim_forecast_run(a.id, t2 + Duration::minutes(31), t2 + Duration::minutes(61), None)
        .await
        .unwrap());
    assert_eq!(fleet.forecast_run_finished(a.id).await.unwrap(), None);
}

#[tokio::test]
async fn forecasts_contract_on_sqlite() {
    contract(
        open(StoreLocation::Sqlite {
            path: temp_dir().join("forecasts.sqlite"),
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn forecasts_contract_on_postgres() {
    contract(
        open(StoreLocation::Postgres {
            url: pg::database().await,
        })
        .await,
    )
    .await;
}
