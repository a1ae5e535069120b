//! The `Fleet` port contract, on Postgres and SQLite.

use std::sync::Arc;

use chrono::{Duration, Utc};
use ioto_domain::fleet::audit::{AuditQuery, EntityKind};
use ioto_domain::fleet::query::{sim_cursor, CustomerFilter, LabelFilter, Page, SimFilter, SimSort};
use ioto_domain::fleet::{
    AuditAction, AuditStamp, Connectivity, Device, DeviceKind, DeviceState, Imei, LabelSuggestion, Labels,
    NewSim, ScheduleStatus, ScheduledTransition, SimState,
};
use ioto_domain::identifiers::{Iccid, Imsi, Msisdn};
use ioto_domain::ports::{Changeset, Directory, Fleet, ScheduleQuery, Versioned};
use ioto_domain::{DeviceId, Error, Scope};
use ioto_store::StoreLocation;

use super::open;
use ioto_test_support::{pg, temp_dir, Factory};
use uuid::Uuid;

fn stamp() -> AuditStamp {
    AuditStamp {
        actor: "contract".into(),
        actor_user_id: None,
        at: Utc::now(),
        note: Some("why".into()),
    }
}

fn iccid(n: u128) -> Iccid {
    Iccid::with_check_digit(&format!("8977{:014}", n % 100_000_000_000_000)).unwrap()
}

fn device(tenant: ioto_domain::TenantId, n: u32) -> Device {
    let now = Utc::now();
    Device {
        id: DeviceId::new(),
        tenant_id: tenant,
        customer_id: None,
        imei: Imei::with_check_digit(&format!(
            "35{:012}",
            u64::from(n) + (Uuid::new_v4().as_u128() % 1_000_000_000) as u64 * 1000
        ))
        .unwrap(),
        name: format!("device {n}"),
        kind: DeviceKind::Tracker,
        connectivity: vec![Connectivity::Cellular],
        state: DeviceState::Registered,
        labels: Labels::new(),
        last_activity_at: None,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

async fn contract(store: ioto_store::SqlStore) {
    let dir: Arc<dyn Directory> = Arc::new(store.directory());
    let fleet: Arc<dyn Fleet> = Arc::new(store.fleet());
    let f = Factory::new(dir.clone(), fleet.clone());
    let a = f.tenant("Fleet A").await;
    let b = f.tenant("Fleet B").await;
    let acme = f.customer(&a, "Acme").await;
    let a_scope = Scope::tenant(a.id);
    let acme_scope = Scope::Tenant {
        tenant_id: a.id,
        customer_id: Some(acme.id),
    };

    // Bulk insert: all rows with an audit entry each; the ids come back in input order.
    let base = Uuid::new_v4().as_u128() % 1_000_000_000_000;
    let mut new = Vec::new();
    for i in 0..6u128 {
        let mut s = NewSim::basic(
            a.id,
            iccid(base * 100 + i),
            Imsi::parse(&format!("{:015}", base * 100 + i)).unwrap(),
        );
        if i % 2 == 0 {
            s.customer_id = Some(acme.id);
        }
        s.labels = Labels::parse([("site", if i < 3 { "berlin" } else { "hamburg" })]).unwrap();
        if i == 0 {
            s.msisdn = Some(Msisdn::parse(&format!("+4915{:09}", base % 1_000_000_000)).unwrap());
        }
        if i == 1 {
            // Free text with what a bulk path must escape: backslashes, quotes, non-ASCII.
            s.tariff_plan = Some(r#"IoT \ "Max" – Zürich\N"#.to_owned());
            s.labels.set("note", r#"Ber\lin "Mitte" \t"#).unwrap();
            s.labels.set("empty", "").unwrap();
        }
        new.push(s);
    }
    let ids = fleet
        .insert_sims(
            a_scope,
            &new.iter().collect::<Vec<_>>(),
            AuditAction::Imported,
            &stamp(),
            Some(Uuid::new_v4()),
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 6);
    let first = fleet.sims_by_id(a_scope, &ids[..1]).await.unwrap();
    assert_eq!(first[0].iccid, new[0].iccid);
    assert_eq!(first[0].version, 1);
    assert_eq!(first[0].msisdn, new[0].msisdn);
    let second = &fleet.sims_by_id(a_scope, &ids[1..2]).await.unwrap()[0];
    assert_eq!(
        (&second.tariff_plan, &second.labels, second.customer_id),
        (&new[1].tariff_plan, &new[1].labels, None),
        "free text stored as written"
    );

    // A batch with one registered ICCID writes nothing.
    let mut dup = NewSim::basic(
        a.id,
        iccid(base * 100 + 50),
        Imsi::parse(&format!("{:015}", base * 100 + 50)).unwrap(),
    );
    dup.labels = Labels::new();
    let clash = NewSim::basic(
        a.id,
        new[1].iccid.clone(),
        Imsi::parse(&format!("{:015}", base * 100 + 51)).unwrap(),
    );
    let err = fleet
        .insert_sims(a_scope, &[&dup, &clash], AuditAction::Created, &stamp(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(
        fleet.sim(a_scope, &dup.iccid).await.unwrap(),
        None,
        "partial write"
    );

    // Taken identifiers are found across tenants (B asks about A's SIMs) without naming the owner.
    let taken = fleet
        .taken_identifiers(
            &[new[0].iccid.to_string(), dup.iccid.to_string()],
            &[new[2].imsi.to_string()],
            &[],
        )
        .await
        .unwrap();
    assert!(taken.iccids.contains(new[0].iccid.as_str()));
    assert!(!taken.iccids.contains(dup.iccid.as_str()));
    assert!(taken.imsis.contains(new[2].imsi.as_str()));

    // Lists: filters, scope, keyset pages in both directions.
    let all = SimFilter::default();
    let page = |after, desc| Page {
        sort: SimSort::Iccid,
        descending: desc,
        after,
        limit: 4,
    };
    let p1 = fleet
        .list_sims(a_scope, a.id, &all, &page(None, false))
        .await
        .unwrap();
    let p2 = fleet
        .list_sims(
            a_scope,
            a.id,
            &all,
            &page(Some(sim_cursor(&p1[3], SimSort::Iccid)), false),
        )
        .await
        .unwrap();
    let mut seen: Vec<_> = p1.iter().chain(&p2).map(|s| s.iccid.clone()).collect();
    assert_eq!(seen.len(), 6);
    let mut expected: Vec<_> = new.iter().map(|s| s.iccid.clone()).collect();
    expected.sort();
    assert_eq!(seen, expected);
    let desc = fleet
        .list_sims(a_scope, a.id, &all, &page(None, true))
        .await
        .unwrap();
    seen.reverse();
    assert_eq!(
        desc.iter().map(|s| s.iccid.clone()).collect::<Vec<_>>(),
        seen[..4].to_vec()
    );
    let created = Page {
        sort: SimSort::CreatedAt,
        descending: false,
        after: None,
        limit: 3,
    };
    let c1 = fleet.list_sims(a_scope, a.id, &all, &created).await.unwrap();
    let c2 = fleet
        .list_sims(
            a_scope,
            a.id,
            &all,
            &Page {
                after: Some(sim_cursor(&c1[2], SimSort::CreatedAt)),
                ..created.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        c1.len() + c2.len(),
        6,
        "created-at pages (equal timestamps) lose or repeat no row"
    );
    assert!(c2.iter().all(|s| !c1.contains(s)));
    assert_eq!(fleet.count_sims(a_scope, a.id, &all).await.unwrap(), 6);
    assert_eq!(
        fleet.count_sims(acme_scope, a.id, &all).await.unwrap(),
        3,
        "customer scope"
    );
    assert_eq!(
        fleet.count_sims(Scope::tenant(b.id), a.id, &all).await.unwrap(),
        0,
        "other tenant"
    );
    let unassigned = SimFilter {
        customer: Some(CustomerFilter::Unassigned),
        ..SimFilter::default()
    };
    assert_eq!(fleet.count_sims(a_scope, a.id, &unassigned).await.unwrap(), 3);
    let berlin = SimFilter {
        labels: vec![LabelFilter {
            key: "site".into(),
            value: Some("berlin".into()),
        }],
        ..SimFilter::default()
    };
    assert_eq!(fleet.count_sims(a_scope, a.id, &berlin).await.unwrap(), 3);
    let has_site = SimFilter {
        labels: vec![LabelFilter {
            key: "site".into(),
            value: None,
        }],
        ..SimFilter::default()
    };
    assert_eq!(fleet.count_sims(a_scope, a.id, &has_site).await.unwrap(), 6);
    let search = SimFilter {
        label_search: Some("HAMB".into()),
        ..SimFilter::default()
    };
    assert_eq!(
        fleet.count_sims(a_scope, a.id, &search).await.unwrap(),
        3,
        "label search is case-insensitive"
    );
    let prefix = SimFilter {
        iccid_prefix: Some(new[0].iccid.as_str()[..18].to_owned()),
        ..SimFilter::default()
    };
    assert!(fleet.count_sims(a_scope, a.id, &prefix).await.unwrap() >= 1);
    let msisdn = SimFilter {
        msisdn_prefix: Some("+4915".into()),
        ..SimFilter::default()
    };
    assert_eq!(fleet.count_sims(a_scope, a.id, &msisdn).await.unwrap(), 1);
    let states = SimFilter {
        states: vec![SimState::Active],
        ..SimFilter::default()
    };
    assert_eq!(fleet.count_sims(a_scope, a.id, &states).await.unwrap(), 0);

    // Changesets: device insert, SIM update with version check, audit; stale versions conflict.
    let d = device(a.id, 1);
    fleet
        .apply(
            a_scope,
            Changeset {
                devices: vec![Versioned {
                    expected_version: None,
                    row: d.clone(),
                }],
                ..Changeset::default()
            },
        )
        .await
        .unwrap();
    let same_imei = Device {
        id: DeviceId::new(),
        ..d.clone()
    };
    let err = fleet
        .apply(
            a_scope,
            Changeset {
                devices: vec![Versioned {
                    expected_version: None,
                    row: same_imei,
                }],
                ..Changeset::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("IMEI")),
        "{err:?}"
    );
    let sim = fleet.sims_by_id(a_scope, &ids[1..2]).await.unwrap().remove(0);
    let mut bound = sim.clone();
    bound.device_id = Some(d.id);
    bound.state = SimState::Active;
    let entry = ioto_domain::fleet::NewAuditEntry {
        tenant_id: a.id,
        customer_id: None,
        entity_kind: EntityKind::Sim,
        entity_id: sim.id.0,
        entity_ref: sim.iccid.to_string(),
        action: AuditAction::Bound,
        stamp: stamp(),
        old_value: serde_json::json!({ "deviceId": null }),
        new_value: serde_json::json!({ "deviceId": d.id.to_string() }),
    };
    fleet
        .apply(
            a_scope,
            Changeset {
                sims: vec![Versioned {
                    expected_version: Some(sim.version),
                    row: bound.clone(),
                }],
                audit: vec![entry.clone()],
                ..Changeset::default()
            },
        )
        .await
        .unwrap();
    let now = fleet.sim(a_scope, &sim.iccid).await.unwrap().unwrap();
    assert_eq!(
        (now.version, now.device_id, now.state),
        (2, Some(d.id), SimState::Active)
    );
    assert_eq!(fleet.sims_in_devices(a_scope, &[d.id]).await.unwrap().len(), 1);
    // Network and activity (written by the usage pipeline) filter the list.
    let mut seen_on = now.clone();
    seen_on.last_network = Some(ioto_domain::identifiers::MccMnc::parse("262-01").unwrap());
    seen_on.last_activity_at = Some(Utc::now() - Duration::hours(2));
    fleet
        .apply(
            a_scope,
            Changeset {
                sims: vec![Versioned {
                    expected_version: Some(2),
                    row: seen_on,
                }],
                ..Changeset::default()
            },
        )
        .await
        .unwrap();
    let network = SimFilter {
        networks: vec![ioto_domain::identifiers::MccMnc::parse("26201").unwrap()],
        ..SimFilter::default()
    };
    assert_eq!(fleet.count_sims(a_scope, a.id, &network).await.unwrap(), 1);
    let recent = SimFilter {
        last_activity_from: Some(Utc::now() - Duration::hours(3)),
        ..SimFilter::default()
    };
    assert_eq!(fleet.count_sims(a_scope, a.id, &recent).await.unwrap(), 1);
    let older = SimFilter {
        last_activity_to: Some(Utc::now() - Duration::hours(3)),
        ..SimFilter::default()
    };
    assert_eq!(fleet.count_sims(a_scope, a.id, &older).await.unwrap(), 0);
    let stale = fleet
        .apply(
            a_scope,
            Changeset {
                sims: vec![Versioned {
                    expected_version: Some(sim.version),
                    row: bound,
                }],
                audit: vec![entry],
                ..Changeset::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(stale, Error::Conflict(ref m) if m.contains("changed by someone else")),
        "{stale:?}"
    );
    let events = fleet
        .audit(
            a_scope,
            a.id,
            &AuditQuery {
                entity_id: Some(sim.id.0),
                limit: 10,
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.action).collect::<Vec<_>>(),
        vec![AuditAction::Bound, AuditAction::Imported],
        "newest first; the failed changeset wrote no entry"
    );
    assert_eq!(events[1].note.as_deref(), Some("why"));

    // Another tenant writing into A: refused before any write.
    let foreign = fleet
        .apply(
            Scope::tenant(b.id),
            Changeset {
                devices: vec![Versioned {
                    expected_version: None,
                    row: device(a.id, 2),
                }],
                ..Changeset::default()
            },
        )
        .await;
    assert!(matches!(foreign, Err(Error::NotFound { .. })), "{foreign:?}");
    assert_eq!(fleet.device(Scope::tenant(b.id), d.id).await.unwrap(), None);

    // Bulk assignment by filter: changed rows only, one audit entry each.
    let n = fleet
        .assign_sims(a_scope, a.id, &berlin, Some(acme.id), &stamp())
        .await
        .unwrap();
    assert_eq!(n, 1, "two of the three Berlin SIMs were Acme's already");
    let assigned = fleet
        .audit(
            a_scope,
            a.id,
            &AuditQuery {
                actions: vec![AuditAction::Assigned],
                limit: 10,
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(assigned.len(), 1);
    assert_eq!(assigned[0].new_value["customerId"], acme.id.to_string());
    let n = fleet
        .assign_devices(a_scope, a.id, &Default::default(), Some(acme.id), &stamp())
        .await
        .unwrap();
    assert_eq!(n, 1);
    let in_device = fleet.sim(a_scope, &sim.iccid).await.unwrap().unwrap();
    assert_eq!(
        in_device.customer_id,
        Some(acme.id),
        "the SIM in the device followed it"
    );

    // Schedules: claimed once, then finished; cancelled ones are not claimed.
    let due = ScheduledTransition {
        id: Uuid::new_v4(),
        tenant_id: a.id,
        customer_id: in_device.customer_id,
        sim_id: in_device.id,
        iccid: in_device.iccid.clone(),
        target: SimState::Suspended,
        effective_at: Utc::now() - Duration::seconds(1),
        status: ScheduleStatus::Pending,
        requested_by: "contract".into(),
        requested_by_user: None,
        note: None,
        created_at: Utc::now(),
        finished_at: None,
        outcome: None,
    };
    fleet
        .apply(
            a_scope,
            Changeset {
                schedules: vec![due.clone()],
                ..Changeset::default()
            },
        )
        .await
        .unwrap();
    let claimed = fleet
        .claim_due(Utc::now(), std::time::Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert!(claimed.iter().any(|s| s.id == due.id));
    let again = fleet
        .claim_due(Utc::now(), std::time::Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert!(
        again.iter().all(|s| s.id != due.id),
        "a claimed schedule is not claimed twice"
    );
    fleet
        .finish_schedule(due.id, ScheduleStatus::Applied, None)
        .await
        .unwrap();
    let listed = fleet
        .schedules(
            a_scope,
            a.id,
            &ScheduleQuery {
                sim: Some(in_device.id),
                statuses: vec![],
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(listed[0].status, ScheduleStatus::Applied);
    assert!(fleet
        .schedules(
            Scope::tenant(b.id),
            a.id,
            &ScheduleQuery {
                limit: 10,
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .is_empty());

    // Label catalogue: upsert, list, remove; tenants see only their own.
    let site = LabelSuggestion {
        key: "site".into(),
        values: vec!["berlin".into()],
        description: None,
    };
    fleet
        .put_label_suggestion(a_scope, a.id, site.clone())
        .await
        .unwrap();
    fleet
        .put_label_suggestion(
            a_scope,
            a.id,
            LabelSuggestion {
                values: vec!["berlin".into(), "hamburg".into()],
                ..site.clone()
            },
        )
        .await
        .unwrap();
    let cat = fleet.label_catalogue(a_scope, a.id).await.unwrap();
    assert_eq!(cat.len(), 1);
    assert_eq!(cat[0].values, vec!["berlin", "hamburg"]);
    assert!(fleet
        .label_catalogue(Scope::tenant(b.id), a.id)
        .await
        .unwrap()
        .is_empty());
    fleet
        .remove_label_suggestion(a_scope, a.id, "site")
        .await
        .unwrap();
    assert!(matches!(
        fleet.remove_label_suggestion(a_scope, a.id, "site").await,
        Err(Error::NotFound { .. })
    ));

    // Settings.
    let mut s = fleet.settings(a_scope, a.id).await.unwrap();
    assert!(s.customers_see_sims);
    s.customers_see_sims = false;
    fleet.set_settings(a_scope, a.id, s).await.unwrap();
    assert!(!fleet.settings(a_scope, a.id).await.unwrap().customers_see_sims);
    assert!(matches!(
        fleet.settings(Scope::tenant(b.id), a.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(fleet.statements() > 0);

    // Sightings from the usage pipeline: the latest wins, the version and trail stay.
    let seen_sim = fleet
        .sims_by_id(Scope::Platform, &ids[1..2])
        .await
        .unwrap()
        .remove(0);
    let at = chrono::Utc::now() - chrono::Duration::minutes(5);
    let seen = |iccid: &ioto_domain::Iccid, network: &str, at| ioto_domain::ports::Sighting {
        iccid: iccid.clone(),
        network: ioto_domain::MccMnc::parse(network).unwrap(),
        at,
        imei: None,
    };
    let nobody = ioto_domain::Iccid::with_check_digit("8900000000000000000").unwrap();
    // A SIM never seen before is reported once, the first time; one seen before never is.
    let never = fleet
        .sims_by_id(Scope::Platform, &ids)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.last_activity_at.is_none() && s.id != seen_sim.id)
        .expect("a SIM never seen");
    assert!(
        seen_sim.last_activity_at.is_some(),
        "the sighted SIM was seen before"
    );
    let first = fleet
        .record_activity(&[
            seen(&never.iccid, "262-01", at),
            seen(&seen_sim.iccid, "262-01", at),
            seen(&nobody, "262-01", at),
        ])
        .await
        .unwrap();
    assert_eq!(
        first.first_seen,
        vec![never.iccid.clone()],
        "the SIMs seen for the first time"
    );
    assert!(first.imei_changes.is_empty());
    let with_imei = |iccid, network, at, imei: &str| ioto_domain::ports::Sighting {
        imei: Some(imei.to_owned()),
        ..seen(iccid, network, at)
    };
    let again = fleet
        .record_activity(&[
            with_imei(
                &never.iccid,
                "262-02",
                at + chrono::Duration::minutes(1),
                "352099001761481",
            ),
            seen(&seen_sim.iccid, "208-01", at - chrono::Duration::minutes(1)),
        ])
        .await
        .unwrap();
    assert_eq!(
        again,
        ioto_domain::ports::Activity::default(),
        "a SIM seen before is reported new, or a first IMEI as a change"
    );
    // The same device again: nothing; another device: a change, from the IMEI before; an
    // older sighting with yet another IMEI changes nothing.
    let t2 = at + chrono::Duration::minutes(2);
    let same = fleet
        .record_activity(&[with_imei(&never.iccid, "262-02", t2, "352099001761481")])
        .await
        .unwrap();
    assert!(same.imei_changes.is_empty(), "{same:?}");
    // Whole microseconds: what Postgres keeps of a time.
    let t3 = chrono::SubsecRound::trunc_subsecs(at + chrono::Duration::minutes(3), 6);
    let moved = fleet
        .record_activity(&[
            with_imei(&never.iccid, "262-02", t3, "490154203237518"),
            with_imei(
                &seen_sim.iccid,
                "262-01",
                at - chrono::Duration::minutes(2),
                "490154203237518",
            ),
        ])
        .await
        .unwrap();
    assert_eq!(
        moved.imei_changes,
        vec![ioto_domain::ports::ImeiChange {
            iccid: never.iccid.clone(),
            from: "352099001761481".into(),
            to: "490154203237518".into(),
            at: t3,
        }]
    );
    // No IMEI in a sighting keeps the last one.
    let quiet = fleet
        .record_activity(&[seen(&never.iccid, "262-02", at + chrono::Duration::minutes(4))])
        .await
        .unwrap();
    assert!(quiet.imei_changes.is_empty());
    let back = fleet
        .record_activity(&[with_imei(
            &never.iccid,
            "262-02",
            at + chrono::Duration::minutes(5),
            "352099001761481",
        )])
        .await
        .unwrap();
    assert_eq!(back.imei_changes.len(), 1, "{back:?}");
    assert_eq!(back.imei_changes[0].from, "490154203237518");

    let after = fleet
        .sims_by_id(Scope::Platform, &ids[1..2])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        after.last_network.map(|n| n.to_string()).as_deref(),
        Some("262-01"),
        "an older sighting changes nothing"
    );
    assert_eq!(
        after.last_activity_at.map(|t| t.timestamp()),
        Some(at.timestamp())
    );
    assert_eq!(after.version, seen_sim.version, "a sighting is not an edit");
}

#[tokio::test]
async fn fleet_contract_on_sqlite() {
    contract(
        open(StoreLocation::Sqlite {
            path: temp_dir().join("fleet.sqlite"),
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn fleet_contract_on_postgres() {
    contract(
        open(StoreLocation::Postgres {
            url: pg::database().await,
        })
        .await,
    )
    .await;
}
