//! `ioto-bench alerts`: alert rules on a fleet of `--sims` ACTIVE SIMs in one tenant, on the
//! configured engines (embedded by default), each run in fresh data dirs of its own:
//!
//! 1. what the rules cost ingest: a backlog of `--backlog` session events is counted by the
//!    server's ingest worker (`ioto serve` with ingest on: traffic evaluation, the alert clock
//!    and the quota sweep running beside it) on a fleet without rules, then on a fleet of its
//!    own with `--rules` rules, the backlog alike (same generator, SIMs numbered alike): events
//!    per second from the worker's first committed batch to its last, and the growth of the
//!    process's peak resident memory while counting;
//! 2. offline detection: every SIM last seen two days ago, an OFFLINE_HOURS rule (24 hours)
//!    beside the others, and the evaluator's clock pass (`AlertEvaluator::tick`) timed directly:
//!    the first pass (an alert opened for every SIM), then a second (nothing changes), with the
//!    peak resident memory of each and the pass's two largest reads timed alone;
//! 3. latency under load: the server counting `--rate` background events per second across the
//!    fleet while, once a second, a probe SIM's session crosses the probe rule's threshold (timed
//!    from publish until its alert is in the alert store, one read of the rule's alerts every
//!    50 ms for all waiting probes) and another probe SIM's session crosses its SUSPEND quota
//!    (timed until the SIM is SUSPENDED; when the quota's stage was reached and when the
//!    suspension was handed to the network are read back afterwards);
//! 4. where a stream pass's time goes: one evaluation of the rules for the SIMs that one interval
//!    of the background load carries (`AlertEvaluator::on_traffic`), timed whole, and the reads
//!    it makes timed alone.
//!
//! The rules: one probe rule (DATA_IN_DAY, low threshold, SIMs labelled `probe=yes`, no group
//! wait) and a mix over all SIMs whose thresholds the background load does not reach (data in a
//! day and in the period, sessions in an hour, usage over the median, new network and country,
//! first traffic, state changed, quota stage, hours offline). Background traffic stays on each
//! SIM's home network and every SIM was seen before, so the mix evaluates everything and opens
//! nothing but what the probes cause (quota stages and state changes of the quota probes).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use ioto_app::alert::{day_of, Pass, SCAN_SIMS};
use ioto_app::{AlertEvaluator, AlertService, FleetService, QuotaEvaluator, QuotaService};
use ioto_domain::alert::{AlertRule, AlertTarget, Channels, Condition, Metric, Pacing, RuleSpec, Severity};
use ioto_domain::analytics::{Cube, CubeFilter, CubeGroup, CubeQuery};
use ioto_domain::fleet::query::{LabelFilter, Page, SimFilter, SimSort};
use ioto_domain::fleet::{AuditStamp, Labels, NewSim, SimState};
use ioto_domain::identifiers::{Iccid, Imsi, MccMnc};
use ioto_domain::ports::alerts::AlertQuery;
use ioto_domain::ports::{AlertStore, EventBus, Fleet, NoNotifier, Sighting};
use ioto_domain::quota::{period_of, QuotaAction, QuotaRule};
use ioto_domain::usage::{RadioAccessType, RequestType, SessionRollup};
use ioto_domain::{Actor, Scope, SimId, TenantId};
use ioto_ingest::worker::{IngestStats, IngestTopics};
use tokio::sync::{oneshot, watch};
use tokio::time::MissedTickBehavior;
use uuid::Uuid;

use crate::common::{median_spread, peak_rss_mb};
use ioto::config::Config;
use ioto::engines::{self, Engines};
use ioto::server::App;

/// How often the server's clock pass runs during the bench (`fleet.alert_tick_seconds`).
const ALERT_TICK_SECONDS: u64 = 10;
/// The probe rule fires above this many bytes in a day.
const PROBE_THRESHOLD: u64 = 1_000_000;
/// The quota probes' limit.
const QUOTA_LIMIT: u64 = 1_000_000;
/// Bytes of a crossing session (both kinds of probe).
const CROSSING_BYTES: u64 = 2_000_000;
/// The mix's byte thresholds: far above anything the background load sends.
const HIGH_BYTES: u64 = 1 << 40;
/// How often the probes' alerts and SIM states are read.
const POLL: Duration = Duration::from_millis(50);
/// How long a probe waits for its alert before the bench fails.
const PROBE_WAIT: Duration = Duration::from_secs(120);
/// How long a quota probe waits for its SIM to be suspended, beyond one quota sweep interval.
const QUOTA_WAIT: Duration = Duration::from_secs(120);
/// The background load runs this long before the first probe, so that probes meet it in its
/// steady state rather than the quiet right after the backlog (two clock passes).
const WARM_UP: Duration = Duration::from_secs(2 * ALERT_TICK_SECONDS);
/// The home networks SIMs are spread over (a SIM's traffic stays on its own).
const NETWORKS: [&str; 4] = ["262-01", "262-02", "208-01", "234-15"];
/// SIMs inserted per statement batch while loading.
const LOAD_CHUNK: usize = 50_000;
/// Sightings recorded per call while seeding SIMs' last activity.
const ACTIVITY_CHUNK: usize = 10_000;
/// How long the worker may take over a backlog.
const BACKLOG_WAIT: Duration = Duration::from_secs(1800);

/// What the command line asks.
pub struct Options {
    pub sims: usize,
    /// Rules in all, the probe rule among them.
    pub rules: usize,
    /// Background session events per second during the latency probes.
    pub rate: u64,
    /// Probes of each kind (one of each a second), each on a SIM of its own.
    pub probes: usize,
    /// Session events in the backlog counted with and without rules.
    pub backlog: usize,
}

/// One backlog counted by the server's worker.
pub struct BacklogFigures {
    pub events: usize,
    pub produce: Duration,
    /// From starting the server to the worker's first committed batch.
    pub join: Duration,
    /// From the first committed batch to the last event counted.
    pub steady: Duration,
    pub events_in_steady: u64,
    pub rss_before_mb: f64,
    pub peak_mb: f64,
    /// Whether the peak was reset before counting (else it is the process's high-water mark).
    pub peak_reset: bool,
}

impl BacklogFigures {
    pub fn per_second(&self) -> f64 {
        rate(self.events_in_steady as f64, self.steady)
    }

    /// How far the peak resident memory rose above what the process held before.
    pub fn growth_mb(&self) -> f64 {
        self.peak_mb - self.rss_before_mb
    }
}

/// The clock pass finding every SIM offline.
pub struct OfflineFigures {
    pub sims: usize,
    /// Recording every SIM's last activity (two days ago).
    pub seed: Duration,
    pub first: Duration,
    pub first_pass: Pass,
    pub second: Duration,
    pub second_pass: Pass,
    /// Measured alone after the passes: listing the quiet SIMs, and reading the offline rule's
    /// open alerts (what each pass reads before stepping the alerts).
    pub list_quiet: Duration,
    pub quiet: usize,
    pub read_open: Duration,
    pub open: usize,
    pub rss_before_mb: f64,
    pub peak_first_mb: f64,
    pub peak_second_mb: f64,
    pub peak_reset: bool,
    /// Deleting the offline rule with its alerts afterwards (not part of the figures).
    pub delete: Duration,
}

/// One probe of a rule: publish → alert stored, and how much of it came before the evaluation
/// pass that stored the alert began (the alert's start is that pass's time), in seconds.
pub struct AlertProbe {
    pub observed: Duration,
    pub to_pass: f64,
}

/// One probe of a quota: publish → SIM SUSPENDED, and (read back afterwards) publish → stage
/// reached and publish → suspension handed to the network (the bulk job carrying it confirmed),
/// in seconds.
pub struct QuotaProbe {
    pub suspended: Duration,
    pub exceeded: Option<f64>,
    pub requested: Option<f64>,
}

/// The latency probes under the background load.
pub struct LiveFigures {
    pub asked_rate: u64,
    pub published: u64,
    pub failed_publishes: u64,
    pub load_time: Duration,
    /// Events the worker counted while the load ran (background and probes).
    pub counted: u64,
    pub alerts: Vec<AlertProbe>,
    pub quotas: Vec<QuotaProbe>,
    /// Open alerts of the tenant at the end (firing, pending), all rules together.
    pub open_firing: u64,
    pub open_pending: u64,
    pub rss_before_mb: f64,
    pub peak_mb: f64,
    pub peak_reset: bool,
    pub quota_evaluate_ms: u64,
    pub quota_sweep_seconds: u64,
}

/// One read a stream pass makes, timed alone, and how many rules make it.
pub struct StreamRead {
    pub what: &'static str,
    pub rules: usize,
    pub once: Duration,
    pub rows: usize,
}

/// One stream pass, timed whole, and its reads alone.
pub struct StreamFigures {
    pub sims: usize,
    pub rules: usize,
    pub whole: Duration,
    pub pass: Pass,
    pub lookup: Duration,
    pub reads: Vec<StreamRead>,
}

impl StreamFigures {
    /// What the reads measured alone add up to, in seconds (each as often as rules make it).
    fn alone(&self) -> f64 {
        self.lookup.as_secs_f64()
            + self
                .reads
                .iter()
                .map(|r| r.once.as_secs_f64() * r.rules as f64)
                .sum::<f64>()
    }
}

/// One run of the bench.
pub struct AlertsRun {
    pub engines: Vec<(&'static str, String)>,
    pub sims: usize,
    pub rules: usize,
    pub probes: usize,
    pub without: BacklogFigures,
    pub with: BacklogFigures,
    pub offline: OfflineFigures,
    pub live: LiveFigures,
    pub stream: StreamFigures,
}

impl AlertsRun {
    /// The worker's throughput with the rules against without, in percent (negative: slower).
    fn change(&self) -> f64 {
        (self.with.per_second() / self.without.per_second() - 1.0) * 100.0
    }
}

fn rate(n: f64, d: Duration) -> f64 {
    n / d.as_secs_f64().max(1e-9)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Seconds from `from` to `to` (wall clock).
fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from)
        .num_microseconds()
        .map_or(f64::NAN, |us| us as f64 / 1e6)
}

/// The process's resident memory now, MB.
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resets the high-water mark of resident memory to the current size (Linux `clear_refs` 5).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The home network of the SIM numbered `i`.
fn home(networks: &[MccMnc], i: usize) -> MccMnc {
    networks[i % networks.len()].clone()
}

/// A fleet in a data dir of its own: one tenant, its SIMs, and the topics the server counts.
struct Setup {
    config: Config,
    engines: Engines,
    tenant: TenantId,
    /// A TENANT_ADMIN of the tenant.
    actor: Actor,
    /// Every SIM in load order: the background SIMs first, then the alert probes, then the
    /// quota probes.
    all: Vec<Iccid>,
    ids: Vec<SimId>,
    /// How many SIMs the background load covers (the first ones).
    background: usize,
    probes: usize,
    networks: Vec<MccMnc>,
    topics: IngestTopics,
}

impl Setup {
    fn background(&self) -> &[Iccid] {
        &self.all[..self.background]
    }

    /// The alert probes' SIMs (labelled `probe=yes`).
    fn alert_probes(&self) -> impl Iterator<Item = (&Iccid, SimId)> + '_ {
        let from = self.background;
        self.all[from..from + self.probes]
            .iter()
            .zip(self.ids[from..from + self.probes].iter().copied())
    }

    /// The quota probes' SIMs (labelled `quota=yes`).
    fn quota_probes(&self) -> &[Iccid] {
        &self.all[self.background + self.probes..]
    }
}

/// Connects the engines in `config.data_dir/<name>` (with topics of run `run`) and loads the
/// fleet: `o.sims` ACTIVE SIMs, the last `2 × o.probes` of them labelled as probes.
async fn set_up(config: &Config, o: &Options, run: u32, name: &str) -> anyhow::Result<Setup> {
    let mut config = config.clone();
    config.data_dir = config.data_dir.join(name);
    config.kafka.topic_prefix = format!("{}bench{run}.", config.kafka.topic_prefix);
    config.ingest.enabled = true;
    config.fleet.alert_tick_seconds = ALERT_TICK_SECONDS;
    // Rating rates every open period once at start-up: work that is neither ingest nor alerts,
    // landing in the middle of the backlog.
    config.rating.interval_minutes = 0;
    engines::migrate(&config).await?;
    let mut engines = engines::connect(&config).await?;
    if engines.bus.info().engine == "in-process" {
        // The in-process bus keeps a bounded number and size of messages; make room for the
        // backlog and the live load (a rollup is about 350 bytes).
        let room = o.backlog + 2_000_000;
        engines.bus = Arc::new(ioto_ingest::InProcessBus::with_limits(room, room * 1_024));
    }
    let (tenant, actor, _) =
        crate::bulk::tenant(&engines, &format!("bench-alerts-{name}-{run}"), "Bench Alerts").await?;
    let networks = NETWORKS
        .iter()
        .map(|c| MccMnc::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let (n, p) = (o.sims, o.probes);
    let probe_label = Labels::parse([("probe", "yes")])?;
    let quota_label = Labels::parse([("quota", "yes")])?;
    let stamp = AuditStamp {
        actor: "bench".into(),
        actor_user_id: None,
        at: Utc::now(),
        note: None,
    };
    let started = Instant::now();
    let (mut all, mut ids) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut i = 0;
    while i < n {
        let end = (i + LOAD_CHUNK).min(n);
        let rows = (i..end)
            .map(|k| {
                let mut s = NewSim::basic(
                    tenant,
                    crate::bulk::iccid(run, k)?,
                    Imsi::parse(&format!("9{run:05}{k:09}"))?,
                );
                s.state = SimState::Active;
                if k >= n - p {
                    s.labels = quota_label.clone();
                } else if k >= n - 2 * p {
                    s.labels = probe_label.clone();
                }
                Ok(s)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let new_ids = crate::bulk::insert_sims(&engines, &rows, &stamp).await?;
        all.extend(rows.into_iter().map(|s| s.iccid));
        ids.extend(new_ids);
        i = end;
    }
    // As after any large load (and as `bench bulk` does): fresh planner statistics.
    ioto_store::analyze(&engines::store_location(&config)).await?;
    eprintln!(
        "{name}: loaded {n} SIMs in {:.1} s (statistics refreshed)",
        started.elapsed().as_secs_f64()
    );
    let topics = IngestTopics::with_prefix(&config.kafka.topic_prefix);
    topics
        .ensure(engines.bus.as_ref(), config.ingest.partitions)
        .await?;
    Ok(Setup {
        config,
        engines,
        tenant,
        actor,
        all,
        ids,
        background: n - 2 * p,
        probes: p,
        networks,
        topics,
    })
}

/// Records every SIM as last seen at `at` on its home network (the store keeps the latest
/// sighting of each).
async fn seed_activity(s: &Setup, at: DateTime<Utc>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for (c, chunk) in s.all.chunks(ACTIVITY_CHUNK).enumerate() {
        let batch: Vec<Sighting> = chunk
            .iter()
            .enumerate()
            .map(|(j, iccid)| Sighting {
                iccid: iccid.clone(),
                network: home(&s.networks, c * ACTIVITY_CHUNK + j),
                at,
                imei: None,
            })
            .collect();
        s.engines.fleet.record_activity(&batch).await?;
    }
    Ok(started.elapsed())
}

/// An evaluator of its own on the engines, as the server builds one (telling no one).
fn evaluator(engines: &Engines) -> AlertEvaluator {
    AlertEvaluator::new(
        Arc::clone(&engines.alerts),
        Arc::clone(&engines.fleet),
        engines.usage.clone(),
        Arc::new(NoNotifier),
        None,
    )
}

/// The alert and quota services as the server builds them, for creating rules and quotas.
fn services(config: &Config, engines: &Engines) -> anyhow::Result<(AlertService, QuotaService)> {
    let fleet = FleetService::new(
        Arc::clone(&engines.fleet),
        Arc::clone(&engines.bulk_jobs),
        Arc::clone(&engines.notifications),
        Arc::new(ioto::server::fleet_cipher(config)?),
        Arc::new(ioto_imports::TableFiles),
        Arc::new(NoNotifier),
        engines.network.clone(),
    );
    let alerts = AlertService::new(Arc::clone(&engines.alerts), fleet.clone(), evaluator(engines));
    let quotas = QuotaService::new(
        Arc::clone(&engines.quotas),
        fleet,
        engines.usage.clone(),
        QuotaEvaluator::new(
            Arc::clone(&engines.quotas),
            engines.usage.clone(),
            Arc::new(NoNotifier),
            None,
        ),
    );
    Ok((alerts, quotas))
}

fn spec(
    name: String,
    severity: Severity,
    target: AlertTarget,
    metric: Metric,
    threshold: Option<u64>,
    state: Option<SimState>,
    pacing: Pacing,
) -> RuleSpec {
    RuleSpec {
        name,
        description: None,
        enabled: true,
        severity,
        target,
        condition: Condition {
            metric,
            threshold,
            clear_threshold: None,
            state,
            telemetry: None,
            anomaly: None,
        },
        channels: Channels::default(),
        pacing,
    }
}

/// `rules` rule definitions: the probe rule first, then the mix over all SIMs, its ten kinds in
/// turn (a second round of a kind differs a little in threshold).
fn rule_specs(rules: usize) -> Vec<RuleSpec> {
    let mut out = vec![spec(
        "Probe: data in a day".into(),
        Severity::Major,
        AlertTarget::Labels(vec![LabelFilter {
            key: "probe".into(),
            value: Some("yes".into()),
        }]),
        Metric::DataInDay,
        Some(PROBE_THRESHOLD),
        None,
        Pacing {
            group_wait_seconds: 0,
            ..Pacing::default()
        },
    )];
    for i in 0..rules.saturating_sub(1) {
        let round = (i / 10) as u64;
        let (name, severity, metric, threshold, state) = match i % 10 {
            0 => (
                "Data in a day",
                Severity::Major,
                Metric::DataInDay,
                Some(HIGH_BYTES + round),
                None,
            ),
            1 => (
                "Data in the period",
                Severity::Major,
                Metric::DataInPeriod,
                Some(4 * HIGH_BYTES + round),
                None,
            ),
            2 => (
                "Sessions in an hour",
                Severity::Minor,
                Metric::SessionsInHour,
                Some(10_000 + round),
                None,
            ),
            3 => (
                "Usage over the median",
                Severity::Warning,
                Metric::UsageOverMedian,
                Some(10 + round),
                None,
            ),
            4 => ("New network", Severity::Info, Metric::NewNetwork, None, None),
            5 => ("New country", Severity::Warning, Metric::NewCountry, None, None),
            6 => ("First traffic", Severity::Info, Metric::FirstTraffic, None, None),
            7 => (
                "State changed",
                Severity::Info,
                Metric::StateChanged,
                None,
                (round % 2 == 1).then_some(SimState::Suspended),
            ),
            8 => (
                "Quota stage",
                Severity::Minor,
                Metric::QuotaStage,
                Some(80 + round % 20),
                None,
            ),
            _ => (
                "Offline",
                Severity::Critical,
                Metric::OfflineHours,
                Some(72 + round),
                None,
            ),
        };
        out.push(spec(
            format!("{name} #{}", round + 1),
            severity,
            AlertTarget::AllSims,
            metric,
            threshold,
            state,
            Pacing::default(),
        ));
    }
    out
}

/// Creates the rules through the alert service (as `createAlertRule` does); the probe rule first.
async fn create_rules(s: &Setup, alerts: &AlertService, rules: usize) -> anyhow::Result<Vec<AlertRule>> {
    let mut out = Vec::with_capacity(rules);
    for spec in rule_specs(rules) {
        out.push(alerts.create_alert_rule(&s.actor, None, spec).await?);
    }
    Ok(out)
}

/// The backlog of `events` session events of the background SIMs, each SIM's on its home
/// network (the ingest bench's generator).
fn backlog_of(s: &Setup, events: usize) -> Vec<SessionRollup> {
    let background = s.background();
    let mut rollups = crate::ingest::backlog(background, events, None);
    let index: HashMap<&Iccid, usize> = background.iter().enumerate().map(|(i, c)| (c, i)).collect();
    for r in &mut rollups {
        if let Some(i) = index.get(&r.iccid) {
            r.mcc_mnc = home(&s.networks, *i);
        }
    }
    rollups
}

/// Publishes rollups keyed by session: sessions concurrently, each session's rollups in order.
async fn produce(
    bus: &Arc<dyn EventBus>,
    topic: &str,
    rollups: &[SessionRollup],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
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
    results.into_iter().collect::<anyhow::Result<()>>()?;
    Ok(started.elapsed())
}

/// The server running on a fleet's engines, with ingest on.
struct Server {
    signal: oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    stats: Arc<IngestStats>,
}

impl Server {
    /// Builds and serves the app on the fleet's engines (its bus is the one the bench publishes
    /// to), as `ioto serve` does.
    async fn start(s: &Setup) -> anyhow::Result<Self> {
        let app = App::with_engines(&s.config, s.engines.clone()).await?;
        let stats = app
            .pipeline
            .ingest
            .clone()
            .context("the server started no ingest worker")?;
        let listener = App::bind(&s.config).await?;
        let (signal, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.serve(listener, async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            signal,
            handle,
            stats,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.signal.send(());
        self.handle.await?
    }

    fn counted(&self) -> u64 {
        self.stats.events.load(Ordering::Relaxed)
    }
}

/// Publishes the backlog, then starts the server and times its worker over it: from its first
/// committed batch to the last event counted. The server is left running.
async fn count_backlog(s: &Setup, rollups: Vec<SessionRollup>) -> anyhow::Result<(BacklogFigures, Server)> {
    let events = rollups.len();
    eprintln!("producing {events} session events …");
    let produce_time = produce(&s.engines.bus, &s.topics.sessions, &rollups).await?;
    drop(rollups);
    eprintln!("counting them …");
    let peak_reset = reset_peak();
    let rss_before_mb = rss_mb();
    let started = Instant::now();
    let server = Server::start(s).await?;
    let total = events as u64;
    let mut first: Option<(Instant, u64)> = None;
    let deadline = started + BACKLOG_WAIT;
    loop {
        let n = server.counted();
        if n >= total {
            break;
        }
        if first.is_none() && n > 0 {
            first = Some((Instant::now(), n));
        }
        ensure!(
            Instant::now() < deadline,
            "the worker counted {n} of {total} events in {} minutes",
            BACKLOG_WAIT.as_secs() / 60
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let end = Instant::now();
    let peak_mb = peak_rss_mb();
    // The whole backlog counted between two looks: measure from the server's start instead.
    let (first_at, first_n) = first.unwrap_or((started, 0));
    Ok((
        BacklogFigures {
            events,
            produce: produce_time,
            join: first_at - started,
            steady: end - first_at,
            events_in_steady: total - first_n,
            rss_before_mb,
            peak_mb,
            peak_reset,
        },
        server,
    ))
}

/// Every SIM last seen two days ago, an OFFLINE_HOURS rule of 24 hours beside the others, and
/// two clock passes timed; then the rule is deleted with its alerts.
async fn offline(s: &Setup, alerts: &AlertService) -> anyhow::Result<OfflineFigures> {
    eprintln!("recording every SIM as last seen two days ago …");
    let seed = seed_activity(s, Utc::now() - chrono::Duration::days(2)).await?;
    let rule = alerts
        .create_alert_rule(
            &s.actor,
            None,
            spec(
                "Offline for a day".into(),
                Severity::Critical,
                AlertTarget::AllSims,
                Metric::OfflineHours,
                Some(24),
                None,
                Pacing::default(),
            ),
        )
        .await?;
    let evaluator = evaluator(&s.engines);
    eprintln!("timing the clock pass over {} SIMs …", s.all.len());
    let peak_reset = reset_peak();
    let rss_before_mb = rss_mb();
    let t = Instant::now();
    let first_pass = evaluator.tick(Utc::now()).await?;
    let first = t.elapsed();
    let peak_first_mb = peak_rss_mb();
    reset_peak();
    let t = Instant::now();
    let second_pass = evaluator.tick(Utc::now()).await?;
    let second = t.elapsed();
    let peak_second_mb = peak_rss_mb();

    // The pass's two largest reads, alone: the quiet SIMs, and the rule's alerts.
    let now = Utc::now();
    let filter = SimFilter {
        states: vec![SimState::Active],
        last_activity_to: Some(now - chrono::Duration::hours(24)),
        ..SimFilter::default()
    };
    let t = Instant::now();
    let quiet = s
        .engines
        .fleet
        .list_sims(
            Scope::tenant(s.tenant),
            s.tenant,
            &filter,
            &Page::<SimSort>::first(SCAN_SIMS),
        )
        .await?
        .len();
    let list_quiet = t.elapsed();
    let reopen_since = now - chrono::Duration::seconds(i64::from(rule.spec.pacing.group_interval_seconds));
    let t = Instant::now();
    let open = s
        .engines
        .alerts
        .current_alerts(rule.id, None, reopen_since)
        .await?
        .len();
    let read_open = t.elapsed();
    ensure!(
        open == s.all.len(),
        "the offline rule has {open} alerts after two passes, not one per SIM ({})",
        s.all.len()
    );
    let t = Instant::now();
    alerts.delete_alert_rule(&s.actor, rule.id).await?;
    let delete = t.elapsed();
    Ok(OfflineFigures {
        sims: s.all.len(),
        seed,
        first,
        first_pass,
        second,
        second_pass,
        list_quiet,
        quiet,
        read_open,
        open,
        rss_before_mb,
        peak_first_mb,
        peak_second_mb,
        peak_reset,
        delete,
    })
}

/// A rollup of a new session with `bytes` in, now.
fn crossing(session: String, iccid: Iccid, network: MccMnc, bytes: u64) -> SessionRollup {
    SessionRollup {
        session_id: session,
        iccid,
        event_timestamp: Utc::now(),
        mcc_mnc: network,
        radio_access_type: RadioAccessType::LteM,
        ip_address: None,
        total_bytes_in: bytes,
        total_bytes_out: 0,
        request_type: RequestType::Update,
        cell_id: None,
        imei: None,
    }
}

/// Background session events at `rate` per second over `sims` until stopped, each SIM's on its
/// home network, sessions of ten updates. Answers the events published, the time, and the
/// publishes that failed.
async fn background_load(
    bus: Arc<dyn EventBus>,
    topic: String,
    sims: Vec<Iccid>,
    networks: Vec<MccMnc>,
    rate: u64,
    mut stop: watch::Receiver<bool>,
) -> (u64, Duration, u64) {
    let started = Instant::now();
    if rate == 0 || sims.is_empty() {
        return (0, Duration::ZERO, 0);
    }
    let count = sims.len() as u64;
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tick.tick() => {}
        }
        // What the rate asks by now, at most a second's worth at once.
        let expected = (rate as f64 * started.elapsed().as_secs_f64()) as u64;
        let due = expected.saturating_sub(sent).min(rate);
        if due == 0 {
            continue;
        }
        let now = Utc::now();
        let sends = (sent..sent + due).map(|n| {
            let j = (n % count) as usize;
            let round = n / count;
            let r = SessionRollup {
                session_id: format!("bg-{}-{}", sims[j].as_str(), round / 10),
                iccid: sims[j].clone(),
                event_timestamp: now,
                mcc_mnc: home(&networks, j),
                radio_access_type: RadioAccessType::LteM,
                ip_address: None,
                total_bytes_in: (round % 10 + 1) * 10_000,
                total_bytes_out: (round % 10 + 1) * 1_000,
                request_type: RequestType::Update,
                cell_id: None,
                imei: None,
            };
            let bus = Arc::clone(&bus);
            let topic = topic.clone();
            async move {
                bus.publish(&topic, &r.session_id, r.to_json().to_string().as_bytes())
                    .await
                    .is_ok()
            }
        });
        let results = futures::future::join_all(sends).await;
        failed += results.iter().filter(|ok| !**ok).count() as u64;
        sent += due;
    }
    (sent - failed, started.elapsed(), failed)
}

/// Alert probes waiting, by SIM: whom to tell when and with what start their alert was seen.
type AlertWaiting = Arc<Mutex<HashMap<SimId, oneshot::Sender<(Instant, DateTime<Utc>)>>>>;
/// Quota probes waiting, by ICCID: whom to tell when their SIM was seen suspended.
type QuotaWaiting = Arc<Mutex<HashMap<Iccid, oneshot::Sender<Instant>>>>;
/// Reads that failed while watching, and the last error.
type WatchErrors = (u64, Option<String>);

/// Reads the probe rule's alerts every [`POLL`] while probes wait (one read for all of them).
async fn watch_alerts(
    store: Arc<dyn AlertStore>,
    tenant: TenantId,
    rule: Uuid,
    limit: u64,
    waiting: AlertWaiting,
    mut stop: watch::Receiver<bool>,
) -> WatchErrors {
    let query = AlertQuery {
        tenant_id: Some(tenant),
        rule_id: Some(rule),
        ..AlertQuery::default()
    };
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut failed, mut last) = (0u64, None);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return (failed, last),
            _ = tick.tick() => {}
        }
        if lock(&waiting).is_empty() {
            continue;
        }
        let read = store.alerts(Scope::Platform, &query, None, limit).await;
        let seen = Instant::now();
        match read {
            Ok(found) => {
                let mut w = lock(&waiting);
                for a in found {
                    if let Some(tell) = a.sim_id.and_then(|id| w.remove(&id)) {
                        let _ = tell.send((seen, a.started_at));
                    }
                }
            }
            Err(e) => {
                failed += 1;
                last = Some(e.to_string());
            }
        }
    }
}

/// Reads the waiting quota probes' SIMs every [`POLL`] (one read for all of them).
async fn watch_suspended(
    fleet: Arc<dyn Fleet>,
    waiting: QuotaWaiting,
    mut stop: watch::Receiver<bool>,
) -> WatchErrors {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut failed, mut last) = (0u64, None);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return (failed, last),
            _ = tick.tick() => {}
        }
        let keys: Vec<Iccid> = lock(&waiting).keys().cloned().collect();
        if keys.is_empty() {
            continue;
        }
        let read = fleet.sims_by_iccid(Scope::Platform, &keys).await;
        let seen = Instant::now();
        match read {
            Ok(sims) => {
                let mut w = lock(&waiting);
                for sim in sims {
                    if sim.state == SimState::Suspended {
                        if let Some(tell) = w.remove(&sim.iccid) {
                            let _ = tell.send(seen);
                        }
                    }
                }
            }
            Err(e) => {
                failed += 1;
                last = Some(e.to_string());
            }
        }
    }
}

/// Publishes a session crossing the probe rule's threshold for `sim` and waits (up to
/// [`PROBE_WAIT`]) until the watcher sees its alert.
async fn alert_probe(
    bus: Arc<dyn EventBus>,
    topic: String,
    waiting: AlertWaiting,
    iccid: Iccid,
    sim: SimId,
    network: MccMnc,
    k: usize,
) -> anyhow::Result<AlertProbe> {
    let (tell, seen) = oneshot::channel();
    lock(&waiting).insert(sim, tell);
    let r = crossing(
        format!("probe-{}-{k}", iccid.as_str()),
        iccid.clone(),
        network,
        CROSSING_BYTES,
    );
    let published_at = Utc::now();
    let started = Instant::now();
    let sent = bus
        .publish(&topic, &r.session_id, r.to_json().to_string().as_bytes())
        .await;
    if let Err(e) = sent {
        lock(&waiting).remove(&sim);
        bail!("alert probe {k}: publishing the crossing session of SIM {iccid} failed: {e}");
    }
    match tokio::time::timeout(PROBE_WAIT, seen).await {
        Ok(Ok((at, alert_start))) => Ok(AlertProbe {
            observed: at.saturating_duration_since(started),
            to_pass: seconds_between(published_at, alert_start),
        }),
        _ => {
            lock(&waiting).remove(&sim);
            bail!(
                "alert probe {k}: no alert of the probe rule for SIM {iccid} within {} s of publishing its crossing session",
                PROBE_WAIT.as_secs()
            )
        }
    }
}

/// Publishes a session crossing the quota of `iccid` and waits (up to `wait`) until the SIM is
/// SUSPENDED; answers that time and when the session was published.
async fn quota_probe(
    bus: Arc<dyn EventBus>,
    topic: String,
    waiting: QuotaWaiting,
    iccid: Iccid,
    network: MccMnc,
    k: usize,
    wait: Duration,
) -> anyhow::Result<(Duration, DateTime<Utc>)> {
    let (tell, seen) = oneshot::channel();
    lock(&waiting).insert(iccid.clone(), tell);
    let r = crossing(
        format!("quota-{}-{k}", iccid.as_str()),
        iccid.clone(),
        network,
        CROSSING_BYTES,
    );
    let published_at = Utc::now();
    let started = Instant::now();
    let sent = bus
        .publish(&topic, &r.session_id, r.to_json().to_string().as_bytes())
        .await;
    if let Err(e) = sent {
        lock(&waiting).remove(&iccid);
        bail!("quota probe {k}: publishing the crossing session of SIM {iccid} failed: {e}");
    }
    match tokio::time::timeout(wait, seen).await {
        Ok(Ok(at)) => Ok((at.saturating_duration_since(started), published_at)),
        _ => {
            lock(&waiting).remove(&iccid);
            bail!(
                "quota probe {k}: SIM {iccid} was not SUSPENDED within {} s of publishing the session crossing its quota",
                wait.as_secs()
            )
        }
    }
}

/// The first failure of `results`, with how many failed, as one error.
fn first_failure<T>(
    what: &str,
    results: Vec<anyhow::Result<T>>,
    errors: &WatchErrors,
) -> anyhow::Result<Vec<T>> {
    let total = results.len();
    let mut ok = Vec::with_capacity(total);
    let mut failed = Vec::new();
    for r in results {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => failed.push(e),
        }
    }
    if let Some(first) = failed.into_iter().next() {
        let reads = match errors {
            (0, _) => String::new(),
            (n, last) => format!(
                "; {n} of the watcher's reads failed, the last with: {}",
                last.as_deref().unwrap_or("?")
            ),
        };
        bail!(
            "{} of {total} {what} did not complete{reads}; the first: {first:#}",
            total - ok.len()
        );
    }
    Ok(ok)
}

/// The background load at `o.rate` events per second with the server counting it; once a
/// second an alert probe and a quota probe.
async fn live(
    s: &Setup,
    server: &Server,
    quotas: &QuotaService,
    probe_rule: &AlertRule,
    o: &Options,
) -> anyhow::Result<LiveFigures> {
    let mut quota_ids = Vec::with_capacity(s.probes);
    for iccid in s.quota_probes() {
        let rule = QuotaRule {
            limit_bytes: QUOTA_LIMIT,
            stages: vec![80],
            action: QuotaAction::Suspend,
            resume_next_period: false,
        };
        quota_ids.push(quotas.set_sim_quota(&s.actor, iccid, rule).await?.id);
    }
    let zone = s
        .engines
        .fleet
        .settings(Scope::Platform, s.tenant)
        .await?
        .time_zone;
    let peak_reset = reset_peak();
    let rss_before_mb = rss_mb();
    let (stop, stopped) = watch::channel(false);
    let load = tokio::spawn(background_load(
        Arc::clone(&s.engines.bus),
        s.topics.sessions.clone(),
        s.background().to_vec(),
        s.networks.clone(),
        o.rate,
        stopped.clone(),
    ));
    let counted_before = server.counted();
    eprintln!(
        "background load of {} events/s; probes from {} s on …",
        o.rate,
        WARM_UP.as_secs()
    );
    tokio::time::sleep(WARM_UP).await;

    let alert_waiting = AlertWaiting::default();
    let alert_watcher = tokio::spawn(watch_alerts(
        Arc::clone(&s.engines.alerts),
        s.tenant,
        probe_rule.id,
        (s.probes + 10) as u64,
        Arc::clone(&alert_waiting),
        stopped.clone(),
    ));
    let quota_waiting = QuotaWaiting::default();
    let quota_watcher = tokio::spawn(watch_suspended(
        Arc::clone(&s.engines.fleet),
        Arc::clone(&quota_waiting),
        stopped.clone(),
    ));
    let quota_wait = Duration::from_secs(s.config.fleet.quota_sweep_seconds) + QUOTA_WAIT;
    let network = home(&s.networks, 0);
    let mut alert_tasks = Vec::with_capacity(s.probes);
    let mut quota_tasks = Vec::with_capacity(s.probes);
    let mut every = tokio::time::interval(Duration::from_secs(1));
    for (k, ((iccid, sim), quota_sim)) in s.alert_probes().zip(s.quota_probes()).enumerate() {
        every.tick().await;
        alert_tasks.push(tokio::spawn(alert_probe(
            Arc::clone(&s.engines.bus),
            s.topics.sessions.clone(),
            Arc::clone(&alert_waiting),
            iccid.clone(),
            sim,
            network.clone(),
            k,
        )));
        quota_tasks.push(tokio::spawn(quota_probe(
            Arc::clone(&s.engines.bus),
            s.topics.sessions.clone(),
            Arc::clone(&quota_waiting),
            quota_sim.clone(),
            network.clone(),
            k,
            quota_wait,
        )));
    }
    eprintln!(
        "{} probes of each kind published; waiting for their outcomes …",
        s.probes
    );
    let mut alert_results = Vec::with_capacity(alert_tasks.len());
    for t in alert_tasks {
        alert_results.push(t.await?);
    }
    let mut quota_results = Vec::with_capacity(quota_tasks.len());
    for t in quota_tasks {
        quota_results.push(t.await?);
    }
    let _ = stop.send(true);
    let (published, load_time, failed_publishes) = load.await?;
    let counted = server.counted() - counted_before;
    let peak_mb = peak_rss_mb();
    let alert_errors = alert_watcher.await?;
    let quota_errors = quota_watcher.await?;
    let alert_probes = first_failure("alert probes", alert_results, &alert_errors)?;
    let suspended = first_failure("quota probes", quota_results, &quota_errors)?;

    // When each quota reached its limit and when its suspension was handed to the network.
    let mut quota_probes = Vec::with_capacity(suspended.len());
    for ((took, published_at), quota) in suspended.into_iter().zip(quota_ids) {
        let (start, _) = period_of(zone, published_at);
        let period = s
            .engines
            .quotas
            .quota_period(Scope::Platform, quota, start)
            .await?;
        let exceeded = period
            .as_ref()
            .and_then(|p| p.exceeded_at)
            .map(|t| seconds_between(published_at, t));
        let requested = match period.and_then(|p| p.bulk_job_id) {
            Some(job) => s
                .engines
                .bulk_jobs
                .bulk_job(Scope::Platform, job)
                .await?
                .map(|j| seconds_between(published_at, j.confirmed_at.unwrap_or(j.created_at))),
            None => None,
        };
        quota_probes.push(QuotaProbe {
            suspended: took,
            exceeded,
            requested,
        });
    }
    let open = s
        .engines
        .alerts
        .open_alert_counts(Scope::Platform, s.tenant, None)
        .await?;
    Ok(LiveFigures {
        asked_rate: o.rate,
        published,
        failed_publishes,
        load_time,
        counted,
        alerts: alert_probes,
        quotas: quota_probes,
        open_firing: open.iter().map(|c| c.firing).sum(),
        open_pending: open.iter().map(|c| c.pending).sum(),
        rss_before_mb,
        peak_mb,
        peak_reset,
        quota_evaluate_ms: s.config.fleet.quota_evaluate_ms,
        quota_sweep_seconds: s.config.fleet.quota_sweep_seconds,
    })
}

/// Midnight (UTC) of the day of `at`.
fn utc_day(at: DateTime<Utc>) -> DateTime<Utc> {
    let day = at.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default();
    DateTime::from_naive_utc_and_offset(day, Utc)
}

/// Rules over every SIM with one of these metrics (the probe rule watches only probe SIMs).
fn rules_over_all(rules: &[AlertRule], metrics: &[Metric]) -> usize {
    rules
        .iter()
        .filter(|r| metrics.contains(&r.spec.condition.metric) && r.spec.target == AlertTarget::AllSims)
        .count()
}

/// A query of `cube` per SIM (and network) over `bounds`, for these SIMs.
fn by_sim(cube: Cube, bounds: Vec<DateTime<Utc>>, iccids: &[Iccid], network: bool) -> CubeQuery {
    CubeQuery {
        cube,
        bounds,
        group: CubeGroup {
            sim: true,
            network,
            ..CubeGroup::default()
        },
        filter: CubeFilter {
            iccids: Some(iccids.to_vec()),
            ..CubeFilter::default()
        },
        runs: Vec::new(),
        count_sims: false,
    }
}

/// One stream pass (`AlertEvaluator::on_traffic`) for the SIMs one evaluation interval of the
/// background load carries, timed whole; then the reads it makes, each timed alone (the same
/// queries the evaluator builds: the SIMs, each rule kind's cube read, one rule's open alerts).
async fn stream_pass(s: &Setup, rules: &[AlertRule], sims: usize) -> anyhow::Result<StreamFigures> {
    let n = sims.clamp(1, s.background.max(1)).min(s.all.len());
    let seen: Vec<(Iccid, MccMnc)> = s.all[..n]
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), home(&s.networks, i)))
        .collect();
    let now = Utc::now();
    let t = Instant::now();
    let pass = evaluator(&s.engines).on_traffic(&seen, now).await?;
    let whole = t.elapsed();

    let iccids: Vec<Iccid> = seen.into_iter().map(|(i, _)| i).collect();
    let t = Instant::now();
    let found = s.engines.fleet.sims_by_iccid(Scope::Platform, &iccids).await?;
    let lookup = t.elapsed();
    let keys: Vec<String> = found.iter().map(|sim| sim.id.0.to_string()).collect();
    let zone = s
        .engines
        .fleet
        .settings(Scope::Platform, s.tenant)
        .await?
        .time_zone;
    let today = utc_day(now);
    let hour = now - chrono::Duration::seconds(now.timestamp().rem_euclid(3600));
    let (day_start, day_end) = day_of(zone, now);
    let (period_start, period_end) = period_of(zone, now);
    let habit: Vec<DateTime<Utc>> = (0..=31)
        .map(|d| today - chrono::Duration::days(30) + chrono::Duration::days(d))
        .collect();
    let cube_reads: Vec<(&'static str, usize, CubeQuery)> = vec![
        (
            "data today (hourly cube)",
            rules_over_all(rules, &[Metric::DataInDay]),
            by_sim(Cube::UsageHourly, vec![day_start, day_end], &iccids, false),
        ),
        (
            "data this period (hourly cube)",
            rules_over_all(rules, &[Metric::DataInPeriod]),
            by_sim(Cube::UsageHourly, vec![period_start, period_end], &iccids, false),
        ),
        (
            "sessions this hour (sessions cube)",
            rules_over_all(rules, &[Metric::SessionsInHour]),
            by_sim(
                Cube::SessionsHourly,
                vec![hour, hour + chrono::Duration::hours(1)],
                &iccids,
                false,
            ),
        ),
        (
            "31 days, day by day (daily cube)",
            rules_over_all(rules, &[Metric::UsageOverMedian]),
            by_sim(Cube::UsageDaily, habit, &iccids, false),
        ),
        (
            "networks of 30 days (daily cube)",
            rules_over_all(rules, &[Metric::NewNetwork, Metric::NewCountry]),
            by_sim(
                Cube::UsageDaily,
                vec![today - chrono::Duration::days(30), today],
                &iccids,
                true,
            ),
        ),
    ];
    let mut reads = Vec::new();
    for (what, count, query) in cube_reads {
        if count == 0 {
            continue;
        }
        let t = Instant::now();
        let rows = s.engines.usage.cube_rows(s.tenant, &query).await?.len();
        reads.push(StreamRead {
            what,
            rules: count,
            once: t.elapsed(),
            rows,
        });
    }
    // Rules observing every SIM read their alerts of all of them (new networks and countries
    // read alerts only of what is new).
    let level = [
        Metric::DataInDay,
        Metric::DataInPeriod,
        Metric::SessionsInHour,
        Metric::UsageOverMedian,
    ];
    if let Some(rule) = rules
        .iter()
        .find(|r| level.contains(&r.spec.condition.metric) && r.spec.target == AlertTarget::AllSims)
    {
        let since = now - chrono::Duration::seconds(i64::from(rule.spec.pacing.group_interval_seconds));
        let t = Instant::now();
        let rows = s
            .engines
            .alerts
            .current_alerts(rule.id, Some(keys.as_slice()), since)
            .await?
            .len();
        reads.push(StreamRead {
            what: "the SIMs' alerts of a rule (alert store)",
            rules: rules_over_all(rules, &level),
            once: t.elapsed(),
            rows,
        });
    }
    Ok(StreamFigures {
        sims: n,
        rules: rules.len(),
        whole,
        pass,
        lookup,
        reads,
    })
}

/// One run: the backlog without rules, then a fleet of its own with the rules: the offline
/// pass, the backlog again, the probes under load, and a stream pass taken apart.
pub async fn alerts(config: &Config, o: &Options) -> anyhow::Result<AlertsRun> {
    ensure!(
        o.sims > 2 * o.probes,
        "--sims ({}) must exceed twice --probes ({}): each probe has a SIM of its own, apart from the background load",
        o.sims,
        o.probes
    );
    ensure!(
        config.fleet.quota_sweep_seconds > 0,
        "fleet.quota_sweep_seconds is 0: the server would send no suspension at a quota's limit"
    );
    let run = (Uuid::new_v4().as_u128() % 100_000) as u32;

    // Without rules.
    let without = set_up(config, o, run, "without").await?;
    println!("{}", without.engines.versions().await?);
    seed_activity(&without, Utc::now() - chrono::Duration::hours(1)).await?;
    let rollups = backlog_of(&without, o.backlog);
    let (plain, server) = count_backlog(&without, rollups).await?;
    server.stop().await?;
    drop(without);

    // With the rules, in data of its own.
    let with = set_up(config, o, (run + 1) % 100_000, "with").await?;
    let (alert_service, quota_service) = services(&with.config, &with.engines)?;
    let created = create_rules(&with, &alert_service, o.rules).await?;
    let probe_rule = created.first().context("no probe rule was created")?;
    let offline = offline(&with, &alert_service).await?;
    // Back online (an hour ago), as before the backlog without rules.
    seed_activity(&with, Utc::now() - chrono::Duration::hours(1)).await?;
    let rollups = backlog_of(&with, o.backlog);
    let (ruled, server) = count_backlog(&with, rollups).await?;
    let live = live(&with, &server, &quota_service, probe_rule, o).await?;
    server.stop().await?;
    let interval_sims =
        ((o.rate as f64) * with.config.fleet.quota_evaluate_ms as f64 / 1000.0).ceil() as usize;
    eprintln!("taking a stream pass over {interval_sims} SIMs apart …");
    let stream = stream_pass(&with, &created, interval_sims).await?;
    Ok(AlertsRun {
        engines: engines::describe_config(&with.config),
        sims: o.sims,
        rules: created.len(),
        probes: o.probes,
        without: plain,
        with: ruled,
        offline,
        live,
        stream,
    })
}

/// The `p`-quantile of `values` (nearest rank); NaN when there are none.
fn pct(values: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn observed(r: &AlertsRun) -> Vec<f64> {
    r.live.alerts.iter().map(|a| a.observed.as_secs_f64()).collect()
}

fn to_pass(r: &AlertsRun) -> Vec<f64> {
    r.live.alerts.iter().map(|a| a.to_pass).collect()
}

fn suspended(r: &AlertsRun) -> Vec<f64> {
    r.live.quotas.iter().map(|q| q.suspended.as_secs_f64()).collect()
}

fn requested(r: &AlertsRun) -> Vec<f64> {
    r.live.quotas.iter().filter_map(|q| q.requested).collect()
}

fn exceeded(r: &AlertsRun) -> Vec<f64> {
    r.live.quotas.iter().filter_map(|q| q.exceeded).collect()
}

/// "p50 x s, p95 y s, max z s" of seconds.
fn spread(values: &[f64]) -> String {
    format!(
        "p50 {:.2} s, p95 {:.2} s, max {:.2} s",
        pct(values, 0.5),
        pct(values, 0.95),
        pct(values, 1.0)
    )
}

fn peak_note(reset: bool) -> &'static str {
    if reset {
        ""
    } else {
        " (peak not resettable here: the process's high-water mark)"
    }
}

fn backlog_line(name: &str, f: &BacklogFigures) {
    println!(
        "  {name:<16} {:>9.0} events/s   (produced in {:.1} s; first batch after {:.2} s; {} events in {:.1} s; peak RSS {:.0} MB, {:+.0} MB over {:.0} MB before{})",
        f.per_second(),
        f.produce.as_secs_f64(),
        f.join.as_secs_f64(),
        f.events_in_steady,
        f.steady.as_secs_f64(),
        f.peak_mb,
        f.growth_mb(),
        f.rss_before_mb,
        peak_note(f.peak_reset)
    );
}

pub fn print(r: &AlertsRun) {
    println!(
        "engines: {}",
        r.engines
            .iter()
            .map(|(p, e)| format!("{p}={e}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "fleet: {} ACTIVE SIMs in one tenant ({} with background traffic, {} alert probes, {} quota probes); {} rules (the probe rule and {} over all SIMs)",
        r.sims,
        r.sims - 2 * r.probes,
        r.probes,
        r.probes,
        r.rules,
        r.rules.saturating_sub(1)
    );

    println!(
        "\nbacklog of {} session events counted by the server's worker (first committed batch to the last):",
        r.without.events
    );
    backlog_line("without rules", &r.without);
    backlog_line(format!("with {} rules", r.rules).as_str(), &r.with);
    println!(
        "  with rules against without: throughput {:+.1} %, peak RSS growth {:+.0} MB",
        r.change(),
        r.with.growth_mb() - r.without.growth_mb()
    );

    let o = &r.offline;
    println!(
        "\noffline pass (AlertEvaluator::tick, {} rules with an OFFLINE_HOURS rule of 24 hours; every one of {} SIMs last seen 2 days ago, recorded in {:.1} s):",
        o.first_pass.rules, o.sims, o.seed.as_secs_f64()
    );
    let pass = |p: &Pass| {
        format!(
            "{} observed, {} written, {} notifications",
            p.observed, p.written, p.notifications
        )
    };
    println!(
        "  first pass   {:>7.2} s: {}; peak RSS {:.0} MB ({:+.0} MB over {:.0} MB before){}",
        o.first.as_secs_f64(),
        pass(&o.first_pass),
        o.peak_first_mb,
        o.peak_first_mb - o.rss_before_mb,
        o.rss_before_mb,
        peak_note(o.peak_reset)
    );
    println!(
        "  second pass  {:>7.2} s: {}; peak RSS {:.0} MB",
        o.second.as_secs_f64(),
        pass(&o.second_pass),
        o.peak_second_mb
    );
    println!(
        "  measured alone: listing the {} quiet SIMs {:.2} s, reading the rule's {} open alerts {:.2} s; the rest of the first pass ({:.2} s) steps and writes the alerts",
        o.quiet,
        o.list_quiet.as_secs_f64(),
        o.open,
        o.read_open.as_secs_f64(),
        (o.first.as_secs_f64() - o.list_quiet.as_secs_f64() - o.read_open.as_secs_f64()).max(0.0)
    );
    println!(
        "  (deleting the rule with its alerts afterwards: {:.2} s)",
        o.delete.as_secs_f64()
    );

    let l = &r.live;
    println!(
        "\nunder load: {} events/s asked, {:.0}/s published for {:.0} s ({} failed), {} counted meanwhile; peak RSS {:.0} MB ({:+.0} MB over {:.0} MB before{})",
        l.asked_rate,
        rate(l.published as f64, l.load_time),
        l.load_time.as_secs_f64(),
        l.failed_publishes,
        l.counted,
        l.peak_mb,
        l.peak_mb - l.rss_before_mb,
        l.rss_before_mb,
        peak_note(l.peak_reset)
    );
    println!(
        "  server: clock pass every {ALERT_TICK_SECONDS} s, traffic evaluated {} ms after it is counted, quota sweep every {} s; open alerts at the end: {} firing, {} pending",
        l.quota_evaluate_ms, l.quota_sweep_seconds, l.open_firing, l.open_pending
    );
    let obs = observed(r);
    let before = to_pass(r);
    let within: Vec<f64> = r
        .live
        .alerts
        .iter()
        .map(|a| a.observed.as_secs_f64() - a.to_pass)
        .collect();
    println!(
        "  event published → alert stored ({} probes, read every {} ms): {}",
        obs.len(),
        POLL.as_millis(),
        spread(&obs)
    );
    println!(
        "    until the evaluation pass that stored it began: {}; that pass until the alert was seen: {}",
        spread(&before),
        spread(&within)
    );
    println!(
        "  quota crossing → SIM SUSPENDED ({} probes): {}",
        l.quotas.len(),
        spread(&suspended(r))
    );
    println!(
        "    → limit reached (quota evaluated): {}; → suspension sent (its bulk job confirmed, at a quota sweep): {}",
        spread(&exceeded(r)),
        spread(&requested(r))
    );

    let s = &r.stream;
    println!(
        "\nstream pass (AlertEvaluator::on_traffic) over {} SIMs (one {} ms interval at {} events/s), {} rules: {:.2} s ({})",
        s.sims,
        l.quota_evaluate_ms,
        l.asked_rate,
        s.rules,
        s.whole.as_secs_f64(),
        pass(&s.pass)
    );
    println!(
        "  measured alone: looking up the SIMs {:.3} s",
        s.lookup.as_secs_f64()
    );
    for read in &s.reads {
        println!(
            "  measured alone: {} {:.3} s ({} rows) × {} rules",
            read.what,
            read.once.as_secs_f64(),
            read.rows,
            read.rules
        );
    }
    println!(
        "  the reads alone add up to {:.2} s, {:.0} % of the pass",
        s.alone(),
        s.alone() / s.whole.as_secs_f64().max(1e-9) * 100.0
    );
}

/// The figures of several runs side by side: median and spread (min–max) of each.
pub fn print_summary(runs: &[AlertsRun]) {
    type Figure = (&'static str, fn(&AlertsRun) -> f64);
    let figures: [Figure; 16] = [
        ("backlog without rules, events/s", |r| r.without.per_second()),
        ("backlog with rules, events/s", |r| r.with.per_second()),
        ("throughput with rules against without, %", |r| r.change()),
        ("peak RSS growth counting, with rules − without, MB", |r| {
            r.with.growth_mb() - r.without.growth_mb()
        }),
        ("offline: first pass, s", |r| r.offline.first.as_secs_f64()),
        ("offline: second pass, s", |r| r.offline.second.as_secs_f64()),
        ("offline: first pass peak RSS growth, MB", |r| {
            r.offline.peak_first_mb - r.offline.rss_before_mb
        }),
        ("event → alert stored p50, s", |r| pct(&observed(r), 0.5)),
        ("event → alert stored p95, s", |r| pct(&observed(r), 0.95)),
        ("event → alert stored max, s", |r| pct(&observed(r), 1.0)),
        ("quota crossing → suspension sent p50, s", |r| {
            pct(&requested(r), 0.5)
        }),
        ("quota crossing → suspension sent p95, s", |r| {
            pct(&requested(r), 0.95)
        }),
        ("quota crossing → SIM SUSPENDED p50, s", |r| {
            pct(&suspended(r), 0.5)
        }),
        ("quota crossing → SIM SUSPENDED p95, s", |r| {
            pct(&suspended(r), 0.95)
        }),
        ("stream pass over one interval's SIMs, s", |r| {
            r.stream.whole.as_secs_f64()
        }),
        ("background load published, events/s", |r| {
            rate(r.live.published as f64, r.live.load_time)
        }),
    ];
    println!();
    println!(
        "summary of {} runs (each on its own SIMs, topics and data dirs):",
        runs.len()
    );
    println!("| figure | median | spread (min–max) | each run |");
    println!("|---|---:|---:|---|");
    for (name, get) in figures {
        let values: Vec<f64> = runs.iter().map(get).collect();
        let (median, min, max) = median_spread(&values);
        let digits = if median.abs() >= 100.0 { 0 } else { 2 };
        println!(
            "| {name} | {median:.digits$} | {min:.digits$}–{max:.digits$} | {} |",
            values
                .iter()
                .map(|v| format!("{v:.digits$}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
