//! The real networks a simulated SIM's networks stand for. The simulator puts SIMs on the networks
//! of six countries; a tenant's SIM has a home network of its own. Per SIM: its simulated home
//! network becomes its real one; the other networks of its simulated home country become other
//! networks of its real home country (from the MCC/MNC reference, a different one for each, in
//! the order they first appear, so that a network the simulator made new is new); a network
//! abroad stays what it is, unless it is in the SIM's real home country, when it becomes the
//! simulated home network (a real network of another country, so a new country stays a new
//! country).

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use ioto_domain::identifiers::MccMnc;
use ioto_domain::usage::Networks;
use ioto_forecast::anomaly::NetworkDay;
use ioto_ingest::simulator::ROAMING_NETWORK;

/// Where a SIM goes abroad when neither the simulator's network nor its simulated home network is
/// abroad for it, after [`ROAMING_NETWORK`] (Japan): Telekom Deutschland.
const LAST_RESORT_ABROAD: &str = "262-01";

/// A network's country as the reference knows it (ISO 3166 alpha-2), or its MCC for a code the
/// reference does not list.
pub fn country_key(code: &MccMnc) -> String {
    match Networks::builtin().get(code) {
        Some(network) if !network.country_code.is_empty() => network.country_code.clone(),
        _ => format!("MCC {}", code.mcc()),
    }
}

/// A network's country as people name it ("France"), or its MCC for a code the reference does not
/// list.
pub fn country_name(code: &MccMnc) -> String {
    Networks::builtin()
        .get(code)
        .map(|network| network.country_name.clone())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("MCC {}", code.mcc()))
}

/// A network's name ("Vodafone"), or its code for one the reference does not list.
pub fn network_name(code: &MccMnc) -> String {
    Networks::builtin()
        .get(code)
        .map(|network| network.name.clone())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| code.to_string())
}

/// The other networks of each home network's country, looked up in the reference once per home
/// network (a fleet has few).
#[derive(Debug, Default)]
pub struct Catalogue {
    siblings: HashMap<MccMnc, Vec<MccMnc>>,
}

impl Catalogue {
    /// The networks of `home`'s country but `home`, in code order.
    fn siblings(&mut self, home: &MccMnc) -> Vec<MccMnc> {
        self.siblings
            .entry(home.clone())
            .or_insert_with(|| {
                let country = country_key(home);
                let mut others: Vec<MccMnc> = Networks::builtin()
                    .all()
                    .map(|network| network.mcc_mnc.clone())
                    .filter(|code| code != home && country_key(code) == country)
                    .collect();
                others.sort();
                others
            })
            .clone()
    }
}

/// Where a simulated network is, seen from the SIM.
enum Place {
    /// Its simulated home network.
    Home,
    /// Another network of its simulated home country.
    HomeCountry,
    /// A network of another country.
    Abroad,
}

/// The real network each simulated network of one SIM stands for.
#[derive(Debug)]
pub struct NetworkMap {
    home: MccMnc,
    home_country: String,
    /// The simulated home: its country's name and its network's code.
    simulated_home: Option<(String, String)>,
    siblings: Vec<MccMnc>,
    next_sibling: usize,
    mapped: HashMap<String, MccMnc>,
}

impl NetworkMap {
    /// The map of a SIM at home on `home`, from the networks it was simulated on (`seen`) and the
    /// days the simulator sent it to a new country (`abroad`, from its labels): its simulated home
    /// is the country it was seen in most on the other days, and that country's network it was
    /// seen on most.
    pub fn new(
        catalogue: &mut Catalogue,
        home: &MccMnc,
        seen: &[NetworkDay],
        abroad: &BTreeSet<NaiveDate>,
    ) -> Self {
        let at_home: Vec<&NetworkDay> = seen.iter().filter(|day| !abroad.contains(&day.day)).collect();
        let simulated_home =
            most_frequent(at_home.iter().map(|day| day.country.as_str())).and_then(|country| {
                most_frequent(
                    at_home
                        .iter()
                        .filter(|day| day.country == country)
                        .map(|day| day.mcc_mnc.as_str()),
                )
                .map(|code| (country.to_owned(), code.to_owned()))
            });
        Self {
            home: home.clone(),
            home_country: country_key(home),
            simulated_home,
            siblings: catalogue.siblings(home),
            next_sibling: 0,
            mapped: HashMap::new(),
        }
    }

    /// The real network standing for the network the SIM was simulated on on `day`; the same for
    /// the same simulated network every time.
    pub fn real(&mut self, day: &NetworkDay) -> MccMnc {
        if let Some(real) = self.mapped.get(&day.mcc_mnc) {
            return real.clone();
        }
        let place = match &self.simulated_home {
            Some((_, code)) if *code == day.mcc_mnc => Place::Home,
            Some((country, _)) if *country == day.country => Place::HomeCountry,
            _ => Place::Abroad,
        };
        let real = match place {
            Place::Home => self.home.clone(),
            Place::HomeCountry => {
                // Past the country's last network the home network stands in (a country with few
                // networks): never a network of another country.
                let sibling = self.siblings.get(self.next_sibling).cloned();
                self.next_sibling += 1;
                sibling.unwrap_or_else(|| self.home.clone())
            }
            Place::Abroad => self.abroad(&day.mcc_mnc),
        };
        self.mapped.insert(day.mcc_mnc.clone(), real.clone());
        real
    }

    /// A real network of another country than the SIM's home: the simulator's own when it is one.
    fn abroad(&self, code: &str) -> MccMnc {
        let simulated_home = self.simulated_home.as_ref().map(|(_, home)| home.as_str());
        [
            Some(code),
            simulated_home,
            Some(ROAMING_NETWORK),
            Some(LAST_RESORT_ABROAD),
        ]
        .into_iter()
        .flatten()
        .filter_map(|candidate| MccMnc::parse(candidate).ok())
        .find(|candidate| country_key(candidate) != self.home_country)
        .unwrap_or_else(|| self.home.clone())
    }
}

/// The value seen most often (the smallest of those seen as often, so that the answer does not
/// depend on a hash order).
fn most_frequent<'a>(values: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut counts: HashMap<&'a str, usize> = HashMap::new();
    for value in values {
        *counts.entry(value).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(value, _)| value)
}
