use ioto_analytics::{ClickHouseUsage, EmbeddedUsage};
use ioto_domain::ports::{SessionKey, UsageStore};
use ioto_domain::usage::RadioAccessType;
use ioto_domain::{CustomerId, Iccid, MccMnc, TenantId};
use ioto_test_support::clickhouse::{self, sql};
use ioto_test_support::temp_dir;

/// A valid ICCID numbered `n` (the stores read ICCIDs back through their parser).
fn icc(n: u32) -> Iccid {
    Iccid::with_check_digit(&format!("894900000000000{n:04}")).unwrap()
}

fn net(s: &str) -> MccMnc {
    MccMnc::parse(s).unwrap()
}

/// Migrations apply once, in order; the engine answers.
async fn engine_contract(store: &dyn UsageStore) {
    let first = store.migrate().await.unwrap();
    // Migrations 9 and 10 (session states sorted by session), 11 (rated tables keyed by UUID),
    // 12 (cubes behind buffers) and 13 (usage per SIM and day, sorted by SIM) are ClickHouse's
    // alone.
    let last = if store.info().engine == "clickhouse" {
        13
    } else {
        8
    };
    assert_eq!(
        first,
        (1..=last).collect::<Vec<u32>>(),
        "a fresh store applies every migration"
    );
    assert!(
        store.migrate().await.unwrap().is_empty(),
        "migrating twice applies nothing"
    );
    assert!(!store.server_version().await.unwrap().is_empty());
    store.ping().await.unwrap();
}

/// Counted session updates: live state, recovery state and usage cubes follow from one write.
async fn sessions_contract(store: &dyn UsageStore) {
    use chrono::{Duration, Utc};
    use ioto_domain::ports::{period_start, Granularity, HistoryQuery, SessionUpdate};

    let tenant = TenantId::new();
    let customer = Some(CustomerId::new());
    let iccid = &icc(17);
    let midnight = period_start(Utc::now(), Granularity::Day);
    let update =
        |session: &str, started: i64, at: i64, totals: (u64, u64), delta: (u64, u64), terminated: bool| {
            SessionUpdate {
                tenant_id: tenant,
                customer_id: customer,
                iccid: iccid.clone(),
                session_id: session.into(),
                started_at: midnight + Duration::minutes(started),
                event_time: midnight + Duration::minutes(at),
                hour: period_start(midnight + Duration::minutes(at), Granularity::Hour),
                mcc_mnc: net("262-01"),
                rat: RadioAccessType::Lte,
                ip_address: Some("10.0.0.1".parse().unwrap()),
                cell_id: None,
                terminated,
                total_in: totals.0,
                total_out: totals.1,
                delta_in: delta.0,
                delta_out: delta.1,
                imei: None,
            }
        };
    // Session A runs across midnight; session B starts after it.
    let work_before = store.work().await.unwrap();
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
    // ClickHouse counts its own work (server-wide, so other tests' inserts may add to it): the
    // two inserts, at least a part each in `session_updates`, `live_session_states` and
    // `session_activity` (the cubes' views fill buffers, written to their stores once a second),
    // their rows.
    match (store.info().engine, work_before, store.work().await.unwrap()) {
        ("clickhouse", Some(before), Some(after)) => {
            let done = after.since(&before);
            assert!(done.inserts >= 2, "{done:?}");
            assert!(done.parts_written >= 2 * 3, "{done:?}");
            assert!(done.rows_written >= 3 * 2, "{done:?}");
        }
        ("clickhouse", before, after) => panic!("ClickHouse reports its work: {before:?} {after:?}"),
        (_, before, after) => assert_eq!((before, after), (None, None), "the embedded store counts none"),
    }

    let live = store
        .live_session(tenant, iccid)
        .await
        .unwrap()
        .expect("a live session");
    assert_eq!(
        (live.session_id.as_str(), live.total_in, live.terminated),
        ("b", 5, false)
    );
    assert_eq!(
        live.ip_address.map(|ip| ip.to_string()).as_deref(),
        Some("10.0.0.1")
    );
    assert_eq!(
        (live.rat, live.mcc_mnc.to_string().as_str()),
        (RadioAccessType::Lte, "262-01")
    );
    assert!(
        store
            .live_session(TenantId::new(), iccid)
            .await
            .unwrap()
            .is_none(),
        "tenants do not mix"
    );
    // One session ends in the same second the next starts: the open one is live, whichever id
    // sorts first (another tenant's SIMs, so that the usage asserted below stays this tenant's).
    let other = TenantId::new();
    for (n, open, ended) in [(19, "a-starts", "z-ends"), (20, "z-starts", "a-ends")] {
        let sim = icc(n);
        let on = |session: &str, terminated: bool| SessionUpdate {
            tenant_id: other,
            iccid: sim.clone(),
            ..update(session, 30, 30, (1, 1), (1, 1), terminated)
        };
        store
            .write_session_updates(&[on(ended, true), on(open, false)])
            .await
            .unwrap();
        let live = store
            .live_session(other, &sim)
            .await
            .unwrap()
            .expect("a live session");
        assert_eq!(
            (live.session_id.as_str(), live.terminated),
            (open, false),
            "an open session before one that ended in the same second"
        );
    }

    let states = store
        .session_states(&[
            SessionKey {
                iccid: iccid.clone(),
                session_id: "a".into(),
            },
            SessionKey {
                iccid: iccid.clone(),
                session_id: "b".into(),
            },
            SessionKey {
                iccid: iccid.clone(),
                session_id: "nope".into(),
            },
            // The same session id on another SIM is another session.
            SessionKey {
                iccid: icc(18),
                session_id: "a".into(),
            },
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
                mcc_mnc: Some(net("234-15")),
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
                    mcc_mnc: Some(net("262-01")),
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
    // The cubes: what the writes above put in them, read back at once.
    store.flush_pending().await.unwrap();
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
            .all(|p| p.period == period_start(p.period, g) && p.mcc_mnc == net("262-01")));
    }
    // The daily cube (reconciliation's session view) is fed too.
    let tenant_days = store
        .reconciliation(
            tenant,
            &ioto_domain::ports::ReconciliationQuery {
                from: (midnight - Duration::days(1)).date_naive(),
                to: midnight.date_naive(),
                iccid: None,
                customer: None,
                only_differences: false,
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let summary: Vec<_> = tenant_days
        .iter()
        .map(|d| (&d.iccid, d.session_in, d.session_out))
        .collect();
    assert_eq!(summary, vec![(iccid, 100, 10), (iccid, 55, 25)]);
}

/// A session update of `tenant`'s SIM at `at`, adding `delta` bytes in and out.
fn counted(
    tenant: TenantId,
    customer: Option<CustomerId>,
    iccid: Iccid,
    session: &str,
    at: chrono::DateTime<chrono::Utc>,
    delta: u64,
) -> ioto_domain::ports::SessionUpdate {
    use ioto_domain::ports::{period_start, Granularity};
    ioto_domain::ports::SessionUpdate {
        tenant_id: tenant,
        customer_id: customer,
        iccid,
        session_id: session.into(),
        started_at: at,
        event_time: at,
        hour: period_start(at, Granularity::Hour),
        mcc_mnc: net("262-01"),
        rat: RadioAccessType::Lte,
        ip_address: None,
        cell_id: None,
        terminated: false,
        total_in: delta,
        total_out: delta,
        delta_in: delta,
        delta_out: delta,
        imei: None,
    }
}

/// CDRs, the billing cube and reconciliation against the session view; usage per sub-customer.
async fn billing_contract(store: &dyn UsageStore) {
    use chrono::{TimeZone, Utc};
    use ioto_domain::ports::{CdrRecord, Granularity, ReconciliationQuery};

    let tenant = TenantId::new();
    let (c1, c2) = (CustomerId::new(), CustomerId::new());
    let at = |d: u32, h: u32| Utc.with_ymd_and_hms(2026, 10, d, h, 0, 0).unwrap();
    // Session view: SIM 1 uses 100 on the 1st and 40 on the 2nd; SIM 2 uses 7 on the 1st.
    store
        .write_session_updates(&[
            counted(tenant, Some(c1), icc(11), "s1", at(1, 10), 100),
            counted(tenant, Some(c1), icc(11), "s2", at(2, 23), 40),
            counted(tenant, Some(c2), icc(22), "s3", at(1, 5), 7),
            counted(tenant, None, icc(33), "s4", at(1, 6), 3),
        ])
        .await
        .unwrap();
    let cdr = |id: &str, iccid: Iccid, customer, d: u32, bytes: u64| CdrRecord {
        tenant_id: tenant,
        customer_id: customer,
        cdr_id: id.into(),
        iccid,
        start: at(d, 0),
        end: at(d, 23),
        mcc_mnc: net("262-01"),
        bytes_in: bytes,
        bytes_out: bytes,
        rating_group: 10,
    };
    // Billing view: SIM 1 matches on the 1st (two partial CDRs), bills 30 on the 2nd (not 40);
    // SIM 2 has no CDR; SIM 9 has a CDR but no sessions.
    store
        .write_cdrs(&[
            cdr("k1", icc(11), Some(c1), 1, 60),
            cdr("k2", icc(11), Some(c1), 1, 40),
            cdr("k3", icc(11), Some(c1), 2, 30),
            cdr("k4", icc(99), None, 2, 5),
            cdr("k5", icc(33), None, 1, 3),
        ])
        .await
        .unwrap();
    let mut known = store
        .known_cdrs(&["k1".into(), "k3".into(), "nope".into()])
        .await
        .unwrap();
    known.sort();
    assert_eq!(known, vec!["k1", "k3"], "stored CDR ids are recognised");

    let query = ReconciliationQuery {
        from: at(1, 0).date_naive(),
        to: at(2, 0).date_naive(),
        iccid: None,
        customer: None,
        only_differences: false,
        after: None,
        limit: 100,
    };
    store.flush_pending().await.unwrap();
    let rows = store.reconciliation(tenant, &query).await.unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.day.to_string(),
                r.iccid.clone(),
                r.session_in,
                r.cdr_in,
                r.cdr_out,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("2026-10-01".into(), icc(11), 100, 100, 100),
            ("2026-10-01".into(), icc(22), 7, 0, 0),
            ("2026-10-01".into(), icc(33), 3, 3, 3),
            ("2026-10-02".into(), icc(11), 40, 30, 30),
            ("2026-10-02".into(), icc(99), 0, 5, 5),
        ]
    );
    // Paged by (day, iccid): the pages together are the whole answer, in order.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .reconciliation(
                tenant,
                &ReconciliationQuery {
                    after: after.clone(),
                    limit: 2,
                    ..query.clone()
                },
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.day, last.iccid.clone()));
        paged.extend(page);
    }
    assert_eq!(paged, rows, "keyset pages");
    let diffs = store
        .reconciliation(
            tenant,
            &ReconciliationQuery {
                only_differences: true,
                ..query.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(diffs.len(), 3, "only the SIM-days that differ: {diffs:?}");
    let one = store
        .reconciliation(
            tenant,
            &ReconciliationQuery {
                iccid: Some(icc(11)),
                customer: Some(c1),
                ..query.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(one.len(), 2);
    assert!(store
        .reconciliation(TenantId::new(), &query)
        .await
        .unwrap()
        .is_empty());

    // Session usage per sub-customer.
    let points = store
        .customer_usage(tenant, None, at(1, 0), at(3, 0), Granularity::Day)
        .await
        .unwrap();
    let got: Vec<_> = points
        .iter()
        .map(|p| (p.period.date_naive().to_string(), p.customer_id, p.bytes_in))
        .collect();
    let mut want = vec![
        ("2026-10-01".to_owned(), Some(c1), 100),
        ("2026-10-01".to_owned(), Some(c2), 7),
        ("2026-10-01".to_owned(), None, 3),
        ("2026-10-02".to_owned(), Some(c1), 40),
    ];
    want.sort();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(got_sorted, want);
    let month = store
        .customer_usage(tenant, Some(c1), at(1, 0), at(3, 0), Granularity::Month)
        .await
        .unwrap();
    assert_eq!(
        month
            .iter()
            .map(|p| (p.period, p.customer_id, p.bytes_in))
            .collect::<Vec<_>>(),
        vec![(at(1, 0), Some(c1), 140)]
    );
    let hours = store
        .customer_usage(tenant, Some(c2), at(1, 0), at(2, 0), Granularity::Hour)
        .await
        .unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!(hours[0].period, at(1, 5));
}

/// Telemetry storage, and retention of session data and readings.
async fn telemetry_and_retention_contract(store: &dyn UsageStore) {
    use chrono::{Duration, DurationRound, Utc};
    use ioto_domain::usage::TelemetryReading;
    use ioto_domain::DeviceId;

    let tenant = TenantId::new();
    let device = DeviceId::new();
    let now = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let reading = |at, t: f64| TelemetryReading {
        device_id: device,
        at,
        temperature_c: Some(t),
        humidity_pct: None,
        battery_pct: Some(80.0),
        light_lux: None,
        latitude: Some(52.5),
        longitude: Some(13.4),
    };
    let old = now - Duration::days(150);
    store
        .write_telemetry(&[
            (tenant, reading(now - Duration::minutes(2), 20.0)),
            (tenant, reading(now - Duration::minutes(1), 21.0)),
            (tenant, reading(now, 22.5)),
            (tenant, reading(old, 5.0)),
        ])
        .await
        .unwrap();
    // The same reading delivered again (MQTT QoS 1) is kept once.
    store
        .write_telemetry(&[(tenant, reading(now, 22.5))])
        .await
        .unwrap();
    let got = store
        .device_telemetry(
            tenant,
            device,
            now - Duration::hours(1),
            now + Duration::minutes(1),
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|r| r.temperature_c).collect::<Vec<_>>(),
        vec![Some(20.0), Some(21.0), Some(22.5)],
        "oldest first, each reading once"
    );
    assert_eq!(got[2], reading(now, 22.5), "every measurement round-trips");
    let newest = store
        .device_telemetry(
            tenant,
            device,
            now - Duration::hours(1),
            now + Duration::minutes(1),
            2,
        )
        .await
        .unwrap();
    assert_eq!(
        newest.iter().map(|r| r.temperature_c).collect::<Vec<_>>(),
        vec![Some(21.0), Some(22.5)],
        "a limit keeps the newest"
    );
    assert!(store
        .device_telemetry(TenantId::new(), device, now - Duration::hours(1), now, 10)
        .await
        .unwrap()
        .is_empty());

    // Retention: session data older than 7 days and readings older than 90 go.
    let iccid = icc(44);
    store
        .write_session_updates(&[
            counted(tenant, None, iccid.clone(), "old", now - Duration::days(9), 1),
            counted(tenant, None, iccid.clone(), "new", now - Duration::hours(1), 1),
        ])
        .await
        .unwrap();
    let keys = ["old", "new"].map(|s| SessionKey {
        iccid: iccid.clone(),
        session_id: s.to_owned(),
    });
    assert_eq!(store.session_states(&keys).await.unwrap().len(), 2);
    let dropped = store.drop_expired(now).await.unwrap();
    let left: Vec<String> = store
        .session_states(&keys)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    let (ttl_server, _) = if store.info().engine == "clickhouse" {
        ioto_analytics::parse_version(&store.server_version().await.unwrap())
    } else {
        (0, 0)
    };
    if ttl_server < 19 {
        // No TTL on the server (or the embedded store): expired data goes now.
        assert!(!dropped.is_empty(), "something expired was dropped");
        assert_eq!(
            left,
            vec!["new"],
            "the 9-day-old session went, the recent one stays"
        );
        let all = store
            .device_telemetry(
                tenant,
                device,
                old - Duration::days(1),
                now + Duration::minutes(1),
                100,
            )
            .await
            .unwrap();
        assert_eq!(all.len(), 3, "the 150-day-old reading went");
    } else {
        assert!(dropped.is_empty(), "servers with TTL expire data themselves");
    }
    assert!(
        store.drop_expired(now).await.unwrap().is_empty(),
        "nothing more to drop"
    );
}

/// Usage read while it is being written only grows, in every view, and all of it shows within
/// seconds. (Reads of ClickHouse's Buffer tables, which put the cubes' rows in memory for a
/// second, missed the rows a flush moved while the read ran: a day's total came out short of
/// what the same view had shown a moment before.)
async fn reads_while_writing_contract(store: &dyn UsageStore) {
    use chrono::{Duration, Utc};
    use ioto_domain::ports::{period_start, Granularity, ReconciliationQuery, SessionUpdate};
    use std::time::Instant;

    let tenant = TenantId::new();
    let customer = Some(CustomerId::new());
    let sims: Vec<Iccid> = (40..44).map(icc).collect();
    let at = period_start(Utc::now(), Granularity::Hour);
    let (from, to) = (at - Duration::days(1), at + Duration::days(1));
    const BATCHES: u64 = 250;
    const BYTES: u64 = 1_000;
    // One new session of `BYTES` per SIM and batch, a batch every 20 ms (about five seconds).
    let write = async {
        for n in 0..BATCHES {
            let batch: Vec<SessionUpdate> = sims
                .iter()
                .map(|iccid| SessionUpdate {
                    tenant_id: tenant,
                    customer_id: customer,
                    iccid: iccid.clone(),
                    session_id: format!("s{n}"),
                    started_at: at,
                    event_time: at,
                    hour: at,
                    mcc_mnc: net("262-01"),
                    rat: RadioAccessType::Lte,
                    ip_address: None,
                    cell_id: None,
                    terminated: true,
                    total_in: BYTES,
                    total_out: 0,
                    delta_in: BYTES,
                    delta_out: 0,
                    imei: None,
                })
                .collect();
            store.write_session_updates(&batch).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    // What three views show: the SIM's hours, the sub-customers' days and the reconciliation's
    // session side (three cubes).
    let read = || async {
        let hourly: u64 = store
            .sim_usage(tenant, &sims[0], from, to, Granularity::Hour)
            .await
            .unwrap()
            .iter()
            .map(|p| p.bytes_in)
            .sum();
        let daily: u64 = store
            .customer_usage(tenant, None, from, to, Granularity::Day)
            .await
            .unwrap()
            .iter()
            .map(|p| p.bytes_in)
            .sum();
        let reconciled: u64 = store
            .reconciliation(
                tenant,
                &ReconciliationQuery {
                    from: from.date_naive(),
                    to: to.date_naive(),
                    iccid: None,
                    customer: None,
                    only_differences: false,
                    after: None,
                    limit: 100,
                },
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.session_in)
            .sum();
        [hourly, daily, reconciled]
    };
    let written = std::cell::Cell::new(false);
    let watch = async {
        let mut last = [0; 3];
        let mut reads = 0;
        while !written.get() {
            let now = read().await;
            for (view, (was, is)) in ["SIM by hour", "sub-customers by day", "reconciliation"]
                .iter()
                .zip(last.iter().zip(now))
            {
                assert!(is >= *was, "{view}: {is} bytes after {was} (read {reads})");
            }
            last = now;
            reads += 1;
        }
        reads
    };
    let (_, reads) = tokio::join!(
        async {
            write.await;
            written.set(true);
        },
        watch
    );
    assert!(reads > 10, "reads ran alongside the writes ({reads})");
    let all = BATCHES * BYTES;
    let want = [all, all * sims.len() as u64, all * sims.len() as u64];
    let started = Instant::now();
    while read().await != want {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "every byte shows within 10 s: {:?} of {want:?}",
            read().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn usage_contract_on_embedded() {
    let store = EmbeddedUsage::open(&temp_dir().join("usage.sqlite"))
        .await
        .unwrap();
    engine_contract(&store).await;
    sessions_contract(&store).await;
    billing_contract(&store).await;
    telemetry_and_retention_contract(&store).await;
    reads_while_writing_contract(&store).await;
}

#[tokio::test]
async fn usage_contract_on_clickhouse() {
    let config = clickhouse::database().await;
    let store = ClickHouseUsage::connect(config.clone()).await.unwrap();
    engine_contract(&store).await;
    sessions_contract(&store).await;
    billing_contract(&store).await;
    telemetry_and_retention_contract(&store).await;
    reads_while_writing_contract(&store).await;
    ClickHouseUsage::drop_database(&config).await.unwrap();
}

/// The statements of ClickHouse migration `version`, as a server without TTL runs them.
fn clickhouse_statements(version: u32) -> Vec<String> {
    ioto_migrations::CLICKHOUSE
        .iter()
        .find(|m| m.version == version)
        .unwrap_or_else(|| panic!("no ClickHouse migration {version}"))
        .statements(false)
}

/// A store with the ClickHouse migrations up to `last` applied, as an older build left it.
async fn store_at_migration(
    config: &ioto_analytics::ClickHouseConfig,
    last: u32,
) -> std::sync::Arc<dyn UsageStore> {
    sql(
        config,
        "CREATE TABLE ioto_schema_migrations (version UInt32, name String, applied_at DateTime) \
         ENGINE = MergeTree ORDER BY version",
    )
    .await;
    for m in ioto_migrations::CLICKHOUSE.iter().filter(|m| m.version <= last) {
        for statement in m.statements_in(false, &config.database) {
            sql(config, &statement).await;
        }
        sql(
            config,
            &format!(
                "INSERT INTO ioto_schema_migrations VALUES ({}, '{}', now())",
                m.version, m.name
            ),
        )
        .await;
    }
    std::sync::Arc::new(ClickHouseUsage::connect(config.clone()).await.unwrap())
}

/// Migration 9 moves the sessions' latest states to a table sorted by session (for the ingest
/// worker's progress lookups) and migration 10 drops the old one: what a store held before is
/// still each SIM's live session and still the worker's progress after them, and updates written
/// after them reach the new table — also when migration 9 had stopped after any of its statements
/// and is run again from its first.
#[tokio::test]
async fn live_sessions_written_before_migration_9_survive_it_on_clickhouse() {
    let statements = clickhouse_statements(9);
    for done in 0..=statements.len() {
        migrate_from_8_with_sessions(&statements[..done]).await;
    }
}

/// A store as migration 8 left it, holding sessions, with `done` statements of migration 9
/// applied by a run that stopped there; then `migrate()` as a restart runs it.
async fn migrate_from_8_with_sessions(done: &[String]) {
    use chrono::{Duration, Utc};
    use ioto_domain::ports::{period_start, Granularity, SessionUpdate};

    let config = clickhouse::database().await;
    let store = store_at_migration(&config, 8).await;
    let tenant = TenantId::new();
    let hour = period_start(Utc::now(), Granularity::Hour);
    let update = |iccid: &Iccid, session: &str, at: i64, total: u64, terminated: bool| SessionUpdate {
        tenant_id: tenant,
        customer_id: None,
        iccid: iccid.clone(),
        session_id: session.into(),
        started_at: hour - Duration::minutes(30),
        event_time: hour - Duration::minutes(30) + Duration::minutes(at),
        hour,
        mcc_mnc: net("262-01"),
        rat: RadioAccessType::Lte,
        ip_address: None,
        cell_id: None,
        terminated,
        total_in: total,
        total_out: 0,
        delta_in: total,
        delta_out: 0,
        imei: None,
    };
    let (one, two) = (icc(61), icc(62));
    store
        .write_session_updates(&[
            update(&one, "s1", 0, 10, false),
            update(&one, "s1", 5, 40, true),
            update(&one, "s2", 10, 7, false),
            update(&two, "s1", 1, 3, false),
        ])
        .await
        .unwrap();
    for statement in done {
        sql(&config, statement).await;
    }
    // Written while migration 9 was stopped midway.
    store
        .write_session_updates(&[update(&two, "s2", 0, 5, false)])
        .await
        .unwrap();

    let after = format!("after {} statements of migration 9", done.len());
    assert_eq!(store.migrate().await.unwrap(), vec![9, 10, 11, 12, 13], "{after}");
    let live = |iccid: Iccid| {
        let store = std::sync::Arc::clone(&store);
        async move {
            let s = store
                .live_session(tenant, &iccid)
                .await
                .unwrap()
                .expect("a live session");
            (s.session_id, s.total_in, s.terminated)
        }
    };
    assert_eq!(live(one.clone()).await, ("s2".to_owned(), 7, false), "{after}");
    assert_eq!(
        live(two.clone()).await,
        ("s1".to_owned(), 3, false),
        "same session id, other SIM; {after}"
    );
    let key = |iccid: &Iccid, session: &str| SessionKey {
        iccid: iccid.clone(),
        session_id: session.into(),
    };
    let mut progress: Vec<(String, String, u64, bool)> = store
        .session_states(&[
            key(&one, "s1"),
            key(&one, "s2"),
            key(&one, "s3"),
            key(&two, "s1"),
            key(&two, "s2"),
        ])
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.iccid.to_string(), s.session_id, s.total_in, s.terminated))
        .collect();
    progress.sort();
    assert_eq!(
        progress,
        vec![
            (one.to_string(), "s1".into(), 40, true),
            (one.to_string(), "s2".into(), 7, false),
            (two.to_string(), "s1".into(), 3, false),
            (two.to_string(), "s2".into(), 5, false),
        ],
        "{after}"
    );

    // Written after the migrations: the view feeds the new table.
    store
        .write_session_updates(&[update(&two, "s1", 20, 9, true)])
        .await
        .unwrap();
    assert_eq!(live(two.clone()).await, ("s1".to_owned(), 9, true), "{after}");
    ClickHouseUsage::drop_database(&config).await.unwrap();
}

/// An insert into `session_updates` still running when migration 9 starts — begun before the new
/// table's view existed, so it writes through the old view only — reaches the new table too.
#[tokio::test]
async fn an_insert_in_flight_during_migration_9_reaches_the_new_table_on_clickhouse() {
    let config = clickhouse::database().await;
    let store = store_at_migration(&config, 8).await;
    let tenant = TenantId::new();
    // A million updates in one statement: several seconds through the eight tables it feeds.
    let insert = {
        let config = config.clone();
        let statement = format!(
            "INSERT INTO session_updates SELECT '{tenant}', '', \
             concat('8949', toString(1000000000000000 + number % 1000)), toString(number), now(), now(), \
             toStartOfHour(now()), today(), toStartOfMonth(today()), '262-01', 'LTE', '', '', 0, \
             number, 0, number, 0 FROM system.numbers LIMIT 1000000"
        );
        tokio::spawn(async move { sql(&config, &statement).await })
    };
    let running = format!(
        "SELECT count() FROM system.processes WHERE query LIKE 'INSERT INTO session_updates%{tenant}%'"
    );
    let started = std::time::Instant::now();
    while sql(&config, &running).await.trim() == "0" {
        assert!(
            !insert.is_finished(),
            "the insert ended before it was seen running"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the insert never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(store.migrate().await.unwrap(), vec![9, 10, 11, 12, 13]);
    insert.await.unwrap();
    let sessions = |table: &str| format!("SELECT uniqExact(iccid, session_id) FROM {table}");
    assert_eq!(sql(&config, &sessions("session_updates")).await.trim(), "1000000");
    assert_eq!(
        sql(&config, &sessions("live_session_states")).await.trim(),
        "1000000",
        "every session of the insert that was running has its state in the new table"
    );
    ClickHouseUsage::drop_database(&config).await.unwrap();
}

/// Migration 11 stores the rated tables' run, tenant and sub-customer ids as `UUID`s (the kind
/// as an `Enum8`): runs rated before it read the same after it — sums by sub-customer (none
/// included) and by tenant, the records, the access fees, another run kept apart — also when it
/// had stopped after any of its statements and is run again from its first.
#[tokio::test]
async fn rated_runs_stored_before_migration_11_survive_it_on_clickhouse() {
    let statements = clickhouse_statements(11);
    for done in 0..=statements.len() {
        migrate_from_10_with_rated_runs(&statements[..done]).await;
    }
}

async fn migrate_from_10_with_rated_runs(done: &[String]) {
    use futures::TryStreamExt;
    use ioto_domain::billing::money::Cost;
    use ioto_domain::ports::billing::{FeeSums, RatedDimension, RatedQuery, RatedSums};

    let config = clickhouse::database().await;
    let store = store_at_migration(&config, 10).await;
    let (tenant, customer) = (TenantId::new(), CustomerId::new());
    let (run, other_run) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let (one, two) = (icc(71), icc(72));
    sql(
        &config,
        &format!(
            "INSERT INTO rated_usage VALUES \
             ('{run}', '{tenant}', 'RETAIL', '{customer}', '{one}', '2026-03-01', '262-01', 'EU', '', 2, 100, 50, 2048, 1.5), \
             ('{run}', '{tenant}', 'RETAIL', '', '{two}', '2026-03-02', '262-02', 'EU', 'iot', 1, 10, 5, 1024, 0.000000000001), \
             ('{other_run}', '{tenant}', 'SUPPLIER', '', '{two}', '2026-03-02', '262-02', 'EU', '', 1, 1, 1, 1024, 7)"
        ),
    )
    .await;
    sql(
        &config,
        &format!(
            "INSERT INTO rated_fees VALUES \
             ('{run}', '{tenant}', 'RETAIL', '{customer}', '{one}', '2026-03-01', '', 2), \
             ('{run}', '{tenant}', 'RETAIL', '', '{two}', '2026-03-01', 'iot', 0.5)"
        ),
    )
    .await;
    for statement in done {
        sql(&config, statement).await;
    }
    let after = format!("after {} statements of migration 11", done.len());
    assert_eq!(store.migrate().await.unwrap(), vec![11, 12, 13], "{after}");

    let types = sql(
        &config,
        "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() \
         AND table IN ('rated_usage', 'rated_fees') AND name IN ('run_id', 'tenant_id', 'kind', 'customer_id') \
         ORDER BY table, name FORMAT TSV",
    )
    .await;
    let kind = "Enum8(\\'RETAIL\\' = 1, \\'SUPPLIER\\' = 2)";
    assert_eq!(
        types,
        format!(
            "rated_fees\tcustomer_id\tUUID\nrated_fees\tkind\t{kind}\nrated_fees\trun_id\tUUID\nrated_fees\ttenant_id\tUUID\n\
             rated_usage\tcustomer_id\tUUID\nrated_usage\tkind\t{kind}\nrated_usage\trun_id\tUUID\nrated_usage\ttenant_id\tUUID\n"
        ),
        "{after}"
    );
    assert_eq!(
        sql(
            &config,
            "SELECT toString(run_id), kind, count() FROM rated_usage GROUP BY run_id, kind ORDER BY kind FORMAT TSV"
        )
        .await,
        format!("{run}\tRETAIL\t2\n{other_run}\tSUPPLIER\t1\n"),
        "{after}"
    );
    let tables = sql(
        &config,
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE 'rated%' ORDER BY name FORMAT TSV",
    )
    .await;
    assert_eq!(
        tables, "rated_fees\nrated_usage\n",
        "no table of the copy is left; {after}"
    );

    let query = |by| RatedQuery {
        tenant,
        runs: vec![run],
        customer: None,
        by,
    };
    // Costs in 10⁻¹² units.
    let sums = |records, bytes_in, bytes_out, rounded_bytes, cost: i128| RatedSums {
        records,
        bytes_in,
        bytes_out,
        rounded_bytes,
        cost: Cost::from_units(cost),
    };
    const UNIT: i128 = 1_000_000_000_000;
    assert_eq!(
        store.rated_usage(&query(RatedDimension::Customer)).await.unwrap(),
        vec![
            (String::new(), sums(1, 10, 5, 1024, 1)),
            (customer.to_string(), sums(2, 100, 50, 2048, 3 * UNIT / 2)),
        ],
        "{after}"
    );
    assert_eq!(
        store.rated_usage(&query(RatedDimension::Tenant)).await.unwrap(),
        vec![(tenant.to_string(), sums(3, 110, 55, 3072, 3 * UNIT / 2 + 1))],
        "{after}"
    );
    assert_eq!(
        store
            .rated_usage(&RatedQuery {
                customer: Some(customer),
                ..query(RatedDimension::Sim)
            })
            .await
            .unwrap(),
        vec![(one.to_string(), sums(2, 100, 50, 2048, 3 * UNIT / 2))],
        "{after}"
    );
    assert_eq!(
        store.rated_fees(&query(RatedDimension::Customer)).await.unwrap(),
        vec![
            (
                String::new(),
                FeeSums {
                    charges: 1,
                    fees: Cost::from_units(UNIT / 2)
                }
            ),
            (
                customer.to_string(),
                FeeSums {
                    charges: 1,
                    fees: Cost::from_units(2 * UNIT)
                }
            ),
        ],
        "{after}"
    );
    let records: Vec<_> = store
        .rated_records(tenant, run, None, 10)
        .try_concat()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.iccid, r.customer_id, r.tariff_plan, r.cost.to_string()))
        .collect();
    assert_eq!(
        records,
        vec![
            (
                one.to_string(),
                customer.to_string(),
                String::new(),
                "1.50".to_owned()
            ),
            (
                two.to_string(),
                String::new(),
                "iot".to_owned(),
                "0.000000000001".to_owned()
            ),
        ],
        "{after}"
    );
    // The other run (a supplier card's) is kept apart, and deleted alone.
    assert_eq!(
        store
            .rated_usage(&RatedQuery {
                runs: vec![other_run],
                ..query(RatedDimension::Tenant)
            })
            .await
            .unwrap(),
        vec![(tenant.to_string(), sums(1, 1, 1, 1024, 7 * UNIT))],
        "{after}"
    );
    store.discard_runs(tenant, &[other_run]).await.unwrap();
    let ch = ClickHouseUsage::connect(config.clone()).await.unwrap();
    ch.settle_mutations().await.unwrap();
    let other = RatedQuery {
        runs: vec![other_run],
        ..query(RatedDimension::Tenant)
    };
    assert_eq!(store.rated_usage(&other).await.unwrap(), vec![], "{after}");
    assert_eq!(
        store.rated_usage(&query(RatedDimension::Tenant)).await.unwrap(),
        vec![(tenant.to_string(), sums(3, 110, 55, 3072, 3 * UNIT / 2 + 1))],
        "the run kept; {after}"
    );
    ClickHouseUsage::drop_database(&config).await.unwrap();
}

/// A two-table `RENAME` of migration 11 stopped between its halves (18.16 does not make it all or
/// nothing) leaves `rated_usage` missing and the old rows only in `rated_usage_string`: running
/// the migration again stops before it drops anything, naming the missing table.
#[tokio::test]
async fn migration_11_stops_without_dropping_when_its_rename_stopped_halfway_on_clickhouse() {
    let config = clickhouse::database().await;
    let store = store_at_migration(&config, 10).await;
    let (run, tenant) = (uuid::Uuid::new_v4(), TenantId::new());
    sql(
        &config,
        &format!(
            "INSERT INTO rated_usage VALUES ('{run}', '{tenant}', 'RETAIL', '', '{}', '2026-03-01', '262-01', 'EU', '', 1, 1, 1, 1024, 1)",
            icc(73)
        ),
    )
    .await;
    sql(&config, "RENAME TABLE rated_usage TO rated_usage_string").await;
    let err = store.migrate().await.unwrap_err().to_string();
    assert!(err.contains("rated_usage doesn't exist"), "{err}");
    assert_eq!(
        sql(&config, "SELECT count() FROM rated_usage_string")
            .await
            .trim(),
        "1",
        "the only copy is kept"
    );
    assert_eq!(
        sql(
            &config,
            "SELECT count() FROM ioto_schema_migrations WHERE version = 11"
        )
        .await
        .trim(),
        "0",
        "not recorded as applied"
    );
    // The way back the migration names: the table renamed by hand, then migrated.
    sql(&config, "RENAME TABLE rated_usage_string TO rated_usage").await;
    assert_eq!(store.migrate().await.unwrap(), vec![11, 12, 13]);
    assert_eq!(
        sql(
            &config,
            &format!("SELECT count() FROM rated_usage WHERE run_id = '{run}' AND tenant_id = '{tenant}'")
        )
        .await
        .trim(),
        "1",
        "the row, copied"
    );
    ClickHouseUsage::drop_database(&config).await.unwrap();
}

/// An update of an LTE session on `network` started at `times.0`, sent at `times.1` (its hour
/// that of the update), counting `counts.0` bytes in so far of which `counts.1` are new (twice
/// as many out); no sub-customer.
fn lte_update(
    tenant: TenantId,
    iccid: &Iccid,
    session: &str,
    network: &str,
    times: (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
    (total, delta): (u64, u64),
) -> ioto_domain::ports::SessionUpdate {
    ioto_domain::ports::SessionUpdate {
        tenant_id: tenant,
        customer_id: None,
        iccid: iccid.clone(),
        session_id: session.into(),
        started_at: times.0,
        event_time: times.1,
        hour: times.1,
        mcc_mnc: net(network),
        rat: RadioAccessType::Lte,
        ip_address: None,
        cell_id: None,
        terminated: false,
        total_in: total,
        total_out: total * 2,
        delta_in: delta,
        delta_out: delta * 2,
        imei: None,
    }
}

/// Migration 12 puts the eight cubes behind buffers of their names: usage counted before it is
/// still read after it, usage written while it was stopped midway and after it is read at once
/// (the buffer's memory and its store together), and within seconds the stores hold every byte
/// — also when it had stopped after any of its statements and is run again from its first.
#[tokio::test]
async fn cubes_written_before_migration_12_survive_it_on_clickhouse() {
    let statements = clickhouse_statements(12).len();
    for done in 0..=statements {
        migrate_from_11_with_usage(done).await;
    }
}

async fn migrate_from_11_with_usage(done: usize) {
    use chrono::{Duration, Utc};
    use ioto_domain::ports::{period_start, Granularity};

    let config = clickhouse::database().await;
    let store = store_at_migration(&config, 11).await;
    let (tenant, customer) = (TenantId::new(), CustomerId::new());
    let hour = period_start(Utc::now(), Granularity::Hour);
    let (one, two) = (icc(81), icc(82));
    let update = |iccid: &Iccid, session: &str, total: u64, delta: u64| {
        let at = hour + Duration::seconds(i64::try_from(total).unwrap());
        let mut u = lte_update(tenant, iccid, session, "262-01", (hour, at), (total, delta));
        u.customer_id = (iccid == &one).then_some(customer);
        u.hour = hour;
        u
    };
    store
        .write_session_updates(&[update(&one, "s1", 100, 100), update(&two, "s1", 10, 10)])
        .await
        .unwrap();
    let migration = ioto_migrations::CLICKHOUSE
        .iter()
        .find(|m| m.version == 12)
        .unwrap();
    for statement in &migration.statements_in(false, &config.database)[..done] {
        sql(&config, statement).await;
    }
    // Written while migration 12 was stopped midway.
    store
        .write_session_updates(&[update(&one, "s1", 130, 30)])
        .await
        .unwrap();
    let after = format!("after {done} statements of migration 12");
    assert_eq!(store.migrate().await.unwrap(), vec![12, 13], "{after}");
    // Written after it.
    store
        .write_session_updates(&[update(&two, "s1", 15, 5)])
        .await
        .unwrap();

    // The buffers reach their stores by themselves, within a second or two (reads go to the
    // stores); the other cubes' buffers are written at once, so that every view reads alike.
    let stored = "SELECT sum(bytes_in) FROM usage_hourly_store";
    let started = std::time::Instant::now();
    while sql(&config, stored).await.trim() != "145" {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "the hourly cube's store holds {} bytes in, not 145, {after}",
            sql(&config, stored).await.trim()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    store.flush_pending().await.unwrap();

    let sim_bytes = |iccid: Iccid, granularity: Granularity| {
        let store = std::sync::Arc::clone(&store);
        async move {
            store
                .sim_usage(tenant, &iccid, hour, hour + Duration::hours(1), granularity)
                .await
                .unwrap()
                .iter()
                .map(|p| (p.bytes_in, p.bytes_out))
                .fold((0, 0), |a, p| (a.0 + p.0, a.1 + p.1))
        }
    };
    assert_eq!(
        sim_bytes(one.clone(), Granularity::Hour).await,
        (130, 260),
        "{after}"
    );
    assert_eq!(
        sim_bytes(two.clone(), Granularity::Hour).await,
        (15, 30),
        "{after}"
    );
    assert_eq!(
        sim_bytes(one.clone(), Granularity::Month).await,
        (130, 260),
        "{after}"
    );
    let mut per_customer: Vec<(Option<CustomerId>, u64)> = store
        .customer_usage(tenant, None, hour, hour + Duration::hours(1), Granularity::Day)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.customer_id, p.bytes_in))
        .collect();
    per_customer.sort();
    assert_eq!(per_customer, vec![(None, 15), (Some(customer), 130)], "{after}");

    for cube in ioto_analytics::BUFFERED_CUBES {
        let engine = |table: String| {
            let config = config.clone();
            async move {
                sql(
                    &config,
                    &format!("SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = '{table}'"),
                )
                .await
                .trim()
                .to_owned()
            }
        };
        assert_eq!(engine(cube.to_owned()).await, "Buffer", "{cube}, {after}");
        assert!(
            engine(format!("{cube}_store")).await.ends_with("MergeTree"),
            "{cube}_store, {after}"
        );
        assert_eq!(
            engine(format!("{cube}_incoming")).await,
            "",
            "no {cube}_incoming left, {after}"
        );
    }
    ClickHouseUsage::drop_database(&config).await.unwrap();
}

/// Migration 13 copies the usage counted before it into `sim_daily`, where reads that name their
/// SIMs by day are answered: they answer as the time-sorted cubes do — bytes per SIM, network and
/// day, sessions per day —, also when it had stopped after any of its statements and is run again
/// from its first; usage written after it reaches both.
#[tokio::test]
async fn usage_counted_before_migration_13_reads_the_same_by_sim_on_clickhouse() {
    let statements = clickhouse_statements(13).len();
    for done in 0..=statements {
        migrate_from_12_with_usage(done).await;
    }
}

async fn migrate_from_12_with_usage(done: usize) {
    use chrono::{Duration, NaiveTime, Utc};
    use ioto_domain::analytics::{Cube, CubeFilter, CubeGroup, CubeQuery};

    let config = clickhouse::database().await;
    let store = store_at_migration(&config, 12).await;
    let (tenant, customer) = (TenantId::new(), CustomerId::new());
    let midnight = (Utc::now() - Duration::days(3))
        .date_naive()
        .and_time(NaiveTime::MIN)
        .and_utc();
    let (one, two) = (icc(91), icc(92));
    // A session's update `after` hours into it, the session started `start` hours after the first
    // midnight: its total so far and what the update added (bytes in; twice that out).
    let update =
        |iccid: &Iccid, session: &str, network: &str, start: i64, after: i64, total: u64, delta: u64| {
            let started_at = midnight + Duration::hours(start);
            let event_time = started_at + Duration::hours(after);
            let mut u = lte_update(
                tenant,
                iccid,
                session,
                network,
                (started_at, event_time),
                (total, delta),
            );
            u.customer_id = (iccid == &one).then_some(customer);
            u
        };
    store
        .write_session_updates(&[
            update(&one, "s1", "262-01", 10, 0, 100, 100),
            update(&one, "s1", "262-01", 10, 20, 150, 50),
            update(&one, "s2", "262-02", 36, 0, 7, 7),
            update(&two, "s1", "262-01", 23, 0, 3, 3),
            update(&two, "s1", "262-01", 23, 2, 10, 7),
        ])
        .await
        .unwrap();
    // Left in the hourly cube's buffer: the migration writes it to the store it copies.
    for statement in &ioto_migrations::CLICKHOUSE
        .iter()
        .find(|m| m.version == 13)
        .unwrap()
        .statements_in(false, &config.database)[..done]
    {
        sql(&config, statement).await;
    }
    let after = format!("after {done} statements of migration 13");
    assert_eq!(store.migrate().await.unwrap(), vec![13], "{after}");
    store
        .write_session_updates(&[update(&two, "s3", "262-01", 53, 0, 40, 40)])
        .await
        .unwrap();
    store.flush_pending().await.unwrap();

    assert_eq!(
        sql(
            &config,
            &format!("SELECT sum(bytes_in), sum(bytes_out), sum(sessions) FROM sim_daily_store WHERE tenant_id = '{tenant}'")
        )
        .await
        .trim(),
        "207\t414\t4",
        "every byte and session, once; {after}"
    );
    let read = |cube: Cube, named: bool| {
        let store = std::sync::Arc::clone(&store);
        let iccids = named.then(|| vec![one.clone(), two.clone()]);
        async move {
            let query = CubeQuery {
                cube,
                bounds: (0..=3).map(|d| midnight + Duration::days(d)).collect(),
                group: CubeGroup {
                    sim: true,
                    network: true,
                    ..CubeGroup::default()
                },
                filter: CubeFilter {
                    iccids,
                    ..CubeFilter::default()
                },
                runs: Vec::new(),
                count_sims: false,
            };
            let mut rows: Vec<(String, String, usize, u64, u64, u64)> = store
                .cube_rows(tenant, &query)
                .await
                .unwrap()
                .into_iter()
                .map(|r| {
                    (
                        r.iccid.map(|i| i.to_string()).unwrap_or_default(),
                        r.mcc_mnc.map(|n| n.to_string()).unwrap_or_default(),
                        r.bucket,
                        r.bytes_in,
                        r.bytes_out,
                        r.sessions,
                    )
                })
                .collect();
            rows.sort();
            rows
        }
    };
    let row = |iccid: &Iccid, network: &str, day: usize, bytes: u64, sessions: u64| {
        (
            iccid.to_string(),
            network.to_owned(),
            day,
            bytes,
            bytes * 2,
            sessions,
        )
    };
    let mut expected = vec![
        row(&one, "262-01", 0, 100, 1),
        row(&one, "262-01", 1, 50, 0),
        row(&one, "262-02", 1, 7, 1),
        row(&two, "262-01", 0, 3, 1),
        row(&two, "262-01", 1, 7, 0),
        row(&two, "262-01", 2, 40, 1),
    ];
    expected.sort();
    assert_eq!(
        read(Cube::SessionsHourly, true).await,
        expected,
        "named SIMs, sessions by day; {after}"
    );
    assert_eq!(
        read(Cube::SessionsHourly, false).await,
        expected,
        "the whole tenant, from the hourly cube; {after}"
    );
    let bytes_only: Vec<_> = expected
        .iter()
        .map(|r| (r.0.clone(), r.1.clone(), r.2, r.3, r.4, 0))
        .collect();
    assert_eq!(
        read(Cube::UsageDaily, true).await,
        bytes_only,
        "named SIMs, the daily cube; {after}"
    );
    assert_eq!(
        read(Cube::UsageDaily, false).await,
        bytes_only,
        "the whole tenant, from the daily cube; {after}"
    );
    ClickHouseUsage::drop_database(&config).await.unwrap();
}

/// Processes sharing a Postgres store migrate the usage store one at a time: while another
/// holds the usage-migration lock, `migrate` waits (here on a store with every migration applied,
/// which otherwise migrates in well under the wait), and goes on once the lock is released.
#[tokio::test]
async fn usage_migrations_wait_for_another_process_on_a_shared_postgres_store() {
    use std::time::Duration;

    let url = ioto_test_support::pg::database().await;
    let ch = clickhouse::database().await;
    let mut config = ioto::config::Config {
        data_dir: ioto_test_support::temp_dir(),
        ..Default::default()
    };
    config.database.url = Some(ioto::config::SecretUrl::new(url.clone()));
    config.clickhouse.url = Some(ioto::config::SecretUrl::new(ch.url.clone()));
    config.clickhouse.database = ch.database.clone();
    ioto::engines::migrate(&config).await.unwrap();

    let held = ioto_store::lock_usage_migrations(&ioto_store::StoreLocation::Postgres { url })
        .await
        .unwrap();
    let migrating = tokio::spawn({
        let config = config.clone();
        async move { ioto::engines::migrate(&config).await.map_err(|e| e.to_string()) }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !migrating.is_finished(),
        "migrate went on while another process held the lock"
    );
    drop(held);
    let applied = tokio::time::timeout(Duration::from_secs(30), migrating)
        .await
        .expect("migrate goes on once the lock is released")
        .unwrap()
        .unwrap();
    assert_eq!(applied, Vec::<u32>::new(), "nothing left to apply");
    ClickHouseUsage::drop_database(&ch).await.unwrap();
}
