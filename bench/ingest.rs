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

mod live;
mod report;

use live::{live_load, probe, watch_probes, Waiting};
pub use report::{print, print_summary};

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
use ioto_domain::ports::{EngineWork, SessionUpdate};
use ioto_domain::usage::{counted_update, step, SessionProgress, SessionRollup, Step};
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
