//! `ioto-bench forecast` and `ioto-bench anomalies`: the forecasts' and the anomaly detector's
//! accuracy on a simulated fleet whose truth is known (`ioto_forecast::simulate`), and the time
//! and memory they take. Pure computation: no engine, no I/O but the optional truth file.
//!
//! ```text
//!  simulate_fleet(seed + run − 1) ──┬─▶ accuracy: per SIM, the last --holdout days forecast by each
//!  (--sims × --days, anomalies      │   method forced and by the one chosen; MASE, WAPE, coverage
//!   injected at --anomaly-rate)     ├─▶ pass: every SIM's 30-day forecast, one thread and all cores
//!                                   ├─▶ replay: a month of quota warnings on --replay-sims SIMs
//!                                   ├─▶ hourly: a sample of SIMs' hours, each method and the one
//!                                   │   chosen 48 hours ahead; today's total projected at noon
//!                                   └─▶ anomalies: detect on each of the last 30 days, against truth
//! ```
//!
//! Each run simulates a fleet of its own (seed `--seed` + run − 1), so the spread over runs is
//! the spread over fleets as well as over timings.

mod accuracy;
pub mod anomalies;
mod hourly;
mod replay;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::NaiveDate;
use ioto_forecast::simulate::{simulate_fleet, write_truth_csv, SimulatedFleet, ANOMALY_WINDOW_DAYS};
use ioto_forecast::{DailySeries, ForecastError};

use crate::common::{median_spread, peak_rss_mb};

/// The first day of every simulated history (a Monday).
fn start_date() -> anyhow::Result<NaiveDate> {
    NaiveDate::from_ymd_opt(2025, 1, 6).context("the simulated fleet's first day")
}

/// The fewest days of history the benches take: the anomaly window (30 days) after three weeks
/// of history of its own for every SIM, with room to spare, and a backtest before any holdout.
pub const MIN_DAYS: usize = 60;
/// The most days of history the benches take (a year; the forecasts read at most that much).
pub const MAX_DAYS: usize = 366;
/// Days ahead of the timed pass: a billing period, what the scheduled pass forecasts.
const PASS_HORIZON: usize = 30;

/// What `ioto-bench forecast` measures.
pub struct ForecastOptions {
    pub sims: usize,
    pub days: usize,
    pub holdout: usize,
    pub runs: usize,
    pub seed: u64,
    pub anomaly_rate: f64,
    pub replay_sims: usize,
    pub truth_out: Option<PathBuf>,
}

/// Checks the sizes shared by both benches.
pub fn check_fleet(days: usize, anomaly_rate: f64) -> anyhow::Result<()> {
    if !(MIN_DAYS..=MAX_DAYS).contains(&days) {
        bail!("--days: between {MIN_DAYS} and {MAX_DAYS}");
    }
    if !(0.0..=1.0).contains(&anomaly_rate) {
        bail!("--anomaly-rate: between 0 and 1 (the chance of an anomaly per SIM and 10 days)");
    }
    Ok(())
}

/// The seed of run `run` (1-based): each run simulates a fleet of its own.
pub fn run_seed(seed: u64, run: usize) -> u64 {
    seed.wrapping_add(run.saturating_sub(1) as u64)
}

/// The fleet of run `run` (1-based): simulated from [`run_seed`], announced, and its truth
/// written to `truth_out` for the first run.
pub fn simulate_run(
    seed: u64,
    run: usize,
    runs: usize,
    sims: usize,
    days: usize,
    anomaly_rate: f64,
    truth_out: Option<&Path>,
) -> anyhow::Result<SimulatedFleet> {
    let seed = run_seed(seed, run);
    let started = Instant::now();
    let fleet = simulate_fleet(seed, sims, days, start_date()?, anomaly_rate);
    println!(
        "\nrun {run} of {runs}: seed {seed}, {sims} SIMs × {days} days from {} simulated in {:.2} s; \
         {} anomalies injected in the last {ANOMALY_WINDOW_DAYS} days ({})",
        fleet.start,
        started.elapsed().as_secs_f64(),
        fleet.truth.len(),
        anomalies::injected_by_kind(&fleet.truth)
    );
    if let (1, Some(path)) = (run, truth_out) {
        std::fs::write(path, write_truth_csv(&fleet.truth))
            .with_context(|| format!("writing the ground truth to {}", path.display()))?;
        println!("ground truth of this run written to {}", path.display());
    }
    Ok(fleet)
}

/// `ioto-bench forecast`: per run, the holdout accuracy of each method, the timed forecast pass
/// and the quota replay; then the median and spread of each figure over the runs.
pub fn run_forecast(options: &ForecastOptions) -> anyhow::Result<()> {
    check_fleet(options.days, options.anomaly_rate)?;
    if options.holdout > options.days - MIN_DAYS / 2 || options.holdout > ioto_forecast::MAX_HORIZON {
        bail!(
            "--holdout: at most {} days with --days {} (30 days of training at least, and a forecast \
             reaches at most {} days)",
            (options.days - MIN_DAYS / 2).min(ioto_forecast::MAX_HORIZON),
            options.days,
            ioto_forecast::MAX_HORIZON
        );
    }
    let cores = cores();
    println!(
        "forecast: {} simulated SIMs × {} days, the last {} held out; anomaly rate {} per SIM and 10 days; \
         {} runs, each its own fleet; {cores} cores",
        options.sims, options.days, options.holdout, options.anomaly_rate, options.runs
    );
    let mut summary = Vec::with_capacity(options.runs);
    for run in 1..=options.runs {
        let mut fleet = simulate_run(
            options.seed,
            run,
            options.runs,
            options.sims,
            options.days,
            options.anomaly_rate,
            options.truth_out.as_deref(),
        )?;
        // Forecasts read daily usage only: the rest of the simulation would weigh on the memory
        // figures (about 90 network records per SIM).
        for sim in &mut fleet.sims {
            sim.networks = Vec::new();
            sim.imeis = Vec::new();
            sim.usual_bytes = Vec::new();
        }
        let mut figures = Vec::new();

        let started = Instant::now();
        let accuracy = accuracy::evaluate(&fleet, options.holdout, cores)?;
        println!(
            "holdout: each SIM's first {} days train, its last {} are forecast ({:.1} s on {cores} cores)",
            options.days - options.holdout,
            options.holdout,
            started.elapsed().as_secs_f64()
        );
        accuracy::print(&accuracy);
        figures.extend(accuracy::figures(&accuracy));

        let one = time_pass(&fleet, 1)?;
        let all = time_pass(&fleet, cores)?;
        print_pass(&fleet, &one, &all, cores);
        figures.push(Figure::new("pass, one thread, s", one.elapsed.as_secs_f64(), 2));
        figures.push(Figure::new(
            &format!("pass, {cores} threads, s"),
            all.elapsed.as_secs_f64(),
            2,
        ));
        figures.push(Figure::new("pass, peak RSS (one thread), MB", one.peak_mb, 0));

        let replay = replay::replay(&fleet, run_seed(options.seed, run), options.replay_sims, cores)?;
        replay::print(&replay);
        figures.extend(replay::figures(&replay));

        let hourly = hourly::evaluate(&fleet, cores)?;
        hourly::print(&hourly, cores);
        figures.extend(hourly::figures(&hourly));
        summary.push(figures);
    }
    print_summary("forecast", &summary);
    Ok(())
}

/// How long forecasting every SIM took and the process's peak memory meanwhile.
pub struct Timed {
    pub elapsed: Duration,
    /// Resident memory before, MB.
    pub before_mb: f64,
    /// Peak resident memory during, MB (NaN when the peak could not be reset).
    pub peak_mb: f64,
}

/// The forecasting part of the scheduled pass over the whole fleet: every SIM's
/// [`PASS_HORIZON`]-day forecast from all its days, on `threads` threads. Each forecast is dropped
/// once made: what the pass reads and stores is not part of this figure.
fn time_pass(fleet: &SimulatedFleet, threads: usize) -> anyhow::Result<Timed> {
    let reset = reset_peak();
    let before_mb = rss_mb();
    let started = Instant::now();
    let parts = on_threads(&fleet.sims, threads, |_, sims| {
        for sim in sims {
            let series = DailySeries::new(fleet.start, sim.daily_bytes.clone());
            std::hint::black_box(ioto_forecast::forecast(&series, PASS_HORIZON, None)?);
        }
        Ok::<usize, ForecastError>(sims.len())
    })?;
    let elapsed = started.elapsed();
    let peak_mb = if reset { peak_rss_mb() } else { f64::NAN };
    let mut forecasts = 0;
    for part in parts {
        forecasts += part?;
    }
    if forecasts != fleet.sims.len() {
        bail!("{forecasts} forecasts for {} SIMs", fleet.sims.len());
    }
    Ok(Timed {
        elapsed,
        before_mb,
        peak_mb,
    })
}

fn print_pass(fleet: &SimulatedFleet, one: &Timed, all: &Timed, cores: usize) {
    let sims = fleet.sims.len().max(1) as f64;
    println!(
        "forecast pass: every SIM's {PASS_HORIZON}-day forecast from its {} days (method chosen by \
         backtest, intervals), computed and dropped (no store), as measured (nothing extrapolated):",
        fleet.days
    );
    println!("| threads | seconds | µs per SIM | RSS before, MB | peak RSS, MB |");
    println!("|---:|---:|---:|---:|---:|");
    for (threads, timed) in [(1, one), (cores, all)] {
        println!(
            "| {threads} | {:.2} | {:.0} | {:.0} | {:.0} |",
            timed.elapsed.as_secs_f64(),
            timed.elapsed.as_secs_f64() * 1e6 / sims,
            timed.before_mb,
            timed.peak_mb
        );
    }
    println!("(RSS before: the process with the simulated daily usage in memory)");
}

/// A figure of one run, for the summary over runs.
pub struct Figure {
    pub name: String,
    pub value: f64,
    /// Decimals printed.
    pub digits: usize,
}

impl Figure {
    pub fn new(name: &str, value: f64, digits: usize) -> Self {
        Self {
            name: name.to_owned(),
            value,
            digits,
        }
    }

    /// A share (0–1) as a percentage with one decimal.
    pub fn percent(name: &str, share: f64) -> Self {
        Self::new(name, 100.0 * share, 1)
    }
}

/// Each figure's median and spread (min–max) over the runs, and each run's value.
pub fn print_summary(bench: &str, runs: &[Vec<Figure>]) {
    println!();
    println!(
        "{bench}: median (min–max) of {} runs, each on its own fleet",
        runs.len()
    );
    println!("| figure | median | spread (min–max) | each run |");
    println!("|---|---:|---:|---|");
    let Some(first) = runs.first() else { return };
    for figure in first {
        let values: Vec<f64> = runs
            .iter()
            .filter_map(|run| run.iter().find(|f| f.name == figure.name))
            .map(|f| f.value)
            .collect();
        let (median, min, max) = median_spread(&values);
        let digits = figure.digits;
        let each: Vec<String> = values.iter().map(|v| format!("{v:.digits$}")).collect();
        println!(
            "| {} | {median:.digits$} | {min:.digits$}–{max:.digits$} | {} |",
            figure.name,
            each.join(", ")
        );
    }
}

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// `work` over `items` split into `threads` contiguous chunks, each on a thread of its own (on
/// this thread for one), with the index of each chunk's first item; the chunks' results in order.
pub fn on_threads<T, R, F>(items: &[T], threads: usize, work: F) -> anyhow::Result<Vec<R>>
where
    T: Sync,
    R: Send,
    F: Fn(usize, &[T]) -> R + Sync,
{
    if threads <= 1 || items.len() <= 1 {
        return Ok(vec![work(0, items)]);
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .map(|(index, part)| scope.spawn(move || work(index * chunk, part)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .map_err(|_| anyhow::anyhow!("a worker thread of the bench panicked"))
            })
            .collect()
    })
}

/// Resets the high-water mark of resident memory to the current size (Linux `clear_refs` 5);
/// false when it cannot.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The process's resident memory now, MB (`VmRSS`); NaN when unknown.
pub fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// A share as "12.3 %", or "n/a" for none.
pub fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "n/a".to_owned(), |s| format!("{:.1} %", 100.0 * s))
}

/// "yes" or "NO".
pub fn yes_no(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "NO"
    }
}
