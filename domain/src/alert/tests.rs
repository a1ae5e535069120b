use chrono::{Duration, TimeZone, Utc};
use uuid::Uuid;

use super::lifecycle::*;
use super::*;
use crate::notify::NotificationKind;
use crate::quota::{QuotaAction, QuotaRule};
use crate::quota_pool::{PoolMembers, QuotaPool};

fn rule(metric: Metric, threshold: Option<u64>, pending: u32) -> AlertRule {
    let at = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    AlertRule {
        id: Uuid::new_v4(),
        tenant_id: TenantId(Uuid::new_v4()),
        spec: RuleSpec {
            name: "Heavy users".into(),
            description: None,
            enabled: true,
            severity: Severity::Major,
            target: AlertTarget::AllSims,
            condition: Condition {
                metric,
                threshold,
                clear_threshold: None,
                state: None,
                telemetry: None,
                anomaly: None,
            },
            channels: Channels::default(),
            pacing: Pacing {
                pending_seconds: pending,
                ..Pacing::default()
            },
        },
        created_by: "test".into(),
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

fn subject() -> Subject {
    Subject {
        sim_id: Some(SimId(Uuid::new_v4())),
        name: "8988211000000000017".into(),
        customer_id: None,
        stable_key: None,
    }
}

fn apply(current: Option<Alert>, write: Option<AlertWrite>) -> Option<Alert> {
    match write {
        None => current,
        Some(AlertWrite::Insert(a)) | Some(AlertWrite::Update(a)) => Some(a),
        Some(AlertWrite::Delete(_)) => None,
    }
}

fn fire(v: u64) -> Observation {
    Observation::Firing {
        value: v,
        event: None,
        detail: None,
    }
}

#[test]
fn rules_are_checked_field_by_field() {
    let mut r = rule(Metric::OfflineHours, Some(200), 0).spec;
    let e = r.check().unwrap_err().to_string();
    assert!(
        e.starts_with("condition.threshold") && e.contains("1 to 168 hours"),
        "{e}"
    );
    r.condition.threshold = Some(24);
    r.check().unwrap();
    r.condition.clear_threshold = Some(30);
    assert!(r
        .check()
        .unwrap_err()
        .to_string()
        .starts_with("condition.clearThreshold"));
    r.condition.clear_threshold = Some(12);
    r.check().unwrap();
    r.channels = Channels {
        in_app: false,
        webhook: false,
        emails: vec!["ops@example.com".into(), "not an address".into()],
    };
    let e = r.check().unwrap_err().to_string();
    assert!(e.starts_with("channels.emails[1]"), "{e}");
    let mut e = rule(Metric::StateChanged, None, 60).spec;
    assert!(e.check().unwrap_err().to_string().starts_with("pendingSeconds"));
    e.pacing.pending_seconds = 0;
    e.check().unwrap();
    assert!(Metric::parse("CPU")
        .unwrap_err()
        .to_string()
        .contains("DATA_IN_DAY"));
}

#[test]
fn a_condition_must_hold_for_the_pending_duration() {
    let r = rule(Metric::DataInDay, Some(1000), 600);
    let s = subject();
    let t0 = Utc::now();
    let a = apply(None, step(&r, &s, None, &fire(1500), t0)).unwrap();
    assert_eq!(a.state, AlertState::Pending);
    assert_eq!(a.announce_at, None, "nothing to tell while pending");
    let a2 = apply(
        Some(a.clone()),
        step(&r, &s, Some(&a), &fire(1600), t0 + Duration::seconds(300)),
    )
    .unwrap();
    assert_eq!(a2.state, AlertState::Pending);
    // Clear before the duration: dropped, never fired.
    assert!(matches!(
        step(
            &r,
            &s,
            Some(&a2),
            &Observation::Clear { value: 0 },
            t0 + Duration::seconds(400)
        ),
        Some(AlertWrite::Delete(_))
    ));
    let a3 = apply(
        Some(a2.clone()),
        step(&r, &s, Some(&a2), &fire(1700), t0 + Duration::seconds(600)),
    )
    .unwrap();
    assert_eq!(a3.state, AlertState::Firing);
    assert_eq!(a3.version, a2.version + 1);
    assert_eq!(a3.announce_at, Some(t0 + Duration::seconds(630)));
}

#[test]
fn hysteresis_keeps_an_alert_open_between_the_thresholds() {
    let mut r = rule(Metric::OfflineHours, Some(24), 0);
    r.spec.condition.clear_threshold = Some(12);
    let c = &r.spec.condition;
    assert!(matches!(c.observe(24), Observation::Firing { .. }));
    assert!(matches!(c.observe(20), Observation::Holding { .. }));
    assert!(matches!(c.observe(11), Observation::Clear { .. }));
    let s = subject();
    let now = Utc::now();
    let a = apply(None, step(&r, &s, None, &c.observe(30), now)).unwrap();
    assert!(
        step(&r, &s, None, &c.observe(20), now).is_none(),
        "holding opens nothing"
    );
    let b = apply(Some(a.clone()), step(&r, &s, Some(&a), &c.observe(20), now)).unwrap();
    assert_eq!(b.state, AlertState::Firing);
    let c2 = apply(Some(b.clone()), step(&r, &s, Some(&b), &c.observe(2), now)).unwrap();
    assert_eq!(c2.state, AlertState::Resolved);
}

#[test]
fn a_redelivered_event_counts_once() {
    let r = rule(Metric::StateChanged, None, 0);
    let s = subject();
    let now = Utc::now();
    let ev = |k: &str| Observation::Firing {
        value: 0,
        event: Some(k.into()),
        detail: None,
    };
    let a = apply(None, step(&r, &s, None, &ev("e1"), now)).unwrap();
    assert!(step(&r, &s, Some(&a), &ev("e1"), now).is_none());
    let b = apply(Some(a.clone()), step(&r, &s, Some(&a), &ev("e2"), now)).unwrap();
    assert_eq!(b.repeats, 1);
}

/// Fires, resolves and fires again every two minutes for an hour: the people hear of it twice.
#[test]
fn a_flapping_condition_notifies_at_most_twice_per_incident() {
    let r = rule(Metric::OfflineHours, Some(1), 0);
    let s = subject();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap();
    let mut alert: Option<Alert> = None;
    let mut last_spoke = None;
    let mut told = Vec::new();
    for minute in 0..90i64 {
        let now = t0 + Duration::minutes(minute);
        let obs = if minute < 60 && (minute / 2) % 2 == 0 {
            fire(2)
        } else {
            Observation::Clear { value: 0 }
        };
        let reopenable = alert
            .clone()
            .filter(|a| a.state.is_open() || may_reopen(&r, a, now));
        alert = apply(alert.clone(), step(&r, &s, reopenable.as_ref(), &obs, now));
        if let Some(a) = alert.clone().filter(|a| a.announce_at.is_some_and(|t| t <= now)) {
            let plan = announce(&r, &[a], last_spoke, &[], &[], now);
            alert = plan.alerts.into_iter().next();
            if plan.spoke {
                last_spoke = Some(now);
            }
            told.extend(plan.notifications.into_iter().map(|n| n.kind));
        }
    }
    assert_eq!(
        told,
        vec![NotificationKind::AlertFiring, NotificationKind::AlertResolved]
    );
    let a = alert.unwrap();
    assert_eq!(a.state, AlertState::Resolved);
    assert!(a.flaps >= 10, "{} flaps", a.flaps);
}

#[test]
fn silenced_alerts_wait_for_the_silence_to_end_and_acknowledged_ones_are_not_reminded() {
    let r = rule(Metric::DataInDay, Some(10), 0);
    let s = subject();
    let now = Utc::now();
    let a = apply(None, step(&r, &s, None, &fire(20), now)).unwrap();
    let silence = Silence {
        id: Uuid::new_v4(),
        tenant_id: r.tenant_id,
        matcher: SilenceMatcher::Rule(r.id),
        starts_at: now - Duration::minutes(1),
        ends_at: now + Duration::hours(2),
        comment: None,
        created_by: "ops".into(),
        created_at: now,
    };
    let later = now + Duration::minutes(1);
    let plan = announce(&r, std::slice::from_ref(&a), None, &[silence], &[], later);
    assert!(plan.notifications.is_empty());
    assert_eq!(plan.alerts[0].announce_at, Some(now + Duration::hours(2)));
    let plan = announce(&r, &[a], None, &[], &[], later);
    assert_eq!(plan.notifications.len(), 1);
    let mut told = plan.alerts[0].clone();
    assert_eq!(
        told.announce_at,
        Some(later + Duration::hours(4)),
        "a reminder in 4 hours"
    );
    told.acknowledged = Some(Acknowledgement {
        by: "ops".into(),
        at: later,
        comment: None,
    });
    let plan = announce(&r, &[told], None, &[], &[], later + Duration::hours(4));
    assert!(plan.notifications.is_empty());
    assert_eq!(plan.alerts[0].announce_at, None);
}

/// A temperature rule (above 35 °C, clears at 33 °C) through the lifecycle: the alert's detail
/// follows the reading in words, the value keeps it (below zero too), the notices say it.
#[test]
fn a_telemetry_alert_tells_its_reading_in_words_from_firing_to_resolved() {
    let mut r = rule(Metric::TelemetryAbove, None, 0);
    r.spec.condition.telemetry = TelemetryLimit::from_parts(
        Metric::TelemetryAbove,
        Some(TelemetryField::Temperature),
        Some(35.0),
        Some(33.0),
    )
    .unwrap();
    r.spec.check().unwrap();
    let c = r.spec.condition.clone();
    let s = subject();
    let t0 = Utc::now();
    let a = apply(None, step(&r, &s, None, &c.observe_reading(38.5).unwrap(), t0)).unwrap();
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.detail.as_deref(), Some("temperature 38.5 °C, above 35 °C"));
    assert_eq!(TelemetryValue::from_alert_value(a.value).hundredths(), 3850);
    let plan = announce(
        &r,
        std::slice::from_ref(&a),
        None,
        &[],
        &[],
        t0 + Duration::minutes(1),
    );
    let told = &plan.notifications[0];
    assert!(
        told.body.contains("(temperature 38.5 °C, above 35 °C)"),
        "{}",
        told.body
    );
    assert_eq!(told.payload["alerts"][0]["value"], 3850);
    let b = apply(
        Some(a.clone()),
        step(&r, &s, Some(&a), &c.observe_reading(34.0).unwrap(), t0),
    )
    .unwrap();
    assert_eq!(b.state, AlertState::Firing, "between the values it holds");
    assert_eq!(
        b.detail.as_deref(),
        Some("temperature 34 °C, not yet at or below 33 °C")
    );
    let d = apply(
        Some(b.clone()),
        step(&r, &s, Some(&b), &c.observe_reading(32.0).unwrap(), t0),
    )
    .unwrap();
    assert_eq!(d.state, AlertState::Resolved);
    assert_eq!(d.detail.as_deref(), Some("temperature 32 °C, at or below 33 °C"));

    // Below zero: the value survives as signed hundredths in the notice's payload.
    let mut frost = rule(Metric::TelemetryBelow, None, 0);
    frost.spec.condition.telemetry = TelemetryLimit::from_parts(
        Metric::TelemetryBelow,
        Some(TelemetryField::Temperature),
        Some(-18.0),
        None,
    )
    .unwrap();
    let obs = frost.spec.condition.observe_reading(-21.5).unwrap();
    let f = apply(None, step(&frost, &s, None, &obs, t0)).unwrap();
    assert_eq!(f.detail.as_deref(), Some("temperature -21.5 °C, below -18 °C"));
    let plan = announce(&frost, &[f], None, &[], &[], t0 + Duration::minutes(1));
    assert_eq!(plan.notifications[0].payload["alerts"][0]["value"], -2150);
}

fn pool(name: &str, members: PoolMembers) -> QuotaPool {
    let at = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    QuotaPool {
        id: Uuid::new_v4(),
        tenant_id: TenantId(Uuid::new_v4()),
        name: name.into(),
        members,
        rule: QuotaRule {
            limit_bytes: 10_000_000_000,
            stages: vec![80],
            action: QuotaAction::Notify,
            resume_next_period: false,
        },
        set_by: "alice".into(),
        created_at: at,
        updated_at: at,
    }
}

/// A rule on every SIM watches every pool, a rule on a sub-customer's SIMs that sub-customer's
/// pools; rules by labels, plan or SIM watch SIMs only.
#[test]
fn pools_are_watched_by_rules_on_every_sim_or_on_their_sub_customer() {
    let acme = CustomerId(Uuid::new_v4());
    let site = || {
        vec![LabelFilter {
            key: "site".into(),
            value: Some("north".into()),
        }]
    };
    let cameras = pool("Cameras", PoolMembers::Customer(acme));
    let north = pool("North", PoolMembers::Labels(site()));
    let all = AlertTarget::AllSims;
    assert!(all.watches_pools() && all.watches_pool(&cameras) && all.watches_pool(&north));
    let mine = AlertTarget::Customer(acme);
    assert!(mine.watches_pools() && mine.watches_pool(&cameras));
    assert!(
        !mine.watches_pool(&north),
        "a pool by labels is no sub-customer's"
    );
    assert!(!AlertTarget::Customer(CustomerId(Uuid::new_v4())).watches_pool(&cameras));
    for sims_only in [
        AlertTarget::Labels(site()),
        AlertTarget::TariffPlan("IoT S".into()),
        AlertTarget::Sim(SimId(Uuid::new_v4())),
    ] {
        assert!(!sims_only.watches_pools(), "{sims_only:?}");
        assert!(
            !sims_only.watches_pool(&north) && !sims_only.watches_pool(&cameras),
            "{sims_only:?}"
        );
    }
}

/// A pool's alert is keyed by the pool's id: renamed, the pool keeps its alert, which takes the
/// new name.
#[test]
fn a_pool_renamed_keeps_its_alert() {
    let r = rule(Metric::QuotaExhaustionForecast, Some(7), 0);
    let acme = CustomerId(Uuid::new_v4());
    let mut p = pool("Cameras", PoolMembers::Customer(acme));
    let s = Subject::pool(&p);
    assert_eq!(
        (s.sim_id, s.name.as_str(), s.customer_id),
        (None, "pool 'Cameras'", Some(acme))
    );
    let now = Utc::now();
    let a = apply(None, step(&r, &s, None, &fire(3), now)).unwrap();
    assert_eq!(a.subject_key, format!("pool:{}", p.id));
    p.name = "Doorbells".into();
    let renamed = Subject::pool(&p);
    assert_eq!(renamed.key(), a.subject_key);
    let b = apply(Some(a.clone()), step(&r, &renamed, Some(&a), &fire(3), now)).unwrap();
    assert_eq!(
        (b.id, b.state, b.subject.as_str(), b.subject_key.as_str()),
        (
            a.id,
            AlertState::Firing,
            "pool 'Doorbells'",
            a.subject_key.as_str()
        )
    );
}
