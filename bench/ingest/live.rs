//! The live half of the ingest bench: a steady load of fresh sessions, and probes timed from publish until their session shows them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use ioto_domain::identifiers::{Iccid, MccMnc};
use ioto_domain::ports::{SessionKey, UsageStore};
use ioto_domain::usage::{RadioAccessType, RequestType, SessionRollup};
use ioto_domain::TenantId;

/// Rollups of fresh sessions at `rate` per second until stopped.
pub(super) async fn live_load(
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
                imei: None,
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
pub(super) type Waiting = Arc<std::sync::Mutex<HashMap<SessionKey, (u64, tokio::sync::oneshot::Sender<()>)>>>;

/// How often the probes' sessions are looked for.
const PROBE_TICK: Duration = Duration::from_millis(20);

/// Looks for every waiting probe's session every [`PROBE_TICK`], in one read of the live session
/// states. One read per tick, however many probes wait: polling each probe on its own cost the
/// usage store a query per probe per tick, so the bench's own reads grew with the latency it
/// measured (~500 reads/s at 1 s) and took the store's cores from the pipeline under test.
pub(super) async fn watch_probes(
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
pub(super) async fn probe(
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
        imei: None,
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
