//! The simulated fleet: the same for a seed, shaped as each device kind uses data, and every
//! injected anomaly where its label says, none overlapping another.

use std::collections::BTreeSet;

use chrono::{Datelike, Days, NaiveDate, Weekday};

use super::*;
use crate::anomaly::thresholds::{SILENCE_MIN_BASELINE_BYTES, SPIKE_MIN_EXCESS_BYTES, STORM_MIN_SESSIONS};

/// A Monday.
fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 6).unwrap()
}

fn day_index(day: NaiveDate) -> usize {
    usize::try_from((day - start()).num_days()).unwrap()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[test]
fn the_same_seed_gives_the_same_fleet() {
    let a = simulate_fleet(7, 200, 90, start(), 0.2);
    let b = simulate_fleet(7, 200, 90, start(), 0.2);
    assert_eq!(a, b);
    assert!(!a.truth.is_empty());
    let other = simulate_fleet(8, 200, 90, start(), 0.2);
    assert_ne!(a.sims, other.sims);
    // A SIM is the same whatever the size of its fleet.
    let small = simulate_fleet(7, 10, 90, start(), 0.2);
    assert_eq!(small.sims[7], a.sims[7]);
    assert!(a.sims.iter().enumerate().all(|(i, sim)| sim.id == i));
    for sim in &a.sims {
        assert_eq!(sim.daily_bytes.len(), 90);
        assert_eq!(sim.daily_sessions.len(), 90);
        assert_eq!(sim.usual_bytes.len(), 90);
        assert!(sim.daily_bytes.iter().all(|v| v.is_finite() && *v >= 0.0));
    }
}

#[test]
fn one_sim_is_the_same_sim_as_in_its_fleet() {
    let fleet = simulate_fleet(5, 20, 60, start(), 0.3);
    for id in [0, 7, 19] {
        let (sim, injected) = simulate_one(5, id, 60, start(), 0.3);
        assert_eq!(sim, fleet.sims[id]);
        let of_fleet: Vec<InjectedAnomaly> = fleet.truth.iter().filter(|a| a.sim == id).copied().collect();
        assert_eq!(injected, of_fleet);
    }
}

#[test]
fn no_rate_no_anomalies() {
    assert!(simulate_fleet(3, 300, 90, start(), 0.0).truth.is_empty());
}

/// The mean usage of weekdays and of weekend days over `sims`.
fn weekday_weekend(sims: &[&SimulatedSim]) -> (f64, f64) {
    let (mut weekday, mut weekend) = (Vec::new(), Vec::new());
    for sim in sims {
        for (i, bytes) in sim.daily_bytes.iter().enumerate() {
            match start().checked_add_days(Days::new(i as u64)).unwrap().weekday() {
                Weekday::Sat | Weekday::Sun => weekend.push(*bytes),
                _ => weekday.push(*bytes),
            }
        }
    }
    (mean(&weekday), mean(&weekend))
}

/// The median over `sims` of each SIM's mean daily usage.
fn median_level(sims: &[&SimulatedSim]) -> f64 {
    let mut levels: Vec<f64> = sims.iter().map(|sim| mean(&sim.daily_bytes)).collect();
    levels.sort_by(f64::total_cmp);
    levels[levels.len() / 2]
}

/// The mean absolute change of log usage from a day to the next (both days with usage).
fn log_spread(sims: &[&SimulatedSim]) -> f64 {
    let changes: Vec<f64> = sims
        .iter()
        .flat_map(|sim| sim.daily_bytes.windows(2))
        .filter(|pair| pair[0] > 0.0 && pair[1] > 0.0)
        .map(|pair| (pair[1] / pair[0]).ln().abs())
        .collect();
    mean(&changes)
}

#[test]
fn each_device_kind_has_its_shape() {
    let fleet = simulate_fleet(11, 2000, 90, start(), 0.0);
    let of = |profile: DeviceProfile| {
        fleet
            .sims
            .iter()
            .filter(|sim| sim.profile == profile)
            .collect::<Vec<&SimulatedSim>>()
    };
    let trackers = of(DeviceProfile::Tracker);
    let meters = of(DeviceProfile::Meter);
    let cameras = of(DeviceProfile::Camera);
    let gateways = of(DeviceProfile::Gateway);
    for sims in [&trackers, &meters, &cameras, &gateways] {
        assert!(sims.len() > 100, "{}", sims.len());
    }

    // Trackers work on weekdays; some are idle at weekends.
    let (weekday, weekend) = weekday_weekend(&trackers);
    assert!(
        weekday > 2.5 * weekend,
        "tracker weekday {weekday} against weekend {weekend}"
    );
    assert!(trackers.iter().any(|sim| {
        sim.daily_bytes
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 7 >= 5)
            .all(|(_, bytes)| *bytes == 0.0)
    }));
    // Meters are flat, small and steady.
    let (weekday, weekend) = weekday_weekend(&meters);
    assert!(
        (0.85..1.15).contains(&(weekday / weekend)),
        "meter {weekday} / {weekend}"
    );
    // Kinds by size: cameras, gateways, trackers, meters.
    let sizes = [
        median_level(&cameras),
        median_level(&gateways),
        median_level(&trackers),
        median_level(&meters),
    ];
    assert!(sizes.windows(2).all(|pair| pair[0] > pair[1]), "{sizes:?}");
    assert!(sizes[3] < 1e6, "meters use under 1 MB a day: {sizes:?}");
    // Gateways grow.
    let total = |range: std::ops::Range<usize>| -> f64 {
        gateways
            .iter()
            .map(|sim| sim.daily_bytes[range.clone()].iter().sum::<f64>())
            .sum()
    };
    let growth = total(76..90) / total(0..14);
    assert!(growth > 1.15, "gateways grew by {growth}");
    // Cameras are noisier than meters: the day-to-day change in their log usage is wider.
    assert!(log_spread(&cameras) > 2.0 * log_spread(&meters));
}

#[test]
fn normal_behaviour_holds_no_silence_and_no_new_network() {
    let fleet = simulate_fleet(5, 1000, 90, start(), 0.0);
    for sim in &fleet.sims {
        // Never two zero days running where the SIM usually uses 1 MB or more.
        for i in 1..sim.daily_bytes.len() {
            let silent =
                |d: usize| sim.daily_bytes[d] == 0.0 && sim.usual_bytes[d] >= SILENCE_MIN_BASELINE_BYTES;
            assert!(!(silent(i - 1) && silent(i)), "SIM {} day {i}", sim.id);
        }
        // Every network of the last 30 days was seen in the 30 days before it.
        for record in sim.networks.iter().filter(|r| day_index(r.day) >= 60) {
            let known = sim.networks.iter().any(|earlier| {
                earlier.mcc_mnc == record.mcc_mnc && (1..=30).contains(&(record.day - earlier.day).num_days())
            });
            assert!(known, "SIM {}: {record:?}", sim.id);
        }
        // One device.
        let imeis: BTreeSet<&str> = sim.imeis.iter().map(|seen| seen.imei.as_str()).collect();
        assert_eq!(imeis.len(), 1);
        assert_eq!(imeis.iter().next().map(|imei| imei.len()), Some(15));
    }
}

#[test]
fn every_injected_anomaly_is_in_the_series_as_labelled() {
    let fleet = simulate_fleet(21, 2000, 90, start(), 0.5);
    let mut kinds = BTreeSet::new();
    for label in &fleet.truth {
        let sim = &fleet.sims[label.sim];
        let d = day_index(label.day);
        assert!((60..90).contains(&d), "{label:?}");
        kinds.insert(label.kind);
        match label.kind {
            AnomalyKind::UsageSpike => {
                assert!((5.0..=50.0).contains(&label.magnitude), "{label:?}");
                assert!((sim.daily_bytes[d] - sim.usual_bytes[d] * label.magnitude).abs() < 1e-6);
                assert!(sim.daily_bytes[d] - sim.usual_bytes[d] >= SPIKE_MIN_EXCESS_BYTES * (1.0 - 1e-9));
            }
            AnomalyKind::Silence => {
                assert!((2.0..=4.0).contains(&label.magnitude), "{label:?}");
                for day in [d - 1, d] {
                    assert_eq!(sim.daily_bytes[day], 0.0, "{label:?}");
                    assert_eq!(sim.daily_sessions[day], 0, "{label:?}");
                    assert!(sim.usual_bytes[day] >= SILENCE_MIN_BASELINE_BYTES, "{label:?}");
                }
                assert!(!sim.networks.iter().any(|r| r.day == label.day));
            }
            AnomalyKind::SessionStorm => {
                assert!((10.0..=50.0).contains(&label.magnitude), "{label:?}");
                let sessions = f64::from(sim.daily_sessions[d]);
                assert_eq!(
                    sessions,
                    (sim.usual_sessions * label.magnitude).ceil(),
                    "{label:?}"
                );
                assert!(sessions >= STORM_MIN_SESSIONS, "{label:?}");
            }
            AnomalyKind::NewCountry => {
                let seen_before: BTreeSet<&str> = sim
                    .networks
                    .iter()
                    .filter(|r| r.day < label.day)
                    .map(|r| r.country.as_str())
                    .collect();
                let today: Vec<&NetworkDay> = sim.networks.iter().filter(|r| r.day == label.day).collect();
                assert!(!today.is_empty(), "{label:?}");
                assert!(
                    today.iter().all(|r| !seen_before.contains(r.country.as_str())),
                    "{label:?}"
                );
            }
            AnomalyKind::NewNetwork => {
                let before: Vec<&NetworkDay> = sim.networks.iter().filter(|r| r.day < label.day).collect();
                let today: Vec<&NetworkDay> = sim.networks.iter().filter(|r| r.day == label.day).collect();
                assert_eq!(today.len(), 1, "{label:?}");
                assert!(before.iter().all(|r| r.mcc_mnc != today[0].mcc_mnc), "{label:?}");
                assert!(before.iter().any(|r| r.country == today[0].country), "{label:?}");
            }
            AnomalyKind::ImeiChange => {
                let previous = sim.imeis.iter().rfind(|seen| seen.at < label.day).unwrap();
                let current = sim.imeis.iter().rfind(|seen| seen.at == label.day).unwrap();
                assert_ne!(previous.imei, current.imei, "{label:?}");
            }
        }
    }
    assert_eq!(kinds.len(), AnomalyKind::ALL.len(), "{kinds:?}");
}

#[test]
fn anomalies_of_a_sim_start_at_least_ten_days_apart() {
    let fleet = simulate_fleet(33, 2000, 90, start(), 1.0);
    // Episodes as (SIM, first day): a silence's labels run from its second day.
    let mut episodes: Vec<(usize, usize)> = Vec::new();
    let mut previous: Option<&InjectedAnomaly> = None;
    for label in &fleet.truth {
        let d = day_index(label.day);
        let continues = previous.is_some_and(|p| {
            p.sim == label.sim
                && p.kind == AnomalyKind::Silence
                && label.kind == AnomalyKind::Silence
                && day_index(p.day) + 1 == d
        });
        if !continues {
            let first = if label.kind == AnomalyKind::Silence {
                d - 1
            } else {
                d
            };
            episodes.push((label.sim, first));
        }
        previous = Some(label);
    }
    assert!(episodes.len() > 3000, "{} episodes", episodes.len());
    for pair in episodes.windows(2) {
        let ((sim_a, first_a), (sim_b, first_b)) = (pair[0], pair[1]);
        assert!(sim_a <= sim_b, "truth ordered by SIM");
        if sim_a == sim_b {
            assert!(
                first_b >= first_a + ANOMALY_SPACING_DAYS,
                "SIM {sim_a}: {first_a} then {first_b}"
            );
        }
    }
}

#[test]
fn the_truth_file_is_csv_with_a_header() {
    let truth = [
        InjectedAnomaly {
            sim: 3,
            day: start(),
            kind: AnomalyKind::UsageSpike,
            magnitude: 12.5,
        },
        InjectedAnomaly {
            sim: 40,
            day: NaiveDate::from_ymd_opt(2025, 2, 1).unwrap(),
            kind: AnomalyKind::ImeiChange,
            magnitude: 1.0,
        },
    ];
    assert_eq!(
        write_truth_csv(&truth),
        "sim,day,kind,magnitude\r\n3,2025-01-06,USAGE_SPIKE,12.5\r\n40,2025-02-01,IMEI_CHANGE,1\r\n"
    );
    assert_eq!(write_truth_csv(&[]), "sim,day,kind,magnitude\r\n");
}

#[test]
fn random_numbers_are_in_range() {
    let mut rng = SplitMix64::new(1);
    for _ in 0..10_000 {
        let unit = rng.unit();
        assert!(unit > 0.0 && unit < 1.0);
        assert!(rng.below(7) < 7);
    }
    assert_eq!(rng.below(0), 0);
    let normals: Vec<f64> = (0..20_000).map(|_| rng.normal()).collect();
    let m = mean(&normals);
    let var = normals.iter().map(|x| (x - m).powi(2)).sum::<f64>() / normals.len() as f64;
    assert!(
        m.abs() < 0.05 && (var - 1.0).abs() < 0.05,
        "mean {m}, variance {var}"
    );
    // Streams of neighbouring SIMs are not shifted copies of each other.
    let mut a = SplitMix64::for_stream(9, 1);
    let mut b = SplitMix64::for_stream(9, 2);
    let first_a: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
    let first_b: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
    assert!(first_a.iter().all(|x| !first_b.contains(x)));
}
