//! `ioto-bench faults`: a mixed load against a running server — session events published to the
//! broker, API clients, subscriptions, a bulk job and exports — while the engines are stopped
//! and started one at a time by an outage hook (`scripts/faults.sh`). Afterwards it checks what a
//! user would: every API call answered with data or `UNAVAILABLE`, every byte counted once, the
//! bulk job and the exports finished, and the server's memory. With no outages and a long
//! `--minutes` the same load is the soak.

mod load;
mod tally;

use self::load::*;
use self::tally::*;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::{NaiveDate, Utc};
use futures::StreamExt;
use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::{Granularity, ReconciliationQuery};
use ioto_ingest::worker::IngestTopics;
use serde_json::json;
use tokio::sync::watch;

use ioto::config::Config;
use ioto::engines;

/// An engine the drill takes away and brings back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    Postgres,
    ClickHouse,
    Broker,
    Hlr,
}

impl Outage {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "postgres" => Ok(Self::Postgres),
            "clickhouse" => Ok(Self::ClickHouse),
            "broker" => Ok(Self::Broker),
            "hlr" => Ok(Self::Hlr),
            other => Err(format!(
                "'{other}' is not an engine the drill can stop: postgres, clickhouse, broker or hlr"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::ClickHouse => "clickhouse",
            Self::Broker => "broker",
            Self::Hlr => "hlr",
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The running server (`http://127.0.0.1:8091`).
    pub server: String,
    /// Its process, for its resident memory.
    pub server_pid: Option<u32>,
    /// SIMs whose sessions are published.
    pub sims: usize,
    /// Session events per second.
    pub rate: u64,
    pub clients: usize,
    /// Pause of each API client between two calls.
    pub think: Duration,
    pub subscriptions: usize,
    /// SIMs of the bulk job (suspended through the simulated HLR).
    pub bulk_sims: usize,
    /// An export is requested this often.
    pub export_every: Duration,
    /// Load before the first outage, and between an engine's return and the next outage.
    pub settle: Duration,
    /// How long each engine stays down.
    pub outage: Duration,
    pub outages: Vec<Outage>,
    /// Called as `HOOK stop NAME` and `HOOK start NAME`.
    pub hook: Option<PathBuf>,
    /// Load after the last outage (the soak: the whole run).
    pub tail: Duration,
    /// Length of a reporting window of the soak (the drill reports per phase).
    pub window: Duration,
    pub seed: u64,
}

/// Bytes in and out per SIM and day, from the CDRs (the session view attributes the same bytes
/// to the same days).
type Expected = HashMap<(Iccid, NaiveDate), (u64, u64)>;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Runs the outage hook; a hook that fails stops the drill.
async fn hook(opts: &Options, verb: &str, outage: Outage) -> anyhow::Result<()> {
    let Some(hook) = &opts.hook else {
        bail!("--outages needs --outage-hook")
    };
    let (program, name) = (hook.clone(), outage.name());
    let verb_owned = verb.to_owned();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&program)
            .args([verb_owned.as_str(), name])
            .status()
    })
    .await?
    .with_context(|| format!("running {}", hook.display()))?;
    if !status.success() {
        bail!("{} {verb} {} failed ({status})", hook.display(), outage.name());
    }
    Ok(())
}

/// A step of the schedule: its label, how long it lasts, and the engine it stops (`false`) or
/// starts (`true`) first.
type Step = (String, Duration, Option<(Outage, bool)>);

/// What the drill found.
pub struct Report {
    pub failures: Vec<String>,
}

pub async fn run(config: &Config, opts: Options) -> anyhow::Result<Report> {
    let opts = Arc::new(opts);
    if !opts.outages.is_empty() && opts.hook.is_none() {
        bail!("--outages needs --outage-hook (a program called as HOOK stop|start ENGINE)");
    }
    let engines = engines::connect(config).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(opts.clients + 16)
        .build()?;
    println!("seeding a tenant with {} SIMs …", opts.sims + opts.bulk_sims);
    let fx = Arc::new(fixture(&engines, &http, &opts).await?);

    // The schedule: settle, then per engine: down, back and settle; then the tail.
    let mut schedule: Vec<Step> = Vec::new();
    if opts.outages.is_empty() {
        let windows = (opts.tail.as_secs_f64() / opts.window.as_secs_f64())
            .ceil()
            .max(1.0) as u32;
        for w in 0..windows {
            let from = opts.window * w;
            let len = opts.window.min(opts.tail.saturating_sub(from));
            schedule.push((
                format!("minutes {}–{}", from.as_secs() / 60, (from + len).as_secs() / 60),
                len,
                None,
            ));
        }
    } else {
        schedule.push(("before the outages".into(), opts.settle, None));
        for o in &opts.outages {
            schedule.push((format!("{} down", o.name()), opts.outage, Some((*o, false))));
            schedule.push((format!("{} back", o.name()), opts.settle, Some((*o, true))));
        }
        if !opts.tail.is_zero() {
            schedule.push(("after the outages".into(), opts.tail, None));
        }
    }
    let load_time: Duration = schedule.iter().map(|s| s.1).sum();
    let plan = Arc::new(plan(&fx.session_sims, opts.rate * load_time.as_secs(), opts.seed));
    println!(
        "load for {} s: {} events/s from {} SIMs ({} sessions each), {} API clients (a call every {} ms each), {} subscriptions, a bulk job of {} SIMs, an export every {} s",
        load_time.as_secs(),
        opts.rate,
        plan.iccids.len(),
        plan.sessions_per_sim,
        opts.clients,
        opts.think.as_millis(),
        opts.subscriptions,
        opts.bulk_sims,
        opts.export_every.as_secs()
    );

    let shared = Arc::new(Shared {
        phase: Phase {
            current: Mutex::new((0, schedule[0].0.clone())),
        },
        calls: Mutex::new(Calls::default()),
        messages: AtomicU64::new(0),
        subscription_errors: Mutex::new(BTreeMap::new()),
        closes: Mutex::new(BTreeMap::new()),
        reconnects: AtomicU64::new(0),
        open_subscriptions: AtomicU64::new(0),
    });
    let (stop_tx, stop) = watch::channel(false);
    let topics = IngestTopics::with_prefix(&engines.topic_prefix);
    let (sent, resent) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let publisher = tokio::spawn(publish(
        Arc::clone(&engines.bus),
        topics,
        Arc::clone(&plan),
        opts.rate,
        Arc::clone(&sent),
        Arc::clone(&resent),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..opts.clients {
        tasks.spawn(client(
            n,
            http.clone(),
            Arc::clone(&opts),
            Arc::clone(&fx),
            Arc::clone(&shared),
            stop.clone(),
        ));
    }
    let per_socket = 10usize;
    let mut left = opts.subscriptions;
    let mut socket = 0;
    while left > 0 {
        let subs = left.min(per_socket);
        tasks.spawn(subscriber(
            Arc::clone(&opts),
            Arc::clone(&fx),
            socket,
            subs,
            Arc::clone(&shared),
            stop.clone(),
        ));
        left -= subs;
        socket += 1;
    }
    let exports = tokio::spawn(exporter(
        http.clone(),
        Arc::clone(&opts),
        Arc::clone(&fx),
        stop.clone(),
    ));
    let bulk_started = Instant::now();
    let bulk = must(
        &http,
        &opts.server,
        &fx.token,
        "mutation($i: [String!]!) { provisionSims(iccids: $i, action: SUSPEND) { job { id status } } }",
        json!({ "i": fx.bulk_sims.iter().map(Iccid::as_str).collect::<Vec<_>>() }),
    )
    .await?;
    let bulk_id = bulk["provisionSims"]["job"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Memory of the server, every ten seconds.
    let rss: Arc<Mutex<Vec<(f64, f64)>>> = Arc::new(Mutex::new(Vec::new()));
    if let Some(pid) = opts.server_pid {
        let (rss, mut stop) = (Arc::clone(&rss), stop.clone());
        tokio::spawn(async move {
            loop {
                if let Some(m) = rss_mib(pid) {
                    rss.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((started.elapsed().as_secs_f64(), m));
                }
                if !pause(&mut stop, Duration::from_secs(10)).await {
                    break;
                }
            }
        });
    }

    // The schedule itself.
    let mut hook_failure = None;
    for (index, (label, length, action)) in schedule.iter().enumerate() {
        if let Some((outage, back)) = action {
            let verb = if *back { "start" } else { "stop" };
            println!(
                "[{:>5.0} s] {verb} {}",
                started.elapsed().as_secs_f64(),
                outage.name()
            );
            if let Err(e) = hook(&opts, verb, *outage).await {
                hook_failure = Some(e);
                break;
            }
        }
        shared.phase.set(index, label.clone());
        tokio::time::sleep(*length).await;
    }
    let load_end = started.elapsed();
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    if let Some(e) = hook_failure {
        return Err(e);
    }
    println!("[{:>5.0} s] load stopped", load_end.as_secs_f64());
    let export_ids = exports.await.context("the exporter")??;

    let mut failures = Vec::new();
    // The API calls, per phase.
    {
        let mut calls = shared
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        println!("\n| phase | calls | data | UNAVAILABLE | other | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|---:|");
        for (label, stats) in calls.phases.values_mut() {
            stats.latencies_ms.sort_by(f64::total_cmp);
            println!(
                "| {label} | {} | {} | {} | {} | {:.0} | {:.0} |",
                stats.latencies_ms.len(),
                stats.data,
                stats.unavailable,
                stats.other,
                pct(&stats.latencies_ms, 0.5),
                pct(&stats.latencies_ms, 0.99)
            );
            if stats.other > 0 {
                failures.push(format!(
                    "{}: {} answers neither data nor UNAVAILABLE",
                    label, stats.other
                ));
            }
        }
        for o in &calls.others {
            println!("  {o}");
        }
    }
    // Subscriptions.
    let errors = shared
        .subscription_errors
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let closes = shared
        .closes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    println!(
        "\nsubscriptions: {} messages; errors by code {errors:?}; connections ended {closes:?}; reopened {}",
        shared.messages.load(Ordering::Relaxed),
        shared.reconnects.load(Ordering::Relaxed)
    );
    for code in errors.keys().filter(|c| *c != "UNAVAILABLE") {
        failures.push(format!("a subscription answered {code}"));
    }

    // The last events: the publisher goes on until the broker took every one.
    let total_events = plan.events().count() as u64;
    let mut publisher = publisher;
    let deadline = Instant::now() + Duration::from_secs(900);
    let expected = loop {
        tokio::select! {
            done = &mut publisher => break done.context("the publisher")?,
            () = tokio::time::sleep(Duration::from_secs(10)) => {
                println!(
                    "[{:>5.0} s] {} of {total_events} events published ({} sent again)",
                    started.elapsed().as_secs_f64(),
                    sent.load(Ordering::Relaxed),
                    resent.load(Ordering::Relaxed)
                );
                if Instant::now() > deadline {
                    publisher.abort();
                    bail!("the broker took no more events for fifteen minutes after the load");
                }
            }
        }
    };
    let published_at = started.elapsed();

    // The bulk job ends on its own, every row done once.
    let deadline = Instant::now() + Duration::from_secs(900);
    let job = loop {
        let data = must(
            &http,
            &opts.server,
            &fx.token,
            "query($id: ID!) { bulkJob(id: $id) { status processed succeeded failed skipped } }",
            json!({ "id": bulk_id }),
        )
        .await?;
        let job = data["bulkJob"].clone();
        if !matches!(job["status"].as_str(), Some("PROCESSING" | "VALIDATING")) || Instant::now() > deadline {
            break job;
        }
        println!(
            "[{:>5.0} s] bulk job: {} of {} rows done",
            started.elapsed().as_secs_f64(),
            job["processed"],
            fx.bulk_sims.len()
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
    };
    println!(
        "bulk job: {} in {:.0} s, {} of {} succeeded, {} failed",
        job["status"].as_str().unwrap_or("?"),
        bulk_started.elapsed().as_secs_f64(),
        job["succeeded"],
        fx.bulk_sims.len(),
        job["failed"]
    );
    if job["status"] != "COMPLETED" || job["succeeded"].as_u64() != Some(fx.bulk_sims.len() as u64) {
        failures.push(format!("the bulk job ended {job}"));
    }

    // Every export completes with every row.
    let mut export_states: BTreeMap<String, u64> = BTreeMap::new();
    for id in &export_ids {
        let deadline = Instant::now() + Duration::from_secs(900);
        let job = loop {
            let data = must(
                &http,
                &opts.server,
                &fx.token,
                "query($id: ID!) { exportJob(id: $id) { status rows expectedRows failure } }",
                json!({ "id": id }),
            )
            .await?;
            let job = data["exportJob"].clone();
            if !matches!(job["status"].as_str(), Some("QUEUED" | "RUNNING")) || Instant::now() > deadline {
                break job;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        *export_states
            .entry(job["status"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
        let total = (fx.session_sims.len() + fx.bulk_sims.len()) as u64;
        if job["status"] != "COMPLETED" || job["rows"].as_u64() != Some(total) {
            failures.push(format!("export {id} ended {job}"));
        }
    }
    println!(
        "exports: {} requested, by status {export_states:?}",
        export_ids.len()
    );

    // Every byte counted once.
    let published = sent.load(Ordering::Relaxed);
    println!(
        "ingest: {published} events published in {:.0} s ({:.0}/s), {} sent again after the broker did not take them",
        published_at.as_secs_f64(),
        published as f64 / published_at.as_secs_f64(),
        resent.load(Ordering::Relaxed)
    );
    let want: (u64, u64) = expected.values().fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    let first = expected
        .keys()
        .map(|k| k.1)
        .min()
        .unwrap_or_else(|| Utc::now().date_naive());
    let last = expected
        .keys()
        .map(|k| k.1)
        .max()
        .unwrap_or_else(|| Utc::now().date_naive());
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    let (from, to) = (midnight(first), midnight(last + chrono::Days::new(1)));
    let deadline = Instant::now() + Duration::from_secs(600);
    let counted = loop {
        let got = match engines
            .usage
            .customer_usage(fx.tenant, None, from, to, Granularity::Day)
            .await
        {
            Ok(points) => points
                .iter()
                .fold((0u64, 0u64), |a, p| (a.0 + p.bytes_in, a.1 + p.bytes_out)),
            Err(e) => {
                tracing::warn!(error = %e, "reading the usage store");
                (0, 0)
            }
        };
        if got == want || got.0 > want.0 || got.1 > want.1 || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let drained = started.elapsed().saturating_sub(published_at);
    println!(
        "counted {} / {} bytes in, {} / {} bytes out, {:.0} s after the last event was published",
        counted.0,
        want.0,
        counted.1,
        want.1,
        drained.as_secs_f64()
    );
    if counted != want {
        failures.push(format!(
            "the usage store counted {counted:?} bytes (in, out), the events carry {want:?}"
        ));
    }
    engines.usage.flush_pending().await?;
    // Per SIM and day.
    let per_sim: Vec<(Iccid, Vec<ioto_domain::ports::UsagePoint>)> =
        futures::stream::iter(fx.session_sims.iter().cloned())
            .map(|i| {
                let usage = Arc::clone(&engines.usage);
                let tenant = fx.tenant;
                async move {
                    let points = usage.sim_usage(tenant, &i, from, to, Granularity::Day).await;
                    (i, points.unwrap_or_default())
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
    let mut got: Expected = HashMap::new();
    for (iccid, points) in per_sim {
        for p in points {
            let e = got.entry((iccid.clone(), p.period.date_naive())).or_default();
            e.0 += p.bytes_in;
            e.1 += p.bytes_out;
        }
    }
    let differ = expected.iter().filter(|(k, v)| got.get(*k) != Some(*v)).count()
        + got.keys().filter(|k| !expected.contains_key(*k)).count();
    println!("per SIM and day: {differ} of {} differ", expected.len());
    if differ > 0 {
        failures.push(format!("{differ} SIM-days differ from their events"));
    }
    let open = engines
        .usage
        .reconciliation(
            fx.tenant,
            &ReconciliationQuery {
                from: first,
                to: last,
                iccid: None,
                customer: None,
                only_differences: true,
                after: None,
                limit: 10_000,
            },
        )
        .await?;
    println!("sessions against CDRs: {} SIM-days differ", open.len());
    if !open.is_empty() {
        failures.push(format!(
            "{} SIM-days' sessions differ from their CDRs",
            open.len()
        ));
    }

    // Memory.
    let rss = rss
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if !rss.is_empty() {
        println!("\nserver resident memory (MiB), per minute:\n| minute | RSS |\n|---:|---:|");
        let mut minute = -1i64;
        for (t, m) in &rss {
            let this = (*t / 60.0) as i64;
            if this != minute {
                println!("| {this} | {m:.0} |");
                minute = this;
            }
        }
    }
    println!();
    if failures.is_empty() {
        println!("every check passed");
    } else {
        for f in &failures {
            println!("FAILED: {f}");
        }
    }
    Ok(Report { failures })
}
