use chrono::NaiveDate;
use ioto_analytics::{ClickHouseUsage, EmbeddedUsage};
use ioto_domain::ports::{UsageRecord, UsageStore};
use ioto_domain::{CustomerId, Error, TenantId};
use ioto_test_support::{clickhouse, temp_dir};

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

fn rec(tenant: TenantId, iccid: &str, network: &str, d: u32, up: u64, down: u64) -> UsageRecord {
    UsageRecord {
        tenant_id: tenant,
        customer_id: Some(CustomerId::new()),
        iccid: iccid.into(),
        network: network.into(),
        day: day(d),
        bytes_up: up,
        bytes_down: down,
    }
}

async fn contract(store: &dyn UsageStore) {
    let first = store.migrate().await.unwrap();
    assert_eq!(first, vec![1, 2, 3], "a fresh store applies every migration");
    assert!(
        store.migrate().await.unwrap().is_empty(),
        "migrating twice applies nothing"
    );
    assert!(!store.server_version().await.unwrap().is_empty());
    store.ping().await.unwrap();

    let a = TenantId::new();
    let b = TenantId::new();
    let mut batch = vec![
        rec(a, "8901", "262-01", 20, 100, 1000),
        rec(a, "8902", "262-01", 20, 50, 500),
        rec(a, "8901", "262-02", 21, 7, 70),
        rec(b, "8999", "262-01", 20, 1, 1),
    ];
    // Same SIM, network and day twice: the bytes add up.
    let mut again = batch[0].clone();
    again.customer_id = batch[0].customer_id;
    batch.push(again);
    store.insert_usage(&batch).await.unwrap();

    let got = store.daily_usage(a, day(19), day(21)).await.unwrap();
    let summary: Vec<_> = got
        .iter()
        .map(|u| (u.day, u.network.as_str(), u.bytes_up, u.bytes_down, u.sims))
        .collect();
    assert_eq!(
        summary,
        vec![(day(20), "262-01", 250, 2500, 2), (day(21), "262-02", 7, 70, 1)]
    );
    assert_eq!(
        store.daily_usage(a, day(21), day(21)).await.unwrap().len(),
        1,
        "range is inclusive and bounded"
    );
    assert_eq!(
        store.daily_usage(b, day(1), day(30)).await.unwrap().len(),
        1,
        "tenants do not mix"
    );

    // A bad row fails the batch, naming it, and nothing of the batch is stored.
    let bad = vec![
        rec(b, "8998", "262-01", 22, 5, 5),
        UsageRecord {
            day: NaiveDate::from_ymd_opt(1960, 1, 1).unwrap(),
            ..rec(b, "8998", "262-01", 22, 5, 5)
        },
    ];
    let err = store.insert_usage(&bad).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput { ref field, .. } if field == "records[1].day"),
        "{err:?}"
    );
    assert!(
        store.daily_usage(b, day(22), day(22)).await.unwrap().is_empty(),
        "partial write"
    );
}

/// Counted session updates: live state, recovery state and usage cubes follow from one write.
async fn sessions_contract(store: &dyn UsageStore) {
    use chrono::{Duration, Utc};
    use ioto_domain::ports::{period_start, Granularity, HistoryQuery, SessionUpdate};

    let tenant = TenantId::new();
    let customer = Some(CustomerId::new());
    let iccid = "89490000000000000017";
    let midnight = period_start(Utc::now(), Granularity::Day);
    let update =
        |session: &str, started: i64, at: i64, totals: (u64, u64), delta: (u64, u64), terminated: bool| {
            SessionUpdate {
                tenant_id: tenant,
                customer_id: customer,
                iccid: iccid.into(),
                session_id: session.into(),
                started_at: midnight + Duration::minutes(started),
                event_time: midnight + Duration::minutes(at),
                hour: period_start(midnight + Duration::minutes(at), Granularity::Hour),
                mcc_mnc: "262-01".into(),
                rat: "LTE".into(),
                ip_address: Some("10.0.0.1".into()),
                cell_id: None,
                terminated,
                total_in: totals.0,
                total_out: totals.1,
                delta_in: delta.0,
                delta_out: delta.1,
            }
        };
    // Session A runs across midnight; session B starts after it.
    store
        .write_session_updates(&[
            update("a", -10, -10, (100, 10), (100, 10), false),
            update("a", -10, 10, (150, 30), (50, 20), true),
        ])
        .await
        .unwrap();
    store
        .write_session_updates(&[update("b", 60, 60, (5, 5), (5, 5), false)])
        .await
        .unwrap();

    let live = store
        .live_session(tenant, iccid)
        .await
        .unwrap()
        .expect("a live session");
    assert_eq!(
        (live.session_id.as_str(), live.total_in, live.terminated),
        ("b", 5, false)
    );
    assert_eq!(live.ip_address.as_deref(), Some("10.0.0.1"));
    assert!(
        store
            .live_session(TenantId::new(), iccid)
            .await
            .unwrap()
            .is_none(),
        "tenants do not mix"
    );

    let states = store
        .session_states(&[
            (iccid.into(), "a".into()),
            (iccid.into(), "b".into()),
            (iccid.into(), "nope".into()),
        ])
        .await
        .unwrap();
    let a = states.iter().find(|s| s.session_id == "a").expect("state of a");
    assert_eq!((a.total_in, a.total_out, a.terminated), (150, 30, true));
    assert_eq!(a.started_at, midnight - Duration::minutes(10));
    assert_eq!(a.event_time, midnight + Duration::minutes(10));
    assert_eq!(states.len(), 2);

    let span = (midnight - Duration::days(1), midnight + Duration::days(1));
    // History: every counted update, newest first, paged and filtered by network.
    let history = store
        .session_history(
            tenant,
            iccid,
            &HistoryQuery {
                mcc_mnc: None,
                from: span.0,
                to: span.1,
                before: None,
                limit: 2,
            },
        )
        .await
        .unwrap();
    let seen: Vec<_> = history
        .iter()
        .map(|u| (u.session_id.as_str(), u.delta_in))
        .collect();
    assert_eq!(seen, vec![("b", 5), ("a", 50)]);
    let last = history.last().map(|u| (u.event_time, u.session_id.clone()));
    let rest = store
        .session_history(
            tenant,
            iccid,
            &HistoryQuery {
                mcc_mnc: None,
                from: span.0,
                to: span.1,
                before: last,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.iter().map(|u| u.delta_in).collect::<Vec<_>>(), vec![100]);
    assert!(store
        .session_history(
            tenant,
            iccid,
            &HistoryQuery {
                mcc_mnc: Some("234-15".into()),
                from: span.0,
                to: span.1,
                before: None,
                limit: 10
            }
        )
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .session_history(
                tenant,
                iccid,
                &HistoryQuery {
                    mcc_mnc: Some("262-01".into()),
                    from: span.0,
                    to: span.1,
                    before: None,
                    limit: 10
                }
            )
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(store
        .session_history(
            TenantId::new(),
            iccid,
            &HistoryQuery {
                mcc_mnc: None,
                from: span.0,
                to: span.1,
                before: None,
                limit: 10
            }
        )
        .await
        .unwrap()
        .is_empty());
    let hourly = store
        .sim_usage(tenant, iccid, span.0, span.1, Granularity::Hour)
        .await
        .unwrap();
    let hours: Vec<_> = hourly
        .iter()
        .map(|p| (p.period, p.bytes_in, p.bytes_out))
        .collect();
    assert_eq!(
        hours,
        vec![
            (midnight - Duration::hours(1), 100, 10),
            (midnight, 50, 20),
            (midnight + Duration::hours(1), 5, 5)
        ]
    );
    let daily = store
        .sim_usage(tenant, iccid, span.0, span.1, Granularity::Day)
        .await
        .unwrap();
    let days: Vec<_> = daily
        .iter()
        .map(|p| (p.period, p.bytes_in, p.bytes_out))
        .collect();
    assert_eq!(
        days,
        vec![(midnight - Duration::days(1), 100, 10), (midnight, 55, 25)],
        "midnight splits the session"
    );
    for g in [Granularity::Month, Granularity::Year] {
        let points = store.sim_usage(tenant, iccid, span.0, span.1, g).await.unwrap();
        assert_eq!(points.iter().map(|p| p.bytes_in).sum::<u64>(), 155, "{g:?}");
        assert!(points
            .iter()
            .all(|p| p.period == period_start(p.period, g) && p.mcc_mnc == "262-01"));
    }
    let tenant_days = store
        .daily_usage(
            tenant,
            (midnight - Duration::days(1)).date_naive(),
            midnight.date_naive(),
        )
        .await
        .unwrap();
    let summary: Vec<_> = tenant_days
        .iter()
        .map(|d| (d.bytes_up, d.bytes_down, d.sims))
        .collect();
    assert_eq!(
        summary,
        vec![(100, 10, 1), (55, 25, 1)],
        "the daily cube is fed too"
    );
}

#[tokio::test]
async fn usage_contract_on_embedded() {
    let store = EmbeddedUsage::open(&temp_dir().join("usage.sqlite"))
        .await
        .unwrap();
    contract(&store).await;
    sessions_contract(&store).await;
}

#[tokio::test]
async fn usage_contract_on_clickhouse() {
    let config = clickhouse::database().await;
    let store = ClickHouseUsage::connect(config.clone()).await.unwrap();
    contract(&store).await;
    sessions_contract(&store).await;
    ClickHouseUsage::drop_database(&config).await.unwrap();
}
