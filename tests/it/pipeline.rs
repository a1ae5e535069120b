//! The ingest pipeline end to end on the real engines: events on Kafka, the worker counting them
//! into ClickHouse, and every cube compared with what the events must add up to — after the worker
//! was SIGKILLed at random points, while ClickHouse was unreachable, and while partitions moved
//! between two workers. Bad events end on the dead-letter topic.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use ioto_analytics::{ClickHouseConfig, ClickHouseUsage};
use ioto_app::{CdrIngest, SessionIngest};
use ioto_domain::fleet::Sim;
use ioto_domain::identifiers::MccMnc;
use ioto_domain::ports::{period_start, EventBus, Granularity, ReconciliationQuery, SessionKey, UsageStore};
use ioto_domain::usage::{step, SessionProgress, Step};
use ioto_domain::{CustomerId, Iccid, TenantId};
use ioto_ingest::simulator::{SessionPlan, SimEvent};
use ioto_ingest::worker::{IngestStats, IngestTopics, Worker, WorkerConfig};
use ioto_test_support::{clickhouse, kafka, pg, proxy::Proxy, temp_dir, unique, Factory};

use crate::cli::ChildProcess;
use tokio::sync::watch;

/// Bytes in counted for `tenant` on the days `[first, last]` (the daily cube, all sub-customers).
async fn counted_bytes(usage: &dyn UsageStore, tenant: TenantId, first: NaiveDate, last: NaiveDate) -> u64 {
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    usage
        .customer_usage(
            tenant,
            None,
            midnight(first),
            midnight(last + chrono::Days::new(1)),
            Granularity::Day,
        )
        .await
        .unwrap()
        .iter()
        .map(|p| p.bytes_in)
        .sum()
}

/// What a set of simulated sessions must add up to in every cube.
struct Expected {
    tenant: TenantId,
    /// Per SIM and hour: bytes in and out.
    hourly: BTreeMap<(Iccid, DateTime<Utc>), (u64, u64)>,
    customers: HashMap<Iccid, Option<CustomerId>>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Expected {
    fn of(tenant: TenantId, sims: &[Sim], plan: &SessionPlan) -> Self {
        let mut hourly = BTreeMap::new();
        let mut progress: HashMap<SessionKey, SessionProgress> = HashMap::new();
        for e in plan.events() {
            let SimEvent::Rollup(r) = e else { continue };
            if let Step::Count { delta, progress: p } = step(progress.get(&r.key()), &r).unwrap() {
                let e: &mut (u64, u64) = hourly.entry((r.iccid.clone(), delta.hour)).or_default();
                e.0 += delta.bytes_in;
                e.1 += delta.bytes_out;
                progress.insert(r.key(), p);
            }
        }
        Self {
            tenant,
            hourly,
            customers: sims.iter().map(|s| (s.iccid.clone(), s.customer_id)).collect(),
            from: plan.from,
            to: plan.to,
        }
    }

    fn total_in(&self) -> u64 {
        self.hourly.values().map(|v| v.0).sum()
    }

    fn days(&self) -> (NaiveDate, NaiveDate) {
        (self.from.date_naive(), self.to.date_naive())
    }

    /// Sums the hourly expectation into `g` periods per SIM.
    fn per(&self, g: Granularity) -> BTreeMap<(Iccid, DateTime<Utc>), (u64, u64)> {
        let mut out: BTreeMap<(Iccid, DateTime<Utc>), (u64, u64)> = BTreeMap::new();
        for ((iccid, hour), (i, o)) in &self.hourly {
            let e = out.entry((iccid.clone(), period_start(*hour, g))).or_default();
            e.0 += i;
            e.1 += o;
        }
        out
    }

    /// Waits until the usage store holds every byte, then compares every cube.
    async fn check(&self, usage: &dyn UsageStore) {
        let (first_day, last_day) = self.days();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let counted = counted_bytes(usage, self.tenant, first_day, last_day).await;
            let open = usage
                .reconciliation(self.tenant, &self.reconciliation(true))
                .await
                .unwrap();
            if counted == self.total_in() && open.is_empty() {
                break;
            }
            assert!(
                counted <= self.total_in(),
                "counted {counted} bytes, more than the {} the events carry",
                self.total_in()
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "after 120 s: {counted} of {} bytes counted, {} SIM-days differ from their CDRs",
                self.total_in(),
                open.len()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // Two cubes hold it all; the others' buffers are written out at once (each Buffer table
        // writes to its store on a timer of its own).
        usage.flush_pending().await.unwrap();
        let range = (
            period_start(self.from, Granularity::Day),
            period_start(self.to, Granularity::Day) + chrono::Duration::days(1),
        );
        for g in [Granularity::Hour, Granularity::Day, Granularity::Month] {
            let want = self.per(g);
            let mut got = BTreeMap::new();
            for iccid in self.customers.keys() {
                for p in usage
                    .sim_usage(self.tenant, iccid, range.0, range.1, g)
                    .await
                    .unwrap()
                {
                    let e: &mut (u64, u64) = got.entry((iccid.clone(), p.period)).or_default();
                    e.0 += p.bytes_in;
                    e.1 += p.bytes_out;
                }
            }
            assert_eq!(got, want, "{g:?} cube per SIM");
        }
        // Per sub-customer and day.
        let mut want: BTreeMap<(Option<CustomerId>, DateTime<Utc>), u64> = BTreeMap::new();
        for ((iccid, day), (i, _)) in self.per(Granularity::Day) {
            *want.entry((self.customers[&iccid], day)).or_default() += i;
        }
        let got: BTreeMap<(Option<CustomerId>, DateTime<Utc>), u64> = usage
            .customer_usage(self.tenant, None, range.0, range.1, Granularity::Day)
            .await
            .unwrap()
            .into_iter()
            .fold(BTreeMap::new(), |mut m, p| {
                *m.entry((p.customer_id, p.period)).or_default() += p.bytes_in;
                m
            });
        assert_eq!(got, want, "sub-customer cube");
        // Billing: every SIM-day billed exactly what its sessions counted.
        let rows = usage
            .reconciliation(self.tenant, &self.reconciliation(false))
            .await
            .unwrap();
        let sim_days: HashSet<_> = self
            .per(Granularity::Day)
            .into_keys()
            .map(|(i, d)| (i, d.date_naive()))
            .collect();
        assert_eq!(rows.len(), sim_days.len(), "one reconciliation row per SIM-day");
        assert!(rows
            .iter()
            .all(|r| r.session_in == r.cdr_in && r.session_out == r.cdr_out));
    }

    fn reconciliation(&self, only_differences: bool) -> ReconciliationQuery {
        let (from, to) = self.days();
        ReconciliationQuery {
            from,
            to,
            iccid: None,
            customer: None,
            only_differences,
            after: None,
            limit: 10_000,
        }
    }
}

/// Real engines for one test: a Postgres database, a ClickHouse database, unique topics.
struct Stack {
    config: ioto::config::Config,
    engines: ioto::engines::Engines,
    factory: Factory,
    topics: IngestTopics,
    ch: ClickHouseConfig,
}

impl Stack {
    async fn new() -> Self {
        let mut config = ioto::config::Config {
            data_dir: temp_dir(),
            ..Default::default()
        };
        config.database.url = Some(ioto::config::SecretUrl::new(pg::database().await));
        let ch = clickhouse::database().await;
        config.clickhouse.url = Some(ioto::config::SecretUrl::new(ch.url.clone()));
        config.clickhouse.database = ch.database.clone();
        config.kafka.brokers = Some(kafka::brokers());
        config.kafka.topic_prefix = format!("{}.", unique("pipe"));
        config.ingest.partitions = 3;
        ioto::engines::migrate(&config).await.unwrap();
        let engines = ioto::engines::connect(&config).await.unwrap();
        let topics = IngestTopics::with_prefix(&config.kafka.topic_prefix);
        topics.ensure(engines.bus.as_ref(), 3).await.unwrap();
        let factory = Factory::new(engines.directory.clone(), engines.fleet.clone());
        Self {
            config,
            engines,
            factory,
            topics,
            ch,
        }
    }

    /// A tenant with SIMs of two sub-customers and unassigned ones, and a plan of sessions that
    /// runs across midnight.
    async fn scenario(&self, sims_each: usize, seed: u64) -> (Expected, Arc<SessionPlan>) {
        let f = &self.factory;
        let tenant = f.tenant("Pipeline").await;
        let a = f.customer(&tenant, "Alpha").await;
        let b = f.customer(&tenant, "Beta").await;
        let mut sims = f.sims(&tenant, Some(a.id), sims_each).await;
        sims.extend(f.sims(&tenant, Some(b.id), sims_each).await);
        sims.extend(f.sims(&tenant, None, sims_each).await);
        // The last midnight at least 3 hours ago: every event (up to 2 hours after it) is in
        // the past whatever the time of day the test runs at (the pipeline refuses events more
        // than 10 minutes ahead, so a run between 00:00 and ~01:50 UTC used to fail).
        let midnight = period_start(Utc::now() - chrono::Duration::hours(3), Granularity::Day);
        let plan = SessionPlan {
            iccids: sims.iter().map(|s| s.iccid.clone()).collect(),
            from: midnight - chrono::Duration::hours(4),
            to: midnight + chrono::Duration::hours(2),
            bytes_min: 1_000,
            bytes_max: 50_000_000,
            sessions_per_sim: 3,
            update_every: chrono::Duration::minutes(5),
            networks: vec![MccMnc::parse("262-01").unwrap(), MccMnc::parse("208-01").unwrap()],
            seed,
        };
        (Expected::of(tenant.id, &sims, &plan), Arc::new(plan))
    }

    /// Publishes the plan's events in the background at `rate` events per second.
    fn publish(
        &self,
        plan: &Arc<SessionPlan>,
        rate: u64,
    ) -> tokio::task::JoinHandle<anyhow::Result<ioto::tooling::simulate::Summary>> {
        let (bus, topics, plan) = (
            Arc::clone(&self.engines.bus),
            self.topics.clone(),
            Arc::clone(plan),
        );
        tokio::spawn(async move { ioto::tooling::simulate::publish(&bus, &topics, plan, rate, false).await })
    }

    fn worker(&self, usage: Arc<dyn UsageStore>, stats: &Arc<IngestStats>) -> Worker {
        self.worker_waiting(usage, stats, Duration::from_millis(100))
    }

    /// A worker whose batches may fill for up to `batch_wait`.
    fn worker_waiting(
        &self,
        usage: Arc<dyn UsageStore>,
        stats: &Arc<IngestStats>,
        batch_wait: Duration,
    ) -> Worker {
        let mut config = WorkerConfig::new(&self.config.kafka.topic_prefix);
        config.batch_max = 300;
        config.batch_wait = batch_wait;
        Worker::new(
            Arc::clone(&self.engines.bus),
            SessionIngest::new(usage.clone(), self.engines.fleet.clone()),
            CdrIngest::new(usage, self.engines.fleet.clone()),
            config,
            Arc::clone(stats),
        )
    }

    /// `ioto ingest` as a child process on this stack, killed if the test ends first.
    fn spawn_process(&self) -> ChildProcess {
        let c = &self.config;
        std::process::Command::new(env!("CARGO_BIN_EXE_ioto"))
            .arg("ingest")
            .arg("--no-migrate")
            .arg("--no-telemetry")
            .env("DATABASE_URL", c.database.url.as_ref().unwrap().expose())
            .env("CLICKHOUSE_URL", &self.ch.url)
            .env("IOTO_CLICKHOUSE__DATABASE", &self.ch.database)
            .env("KAFKA_BROKERS", c.kafka.brokers.as_ref().unwrap())
            .env("IOTO_KAFKA__TOPIC_PREFIX", &c.kafka.topic_prefix)
            .env("IOTO_DATA_DIR", &c.data_dir)
            .env("IOTO_INGEST__BATCH_MAX", "200")
            .env("IOTO_INGEST__BATCH_WAIT_MS", "50")
            .env("IOTO_LOG__LEVEL", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .map(ChildProcess)
            .expect("starting ioto ingest")
    }
}

/// The dead letters on the topic so far, as JSON.
async fn dead_letters(bus: &dyn EventBus, topic: &str, at_least: usize) -> Vec<serde_json::Value> {
    let mut stream = bus.subscribe(topic, &unique("dlq")).await.unwrap();
    let mut out = Vec::new();
    while out.len() < at_least {
        let m = tokio::time::timeout(Duration::from_secs(60), stream.next())
            .await
            .expect("dead letters arrive")
            .unwrap()
            .unwrap();
        out.push(serde_json::from_slice(&m.payload).unwrap());
    }
    out
}

/// Publishes one bad event of each kind; returns them with the reason each must get.
async fn publish_bad_events(stack: &Stack, a_sim: &str) -> Vec<(&'static str, String)> {
    let bus = &stack.engines.bus;
    let t = &stack.topics.sessions;
    let now = Utc::now().to_rfc3339();
    let unknown = ioto_domain::identifiers::Iccid::with_check_digit("898800000000000999").unwrap();
    let rollup = |session: &str, iccid: &str, total: u64, at: &str| {
        serde_json::json!({"v": 1, "session_id": session, "iccid": iccid, "event_timestamp": at,
            "mcc_mnc": "262-01", "radio_access_type": 6, "total_bytes_in": total, "total_bytes_out": 1,
            "request_type": "UPDATE"})
        .to_string()
    };
    let bad = vec![
        ("MALFORMED_JSON", "{\"session_id\": ".to_owned()),
        ("MISSING_FIELD", r#"{"v": 1, "session_id": "x"}"#.to_owned()),
        ("UNKNOWN_ICCID", rollup("stranger", unknown.as_str(), 5, &now)),
    ];
    for (_, payload) in &bad {
        bus.publish(t, "bad", payload.as_bytes()).await.unwrap();
    }
    // Counters going backwards: the same session, later, with less.
    let later = (Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
    let first = rollup("backwards", a_sim, 1000, &now);
    let second = rollup("backwards", a_sim, 10, &later);
    bus.publish(t, "backwards", first.as_bytes()).await.unwrap();
    bus.publish(t, "backwards", second.as_bytes()).await.unwrap();
    let mut all = bad;
    all.push(("COUNTERS_WENT_BACKWARDS", second));
    all
}

fn send_signal(child: &std::process::Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn sigkilled_workers_count_every_event_exactly_once() {
    let stack = Stack::new().await;
    let (expected, plan) = stack.scenario(6, 7).await;
    // The "backwards" session adds 1000 bytes to a SIM in the session view only: keep it apart
    // from the checked SIMs by using a SIM of its own tenant.
    let other = stack.factory.tenant("Bad events").await;
    let probe = stack.factory.sims(&other, None, 1).await.remove(0);
    let bad = publish_bad_events(&stack, probe.iccid.as_str()).await;

    // Events arrive while the worker is killed at random points and started again. They come
    // slowly enough (about 1,400 at 30 a second) that every round kills a worker mid-stream: a
    // restarted process first waits for the killed member to leave the group (its session
    // timeout), and a kill before it counts anything, or after the last event, tests nothing.
    let publisher = stack.publish(&plan, 30);
    let mut rng_state = 0x2545_F491_4F6C_DD1D_u64;
    let mut random_ms = |lo: u64, hi: u64| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        lo + rng_state % (hi - lo)
    };
    let counted = || async {
        let (first, last) = expected.days();
        // Everything written so far, the last second's writes of a process just killed too.
        stack.engines.usage.flush_pending().await.unwrap();
        counted_bytes(stack.engines.usage.as_ref(), expected.tenant, first, last).await
    };
    let mut killed_while_counting = 0;
    for round in 1..=5 {
        let before = counted().await;
        if before == expected.total_in() {
            break;
        }
        let mut child = stack.spawn_process();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while counted().await == before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: the restarted worker counts within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Somewhere in the middle of a batch: read, counted, written, or committed.
        tokio::time::sleep(Duration::from_millis(random_ms(0, 1500))).await;
        send_signal(&child.0, "KILL");
        child.0.wait().unwrap();
        if counted().await < expected.total_in() {
            killed_while_counting += 1;
        }
    }
    assert!(
        killed_while_counting >= 3,
        "the kills land while events are still coming ({killed_while_counting} of 5 did)"
    );
    let summary = publisher.await.unwrap().unwrap();
    assert!(summary.rollups > 1000, "a real amount of events: {summary:?}");

    let mut last = stack.spawn_process();
    expected.check(stack.engines.usage.as_ref()).await;
    let letters = dead_letters(stack.engines.bus.as_ref(), &stack.topics.dead_letters, bad.len()).await;
    for (reason, payload) in &bad {
        assert!(
            letters.iter().any(|l| l["reason"] == *reason
                && l["payload"] == payload.as_str()
                && l["topic"] == stack.topics.sessions.as_str()),
            "dead letter {reason} with its payload: {letters:?}"
        );
    }
    send_signal(&last.0, "TERM");
    let status = last.0.wait().unwrap();
    assert!(status.success(), "SIGTERM stops the worker cleanly: {status}");
    ClickHouseUsage::drop_database(&stack.ch).await.unwrap();
}

#[tokio::test]
async fn the_worker_waits_out_a_clickhouse_outage_and_loses_nothing() {
    let stack = Stack::new().await;
    let (expected, plan) = stack.scenario(4, 8).await;
    let host = stack
        .ch
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = Proxy::start(&host).await;
    let through_proxy = ClickHouseUsage::connect(ClickHouseConfig {
        url: format!("http://{}", proxy.addr),
        ..stack.ch.clone()
    })
    .await
    .unwrap();
    let stats = Arc::new(IngestStats::default());
    let (stop, stop_rx) = watch::channel(false);
    let worker = tokio::spawn(stack.worker(Arc::new(through_proxy), &stats).run(stop_rx));

    // ClickHouse goes away while events keep arriving, and stays away for a while.
    let publisher = stack.publish(&plan, 150);
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.down();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        stats.write_retries.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the worker noticed the outage and kept retrying: {stats:?}"
    );
    let committed_during = stats.events.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        stats.events.load(std::sync::atomic::Ordering::Relaxed),
        committed_during,
        "nothing is committed while ClickHouse is down"
    );
    proxy.up();
    publisher.await.unwrap().unwrap();
    expected.check(stack.engines.usage.as_ref()).await;
    stop.send(true).unwrap();
    worker.await.unwrap().unwrap();
    ClickHouseUsage::drop_database(&stack.ch).await.unwrap();
}

#[tokio::test]
async fn two_workers_share_the_partitions_and_count_everything_once() {
    let stack = Stack::new().await;
    let (expected, plan) = stack.scenario(6, 9).await;
    let usage: Arc<dyn UsageStore> = Arc::clone(&stack.engines.usage);
    let (first_stats, second_stats) = (Arc::new(IngestStats::default()), Arc::new(IngestStats::default()));
    let (stop_first, rx_first) = watch::channel(false);
    let (stop_second, rx_second) = watch::channel(false);
    let publisher = stack.publish(&plan, 100);
    let first = tokio::spawn(stack.worker(Arc::clone(&usage), &first_stats).run(rx_first));
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A second member joins: the partitions are split between the two.
    let second = tokio::spawn(stack.worker(Arc::clone(&usage), &second_stats).run(rx_second));
    tokio::time::sleep(Duration::from_secs(8)).await;
    // The first leaves: the second takes everything over.
    stop_first.send(true).unwrap();
    first.await.unwrap().unwrap();
    publisher.await.unwrap().unwrap();
    expected.check(usage.as_ref()).await;
    let events = |s: &Arc<IngestStats>| s.events.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        events(&first_stats) > 0 && events(&second_stats) > 0,
        "both members counted events ({} and {})",
        events(&first_stats),
        events(&second_stats)
    );
    assert!(second_stats.rebalances.load(std::sync::atomic::Ordering::Relaxed) > 0);
    stop_second.send(true).unwrap();
    second.await.unwrap().unwrap();
    ClickHouseUsage::drop_database(&stack.ch).await.unwrap();
}

/// Batching adapts to the load: with nothing being written the worker takes what has arrived at
/// once, so under light load a lone event is counted within moments, not after the 60 s its
/// batch may fill for under load; a burst arriving while a batch is written goes in few batches.
#[tokio::test]
async fn under_light_load_an_event_does_not_wait_out_the_batch_window() {
    let stack = Stack::new().await;
    let tenant = stack.factory.tenant("Light load").await;
    let sim = stack.factory.sims(&tenant, None, 1).await.remove(0);
    let usage: Arc<dyn UsageStore> = Arc::clone(&stack.engines.usage);
    let stats = Arc::new(IngestStats::default());
    let (stop, rx) = watch::channel(false);
    let worker = tokio::spawn(
        stack
            .worker_waiting(Arc::clone(&usage), &stats, Duration::from_secs(60))
            .run(rx),
    );
    let event_time = Utc::now() - chrono::Duration::minutes(1);
    let rollup = |session: &str, total: u64| {
        serde_json::json!({"v": 1, "session_id": session, "iccid": sim.iccid.as_str(),
            "event_timestamp": event_time.to_rfc3339(), "mcc_mnc": "262-01", "radio_access_type": "LTE",
            "total_bytes_in": total, "total_bytes_out": 0, "request_type": "UPDATE"})
        .to_string()
    };
    let day = event_time.date_naive();
    let counted = || async { counted_bytes(usage.as_ref(), tenant.id, day, day).await };
    let published = std::time::Instant::now();
    stack
        .engines
        .bus
        .publish(&stack.topics.sessions, "lone", rollup("lone", 100).as_bytes())
        .await
        .unwrap();
    while counted().await < 100 {
        assert!(
            published.elapsed() < Duration::from_secs(30),
            "a lone event waits for the 60 s batch window ({:?} so far)",
            published.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Committed right after the store took it.
    let events = || stats.events.load(std::sync::atomic::Ordering::SeqCst);
    while events() < 1 {
        assert!(
            published.elapsed() < Duration::from_secs(30),
            "the lone event is committed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stats.batches.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A burst: 200 sessions published at once. Batches fill while the one before is written.
    let burst: Vec<(String, String)> = (0..200)
        .map(|i| (format!("burst-{i}"), rollup(&format!("burst-{i}"), 1)))
        .collect();
    let bus = &stack.engines.bus;
    futures::future::join_all(
        burst
            .iter()
            .map(|(key, body)| bus.publish(&stack.topics.sessions, key, body.as_bytes())),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .unwrap();
    while counted().await < 300 || events() < 201 {
        assert!(
            published.elapsed() < Duration::from_secs(60),
            "the burst is counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let batches = stats.batches.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        batches < 100,
        "201 events in {batches} batches: batches should grow with the load"
    );
    stop.send(true).unwrap();
    worker.await.unwrap().unwrap();
    ClickHouseUsage::drop_database(&stack.ch).await.unwrap();
}

/// Every poison a careless producer can send, through the real broker, among good events: each
/// is dead-lettered with its reason, the events around it count exactly, and the partition never
/// stalls. Two SIMs using the same session id are counted independently.
#[tokio::test]
async fn poison_events_are_dead_lettered_while_the_events_around_them_count() {
    let stack = Stack::new().await;
    let tenant = stack.factory.tenant("Poison").await;
    let sims = stack.factory.sims(&tenant, None, 2).await;
    let (a, b) = (sims[0].iccid.as_str(), sims[1].iccid.as_str());
    let now = Utc::now();
    let at = |secs: i64| (now + chrono::Duration::seconds(secs)).to_rfc3339();
    let rollup = |session: &str, iccid: &str, total: serde_json::Value, at: &str, network: &str| {
        serde_json::json!({"v": 1, "session_id": session, "iccid": iccid, "event_timestamp": at,
            "mcc_mnc": network, "radio_access_type": 6, "total_bytes_in": total, "total_bytes_out": 0,
            "request_type": "UPDATE"})
        .to_string()
    };
    let cdr = |id: &str, start: &str, end: &str| {
        serde_json::json!({"v": 1, "cdr_id": id, "iccid": a, "start": start, "end": end,
            "mcc_mnc": "262-01", "bytes_in": 10, "bytes_out": 0, "rating_group": 1})
        .to_string()
    };
    let (s, c) = (&stack.topics.sessions, &stack.topics.cdrs);
    let poison = [
        ("INVALID_FIELD", s, rollup("p1", a, 5.into(), &at(-60), "12é45")),
        (
            "OUT_OF_RANGE",
            s,
            rollup("p2", a, 5.into(), "1900-01-01T00:00:00Z", "262-01"),
        ),
        (
            "OUT_OF_RANGE",
            s,
            rollup("p3", a, 5.into(), "2200-01-01T00:00:00Z", "262-01"),
        ),
        (
            "OUT_OF_RANGE",
            s,
            rollup("p4", a, 5.into(), &at(-40 * 86_400), "262-01"),
        ),
        ("OUT_OF_RANGE", s, rollup("p5", a, 5.into(), &at(3_600), "262-01")),
        (
            "INVALID_FIELD",
            s,
            rollup("p6", a, u64::MAX.into(), &at(-60), "262-01"),
        ),
        (
            "INVALID_FIELD",
            s,
            rollup("p7", a, (1u64 << 60).into(), &at(-60), "262-01"),
        ),
        ("OUT_OF_RANGE", c, cdr("c-old", "1969-12-31T23:00:00Z", &at(-60))),
        (
            "OUT_OF_RANGE",
            c,
            cdr("c-future", &at(-60), "2300-01-01T00:00:00Z"),
        ),
    ];
    let good = [
        (s, rollup("good", a, 1_000.into(), &at(-300), "262-01")),
        (s, rollup("shared", a, 700.into(), &at(-290), "262-01")),
        (s, rollup("shared", b, 500.into(), &at(-280), "262-01")),
        (s, rollup("good", a, 3_000.into(), &at(-120), "262-01")),
        (c, cdr("c-good", &at(-300), &at(-120))),
    ];
    // Good and poison interleaved, on one partition key so they share batches.
    let bus = &stack.engines.bus;
    for (i, (topic, payload)) in good.iter().enumerate() {
        bus.publish(topic, a, payload.as_bytes()).await.unwrap();
        for (_, topic, payload) in poison.iter().skip(i * 2).take(2) {
            bus.publish(topic, a, payload.as_bytes()).await.unwrap();
        }
    }

    let usage: Arc<dyn UsageStore> = Arc::clone(&stack.engines.usage);
    let stats = Arc::new(IngestStats::default());
    let (stop, rx) = watch::channel(false);
    let worker = tokio::spawn(stack.worker(Arc::clone(&usage), &stats).run(rx));
    let letters = dead_letters(bus.as_ref(), &stack.topics.dead_letters, poison.len()).await;
    for (reason, topic, payload) in &poison {
        assert!(
            letters.iter().any(|l| l["reason"] == *reason
                && l["payload"] == payload.as_str()
                && l["topic"] == topic.as_str()),
            "dead letter {reason} for {payload}: {letters:?}"
        );
    }
    // The good events count exactly: SIM a 3,000 + 700 bytes, SIM b 500 (the same session id as
    // a session of SIM a, counted on its own), and the good CDR.
    let day = now.date_naive();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while counted_bytes(usage.as_ref(), tenant.id, day - chrono::Days::new(1), day).await < 4_200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the good events are counted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    usage.flush_pending().await.unwrap();
    let range = (now - chrono::Duration::days(2), now + chrono::Duration::days(1));
    for (sim, want) in [(&sims[0], 3_700), (&sims[1], 500)] {
        let got: u64 = usage
            .sim_usage(tenant.id, &sim.iccid, range.0, range.1, Granularity::Day)
            .await
            .unwrap()
            .iter()
            .map(|p| p.bytes_in)
            .sum();
        assert_eq!(got, want, "bytes of {}", sim.iccid);
    }
    let billed: u64 = usage
        .reconciliation(
            tenant.id,
            &ReconciliationQuery {
                from: day - chrono::Days::new(1),
                to: day,
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
        .map(|r| r.cdr_in)
        .sum();
    assert_eq!(billed, 10, "only the good CDR is billed");
    stop.send(true).unwrap();
    worker.await.unwrap().unwrap();
    ClickHouseUsage::drop_database(&stack.ch).await.unwrap();
}

/// A worker that dies (here: a panic injected into its live fan-out, after its first batch was
/// committed) is restarted by the supervisor, which counts the restart and clears its reason
/// once the new worker runs; the next events are counted by the new worker. Embedded engines.
#[tokio::test]
async fn a_worker_that_dies_is_restarted() {
    let config = ioto::config::Config {
        data_dir: temp_dir(),
        ..Default::default()
    };
    ioto::engines::migrate(&config).await.unwrap();
    let engines = ioto::engines::connect(&config).await.unwrap();
    let topics = IngestTopics::with_prefix("");
    topics.ensure(engines.bus.as_ref(), 1).await.unwrap();
    let factory = Factory::new(engines.directory.clone(), engines.fleet.clone());
    let tenant = factory.tenant("Restarts").await;
    let sim = factory.sims(&tenant, None, 1).await.remove(0);
    let stats = Arc::new(IngestStats::default());
    let announced = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (bus, usage, fleet, seen) = (
        Arc::clone(&engines.bus),
        Arc::clone(&engines.usage),
        Arc::clone(&engines.fleet),
        Arc::clone(&announced),
    );
    let worker_stats = Arc::clone(&stats);
    let build = move || {
        let seen = Arc::clone(&seen);
        let mut config = WorkerConfig::new("");
        config.batch_wait = Duration::from_millis(20);
        Worker::new(
            Arc::clone(&bus),
            SessionIngest::new(usage.clone(), Arc::clone(&fleet)),
            CdrIngest::new(usage.clone(), Arc::clone(&fleet)),
            config,
            Arc::clone(&worker_stats),
        )
        .on_counted(Arc::new(move |_| {
            if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                panic!("injected: the first worker dies after its first batch");
            }
        }))
    };
    let (stop, rx) = watch::channel(false);
    let supervisor = tokio::spawn(ioto::server::pipeline::supervise(build, Arc::clone(&stats), rx));
    let rollup = |session: &str, total: u64| {
        serde_json::json!({"v": 1, "session_id": session, "iccid": sim.iccid.as_str(),
            "event_timestamp": Utc::now().to_rfc3339(), "mcc_mnc": "262-01", "radio_access_type": "LTE",
            "total_bytes_in": total, "total_bytes_out": 0, "request_type": "UPDATE"})
        .to_string()
    };
    let restarts = || stats.restarts.load(std::sync::atomic::Ordering::SeqCst);
    engines
        .bus
        .publish(&topics.sessions, "a", rollup("a", 100).as_bytes())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while restarts() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the panicking worker is restarted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    engines
        .bus
        .publish(&topics.sessions, "b", rollup("b", 50).as_bytes())
        .await
        .unwrap();
    let day = Utc::now().date_naive();
    while counted_bytes(engines.usage.as_ref(), tenant.id, day - chrono::Days::new(1), day).await < 150 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new worker counts the next event"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(restarts(), 1);
    assert_eq!(stats.down(), None, "running again");
    assert_eq!(
        counted_bytes(engines.usage.as_ref(), tenant.id, day - chrono::Days::new(1), day).await,
        150,
        "the batch committed before the panic is not counted twice"
    );
    stop.send(true).unwrap();
    supervisor.await.unwrap();
}
