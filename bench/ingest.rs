//! `ioto-bench ingest`: session events through the whole pipeline on the configured engines.
//!
//! 1. `--events` rollups of `--sims` SIMs are produced to a fresh topic (the backlog);
//! 2. the ingest worker, as `ioto ingest` runs it (live fan-out included), counts the backlog:
//!    events per second from its first committed batch to the last;
//! 3. the same rows go into the usage store with one plain INSERT per batch (the `clickhouse`
//!    crate insert the adapter makes; no broker, no parsing, no SIM lookup): the ratio says what
//!    the pipeline costs over the bare insert;
//! 4. under a steady live load of `--live-rate` events per second, probe rollups are timed from
//!    publish until their session's live state shows them (one read for all waiting probes every
//!    20 ms), each then checked in the SIM's live session (what `sim.liveSession` reads).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use ioto_app::{CdrIngest, SessionIngest};
use ioto_domain::directory::NewTenant;
use ioto_domain::fleet::{AuditAction, AuditStamp, NewSim, SimState};
use ioto_domain::identifiers::{luhn_check_digit, Iccid, Imsi, MccMnc, Name, Slug};
use ioto_domain::ports::{EngineWork, SessionKey, SessionUpdate, UsageStore};
use ioto_domain::usage::{
    counted_update, step, RadioAccessType, RequestType, SessionProgress, SessionRollup, Step,
};
use ioto_domain::{Scope, TenantId};
use ioto_ingest::simulator::{SessionPlan, SimEvent};
use ioto_ingest::worker::{IngestStats, IngestTopics, Worker};

use ioto::config::Config;
use ioto::engines;

pub struct IngestFigures {
    pub events: usize,
    pub sims: usize,
    pub produce: Duration,
    /// From starting the worker to its first committed batch (group join, first fetch).
    pub join: Duration,
    /// From the first committed batch to the last event committed.
    pub steady: Duration,
    pub events_in_steady: u64,
    pub raw_insert: Duration,
    /// Reading the backlog with a bare consumer (no counting), from its first message.
    pub read_only: Duration,
    pub raw_rows: usize,
    pub live_rate: u64,
    pub latencies: Vec<Duration>,
    /// Of each probe: until the broker acknowledged the publish.
    pub publish_latencies: Vec<Duration>,
    pub lost_probes: usize,
    pub engines: Vec<(&'static str, String)>,
    /// The worker's stages during the live phase (see `ingest/src/stages.rs`).
    pub live_stages: ioto_ingest::stages::Snapshot,
    /// New sessions during the live phase: asked of the store, and known new by the filter.
    pub live_looked_up: u64,
    pub live_known_new: u64,
    /// The usage engine's own work during the live phase, and how long that phase lasted.
    pub live_work: Option<EngineWork>,
    pub live_time: Duration,
}

fn rate(n: f64, d: Duration) -> f64 {
    n / d.as_secs_f64().max(1e-9)
}

/// Creates a tenant with `n` ACTIVE SIMs numbered for this run.
pub(crate) async fn sims(
    engines: &engines::Engines,
    run: u32,
    n: usize,
) -> anyhow::Result<(TenantId, Vec<Iccid>)> {
    let tenant = engines
        .directory
        .create_tenant(
            Scope::Platform,
            NewTenant {
                slug: Slug::parse(&format!("bench-ingest-{run}"))?,
                name: Name::parse("Bench Ingest", "name")?,
            },
        )
        .await?;
    let stamp = AuditStamp {
        actor: "bench".into(),
        actor_user_id: None,
        at: Utc::now(),
        note: None,
    };
    let mut iccids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let mut rows = Vec::with_capacity(chunk.len());
        for i in chunk {
            let body = format!("8977{run:05}{i:09}");
            let iccid = Iccid::parse(&format!("{body}{}", luhn_check_digit(&body).unwrap_or('0')))?;
            let mut s = NewSim::basic(
                tenant.id,
                iccid.clone(),
                Imsi::parse(&format!("9{run:05}{i:09}"))?,
            );
            s.state = SimState::Active;
            rows.push(s);
            iccids.push(iccid);
        }
        engines
            .fleet
            .insert_sims(
                Scope::Platform,
                &rows.iter().collect::<Vec<_>>(),
                AuditAction::Created,
                &stamp,
                None,
            )
            .await?;
    }
    Ok((tenant.id, iccids))
}

/// `events` rollups of `iccids`, interleaved SIM by SIM (each SIM's in order). Without
/// `sessions_per_sim`, enough sessions of about 50 updates each are planned.
pub(crate) fn backlog(iccids: &[Iccid], events: usize, sessions_per_sim: Option<u32>) -> Vec<SessionRollup> {
    let per_sim = events.div_ceil(iccids.len().max(1));
    let now = Utc::now();
    let plan = SessionPlan {
        iccids: iccids.to_vec(),
        from: now - chrono::Duration::hours(30),
        to: now - chrono::Duration::hours(1),
        bytes_min: 10_000,
        bytes_max: 100_000_000,
        // Sessions average about 2 hours of updates a minute apart; plan more than needed.
        sessions_per_sim: sessions_per_sim
            .unwrap_or_else(|| u32::try_from(per_sim.div_ceil(50).max(1)).unwrap_or(1)),
        update_every: chrono::Duration::minutes(1),
        networks: ["262-01", "262-02", "208-01", "234-15"]
            .iter()
            .filter_map(|c| MccMnc::parse(c).ok())
            .collect(),
        seed: 1,
    };
    let mut per: Vec<std::vec::IntoIter<SessionRollup>> = (0..iccids.len())
        .map(|i| {
            plan.events_of(i)
                .into_iter()
                .filter_map(|e| match e {
                    SimEvent::Rollup(r) => Some(r),
                    SimEvent::Cdr(_) => None,
                })
                .take(per_sim)
                .collect::<Vec<_>>()
                .into_iter()
        })
        .collect();
    let mut out = Vec::with_capacity(events);
    while out.len() < events {
        let before = out.len();
        for it in &mut per {
            if let Some(r) = it.next() {
                out.push(r);
                if out.len() == events {
                    break;
                }
            }
        }
        if out.len() == before {
            break;
        }
    }
    out
}

/// Publishes rollups keyed by session: sessions concurrently, each session's rollups in order.
async fn produce(
    bus: &Arc<dyn ioto_domain::ports::EventBus>,
    topic: &str,
    rollups: &[SessionRollup],
) -> anyhow::Result<()> {
    let mut by_session: HashMap<&str, Vec<Vec<u8>>> = HashMap::new();
    for r in rollups {
        by_session
            .entry(r.session_id.as_str())
            .or_default()
            .push(r.to_json().to_string().into_bytes());
    }
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(by_session)
        .map(|(session, payloads)| {
            let bus = Arc::clone(bus);
            async move {
                for p in payloads {
                    bus.publish(topic, session, &p).await?;
                }
                Ok(())
            }
        })
        .buffer_unordered(2000)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The rows the pipeline writes for these rollups, for the raw insert (under another tenant).
fn rows(rollups: &[SessionRollup], tenant: TenantId) -> Vec<SessionUpdate> {
    let mut progress: HashMap<String, SessionProgress> = HashMap::new();
    let mut out = Vec::with_capacity(rollups.len());
    for r in rollups {
        if let Ok(Step::Count { delta, progress: p }) = step(progress.get(&r.session_id), r) {
            out.push(counted_update(tenant, None, r, &delta, &p));
            progress.insert(r.session_id.clone(), p);
        }
    }
    out
}

pub async fn ingest(
    config: &Config,
    events: usize,
    sim_count: usize,
    live_rate: u64,
    probes: usize,
) -> anyhow::Result<IngestFigures> {
    let run = (uuid::Uuid::new_v4().as_u128() % 100_000) as u32;
    let mut config = config.clone();
    config.kafka.topic_prefix = format!("{}bench{run}.", config.kafka.topic_prefix);
    config.ingest.enabled = false;
    engines::migrate(&config).await?;
    let mut engines = engines::connect(&config).await?;
    println!("{}", engines.versions().await?);
    if engines.bus.info().engine == "in-process" {
        // The in-process bus keeps a bounded number and size of messages; make room for the
        // backlog (a rollup is about 350 bytes).
        engines.bus = Arc::new(ioto_ingest::InProcessBus::with_limits(
            events + 1_000_000,
            (events + 1_000_000) * 1_024,
        ));
    }
    let described = engines::describe_config(&config);
    let (tenant, iccids) = sims(&engines, run, sim_count + probes.min(1000)).await?;
    let (load_sims, probe_sims) = iccids.split_at(sim_count);
    let rollups = backlog(load_sims, events, None);
    let topics = IngestTopics::with_prefix(&config.kafka.topic_prefix);
    topics
        .ensure(engines.bus.as_ref(), config.ingest.partitions)
        .await?;
    eprintln!(
        "producing {} rollups of {} SIMs …",
        rollups.len(),
        load_sims.len()
    );
    let started = Instant::now();
    produce(&engines.bus, &topics.sessions, &rollups).await?;
    let produce_time = started.elapsed();

    // What the broker alone delivers: a consumer in a group of its own that only reads.
    eprintln!("reading the backlog without counting …");
    let read_started = Instant::now();
    let mut reader = engines
        .bus
        .consume(
            std::slice::from_ref(&topics.sessions),
            &format!("bench-read-{run}"),
            ioto_domain::ports::StartAt::Earliest,
        )
        .await?;
    let mut read = 0usize;
    let mut read_first: Option<Instant> = None;
    while read < rollups.len() {
        let b = reader
            .poll(config.ingest.batch_max, Duration::from_millis(200))
            .await?;
        if !b.is_empty() && read_first.is_none() {
            read_first = Some(Instant::now());
        }
        read += b.len();
        anyhow::ensure!(
            read_started.elapsed() < Duration::from_secs(600),
            "reading the backlog stalled at {read} of {} events",
            rollups.len()
        );
    }
    drop(reader);
    let read_time = read_first.map_or(Duration::ZERO, |f| f.elapsed());

    // The worker as `ioto ingest` runs it: live fan-out to the realtime topic included.
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let realtime = ioto::server::realtime::BusRealtime::publisher(
        Arc::clone(&engines.bus),
        &config.kafka.topic_prefix,
        stop_rx.clone(),
    )
    .await?;
    let stats = Arc::new(IngestStats::default());
    let worker = Worker::new(
        Arc::clone(&engines.bus),
        SessionIngest::new(engines.usage.clone(), Arc::clone(&engines.fleet)),
        CdrIngest::new(engines.usage.clone(), Arc::clone(&engines.fleet)),
        ioto::server::pipeline::worker_config(&config),
        Arc::clone(&stats),
    )
    .on_counted(Arc::new(move |u| realtime.sessions_updated(u)));
    eprintln!("counting the backlog …");
    let started = Instant::now();
    let handle = tokio::spawn(worker.run(stop_rx));
    let total = rollups.len() as u64;
    let mut first: Option<(Instant, u64)> = None;
    let deadline = Instant::now() + Duration::from_secs(1800);
    while stats.events.load(Ordering::Relaxed) < total {
        let n = stats.events.load(Ordering::Relaxed);
        if first.is_none() && n > 0 {
            first = Some((Instant::now(), n));
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the worker counted {n} of {total} events in 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let end = Instant::now();
    // The whole backlog counted between two looks: measure from the worker's start instead.
    let (first_at, first_n) = first.unwrap_or((started, 0));

    // The same rows with the bare insert, batch by batch.
    let raw = rows(&rollups, TenantId::new());
    eprintln!("inserting the same {} rows directly …", raw.len());
    let raw_started = Instant::now();
    for chunk in raw.chunks(config.ingest.batch_max) {
        engines.usage.write_session_updates(chunk).await?;
    }
    let raw_insert = raw_started.elapsed();

    // Latency under a steady live load.
    eprintln!("timing {probes} probes under {live_rate} events/s of live load …");
    let stages_before = stats.stages.snapshot();
    let looked_up_before = stats.sessions_looked_up.load(Ordering::Relaxed);
    let known_new_before = stats.sessions_known_new.load(Ordering::Relaxed);
    let work_before = engines.usage.work().await?;
    let live_started = Instant::now();
    let load = {
        let (bus, topic, sims) = (
            Arc::clone(&engines.bus),
            topics.sessions.clone(),
            load_sims.to_vec(),
        );
        let stop_load = stop.subscribe();
        tokio::spawn(async move { live_load(bus, topic, sims, live_rate, stop_load).await })
    };
    let waiting = Waiting::default();
    let watcher = {
        let (usage, waiting, stop_watch) =
            (Arc::clone(&engines.usage), Arc::clone(&waiting), stop.subscribe());
        tokio::spawn(async move { watch_probes(usage, waiting, stop_watch).await })
    };
    let mut tasks = Vec::new();
    for k in 0..probes {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let iccid = probe_sims[k % probe_sims.len()].clone();
        let (bus, topic, usage, waiting) = (
            Arc::clone(&engines.bus),
            topics.sessions.clone(),
            Arc::clone(&engines.usage),
            Arc::clone(&waiting),
        );
        tasks.push(tokio::spawn(async move {
            probe(bus, usage, waiting, tenant, topic, iccid, k).await
        }));
    }
    let mut latencies = Vec::new();
    let mut publish = Vec::new();
    let mut lost = 0;
    for t in tasks {
        match t.await? {
            Some((d, p)) => {
                latencies.push(d);
                publish.push(p);
            }
            None => lost += 1,
        }
    }
    let live_stages = stats.stages.snapshot().minus(&stages_before);
    let live_looked_up = stats.sessions_looked_up.load(Ordering::Relaxed) - looked_up_before;
    let live_known_new = stats.sessions_known_new.load(Ordering::Relaxed) - known_new_before;
    let live_time = live_started.elapsed();
    let live_work = match (engines.usage.work().await?, work_before) {
        (Some(after), Some(before)) => Some(after.since(&before)),
        _ => None,
    };
    let _ = stop.send(true);
    let _ = watcher.await;
    let _ = load.await;
    let _ = handle.await;
    Ok(IngestFigures {
        live_stages,
        live_looked_up,
        live_known_new,
        live_work,
        live_time,
        events: rollups.len(),
        sims: load_sims.len(),
        produce: produce_time,
        join: first_at - started,
        steady: end - first_at,
        events_in_steady: total - first_n,
        raw_insert,
        read_only: read_time,
        raw_rows: raw.len(),
        live_rate,
        latencies,
        publish_latencies: publish,
        lost_probes: lost,
        engines: described,
    })
}

/// Rollups of fresh sessions at `rate` per second until stopped.
async fn live_load(
    bus: Arc<dyn ioto_domain::ports::EventBus>,
    topic: String,
    sims: Vec<Iccid>,
    rate: u64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if rate == 0 || sims.is_empty() {
        return;
    }
    let tick = Duration::from_millis(50);
    let per_tick = (rate / 20).max(1);
    let mut n: u64 = 0;
    let mut interval = tokio::time::interval(tick);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = interval.tick() => {}
        }
        let now = Utc::now();
        let sends = (0..per_tick).map(|_| {
            n += 1;
            let iccid = sims[(n as usize) % sims.len()].clone();
            let session = format!("live-{}-{}", iccid.as_str(), n / sims.len() as u64);
            let r = SessionRollup {
                session_id: session,
                iccid,
                event_timestamp: now,
                mcc_mnc: MccMnc::parse("262-01").unwrap_or_else(|_| unreachable!()),
                radio_access_type: RadioAccessType::LteM,
                ip_address: None,
                total_bytes_in: n,
                total_bytes_out: n,
                request_type: RequestType::Update,
                cell_id: None,
            };
            let bus = Arc::clone(&bus);
            let topic = topic.clone();
            async move {
                let _ = bus
                    .publish(&topic, &r.session_id, r.to_json().to_string().as_bytes())
                    .await;
            }
        });
        futures::future::join_all(sends).await;
    }
}

/// Probes published and not yet seen, by session: the marker each waits for and whom to tell.
type Waiting = Arc<std::sync::Mutex<HashMap<SessionKey, (u64, tokio::sync::oneshot::Sender<()>)>>>;

/// How often the probes' sessions are looked for.
const PROBE_TICK: Duration = Duration::from_millis(20);

/// Looks for every waiting probe's session every [`PROBE_TICK`], in one read of the live session
/// states. One read per tick, however many probes wait: polling each probe on its own cost the
/// usage store a query per probe per tick, so the bench's own reads grew with the latency it
/// measured (~500 reads/s at 1 s) and took the store's cores from the pipeline under test.
async fn watch_probes(
    usage: Arc<dyn UsageStore>,
    waiting: Waiting,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(PROBE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        let keys: Vec<SessionKey> = waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        if keys.is_empty() {
            continue;
        }
        let Ok(states) = usage.session_states(&keys).await else {
            continue;
        };
        let mut w = waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for s in states {
            let key = s.key();
            if w.get(&key).is_some_and(|(marker, _)| s.total_in == *marker) {
                if let Some((_, seen)) = w.remove(&key) {
                    let _ = seen.send(());
                }
            }
        }
    }
}

/// Publishes one rollup for `iccid`, waits (up to 30 s) until the watcher sees its session hold
/// it, then checks that the SIM's live session (what `sim.liveSession` reads) shows it too. A
/// probe seen in its session's state but not in the live session counts as not seen.
async fn probe(
    bus: Arc<dyn ioto_domain::ports::EventBus>,
    usage: Arc<dyn UsageStore>,
    waiting: Waiting,
    tenant: TenantId,
    topic: String,
    iccid: Iccid,
    k: usize,
) -> Option<(Duration, Duration)> {
    let marker = 1_000_000 + k as u64;
    let r = SessionRollup {
        session_id: format!("probe-{}-{k}", iccid.as_str()),
        iccid: iccid.clone(),
        event_timestamp: Utc::now(),
        mcc_mnc: MccMnc::parse("262-01").ok()?,
        radio_access_type: RadioAccessType::Lte,
        ip_address: None,
        total_bytes_in: marker,
        total_bytes_out: 0,
        request_type: RequestType::Update,
        cell_id: None,
    };
    let (seen_tx, seen) = tokio::sync::oneshot::channel();
    let key = SessionKey {
        iccid: iccid.clone(),
        session_id: r.session_id.clone(),
    };
    waiting
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key.clone(), (marker, seen_tx));
    let started = Instant::now();
    let sent = bus
        .publish(&topic, &r.session_id, r.to_json().to_string().as_bytes())
        .await;
    let published = started.elapsed();
    let seen = match sent {
        Ok(()) => matches!(
            tokio::time::timeout(Duration::from_secs(30), seen).await,
            Ok(Ok(()))
        ),
        Err(_) => false,
    };
    let took = started.elapsed();
    waiting
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&key);
    if !seen {
        return None;
    }
    match usage.live_session(tenant, &iccid).await {
        Ok(Some(s)) if s.total_in == marker => Some((took, published)),
        _ => None,
    }
}

/// The figures of several runs side by side: median and spread (min–max) of each.
pub fn print_summary(runs: &[IngestFigures]) {
    use crate::common::median_spread;
    type Figure = (&'static str, fn(&IngestFigures) -> f64);
    let figures: [Figure; 7] = [
        ("ingest, events/s", |f| rate(f.events_in_steady as f64, f.steady)),
        ("broker read alone, events/s", |f| {
            rate(f.events as f64, f.read_only)
        }),
        ("bare insert, rows/s", |f| rate(f.raw_rows as f64, f.raw_insert)),
        ("event → live view p50, ms", |f| pct_of(&f.latencies, 0.5)),
        ("event → live view p99, ms", |f| pct_of(&f.latencies, 0.99)),
        ("event → live view max, ms", |f| pct_of(&f.latencies, 1.0)),
        ("probes not seen within 30 s", |f| f.lost_probes as f64),
    ];
    println!();
    println!(
        "summary of {} runs (each on its own topics, SIMs and data dir):",
        runs.len()
    );
    println!("| figure | median | spread (min–max) | each run |");
    println!("|---|---:|---:|---|");
    let row = |name: &str, values: &[f64]| {
        let (median, min, max) = median_spread(values);
        println!(
            "| {name} | {median:.0} | {min:.0}–{max:.0} | {} |",
            values
                .iter()
                .map(|v| format!("{v:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    for (name, get) in figures {
        let values: Vec<f64> = runs.iter().map(get).collect();
        row(name, &values);
    }
    // What the usage engine did beside the worker under the live load (ClickHouse).
    type Work = (&'static str, fn(&EngineWork, Duration) -> f64);
    let work: [Work; 3] = [
        ("live load: engine parts written per s", |w, t| {
            w.parts_written as f64 / t.as_secs_f64().max(1e-9)
        }),
        ("live load: merge threads, ms per s", |w, t| {
            w.merge_time.as_secs_f64() * 1000.0 / t.as_secs_f64().max(1e-9)
        }),
        ("live load: rows merged per 10 rows inserted", |w, _| {
            merge_amplification(w) * 10.0
        }),
    ];
    if runs.iter().all(|f| f.live_work.is_some()) {
        for (name, get) in work {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|f| f.live_work.as_ref().map(|w| get(w, f.live_time)))
                .collect();
            row(name, &values);
        }
    }
    // Each stage's p99 under the live load, run by run: the stage that moves is named.
    let stages: Vec<Vec<ioto_ingest::stages::StageSummary>> =
        runs.iter().map(|f| f.live_stages.summary()).collect();
    for (i, first) in stages.first().into_iter().flatten().enumerate() {
        let values: Vec<f64> = stages
            .iter()
            .map(|s| {
                s.get(i)
                    .and_then(|s| s.p99)
                    .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
            })
            .collect();
        row(
            &format!("stage `{}` p99 (bucket bound), ms", first.stage),
            &values,
        );
    }
}

/// Rows the engine's merges rewrote per row its inserts wrote.
fn merge_amplification(w: &EngineWork) -> f64 {
    w.merged_rows as f64 / (w.rows_written as f64).max(1.0)
}

/// The `p`-quantile of `v` in milliseconds (nearest rank).
fn pct_of(v: &[Duration], p: f64) -> f64 {
    let mut l = v.to_vec();
    l.sort();
    l.get(
        ((l.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(l.len().saturating_sub(1)),
    )
    .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

pub fn print(f: &IngestFigures) {
    println!(
        "engines: {}",
        f.engines
            .iter()
            .map(|(p, e)| format!("{p}={e}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "backlog: {} session rollups of {} SIMs, produced in {:.1} s ({:.0}/s)",
        f.events,
        f.sims,
        f.produce.as_secs_f64(),
        rate(f.events as f64, f.produce)
    );
    println!(
        "broker read alone (consumer, no counting): {:.0} events/s",
        rate(f.events as f64, f.read_only)
    );
    let pipeline = rate(f.events_in_steady as f64, f.steady);
    let raw = rate(f.raw_rows as f64, f.raw_insert);
    println!(
        "ingest (broker → worker → usage store, committed): {:.0} events/s over {:.1} s (first batch after {:.1} s)",
        pipeline,
        f.steady.as_secs_f64(),
        f.join.as_secs_f64()
    );
    if f.steady < Duration::from_secs(1) {
        println!(
            "  (the backlog was counted in under a second: too small for a steady figure; use --events 100000 or more)"
        );
    }
    println!(
        "bare insert of the same rows: {:.0} rows/s ({} rows in {:.1} s); pipeline / bare insert = {:.2}",
        raw,
        f.raw_rows,
        f.raw_insert.as_secs_f64(),
        pipeline / raw.max(1e-9)
    );
    let pct = |p: f64| pct_of(&f.latencies, p);
    let l = &f.latencies;
    println!(
        "event → live session visible, under {} events/s: p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} probes, {} not seen within 30 s)",
        f.live_rate,
        pct(0.5),
        pct(0.95),
        pct(0.99),
        pct(1.0),
        l.len(),
        f.lost_probes
    );
    println!(
        "  of which the broker acknowledging the publish: p50 {:.0} ms, p99 {:.0} ms",
        pct_of(&f.publish_latencies, 0.5),
        pct_of(&f.publish_latencies, 0.99)
    );
    println!(
        "  new sessions during the live load: {} known new by the worker's filter of stored sessions, {} looked up in the usage store",
        f.live_known_new, f.live_looked_up
    );
    if let Some(w) = &f.live_work {
        let secs = f.live_time.as_secs_f64().max(1e-9);
        println!(
            "  the usage engine's own work during the live load ({:.1} s; server-wide counters): {} inserts ({:.1}/s) wrote {} parts ({:.0}/s) of {} rows; background merges rewrote {} rows ({:.1}× the rows inserted) in {:.1} s of merge threads ({:.2} per second of the live load); statement threads {:.1} s of CPU",
            secs,
            w.inserts,
            w.inserts as f64 / secs,
            w.parts_written,
            w.parts_written as f64 / secs,
            w.rows_written,
            w.merged_rows,
            merge_amplification(w),
            w.merge_time.as_secs_f64(),
            w.merge_time.as_secs_f64() / secs,
            w.statement_cpu.as_secs_f64()
        );
    }
    println!("  the worker's stages during the live load (bucket bounds, at most √2 above the true value):");
    println!("  | stage | per | observations | p50 ms | p95 ms | p99 ms |");
    println!("  |---|---|---:|---:|---:|---:|");
    let ms = |d: Option<Duration>| d.map_or("–".to_owned(), |d| format!("{:.1}", d.as_secs_f64() * 1000.0));
    for s in f.live_stages.summary() {
        let per = if matches!(s.stage, "in_broker" | "visible" | "counted") {
            "event"
        } else {
            "batch"
        };
        println!(
            "  | {} | {per} | {} | {} | {} | {} |",
            s.stage,
            s.observations,
            ms(s.p50),
            ms(s.p95),
            ms(s.p99)
        );
    }
}
