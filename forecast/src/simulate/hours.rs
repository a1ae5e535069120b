//! The hours of a simulated SIM's days: each day's bytes split over its 24 hours by the device
//! kind's daily rhythm, the SIM's own variant of it and each hour's noise.
//!
//! The split draws from random streams of its own — one per SIM for its variant of the rhythm, one
//! per SIM and day for the noise — seeded apart from the stream that makes the SIM's days. So the
//! daily series are the same whether or not anyone asks for hours, and any day's hours can be made
//! without making the days before.

use chrono::{NaiveDate, NaiveTime};

use super::rng::SplitMix64;
use super::{DeviceProfile, SimulatedSim};
use crate::hourly::{HourlySeries, DAY_HOURS};
use crate::series::clean;

/// Mixed into the fleet's seed for the hourly streams, so that they share no numbers with the
/// SIMs' own streams ("HOURS").
const HOURS_STREAM: u64 = 0x484F_5552_5301;
/// Sigma of the log of a SIM's own factor per hour of its kind's rhythm, drawn once: SIMs of a
/// kind do not all keep the same hours.
const SIM_HOUR_SIGMA: f64 = 0.2;
/// Sigma of the log of an hour's multiplicative noise within its day.
const HOUR_NOISE_SIGMA: f64 = 0.3;

/// The seed of SIM `id`'s hourly streams in a fleet simulated under `seed`.
pub(super) fn hour_stream(seed: u64, id: usize) -> u64 {
    SplitMix64::for_stream(seed ^ HOURS_STREAM, id as u64).next_u64()
}

impl DeviceProfile {
    /// How the kind spreads a day's usage over the hours from midnight: 24 shares summing to 1.
    ///
    /// - **Tracker**: daytime, with commuting peaks at 7–9 and 16–18, nearly nothing at night.
    /// - **Meter**: a trickle all day and the night upload of the day's readings at 2–3 o'clock.
    /// - **Camera**: streaming all day, more in the evening (17–22, when people are home and
    ///   look), least before dawn.
    /// - **Gateway**: a site's business hours (8–17, a dip at lunch), little at night.
    pub fn hourly_shape(self) -> [f64; DAY_HOURS] {
        let weights: [f64; DAY_HOURS] = match self {
            Self::Tracker => [
                0.15, 0.1, 0.1, 0.1, 0.15, 0.4, 1.2, 2.2, 2.0, 1.3, 1.1, 1.1, 1.2, 1.1, 1.1, 1.3, 2.0, 2.3,
                1.6, 1.0, 0.7, 0.5, 0.3, 0.2,
            ],
            Self::Meter => [
                0.3, 0.5, 6.0, 3.0, 0.6, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3,
                0.3, 0.3, 0.3, 0.3, 0.3, 0.3,
            ],
            Self::Camera => [
                0.7, 0.6, 0.5, 0.5, 0.5, 0.6, 0.8, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.3,
                1.6, 1.9, 2.0, 1.8, 1.4, 1.0,
            ],
            Self::Gateway => [
                0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.5, 0.9, 1.6, 1.9, 2.0, 2.0, 1.6, 1.9, 2.0, 1.9, 1.8, 1.4,
                0.9, 0.6, 0.5, 0.4, 0.3, 0.3,
            ],
        };
        let total: f64 = weights.iter().sum();
        weights.map(|weight| weight / total)
    }
}

impl SimulatedSim {
    /// The SIM's own daily rhythm: its kind's [`DeviceProfile::hourly_shape`] times a factor per
    /// hour drawn once for the SIM (log-normal, sigma 0.2), scaled to sum to 1.
    pub fn hour_shape(&self) -> [f64; DAY_HOURS] {
        let mut rng = SplitMix64::new(self.hour_stream);
        let mut shape = self.profile.hourly_shape();
        for weight in &mut shape {
            *weight *= rng.log_normal(SIM_HOUR_SIGMA);
        }
        let total: f64 = shape.iter().sum();
        shape.map(|weight| weight / total)
    }

    /// The bytes of each hour of day `day` (hour 0 from the day's midnight), adding up to the day's
    /// bytes: the day split in proportion to its [`SimulatedSim::hour_shape`] times each hour's
    /// noise (log-normal, sigma 0.3, drawn for that SIM and day). Zeros for a day without usage or
    /// beyond the history. The same for the same fleet seed, SIM and day.
    pub fn hours(&self, day: usize) -> [f64; DAY_HOURS] {
        let mut hours = [0.0; DAY_HOURS];
        let bytes = clean(self.daily_bytes.get(day).copied().unwrap_or(0.0));
        if bytes <= 0.0 {
            return hours;
        }
        let mut rng = SplitMix64::for_stream(self.hour_stream, day as u64);
        for (hour, share) in hours.iter_mut().zip(self.hour_shape()) {
            *hour = share * rng.log_normal(HOUR_NOISE_SIGMA);
        }
        let total: f64 = hours.iter().sum();
        hours.map(|hour| hour * bytes / total)
    }

    /// Its usage hour by hour, as an hourly forecast reads it: every day's [`SimulatedSim::hours`]
    /// from midnight UTC of `start` (the fleet's first day).
    pub fn hourly_series(&self, start: NaiveDate) -> HourlySeries {
        HourlySeries {
            start: start.and_time(NaiveTime::MIN).and_utc(),
            values: (0..self.daily_bytes.len())
                .flat_map(|day| self.hours(day))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, Weekday};

    use super::*;
    use crate::simulate::simulate_fleet;

    fn start() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 1, 6).unwrap()
    }

    #[test]
    fn hours_add_up_to_the_day_and_are_the_same_for_the_same_seed() {
        let fleet = simulate_fleet(4, 40, 30, start(), 0.2);
        let again = simulate_fleet(4, 12, 30, start(), 0.2);
        for sim in &fleet.sims {
            for (day, &bytes) in sim.daily_bytes.iter().enumerate() {
                let hours = sim.hours(day);
                let total: f64 = hours.iter().sum();
                assert!(
                    (total - bytes).abs() <= 1e-9 * bytes.max(1.0),
                    "SIM {} day {day}",
                    sim.id
                );
                assert!(hours.iter().all(|h| h.is_finite() && *h >= 0.0));
                if bytes > 0.0 {
                    assert!(hours.iter().all(|h| *h > 0.0), "SIM {} day {day}", sim.id);
                }
                assert_eq!(hours, sim.hours(day));
            }
            assert_eq!(sim.hours(30), [0.0; DAY_HOURS]);
        }
        // A SIM's hours do not depend on the size of its fleet.
        for id in 0..12 {
            assert_eq!(again.sims[id].hours(17), fleet.sims[id].hours(17));
        }
        let series = fleet.sims[3].hourly_series(start());
        assert_eq!(series.len(), 30 * DAY_HOURS);
        assert_eq!(series.start.date_naive().weekday(), Weekday::Mon);
        assert_eq!(&series.values[48..72], fleet.sims[3].hours(2).as_slice());
    }

    #[test]
    fn each_device_kind_has_its_daily_rhythm() {
        for profile in DeviceProfile::ALL {
            let shape = profile.hourly_shape();
            assert!(
                (shape.iter().sum::<f64>() - 1.0).abs() < 1e-12,
                "{}",
                profile.as_str()
            );
            assert!(shape.iter().all(|share| *share > 0.0));
        }
        let fleet = simulate_fleet(9, 400, 28, start(), 0.0);
        // The share of each hour of the day in all days of the kind's SIMs.
        let rhythm = |profile: DeviceProfile| {
            let mut shares = [0.0; DAY_HOURS];
            for sim in fleet.sims.iter().filter(|sim| sim.profile == profile) {
                for day in 0..fleet.days {
                    let hours = sim.hours(day);
                    let total: f64 = hours.iter().sum();
                    if total > 0.0 {
                        for (share, hour) in shares.iter_mut().zip(hours) {
                            *share += hour / total;
                        }
                    }
                }
            }
            shares
        };
        let meter = rhythm(DeviceProfile::Meter);
        assert!(meter[2] > 5.0 * meter[12], "meters upload at night: {meter:?}");
        let tracker = rhythm(DeviceProfile::Tracker);
        assert!(tracker[8] > 5.0 * tracker[3], "trackers move by day: {tracker:?}");
        assert!(tracker[17] > tracker[13], "trackers commute: {tracker:?}");
        let camera = rhythm(DeviceProfile::Camera);
        assert!(
            camera[20] > 1.5 * camera[10],
            "cameras peak in the evening: {camera:?}"
        );
        let gateway = rhythm(DeviceProfile::Gateway);
        assert!(
            gateway[10] > 4.0 * gateway[22],
            "gateways work business hours: {gateway:?}"
        );
    }
}
