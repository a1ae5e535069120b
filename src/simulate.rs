//! `ioto simulate sessions`: data sessions of a tenant's SIMs published to the bus as the
//! mediation system would (rollups on `ioto.sessions` keyed by session, CDRs on `ioto.cdrs` keyed
//! by ICCID), with a progress line on stderr.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use ioto_domain::fleet::query::{Page, SimFilter};
use ioto_domain::fleet::SimState;
use ioto_domain::identifiers::{MccMnc, Slug};
use ioto_domain::ports::{Directory, EventBus, Fleet, TopicSpec};
use ioto_domain::Scope;
use ioto_ingest::simulator::{SessionPlan, SimEvent};

/// Topic names below the configured prefix.
pub const SESSIONS_TOPIC: &str = "ioto.sessions";
pub const CDRS_TOPIC: &str = "ioto.cdrs";

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

/// Publishes the simulated sessions of `opts.sims` ACTIVE SIMs of the tenant.
pub async fn sessions(
    directory: &Arc<dyn Directory>,
    fleet: &Arc<dyn Fleet>,
    bus: &Arc<dyn EventBus>,
    topic_prefix: &str,
    opts: &SessionOptions,
) -> anyhow::Result<Summary> {
    let slug = Slug::parse(&opts.tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let tenant = directory
        .tenant_by_slug(Scope::Platform, &slug)
        .await?
        .with_context(|| format!("--tenant: no tenant '{}'", opts.tenant))?;
    let filter = SimFilter {
        states: vec![SimState::Active],
        ..SimFilter::default()
    };
    let mut iccids = Vec::new();
    let mut page = Page::first(1000);
    while iccids.len() < opts.sims {
        let batch = fleet
            .list_sims(Scope::Platform, tenant.id, &filter, &page)
            .await?;
        let Some(last) = batch.last() else { break };
        page.after = Some(ioto_domain::fleet::query::sim_cursor(last, page.sort));
        iccids.extend(batch.into_iter().map(|s| s.iccid));
    }
    iccids.truncate(opts.sims);
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
    let sessions_topic = format!("{topic_prefix}{SESSIONS_TOPIC}");
    let cdrs_topic = format!("{topic_prefix}{CDRS_TOPIC}");
    for topic in [&sessions_topic, &cdrs_topic] {
        bus.ensure_topic(topic, TopicSpec::partitions(6)).await?;
    }

    let rollups = Arc::new(AtomicU64::new(0));
    let cdrs = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let done = Arc::new(tokio::sync::Notify::new());
    let progress = opts.progress.then(|| {
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
    let plan = Arc::new(plan);
    let rate = opts.rate;
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
