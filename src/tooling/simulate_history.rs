//! `ioto simulate history`: days of usage of a tenant's ACTIVE SIMs from the forecast crate's
//! fleet simulator (device kinds with their weekly seasons, trends and noise), with labelled
//! anomalies injected, published to the bus as mediation would have sent it, and the ground truth
//! written beside it.
//!
//! ```text
//!  fleet ── the first --sims ACTIVE SIMs by ICCID (SIM i is simulated SIM i; home: its last network)
//!    │
//!    ▼  2,000 SIMs at a time
//!  simulate_one(--seed, i, --days, --anomalies) ──▶ plan: real networks and IMEIs, sessions per day
//!    │                                                  │
//!    ▼  day by day, so a worker's batch spans few days  ▼
//!  rollups (TERMINATE, v2 with IMEI) and CDRs ──▶ bus  truth rows ──▶ --truth FILE (RFC 4180)
//! ```
//!
//! The days are the `--days` before today (UTC); the simulator injects anomalies into the last 30
//! of them. The ingest worker counts events up to `ingest.max_event_age_days` old, so the command
//! refuses more days than that allows. The demo writes the same plans straight into the usage
//! store (`super::demo_history`).

mod networks;
mod plan;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _};
use chrono::{Days, NaiveDate, Utc};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use ioto_domain::identifiers::MccMnc;
use ioto_domain::ports::{Directory, EventBus, Fleet};
use ioto_forecast::simulate::simulate_one;
use ioto_ingest::simulator::SimEvent;
use ioto_ingest::worker::IngestTopics;

pub use networks::{country_name, Catalogue};
pub use plan::{PlannedDay, PlannedSession, PlannedSim, TruthRow, MAX_STORM_SESSIONS, TRUTH_HEADER};

use super::simulate::{active_sims, tenant_named, DEFAULT_PARTITIONS};

/// Most days of history.
pub const MAX_DAYS: usize = 400;
/// Most SIMs.
pub const MAX_SIMS: usize = 100_000;
/// Where a SIM never seen on a network is at home: Telekom Deutschland.
pub const DEFAULT_HOME: &str = "262-01";
/// SIMs simulated and published together (their plans are held meanwhile: about 10 kB per SIM
/// and 90 days).
const CHUNK_SIMS: usize = 2_000;
/// SIMs whose events are being published at once.
const IN_FLIGHT: usize = 128;

/// What `ioto simulate history` writes.
#[derive(Debug, Clone)]
pub struct HistoryOptions {
    pub tenant: String,
    pub sims: usize,
    pub days: usize,
    /// The simulator's anomaly rate: the chance that an anomaly starts, per SIM and each 10 days
    /// of the last 30.
    pub anomaly_rate: f64,
    pub seed: u64,
    /// Where to write the ground truth.
    pub truth: Option<PathBuf>,
    /// `ingest.max_event_age_days` of the pipeline that counts the events: older ones would be
    /// dead-lettered.
    pub max_event_age_days: u32,
    pub progress: bool,
}

/// What went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistorySummary {
    pub sims: usize,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub sessions: u64,
    pub rollups: u64,
    pub cdrs: u64,
    /// Labelled anomalies (rows of the ground truth).
    pub anomalies: usize,
}

/// Checks the options as the command line does, naming the flag; and that the pipeline counts
/// the days asked for.
pub fn check(opts: &HistoryOptions) -> anyhow::Result<()> {
    if !(1..=MAX_DAYS).contains(&opts.days) {
        bail!("--days: {} is not from 1 to {MAX_DAYS}", opts.days);
    }
    if !(1..=MAX_SIMS).contains(&opts.sims) {
        bail!("--sims: {} is not from 1 to {MAX_SIMS}", opts.sims);
    }
    if !(opts.anomaly_rate.is_finite() && (0.0..=1.0).contains(&opts.anomaly_rate)) {
        bail!("--anomalies: {} is not a share from 0 to 1", opts.anomaly_rate);
    }
    // The first day's sessions are up to `days + 1` days old when they are counted.
    let reach = opts.days + 1;
    let window = usize::try_from(opts.max_event_age_days).unwrap_or(usize::MAX);
    if reach > window {
        bail!(
            "--days: {} days of history reach {reach} days back, past ingest.max_event_age_days ({window}): \
             the ingest worker would dead-letter the older days as OUT_OF_RANGE. Run the server (and \
             this command) with IOTO_INGEST__MAX_EVENT_AGE_DAYS={reach} or more, or ask for at most {} days",
            opts.days,
            window.saturating_sub(1)
        );
    }
    Ok(())
}

/// Publishes the history of the tenant's first `opts.sims` ACTIVE SIMs: each SIM-day's sessions
/// as rollups keyed by session and CDRs keyed by ICCID, day by day, and writes the ground truth
/// to `opts.truth`. Everything that can be refused (the options, the tenant, the truth file) is
/// refused before anything is published.
pub async fn history(
    directory: &Arc<dyn Directory>,
    fleet: &Arc<dyn Fleet>,
    bus: &Arc<dyn EventBus>,
    topic_prefix: &str,
    opts: &HistoryOptions,
) -> anyhow::Result<HistorySummary> {
    check(opts)?;
    let tenant = tenant_named(directory, &opts.tenant).await?;
    let sims = active_sims(fleet, tenant.id, opts.sims).await?;
    if sims.is_empty() {
        bail!("tenant '{}' has no ACTIVE SIMs to simulate", opts.tenant);
    }
    let mut truth = opts.truth.as_deref().map(TruthFile::create).transpose()?;
    let today = Utc::now().date_naive();
    let first_day = today
        .checked_sub_days(Days::new(opts.days as u64))
        .context("--days: before the calendar's first day")?;
    let last_day = today.pred_opt().unwrap_or(today);
    let default_home = MccMnc::parse(DEFAULT_HOME)?;
    let topics = IngestTopics::with_prefix(topic_prefix);
    topics.ensure(bus.as_ref(), DEFAULT_PARTITIONS).await?;

    let bar = progress_bar(opts.progress, (sims.len() * opts.days) as u64);
    let started = Instant::now();
    let mut summary = HistorySummary {
        sims: sims.len(),
        first_day,
        last_day,
        sessions: 0,
        rollups: 0,
        cdrs: 0,
        anomalies: 0,
    };
    let mut catalogue = Catalogue::default();
    for (chunk_index, chunk) in sims.chunks(CHUNK_SIMS).enumerate() {
        let plans: Vec<PlannedSim> = chunk
            .iter()
            .enumerate()
            .map(|(k, sim)| {
                let (simulated, injected) = simulate_one(
                    opts.seed,
                    chunk_index * CHUNK_SIMS + k,
                    opts.days,
                    first_day,
                    opts.anomaly_rate,
                );
                let home = sim.last_network.as_ref().unwrap_or(&default_home);
                PlannedSim::new(
                    sim.iccid.clone(),
                    home,
                    &simulated,
                    &injected,
                    first_day,
                    opts.seed,
                    &mut catalogue,
                )
            })
            .collect();
        for plan in &plans {
            summary.anomalies += plan.truth.len();
            if let Some(file) = truth.as_mut() {
                file.write(&plan.truth)?;
            }
        }
        for day in 0..opts.days {
            let sent = publish_day(bus, &topics, &plans, day).await?;
            summary.sessions += sent.sessions;
            summary.rollups += sent.rollups;
            summary.cdrs += sent.cdrs;
            bar.inc(plans.len() as u64);
            let events = (summary.rollups + summary.cdrs) as f64;
            bar.set_message(format!(
                "{:.0} events/s",
                events / started.elapsed().as_secs_f64().max(0.001)
            ));
        }
    }
    bar.finish_and_clear();
    if let Some(file) = truth {
        file.finish()?;
    }
    Ok(summary)
}

/// Events published for one day of some SIMs.
#[derive(Debug, Default)]
struct Sent {
    sessions: u64,
    rollups: u64,
    cdrs: u64,
}

/// Publishes day `day` of every plan: SIMs concurrently, each SIM's events in order.
async fn publish_day(
    bus: &Arc<dyn EventBus>,
    topics: &IngestTopics,
    plans: &[PlannedSim],
    day: usize,
) -> anyhow::Result<Sent> {
    let results: Vec<anyhow::Result<Sent>> = futures::stream::iter(plans)
        .map(|plan| {
            let events = plan.events(day);
            async move {
                let mut sent = Sent::default();
                for event in events {
                    match event {
                        SimEvent::Rollup(r) => {
                            bus.publish(
                                &topics.sessions,
                                &r.session_id,
                                r.to_json().to_string().as_bytes(),
                            )
                            .await?;
                            sent.rollups += 1;
                            sent.sessions += 1;
                        }
                        SimEvent::Cdr(c) => {
                            bus.publish(&topics.cdrs, c.iccid.as_str(), c.to_json().to_string().as_bytes())
                                .await?;
                            sent.cdrs += 1;
                        }
                    }
                }
                Ok::<Sent, anyhow::Error>(sent)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut total = Sent::default();
    for result in results {
        let sent = result?;
        total.sessions += sent.sessions;
        total.rollups += sent.rollups;
        total.cdrs += sent.cdrs;
    }
    Ok(total)
}

/// A progress bar of SIM-days on stderr, or none.
fn progress_bar(show: bool, total: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} SIM-days {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The ground truth file, written as the SIMs are planned.
struct TruthFile {
    path: PathBuf,
    out: BufWriter<File>,
}

impl TruthFile {
    /// Creates the file and writes the header; refused naming `--truth`.
    fn create(path: &Path) -> anyhow::Result<Self> {
        let file = File::create(path).with_context(|| format!("--truth: cannot write {}", path.display()))?;
        let mut out = BufWriter::new(file);
        out.write_all(TRUTH_HEADER.as_bytes())
            .with_context(|| format!("--truth: cannot write {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            out,
        })
    }

    fn write(&mut self, rows: &[TruthRow]) -> anyhow::Result<()> {
        for row in rows {
            self.out
                .write_all(row.csv_line().as_bytes())
                .with_context(|| format!("--truth: cannot write {}", self.path.display()))?;
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.out
            .flush()
            .with_context(|| format!("--truth: cannot write {}", self.path.display()))
    }
}
