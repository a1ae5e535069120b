//! Mobile networks by MCC/MNC: name and country, from the reference table shipped with the
//! project (`domain/data/mcc_mnc.csv`, 3,091 rows; some codes are listed for several territories).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::identifiers::MccMnc;

/// One network as people know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub mcc_mnc: MccMnc,
    /// Brand, or the operator's name when there is no brand.
    pub name: String,
    pub operator: String,
    /// ISO 3166 alpha-2, empty for international or test codes.
    pub country_code: String,
    pub country_name: String,
    /// Further territories listed for the same code (e.g. Jersey and Guernsey).
    pub other_territories: Vec<String>,
}

/// Splits one CSV line (RFC 4180 quoting).
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// The catalogue, parsed once.
pub struct Networks {
    by_code: HashMap<MccMnc, Network>,
}

impl Networks {
    /// Parses a table with the header `mcc,mnc,country_code,country_name,brand,operator,…`.
    /// Rows whose code does not parse are skipped (the shipped table has none; a test checks it).
    pub fn from_csv(text: &str) -> Self {
        let mut by_code: HashMap<MccMnc, Network> = HashMap::new();
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let f = fields(line);
            let get = |i: usize| f.get(i).map(|s| s.trim().to_owned()).unwrap_or_default();
            let Ok(code) = MccMnc::parse(&format!("{}-{}", get(0), get(1))) else {
                continue;
            };
            let operator = get(5);
            let name = if get(4).is_empty() {
                operator.clone()
            } else {
                get(4)
            };
            match by_code.get_mut(&code) {
                Some(existing) => {
                    let territory = get(3);
                    if !territory.is_empty()
                        && territory != existing.country_name
                        && !existing.other_territories.contains(&territory)
                    {
                        existing.other_territories.push(territory);
                    }
                }
                None => {
                    by_code.insert(
                        code.clone(),
                        Network {
                            mcc_mnc: code,
                            name,
                            operator,
                            country_code: get(2),
                            country_name: get(3),
                            other_territories: Vec::new(),
                        },
                    );
                }
            }
        }
        Self { by_code }
    }

    /// The table shipped with Ioto.
    pub fn builtin() -> &'static Networks {
        static NETWORKS: OnceLock<Networks> = OnceLock::new();
        NETWORKS.get_or_init(|| Networks::from_csv(include_str!("../../data/mcc_mnc.csv")))
    }

    pub fn get(&self, code: &MccMnc) -> Option<&Network> {
        self.by_code.get(code)
    }

    /// Every network of the catalogue, in no particular order.
    pub fn all(&self) -> impl Iterator<Item = &Network> {
        self.by_code.values()
    }

    /// The countries (ISO 3166 alpha-2) networks are listed for, each once.
    pub fn country_codes(&self) -> impl Iterator<Item = &str> {
        let mut codes: Vec<&str> = self
            .by_code
            .values()
            .map(|n| n.country_code.as_str())
            .filter(|c| !c.is_empty())
            .collect();
        codes.sort_unstable();
        codes.dedup();
        codes.into_iter()
    }

    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_parses_completely() {
        let text = include_str!("../../data/mcc_mnc.csv");
        let rows = text.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
        let n = Networks::builtin();
        // Every row with a real MCC/MNC is in; duplicate codes fold into one entry with more
        // territories. The only rows left out carry private 5-digit codes (France's 208-501xx),
        // which no IMSI or network report uses.
        let codes: Vec<(String, String)> = text
            .lines()
            .skip(1)
            .map(|l| {
                let f = fields(l);
                (f[0].clone(), f[1].clone())
            })
            .collect();
        let (standard, private): (Vec<_>, Vec<_>) = codes.iter().partition(|(_, mnc)| mnc.len() <= 3);
        let distinct: std::collections::HashSet<_> = standard.iter().collect();
        assert_eq!(n.len(), distinct.len());
        assert!(
            private.iter().all(|(mcc, mnc)| mcc == "208" && mnc.len() == 5),
            "{private:?}"
        );
        assert!(rows >= 3000, "{rows}");
    }

    #[test]
    fn lookup_and_quoted_fields() {
        let n = Networks::builtin();
        let t = n.get(&MccMnc::parse("262-01").unwrap()).unwrap();
        assert_eq!(t.country_code, "DE");
        assert_eq!(t.country_name, "Germany");
        assert!(!t.name.is_empty());
        let csv = "mcc,mnc,country_code,country_name,brand,operator,status,type\n999,01,XX,Nowhere,,\"Acme, Inc.\",Operational,National\n";
        let one = Networks::from_csv(csv);
        let net = one.get(&MccMnc::parse("999-01").unwrap()).unwrap();
        assert_eq!(net.name, "Acme, Inc.", "operator stands in for a missing brand");
        assert_eq!(fields("a,\"b \"\"c\"\"\",d"), vec!["a", "b \"c\"", "d"]);
    }
}
