//! Session ingest on the real stores: simulated sessions processed in batches with redeliveries
//! and restarts count exactly what the sessions moved; bad events become dead letters.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use ioto_analytics::{ClickHouseUsage, EmbeddedUsage};
use ioto_app::ingest::Counted;
use ioto_app::ingest::SessionIngest;
use ioto_domain::ports::{period_start, Granularity, UsageStore};
use ioto_domain::usage::{step, SessionProgress, SessionRollup, Step};
use ioto_ingest::simulator::{SessionPlan, SimEvent};
use ioto_test_support::{clickhouse, temp_dir};

/// Room for two or three sessions' progress.
const TINY_PROGRESS_CACHE: usize = 600;

async fn exactly_once(usage: Arc<dyn UsageStore>) {
    usage.migrate().await.unwrap();
    let (_, fleet, f) = ioto_test_support::factory::postgres_ports().await;
    let tenant = f.tenant("Ingest").await;
    let sims = f.sims(&tenant, None, 3).await;
    // The last midnight at least 4 hours ago: every event (up to 3 hours after it) is in the past,
    // whatever the time of day the test runs at.
    let midnight = period_start(Utc::now() - Duration::hours(4), Granularity::Day);
    let plan = SessionPlan {
        iccids: sims.iter().map(|s| s.iccid.clone()).collect(),
        from: midnight - Duration::hours(3),
        to: midnight + Duration::hours(3),
        bytes_min: 10_000,
        bytes_max: 10_000_000,
        sessions_per_sim: 3,
        update_every: chrono::Duration::minutes(5),
        networks: vec![ioto_domain::identifiers::MccMnc::parse("262-01").unwrap()],
        seed: 11,
    };
    let rollups: Vec<SessionRollup> = plan
        .events()
        .filter_map(|e| match e {
            SimEvent::Rollup(r) => Some(r),
            SimEvent::Cdr(_) => None,
        })
        .collect();
    // What must be counted, per SIM and day, from the pure rules.
    let mut expected: HashMap<(String, NaiveDate), u64> = HashMap::new();
    let mut progress: HashMap<ioto_domain::ports::SessionKey, SessionProgress> = HashMap::new();
    for r in &rollups {
        if let Step::Count { delta, progress: p } = step(progress.get(&r.key()), r).unwrap() {
            *expected
                .entry((r.iccid.to_string(), delta.hour.date_naive()))
                .or_default() += delta.bytes_in;
            progress.insert(r.key(), p);
        }
    }
    assert!(
        expected.keys().any(|(_, d)| *d == midnight.date_naive())
            && expected.keys().any(|(_, d)| *d < midnight.date_naive())
    );

    let mut payloads: Vec<(String, Vec<u8>)> = rollups
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("sessions/0/{i}"), r.to_json().to_string().into_bytes()))
        .collect();
    // Three bad events among them.
    let unknown = {
        let mut r = rollups[0].clone();
        r.iccid = ioto_domain::identifiers::Iccid::with_check_digit("898800000000000999").unwrap();
        r.session_id = "stranger".into();
        r
    };
    payloads.insert(5, ("sessions/0/x1".into(), b"{not json".to_vec()));
    payloads.insert(
        9,
        ("sessions/0/x2".into(), unknown.to_json().to_string().into_bytes()),
    );

    let mut ingest = SessionIngest::new(usage.clone(), fleet.clone());
    let mut dead = Vec::new();
    let batches: Vec<_> = payloads.chunks(7).collect();
    for (k, batch) in batches.iter().enumerate() {
        dead.extend(ingest.process(batch).await.unwrap().dead);
        assert!(ingest.progress_bytes() <= ioto_app::ingest::MAX_PROGRESS_CACHE_BYTES);
        // The broker redelivers the batch just done.
        let again = ingest.process(batch).await.unwrap();
        assert_eq!(again.written, 0, "a redelivered batch counts nothing");
        if k % 4 == 3 {
            // The worker restarts (nothing in memory) and its group replays from an earlier offset.
            ingest = SessionIngest::new(usage.clone(), fleet.clone());
            if k % 8 == 7 {
                // This worker keeps room for a handful of sessions only: its cache starts over
                // batch after batch and progress comes back from the store.
                ingest = ingest.with_progress_limit(TINY_PROGRESS_CACHE);
            } else {
                // This one replays with its filter of stored sessions built (the other before).
                filter_built(&mut ingest).await;
            }
            let replay = ingest.process(batches[k - 1]).await.unwrap();
            assert_eq!(replay.written, 0, "a replay after a restart counts nothing");
        }
    }
    assert!(batches.len() > 8, "some batches ran with the tiny progress cache");
    let reasons: Vec<&str> = dead.iter().map(|d| d.rejection.code()).collect();
    assert_eq!(reasons, ["MALFORMED_JSON", "UNKNOWN_ICCID"]);
    assert_eq!(
        dead[0].payload,
        b"{not json".to_vec(),
        "the original payload travels with it"
    );

    // Counters that go backwards are refused, and the session keeps its count.
    let mut back = rollups
        .iter()
        .rev()
        .find(|r| r.request_type == ioto_domain::usage::RequestType::Update)
        .unwrap()
        .clone();
    // Newer than every event of the plan, and not in the future.
    back.event_timestamp = Utc::now();
    back.total_bytes_in = 0;
    let out = ingest
        .process(&[("sessions/0/x3".into(), back.to_json().to_string().into_bytes())])
        .await
        .unwrap();
    assert_eq!(
        out.dead.iter().map(|d| d.rejection.code()).collect::<Vec<_>>(),
        ["COUNTERS_WENT_BACKWARDS"]
    );

    usage.flush_pending().await.unwrap();
    for sim in &sims {
        let points = usage
            .sim_usage(
                tenant.id,
                &sim.iccid,
                midnight - Duration::days(1),
                midnight + Duration::days(1),
                Granularity::Day,
            )
            .await
            .unwrap();
        for p in points {
            let want = expected
                .get(&(sim.iccid.to_string(), p.period.date_naive()))
                .copied()
                .unwrap_or(0);
            assert_eq!(p.bytes_in, want, "SIM {} on {}", sim.iccid, p.period);
        }
    }
    let total: u64 = expected.values().sum();
    let mut counted = 0;
    for sim in &sims {
        counted += usage
            .sim_usage(
                tenant.id,
                &sim.iccid,
                midnight - Duration::days(1),
                midnight + Duration::days(1),
                Granularity::Day,
            )
            .await
            .unwrap()
            .iter()
            .map(|p| p.bytes_in)
            .sum::<u64>();
    }
    assert_eq!(counted, total, "every byte once");
}

/// Waits until the worker's filter of stored sessions is read from the store.
async fn filter_built(ingest: &mut SessionIngest) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !ingest.filter_ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "the filter of stored sessions was not read within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A rollup of `session` on `sim`, `minutes` after `at`, with `total` bytes in so far.
fn sourced_rollup(
    sim: &ioto_domain::Iccid,
    session: &str,
    at: chrono::DateTime<Utc>,
    minutes: i64,
    total: u64,
) -> (String, Vec<u8>) {
    let body = serde_json::json!({"v": 1, "session_id": session, "iccid": sim.as_str(),
        "event_timestamp": (at + Duration::minutes(minutes)).to_rfc3339(), "mcc_mnc": "262-01",
        "radio_access_type": "LTE", "total_bytes_in": total, "total_bytes_out": 0,
        "request_type": "UPDATE"});
    (
        format!("sessions/0/{session}-{minutes}"),
        body.to_string().into_bytes(),
    )
}

/// Bytes in counted for the tenant on `at`'s day and the next, everything written so far.
async fn tenant_bytes_in(
    usage: &dyn UsageStore,
    tenant: ioto_domain::TenantId,
    at: chrono::DateTime<Utc>,
) -> u64 {
    let from = period_start(at, Granularity::Day);
    usage.flush_pending().await.unwrap();
    usage
        .customer_usage(tenant, None, from, from + Duration::days(2), Granularity::Day)
        .await
        .unwrap()
        .iter()
        .map(|p| p.bytes_in)
        .sum()
}

/// Once its filter of stored sessions is read, a worker asks the usage store only for sessions
/// the store may hold: a session counted before the worker started is recovered (counted on
/// from where it was, not from zero), new sessions are not asked for, and a replay after a
/// restart is recognised whole.
async fn only_sessions_the_store_may_hold_are_looked_up(usage: Arc<dyn UsageStore>) {
    usage.migrate().await.unwrap();
    let (_, fleet, f) = ioto_test_support::factory::postgres_ports().await;
    let tenant = f.tenant("Stored sessions").await;
    let sim = f.sims(&tenant, None, 1).await.remove(0).iccid;
    // Whole seconds, as the stores keep them: a replayed rollup then matches what was stored.
    let at = chrono::SubsecRound::trunc_subsecs(Utc::now() - Duration::hours(1), 0);
    // An earlier worker counted session `old` to 1,000 bytes.
    SessionIngest::new(usage.clone(), fleet.clone())
        .process(&[sourced_rollup(&sim, "old", at, 0, 1_000)])
        .await
        .unwrap();

    let mut ingest = SessionIngest::new(usage.clone(), fleet.clone());
    let early = ingest
        .prepare(&[sourced_rollup(&sim, "new-0", at, 1, 10)])
        .await
        .unwrap();
    assert_eq!(
        (early.looked_up, early.known_new),
        (1, 0),
        "before the filter is read, a new session is asked for"
    );
    filter_built(&mut ingest).await;
    let batch = [
        sourced_rollup(&sim, "old", at, 2, 1_500),
        sourced_rollup(&sim, "new-1", at, 2, 300),
        sourced_rollup(&sim, "new-2", at, 2, 200),
    ];
    let prepared = ingest.prepare(&batch).await.unwrap();
    assert_eq!(
        (prepared.looked_up, prepared.known_new),
        (1, 2),
        "only the session stored before is asked for"
    );
    ingest.stage(&prepared);
    usage.write_session_updates(&prepared.updates).await.unwrap();
    let out = ingest.acknowledge(prepared);
    assert_eq!(out.written, 3);
    assert_eq!(
        tenant_bytes_in(usage.as_ref(), tenant.id, at).await,
        1_500 + 300 + 200,
        "the old session counted on from 1,000, the new ones from zero"
    );

    // A restarted worker reads the sessions just written into its filter: the replay counts nothing.
    let mut restarted = SessionIngest::new(usage.clone(), fleet.clone());
    filter_built(&mut restarted).await;
    let replay = restarted.prepare(&batch).await.unwrap();
    assert_eq!((replay.looked_up, replay.known_new), (3, 0));
    assert!(
        replay.updates.is_empty(),
        "a replay after a restart counts nothing"
    );
    assert_eq!(replay.already_counted, 3);
}

/// Runs `check` on a ClickHouse database of its own, dropped afterwards.
async fn on_clickhouse<F: std::future::Future<Output = ()>>(check: impl FnOnce(Arc<dyn UsageStore>) -> F) {
    let config = clickhouse::database().await;
    check(Arc::new(ClickHouseUsage::connect(config.clone()).await.unwrap())).await;
    ClickHouseUsage::drop_database(&config).await.unwrap();
}

/// An embedded usage store in a directory of its own (not migrated yet).
async fn embedded() -> Arc<dyn UsageStore> {
    Arc::new(
        EmbeddedUsage::open(&temp_dir().join("usage.sqlite"))
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn only_sessions_the_store_may_hold_are_looked_up_on_clickhouse() {
    on_clickhouse(only_sessions_the_store_may_hold_are_looked_up).await;
}

#[tokio::test]
async fn only_sessions_the_store_may_hold_are_looked_up_embedded() {
    only_sessions_the_store_may_hold_are_looked_up(embedded().await).await;
}

#[tokio::test]
async fn sessions_count_exactly_once_on_clickhouse() {
    on_clickhouse(exactly_once).await;
}

#[tokio::test]
async fn sessions_count_exactly_once_embedded() {
    exactly_once(embedded().await).await;
}

/// The SIM owners the worker caches are bounded by bytes: past the limit the cache starts over,
/// a batch's own SIMs are always all there afterwards, and a SIM no tenant has stays unknown.
#[tokio::test]
async fn sim_owners_are_cached_up_to_a_byte_limit() {
    use ioto_app::ingest::Owners;
    let (_, fleet, f) = ioto_test_support::factory::postgres_ports().await;
    let tenant = f.tenant("Owners").await;
    let sims = f.sims(&tenant, None, 30).await;
    let iccids: Vec<_> = sims.iter().map(|s| s.iccid.clone()).collect();

    let mut one = Owners::new(fleet.clone());
    one.load(iccids[..1].iter()).await.unwrap();
    let entry = one.bytes();
    assert!(
        entry > iccids[0].as_str().len(),
        "an owner costs more than its ICCID: {entry}"
    );

    // Room for ten owners.
    let mut owners = Owners::with_limit(fleet.clone(), 10 * entry);
    owners.load(iccids[..8].iter()).await.unwrap();
    assert_eq!(owners.bytes(), 8 * entry);
    owners.load(iccids[..8].iter()).await.unwrap();
    assert_eq!(owners.bytes(), 8 * entry, "owners cached once, counted once");
    // Five more do not fit: the cache starts over with this batch's SIMs.
    owners.load(iccids[6..11].iter()).await.unwrap();
    assert_eq!(owners.bytes(), 5 * entry, "started over");
    for iccid in &iccids[6..11] {
        assert_eq!(owners.get(iccid), Some((tenant.id, None)), "{iccid}");
    }
    assert_eq!(owners.get(&iccids[0]), None, "forgotten when it started over");
    // A batch larger than the limit is still looked up whole (counting needs every owner).
    owners.load(iccids.iter()).await.unwrap();
    assert!(iccids.iter().all(|i| owners.get(i) == Some((tenant.id, None))));
    assert_eq!(owners.bytes(), 30 * entry);
    // An ICCID no tenant has.
    let stranger = ioto_domain::Iccid::with_check_digit("894900000000009999").unwrap();
    owners.load(std::iter::once(&stranger)).await.unwrap();
    assert_eq!(owners.get(&stranger), None);
}

/// A worker whose progress cache fills up while it counts a batch keeps that batch's sessions: a
/// session it counted before is not counted again from zero when sessions recovered from the
/// store take the cache past its limit.
#[tokio::test]
async fn a_full_progress_cache_keeps_the_sessions_of_the_batch_it_counts() {
    let usage = embedded().await;
    usage.migrate().await.unwrap();
    let (_, fleet, f) = ioto_test_support::factory::postgres_ports().await;
    let tenant = f.tenant("Full cache").await;
    let sim = f.sims(&tenant, None, 1).await.remove(0);
    let at = Utc::now() - Duration::hours(1);
    let rollup =
        |session: &str, minutes: i64, total: u64| sourced_rollup(&sim.iccid, session, at, minutes, total);
    // Another worker counted four sessions before this one started.
    let others = ["b", "c", "d", "e"];
    let earlier: Vec<_> = others.iter().map(|s| rollup(s, 0, 1_000)).collect();
    SessionIngest::new(usage.clone(), fleet.clone())
        .process(&earlier)
        .await
        .unwrap();
    // This worker keeps room for two or three sessions. It counts session a…
    let mut ingest =
        SessionIngest::new(usage.clone(), fleet.clone()).with_progress_limit(TINY_PROGRESS_CACHE);
    ingest.process(&[rollup("a", 1, 100)]).await.unwrap();
    // …then a's next total with the four others, whose progress comes back from the store and
    // does not fit beside a's.
    let mut batch = vec![rollup("a", 2, 150)];
    batch.extend(others.iter().map(|s| rollup(s, 2, 2_000)));
    let out = ingest.process(&batch).await.unwrap();
    assert_eq!(out.written, 5);
    assert_eq!(
        tenant_bytes_in(usage.as_ref(), tenant.id, at).await,
        150 + 4 * 2_000,
        "every session's total once"
    );
}
