//! New networks and new countries: a SIM seen on `day` on a network, or in a country, it was not
//! seen on in the [`NETWORK_LOOKBACK_DAYS`] days before. Roaming abroad costs money and a SIM
//! that changes networks at home may have lost its usual coverage.
//!
//! A new country is reported once, as a country, with the networks it was seen on there; those
//! networks are not reported again as new networks. Networks and countries are compared as given
//! (the same spelling is the same network).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use super::distinct_per_day;
use super::feedback;
use super::model::{Anomaly, AnomalyKind, Baseline, Evidence, NetworkDay, SimHistory};
use super::thresholds::{
    NETWORK_LOOKBACK_DAYS, NETWORK_MIN_HISTORY_DAYS, NEW_COUNTRY_SCORE, NEW_NETWORK_SCORE,
};

/// The new networks and countries of the SIM on `day`.
///
/// Nothing for a SIM first seen on a network fewer than [`NETWORK_MIN_HISTORY_DAYS`] days before
/// `day` (a new SIM's first networks are not a change), nor for one not seen on any network in
/// the [`NETWORK_LOOKBACK_DAYS`] days before (a SIM waking up has nothing to compare with).
pub(super) fn detect(history: &SimHistory, day: NaiveDate) -> Vec<Anomaly> {
    let records = &history.networks;
    let Some(first_seen) = records.iter().map(|record| record.day).min() else {
        return Vec::new();
    };
    if (day - first_seen).num_days() < NETWORK_MIN_HISTORY_DAYS {
        return Vec::new();
    }
    let before: Vec<&NetworkDay> = records
        .iter()
        .filter(|record| (1..=NETWORK_LOOKBACK_DAYS).contains(&(day - record.day).num_days()))
        .collect();
    if before.is_empty() {
        return Vec::new();
    }
    let mut known_networks: BTreeSet<&str> = before.iter().map(|record| record.mcc_mnc.as_str()).collect();
    known_networks.extend(feedback::accepted_values(
        &history.dismissed,
        AnomalyKind::NewNetwork,
        day,
    ));
    let seen_countries: BTreeSet<&str> = before
        .iter()
        .map(|record| record.country.as_str())
        .filter(|country| !country.is_empty())
        .collect();
    let accepted_countries = feedback::accepted_values(&history.dismissed, AnomalyKind::NewCountry, day);

    // The day's networks, each once, in the order first seen.
    let mut today: Vec<&NetworkDay> = Vec::new();
    for record in records
        .iter()
        .filter(|record| record.day == day && !record.mcc_mnc.is_empty())
    {
        if !today.iter().any(|seen| seen.mcc_mnc == record.mcc_mnc) {
            today.push(record);
        }
    }

    let mut found = Vec::new();
    // Countries not seen before, with the day's networks in each. A network in such a country is
    // reported with its country (or, if the country was dismissed, not at all).
    let mut new_countries: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for record in &today {
        let country = record.country.as_str();
        if !country.is_empty() && !seen_countries.contains(country) {
            new_countries
                .entry(country)
                .or_default()
                .push(record.mcc_mnc.as_str());
        } else if !known_networks.contains(record.mcc_mnc.as_str())
            && !feedback::suppressed(&history.dismissed, AnomalyKind::NewNetwork, day)
        {
            found.push(new_network(history, day, record));
        }
    }
    if feedback::suppressed(&history.dismissed, AnomalyKind::NewCountry, day) {
        return found;
    }
    for (country, networks) in new_countries {
        if !accepted_countries.contains(&country) {
            found.push(new_country(history, day, country, &networks));
        }
    }
    found
}

fn new_network(history: &SimHistory, day: NaiveDate, record: &NetworkDay) -> Anomaly {
    let network = &record.mcc_mnc;
    let days = NETWORK_LOOKBACK_DAYS;
    let sentence = if record.country.is_empty() {
        format!("On network {network} for the first time in {days} days")
    } else {
        let country = &record.country;
        format!("On network {network} ({country}) for the first time in {days} days")
    };
    let series = distinct_per_day(
        history
            .networks
            .iter()
            .map(|seen| (seen.day, seen.mcc_mnc.as_str())),
        day,
    );
    Anomaly::new(
        AnomalyKind::NewNetwork,
        day,
        NEW_NETWORK_SCORE,
        sentence,
        first_time_evidence(series),
        Some(network.clone()),
    )
}

fn new_country(history: &SimHistory, day: NaiveDate, country: &str, networks: &[&str]) -> Anomaly {
    let days = NETWORK_LOOKBACK_DAYS;
    let on = if networks.len() == 1 {
        "network"
    } else {
        "networks"
    };
    let listed = networks.join(", ");
    let sentence = format!("First traffic in {country} in {days} days, on {on} {listed}");
    let series = distinct_per_day(
        history
            .networks
            .iter()
            .filter(|seen| !seen.country.is_empty())
            .map(|seen| (seen.day, seen.country.as_str())),
        day,
    );
    Anomaly::new(
        AnomalyKind::NewCountry,
        day,
        NEW_COUNTRY_SCORE,
        sentence,
        first_time_evidence(series),
        Some(country.to_string()),
    )
}

/// The evidence of a value seen on the day and not in the days before: observed 1, expected and
/// band 0, and the distinct values per day.
pub(super) fn first_time_evidence(series: Vec<f64>) -> Evidence {
    Evidence {
        observed: 1.0,
        expected: 0.0,
        band_lo: 0.0,
        band_hi: 0.0,
        series,
        baseline: Baseline::Own,
    }
}
