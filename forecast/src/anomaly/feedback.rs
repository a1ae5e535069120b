//! What the dismissals on a SIM accept as expected, on a given day (see [`Dismissal`]).

use chrono::NaiveDate;

use super::model::{AnomalyKind, Dismissal};

/// The dismissals of `kind` that still apply on `day`.
fn active(dismissed: &[Dismissal], kind: AnomalyKind, day: NaiveDate) -> impl Iterator<Item = &Dismissal> {
    dismissed
        .iter()
        .filter(move |dismissal| dismissal.kind == kind && dismissal.applies_on(day))
}

/// Whether anomalies of `kind` are dismissed altogether on `day`: a dismissal of the kind with
/// neither a value nor a level applies.
pub(super) fn suppressed(dismissed: &[Dismissal], kind: AnomalyKind, day: NaiveDate) -> bool {
    active(dismissed, kind, day).any(|dismissal| dismissal.value.is_none() && dismissal.level_bytes.is_none())
}

/// The networks, countries or IMEIs (by `kind`) accepted as known on `day`.
pub(super) fn accepted_values(dismissed: &[Dismissal], kind: AnomalyKind, day: NaiveDate) -> Vec<&str> {
    active(dismissed, kind, day)
        .filter_map(|dismissal| dismissal.value.as_deref())
        .collect()
}

/// The highest daily usage accepted as expected on `day` by a dismissed usage spike, if any.
pub(super) fn accepted_level(dismissed: &[Dismissal], day: NaiveDate) -> Option<f64> {
    active(dismissed, AnomalyKind::UsageSpike, day)
        .filter_map(|dismissal| dismissal.level_bytes)
        .filter(|level| level.is_finite())
        .reduce(f64::max)
}
