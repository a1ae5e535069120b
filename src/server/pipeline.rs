//! The ingest pipeline as this process runs it: the worker counting sessions and CDRs off the
//! bus, retention where the usage store has no TTL, and device telemetry from MQTT (or the
//! in-process feed the demo's simulator writes to).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use ioto_app::{CdrIngest, DeadLetter, SessionIngest, TelemetryIngest};
use ioto_domain::events::FleetEvent;
use ioto_domain::ports::{Sighting, TelemetryMessage};
use ioto_ingest::worker::{dead_letter_json, IngestStats, IngestTopics, Worker, WorkerConfig};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::engines::Engines;
use crate::server::realtime::BusRealtime;
use ioto_resolvers::Realtime as _;

/// Counters of the telemetry ingest, for `/metrics`.
#[derive(Debug, Default)]
pub struct TelemetryStats {
    pub stored: AtomicU64,
    pub write_retries: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
}

impl TelemetryStats {
    pub fn rejected(&self) -> BTreeMap<&'static str, u64> {
        self.rejected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn count_rejected(&self, dead: &[DeadLetter]) {
        let mut m = self
            .rejected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for d in dead {
            *m.entry(d.rejection.code()).or_default() += 1;
        }
    }
}

/// What is running, for metrics and for the demo's simulators.
#[derive(Clone, Default)]
pub struct Pipeline {
    pub ingest: Option<Arc<IngestStats>>,
    pub telemetry: Option<Arc<TelemetryStats>>,
}

/// The worker's settings from configuration.
pub fn worker_config(config: &Config) -> WorkerConfig {
    let prefix = &config.kafka.topic_prefix;
    let mut w = WorkerConfig::new(prefix);
    w.group = format!("{prefix}{}", config.ingest.group);
    w.batch_max = config.ingest.batch_max;
    w.batch_wait = Duration::from_millis(config.ingest.batch_wait_ms);
    w
}

/// A counter bumped at every `VisibilityChanged` fleet event (from any instance): the worker
/// looks SIM owners up afresh when it moves.
fn owners_changed_on(realtime: &BusRealtime, mut shutdown: watch::Receiver<bool>) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0u64);
    let mut events = realtime.fleet_events();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                event = events.next() => match event {
                    Some(FleetEvent::VisibilityChanged(_)) => tx.send_modify(|n| *n += 1),
                    Some(_) => {}
                    None => return,
                },
            }
        }
    });
    rx
}

/// Starts the worker, the retention task and telemetry ingest as configured.
pub async fn start(
    config: &Config,
    engines: &Engines,
    realtime: Arc<BusRealtime>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Pipeline> {
    let worker = worker_config(config);
    worker
        .topics
        .ensure(engines.bus.as_ref(), config.ingest.partitions)
        .await?;
    let stats = Arc::new(IngestStats::default());
    let live = Arc::clone(&realtime);
    let first_traffic = ioto_app::AlertEvaluator::new(
        Arc::clone(&engines.alerts),
        Arc::clone(&engines.fleet),
        engines.usage.clone(),
        realtime.clone(),
        None,
    );
    let activity = activity_recorder(Arc::clone(&engines.fleet), Some(first_traffic), shutdown.clone());
    let evaluator = ioto_app::QuotaEvaluator::new(
        Arc::clone(&engines.quotas),
        engines.usage.clone(),
        realtime.clone(),
        None,
    );
    let alerts = ioto_app::AlertEvaluator::new(
        Arc::clone(&engines.alerts),
        Arc::clone(&engines.fleet),
        engines.usage.clone(),
        realtime.clone(),
        None,
    );
    // Quotas and alert rules each in their own loop: a slow alert pass never holds back the
    // suspension of a SIM past its limit.
    let every = Duration::from_millis(config.fleet.quota_evaluate_ms);
    let quotas = traffic_evaluator(Some(evaluator), None, every, shutdown.clone());
    let alerts = traffic_evaluator(None, Some(alerts), every, shutdown.clone());
    let on_counted: ioto_ingest::worker::OnCounted = Arc::new(move |updates| {
        live.sessions_updated(updates);
        let with_traffic: Vec<(ioto_domain::Iccid, ioto_domain::MccMnc)> = updates
            .iter()
            .filter(|u| u.delta_in + u.delta_out > 0)
            .map(|u| (u.iccid.clone(), u.mcc_mnc.clone()))
            .collect();
        let _ = alerts.send(with_traffic.clone());
        let _ = quotas.send(with_traffic);
        let _ = activity.send(
            updates
                .iter()
                .map(|u| Sighting {
                    iccid: u.iccid.clone(),
                    network: u.mcc_mnc.clone(),
                    at: u.event_time,
                    imei: u.imei.clone(),
                })
                .collect(),
        );
    });
    let (bus, usage, fleet) = (
        Arc::clone(&engines.bus),
        engines.usage.clone(),
        Arc::clone(&engines.fleet),
    );
    let (window, worker_stats) = (config.ingest.window(), Arc::clone(&stats));
    let topics = worker.topics.clone();
    let owners_changed = owners_changed_on(&realtime, shutdown.clone());
    let build = move || {
        Worker::new(
            Arc::clone(&bus),
            SessionIngest::new(usage.clone(), Arc::clone(&fleet)).with_window(window),
            CdrIngest::new(usage.clone(), Arc::clone(&fleet)).with_window(window),
            worker.clone(),
            Arc::clone(&worker_stats),
        )
        .on_counted(Arc::clone(&on_counted))
        .forget_owners_on(owners_changed.clone())
    };
    tokio::spawn(supervise(build, Arc::clone(&stats), shutdown.clone()));
    // 0: not on this instance, as for the scheduler, rating and the counters' folding.
    if config.ingest.retention_check_minutes > 0 {
        spawn_retention(engines, config.ingest.retention_check_minutes, shutdown.clone());
    }
    let mut pipeline = Pipeline {
        ingest: Some(stats),
        ..Pipeline::default()
    };
    if config.ingest.telemetry {
        let tstats = Arc::new(TelemetryStats::default());
        let ingest = TelemetryIngest::new(engines.usage.clone(), Arc::clone(&engines.fleet))
            .with_window(config.ingest.window());
        // One shared subscription per deployment (the topic prefix tells deployments apart).
        let group = format!("{}ioto-telemetry", config.kafka.topic_prefix);
        let messages = engines.telemetry.subscribe(&group).await?;
        let readings_to_rules = telemetry_alerts(
            ioto_app::AlertEvaluator::new(
                Arc::clone(&engines.alerts),
                Arc::clone(&engines.fleet),
                engines.usage.clone(),
                realtime.clone(),
                None,
            ),
            shutdown.clone(),
        );
        tokio::spawn(store_telemetry(
            ingest,
            messages,
            Arc::clone(&engines.bus),
            topics,
            realtime,
            readings_to_rules,
            Arc::clone(&tstats),
            shutdown.clone(),
        ));
        pipeline.telemetry = Some(tstats);
    }
    Ok(pipeline)
}

/// Runs the ingest worker until shutdown. A worker that ends otherwise — an error it cannot
/// handle, or a panic — is reported (`/readyz` says so while it is down), counted in
/// `ioto_ingest_worker_restarts_total`, and started afresh after a pause; nothing is lost, as it
/// commits only what it counted.
pub async fn supervise(
    build: impl Fn() -> Worker + Send + 'static,
    stats: Arc<IngestStats>,
    shutdown: watch::Receiver<bool>,
) {
    let mut attempt = 0u32;
    loop {
        stats.set_running(None);
        let ended = tokio::spawn(build().run(shutdown.clone())).await;
        if *shutdown.borrow() {
            return;
        }
        let why = match ended {
            Ok(Ok(())) => "the worker returned without a shutdown".to_owned(),
            Ok(Err(e)) => format!("the worker failed: {e}"),
            Err(e) if e.is_panic() => format!("the worker panicked: {e}"),
            Err(e) => format!("the worker was cancelled: {e}"),
        };
        tracing::error!(reason = %why, "ingest worker stopped; restarting it");
        stats.set_running(Some(why));
        stats.restarts.fetch_add(1, Ordering::Relaxed);
        attempt += 1;
        let mut pause_rx = shutdown.clone();
        if ioto_ingest::worker::pause(ioto_ingest::worker::backoff(attempt), &mut pause_rx).await {
            return;
        }
    }
}

/// Drops expired session data every `minutes` (more than 0) where the usage store has no TTL.
fn spawn_retention(engines: &Engines, minutes: u64, mut shutdown: watch::Receiver<bool>) {
    let usage = Arc::clone(&engines.usage);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(minutes * 60));
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                _ = tick.tick() => {}
            }
            match usage.drop_expired(chrono::Utc::now()).await {
                Ok(dropped) if dropped.is_empty() => {}
                Ok(dropped) => tracing::info!(?dropped, "expired usage data dropped"),
                Err(e) => tracing::warn!(error = %e, "dropping expired usage data failed; tried again later"),
            }
        }
    });
}

/// Batches readings (up to 1,000 or 500 ms), stores them (retrying while the store is down) and
/// only then acknowledges them to the broker; then hands what was stored to the telemetry alert
/// rules (`alerts`, evaluated off this path).
#[expect(
    clippy::too_many_arguments,
    reason = "the batch's source and where its outcome goes, each used once"
)]
async fn store_telemetry(
    mut ingest: TelemetryIngest,
    mut rx: BoxStream<'static, TelemetryMessage>,
    bus: Arc<dyn ioto_domain::ports::EventBus>,
    topics: IngestTopics,
    realtime: Arc<BusRealtime>,
    alerts: mpsc::Sender<StoredReadings>,
    stats: Arc<TelemetryStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            m = rx.next() => match m { Some(m) => m, None => return },
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while batch.len() < 1000 {
            match tokio::time::timeout_at(deadline, rx.next()).await {
                Ok(Some(m)) => batch.push(m),
                Ok(None) | Err(_) => break,
            }
        }
        let pairs: Vec<(String, Vec<u8>)> = batch
            .iter()
            .map(|m| (m.topic.clone(), m.payload.clone()))
            .collect();
        let mut attempt = 0u32;
        let outcome = loop {
            match ingest.process(&pairs).await {
                Ok(o) => break o,
                Err(e) => {
                    stats.write_retries.fetch_add(1, Ordering::Relaxed);
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "storing telemetry failed; retrying (nothing acknowledged)");
                    if ioto_ingest::worker::pause(ioto_ingest::worker::backoff(attempt), &mut shutdown).await
                    {
                        return;
                    }
                }
            }
        };
        for d in &outcome.rejected {
            let body = dead_letter_json(d).to_string();
            if let Err(e) = bus
                .publish(&topics.dead_letters, &d.source, body.as_bytes())
                .await
            {
                tracing::warn!(error = %e, reason = d.rejection.code(), "telemetry dead letter not published");
            }
        }
        stats.count_rejected(&outcome.rejected);
        stats
            .stored
            .fetch_add(outcome.stored.len() as u64, Ordering::Relaxed);
        realtime.telemetry_stored(&outcome.stored);
        for m in batch {
            m.ack().await;
        }
        if !outcome.stored.is_empty() {
            // A full queue (rules slower than the readings for a while) passes this batch over:
            // a reading is a level, and the device's next one is observed afresh.
            if let Err(mpsc::error::TrySendError::Full(skipped)) = alerts.try_send(outcome.stored) {
                tracing::warn!(
                    readings = skipped.len(),
                    "telemetry alert rules behind; a batch of readings not evaluated"
                );
            }
        }
    }
}

/// Readings stored, each with its device's tenant.
type StoredReadings = Vec<(ioto_domain::TenantId, ioto_domain::usage::TelemetryReading)>;

/// Batches of stored readings waiting for the telemetry alert rules (a bound on what waits).
const TELEMETRY_ALERT_QUEUE: usize = 64;

/// Evaluates the telemetry alert rules on the readings stored, in a task of its own: storing and
/// acknowledging readings never wait for it. Readings stored while a pass runs join the next one
/// (each rule observes a device's latest reading of the batch; a reading is a level). A pass that
/// fails is logged, not retried: the device's next reading is observed afresh.
fn telemetry_alerts(
    alerts: ioto_app::AlertEvaluator,
    mut shutdown: watch::Receiver<bool>,
) -> mpsc::Sender<StoredReadings> {
    let (tx, mut rx) = mpsc::channel::<StoredReadings>(TELEMETRY_ALERT_QUEUE);
    tokio::spawn(async move {
        loop {
            let mut stored = tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                stored = rx.recv() => match stored {
                    None => break,
                    Some(stored) => stored,
                },
            };
            while let Ok(more) = rx.try_recv() {
                stored.extend(more);
            }
            if let Err(e) = alerts.on_telemetry(&stored, chrono::Utc::now()).await {
                tracing::warn!(error = %e, readings = stored.len(), "telemetry alert rules not evaluated; the devices' next readings are");
            }
        }
    });
    tx
}

/// How often SIM sightings are written to the transactional store.
const ACTIVITY_EVERY: Duration = Duration::from_secs(5);

/// Keeps SIMs' `last_network` and `last_activity_at` up to date from counted session updates,
/// off the counting path: sightings are merged (latest per SIM) and written every few seconds.
pub fn activity_recorder(
    fleet: Arc<dyn ioto_domain::ports::Fleet>,
    first_traffic: Option<ioto_app::AlertEvaluator>,
    mut shutdown: watch::Receiver<bool>,
) -> mpsc::UnboundedSender<Vec<Sighting>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Sighting>>();
    tokio::spawn(async move {
        let mut latest: std::collections::HashMap<ioto_domain::Iccid, Sighting> =
            std::collections::HashMap::new();
        let mut tick = tokio::time::interval(ACTIVITY_EVERY);
        loop {
            // The select only decides; the work happens after it (nothing borrowed across awaits).
            let seen = tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                seen = rx.recv() => match seen {
                    None => break,
                    Some(seen) => Some(seen),
                },
                _ = tick.tick() => None,
            };
            if let Some(seen) = seen {
                for mut s in seen {
                    match latest.get_mut(&s.iccid) {
                        // An older sighting still tells the IMEI a newer one did not carry.
                        Some(e) if e.at > s.at => {
                            if e.imei.is_none() {
                                e.imei = s.imei;
                            }
                        }
                        Some(e) => {
                            if s.imei.is_none() {
                                s.imei = e.imei.take();
                            }
                            *e = s;
                        }
                        None => {
                            latest.insert(s.iccid.clone(), s);
                        }
                    }
                }
                continue;
            }
            if latest.is_empty() {
                continue;
            }
            let batch: Vec<Sighting> = latest.drain().map(|(_, s)| s).collect();
            match fleet.record_activity(&batch).await {
                Ok(seen) => {
                    if let Some(alerts) = &first_traffic {
                        if let Err(e) = alerts.on_activity(&seen, chrono::Utc::now()).await {
                            tracing::warn!(error = %e, first = seen.first_seen.len(), imei_changes = seen.imei_changes.len(), "first-traffic and IMEI alert rules not evaluated");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, sims = batch.len(), "SIM activity not recorded; the next sightings will be")
                }
            }
        }
    });
    tx
}

/// How long a counted batch waits before it is evaluated at the least: the evaluation first asks
/// the usage store to write what it buffered (`UsageReader::settle`); the wait gathers a few
/// batches into one pass when intervals are short.
const USAGE_VISIBLE: Duration = Duration::from_millis(500);

/// Most SIMs one evaluation of counted traffic takes: the stores' lists of SIMs stay well within
/// what a statement may bind (SQLite: 32,766 values).
const EVALUATE_CHUNK: usize = 10_000;

/// `seen`, sorted by ICCID, in consecutive parts of at most `most` SIMs each, a SIM's sightings
/// in one part.
fn by_sim<T>(seen: &[(ioto_domain::Iccid, T)], most: usize) -> Vec<&[(ioto_domain::Iccid, T)]> {
    let mut parts = Vec::new();
    let (mut start, mut sims) = (0, 0);
    for i in 0..seen.len() {
        let new_sim = i == 0 || seen[i].0 != seen[i - 1].0;
        if new_sim && sims == most {
            parts.push(&seen[start..i]);
            (start, sims) = (i, 0);
        }
        sims += usize::from(new_sim);
    }
    if start < seen.len() {
        parts.push(&seen[start..]);
    }
    parts
}

/// Evaluates the quotas or the stream's alert rules (whichever is given) of SIMs with counted
/// traffic: SIMs seen in one interval are evaluated all at once at a tick at least
/// [`USAGE_VISIBLE`] after the interval ended (the next tick when intervals are that long), and
/// SIMs counted meanwhile join the next pass. A pass that fails is
/// offered again with the next one; what is lost here (the process stops) the quota sweep and
/// the alert clock's first pass after a start catch.
pub fn traffic_evaluator(
    quotas: Option<ioto_app::QuotaEvaluator>,
    alerts: Option<ioto_app::AlertEvaluator>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> mpsc::UnboundedSender<Vec<(ioto_domain::Iccid, ioto_domain::MccMnc)>> {
    type Seen = (ioto_domain::Iccid, ioto_domain::MccMnc);
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Seen>>();
    tokio::spawn(async move {
        let mut fresh: std::collections::HashSet<Seen> = std::collections::HashSet::new();
        let mut due: Vec<Seen> = Vec::new();
        let mut due_since = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(every);
        loop {
            let seen = tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                seen = rx.recv() => match seen {
                    None => break,
                    Some(seen) => Some(seen),
                },
                _ = tick.tick() => None,
            };
            if let Some(seen) = seen {
                fresh.extend(seen);
                continue;
            }
            if !due.is_empty() && due_since.elapsed() < USAGE_VISIBLE {
                continue;
            }
            let now = chrono::Utc::now();
            // In parts of at most EVALUATE_CHUNK SIMs (a SIM's networks in one part): a pass
            // that fell behind and gathered many SIMs is evaluated part by part, and only a
            // part that fails is offered again.
            due.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            let mut retry: Vec<Seen> = Vec::new();
            let mut last_error = None;
            for part in by_sim(&due, EVALUATE_CHUNK) {
                let mut iccids: Vec<ioto_domain::Iccid> = part.iter().map(|(i, _)| i.clone()).collect();
                iccids.dedup();
                let failed = match (&quotas, &alerts) {
                    (Some(q), _) => q.evaluate(&iccids, now).await.err(),
                    (None, Some(a)) => a.on_traffic(part, now).await.err(),
                    (None, None) => None,
                };
                if let Some(e) = failed {
                    retry.extend_from_slice(part);
                    last_error = Some(e);
                }
            }
            if let Some(e) = last_error {
                tracing::warn!(error = %e, sightings = retry.len(), "counted traffic not evaluated; offered again with the next pass");
                fresh.extend(retry);
            }
            due = fresh.drain().collect();
            due_since = tokio::time::Instant::now();
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use ioto_domain::Iccid;

    use super::by_sim;

    #[test]
    fn counted_sims_are_evaluated_in_parts_with_each_sims_networks_together() {
        let iccid = |n: u64| Iccid::with_check_digit(&format!("8988{n:014}")).unwrap();
        let seen: Vec<(Iccid, u8)> = vec![
            (iccid(1), 1),
            (iccid(1), 2),
            (iccid(2), 1),
            (iccid(3), 1),
            (iccid(3), 2),
        ];
        let sizes: Vec<usize> = by_sim(&seen, 2).iter().map(|p| p.len()).collect();
        assert_eq!(
            sizes,
            [3, 2],
            "two SIMs a part, SIM 1's two networks and SIM 3's together"
        );
        assert_eq!(by_sim(&seen, 10).len(), 1);
        assert!(by_sim::<u8>(&[], 2).is_empty());
        let many: Vec<(Iccid, u8)> = (0..25).map(|n| (iccid(n), 0)).collect();
        let sizes: Vec<usize> = by_sim(&many, 10).iter().map(|p| p.len()).collect();
        assert_eq!(sizes, [10, 10, 5]);
    }
}
