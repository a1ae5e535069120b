//! The `AlertStore` port contract, on Postgres and SQLite: rules kept per tenant (a limit, unique
//! names, versions), one open alert per rule and SIM however many evaluators race to open it,
//! version-checked changes, and announcements written once when two servers announce at once.

use super::open;
use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use ioto_domain::alert::lifecycle::{step, Acknowledgement, AlertState, Subject};
use ioto_domain::alert::{
    AlertRule, AlertTarget, Channels, Condition, Metric, Observation, Pacing, RuleSpec, Severity, Silence,
    SilenceMatcher,
};
use ioto_domain::notify::{NotificationKind, NotificationQuery};
use ioto_domain::ports::alerts::{AlertQuery, AlertStore};
use ioto_domain::ports::NotificationStore;
use ioto_domain::{Error, Scope, TenantId};
use ioto_store::{SqlFleet, StoreLocation};
use ioto_test_support::{pg, temp_dir, Factory};
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn rule(tenant: TenantId, name: &str, at: DateTime<Utc>) -> AlertRule {
    AlertRule {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        spec: RuleSpec {
            name: name.into(),
            description: Some("over a megabyte".into()),
            enabled: true,
            severity: Severity::Major,
            target: AlertTarget::Labels(vec![ioto_domain::fleet::query::LabelFilter {
                key: "site".into(),
                value: Some("north".into()),
            }]),
            condition: Condition {
                metric: Metric::DataInDay,
                threshold: Some(1_000_000),
                clear_threshold: None,
                state: None,
                telemetry: None,
                anomaly: None,
            },
            channels: Channels {
                in_app: true,
                webhook: false,
                emails: vec!["noc@example.com".into(), "ops@example.com".into()],
            },
            pacing: Pacing {
                group_wait_seconds: 0,
                ..Pacing::default()
            },
        },
        created_by: "alice".into(),
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

async fn told(fleet: &SqlFleet, tenant: TenantId) -> Vec<(NotificationKind, Vec<String>)> {
    let query = NotificationQuery {
        tenant_wide: Some(tenant),
        limit: 100,
        ..NotificationQuery::default()
    };
    let notes = fleet.notifications(Scope::tenant(tenant), &query).await.unwrap();
    notes
        .into_iter()
        .filter(|n| {
            matches!(
                n.kind,
                NotificationKind::AlertFiring | NotificationKind::AlertResolved
            )
        })
        .map(|n| (n.kind, n.audience.emails))
        .collect()
}

async fn contract(store: ioto_store::SqlStore) {
    let fleet = store.fleet();
    let f = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    let (a, b) = (f.tenant("Alerts A").await, f.tenant("Alerts B").await);
    let sims = f.sims(&a, None, 3).await;
    let (a_scope, b_scope) = (Scope::tenant(a.id), Scope::tenant(b.id));
    let t = now();

    // Rules: stored as given, names unique per tenant, a limit per tenant, versions checked.
    let r = rule(a.id, "Heavy", t);
    fleet.insert_alert_rule(a_scope, &r, 3).await.unwrap();
    assert_eq!(fleet.alert_rule(a_scope, r.id).await.unwrap(), Some(r.clone()));
    assert_eq!(
        fleet.alert_rule(b_scope, r.id).await.unwrap(),
        None,
        "B sees A's rule"
    );
    let twin = rule(a.id, "Heavy", t);
    let e = fleet.insert_alert_rule(a_scope, &twin, 3).await.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "name"),
        "{e:?}"
    );
    fleet
        .insert_alert_rule(a_scope, &rule(a.id, "Two", t), 3)
        .await
        .unwrap();
    fleet
        .insert_alert_rule(a_scope, &rule(a.id, "Three", t), 3)
        .await
        .unwrap();
    let e = fleet
        .insert_alert_rule(a_scope, &rule(a.id, "Four", t), 3)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Conflict(m) if m.contains("at most 3")),
        "{e:?}"
    );
    fleet
        .insert_alert_rule(b_scope, &rule(b.id, "Four", t), 3)
        .await
        .unwrap();
    let mut changed = r.clone();
    changed.spec.severity = Severity::Critical;
    changed.version = 2;
    fleet.update_alert_rule(a_scope, &changed).await.unwrap();
    let stale = fleet.update_alert_rule(a_scope, &changed).await.unwrap_err();
    assert!(
        matches!(stale, Error::Conflict(_)),
        "a stale version overwrote the rule"
    );
    assert_eq!(fleet.alert_rules(a_scope, a.id).await.unwrap().len(), 3);
    assert_eq!(fleet.enabled_alert_rules().await.unwrap().len(), 4);

    // Four evaluators race to open the same alert: one opens it.
    let subject = Subject::of(&sims[0]);
    let fire = Observation::Firing {
        value: 2_000_000,
        event: None,
        detail: None,
    };
    let mut racers = Vec::new();
    for _ in 0..4 {
        let (fleet, changed, subject, fire) = (fleet.clone(), changed.clone(), subject.clone(), fire.clone());
        racers.push(tokio::spawn(async move {
            let w = step(&changed, &subject, None, &fire, t).unwrap();
            fleet.write_alerts(&[w]).await.unwrap().len()
        }));
    }
    let mut opened = 0;
    for r in racers {
        opened += r.await.unwrap();
    }
    assert_eq!(opened, 1, "one open alert per rule and SIM");
    let current = fleet
        .current_alerts(changed.id, Some(&[subject.key()]), t)
        .await
        .unwrap();
    assert_eq!(current.len(), 1);
    let alert = current[0].clone();
    assert_eq!(
        (alert.state, alert.value, alert.severity),
        (AlertState::Firing, 2_000_000, Severity::Critical)
    );

    // A change written against a version already moved on is not applied.
    let more = Observation::Firing {
        value: 3_000_000,
        event: None,
        detail: None,
    };
    let w = step(&changed, &subject, Some(&alert), &more, t).unwrap();
    assert_eq!(
        fleet.write_alerts(std::slice::from_ref(&w)).await.unwrap(),
        vec![alert.id]
    );
    assert!(
        fleet.write_alerts(&[w]).await.unwrap().is_empty(),
        "the same change applied twice"
    );

    // Two servers announce at once: the alert is told of once.
    let later = t + Duration::seconds(1);
    let (x, y) = tokio::join!(
        fleet.announce_alerts(later, 100),
        fleet.announce_alerts(later, 100)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.len() + y.len(), 1, "told {} times", x.len() + y.len());
    assert_eq!(
        told(&fleet, a.id).await,
        vec![(
            NotificationKind::AlertFiring,
            vec!["noc@example.com".to_owned(), "ops@example.com".to_owned()]
        )]
    );
    assert!(
        fleet.announce_alerts(later, 100).await.unwrap().is_empty(),
        "told again"
    );

    // Acknowledged once; listed, filtered and counted in the tenant only.
    let ack = Acknowledgement {
        by: "bob".into(),
        at: later,
        comment: Some("on it".into()),
    };
    assert!(fleet.acknowledge_alert(a_scope, alert.id, &ack).await.unwrap());
    assert!(
        !fleet.acknowledge_alert(a_scope, alert.id, &ack).await.unwrap(),
        "acknowledged twice"
    );
    assert!(
        !fleet.acknowledge_alert(b_scope, alert.id, &ack).await.unwrap(),
        "B acknowledged A's alert"
    );
    let listed = fleet
        .alerts(
            a_scope,
            &AlertQuery {
                tenant_id: Some(a.id),
                states: vec![AlertState::Firing],
                ..AlertQuery::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].acknowledged, Some(ack));
    let theirs = fleet
        .alerts(b_scope, &AlertQuery::default(), None, 10)
        .await
        .unwrap();
    assert!(theirs.is_empty(), "B lists A's alerts");
    let counts = fleet.open_alert_counts(a_scope, a.id, None).await.unwrap();
    let critical = counts.iter().find(|c| c.severity == Severity::Critical).unwrap();
    assert_eq!((critical.firing, critical.pending), (1, 0));

    // Silences: listed until they end; one ended early lets what it held back through now.
    let s = Silence {
        id: Uuid::new_v4(),
        tenant_id: a.id,
        matcher: SilenceMatcher::Sim(sims[1].id),
        starts_at: t,
        ends_at: t + Duration::hours(2),
        comment: None,
        created_by: "bob".into(),
        created_at: t,
    };
    fleet.insert_silence(a_scope, &s).await.unwrap();
    assert_eq!(
        fleet.silences(a_scope, a.id, later, false).await.unwrap(),
        vec![s.clone()]
    );
    assert!(fleet
        .silences(b_scope, a.id, later, false)
        .await
        .unwrap()
        .is_empty());
    let quiet = step(&changed, &Subject::of(&sims[1]), None, &fire, t).unwrap();
    fleet.write_alerts(&[quiet]).await.unwrap();
    assert!(
        fleet
            .announce_alerts(later + Duration::minutes(6), 100)
            .await
            .unwrap()
            .is_empty(),
        "a silenced alert was told of"
    );
    assert!(fleet
        .end_silence(a_scope, s.id, later + Duration::minutes(7))
        .await
        .unwrap());
    let told_now = fleet
        .announce_alerts(later + Duration::minutes(7), 100)
        .await
        .unwrap();
    assert_eq!(
        told_now.len(),
        1,
        "the alert a silence held back is not told of when it ends"
    );

    // Turning a rule off resolves its open alerts quietly; deleting it removes them.
    let mut off = changed.clone();
    off.spec.enabled = false;
    off.version = 3;
    fleet.update_alert_rule(a_scope, &off).await.unwrap();
    let open = fleet
        .alerts(
            a_scope,
            &AlertQuery {
                states: vec![AlertState::Firing, AlertState::Pending],
                ..AlertQuery::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert!(open.is_empty(), "a rule turned off keeps alerts open: {open:?}");
    assert!(fleet.delete_alert_rule(a_scope, r.id).await.unwrap());
    assert!(fleet
        .alerts(a_scope, &AlertQuery::default(), None, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn alerts_contract_on_sqlite() {
    contract(
        open(StoreLocation::Sqlite {
            path: temp_dir().join("alerts.sqlite"),
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn alerts_contract_on_postgres() {
    contract(
        open(StoreLocation::Postgres {
            url: pg::database().await,
        })
        .await,
    )
    .await;
}
