//! Session storms: a day with many times the sessions the SIM usually opens, the sign of a
//! device reconnecting in a loop, which loads the network and may be billed per session.

use chrono::NaiveDate;

use super::feedback;
use super::model::{Anomaly, AnomalyKind, Baseline, Evidence, SimHistory};
use super::stats::{mad, median};
use super::text::{ratio_text, short_number};
use super::thresholds::{
    MAD_SCALE, STORM_HISTORY_DAYS, STORM_MAD_FLOOR, STORM_MIN_HISTORY_DAYS, STORM_MIN_RATIO,
    STORM_MIN_SESSIONS, STORM_MIN_Z,
};
use super::{day_index, evidence_series};

/// The session storm of the SIM on `day`, if any: at least [`STORM_MIN_RATIO`] × the median of
/// the last [`STORM_HISTORY_DAYS`] days, [`STORM_MIN_Z`] robust standard deviations above it (the
/// MAD floored at [`STORM_MAD_FLOOR`]) and [`STORM_MIN_SESSIONS`] sessions. The score is the ratio
/// to the median (taken as at least 1).
pub(super) fn detect(history: &SimHistory, day: NaiveDate) -> Option<Anomaly> {
    let today = day_index(history.start, day, history.daily_sessions.len())?;
    if today < STORM_MIN_HISTORY_DAYS {
        return None;
    }
    if feedback::suppressed(&history.dismissed, AnomalyKind::SessionStorm, day) {
        return None;
    }
    let sessions: Vec<f64> = history
        .daily_sessions
        .iter()
        .take(today + 1)
        .copied()
        .map(f64::from)
        .collect();
    let observed = *sessions.last()?;
    let before = sessions.get(today.saturating_sub(STORM_HISTORY_DAYS)..today)?;
    let usual = median(before)?;
    let spread = mad(before)?.max(STORM_MAD_FLOOR);
    let band_hi = (STORM_MIN_RATIO * usual)
        .max(usual + STORM_MIN_Z * MAD_SCALE * spread)
        .max(STORM_MIN_SESSIONS);
    if observed < band_hi {
        return None;
    }
    let ratio = observed / usual.max(1.0);
    let count = short_number(observed);
    let sentence = if usual >= 1.0 {
        let times = ratio_text(ratio);
        let median_text = short_number(usual);
        format!("{count} sessions today, {times} × its median of {median_text}")
    } else {
        format!("{count} sessions today; it usually has next to none")
    };
    let evidence = Evidence {
        observed,
        expected: usual,
        band_lo: 0.0,
        band_hi,
        series: evidence_series(&sessions),
        baseline: Baseline::Own,
    };
    Some(Anomaly::new(
        AnomalyKind::SessionStorm,
        day,
        ratio,
        sentence,
        evidence,
        None,
    ))
}
