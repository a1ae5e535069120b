//! Plans of simulated SIMs: every day's sessions carry the simulator's bytes within the day, on
//! the SIM's own networks but where an injected anomaly put it, and the truth reads as RFC 4180.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use ioto_domain::identifiers::{Iccid, MccMnc};
use ioto_forecast::anomaly::AnomalyKind;
use ioto_forecast::simulate::simulate_one;

use super::networks::country_key;
use super::plan::csv_field;
use super::*;

/// A Monday.
fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, 3).unwrap()
}

fn iccid(i: usize) -> Iccid {
    Iccid::with_check_digit(&format!("8988228066{i:08}")).unwrap()
}

/// SIMs 0 to `n` − 1 of a fleet with many anomalies, at home on `home`.
fn plans(n: usize, days: usize, home: &str) -> Vec<PlannedSim> {
    let home = MccMnc::parse(home).unwrap();
    let mut catalogue = Catalogue::default();
    (0..n)
        .map(|i| {
            let (sim, injected) = simulate_one(3, i, days, start(), 0.8);
            PlannedSim::new(iccid(i), &home, &sim, &injected, start(), 3, &mut catalogue)
        })
        .collect()
}

#[test]
fn each_day_s_sessions_carry_the_simulated_bytes_within_the_day() {
    for (i, plan) in plans(60, 60, "262-01").iter().enumerate() {
        let (sim, _) = simulate_one(3, i, 60, start(), 0.8);
        let mut ids = BTreeSet::new();
        for day in 0..60 {
            let sessions = plan.sessions(day);
            let bytes: u64 = sessions.iter().map(|s| s.bytes).sum();
            assert_eq!(bytes, sim.daily_bytes[day].round() as u64, "SIM {i}, day {day}");
            for s in &sessions {
                assert!(s.start <= s.end, "{s:?}");
                assert_eq!(s.start.date_naive(), plan.date(day), "{s:?}");
                assert_eq!(s.end.date_naive(), plan.date(day), "{s:?}");
                assert!(ids.insert(s.id.clone()), "session ids are unique: {}", s.id);
                let rollup = plan.rollup(s);
                let cdr = plan.cdr(s);
                assert_eq!(rollup.total_bytes_in + rollup.total_bytes_out, s.bytes);
                assert_eq!(
                    (cdr.bytes_in, cdr.bytes_out),
                    (rollup.total_bytes_in, rollup.total_bytes_out)
                );
                assert!(rollup.imei.is_some(), "contract version 2: the device's IMEI");
            }
            let events = plan.events(day);
            assert_eq!(events.len(), 2 * sessions.len(), "a rollup and a CDR per session");
        }
    }
}

#[test]
fn anomalies_are_where_their_labels_say_on_the_sims_own_networks() {
    let home = MccMnc::parse("234-15").unwrap();
    let all = plans(150, 60, "234-15");
    let mut kinds = BTreeSet::new();
    for plan in &all {
        let labelled: BTreeSet<NaiveDate> = plan.truth.iter().map(|row| row.day).collect();
        for row in &plan.truth {
            kinds.insert(row.kind);
            let day = plan.day_of(row.day).unwrap();
            let sessions = plan.sessions(day);
            match row.kind {
                AnomalyKind::Silence => assert!(sessions.is_empty(), "{row:?}"),
                AnomalyKind::SessionStorm => assert!(sessions.len() >= 50, "{row:?}: {}", sessions.len()),
                AnomalyKind::NewCountry => {
                    assert!(!sessions.is_empty(), "{row:?}");
                    for s in &sessions {
                        assert_ne!(country_key(&s.network), "GB", "{row:?}: abroad");
                    }
                }
                AnomalyKind::NewNetwork => {
                    let network = &sessions.first().unwrap().network;
                    assert_ne!(network, &home, "{row:?}");
                    assert_eq!(country_key(network), "GB", "{row:?}: at home");
                    let before = (0..day)
                        .flat_map(|d| plan.sessions(d))
                        .any(|s| s.network == *network);
                    assert!(!before, "{row:?}: {network} is new");
                }
                AnomalyKind::ImeiChange => {
                    if let Some(s) = sessions.first() {
                        let before = (0..day)
                            .flat_map(|d| plan.sessions(d))
                            .any(|earlier| earlier.imei == s.imei);
                        assert!(!before, "{row:?}: a new device");
                    }
                }
                AnomalyKind::UsageSpike => {
                    let bytes: u64 = sessions.iter().map(|s| s.bytes).sum();
                    assert!(bytes as f64 >= 4.0 * plan.usual(day), "{row:?}");
                }
            }
            assert!(!row.detail.is_empty());
        }
        // Days without a label are at home (its country), in its device of now by the end.
        for day in 0..60 {
            if labelled.contains(&plan.date(day)) {
                continue;
            }
            let abroad_label = plan.truth.iter().any(|row| {
                row.kind == AnomalyKind::NewCountry
                    && plan.day_of(row.day).is_some_and(|d| d <= day && day < d + 3)
            });
            for s in plan.sessions(day) {
                if !abroad_label {
                    assert_eq!(country_key(&s.network), "GB", "{} day {day}", plan.iccid);
                }
            }
        }
        if let Some(last) = (0..60).rev().find_map(|d| plan.sessions(d).into_iter().next()) {
            assert_eq!(last.imei, ioto_ingest::simulator::device_imei(&plan.iccid));
        }
    }
    assert!(kinds.len() >= 5, "most kinds are injected: {kinds:?}");
}

#[test]
fn the_day_so_far_is_the_share_of_the_day_gone() {
    let all = plans(1, 10, "262-01");
    let plan = &all[0];
    let day = (0..10).find(|&d| plan.days[d].bytes > 0).unwrap();
    let noon = plan.date(day).and_hms_opt(12, 0, 0).unwrap().and_utc();
    let so_far = plan.day_so_far(day, noon).unwrap();
    assert_eq!(so_far.end, noon);
    assert!(so_far.start < noon);
    assert!(so_far.bytes.abs_diff(plan.days[day].bytes / 2) <= 1, "{so_far:?}");
    let midnight = plan.date(day).and_hms_opt(0, 0, 30).unwrap().and_utc();
    assert_eq!(plan.day_so_far(day, midnight), None);
}

#[test]
fn the_truth_is_rfc_4180() {
    assert_eq!(
        csv_field("3 days on 208-10 in France"),
        "3 days on 208-10 in France"
    );
    assert_eq!(csv_field("a, b"), "\"a, b\"");
    assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    let all = plans(40, 60, "262-01");
    let row = all.iter().flat_map(|plan| &plan.truth).next().unwrap();
    let line = row.csv_line();
    assert!(line.ends_with("\r\n"), "{line}");
    assert!(line.starts_with(&format!("{},", row.iccid)), "{line}");
    assert!(line.contains(row.kind.as_str()), "{line}");
    assert_eq!(TRUTH_HEADER, "iccid,kind,anomaly_kind,day,detail\r\n");
}

#[test]
fn options_out_of_range_are_refused_naming_the_flag() {
    let ok = HistoryOptions {
        tenant: "demo".into(),
        sims: 10,
        days: 90,
        anomaly_rate: 0.05,
        seed: 1,
        truth: None,
        max_event_age_days: 91,
        progress: false,
    };
    assert!(check(&ok).is_ok());
    let with = |change: &dyn Fn(&mut HistoryOptions)| {
        let mut changed = ok.clone();
        change(&mut changed);
        changed
    };
    for (opts, flag) in [
        (with(&|o: &mut HistoryOptions| o.days = 0), "--days"),
        (
            with(&|o: &mut HistoryOptions| (o.days, o.max_event_age_days) = (401, 3650)),
            "--days",
        ),
        (
            with(&|o: &mut HistoryOptions| o.max_event_age_days = 90),
            "ingest.max_event_age_days",
        ),
        (with(&|o: &mut HistoryOptions| o.sims = 0), "--sims"),
        (with(&|o: &mut HistoryOptions| o.sims = 100_001), "--sims"),
        (
            with(&|o: &mut HistoryOptions| o.anomaly_rate = 1.01),
            "--anomalies",
        ),
        (
            with(&|o: &mut HistoryOptions| o.anomaly_rate = -0.1),
            "--anomalies",
        ),
        (
            with(&|o: &mut HistoryOptions| o.anomaly_rate = f64::NAN),
            "--anomalies",
        ),
        (
            with(&|o: &mut HistoryOptions| o.anomaly_rate = f64::INFINITY),
            "--anomalies",
        ),
    ] {
        let err = check(&opts).unwrap_err().to_string();
        assert!(err.contains(flag), "{opts:?}: {err}");
    }
}
