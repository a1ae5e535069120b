//! Usage spikes and silences.
//!
//! A SIM with [`OWN_HISTORY_MIN_DAYS`] days of history is judged against itself: the day's
//! baseline is the median of the same weekday over up to [`SEASONAL_WEEKS`] weeks, the spread is
//! the MAD of the residuals (each day minus the median of its weekday's other days) over those
//! weeks, floored ([`robust_sigma`]), and the robust z of the day is its distance from the
//! baseline in robust standard deviations. A spike must pass the z, a multiple of the baseline
//! and an absolute amount; a silence is two days below 1 % of the baseline of a SIM that is
//! active on most weekdays. A younger SIM is judged against its cohort's day, for spikes only.

use chrono::{Datelike, NaiveDate};

use super::feedback;
use super::model::{Anomaly, AnomalyKind, Baseline, Evidence, SimHistory};
use super::stats::{mad, median, robust_sigma, CohortStats};
use super::text::{bytes_text, ratio_text, weekday_name};
use super::thresholds::{
    DISMISSED_LEVEL_HEADROOM, LOG_SIGMA_FLOOR, LOG_SPREAD_MIN_DAYS, MAD_SCALE, OWN_HISTORY_MIN_DAYS,
    SEASONAL_WEEKS, SEASON_DAYS, SENTENCE_RATIO_MIN_BYTES, SILENCE_MAX_SHARE, SILENCE_MIN_ACTIVE_WEEKDAYS,
    SILENCE_MIN_BASELINE_BYTES, SPIKE_MIN_EXCESS_BYTES, SPIKE_MIN_LOG_Z, SPIKE_MIN_RATIO, SPIKE_MIN_Z,
};
use super::{day_index, evidence_series};

/// The usage anomalies of the SIM on `day`: against its own history if it has enough, else
/// against `cohort` if given.
pub(super) fn detect(history: &SimHistory, day: NaiveDate, cohort: Option<&CohortStats>) -> Vec<Anomaly> {
    let Some(index) = day_index(history.start, day, history.daily_bytes.len()) else {
        return Vec::new();
    };
    let bytes: Vec<f64> = history
        .daily_bytes
        .iter()
        .take(index + 1)
        .copied()
        .map(clean)
        .collect();
    if index >= OWN_HISTORY_MIN_DAYS {
        match OwnDay::new(history, day, &bytes) {
            Some(own) => own.spike().into_iter().chain(own.silence()).collect(),
            None => Vec::new(),
        }
    } else {
        cohort
            .and_then(|stats| against_cohort(history, day, &bytes, stats))
            .into_iter()
            .collect()
    }
}

/// Daily bytes as the detector reads them: anything not finite and positive is 0.
fn clean(bytes: f64) -> f64 {
    if bytes.is_finite() && bytes > 0.0 {
        bytes
    } else {
        0.0
    }
}

/// The day of a SIM judged against its own history.
struct OwnDay<'a> {
    history: &'a SimHistory,
    day: NaiveDate,
    /// Bytes per day up to and including `day`, cleaned.
    bytes: &'a [f64],
    /// The day's bytes.
    observed: f64,
    /// The day's seasonal baseline.
    expected: f64,
    /// The robust standard deviation of the residuals, floored.
    sigma: f64,
    /// The robust standard deviation of the residuals on the log scale (ratios to the
    /// baseline), floored; 0 when too few days have traffic to tell.
    log_sigma: f64,
}

impl<'a> OwnDay<'a> {
    fn new(history: &'a SimHistory, day: NaiveDate, bytes: &'a [f64]) -> Option<Self> {
        let observed = *bytes.last()?;
        let today = bytes.len().checked_sub(1)?;
        Some(Self {
            history,
            day,
            bytes,
            observed,
            expected: seasonal_baseline(bytes, today)?,
            sigma: residual_sigma(bytes)?,
            log_sigma: log_residual_sigma(bytes).unwrap_or(0.0),
        })
    }

    /// The least bytes of a spike: [`SPIKE_MIN_Z`] robust standard deviations,
    /// [`SPIKE_MIN_RATIO`] × and [`SPIKE_MIN_EXCESS_BYTES`] above the baseline,
    /// [`SPIKE_MIN_LOG_Z`] robust standard deviations above it on the log scale, and
    /// [`DISMISSED_LEVEL_HEADROOM`] × the highest level accepted by a dismissal.
    fn spike_edge(&self) -> f64 {
        let accepted = feedback::accepted_level(&self.history.dismissed, self.day).unwrap_or(0.0);
        (self.expected + SPIKE_MIN_Z * self.sigma)
            .max(SPIKE_MIN_RATIO * self.expected)
            .max(self.expected * (SPIKE_MIN_LOG_Z * self.log_sigma).exp())
            .max(self.expected + SPIKE_MIN_EXCESS_BYTES)
            .max(DISMISSED_LEVEL_HEADROOM * accepted)
    }

    fn spike(&self) -> Option<Anomaly> {
        if feedback::suppressed(&self.history.dismissed, AnomalyKind::UsageSpike, self.day) {
            return None;
        }
        if self.observed < self.spike_edge() {
            return None;
        }
        let used = bytes_text(self.observed);
        let usual = bytes_text(self.expected);
        let weekday = weekday_name(self.day.weekday());
        let sentence = if self.expected >= SENTENCE_RATIO_MIN_BYTES {
            let ratio = ratio_text(self.observed / self.expected);
            format!("{used} today, {ratio} × its usual {usual} for a {weekday}")
        } else {
            format!("{used} today; it usually uses {usual} on a {weekday}")
        };
        let z = (self.observed - self.expected) / self.sigma;
        Some(Anomaly::new(
            AnomalyKind::UsageSpike,
            self.day,
            z,
            sentence,
            self.evidence(),
            None,
        ))
    }

    fn silence(&self) -> Option<Anomaly> {
        if feedback::suppressed(&self.history.dismissed, AnomalyKind::Silence, self.day) {
            return None;
        }
        let today = self.bytes.len().checked_sub(1)?;
        let yesterday = today.checked_sub(1)?;
        let active_weekdays = (0..SEASON_DAYS)
            .filter_map(|back| today.checked_sub(back))
            .filter_map(|index| seasonal_baseline(self.bytes, index))
            .filter(|&usual| usual >= SILENCE_MIN_BASELINE_BYTES)
            .count();
        if active_weekdays < SILENCE_MIN_ACTIVE_WEEKDAYS {
            return None;
        }
        let used_yesterday = *self.bytes.get(yesterday)?;
        let usual_yesterday = seasonal_baseline(self.bytes, yesterday)?;
        // Two days running: a single quiet day is too often a maintenance window or a late upload.
        let silent = quiet(self.observed, self.expected) && quiet(used_yesterday, usual_yesterday);
        if !silent {
            return None;
        }
        let usual = bytes_text(self.expected);
        let weekday = weekday_name(self.day.weekday());
        let habit = format!("it usually uses {usual} on a {weekday}");
        let sentence = if self.observed <= 0.0 && used_yesterday <= 0.0 {
            format!("No traffic today or yesterday; {habit}")
        } else {
            let today_text = bytes_text(self.observed);
            let yesterday_text = bytes_text(used_yesterday);
            format!("Only {today_text} today and {yesterday_text} yesterday; {habit}")
        };
        let z = (self.expected - self.observed) / self.sigma;
        Some(Anomaly::new(
            AnomalyKind::Silence,
            self.day,
            z,
            sentence,
            self.evidence(),
            None,
        ))
    }

    fn evidence(&self) -> Evidence {
        Evidence {
            observed: self.observed,
            expected: self.expected,
            band_lo: silence_edge(self.expected),
            band_hi: self.spike_edge(),
            series: evidence_series(self.bytes),
            baseline: Baseline::Own,
        }
    }
}

/// Whether a day with `used` bytes is silent for a SIM that usually uses `usual` on that weekday.
fn quiet(used: f64, usual: f64) -> bool {
    usual >= SILENCE_MIN_BASELINE_BYTES && used < SILENCE_MAX_SHARE * usual
}

/// The bytes below which a day counts towards a silence, 0 for a baseline too small for silences.
fn silence_edge(usual: f64) -> f64 {
    if usual >= SILENCE_MIN_BASELINE_BYTES {
        SILENCE_MAX_SHARE * usual
    } else {
        0.0
    }
}

/// The seasonal baseline of the day at `index`: the median of the same weekday over the up to
/// [`SEASONAL_WEEKS`] weeks before it. `None` when there is no earlier week.
fn seasonal_baseline(bytes: &[f64], index: usize) -> Option<f64> {
    let same_weekday: Vec<f64> = (1..=SEASONAL_WEEKS)
        .filter_map(|weeks| index.checked_sub(weeks * SEASON_DAYS))
        .filter_map(|earlier| bytes.get(earlier).copied())
        .collect();
    median(&same_weekday)
}

/// The robust standard deviation of the residuals over the up to [`SEASONAL_WEEKS`] weeks before
/// the last day of `bytes`, floored ([`robust_sigma`], with the median day of those weeks as the
/// level).
///
/// Each day is compared with the median of the *other* days of its weekday (leave one out): its
/// own value would pull its baseline towards it and make the spread look smaller than it is, most
/// of all with three weeks of history, where a third of the residuals would be exactly 0.
fn residual_sigma(bytes: &[f64]) -> Option<f64> {
    let today = bytes.len().checked_sub(1)?;
    let window = bytes.get(today.saturating_sub(SEASONAL_WEEKS * SEASON_DAYS)..today)?;
    let mut weekdays: Vec<Vec<f64>> = vec![Vec::new(); SEASON_DAYS];
    for (position, &value) in window.iter().enumerate() {
        if let Some(same_weekday) = weekdays.get_mut(position % SEASON_DAYS) {
            same_weekday.push(value);
        }
    }
    let mut residuals = Vec::with_capacity(window.len());
    for same_weekday in &weekdays {
        for (position, &value) in same_weekday.iter().enumerate() {
            let others: Vec<f64> = same_weekday
                .iter()
                .enumerate()
                .filter(|&(other, _)| other != position)
                .map(|(_, &other)| other)
                .collect();
            if let Some(usual) = median(&others) {
                residuals.push(value - usual);
            }
        }
    }
    let spread = mad(&residuals)?;
    let level = median(window)?;
    Some(robust_sigma(spread, level))
}

/// The robust standard deviation of the residuals on the log scale over the up to
/// [`SEASONAL_WEEKS`] weeks before the last day of `bytes`: each day with traffic against the
/// median of the other days of its weekday (leave one out, as [`residual_sigma`]), as the log of
/// their ratio. Usage varies by ratios (a camera's day is 30 % above or below its usual, not
/// 120 MB): on this scale a noisy SIM's ordinary high days sit a few deviations up while a
/// runaway day sits far beyond. `None` with fewer than [`LOG_SPREAD_MIN_DAYS`] such days.
fn log_residual_sigma(bytes: &[f64]) -> Option<f64> {
    let today = bytes.len().checked_sub(1)?;
    let window = bytes.get(today.saturating_sub(SEASONAL_WEEKS * SEASON_DAYS)..today)?;
    let mut weekdays: Vec<Vec<f64>> = vec![Vec::new(); SEASON_DAYS];
    for (position, &value) in window.iter().enumerate() {
        if let Some(same_weekday) = weekdays.get_mut(position % SEASON_DAYS) {
            same_weekday.push(value);
        }
    }
    let mut residuals = Vec::with_capacity(window.len());
    for same_weekday in &weekdays {
        for (position, &value) in same_weekday.iter().enumerate() {
            let others: Vec<f64> = same_weekday
                .iter()
                .enumerate()
                .filter(|&(other, _)| other != position)
                .map(|(_, &other)| other)
                .collect();
            if let Some(usual) = median(&others).filter(|usual| *usual > 0.0) {
                if value > 0.0 {
                    residuals.push((value / usual).ln());
                }
            }
        }
    }
    if residuals.len() < LOG_SPREAD_MIN_DAYS {
        return None;
    }
    Some((MAD_SCALE * mad(&residuals)?).max(LOG_SIGMA_FLOOR))
}

/// A spike of a SIM too new for its own history, against its cohort's day.
fn against_cohort(
    history: &SimHistory,
    day: NaiveDate,
    bytes: &[f64],
    cohort: &CohortStats,
) -> Option<Anomaly> {
    if feedback::suppressed(&history.dismissed, AnomalyKind::UsageSpike, day) {
        return None;
    }
    let observed = *bytes.last()?;
    let accepted = feedback::accepted_level(&history.dismissed, day).unwrap_or(0.0);
    let band_hi = cohort.spike_edge().max(DISMISSED_LEVEL_HEADROOM * accepted);
    if observed < band_hi {
        return None;
    }
    let expected = cohort.median_daily_bytes;
    let used = bytes_text(observed);
    let usual = bytes_text(expected);
    let own = own_history_text(bytes.len().saturating_sub(1));
    let sentence = if expected >= SENTENCE_RATIO_MIN_BYTES {
        let ratio = ratio_text(observed / expected);
        format!("{used} today, {ratio} × the median of {usual} of similar SIMs ({own})")
    } else {
        format!("{used} today; similar SIMs use a median of {usual} ({own})")
    };
    let z = (observed - expected) / robust_sigma(cohort.mad_daily_bytes, expected);
    let evidence = Evidence {
        observed,
        expected,
        band_lo: 0.0,
        band_hi,
        series: evidence_series(bytes),
        baseline: Baseline::Cohort,
    };
    Some(Anomaly::new(
        AnomalyKind::UsageSpike,
        day,
        z,
        sentence,
        evidence,
        None,
    ))
}

/// Why a SIM is compared with its cohort, in words.
fn own_history_text(days: usize) -> String {
    match days {
        0 => "it has no history of its own yet".to_string(),
        1 => "it has only 1 day of history".to_string(),
        _ => format!("it has only {days} days of history"),
    }
}
