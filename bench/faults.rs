//! `ioto-bench faults`: a mixed load against a running server — session events published to the
//! broker, API clients, subscriptions, a bulk job and exports — while the engines are stopped
//! and started one at a time by an outage hook (`scripts/faults.sh`). Afterwards it checks what a
//! user would: every API call answered with data or `UNAVAILABLE`, every byte counted once, the
//! bulk job and the exports finished, and the server's memory. With no outages and a long
//! `--minutes` the same load is the soak.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::{NaiveDate, Utc};
use futures::{SinkExt, StreamExt};
use ioto_domain::identifiers::{Iccid, MccMnc};
use ioto_domain::ports::{EventBus, Granularity, ReconciliationQuery};
use ioto_domain::TenantId;
use ioto_ingest::simulator::{SessionPlan, SimEvent};
use ioto_ingest::worker::IngestTopics;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::bulk::{iccid, load_sims, login, tenant};
use ioto::config::Config;
use ioto::engines::{self, Engines};

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

/// How one API call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Data,
    Unavailable,
    /// An answer that is neither data nor `UNAVAILABLE`: a user would see it.
    Other(String),
}

#[derive(Default)]
struct PhaseStats {
    data: u64,
    unavailable: u64,
    other: u64,
    latencies_ms: Vec<f64>,
}

/// Calls per phase, and the first few answers a user should not see.
#[derive(Default)]
struct Calls {
    phases: BTreeMap<usize, (String, PhaseStats)>,
    others: Vec<String>,
}

/// The phase calls are counted in now: its index and label.
struct Phase {
    current: Mutex<(usize, String)>,
}

impl Phase {
    fn get(&self) -> (usize, String) {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, index: usize, label: String) {
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (index, label);
    }
}

struct Shared {
    phase: Phase,
    calls: Mutex<Calls>,
    messages: AtomicU64,
    subscription_errors: Mutex<BTreeMap<String, u64>>,
    closes: Mutex<BTreeMap<String, u64>>,
    reconnects: AtomicU64,
    open_subscriptions: AtomicU64,
}

impl Shared {
    fn record(&self, op: &str, outcome: Outcome, ms: f64) {
        let (index, label) = self.phase.get();
        let mut calls = self
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Outcome::Other(why) = &outcome {
            if calls.others.len() < 20 {
                calls.others.push(format!("{label}: {op}: {why}"));
            }
        }
        let (_, stats) = calls
            .phases
            .entry(index)
            .or_insert_with(|| (label, PhaseStats::default()));
        match outcome {
            Outcome::Data => stats.data += 1,
            Outcome::Unavailable => stats.unavailable += 1,
            Outcome::Other(_) => stats.other += 1,
        }
        stats.latencies_ms.push(ms);
    }

    fn count(map: &Mutex<BTreeMap<String, u64>>, key: String) {
        *map.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key)
            .or_default() += 1;
    }
}

/// The drill's tenant and what it was given.
struct Fixture {
    tenant: TenantId,
    token: String,
    /// SIMs with sessions, then the bulk job's.
    session_sims: Vec<Iccid>,
    bulk_sims: Vec<Iccid>,
}

async fn fixture(engines: &Engines, http: &reqwest::Client, opts: &Options) -> anyhow::Result<Fixture> {
    let run = u32::try_from(rand::random::<u64>() % 100_000).unwrap_or(0);
    let slug = format!("faults-{run:05}");
    let (tenant_id, _, email) = tenant(engines, &slug, "Fault Drill").await?;
    let total = opts.sims + opts.bulk_sims;
    load_sims(engines, tenant_id, run, 0, total).await?;
    let all = (0..total)
        .map(|i| iccid(run, i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let token = login(http, &opts.server, &email)
        .await
        .context("signing in to the server")?;
    let (session_sims, bulk_sims) = all.split_at(opts.sims);
    Ok(Fixture {
        tenant: tenant_id,
        token,
        session_sims: session_sims.to_vec(),
        bulk_sims: bulk_sims.to_vec(),
    })
}

/// A plan of about `events` session events for the SIMs, over the last day.
fn plan(sims: &[Iccid], events: u64, seed: u64) -> SessionPlan {
    let now = Utc::now();
    let mut plan = SessionPlan {
        iccids: sims.to_vec(),
        from: now - chrono::Duration::hours(24),
        to: now - chrono::Duration::minutes(1),
        bytes_min: 100_000,
        bytes_max: 50_000_000,
        sessions_per_sim: 1,
        update_every: chrono::Duration::minutes(5),
        networks: ["262-01", "262-02", "234-15", "208-01", "310-260"]
            .iter()
            .filter_map(|c| MccMnc::parse(c).ok())
            .collect(),
        seed,
    };
    // Events of one session per SIM, from a sample, scaled to the target.
    let sample = sims.len().min(200);
    let per_sim = (0..sample).map(|i| plan.events_of(i).len()).sum::<usize>() as f64 / sample.max(1) as f64;
    let sessions = (events as f64 / (per_sim.max(1.0) * sims.len().max(1) as f64)).ceil();
    plan.sessions_per_sim = (sessions as u32).max(1);
    plan
}

/// Bytes in and out per SIM and day, from the CDRs (the session view attributes the same bytes
/// to the same days).
type Expected = HashMap<(Iccid, NaiveDate), (u64, u64)>;

/// Publishes every event of the plan at `rate` per second, SIMs concurrently and each SIM's
/// events in order; an event the broker does not take is sent again until it does (the
/// pipeline counts a repeated rollup or CDR once). Returns what the events add up to.
async fn publish(
    bus: Arc<dyn EventBus>,
    topics: IngestTopics,
    plan: Arc<SessionPlan>,
    rate: u64,
    sent: Arc<AtomicU64>,
    resent: Arc<AtomicU64>,
) -> Expected {
    let started = Instant::now();
    let expected = Arc::new(Mutex::new(Expected::new()));
    futures::stream::iter(0..plan.iccids.len())
        .for_each_concurrent(64, |i| {
            let (bus, topics, plan, sent, resent, expected) = (
                Arc::clone(&bus),
                topics.clone(),
                Arc::clone(&plan),
                Arc::clone(&sent),
                Arc::clone(&resent),
                Arc::clone(&expected),
            );
            async move {
                let mut mine: Expected = HashMap::new();
                for event in plan.events_of(i) {
                    let due =
                        Duration::from_secs_f64(sent.load(Ordering::Relaxed) as f64 / rate.max(1) as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                    let (topic, key, body) = match &event {
                        SimEvent::Rollup(r) => {
                            (&topics.sessions, r.session_id.clone(), r.to_json().to_string())
                        }
                        SimEvent::Cdr(c) => {
                            let e = mine.entry((c.iccid.clone(), c.start.date_naive())).or_default();
                            e.0 += c.bytes_in;
                            e.1 += c.bytes_out;
                            (&topics.cdrs, c.iccid.as_str().to_owned(), c.to_json().to_string())
                        }
                    };
                    let mut pause = Duration::from_millis(200);
                    while let Err(e) = bus.publish(topic, &key, body.as_bytes()).await {
                        tracing::debug!(error = %e, "the broker did not take an event; sending it again");
                        resent.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(5));
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                let mut all = expected.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for (k, (i, o)) in mine {
                    let e = all.entry(k).or_default();
                    e.0 += i;
                    e.1 += o;
                }
            }
        })
        .await;
    let expected = expected.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    expected.clone()
}

/// One GraphQL call: how it ended.
async fn call(http: &reqwest::Client, server: &str, token: &str, query: &str, variables: Value) -> Outcome {
    let resp = match http
        .post(format!("{server}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Outcome::Other(format!("no answer: {e}")),
    };
    let status = resp.status();
    let body: Value = match resp.json().await {
        Ok(b) => b,
        Err(e) => return Outcome::Other(format!("HTTP {status}, not JSON: {e}")),
    };
    match body["errors"].as_array() {
        None if status.is_success() && !body["data"].is_null() => Outcome::Data,
        Some(errors) if !errors.is_empty() => {
            if errors.iter().all(|e| e["extensions"]["code"] == "UNAVAILABLE") {
                Outcome::Unavailable
            } else {
                Outcome::Other(format!("HTTP {status}: {}", Value::Array(errors.clone())))
            }
        }
        _ => Outcome::Other(format!("HTTP {status}: {body}")),
    }
}

const PAGE: &str = "{ sims(first: 20) { nodes { iccid state } pageInfo { hasNextPage } } }";
const SIM: &str = "query($i: Iccid!) { sim(iccid: $i) { iccid state liveSession { bytesIn } } }";
const USAGE: &str = "query($i: Iccid!, $f: DateTime!, $t: DateTime!) { sim(iccid: $i) { usage(from: $f, to: $t, granularity: DAY) { period bytesIn } } }";
const DASHBOARD: &str = "{ dashboard { bytesTotal activeSims onlineNow } }";
const ME: &str = "{ me { email role } }";
const JOBS: &str = "{ bulkJobs(first: 5) { nodes { id status processed } } }";

/// One API client: a call, a pause, the next call, until `stop`.
async fn client(
    n: usize,
    http: reqwest::Client,
    opts: Arc<Options>,
    fx: Arc<Fixture>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let ops: [(&str, &str); 6] = [
        ("sims", PAGE),
        ("sim", SIM),
        ("usage", USAGE),
        ("dashboard", DASHBOARD),
        ("me", ME),
        ("bulkJobs", JOBS),
    ];
    // Clients start spread over one pause, not all at once.
    let offset = opts.think.mul_f64((n % 100) as f64 / 100.0);
    if !pause(&mut stop, offset).await {
        return;
    }
    let mut k = n;
    loop {
        let (op, query) = ops[k % ops.len()];
        let sim = &fx.session_sims[(k * 7919) % fx.session_sims.len()];
        let now = Utc::now();
        let vars = json!({
            "i": sim.as_str(),
            "f": (now - chrono::Duration::days(2)).to_rfc3339(),
            "t": now.to_rfc3339(),
        });
        let started = Instant::now();
        let outcome = call(&http, &opts.server, &fx.token, query, vars).await;
        shared.record(op, outcome, started.elapsed().as_secs_f64() * 1e3);
        k += 1;
        if !pause(&mut stop, opts.think).await {
            return;
        }
    }
}

/// Sleeps `d` unless `stop` comes first; `false` when it did.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let stopped = tokio::select! {
        _ = stop.wait_for(|s| *s) => true,
        _ = tokio::time::sleep(d) => false,
    };
    !stopped && !*stop.borrow()
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket and starts `subs` subscriptions on it: on the first socket one of them
/// follows every live session of the tenant (a wall display), and on each the others alternate
/// between one SIM's live session (a SIM's page) and the tenant's SIM state changes.
async fn open_subscriptions(
    server: &str,
    token: &str,
    socket: usize,
    subs: usize,
    sims: &[Iccid],
) -> anyhow::Result<Ws> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("{}/graphql/ws", server.replacen("http", "ws", 1));
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    ws.send(Message::text(
        json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } })
            .to_string(),
    ))
    .await?;
    for id in 0..subs {
        let sim = &sims[(socket * subs + id) % sims.len()];
        let (query, variables) = if socket == 0 && id == 0 {
            (
                "subscription { liveSessions { iccid session { bytesIn } } }",
                json!({}),
            )
        } else if id % 2 == 0 {
            (
                "subscription($i: Iccid!) { liveSessions(iccid: $i) { iccid session { bytesIn } } }",
                json!({ "i": sim.as_str() }),
            )
        } else {
            ("subscription { simStateChanged { iccid from to } }", json!({}))
        };
        ws.send(Message::text(
            json!({ "id": id.to_string(), "type": "subscribe", "payload": { "query": query, "variables": variables } })
                .to_string(),
        ))
        .await?;
    }
    Ok(ws)
}

/// One WebSocket holding `subs` subscriptions until `stop`; reopened (as a client library
/// would) when the server closes it or completes a subscription.
async fn subscriber(
    opts: Arc<Options>,
    fx: Arc<Fixture>,
    socket: usize,
    subs: usize,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let mut ws = match open_subscriptions(&opts.server, &fx.token, socket, subs, &fx.session_sims).await {
            Ok(ws) => ws,
            Err(e) => {
                Shared::count(&shared.closes, format!("could not open: {e}"));
                if !pause(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                shared.reconnects.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        shared
            .open_subscriptions
            .fetch_add(subs as u64, Ordering::Relaxed);
        let ended = loop {
            let msg = tokio::select! {
                _ = stop.wait_for(|s| *s) => None,
                m = ws.next() => Some(m),
            };
            let Some(msg) = msg else {
                let _ = ws.close(None).await;
                shared
                    .open_subscriptions
                    .fetch_sub(subs as u64, Ordering::Relaxed);
                return;
            };
            match msg {
                None => break "the connection ended without a close frame".to_owned(),
                Some(Err(e)) => break format!("the connection failed: {e}"),
                Some(Ok(Message::Close(frame))) => {
                    break frame.map_or("closed without a code".to_owned(), |f| {
                        format!("closed {} {}", u16::from(f.code), f.reason)
                    })
                }
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    match v["type"].as_str() {
                        Some("next") if v["payload"]["errors"].is_array() => {
                            for e in v["payload"]["errors"].as_array().into_iter().flatten() {
                                Shared::count(
                                    &shared.subscription_errors,
                                    e["extensions"]["code"].as_str().unwrap_or("no code").to_owned(),
                                );
                            }
                        }
                        Some("next") => {
                            shared.messages.fetch_add(1, Ordering::Relaxed);
                        }
                        Some("error") => {
                            for e in v["payload"].as_array().into_iter().flatten() {
                                Shared::count(
                                    &shared.subscription_errors,
                                    e["extensions"]["code"].as_str().unwrap_or("no code").to_owned(),
                                );
                            }
                        }
                        Some("complete") => {
                            Shared::count(&shared.closes, "a subscription completed".into());
                        }
                        Some("ping") => {
                            let _ = ws
                                .send(Message::text(json!({ "type": "pong" }).to_string()))
                                .await;
                        }
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
            }
        };
        shared
            .open_subscriptions
            .fetch_sub(subs as u64, Ordering::Relaxed);
        Shared::count(&shared.closes, ended);
        if !pause(&mut stop, Duration::from_secs(1)).await {
            return;
        }
        shared.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// A GraphQL call the drill itself depends on (the bulk job, the exports): tried again while
/// the answer is `UNAVAILABLE` or missing, for up to ten minutes.
async fn must(
    http: &reqwest::Client,
    server: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let resp = http
            .post(format!("{server}/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await;
        let body: Option<Value> = match resp {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
        match body {
            Some(b) if b["errors"].is_null() => return Ok(b["data"].clone()),
            Some(b)
                if b["errors"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["extensions"]["code"] != "UNAVAILABLE")) =>
            {
                bail!("{query}: {}", b["errors"])
            }
            _ if Instant::now() > deadline => bail!("{query}: no answer for ten minutes"),
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// Requests an export every `every` until `stop`; their ids.
async fn exporter(
    http: reqwest::Client,
    opts: Arc<Options>,
    fx: Arc<Fixture>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut n = 0usize;
    loop {
        let (kind, format) = if n % 2 == 0 {
            ("SIM_INVENTORY", "CSV")
        } else {
            ("SIM_INVENTORY", "PARQUET")
        };
        let data = must(
            &http,
            &opts.server,
            &fx.token,
            "mutation($k: ExportKind!, $f: ExportFormat!) { requestExport(kind: $k, format: $f) { id } }",
            json!({ "k": kind, "f": format }),
        )
        .await?;
        ids.push(
            data["requestExport"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        n += 1;
        if !pause(&mut stop, opts.export_every).await {
            return Ok(ids);
        }
    }
}

/// The resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

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

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
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
