//! What the detector reads (a SIM's history and the anomalies dismissed on it) and what it
//! answers (anomalies with a score, a severity, a sentence and their evidence).

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::thresholds::{HIGH_SCORE, MEDIUM_SCORE, SCORE_CAP};

/// One SIM's recent history, everything the detector needs to judge one day.
///
/// The daily series start at `start` and hold one entry per day, oldest first, normally up to
/// and including the detection day; entries after it are ignored, so a past day can be judged
/// again with the same history. Usage that is not a finite, non-negative number counts as 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimHistory {
    /// The day of the first entry of `daily_bytes` and `daily_sessions`.
    pub start: NaiveDate,
    /// Bytes used per day (up and down), oldest first.
    pub daily_bytes: Vec<f64>,
    /// Data sessions opened per day, for the same days as `daily_bytes`.
    pub daily_sessions: Vec<u32>,
    /// The networks the SIM was seen on, per day, over at least the last 30 days.
    pub networks: Vec<NetworkDay>,
    /// The IMEIs the SIM was seen in, in any order.
    pub imeis: Vec<ImeiSeen>,
    /// Anomalies a person dismissed as expected behaviour, which the detector takes into account.
    pub dismissed: Vec<Dismissal>,
}

/// A network a SIM was seen on during one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDay {
    /// The day it was seen on.
    pub day: NaiveDate,
    /// The network's MCC-MNC, as displayed ("262-01").
    pub mcc_mnc: String,
    /// The network's country, as displayed in sentences ("Germany"); empty if unknown.
    pub country: String,
}

/// A device (IMEI) a SIM was seen in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImeiSeen {
    /// The day it was seen.
    pub at: NaiveDate,
    /// The device's IMEI.
    pub imei: String,
}

/// An anomaly a person dismissed as expected behaviour (`dismissAnomaly`), so that the detector
/// does not raise it again.
///
/// What a dismissal accepts depends on its kind:
/// - a usage spike with `level_bytes`: that level of daily usage; the band's upper edge becomes
///   at least [`DISMISSED_LEVEL_HEADROOM`](super::thresholds::DISMISSED_LEVEL_HEADROOM) × the level;
/// - a new network, a new country or an IMEI change with `value`: that network, country or IMEI
///   becomes known;
/// - any kind with neither `value` nor `level_bytes`: no anomaly of that kind at all (a silence
///   or a session storm accepted while a device is in maintenance, say).
///
/// A dismissal with `until` stops applying after that day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dismissal {
    /// The kind of anomaly dismissed.
    pub kind: AnomalyKind,
    /// The last day the dismissal applies; `None` for always.
    pub until: Option<NaiveDate>,
    /// The network, country or IMEI accepted as expected.
    pub value: Option<String>,
    /// The daily usage, in bytes, accepted as expected.
    pub level_bytes: Option<f64>,
}

impl Dismissal {
    /// Whether the dismissal still applies on `day`: always without `until`, else up to and
    /// including `until`.
    pub fn applies_on(&self, day: NaiveDate) -> bool {
        self.until.is_none_or(|until| day <= until)
    }
}

/// What kind of unusual behaviour an anomaly is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AnomalyKind {
    /// Far more data than usual in a day.
    UsageSpike,
    /// No (or next to no) data for two days from a SIM that is active on most days.
    Silence,
    /// Far more data sessions than usual in a day: a device reconnecting in a loop.
    SessionStorm,
    /// A network not seen in the last 30 days, in a country that was.
    NewNetwork,
    /// A country not seen in the last 30 days.
    NewCountry,
    /// The SIM is in another device than before.
    ImeiChange,
}

impl AnomalyKind {
    /// Every kind, in the order of the declaration.
    pub const ALL: [AnomalyKind; 6] = [
        AnomalyKind::UsageSpike,
        AnomalyKind::Silence,
        AnomalyKind::SessionStorm,
        AnomalyKind::NewNetwork,
        AnomalyKind::NewCountry,
        AnomalyKind::ImeiChange,
    ];

    /// The kind's name in the API and in storage ("USAGE_SPIKE"), the same as its serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsageSpike => "USAGE_SPIKE",
            Self::Silence => "SILENCE",
            Self::SessionStorm => "SESSION_STORM",
            Self::NewNetwork => "NEW_NETWORK",
            Self::NewCountry => "NEW_COUNTRY",
            Self::ImeiChange => "IMEI_CHANGE",
        }
    }

    /// The kind named `name` (as [`AnomalyKind::as_str`] writes it).
    pub fn parse(name: &str) -> Result<Self, UnknownAnomalyKind> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| UnknownAnomalyKind(name.to_string()))
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an anomaly kind, returned by [`AnomalyKind::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAnomalyKind(pub String);

impl fmt::Display for UnknownAnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = AnomalyKind::ALL.into_iter().map(AnomalyKind::as_str).collect();
        write!(f, "'{}' is not an anomaly kind ({})", self.0, known.join(", "))
    }
}

impl std::error::Error for UnknownAnomalyKind {}

/// How urgently a person should look at an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    /// Worth a look when convenient.
    Low,
    /// Worth a look today.
    Medium,
    /// Worth a look now: costs money or points at misuse.
    High,
}

impl Severity {
    /// The severity of an anomaly of `kind` with `score`: high from [`HIGH_SCORE`], and for every
    /// new country and IMEI change (roaming costs and a SIM in another device matter whatever the
    /// score); medium from [`MEDIUM_SCORE`]; low below.
    pub fn from_score(kind: AnomalyKind, score: f64) -> Self {
        if matches!(kind, AnomalyKind::NewCountry | AnomalyKind::ImeiChange) || score >= HIGH_SCORE {
            Self::High
        } else if score >= MEDIUM_SCORE {
            Self::Medium
        } else {
            Self::Low
        }
    }

    /// The severity's name in the API ("HIGH"), the same as its serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
        }
    }
}

/// What a day was compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Baseline {
    /// The SIM's own history.
    Own,
    /// The SIMs of its cohort on the same day (a SIM with too little history of its own).
    Cohort,
}

/// Why the detector raised an anomaly, in numbers a chart can show.
///
/// For usage spikes and silences the numbers are bytes a day, for session storms sessions a day.
/// For a new network, country or IMEI, `observed` is 1 (seen on the day), `expected` and the band
/// are 0 (not seen in the 30 days before), and `series` counts the distinct networks, countries
/// or IMEIs seen per day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The day's value.
    pub observed: f64,
    /// What was expected for the day: the seasonal baseline, the cohort's median or the median of
    /// sessions.
    pub expected: f64,
    /// Lower edge of the accepted range: a silence is a value below it (two days running).
    pub band_lo: f64,
    /// Upper edge of the accepted range: a spike or a storm is a value at or above it.
    pub band_hi: f64,
    /// The last up to 28 days, oldest first, the day last.
    pub series: Vec<f64>,
    /// What the day was compared with.
    pub baseline: Baseline,
}

/// Something unusual a SIM did on a day, explained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// What kind of unusual behaviour it is.
    pub kind: AnomalyKind,
    /// The day it happened.
    pub day: NaiveDate,
    /// How unusual it is: a robust z-score for spikes and silences, the ratio to the median for
    /// session storms, a fixed score for new networks, countries and IMEIs; at most 100.
    pub score: f64,
    /// How urgently a person should look, from the score (see [`Severity::from_score`]).
    pub severity: Severity,
    /// A sentence a person understands ("2.3 GB today, 40 × its usual 57 MB for a Tuesday").
    pub sentence: String,
    /// The numbers behind it.
    pub evidence: Evidence,
    /// The new network, country or IMEI; `None` for the other kinds.
    pub value: Option<String>,
}

impl Anomaly {
    /// An anomaly with its score capped at [`SCORE_CAP`] and its severity derived from it.
    pub(super) fn new(
        kind: AnomalyKind,
        day: NaiveDate,
        score: f64,
        sentence: String,
        evidence: Evidence,
        value: Option<String>,
    ) -> Self {
        let score = score.min(SCORE_CAP);
        Self {
            kind,
            day,
            score,
            severity: Severity::from_score(kind, score),
            sentence,
            evidence,
            value,
        }
    }
}
