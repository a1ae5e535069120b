//! Quota warnings, replaying a month (`ioto-bench forecast`): the last 30 simulated days are a
//! billing period; each SIM's quota is its actual usage over them times a factor drawn in
//! [0.7, 1.3], so that some SIMs exhaust it and some do not. Every day of the period, the SIM is
//! forecast to the period's end from the days before that day (what the product knows that
//! morning) and a warning is raised when `exhaustion` finds the quota running out within the
//! period, by either rule: the likely date, or the earliest (the upper 80 % bound).
//!
//! A SIM that exhausts its quota on day e was warned ≥ 24 h ahead when a warning was raised on a
//! day ≤ e − 1; its replay stops on day e. Recall: SIMs warned ≥ 24 h ahead / SIMs that exhausted.
//! False warnings: warned SIMs that never exhausted / warned SIMs. Up to 30 forecasts per SIM, so
//! the replay runs on a sample: the first `--replay-sims` SIMs (their kinds drawn like the rest).

use std::time::{Duration, Instant};

use ioto_forecast::series::add_days;
use ioto_forecast::simulate::{SimulatedFleet, SimulatedSim, SplitMix64};
use ioto_forecast::{exhaustion, DailySeries};

use super::{on_threads, percent, yes_no, Figure};

/// Days of the replayed billing period: the last of the history.
const PERIOD_DAYS: usize = 30;
/// A SIM's quota is its usage over the period times a factor drawn in this range.
const QUOTA_FACTOR: (f64, f64) = (0.7, 1.3);
/// Mixed into the seed for the quota factors, so that they do not repeat the fleet's numbers.
const QUOTA_STREAM: u64 = 0x0051_554F_5441;
/// The product's targets: at least this share of the SIMs that exhaust warned ≥ 24 h ahead …
const RECALL_TARGET: f64 = 0.9;
/// … and at most this share of the warnings false.
const FALSE_TARGET: f64 = 0.1;
/// The warning rules, in the order of [`SimOutcome::first_warning`]: a name for the table, a
/// short one for the summary, and whether the rule warns on a morning given the outlook and the
/// morning's day. "Within N days" is the alert trigger `QUOTA_EXHAUSTION_FORECAST` with
/// threshold N.
const RULES: [(&str, &str, Warns); 5] = [
    (
        "the likely exhaustion date within the period",
        "likely",
        |o, _| o.likely.is_some(),
    ),
    (
        "the earliest (upper 80 % bound) within the period",
        "earliest",
        |o, _| o.earliest.is_some(),
    ),
    (
        "the likely date within 7 days (alert, threshold 7)",
        "likely within 7 days",
        |o, today| o.likely.is_some_and(|d| d <= add_days(today, 7)),
    ),
    (
        "the likely date within 3 days (alert, threshold 3)",
        "likely within 3 days",
        |o, today| o.likely.is_some_and(|d| d <= add_days(today, 3)),
    ),
    (
        "the latest (lower 80 % bound) within the period",
        "latest",
        |o, _| o.latest.is_some(),
    ),
];

/// Whether a rule warns, given the outlook on a morning and that morning's day.
type Warns = fn(&ioto_forecast::Exhaustion, chrono::NaiveDate) -> bool;

/// How one rule did.
pub struct RuleFigures {
    pub rule: &'static str,
    /// SIMs that exhausted and were warned on a day before.
    pub warned_ahead: usize,
    /// SIMs warned at least once.
    pub warned: usize,
    /// Warned SIMs that never exhausted.
    pub false_warnings: usize,
}

impl RuleFigures {
    fn recall(&self, exhausted: usize) -> Option<f64> {
        (exhausted > 0).then_some(self.warned_ahead as f64 / exhausted as f64)
    }

    fn false_share(&self) -> Option<f64> {
        (self.warned > 0).then_some(self.false_warnings as f64 / self.warned as f64)
    }
}

/// The replay of one fleet's sample.
pub struct Replay {
    /// SIMs replayed (the sample less those without usage).
    pub sims: usize,
    /// SIMs of the sample without usage in the period (a quota of 0), left out.
    pub no_usage: usize,
    /// SIMs that exhausted their quota.
    pub exhausted: usize,
    /// Of those, the SIMs that exhausted it on the period's first day: no warning within the
    /// period can come before.
    pub exhausted_first_day: usize,
    pub forecasts: usize,
    pub elapsed: Duration,
    pub threads: usize,
    pub rules: Vec<RuleFigures>,
}

/// One SIM's replay.
#[derive(Default)]
struct SimOutcome {
    no_usage: bool,
    /// The day of the period (0-based) its quota ran out on.
    exhausted: Option<usize>,
    /// Per rule, the first day of the period a warning was raised on.
    first_warning: [Option<usize>; RULES.len()],
    forecasts: usize,
}

/// Replays the period for the first `sample` SIMs of `fleet`, on `threads` threads; the quota
/// factors are drawn from `seed`.
pub fn replay(fleet: &SimulatedFleet, seed: u64, sample: usize, threads: usize) -> anyhow::Result<Replay> {
    let sims = &fleet.sims[..sample.min(fleet.sims.len())];
    let period_start = fleet.days.saturating_sub(PERIOD_DAYS);
    let period_end = add_days(fleet.start, fleet.days.saturating_sub(1));
    let started = Instant::now();
    let parts = on_threads(sims, threads, |_, part| {
        part.iter()
            .map(|sim| replay_sim(fleet, sim, seed, period_start, period_end))
            .collect::<anyhow::Result<Vec<SimOutcome>>>()
    })?;
    let elapsed = started.elapsed();

    let mut replay = Replay {
        sims: 0,
        no_usage: 0,
        exhausted: 0,
        exhausted_first_day: 0,
        forecasts: 0,
        elapsed,
        threads,
        rules: RULES
            .iter()
            .map(|&(rule, _, _)| RuleFigures {
                rule,
                warned_ahead: 0,
                warned: 0,
                false_warnings: 0,
            })
            .collect(),
    };
    for part in parts {
        for outcome in part? {
            replay.forecasts += outcome.forecasts;
            if outcome.no_usage {
                replay.no_usage += 1;
                continue;
            }
            replay.sims += 1;
            if let Some(day) = outcome.exhausted {
                replay.exhausted += 1;
                replay.exhausted_first_day += usize::from(day == 0);
            }
            for (figures, first) in replay.rules.iter_mut().zip(outcome.first_warning) {
                let Some(warned_on) = first else { continue };
                figures.warned += 1;
                match outcome.exhausted {
                    Some(day) if warned_on < day => figures.warned_ahead += 1,
                    Some(_) => {}
                    None => figures.false_warnings += 1,
                }
            }
        }
    }
    Ok(replay)
}

/// One SIM's month: its quota, the day it runs out, and the first warning of each rule.
fn replay_sim(
    fleet: &SimulatedFleet,
    sim: &SimulatedSim,
    seed: u64,
    period_start: usize,
    period_end: chrono::NaiveDate,
) -> anyhow::Result<SimOutcome> {
    let days = sim.daily_bytes.len();
    let Some(period) = sim.daily_bytes.get(period_start..) else {
        return Ok(SimOutcome {
            no_usage: true,
            ..SimOutcome::default()
        });
    };
    let mut rng = SplitMix64::for_stream(seed ^ QUOTA_STREAM, sim.id as u64);
    let quota = period.iter().sum::<f64>() * rng.between(QUOTA_FACTOR.0, QUOTA_FACTOR.1);
    if quota <= 0.0 {
        return Ok(SimOutcome {
            no_usage: true,
            ..SimOutcome::default()
        });
    }
    let mut used = 0.0;
    let mut exhausted = None;
    for (day, bytes) in period.iter().enumerate() {
        used += bytes;
        if used >= quota {
            exhausted = Some(day);
            break;
        }
    }
    // Replayed up to the day the quota runs out (a warning that day is a late one), else the
    // whole period.
    let replayed = exhausted.map_or(period.len(), |day| day + 1);
    let mut outcome = SimOutcome {
        exhausted,
        ..SimOutcome::default()
    };
    let mut used = 0.0;
    for (day, bytes) in period.iter().enumerate().take(replayed) {
        // The morning of `day`: the days before it are known, the forecast runs to the period's end.
        let today = period_start + day;
        let history = DailySeries::new(fleet.start, sim.daily_bytes[..today].to_vec());
        let forecast = ioto_forecast::forecast(&history, days - today, None)?;
        outcome.forecasts += 1;
        let outlook = exhaustion(&forecast, used, quota, period_end);
        let morning = add_days(fleet.start, today);
        for (first, (_, _, warns)) in outcome.first_warning.iter_mut().zip(RULES) {
            if first.is_none() && warns(&outlook, morning) {
                *first = Some(day);
            }
        }
        used += bytes;
    }
    Ok(outcome)
}

pub fn print(r: &Replay) {
    println!(
        "quota warnings, replaying the last {PERIOD_DAYS} days as a billing period, on a sample: the \
         first {} SIMs (--replay-sims; {} forecasts to the period's end, one per SIM and morning, in \
         {:.1} s on {} threads); quota = the period's actual usage × a factor drawn in [{}, {}]; \
         {} SIMs exhaust it ({} on the period's first day, which no warning within the period can \
         precede), {} do not; {} without usage left out",
        r.sims + r.no_usage,
        r.forecasts,
        r.elapsed.as_secs_f64(),
        r.threads,
        QUOTA_FACTOR.0,
        QUOTA_FACTOR.1,
        r.exhausted,
        r.exhausted_first_day,
        r.sims - r.exhausted,
        r.no_usage
    );
    println!(
        "| warn on … | warned ≥ 24 h ahead / exhausted | recall | false warnings / warned | false share | recall ≥ 90 % | false ≤ 10 % |"
    );
    println!("|---|---:|---:|---:|---:|---|---|");
    for rule in &r.rules {
        let recall = rule.recall(r.exhausted);
        let false_share = rule.false_share();
        println!(
            "| {} | {} / {} | {} | {} / {} | {} | {} | {} |",
            rule.rule,
            rule.warned_ahead,
            r.exhausted,
            percent(recall),
            rule.false_warnings,
            rule.warned,
            percent(false_share),
            yes_no(recall.is_some_and(|v| v >= RECALL_TARGET)),
            yes_no(false_share.is_some_and(|v| v <= FALSE_TARGET))
        );
    }
}

/// The figures of the summary over runs.
pub fn figures(r: &Replay) -> Vec<Figure> {
    let mut out = Vec::new();
    for (rule, (_, name, _)) in r.rules.iter().zip(RULES) {
        out.push(Figure::percent(
            &format!("quota replay, rule {name}: recall ≥ 24 h ahead, %"),
            rule.recall(r.exhausted).unwrap_or(f64::NAN),
        ));
        out.push(Figure::percent(
            &format!("quota replay, rule {name}: false warnings, %"),
            rule.false_share().unwrap_or(f64::NAN),
        ));
    }
    out.push(Figure::new("quota replay, s", r.elapsed.as_secs_f64(), 1));
    out
}
