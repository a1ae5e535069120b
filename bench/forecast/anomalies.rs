//! `ioto-bench anomalies`: the anomaly detector against the simulated fleet's ground truth.
//!
//! Every SIM is judged on each of the last 30 days by `anomaly::detect` with its history up to
//! that day (the detector reads nothing after the day it judges). Cohort statistics are computed
//! per device kind and day from the day's usage of every SIM of that kind: what a SIM with under
//! 21 days of history is judged against. Every simulated SIM has at least 30 days more than that,
//! so they are computed as the pass would and consulted by none.
//!
//! Matching: a detection of kind K on day d for SIM s is true when the truth holds (s, d, K), with
//! two allowances. A silence is true on any day of a labelled silence (its first day too, which
//! is not labelled since one quiet day is not yet a silence), and a silence's label is found when
//! any day of its episode is detected. A new country also satisfies a new-network label of the
//! same SIM and day: the network is in a country new to the SIM, which the detector reports as
//! the country. A detection matching no label is false, and a label without a true detection on its
//! day is missed.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use ioto_forecast::anomaly::{cohort_stats, detect, AnomalyKind, CohortStats, SimHistory};
use ioto_forecast::series::add_days;
use ioto_forecast::simulate::{DeviceProfile, InjectedAnomaly, SimulatedFleet, ANOMALY_WINDOW_DAYS};

use super::{
    check_fleet, cores, on_threads, percent, print_summary, reset_peak, rss_mb, simulate_run, yes_no, Figure,
};
use crate::common::{median_spread, peak_rss_mb};

/// What `ioto-bench anomalies` measures.
pub struct AnomalyOptions {
    pub sims: usize,
    pub days: usize,
    pub runs: usize,
    pub seed: u64,
    pub anomaly_rate: f64,
    pub truth_out: Option<PathBuf>,
}

/// Anomaly kinds, the rows and columns of the confusion table before "none".
const KINDS: usize = AnomalyKind::ALL.len();
/// The index of "none" in the confusion table.
const NONE: usize = KINDS;
/// The product's targets, per kind.
const PRECISION_TARGET: f64 = 0.9;
const RECALL_TARGET: f64 = 0.8;

/// The position of `kind` in [`AnomalyKind::ALL`].
fn kind_index(kind: AnomalyKind) -> usize {
    AnomalyKind::ALL.iter().position(|k| *k == kind).unwrap_or(NONE)
}

/// The position of `profile` in [`DeviceProfile::ALL`].
fn profile_index(profile: DeviceProfile) -> usize {
    DeviceProfile::ALL.iter().position(|p| *p == profile).unwrap_or(0)
}

/// The labels per kind, as "USAGE_SPIKE 250, SILENCE 410, …" (a silence has a label per silent day
/// from its second).
pub fn injected_by_kind(truth: &[InjectedAnomaly]) -> String {
    let mut counts = [0_usize; KINDS];
    for label in truth {
        if let Some(count) = counts.get_mut(kind_index(label.kind)) {
            *count += 1;
        }
    }
    AnomalyKind::ALL
        .iter()
        .zip(counts)
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Counts over the fleet.
#[derive(Default)]
struct Tally {
    labels: [usize; KINDS],
    found: [usize; KINDS],
    detections: [usize; KINDS],
    true_detections: [usize; KINDS],
    /// `[what the detector said][the true kind]`, "none" last in both.
    confusion: [[usize; KINDS + 1]; KINDS + 1],
    /// Detections matching no label, by their kind and the SIM's last label before them within
    /// the window ("nothing before" when none): where the false ones come from.
    false_after: std::collections::BTreeMap<(AnomalyKind, Option<AnomalyKind>), usize>,
    /// Detections matching no label, by their kind and the SIM's device kind.
    false_by_profile: std::collections::BTreeMap<(AnomalyKind, DeviceProfile), usize>,
}

impl Tally {
    fn recall(&self, kind: usize) -> Option<f64> {
        share(*self.found.get(kind)?, *self.labels.get(kind)?)
    }

    fn precision(&self, kind: usize) -> Option<f64> {
        share(*self.true_detections.get(kind)?, *self.detections.get(kind)?)
    }
}

/// `part` / `whole`; `None` for a whole of 0.
fn share(part: usize, whole: usize) -> Option<f64> {
    if whole > 0 {
        Some(part as f64 / whole as f64)
    } else {
        None
    }
}

/// One run's figures.
struct AnomalyRun {
    sims: usize,
    tally: Tally,
    threads: usize,
    /// Each window day's detection over all SIMs on `threads` threads.
    day_times: Vec<Duration>,
    /// The last day's detection over all SIMs on one thread.
    one_thread: Duration,
    /// Resident memory before it and at its peak, MB.
    before_mb: f64,
    peak_mb: f64,
}

/// `ioto-bench anomalies`: per run, the detector on each of the last 30 days of a fleet of its
/// own, scored against the truth; then the median and spread of each figure over the runs.
pub fn run_anomalies(options: &AnomalyOptions) -> anyhow::Result<()> {
    check_fleet(options.days, options.anomaly_rate)?;
    if options.anomaly_rate <= 0.0 {
        bail!("--anomaly-rate: above 0, or there is nothing to find");
    }
    let threads = cores();
    println!(
        "anomalies: {} simulated SIMs × {} days, anomaly rate {} per SIM and 10 days; every SIM judged \
         on each of the last {ANOMALY_WINDOW_DAYS} days with its history up to that day; {} runs, \
         each its own fleet; {threads} cores",
        options.sims, options.days, options.anomaly_rate, options.runs
    );
    println!(
        "matching: a detection of kind K on day d for SIM s is true when the truth holds (s, d, K); a \
         silence is true on any day of a labelled silence (its unlabelled first day too) and its labels \
         are found when any day of it is detected; a new country also satisfies a new-network label of \
         the same SIM and day (the network is in a country new to the SIM)"
    );
    println!(
        "cohort statistics: per device kind and day, from the day's usage of every SIM of that kind \
         (consulted only for SIMs under 21 days of history: none here)"
    );
    let mut summary = Vec::with_capacity(options.runs);
    for run in 1..=options.runs {
        let fleet = simulate_run(
            options.seed,
            run,
            options.runs,
            options.sims,
            options.days,
            options.anomaly_rate,
            options.truth_out.as_deref(),
        )?;
        let result = run_once(fleet, threads)?;
        print(&result);
        summary.push(figures(&result));
    }
    print_summary("anomalies", &summary);
    Ok(())
}

/// Detects on every window day of `fleet` and scores against its truth.
fn run_once(fleet: SimulatedFleet, threads: usize) -> anyhow::Result<AnomalyRun> {
    let SimulatedFleet {
        start,
        days,
        sims,
        truth,
    } = fleet;
    let Some(window_start) = days.checked_sub(ANOMALY_WINDOW_DAYS) else {
        bail!("{days} days hold no window of {ANOMALY_WINDOW_DAYS} days");
    };
    let profiles: Vec<usize> = sims.iter().map(|sim| profile_index(sim.profile)).collect();
    let histories: Vec<SimHistory> = sims
        .into_iter()
        .map(|sim| SimHistory {
            start,
            daily_bytes: sim.daily_bytes,
            daily_sessions: sim.daily_sessions,
            networks: sim.networks,
            imeis: sim.imeis,
            dismissed: Vec::new(),
        })
        .collect();

    // Per window day, the statistics of each device kind.
    let cohorts: Vec<Vec<Option<CohortStats>>> = (window_start..days)
        .map(|day| {
            (0..DeviceProfile::ALL.len())
                .map(|profile| {
                    let values: Vec<f64> = histories
                        .iter()
                        .zip(&profiles)
                        .filter(|(_, p)| **p == profile)
                        .filter_map(|(history, _)| history.daily_bytes.get(day).copied())
                        .collect();
                    cohort_stats(&values)
                })
                .collect()
        })
        .collect();

    // What the detector said, per SIM: (window day, kind).
    let mut said: Vec<Vec<(usize, AnomalyKind)>> = vec![Vec::new(); histories.len()];
    let mut day_times = Vec::with_capacity(ANOMALY_WINDOW_DAYS);
    for (window_day, cohort) in cohorts.iter().enumerate() {
        let date = add_days(start, window_start + window_day);
        let started = Instant::now();
        let parts = on_threads(&histories, threads, |first, part| {
            let mut out = Vec::new();
            for (offset, history) in part.iter().enumerate() {
                let sim = first + offset;
                let stats = profiles
                    .get(sim)
                    .and_then(|&profile| cohort.get(profile))
                    .and_then(Option::as_ref);
                out.extend(detect(history, date, stats).into_iter().map(|a| (sim, a.kind)));
            }
            out
        })?;
        day_times.push(started.elapsed());
        for (sim, kind) in parts.into_iter().flatten() {
            if let Some(list) = said.get_mut(sim) {
                list.push((window_day, kind));
            }
        }
    }

    // The last day again on one thread, with the memory it takes.
    let last = cohorts.len().saturating_sub(1);
    let date = add_days(start, window_start + last);
    let reset = reset_peak();
    let before_mb = rss_mb();
    let started = Instant::now();
    let mut found = 0;
    for (history, &profile) in histories.iter().zip(&profiles) {
        let stats = cohorts
            .get(last)
            .and_then(|day| day.get(profile))
            .and_then(Option::as_ref);
        found += std::hint::black_box(detect(history, date, stats)).len();
    }
    let one_thread = started.elapsed();
    let peak_mb = if reset { peak_rss_mb() } else { f64::NAN };
    let said_last = said
        .iter()
        .map(|list| list.iter().filter(|(day, _)| *day == last).count())
        .sum::<usize>();
    if found != said_last {
        bail!("the last day found {found} anomalies on one thread and {said_last} on {threads}");
    }

    // The truth per SIM, by window day.
    let mut labels: Vec<Vec<(usize, AnomalyKind)>> = vec![Vec::new(); histories.len()];
    for label in &truth {
        let day = usize::try_from((label.day - start).num_days()).unwrap_or(usize::MAX);
        let Some(window_day) = day.checked_sub(window_start).filter(|d| *d < ANOMALY_WINDOW_DAYS) else {
            bail!("a label outside the last {ANOMALY_WINDOW_DAYS} days: {label:?}");
        };
        match labels.get_mut(label.sim) {
            Some(list) => list.push((window_day, label.kind)),
            None => bail!("a label of SIM {} in a fleet of {}", label.sim, histories.len()),
        }
    }
    let mut tally = Tally::default();
    for ((sim_labels, sim_said), profile) in labels.iter_mut().zip(&mut said).zip(&profiles) {
        sim_labels.sort();
        sim_said.sort();
        sim_said.dedup();
        let profile = DeviceProfile::ALL
            .get(*profile)
            .copied()
            .unwrap_or(DeviceProfile::Tracker);
        score_sim(sim_labels, sim_said, profile, &mut tally);
    }
    Ok(AnomalyRun {
        sims: histories.len(),
        tally,
        threads,
        day_times,
        one_thread,
        before_mb,
        peak_mb,
    })
}

/// The silences among a SIM's `labels` (sorted): (first silent day, last), the first silent day
/// being the one before the first label.
fn silence_episodes(labels: &[(usize, AnomalyKind)]) -> Vec<(usize, usize)> {
    let mut episodes: Vec<(usize, usize)> = Vec::new();
    for &(day, kind) in labels {
        if kind != AnomalyKind::Silence {
            continue;
        }
        match episodes.last_mut() {
            Some((_, last)) if *last + 1 == day => *last = day,
            _ => episodes.push((day.saturating_sub(1), day)),
        }
    }
    episodes
}

/// Scores one SIM: its `labels` and what the detector `said` (both by window day, sorted, without
/// repeats).
fn score_sim(
    labels: &[(usize, AnomalyKind)],
    said: &[(usize, AnomalyKind)],
    profile: DeviceProfile,
    tally: &mut Tally,
) {
    let episodes = silence_episodes(labels);
    let episode_of = |day: usize| {
        episodes
            .iter()
            .copied()
            .find(|&(from, to)| (from..=to).contains(&day))
    };
    let truly: Vec<bool> = said
        .iter()
        .map(|&(day, kind)| match kind {
            AnomalyKind::Silence => episode_of(day).is_some(),
            AnomalyKind::NewCountry => labels
                .iter()
                .any(|&(d, k)| d == day && matches!(k, AnomalyKind::NewCountry | AnomalyKind::NewNetwork)),
            _ => labels.contains(&(day, kind)),
        })
        .collect();
    for (&(_, kind), &true_one) in said.iter().zip(&truly) {
        let k = kind_index(kind);
        if let Some(count) = tally.detections.get_mut(k) {
            *count += 1;
        }
        if true_one {
            if let Some(count) = tally.true_detections.get_mut(k) {
                *count += 1;
            }
        }
    }

    // Each label: found as which kind, or explained by a false detection of its day, or missed.
    let mut explains_a_miss = vec![false; said.len()];
    for &(day, kind) in labels {
        let k = kind_index(kind);
        if k >= KINDS {
            continue;
        }
        tally.labels[k] += 1;
        let found_as = match kind {
            AnomalyKind::Silence => episode_of(day)
                .filter(|&(from, to)| {
                    said.iter()
                        .any(|&(d, s)| s == AnomalyKind::Silence && (from..=to).contains(&d))
                })
                .map(|_| AnomalyKind::Silence),
            AnomalyKind::NewNetwork if !said.contains(&(day, kind)) => said
                .contains(&(day, AnomalyKind::NewCountry))
                .then_some(AnomalyKind::NewCountry),
            _ => said.contains(&(day, kind)).then_some(kind),
        };
        if let Some(as_kind) = found_as {
            tally.found[k] += 1;
            tally.confusion[kind_index(as_kind)][k] += 1;
            continue;
        }
        let other = said
            .iter()
            .zip(&truly)
            .zip(&explains_a_miss)
            .position(|((&(d, _), &true_one), &used)| d == day && !true_one && !used);
        match other {
            Some(index) => {
                explains_a_miss[index] = true;
                tally.confusion[kind_index(said[index].1)][k] += 1;
            }
            None => tally.confusion[NONE][k] += 1,
        }
    }
    for ((&(day, kind), &true_one), &used) in said.iter().zip(&truly).zip(&explains_a_miss) {
        if !true_one && !used {
            tally.confusion[kind_index(kind)][NONE] += 1;
        }
        if !true_one {
            let before = labels.iter().rev().find(|&&(d, _)| d < day).map(|&(_, k)| k);
            *tally.false_after.entry((kind, before)).or_default() += 1;
            *tally.false_by_profile.entry((kind, profile)).or_default() += 1;
        }
    }

    // Quiet SIM-days: no label, no detection, no silence.
    let mut busy: BTreeSet<usize> = labels.iter().map(|&(day, _)| day).collect();
    busy.extend(said.iter().map(|&(day, _)| day));
    for &(from, to) in &episodes {
        busy.extend(from..=to);
    }
    tally.confusion[NONE][NONE] += ANOMALY_WINDOW_DAYS.saturating_sub(busy.len());
}

fn print(r: &AnomalyRun) {
    let t = &r.tally;
    println!(
        "| kind | labels | found | recall | detections | true | precision | precision ≥ 90 % | recall ≥ 80 % |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|---|");
    for (k, kind) in AnomalyKind::ALL.iter().enumerate() {
        let (precision, recall) = (t.precision(k), t.recall(k));
        println!(
            "| {kind} | {} | {} | {} | {} | {} | {} | {} | {} |",
            t.labels[k],
            t.found[k],
            percent(recall),
            t.detections[k],
            t.true_detections[k],
            percent(precision),
            yes_no(precision.is_some_and(|p| p >= PRECISION_TARGET)),
            yes_no(recall.is_some_and(|r| r >= RECALL_TARGET))
        );
    }
    let (labels, found): (usize, usize) = (t.labels.iter().sum(), t.found.iter().sum());
    let (detections, true_ones): (usize, usize) = (t.detections.iter().sum(), t.true_detections.iter().sum());
    println!(
        "| all kinds | {labels} | {found} | {} | {detections} | {true_ones} | {} | | |",
        percent(share(found, labels)),
        percent(share(true_ones, detections))
    );

    println!(
        "confusion: columns the true kind of each label (none: detections matching no label, and \
         quiet SIM-days); rows what the detector said that SIM-day (none: nothing, or only true \
         detections of other labels)"
    );
    let names: Vec<&str> = AnomalyKind::ALL
        .iter()
        .map(|kind| kind.as_str())
        .chain(["none"])
        .collect();
    println!("| said \\ true | {} |", names.join(" | "));
    println!("|---|{}", "---:|".repeat(names.len()));
    for (row, name) in t.confusion.iter().zip(&names) {
        let cells: Vec<String> = row.iter().map(usize::to_string).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }

    let after: Vec<String> = t
        .false_after
        .iter()
        .map(|((said, before), n)| match before {
            Some(b) => format!("{said} after a {b}: {n}"),
            None => format!("{said} with nothing before: {n}"),
        })
        .collect();
    println!(
        "false detections by the SIM's last label before them in the window: {}",
        if after.is_empty() {
            "none".to_owned()
        } else {
            after.join("; ")
        }
    );
    let by_profile: Vec<String> = t
        .false_by_profile
        .iter()
        .map(|((said, profile), n)| format!("{said} on a {profile:?}: {n}"))
        .collect();
    println!(
        "false detections by device kind: {}",
        if by_profile.is_empty() {
            "none".to_owned()
        } else {
            by_profile.join("; ")
        }
    );

    let ms: Vec<f64> = r.day_times.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    let (median, min, max) = median_spread(&ms);
    let one_ms = r.one_thread.as_secs_f64() * 1e3;
    println!(
        "one day's detection over {} SIMs: {median:.0} ms ({min:.0}–{max:.0}) over the {} days on {} \
         threads; the last day on one thread {one_ms:.0} ms, {:.1} µs per SIM; RSS before {:.0} MB \
         (the fleet's histories), peak {:.0} MB",
        r.sims,
        r.day_times.len(),
        r.threads,
        one_ms * 1e3 / r.sims.max(1) as f64,
        r.before_mb,
        r.peak_mb
    );
}

/// The figures of the summary over runs.
fn figures(r: &AnomalyRun) -> Vec<Figure> {
    let mut out = Vec::new();
    for (k, kind) in AnomalyKind::ALL.iter().enumerate() {
        out.push(Figure::percent(
            &format!("{kind}: precision, %"),
            r.tally.precision(k).unwrap_or(f64::NAN),
        ));
        out.push(Figure::percent(
            &format!("{kind}: recall, %"),
            r.tally.recall(k).unwrap_or(f64::NAN),
        ));
    }
    let ms: Vec<f64> = r.day_times.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    out.push(Figure::new(
        &format!("one day, {} threads, ms (median of the days)", r.threads),
        median_spread(&ms).0,
        0,
    ));
    out.push(Figure::new(
        "one day, one thread, ms",
        r.one_thread.as_secs_f64() * 1e3,
        0,
    ));
    out.push(Figure::new("one day, one thread, peak RSS, MB", r.peak_mb, 0));
    out
}
