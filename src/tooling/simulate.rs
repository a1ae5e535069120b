//! `ioto simulate sessions`: data sessions of a tenant's SIMs published to the bus as the
//! mediation system would (rollups on `ioto.sessions` keyed by session, CDRs on `ioto.cdrs` keyed
//! by ICCID), with a progress line on stderr; `ioto simulate incident`: one SIM roaming,
//! flapping, moved into another device or using a lot at once. `ioto simulate history` (days of
//! usage with labelled anomalies) is in [`super::simulate_history`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use ioto_domain::fleet::query::{Page, SimFilter};
use ioto_domain::fleet::{Sim, SimState};
use ioto_domain::identifiers::Iccid;
use ioto_domain::identifiers::{MccMnc, Slug};
use ioto_domain::ports::{Directory, EventBus, Fleet, TelemetrySource};
use ioto_domain::{Scope, TenantId};
use ioto_ingest::simulator::{Incident, SessionPlan, SimEvent};
use ioto_ingest::worker::IngestTopics;

#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub tenant: String,
    pub sims: usize,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bytes_min: u64,
    pub bytes_max: u64,
    pub sessions_per_sim: u32,
    /// Events per second; 0 publishes as fast as the broker takes them.
    pub rate: u64,
    pub seed: u64,
    pub progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub sims: usize,
    pub rollups: u64,
    pub cdrs: u64,
}

/// The tenant of the slug `--tenant` names.
pub(crate) async fn tenant_named(
    directory: &Arc<dyn Directory>,
    slug: &str,
) -> anyhow::Result<ioto_domain::directory::Tenant> {
    let parsed = Slug::parse(slug).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    directory
        .tenant_by_slug(Scope::Platform, &parsed)
        .await?
        .with_context(|| format!("--tenant: no tenant '{slug}'"))
}

/// Publishes the simulated sessions of `opts.sims` ACTIVE SIMs of the tenant.
pub async fn sessions(
    directory: &Arc<dyn Directory>,
    fleet: &Arc<dyn Fleet>,
    bus: &Arc<dyn EventBus>,
    topic_prefix: &str,
    opts: &SessionOptions,
) -> anyhow::Result<Summary> {
    let tenant = tenant_named(directory, &opts.tenant).await?;
    let iccids: Vec<Iccid> = active_sims(fleet, tenant.id, opts.sims)
        .await?
        .into_iter()
        .map(|s| s.iccid)
        .collect();
    if iccids.is_empty() {
        bail!("tenant '{}' has no ACTIVE SIMs to simulate", opts.tenant);
    }
    let plan = SessionPlan {
        iccids,
        from: opts.from,
        to: opts.to,
        bytes_min: opts.bytes_min,
        bytes_max: opts.bytes_max,
        sessions_per_sim: opts.sessions_per_sim,
        update_every: chrono::Duration::minutes(5),
        networks: ["262-01", "262-02", "262-03", "234-15", "208-01", "310-260"]
            .iter()
            .filter_map(|c| MccMnc::parse(c).ok())
            .collect(),
        seed: opts.seed,
    };
    plan.check().map_err(|e| anyhow::anyhow!("{e}"))?;
    let topics = IngestTopics::with_prefix(topic_prefix);
    topics.ensure(bus.as_ref(), DEFAULT_PARTITIONS).await?;
    publish(bus, &topics, Arc::new(plan), opts.rate, opts.progress).await
}

/// The tenant's first `n` ACTIVE SIMs by ICCID, listed 1,000 at a time.
pub(crate) async fn active_sims(
    fleet: &Arc<dyn Fleet>,
    tenant: TenantId,
    n: usize,
) -> anyhow::Result<Vec<Sim>> {
    let filter = SimFilter {
        states: vec![SimState::Active],
        ..SimFilter::default()
    };
    let mut sims = Vec::new();
    let mut page = Page::first(1000);
    while sims.len() < n {
        let batch = fleet.list_sims(Scope::Platform, tenant, &filter, &page).await?;
        let Some(last) = batch.last() else { break };
        page.after = Some(ioto_domain::fleet::query::sim_cursor(last, page.sort));
        sims.extend(batch);
    }
    sims.truncate(n);
    Ok(sims)
}

/// What `ioto simulate incident` makes a SIM do.
#[derive(Debug, Clone)]
pub struct IncidentOptions {
    pub tenant: String,
    /// The SIM (default: the tenant's first ACTIVE SIM by ICCID).
    pub iccid: Option<String>,
    pub incident: Incident,
}

/// Publishes one incident of one ACTIVE SIM of the tenant (on the network it was last seen on,
/// 262-01 if never); returns the SIM and how many events went out.
pub async fn incident(
    directory: &Arc<dyn Directory>,
    fleet: &Arc<dyn Fleet>,
    bus: &Arc<dyn EventBus>,
    topic_prefix: &str,
    opts: &IncidentOptions,
) -> anyhow::Result<(Iccid, usize)> {
    let tenant = tenant_named(directory, &opts.tenant).await?;
    let scope = Scope::tenant(tenant.id);
    let sim = match &opts.iccid {
        Some(text) => {
            let iccid = Iccid::parse(text).map_err(|e| anyhow::anyhow!("--iccid: {e}"))?;
            fleet
                .sims_by_iccid(scope, std::slice::from_ref(&iccid))
                .await?
                .into_iter()
                .next()
                .with_context(|| format!("--iccid: no SIM {iccid} in tenant '{}'", opts.tenant))?
        }
        None => {
            let filter = SimFilter {
                states: vec![SimState::Active],
                ..SimFilter::default()
            };
            fleet
                .list_sims(scope, tenant.id, &filter, &Page::first(1))
                .await?
                .into_iter()
                .next()
                .with_context(|| format!("tenant '{}' has no ACTIVE SIM", opts.tenant))?
        }
    };
    if sim.state != SimState::Active {
        bail!(
            "--iccid: SIM {} is {}, not ACTIVE: the network would not carry its sessions",
            sim.iccid,
            sim.state.as_str()
        );
    }
    let home = sim
        .last_network
        .clone()
        .or_else(|| MccMnc::parse("262-01").ok())
        .context("a home network")?;
    let now = Utc::now();
    let tag = u64::try_from(now.timestamp_micros()).unwrap_or_default();
    let events = opts.incident.events(&sim.iccid, &home, now, tag);
    let topics = IngestTopics::with_prefix(topic_prefix);
    topics.ensure(bus.as_ref(), DEFAULT_PARTITIONS).await?;
    for event in &events {
        match event {
            SimEvent::Rollup(r) => {
                bus.publish(
                    &topics.sessions,
                    &r.session_id,
                    r.to_json().to_string().as_bytes(),
                )
                .await?
            }
            SimEvent::Cdr(c) => {
                bus.publish(&topics.cdrs, c.iccid.as_str(), c.to_json().to_string().as_bytes())
                    .await?
            }
        }
    }
    Ok((sim.iccid, events.len()))
}

/// Partitions of the sessions and CDR topics when the simulator creates them.
pub(crate) const DEFAULT_PARTITIONS: i32 = 6;

/// Publishes every event of `plan`: SIMs concurrently, each SIM's events in order, rollups keyed
/// by session and CDRs by ICCID; at most `rate` events per second (0: as fast as the broker
/// takes them), with a progress line on stderr every second when `progress`.
pub async fn publish(
    bus: &Arc<dyn EventBus>,
    topics: &IngestTopics,
    plan: Arc<SessionPlan>,
    rate: u64,
    progress: bool,
) -> anyhow::Result<Summary> {
    let rollups = Arc::new(AtomicU64::new(0));
    let cdrs = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let done = Arc::new(tokio::sync::Notify::new());
    let progress = progress.then(|| {
        let (rollups, cdrs, done) = (Arc::clone(&rollups), Arc::clone(&cdrs), Arc::clone(&done));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = done.notified() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let n = rollups.load(Ordering::Relaxed) + cdrs.load(Ordering::Relaxed);
                eprintln!(
                    "simulated {n} events ({:.0}/s)",
                    n as f64 / started.elapsed().as_secs_f64()
                );
            }
        })
    });
    let (sessions_topic, cdrs_topic) = (topics.sessions.clone(), topics.cdrs.clone());
    // SIMs run concurrently; each SIM's events go out in order, so a session's rollups arrive in
    // the order they were emitted.
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..plan.iccids.len())
        .map(|i| {
            let (plan, bus) = (Arc::clone(&plan), Arc::clone(bus));
            let (rollups, cdrs) = (Arc::clone(&rollups), Arc::clone(&cdrs));
            let (sessions_topic, cdrs_topic) = (sessions_topic.clone(), cdrs_topic.clone());
            async move {
                for event in plan.events_of(i) {
                    if rate > 0 {
                        let sent = rollups.load(Ordering::Relaxed) + cdrs.load(Ordering::Relaxed);
                        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                        if let Some(wait) = due.checked_sub(started.elapsed()) {
                            tokio::time::sleep(wait).await;
                        }
                    }
                    match event {
                        SimEvent::Rollup(r) => {
                            bus.publish(&sessions_topic, &r.session_id, r.to_json().to_string().as_bytes())
                                .await?;
                            rollups.fetch_add(1, Ordering::Relaxed);
                        }
                        SimEvent::Cdr(c) => {
                            bus.publish(&cdrs_topic, c.iccid.as_str(), c.to_json().to_string().as_bytes())
                                .await?;
                            cdrs.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Ok(())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    done.notify_one();
    if let Some(p) = progress {
        let _ = p.await;
    }
    for r in results {
        r?;
    }
    Ok(Summary {
        sims: plan.iccids.len(),
        rollups: rollups.load(Ordering::Relaxed),
        cdrs: cdrs.load(Ordering::Relaxed),
    })
}

#[derive(Debug, Clone)]
pub struct DeviceOptions {
    pub tenant: String,
    pub devices: usize,
    pub interval: Duration,
    /// Readings per device; `None` runs until stopped.
    pub count: Option<u64>,
    pub seed: u64,
    pub progress: bool,
}

/// Publishes readings of the tenant's first `opts.devices` devices in service to the telemetry
/// source (the MQTT broker: QoS 1), one round every `opts.interval`; returns how many the source
/// accepted.
pub async fn devices(
    directory: &Arc<dyn Directory>,
    fleet: &Arc<dyn Fleet>,
    source: &Arc<dyn TelemetrySource>,
    opts: &DeviceOptions,
) -> anyhow::Result<u64> {
    use ioto_domain::fleet::query::DeviceFilter;
    use ioto_domain::fleet::{DeviceKind, DeviceState};

    let tenant = tenant_named(directory, &opts.tenant).await?;
    let filter = DeviceFilter {
        states: vec![DeviceState::InService],
        ..DeviceFilter::default()
    };
    let limit = u64::try_from(opts.devices.clamp(1, 1000)).unwrap_or(1000);
    let list = fleet
        .list_devices(Scope::Platform, tenant.id, &filter, &Page::first(limit))
        .await?;
    if list.is_empty() {
        bail!("tenant '{}' has no devices IN_SERVICE to simulate", opts.tenant);
    }
    let moving = |k: DeviceKind| {
        matches!(
            k,
            DeviceKind::Tracker | DeviceKind::Vehicle | DeviceKind::Wearable
        )
    };
    let ids: Vec<_> = list.iter().map(|d| (d.id, moving(d.kind))).collect();
    let mut sim = ioto_ingest::device_simulator::DeviceSimulator::new(&ids, opts.seed);

    let mut published = 0u64;
    let mut round = 0u64;
    let started = Instant::now();
    loop {
        let batch: Vec<(String, Vec<u8>)> = sim
            .step(Utc::now())
            .into_iter()
            .map(|r| {
                (
                    ioto_domain::usage::telemetry_topic(r.device_id),
                    r.to_json().to_string().into_bytes(),
                )
            })
            .collect();
        source.publish(&batch).await?;
        published += batch.len() as u64;
        round += 1;
        if opts.progress {
            eprintln!("published {published} readings from {} devices", sim.len());
        }
        if opts.count.is_some_and(|c| round >= c) {
            break;
        }
        tokio::time::sleep(opts.interval).await;
    }
    tracing::info!(
        published,
        seconds = started.elapsed().as_secs_f64(),
        "device simulation done"
    );
    Ok(published)
}
