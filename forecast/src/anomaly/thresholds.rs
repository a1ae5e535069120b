//! Every number the detector decides with, named, with the reason for its value.
//!
//! The detector is tuned for precision over recall: an operator who is shown a false alarm a day
//! per hundred SIMs stops reading them. Most cuts therefore combine a statistical test (robust
//! z) with a plain-words test (a multiple of the usual, an absolute amount), and an anomaly must
//! pass both.

/// Turns a median absolute deviation into a standard deviation for normally distributed data
/// (1 / Φ⁻¹(3/4)), so that robust z-scores read like ordinary ones.
pub const MAD_SCALE: f64 = 1.4826;

/// Days a SIM must have before the detection day to be judged against its own history: three
/// weekly seasons, the fewest that give every weekday a median of three values. A younger SIM is
/// judged against its cohort.
pub const OWN_HISTORY_MIN_DAYS: usize = 21;

/// Days in a season: usage of IoT fleets follows the working week.
pub const SEASON_DAYS: usize = 7;

/// Weeks of history behind a weekday's baseline (the median of the same weekday over up to this
/// many weeks) and behind the spread of the residuals. Eight weeks follow a SIM whose use changes
/// (a new firmware, a new site) within two months, yet a single odd week moves no median.
pub const SEASONAL_WEEKS: usize = 8;

/// Floor of the residuals' MAD as a share of the SIM's median daily usage. A SIM that uses nearly
/// the same every day has a MAD near zero, and without a floor +10 % would be a large z; 5 % of
/// its usual level is the least variation any real SIM has.
pub const MAD_FLOOR_SHARE: f64 = 0.05;

/// Floor of the residuals' MAD in bytes: the robust standard deviation is never below 500 kB.
/// A tiny, steady SIM (a meter sending 20 kB a day) has a MAD of a few hundred bytes, so any
/// firmware check would score a z in the thousands. With this floor the score of such a SIM
/// stays readable (5 MB above its usual scores 10) and the absolute floor
/// [`SPIKE_MIN_EXCESS_BYTES`] is what decides whether it is a spike at all.
pub const MAD_FLOOR_BYTES: f64 = 500_000.0 / MAD_SCALE;

/// Least robust z of a usage spike. 3.5 is the textbook cut (Iglewicz and Hoaglin) for a single
/// sample; daily usage residuals are heavy-tailed and a fleet of 100,000 SIMs is tested 100,000
/// times a day, so 6 keeps chance excursions of noisy SIMs out.
pub const SPIKE_MIN_Z: f64 = 6.0;

/// Least robust z of a usage spike on the log scale (the day's ratio to its baseline against the
/// spread of the SIM's ratios). Daily usage varies multiplicatively — a camera's days spread
/// by ±40 %, a meter's by ±10 % — so a noisy SIM's ordinary high days pass a linear z and a
/// 3 × ratio, while on the log scale they stay within a few deviations. 5 deviations on the log
/// scale is 7 × the usual for a SIM whose days spread by ±40 % and 2 × (less than
/// [`SPIKE_MIN_RATIO`], which then decides) for one within ±10 %.
pub const SPIKE_MIN_LOG_Z: f64 = 5.0;

/// Floor of the log-scale spread: ±5 % a day, the least any real SIM varies (as
/// [`MAD_FLOOR_SHARE`]).
pub const LOG_SIGMA_FLOOR: f64 = 0.05;

/// Fewest days with traffic behind a log-scale spread (two weeks): with fewer, the linear tests
/// decide alone.
pub const LOG_SPREAD_MIN_DAYS: usize = 14;

/// Least ratio of a day's usage to its seasonal baseline for a spike. Doubling happens in normal
/// operation (a weekly upload, a retransmission after an outage); three times the usual is what
/// a person calls a spike, and it removes the z-only alarms of SIMs whose spread is small.
pub const SPIKE_MIN_RATIO: f64 = 3.0;

/// Least bytes above the baseline for a spike (5 MB). Below it, nothing costs money or points at
/// misuse on IoT plans, and tiny SIMs (kilobytes a day) reach large ratios with a single log
/// upload.
pub const SPIKE_MIN_EXCESS_BYTES: f64 = 5_000_000.0;

/// A dismissed spike's level is accepted as expected: the band's upper edge becomes at least this
/// multiple of it, so the same level (and ordinary variation around it) is not flagged again,
/// while a clearly larger one still is.
pub const DISMISSED_LEVEL_HEADROOM: f64 = 1.25;

/// Least baseline, in bytes a day, for a silence: a SIM that usually sends less than 1 MB may go
/// quiet for a day or two without anything being wrong (sleeping sensors, batched uploads).
pub const SILENCE_MIN_BASELINE_BYTES: f64 = 1_000_000.0;

/// A day is silent when the SIM used less than this share of its baseline (1 %): a device that
/// is off or has lost its connection sends nothing, or only a few signalling bytes.
pub const SILENCE_MAX_SHARE: f64 = 0.01;

/// Least number of the last seven weekdays whose baseline reaches [`SILENCE_MIN_BASELINE_BYTES`]:
/// silence is only news for a SIM that is active on most days. A SIM that is idle on weekends
/// still qualifies (five of seven), one active two days a week does not.
pub const SILENCE_MIN_ACTIVE_WEEKDAYS: usize = 5;

/// Fewest SIMs for cohort statistics. With fewer, the 99th percentile is the largest value and
/// the median and MAD move with every SIM, too unstable to call anyone an outlier.
pub const COHORT_MIN_SIMS: usize = 20;

/// A SIM judged against its cohort is a spike from this multiple of the cohort's 99th percentile:
/// being in the top 1 % is normal for one SIM in a hundred, twice the top 1 % is not.
pub const COHORT_P99_FACTOR: f64 = 2.0;

/// A SIM judged against its cohort is a spike from this many robust standard deviations above the
/// cohort's median. SIMs of a cohort differ far more than one SIM's days do, so the cut is higher
/// than [`SPIKE_MIN_Z`].
pub const COHORT_MIN_Z: f64 = 10.0;

/// Least bytes of a day for a spike against the cohort (5 MB), for the reason of
/// [`SPIKE_MIN_EXCESS_BYTES`].
pub const COHORT_SPIKE_MIN_BYTES: f64 = 5_000_000.0;

/// Days of sessions behind a session storm's median (four weeks: every weekday four times).
pub const STORM_HISTORY_DAYS: usize = 28;

/// Fewest days of session history for a session storm: the median of fewer days is not a habit.
pub const STORM_MIN_HISTORY_DAYS: usize = 7;

/// A session storm has at least this multiple of the median daily sessions. A device stuck in an
/// attach–detach loop opens tens to hundreds of times its usual sessions; ordinary causes of more
/// sessions (moving between cells, a reboot, a firmware update) stay within two or three times.
pub const STORM_MIN_RATIO: f64 = 5.0;

/// A session storm is at least this many robust standard deviations above the median. Session
/// counts are small integers with heavy tails, so the cut is above the usage spike's.
pub const STORM_MIN_Z: f64 = 8.0;

/// Floor of the MAD of daily sessions: a SIM with exactly the same count every day would
/// otherwise have no spread at all.
pub const STORM_MAD_FLOOR: f64 = 1.0;

/// Least sessions in a day for a session storm. Below 50 a day the network does not notice, and
/// a SIM going from 3 sessions to 16 is not a storm whatever its ratio.
pub const STORM_MIN_SESSIONS: f64 = 50.0;

/// Days before the detection day whose networks, countries and dismissals make a network or a
/// country known: a network last seen longer ago is new again.
pub const NETWORK_LOOKBACK_DAYS: i64 = 30;

/// Days a SIM must have been seen on networks before a new network or country is an anomaly: a
/// new SIM's first networks are its first, not a change.
pub const NETWORK_MIN_HISTORY_DAYS: i64 = 7;

/// Score of a new country: roaming abroad costs money and may break a contract, more than a new
/// network at home.
pub const NEW_COUNTRY_SCORE: f64 = 10.0;

/// Score of a new network in a known country: usually a coverage change, worth a look.
pub const NEW_NETWORK_SCORE: f64 = 6.0;

/// Score of an IMEI change: a SIM moved to another device is a theft or misuse pattern.
pub const IMEI_CHANGE_SCORE: f64 = 8.0;

/// Largest score: past it, every anomaly is simply extreme, and a cap keeps sorting and charts
/// readable.
pub const SCORE_CAP: f64 = 100.0;

/// Score from which an anomaly is of high severity (a robust z of 20, 20 × the usual sessions).
/// New countries and IMEI changes are high whatever their score.
pub const HIGH_SCORE: f64 = 20.0;

/// Score from which an anomaly is of medium severity; below it, low.
pub const MEDIUM_SCORE: f64 = 10.0;

/// Days of the evidence series: four weeks, enough to see the weekly pattern the day is compared
/// with.
pub const EVIDENCE_DAYS: usize = 28;

/// Least usual level, in bytes, for which a sentence states a ratio ("40 × its usual 57 MB"):
/// against next to nothing a ratio is a meaningless large number, so the sentence states both
/// amounts instead.
pub const SENTENCE_RATIO_MIN_BYTES: f64 = 1_000.0;
