//! One simulated SIM: its habits, its normal days, then its anomalies, networks and devices.

use chrono::{Datelike, NaiveDate};

use super::hours;
use super::inject;
use super::rng::SplitMix64;
use super::{DeviceProfile, InjectedAnomaly, SimulatedSim};
use crate::anomaly::{ImeiSeen, NetworkDay};
use crate::series::{add_days, weekday_index, WEEK};

/// A country of the simulated networks: its name as sentences show it and four networks.
pub(super) struct Country {
    pub(super) name: &'static str,
    pub(super) networks: [&'static str; NETWORKS_PER_COUNTRY],
}

/// Networks per simulated country.
pub(super) const NETWORKS_PER_COUNTRY: usize = 4;

/// The simulated countries; SIMs are at home in one of the first [`HOME_COUNTRIES`].
pub(super) static COUNTRIES: [Country; 6] = [
    Country {
        name: "Germany",
        networks: ["262-01", "262-02", "262-03", "262-07"],
    },
    Country {
        name: "France",
        networks: ["208-01", "208-10", "208-15", "208-20"],
    },
    Country {
        name: "Netherlands",
        networks: ["204-04", "204-08", "204-16", "204-20"],
    },
    Country {
        name: "Austria",
        networks: ["232-01", "232-03", "232-05", "232-10"],
    },
    Country {
        name: "Switzerland",
        networks: ["228-01", "228-02", "228-03", "228-53"],
    },
    Country {
        name: "Poland",
        networks: ["260-01", "260-02", "260-03", "260-06"],
    },
];

/// Countries SIMs can be at home in (the first of [`COUNTRIES`]).
const HOME_COUNTRIES: usize = 3;
/// A SIM's home network: the first of its country's.
pub(super) const HOME_NETWORK: usize = 0;
/// The second network of its home country that some SIMs also use now and then.
pub(super) const SECOND_NETWORK: usize = 1;

/// Share of trackers idle at weekends (no traffic at all on Saturdays and Sundays).
const IDLE_WEEKEND_SHARE: f64 = 0.25;
/// Sigma of the log of a SIM's own weekday factors around its kind's.
const WEEKDAY_SIGMA: f64 = 0.1;
/// A SIM's trend is its kind's times a factor drawn in this range.
const TREND_SPREAD: (f64, f64) = (0.5, 1.5);
/// Share of SIMs whose level shifts for good, by [`LEVEL_SHIFTS`], on a day of the last two thirds.
const LEVEL_SHIFT_SHARE: f64 = 0.05;
/// The permanent level shifts (−30 % or +30 %): a new firmware, a new site; not an anomaly.
const LEVEL_SHIFTS: [f64; 2] = [0.7, 1.3];
/// Share of SIMs with one legitimate busy day (twice the day) in the last 30 days.
const BUSY_DAY_SHARE: f64 = 0.03;
/// Multiple of a busy day.
const BUSY_DAY_FACTOR: f64 = 2.0;
/// Days at the end of the history a busy day falls in.
const BUSY_DAY_WINDOW: usize = 30;
/// Share of SIMs that also use the second network of their home country now and then.
const SECOND_NETWORK_SHARE: f64 = 0.15;
/// Days between two uses of the second network: drawn in this range (inclusive), so that it is
/// always seen within 30 days and therefore never new.
const SECOND_NETWORK_EVERY: (usize, usize) = (5, 14);
/// Sigma of the log of a SIM's usual sessions around its kind's median.
const SESSIONS_LEVEL_SIGMA: f64 = 0.5;
/// Sigma of the log of a day's sessions around the SIM's usual.
const SESSIONS_NOISE_SIGMA: f64 = 0.3;
/// Days between two sightings of a SIM's IMEI (a device reports it when it attaches).
const IMEI_SIGHTING_EVERY: usize = 7;

/// How one SIM uses data, drawn once.
pub(super) struct Habits {
    pub(super) profile: DeviceProfile,
    level: f64,
    weekly: [f64; WEEK],
    trend: f64,
    /// The day from which the level is multiplied by the factor.
    shift: Option<(usize, f64)>,
    /// Usual sessions of an active day.
    pub(super) sessions: f64,
    /// Index of its home country in [`COUNTRIES`].
    pub(super) home: usize,
    /// Days between uses of its home country's second network, when it uses it.
    second_network_every: Option<usize>,
    busy_day: Option<usize>,
}

impl Habits {
    fn draw(rng: &mut SplitMix64, days: usize) -> Self {
        let profile = draw_profile(rng);
        let traits = profile.traits();
        let level = traits.median_level * rng.log_normal(traits.level_sigma);
        let mut weekly = traits.weekly;
        for factor in &mut weekly {
            *factor *= rng.log_normal(WEEKDAY_SIGMA);
        }
        if profile == DeviceProfile::Tracker && rng.chance(IDLE_WEEKEND_SHARE) {
            weekly[5] = 0.0;
            weekly[6] = 0.0;
        }
        let trend = traits.trend_per_day * rng.between(TREND_SPREAD.0, TREND_SPREAD.1);
        let shift = if rng.chance(LEVEL_SHIFT_SHARE) {
            let from = days / 3;
            let day = from + rng.below(days - from);
            Some((day, LEVEL_SHIFTS[rng.below(LEVEL_SHIFTS.len())]))
        } else {
            None
        };
        let sessions = traits.median_sessions * rng.log_normal(SESSIONS_LEVEL_SIGMA);
        let home = rng.below(HOME_COUNTRIES);
        let second_network_every = if rng.chance(SECOND_NETWORK_SHARE) {
            let (least, most) = SECOND_NETWORK_EVERY;
            Some(least + rng.below(most - least + 1))
        } else {
            None
        };
        let busy_day = if rng.chance(BUSY_DAY_SHARE) {
            let window = BUSY_DAY_WINDOW.min(days);
            Some(days - window + rng.below(window))
        } else {
            None
        };
        Self {
            profile,
            level,
            weekly,
            trend,
            shift,
            sessions,
            home,
            second_network_every,
            busy_day,
        }
    }

    /// The usual bytes of day `day`, whose weekday index (Monday 0) is `slot`.
    fn usual(&self, day: usize, slot: usize) -> f64 {
        let shift = match self.shift {
            Some((from, factor)) if day >= from => factor,
            _ => 1.0,
        };
        self.level * self.weekly[slot % WEEK] * (self.trend * day as f64).exp() * shift
    }
}

/// A kind drawn by the kinds' shares of the fleet.
fn draw_profile(rng: &mut SplitMix64) -> DeviceProfile {
    let mut left = rng.unit();
    for profile in DeviceProfile::ALL {
        left -= profile.traits().fleet_share;
        if left < 0.0 {
            return profile;
        }
    }
    DeviceProfile::Tracker
}

/// SIM `id` of a fleet simulated under `seed`, and the anomalies injected into it.
pub(super) fn simulate_sim(
    seed: u64,
    id: usize,
    days: usize,
    start: NaiveDate,
    anomaly_rate: f64,
) -> (SimulatedSim, Vec<InjectedAnomaly>) {
    let mut rng = SplitMix64::for_stream(seed, id as u64);
    let habits = Habits::draw(&mut rng, days);
    let traits = habits.profile.traits();
    let first_slot = weekday_index(start.weekday());
    let usual: Vec<f64> = (0..days).map(|day| habits.usual(day, first_slot + day)).collect();
    let episodes = inject::plan(&mut rng, &habits, &usual, anomaly_rate);

    // The days around an anomaly stay free of zero days, bursts and the busy day, so that what a
    // detector sees there is the anomaly and nothing else.
    let mut protected = vec![false; days];
    for episode in &episodes {
        let from = episode.start.saturating_sub(1);
        let to = (episode.last_day() + 2).min(days);
        for slot in protected.iter_mut().take(to).skip(from) {
            *slot = true;
        }
    }

    let mut daily_bytes = Vec::with_capacity(days);
    let mut daily_sessions = Vec::with_capacity(days);
    let mut zero_yesterday = false;
    for (day, (&usual_day, &guarded)) in usual.iter().zip(&protected).enumerate() {
        let mut value = usual_day * rng.log_normal(traits.noise_sigma);
        let zero_day = !guarded && !zero_yesterday && rng.chance(traits.zero_day_share);
        zero_yesterday = zero_day;
        if zero_day {
            value = 0.0;
        } else if !guarded && rng.chance(traits.burst_share) {
            value *= rng.between(traits.burst_factor.0, traits.burst_factor.1);
        }
        if habits.busy_day == Some(day) && !guarded {
            value *= BUSY_DAY_FACTOR;
        }
        let sessions = if value > 0.0 {
            (habits.sessions * rng.log_normal(SESSIONS_NOISE_SIGMA))
                .round()
                .max(1.0) as u32
        } else {
            0
        };
        daily_bytes.push(value);
        daily_sessions.push(sessions);
    }

    let applied = inject::apply(
        &episodes,
        id,
        start,
        &habits,
        &usual,
        &mut daily_bytes,
        &mut daily_sessions,
    );
    let networks = networks(&habits, start, &daily_bytes, &daily_sessions, &applied.network_on);
    let imeis = imeis(&mut rng, start, days, &applied.imei_changes);
    let sim = SimulatedSim {
        id,
        profile: habits.profile,
        daily_bytes,
        daily_sessions,
        networks,
        imeis,
        usual_bytes: usual,
        usual_sessions: habits.sessions,
        hour_stream: hours::hour_stream(seed, id),
    };
    (sim, applied.truth)
}

/// The networks the SIM was seen on: on every day with traffic or sessions its home network, or
/// the network an anomaly put it on (seen even without traffic: it attached); and, for SIMs that
/// use one, the second home network on the first day with traffic at home from each of its days
/// on, so that it is never unseen for 30 days (its days are at most 14 apart, and a SIM is quiet
/// for a week at most: an idle weekend before a silence of four days).
fn networks(
    habits: &Habits,
    start: NaiveDate,
    daily_bytes: &[f64],
    daily_sessions: &[u32],
    network_on: &[Option<(usize, usize)>],
) -> Vec<NetworkDay> {
    let home = &COUNTRIES[habits.home];
    let record = |day: usize, country: &Country, network: usize| NetworkDay {
        day: add_days(start, day),
        mcc_mnc: country.networks[network].to_string(),
        country: country.name.to_string(),
    };
    let mut out = Vec::with_capacity(daily_bytes.len());
    let mut second_due = false;
    for (day, ((&bytes, &sessions), &elsewhere)) in
        daily_bytes.iter().zip(daily_sessions).zip(network_on).enumerate()
    {
        if habits.second_network_every.is_some_and(|every| day % every == 0) {
            second_due = true;
        }
        if let Some((country, network)) = elsewhere {
            out.push(record(day, &COUNTRIES[country], network));
        } else if bytes > 0.0 || sessions > 0 {
            out.push(record(day, home, HOME_NETWORK));
            if second_due {
                out.push(record(day, home, SECOND_NETWORK));
                second_due = false;
            }
        }
    }
    out
}

/// The IMEIs the SIM was seen in: its first device on day 0 and every [`IMEI_SIGHTING_EVERY`]
/// days after, a new device from each day of `changes` on (seen that day).
fn imeis(rng: &mut SplitMix64, start: NaiveDate, days: usize, changes: &[usize]) -> Vec<ImeiSeen> {
    let mut out = Vec::with_capacity(days / IMEI_SIGHTING_EVERY + changes.len() + 1);
    let mut current = imei(rng);
    for day in 0..days {
        if changes.contains(&day) {
            current = imei(rng);
        } else if day % IMEI_SIGHTING_EVERY != 0 {
            continue;
        }
        out.push(ImeiSeen {
            at: add_days(start, day),
            imei: current.clone(),
        });
    }
    out
}

/// A random IMEI: 14 digits from "35" on and the Luhn check digit.
fn imei(rng: &mut SplitMix64) -> String {
    let mut digits: Vec<u8> = vec![3, 5];
    while digits.len() < 14 {
        digits.push(rng.below(10) as u8);
    }
    digits.push(luhn_check_digit(&digits));
    digits.iter().map(|&digit| char::from(b'0' + digit)).collect()
}

/// The Luhn check digit of `digits` (each 0–9): every second digit from the right one doubled.
fn luhn_check_digit(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(position, &digit)| {
            let digit = u32::from(digit);
            if position % 2 == 0 {
                let doubled = 2 * digit;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                digit
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_check_digits_of_known_imeis() {
        // 356938035643809 and 356938035643817 (the detector's tests) are valid IMEIs.
        assert_eq!(luhn_check_digit(&[3, 5, 6, 9, 3, 8, 0, 3, 5, 6, 4, 3, 8, 0]), 9);
        assert_eq!(luhn_check_digit(&[3, 5, 6, 9, 3, 8, 0, 3, 5, 6, 4, 3, 8, 1]), 7);
    }

    #[test]
    fn fleet_shares_add_up_to_one() {
        let total: f64 = DeviceProfile::ALL
            .iter()
            .map(|profile| profile.traits().fleet_share)
            .sum();
        assert!((total - 1.0).abs() < 1e-9);
    }
}
