//! The device simulator: plausible sensor readings for a set of devices, one step at a time —
//! temperature and humidity drift, batteries drain, light follows the time of day, trackers move.

use chrono::{DateTime, Timelike, Utc};
use ioto_domain::usage::TelemetryReading;
use ioto_domain::DeviceId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct DeviceState {
    id: DeviceId,
    moves: bool,
    temperature: f64,
    humidity: f64,
    battery: f64,
    latitude: f64,
    longitude: f64,
}

pub struct DeviceSimulator {
    rng: StdRng,
    devices: Vec<DeviceState>,
}

impl DeviceSimulator {
    /// `devices`: the ids, and whether each one moves (trackers, vehicles).
    pub fn new(devices: &[(DeviceId, bool)], seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let devices = devices
            .iter()
            .map(|(id, moves)| DeviceState {
                id: *id,
                moves: *moves,
                temperature: rng.gen_range(4.0..28.0),
                humidity: rng.gen_range(30.0..70.0),
                battery: rng.gen_range(60.0..100.0),
                // Somewhere in central Europe.
                latitude: rng.gen_range(47.0..54.0),
                longitude: rng.gen_range(6.0..15.0),
            })
            .collect();
        Self { rng, devices }
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// One reading per device at `at`.
    pub fn step(&mut self, at: DateTime<Utc>) -> Vec<TelemetryReading> {
        let hour = f64::from(at.hour()) + f64::from(at.minute()) / 60.0;
        // Daylight: 0 at night, up to ~800 lux at noon.
        let daylight = ((hour - 6.0) / 12.0 * std::f64::consts::PI).sin().max(0.0) * 800.0;
        let rng = &mut self.rng;
        self.devices
            .iter_mut()
            .map(|d| {
                d.temperature = (d.temperature + rng.gen_range(-0.3..0.3)).clamp(-30.0, 60.0);
                d.humidity = (d.humidity + rng.gen_range(-1.0..1.0)).clamp(5.0, 95.0);
                d.battery = (d.battery - rng.gen_range(0.0..0.05)).max(0.0);
                if d.moves {
                    d.latitude = (d.latitude + rng.gen_range(-0.002..0.002)).clamp(-90.0, 90.0);
                    d.longitude = (d.longitude + rng.gen_range(-0.002..0.002)).clamp(-180.0, 180.0);
                }
                let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
                TelemetryReading {
                    device_id: d.id,
                    at,
                    temperature_c: Some(round(d.temperature, 2)),
                    humidity_pct: Some(round(d.humidity, 1)),
                    battery_pct: Some(round(d.battery, 2)),
                    light_lux: Some(round(daylight * rng.gen_range(0.8..1.0), 0)),
                    latitude: Some(round(d.latitude, 6)),
                    longitude: Some(round(d.longitude, 6)),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_valid_and_drift_plausibly() {
        let ids: Vec<(DeviceId, bool)> = (0..10).map(|i| (DeviceId::new(), i % 2 == 0)).collect();
        let mut sim = DeviceSimulator::new(&ids, 3);
        let start = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let first = sim.step(start);
        let mut last = first.clone();
        for k in 1..100 {
            last = sim.step(start + chrono::Duration::minutes(k));
        }
        for (a, b) in first.iter().zip(&last) {
            let wire = TelemetryReading::from_json(b.to_json().to_string().as_bytes()).unwrap();
            assert_eq!(wire.device_id, b.device_id);
            assert!(b.battery_pct <= a.battery_pct, "batteries drain");
            assert!((b.temperature_c.unwrap() - a.temperature_c.unwrap()).abs() < 30.0);
        }
        // Noon is light; midnight is dark.
        assert!(first[0].light_lux.unwrap() > 100.0);
        let night = sim.step(
            DateTime::parse_from_rfc3339("2026-11-22T00:30:00Z")
                .unwrap()
                .with_timezone(&Utc),
        );
        assert!(night.iter().all(|r| r.light_lux == Some(0.0)));
    }
}
