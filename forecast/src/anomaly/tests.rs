//! The detector on simulated SIMs: steady fleets stay quiet, injected anomalies are found with
//! the right words, dismissals are taken into account.

use chrono::{Datelike, Days, NaiveDate};

use super::text::ratio_text;
use super::thresholds::SPIKE_MIN_Z;
use super::*;

const MB: f64 = 1e6;
const GB: f64 = 1e9;
const IMEI_A: &str = "356938035643817";
const IMEI_B: &str = "356938035643809";

/// A small deterministic generator (SplitMix64) for noisy series.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Uniform in [low, high).
    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// The detection day of the scenarios, a Tuesday.
fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, 4).unwrap()
}

fn days_before(days: u64) -> NaiveDate {
    day().checked_sub_days(Days::new(days)).unwrap()
}

/// How a simulated SIM behaves.
struct Profile {
    /// Bytes on a day whose weekly factor is 1.
    level: f64,
    /// Factor per weekday, Monday first.
    weekly: [f64; 7],
    /// Standard deviation of the log of the daily noise (0 for none).
    noise: f64,
    /// Sessions on an average day.
    sessions: f64,
}

fn home(date: NaiveDate) -> NetworkDay {
    network(date, "262-01", "Germany")
}

fn network(date: NaiveDate, mcc_mnc: &str, country: &str) -> NetworkDay {
    NetworkDay {
        day: date,
        mcc_mnc: mcc_mnc.to_string(),
        country: country.to_string(),
    }
}

/// `days` days of a SIM ending on `day()`, on network 262-01 in Germany every day, in one device.
fn simulate(rng: &mut SplitMix64, profile: &Profile, days: u64) -> SimHistory {
    let start = days_before(days - 1);
    let mut daily_bytes = Vec::new();
    let mut daily_sessions = Vec::new();
    let mut networks = Vec::new();
    for offset in 0..days {
        let date = start.checked_add_days(Days::new(offset)).unwrap();
        let factor = profile.weekly[date.weekday().num_days_from_monday() as usize];
        daily_bytes.push(profile.level * factor * (profile.noise * rng.normal()).exp());
        daily_sessions.push((profile.sessions * (0.3 * rng.normal()).exp()).round() as u32);
        networks.push(home(date));
    }
    SimHistory {
        start,
        daily_bytes,
        daily_sessions,
        networks,
        imeis: vec![ImeiSeen {
            at: start,
            imei: IMEI_A.to_string(),
        }],
        dismissed: Vec::new(),
    }
}

/// 70 days of a SIM without noise, using `weekly_mb` megabytes on each weekday (Monday first).
fn weekly_sim(weekly_mb: [f64; 7]) -> SimHistory {
    let profile = Profile {
        level: MB,
        weekly: weekly_mb,
        noise: 0.0,
        sessions: 20.0,
    };
    simulate(&mut SplitMix64(1), &profile, 70)
}

/// 90 days of a noisy SIM using about 80 MB a day (88 MB on Tuesdays), less on weekends.
fn noisy_sim(seed: u64) -> SimHistory {
    let profile = Profile {
        level: 80.0 * MB,
        weekly: [1.0, 1.1, 1.0, 0.9, 1.0, 0.5, 0.4],
        noise: 0.25,
        sessions: 20.0,
    };
    simulate(&mut SplitMix64(seed), &profile, 90)
}

fn set_today(history: &mut SimHistory, bytes: f64) {
    *history.daily_bytes.last_mut().unwrap() = bytes;
}

fn kinds(found: &[Anomaly]) -> Vec<AnomalyKind> {
    found.iter().map(|anomaly| anomaly.kind).collect()
}

/// Asserts that nothing is found on `on`, listing what was.
#[track_caller]
fn assert_quiet(history: &SimHistory, on: NaiveDate, cohort: Option<&CohortStats>) {
    let found: Vec<String> = detect(history, on, cohort)
        .into_iter()
        .map(|anomaly| anomaly.sentence)
        .collect();
    assert!(found.is_empty(), "on {on}: {found:?}");
}

fn dismissal(kind: AnomalyKind, value: Option<&str>, level_bytes: Option<f64>) -> Dismissal {
    Dismissal {
        kind,
        until: None,
        value: value.map(str::to_string),
        level_bytes,
    }
}

#[test]
fn steady_seasonal_sims_stay_quiet_on_their_last_30_days() {
    let mut flagged = Vec::new();
    for sim in 0..50_u64 {
        let mut rng = SplitMix64(sim);
        let mut weekly: [f64; 7] = std::array::from_fn(|_| rng.between(0.6, 1.4));
        match sim % 4 {
            // Quiet weekends.
            1 => {
                weekly[5] *= 0.1;
                weekly[6] *= 0.1;
            }
            // Idle every Sunday.
            2 => weekly[6] = 0.0,
            _ => {}
        }
        let profile = Profile {
            level: 10_f64.powf(rng.between(5.0, 9.0)),
            weekly,
            noise: rng.between(0.1, 0.35),
            sessions: rng.between(3.0, 40.0),
        };
        let history = simulate(&mut rng, &profile, 90);
        for back in 0..30 {
            let found = detect(&history, days_before(back), None);
            flagged.extend(
                found
                    .into_iter()
                    .map(|anomaly| (sim, anomaly.day, anomaly.sentence)),
            );
        }
    }
    assert!(flagged.len() <= 1, "false alarms: {flagged:#?}");
}

#[test]
fn a_spike_is_found_with_the_numbers_of_its_sentence() {
    let mut history = weekly_sim([60.0, 57.0, 55.0, 62.0, 58.0, 20.0, 15.0]);
    set_today(&mut history, 2.3 * GB);
    let found = detect(&history, day(), None);
    assert_eq!(kinds(&found), [AnomalyKind::UsageSpike]);
    let spike = &found[0];
    assert_eq!(spike.sentence, "2.3 GB today, 40 × its usual 57 MB for a Tuesday");
    assert_eq!(spike.severity, Severity::High);
    assert_eq!(spike.value, None);
    assert_eq!(spike.evidence.baseline, Baseline::Own);
    assert!((spike.evidence.expected - 57.0 * MB).abs() < 1.0);
    assert!(spike.evidence.band_hi <= 2.3 * GB);
    assert_eq!(spike.evidence.series.len(), 28);
    assert_eq!(spike.evidence.series.last(), Some(&(2.3 * GB)));
}

#[test]
fn ten_times_the_usual_is_a_spike_on_a_noisy_sim() {
    for seed in 0..10 {
        let mut history = noisy_sim(seed);
        let injected = 10.0 * 88.0 * MB;
        set_today(&mut history, injected);
        let found = detect(&history, day(), None);
        assert_eq!(kinds(&found), [AnomalyKind::UsageSpike], "seed {seed}");
        let evidence = &found[0].evidence;
        assert_eq!(evidence.observed, injected);
        let ratio = evidence.observed / evidence.expected;
        assert!((6.0..=15.0).contains(&ratio), "seed {seed}: {ratio}");
        let sentence = format!(
            "{} today, {} × its usual {} for a Tuesday",
            bytes_text(injected),
            ratio_text(ratio),
            bytes_text(evidence.expected)
        );
        assert_eq!(found[0].sentence, sentence);
        assert!(found[0].score >= SPIKE_MIN_Z);
    }
}

/// 90 days of a camera-like SIM: about 400 MB a day, spread by ±40 % (on the log scale).
fn very_noisy_sim(seed: u64) -> SimHistory {
    let profile = Profile {
        level: 400.0 * MB,
        weekly: [1.0; 7],
        noise: 0.4,
        sessions: 48.0,
    };
    simulate(&mut SplitMix64(seed), &profile, 90)
}

#[test]
fn a_very_noisy_sims_high_day_is_judged_on_the_log_scale() {
    for seed in 0..10 {
        let mut history = very_noisy_sim(seed);
        // Four times the usual passes the linear tests (3 ×, 6 deviations of a 40 % spread) but
        // is an ordinary high day on the log scale for a SIM that varies this much …
        set_today(&mut history, 4.0 * 400.0 * MB);
        assert_quiet(&history, day(), None);
        // … while twenty-five times is a spike.
        set_today(&mut history, 25.0 * 400.0 * MB);
        assert_eq!(
            kinds(&detect(&history, day(), None)),
            [AnomalyKind::UsageSpike],
            "seed {seed}"
        );
    }
}

#[test]
fn twice_the_usual_is_not_a_spike() {
    for seed in 0..10 {
        let mut history = noisy_sim(seed);
        set_today(&mut history, 2.0 * 88.0 * MB);
        assert_quiet(&history, day(), None);
    }
}

#[test]
fn two_silent_days_are_a_silence() {
    let mut history = noisy_sim(3);
    let days = history.daily_bytes.len();
    history.daily_bytes[days - 2] = 0.0;
    history.daily_bytes[days - 1] = 0.0;
    let found = detect(&history, day(), None);
    assert_eq!(kinds(&found), [AnomalyKind::Silence]);
    let usual = bytes_text(found[0].evidence.expected);
    let sentence = format!("No traffic today or yesterday; it usually uses {usual} on a Tuesday");
    assert_eq!(found[0].sentence, sentence);
    assert_eq!(found[0].evidence.observed, 0.0);
    assert!(found[0].evidence.band_lo > 0.0);

    history.dismissed.push(Dismissal {
        kind: AnomalyKind::Silence,
        until: Some(day()),
        value: None,
        level_bytes: None,
    });
    assert_quiet(&history, day(), None);
}

#[test]
fn one_silent_day_is_not_a_silence() {
    let mut history = noisy_sim(3);
    set_today(&mut history, 0.0);
    assert_quiet(&history, day(), None);
}

#[test]
fn idle_weekends_are_not_silences() {
    let idle_weekends = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0];
    let idle_sundays = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
    for (seed, weekly) in [idle_weekends, idle_sundays].into_iter().enumerate() {
        let profile = Profile {
            level: 120.0 * MB,
            weekly,
            noise: 0.2,
            sessions: 20.0,
        };
        let history = simulate(&mut SplitMix64(seed as u64), &profile, 90);
        for back in 0..30 {
            assert_quiet(&history, days_before(back), None);
        }
    }
}

#[test]
fn a_session_storm_is_found() {
    let mut history = weekly_sim([50.0; 7]);
    history.daily_sessions = vec![23; 70];
    history.daily_sessions[69] = 412;
    let found = detect(&history, day(), None);
    assert_eq!(kinds(&found), [AnomalyKind::SessionStorm]);
    assert_eq!(found[0].sentence, "412 sessions today, 18 × its median of 23");
    assert_eq!(found[0].severity, Severity::Medium);
    assert_eq!(found[0].evidence.band_hi, 115.0);

    history.daily_sessions[69] = 3 * 23;
    assert_quiet(&history, day(), None);
}

#[test]
fn a_new_country_is_reported_once_as_a_country() {
    let mut history = weekly_sim([50.0; 7]);
    history.networks.push(network(day(), "208-01", "France"));
    history.networks.push(network(day(), "208-10", "France"));
    let found = detect(&history, day(), None);
    assert_eq!(kinds(&found), [AnomalyKind::NewCountry]);
    assert_eq!(found[0].value.as_deref(), Some("France"));
    assert_eq!(
        found[0].sentence,
        "First traffic in France in 30 days, on networks 208-01, 208-10"
    );
    assert_eq!(found[0].severity, Severity::High);
    assert_eq!(found[0].evidence.series.last(), Some(&2.0));
}

#[test]
fn a_new_network_at_home_is_reported() {
    let mut history = weekly_sim([50.0; 7]);
    history.networks.push(network(day(), "262-02", "Germany"));
    let found = detect(&history, day(), None);
    assert_eq!(kinds(&found), [AnomalyKind::NewNetwork]);
    assert_eq!(found[0].value.as_deref(), Some("262-02"));
    assert_eq!(
        found[0].sentence,
        "On network 262-02 (Germany) for the first time in 30 days"
    );
    assert_eq!(found[0].severity, Severity::Low);
}

#[test]
fn a_network_last_seen_more_than_30_days_ago_is_new_again() {
    let mut history = weekly_sim([50.0; 7]);
    history
        .networks
        .push(network(days_before(40), "262-03", "Germany"));
    history.networks.push(network(day(), "262-03", "Germany"));
    assert_eq!(kinds(&detect(&history, day(), None)), [AnomalyKind::NewNetwork]);
}

#[test]
fn a_new_sims_first_networks_are_not_anomalies() {
    let mut history = weekly_sim([50.0; 7]);
    history.networks.retain(|record| record.day >= days_before(4));
    history.networks.push(network(day(), "208-01", "France"));
    assert_quiet(&history, day(), None);
}

#[test]
fn dismissed_networks_and_countries_are_known() {
    let mut history = weekly_sim([50.0; 7]);
    history.networks.push(network(day(), "262-02", "Germany"));
    history.networks.push(network(day(), "208-01", "France"));
    history
        .dismissed
        .push(dismissal(AnomalyKind::NewNetwork, Some("262-02"), None));
    history
        .dismissed
        .push(dismissal(AnomalyKind::NewCountry, Some("France"), None));
    assert_quiet(&history, day(), None);

    // A dismissal that ended yesterday no longer applies.
    history.dismissed[0].until = Some(days_before(1));
    assert_eq!(kinds(&detect(&history, day(), None)), [AnomalyKind::NewNetwork]);
}

#[test]
fn an_imei_change_is_found() {
    let mut history = weekly_sim([50.0; 7]);
    history.imeis.push(ImeiSeen {
        at: day(),
        imei: IMEI_B.to_string(),
    });
    let found = detect(&history, day(), None);
    assert_eq!(kinds(&found), [AnomalyKind::ImeiChange]);
    assert_eq!(
        found[0].sentence,
        "Now in a device with IMEI 356938035643809 (was 356938035643817)"
    );
    assert_eq!(found[0].value.as_deref(), Some(IMEI_B));
    assert_eq!(found[0].severity, Severity::High);

    history
        .dismissed
        .push(dismissal(AnomalyKind::ImeiChange, Some(IMEI_B), None));
    assert_quiet(&history, day(), None);
}

#[test]
fn the_first_imei_and_the_same_imei_are_not_changes() {
    let mut history = weekly_sim([50.0; 7]);
    history.imeis = vec![ImeiSeen {
        at: day(),
        imei: IMEI_B.to_string(),
    }];
    assert_quiet(&history, day(), None);

    history.imeis = vec![
        ImeiSeen {
            at: days_before(20),
            imei: IMEI_A.to_string(),
        },
        ImeiSeen {
            at: day(),
            imei: IMEI_A.to_string(),
        },
    ];
    assert_quiet(&history, day(), None);
}

#[test]
fn a_dismissed_spike_level_is_accepted_but_a_much_larger_one_is_not() {
    let mut history = weekly_sim([100.0; 7]);
    set_today(&mut history, GB);
    assert_eq!(kinds(&detect(&history, day(), None)), [AnomalyKind::UsageSpike]);

    history
        .dismissed
        .push(dismissal(AnomalyKind::UsageSpike, None, Some(GB)));
    assert_quiet(&history, day(), None);

    set_today(&mut history, 5.0 * GB);
    let found = detect(&history, day(), None);
    assert_eq!(kinds(&found), [AnomalyKind::UsageSpike]);
    assert!(found[0].evidence.band_hi >= 1.25 * GB);

    set_today(&mut history, GB);
    history.dismissed[0].until = Some(days_before(1));
    assert_eq!(kinds(&detect(&history, day(), None)), [AnomalyKind::UsageSpike]);
}

#[test]
fn a_new_sim_is_judged_against_its_cohort() {
    let mut rng = SplitMix64(7);
    let cohort_day: Vec<f64> = (0..200).map(|_| 10.0 * MB * (0.5 * rng.normal()).exp()).collect();
    let cohort = cohort_stats(&cohort_day).unwrap();
    let mut history = SimHistory {
        start: days_before(4),
        daily_bytes: vec![9.0 * MB, 12.0 * MB, 11.0 * MB, 10.0 * MB, 2.0 * GB],
        daily_sessions: vec![5; 5],
        networks: Vec::new(),
        imeis: Vec::new(),
        dismissed: Vec::new(),
    };
    let found = detect(&history, day(), Some(&cohort));
    assert_eq!(kinds(&found), [AnomalyKind::UsageSpike]);
    assert_eq!(found[0].evidence.baseline, Baseline::Cohort);
    assert!(
        found[0].sentence.starts_with("2 GB today, "),
        "{}",
        found[0].sentence
    );
    assert!(
        found[0].sentence.ends_with("(it has only 4 days of history)"),
        "{}",
        found[0].sentence
    );
    // Without a cohort there is nothing to compare a new SIM's usage with.
    assert_quiet(&history, day(), None);

    set_today(&mut history, 12.0 * MB);
    assert_quiet(&history, day(), Some(&cohort));
}

#[test]
fn the_mad_floor_keeps_steady_sims_quiet() {
    // A SIM using exactly 100 MB every day, then 110 MB.
    let mut history = weekly_sim([100.0; 7]);
    set_today(&mut history, 110.0 * MB);
    assert_quiet(&history, day(), None);

    // A meter sending exactly 20 kB a day, then 80 kB, then 4 MB: not worth anyone's time.
    let mut history = weekly_sim([0.02; 7]);
    set_today(&mut history, 80_000.0);
    assert_quiet(&history, day(), None);
    set_today(&mut history, 4.0 * MB);
    assert_quiet(&history, day(), None);
    set_today(&mut history, 30.0 * MB);
    assert_eq!(kinds(&detect(&history, day(), None)), [AnomalyKind::UsageSpike]);
}

#[test]
fn anomalies_come_highest_score_first() {
    let mut history = weekly_sim([100.0; 7]);
    set_today(&mut history, 5.0 * GB);
    history.networks.push(network(day(), "208-01", "France"));
    history.imeis.push(ImeiSeen {
        at: day(),
        imei: IMEI_B.to_string(),
    });
    let found = detect(&history, day(), None);
    assert_eq!(
        kinds(&found),
        [
            AnomalyKind::UsageSpike,
            AnomalyKind::NewCountry,
            AnomalyKind::ImeiChange
        ]
    );
    assert!(found.windows(2).all(|pair| pair[0].score >= pair[1].score));
}

#[test]
fn kinds_and_severities_by_name() {
    for kind in AnomalyKind::ALL {
        assert_eq!(AnomalyKind::parse(kind.as_str()), Ok(kind));
    }
    assert!(AnomalyKind::parse("SPIKE").is_err());
    assert_eq!(
        Severity::from_score(AnomalyKind::UsageSpike, 25.0),
        Severity::High
    );
    assert_eq!(
        Severity::from_score(AnomalyKind::SessionStorm, 12.0),
        Severity::Medium
    );
    assert_eq!(Severity::from_score(AnomalyKind::NewNetwork, 6.0), Severity::Low);
    assert_eq!(
        Severity::from_score(AnomalyKind::NewCountry, 10.0),
        Severity::High
    );
    assert_eq!(Severity::from_score(AnomalyKind::ImeiChange, 8.0), Severity::High);
}
