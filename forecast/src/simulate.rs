//! A simulated IoT fleet with ground truth: daily usage, sessions, networks and devices of SIMs of
//! four device kinds, with labelled anomalies injected, so that forecasts and the anomaly detector
//! can be measured against what really happened. Pure and deterministic: the same seed gives the
//! same fleet, and each SIM draws from its own random stream (SIM 7 is the same in a fleet of 10
//! and of 10,000).
//!
//! ```text
//!  seed, SIM id
//!       │
//!       ▼
//!  habits ─── kind, level, weekday factors, trend, level shift, sessions, home networks
//!       │
//!       ▼
//!  usual days ─ level × weekday × trend × shift ─▶ plan of anomalies (last 30 days, 10 apart)
//!       │                                                   │
//!       ▼                                                   ▼
//!  noisy days ─ noise, zero days, bursts, busy day ─▶ anomalies applied ─▶ networks, IMEIs, truth
//!               (none on the days around an anomaly)
//! ```
//!
//! **Normal behaviour**, including what makes detection hard: a level per SIM drawn log-normally
//! around its kind's median; weekday factors (idle weekends for a quarter of the trackers); a
//! trend (gateways); multiplicative log-normal noise; single zero days (never two in a row);
//! camera bursts of 1.5–2.5 ×; one SIM in 20 whose level shifts by ±30 % for good; one in 33 with
//! a legitimate busy day at twice its usual; one in 7 that also uses a second network of its home
//! country every 5 to 14 days from its first day (known, so not new).
//!
//! **Hours**: [`SimulatedSim::hours`] splits a day's bytes over its 24 hours by the kind's daily
//! rhythm ([`DeviceProfile::hourly_shape`]: trackers by day with commuting peaks, meters' night
//! upload, cameras' evenings, gateways' business hours), the SIM's own variant of it and each
//! hour's noise, from random streams of their own: the days are the same with or without hours.
//!
//! **Injected anomalies**, in the last [`ANOMALY_WINDOW_DAYS`] days only, starts at least
//! [`ANOMALY_SPACING_DAYS`] apart per SIM (an episode lasts at most 5 days, so none overlap), with
//! the days around each episode kept free of zero days and bursts. Each 10 days of the window
//! starts one with probability `anomaly_rate`; its kind is drawn uniformly, the next kind in
//! [`AnomalyKind::ALL`] order taken when the SIM cannot have it. What each is, and its label:
//!
//! - **UsageSpike**: one day at 5 to 50 × the SIM's usual for that day; only where that adds at
//!   least [`SPIKE_MIN_EXCESS_BYTES`](crate::anomaly::thresholds::SPIKE_MIN_EXCESS_BYTES) (5 MB,
//!   the product's floor for a spike: a 150 kB meter going to 1 MB is not one). Labelled on the
//!   day; magnitude: the multiple.
//! - **Silence**: 2 to 4 days without traffic or sessions, only where the usual of every one of
//!   those days is at least
//!   [`SILENCE_MIN_BASELINE_BYTES`](crate::anomaly::thresholds::SILENCE_MIN_BASELINE_BYTES)
//!   (1 MB). Labelled on each silent day from the second (one quiet day is not yet a silence);
//!   magnitude: the episode's length in days.
//! - **SessionStorm**: one day at 10 to 50 × the SIM's usual sessions, only where that reaches
//!   [`STORM_MIN_SESSIONS`](crate::anomaly::thresholds::STORM_MIN_SESSIONS) (50, below which the
//!   network does not notice). Labelled on the day; magnitude: the multiple.
//! - **NewCountry**: 1 to 3 days on a network of a country the SIM never used, instead of its home
//!   network. Labelled on the first day; magnitude: the days abroad.
//! - **NewNetwork**: 1 to 5 days on a network of its home country it never used. Labelled on the
//!   first day; magnitude: the days on it.
//! - **ImeiChange**: the SIM is in another device from that day on. Labelled on the day; magnitude 1.

mod hours;
mod inject;
mod rng;
mod sim;
#[cfg(test)]
mod tests;

use chrono::NaiveDate;

use crate::anomaly::{AnomalyKind, ImeiSeen, NetworkDay, SimHistory};
use crate::series::{DailySeries, WEEK};

pub use rng::SplitMix64;

/// Days at the end of a simulated history that may hold injected anomalies.
pub const ANOMALY_WINDOW_DAYS: usize = 30;
/// Fewest days between the starts of two injected anomalies of one SIM.
pub const ANOMALY_SPACING_DAYS: usize = 10;
/// The anomaly rate the benches and `ioto simulate history` take unless told otherwise: an
/// anomaly starts in one SIM's 10 days out of 20.
pub const DEFAULT_ANOMALY_RATE: f64 = 0.05;

/// The kinds of device a simulated fleet is made of, each with its own habits ([`ProfileTraits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceProfile {
    /// A vehicle or asset tracker: busy on working days, low (or idle) at weekends.
    Tracker,
    /// A smart meter: small, flat, steady.
    Meter,
    /// A camera: large and noisy, with occasional legitimate bursts.
    Camera,
    /// A gateway of a site: growing over time, quieter at weekends.
    Gateway,
}

/// How a device kind uses data; per SIM, the level, weekday factors, trend and sessions vary
/// around these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfileTraits {
    /// Median over the kind's SIMs of the daily level, in bytes.
    pub median_level: f64,
    /// Sigma of the log of a SIM's level around the median (SIMs of a kind differ a lot).
    pub level_sigma: f64,
    /// Weekday factors, Monday first, averaging 1.
    pub weekly: [f64; WEEK],
    /// Growth of the level per day (exponential rate; 0.004 is about +43 % over 90 days).
    pub trend_per_day: f64,
    /// Sigma of the log of a day's multiplicative noise.
    pub noise_sigma: f64,
    /// Share of days without any traffic (single days, never two in a row).
    pub zero_day_share: f64,
    /// Share of days with a legitimate burst of [`ProfileTraits::burst_factor`] × the day.
    pub burst_share: f64,
    /// Range of a burst's multiple.
    pub burst_factor: (f64, f64),
    /// Median over the kind's SIMs of the sessions of an active day.
    pub median_sessions: f64,
    /// Share of the fleet of this kind.
    pub fleet_share: f64,
}

impl DeviceProfile {
    /// Every kind, in the order of the declaration.
    pub const ALL: [DeviceProfile; 4] = [
        DeviceProfile::Tracker,
        DeviceProfile::Meter,
        DeviceProfile::Camera,
        DeviceProfile::Gateway,
    ];

    /// The kind's name in reports ("tracker").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tracker => "tracker",
            Self::Meter => "meter",
            Self::Camera => "camera",
            Self::Gateway => "gateway",
        }
    }

    /// The kind's habits.
    pub fn traits(self) -> ProfileTraits {
        const MB: f64 = 1e6;
        match self {
            Self::Tracker => ProfileTraits {
                median_level: 15.0 * MB,
                level_sigma: 0.9,
                weekly: [1.3, 1.3, 1.3, 1.3, 1.25, 0.3, 0.25],
                trend_per_day: 0.0,
                noise_sigma: 0.3,
                zero_day_share: 0.02,
                burst_share: 0.0,
                burst_factor: (1.0, 1.0),
                median_sessions: 24.0,
                fleet_share: 0.4,
            },
            Self::Meter => ProfileTraits {
                median_level: 0.15 * MB,
                level_sigma: 0.7,
                weekly: [1.0; WEEK],
                trend_per_day: 0.0,
                noise_sigma: 0.12,
                zero_day_share: 0.005,
                burst_share: 0.0,
                burst_factor: (1.0, 1.0),
                median_sessions: 3.0,
                fleet_share: 0.3,
            },
            Self::Camera => ProfileTraits {
                median_level: 400.0 * MB,
                level_sigma: 0.6,
                weekly: [0.95, 0.95, 0.95, 0.95, 1.0, 1.1, 1.1],
                trend_per_day: 0.0,
                noise_sigma: 0.4,
                zero_day_share: 0.003,
                burst_share: 0.03,
                burst_factor: (1.5, 2.5),
                median_sessions: 48.0,
                fleet_share: 0.1,
            },
            Self::Gateway => ProfileTraits {
                median_level: 60.0 * MB,
                level_sigma: 0.7,
                weekly: [1.1, 1.1, 1.1, 1.1, 1.1, 0.75, 0.75],
                trend_per_day: 0.004,
                noise_sigma: 0.2,
                zero_day_share: 0.003,
                burst_share: 0.0,
                burst_factor: (1.0, 1.0),
                median_sessions: 96.0,
                fleet_share: 0.2,
            },
        }
    }
}

/// A simulated fleet: its SIMs' histories and the anomalies injected into them.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedFleet {
    /// The first day of every SIM's history.
    pub start: NaiveDate,
    /// Days of every SIM's history.
    pub days: usize,
    /// The SIMs, by id (`sims[i].id == i`).
    pub sims: Vec<SimulatedSim>,
    /// The injected anomalies, by SIM and day.
    pub truth: Vec<InjectedAnomaly>,
}

/// One simulated SIM's history, in the shapes the forecasts and the detector read.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedSim {
    /// The SIM's number in its fleet.
    pub id: usize,
    /// Its kind of device.
    pub profile: DeviceProfile,
    /// Bytes per day, oldest first, from the fleet's start.
    pub daily_bytes: Vec<f64>,
    /// Data sessions per day, for the same days.
    pub daily_sessions: Vec<u32>,
    /// The networks it was seen on, per day, oldest first.
    pub networks: Vec<NetworkDay>,
    /// The IMEIs it was seen in, oldest first.
    pub imeis: Vec<ImeiSeen>,
    /// What each day would have been without noise, zero days, bursts or anomalies: its level ×
    /// weekday factor × trend × level shift.
    pub usual_bytes: Vec<f64>,
    /// Its usual sessions on an active day.
    pub usual_sessions: f64,
    /// The seed of the random streams that split its days into hours ([`SimulatedSim::hours`]),
    /// apart from the stream its days are drawn from.
    pub hour_stream: u64,
}

impl SimulatedSim {
    /// Its usage as a forecast reads it.
    pub fn series(&self, start: NaiveDate) -> DailySeries {
        DailySeries::new(start, self.daily_bytes.clone())
    }

    /// Its history as the detector reads it, without dismissals.
    pub fn history(&self, start: NaiveDate) -> SimHistory {
        SimHistory {
            start,
            daily_bytes: self.daily_bytes.clone(),
            daily_sessions: self.daily_sessions.clone(),
            networks: self.networks.clone(),
            imeis: self.imeis.clone(),
            dismissed: Vec::new(),
        }
    }
}

/// An anomaly injected into a simulated SIM, as the ground truth a detector is measured against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InjectedAnomaly {
    /// The SIM's id.
    pub sim: usize,
    /// The labelled day.
    pub day: NaiveDate,
    /// What was injected.
    pub kind: AnomalyKind,
    /// How much (see the module's documentation, per kind).
    pub magnitude: f64,
}

/// A fleet of `sims` SIMs with `days` days of history from `start`, the same for the same `seed`.
/// Kinds are drawn by their [`ProfileTraits::fleet_share`]; `anomaly_rate` is the chance that an
/// anomaly starts in each 10 days of the last 30 of a SIM (0 for none; see the module's
/// documentation). Cost: linear in `sims × days`; about 90 network records and a few dozen
/// small allocations per SIM and 90 days.
pub fn simulate_fleet(
    seed: u64,
    sims: usize,
    days: usize,
    start: NaiveDate,
    anomaly_rate: f64,
) -> SimulatedFleet {
    let mut simulated = Vec::with_capacity(sims);
    let mut truth = Vec::new();
    for id in 0..sims {
        let (sim, injected) = sim::simulate_sim(seed, id, days, start, anomaly_rate);
        simulated.push(sim);
        truth.extend(injected);
    }
    SimulatedFleet {
        start,
        days,
        sims: simulated,
        truth,
    }
}

/// SIM `id` of the fleet [`simulate_fleet`] makes with the same arguments, and the anomalies
/// injected into it: one SIM at a time, for a caller that turns each SIM into something else
/// (events, rows) without holding a whole fleet in memory.
pub fn simulate_one(
    seed: u64,
    id: usize,
    days: usize,
    start: NaiveDate,
    anomaly_rate: f64,
) -> (SimulatedSim, Vec<InjectedAnomaly>) {
    sim::simulate_sim(seed, id, days, start, anomaly_rate)
}

/// The ground truth as CSV (RFC 4180: a header, CRLF line ends): `sim,day,kind,magnitude`, the day
/// as YYYY-MM-DD, the kind as the API names it (`USAGE_SPIKE`).
pub fn write_truth_csv(truth: &[InjectedAnomaly]) -> String {
    let mut out = String::with_capacity(32 * (truth.len() + 1));
    out.push_str("sim,day,kind,magnitude\r\n");
    for anomaly in truth {
        out.push_str(&format!(
            "{},{},{},{}\r\n",
            anomaly.sim,
            anomaly.day,
            anomaly.kind.as_str(),
            anomaly.magnitude
        ));
    }
    out
}
