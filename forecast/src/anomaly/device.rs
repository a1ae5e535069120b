//! IMEI changes: the SIM is in another device than before, a pattern of theft (a SIM taken from
//! a meter into a phone) or of a device swapped without telling anyone.

use chrono::NaiveDate;

use super::distinct_per_day;
use super::feedback;
use super::model::{Anomaly, AnomalyKind, ImeiSeen, SimHistory};
use super::network::first_time_evidence;
use super::thresholds::IMEI_CHANGE_SCORE;

/// The IMEI change of the SIM on `day`, if any: the last IMEI seen on `day` differs from the last
/// one seen before it. The first IMEI a SIM is ever seen in is not a change, and an IMEI accepted
/// by a dismissal is not reported.
pub(super) fn detect(history: &SimHistory, day: NaiveDate) -> Option<Anomaly> {
    if feedback::suppressed(&history.dismissed, AnomalyKind::ImeiChange, day) {
        return None;
    }
    let mut sightings: Vec<&ImeiSeen> = history
        .imeis
        .iter()
        .filter(|seen| seen.at <= day && !seen.imei.is_empty())
        .collect();
    // A stable sort: within a day, the order given is the order seen.
    sightings.sort_by_key(|seen| seen.at);
    let previous = sightings.iter().rfind(|seen| seen.at < day)?;
    let current = sightings.iter().rfind(|seen| seen.at == day)?;
    if current.imei == previous.imei {
        return None;
    }
    let accepted = feedback::accepted_values(&history.dismissed, AnomalyKind::ImeiChange, day);
    if accepted.contains(&current.imei.as_str()) {
        return None;
    }
    let (now, was) = (&current.imei, &previous.imei);
    let sentence = format!("Now in a device with IMEI {now} (was {was})");
    let series = distinct_per_day(
        history.imeis.iter().map(|seen| (seen.at, seen.imei.as_str())),
        day,
    );
    Some(Anomaly::new(
        AnomalyKind::ImeiChange,
        day,
        IMEI_CHANGE_SCORE,
        sentence,
        first_time_evidence(series),
        Some(current.imei.clone()),
    ))
}
