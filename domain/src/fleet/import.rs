//! Inventory import: a table of new SIMs checked row by row before anything is written.
//!
//! The file is read into a [`Table`] by a [`crate::ports::TableReader`]; [`check_rows`] turns it
//! into SIMs to create and per-row errors. Nothing is written until the caller commits a file
//! without errors (or asks to skip the bad rows).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::secret::SecretCipher;
use super::sim::{parse_pin, parse_tariff_plan, NewSim, SimState, SimType};
use crate::identifiers::{Iccid, Imsi, Msisdn};
use crate::{CustomerId, Error, Result, TenantId};

/// Most rows one import may hold.
pub const MAX_IMPORT_ROWS: usize = 1_000_000;

/// Columns an import understands; `iccid` and `imsi` are required.
/// `labels` holds `key=value` pairs separated by `;` (`site=berlin;fleet=cold-chain`).
pub const IMPORT_COLUMNS: [&str; 9] = [
    "iccid",
    "imsi",
    "msisdn",
    "pin",
    "puk",
    "type",
    "tariff_plan",
    "activation_code",
    "labels",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableFormat {
    Csv,
    Xlsx,
}

impl TableFormat {
    /// From a file name or a format name (`csv`, `xlsx`).
    pub fn parse(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        let ext = lower.rsplit('.').next().unwrap_or("");
        match ext {
            "csv" | "txt" => Ok(Self::Csv),
            "xlsx" => Ok(Self::Xlsx),
            _ => Err(Error::invalid("format", format!("'{s}' is not CSV or XLSX"))),
        }
    }
}

/// A file as rows of text cells. `header` is the first row; `rows[i]` is line `i + 2` of the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// What is wrong with one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// Line in the file, counting the header as line 1 (what a spreadsheet shows).
    pub row: usize,
    pub field: String,
    pub value: String,
    pub reason: String,
}

/// The result of checking (and perhaps committing) an import.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportReport {
    pub rows: usize,
    pub valid: usize,
    pub errors: Vec<RowError>,
    /// Set when the SIMs were written.
    pub import_id: Option<Uuid>,
    pub created: u64,
    /// Where the import's time went.
    pub stages: ImportStages,
}

/// Where an import's time went: reading and checking the file, the inventory search (only when
/// the file is previewed, has bad rows or its insert met a taken identifier), sealing PINs and
/// PUKs, and the store's insert and commit (all or nothing). `ioto bench fleet` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportStages {
    pub check: std::time::Duration,
    pub inventory: std::time::Duration,
    pub seal: std::time::Duration,
    pub write: std::time::Duration,
}

impl ImportReport {
    pub fn committed(&self) -> bool {
        self.import_id.is_some()
    }
}

/// Where checked rows go.
#[derive(Debug, Clone, Copy)]
pub struct ImportTarget {
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
}

/// A checked row: its line and the SIM it creates (secrets still in clear until sealed).
#[derive(Debug, Clone)]
pub struct CheckedRow {
    pub line: usize,
    pub sim: NewSim,
    pub pin: Option<String>,
    pub puk: Option<String>,
}

/// Maps header names to column positions; names are matched case-insensitively, ignoring spaces
/// and `-`. Unknown columns are refused (a typo must not silently drop data).
fn columns(header: &[String]) -> Result<HashMap<&'static str, usize>> {
    let mut map = HashMap::new();
    for (i, h) in header.iter().enumerate() {
        let norm = h
            .trim()
            .trim_start_matches('\u{feff}')
            .to_ascii_lowercase()
            .replace([' ', '-'], "_");
        if norm.is_empty() {
            continue;
        }
        let Some(known) = IMPORT_COLUMNS.iter().find(|c| **c == norm) else {
            return Err(Error::invalid(
                "file",
                format!("unknown column '{h}'; allowed: {}", IMPORT_COLUMNS.join(", ")),
            ));
        };
        if map.insert(*known, i).is_some() {
            return Err(Error::invalid("file", format!("column '{known}' appears twice")));
        }
    }
    for required in ["iccid", "imsi"] {
        if !map.contains_key(required) {
            return Err(Error::invalid(
                "file",
                format!(
                    "the header has no '{required}' column; columns: {}",
                    IMPORT_COLUMNS.join(", ")
                ),
            ));
        }
    }
    Ok(map)
}

/// Checks every row: identifiers, types, PIN/PUK, duplicates inside the file. The caller checks
/// against the inventory with [`mark_taken`].
pub fn check_rows(table: &Table, target: ImportTarget) -> Result<(Vec<CheckedRow>, Vec<RowError>)> {
    if table.rows.len() > MAX_IMPORT_ROWS {
        return Err(Error::invalid(
            "file",
            format!(
                "has {} rows; at most {MAX_IMPORT_ROWS} per import",
                table.rows.len()
            ),
        ));
    }
    let cols = columns(&table.header)?;
    let mut ok = Vec::with_capacity(table.rows.len());
    let mut errors = Vec::new();
    let mut seen_iccid: HashMap<String, usize> = HashMap::new();
    let mut seen_imsi: HashMap<String, usize> = HashMap::new();
    let mut seen_msisdn: HashMap<String, usize> = HashMap::new();
    for (i, cells) in table.rows.iter().enumerate() {
        let line = i + 2;
        let cell = |name: &str| -> &str {
            cols.get(name)
                .and_then(|c| cells.get(*c))
                .map(|s| s.trim())
                .unwrap_or("")
        };
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let before = errors.len();
        let mut fail = |field: &str, value: &str, e: Error| {
            let reason = match e {
                Error::InvalidInput { reason, .. } => reason,
                other => other.to_string(),
            };
            errors.push(RowError {
                row: line,
                field: field.to_owned(),
                value: value.to_owned(),
                reason,
            });
        };
        let iccid = match cell("iccid") {
            "" => {
                fail("iccid", "", Error::invalid("iccid", "is required"));
                None
            }
            v => Iccid::parse(v).map_err(|e| fail("iccid", v, e)).ok(),
        };
        let imsi = match cell("imsi") {
            "" => {
                fail("imsi", "", Error::invalid("imsi", "is required"));
                None
            }
            v => Imsi::parse(v).map_err(|e| fail("imsi", v, e)).ok(),
        };
        let msisdn = match cell("msisdn") {
            "" => Some(None),
            v => Msisdn::parse(v).map(Some).map_err(|e| fail("msisdn", v, e)).ok(),
        };
        let sim_type = match cell("type") {
            "" => Some(SimType::default()),
            v => SimType::parse(v).map_err(|e| fail("type", v, e)).ok(),
        };
        let pin = match cell("pin") {
            "" => Some(None),
            v => parse_pin(v, "pin", 4..=8)
                .map(Some)
                .map_err(|e| fail("pin", v, e))
                .ok(),
        };
        let puk = match cell("puk") {
            "" => Some(None),
            v => parse_pin(v, "puk", 8..=8)
                .map(Some)
                .map_err(|e| fail("puk", v, e))
                .ok(),
        };
        let tariff = match cell("tariff_plan") {
            "" => Some(None),
            v => parse_tariff_plan(v)
                .map(Some)
                .map_err(|e| fail("tariff_plan", v, e))
                .ok(),
        };
        let activation = match cell("activation_code") {
            "" => Some(None),
            v => parse_activation_code(v)
                .map(Some)
                .map_err(|e| fail("activation_code", v, e))
                .ok(),
        };
        let labels = match cell("labels") {
            "" => Some(super::labels::Labels::new()),
            v => parse_label_list(v).map_err(|e| fail("labels", v, e)).ok(),
        };
        let mut dup = |seen: &mut HashMap<String, usize>, field: &str, value: &str| {
            if let Some(first) = seen.get(value) {
                errors.push(RowError {
                    row: line,
                    field: field.to_owned(),
                    value: value.to_owned(),
                    reason: format!("duplicate in file: already on row {first}"),
                });
            } else {
                seen.insert(value.to_owned(), line);
            }
        };
        if let Some(i) = &iccid {
            dup(&mut seen_iccid, "iccid", i.as_str());
        }
        if let Some(i) = &imsi {
            dup(&mut seen_imsi, "imsi", i.as_str());
        }
        if let Some(Some(m)) = &msisdn {
            dup(&mut seen_msisdn, "msisdn", m.as_str());
        }
        if errors.len() > before {
            continue;
        }
        if let (
            Some(iccid),
            Some(imsi),
            Some(msisdn),
            Some(sim_type),
            Some(pin),
            Some(puk),
            Some(tariff),
            Some(activation),
            Some(labels),
        ) = (
            iccid, imsi, msisdn, sim_type, pin, puk, tariff, activation, labels,
        ) {
            let mut sim = NewSim::basic(target.tenant_id, iccid, imsi);
            sim.customer_id = target.customer_id;
            sim.msisdn = msisdn;
            sim.sim_type = sim_type;
            sim.tariff_plan = tariff;
            sim.activation_code = activation;
            sim.labels = labels;
            sim.state = SimState::Inventory;
            ok.push(CheckedRow { line, sim, pin, puk });
        }
    }
    Ok((ok, errors))
}

/// Labels written as `key=value` pairs separated by `;`.
pub fn parse_label_list(s: &str) -> Result<super::labels::Labels> {
    let mut labels = super::labels::Labels::new();
    for pair in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            Error::invalid(
                "labels",
                format!("'{pair}' is not key=value (pairs are separated by ';')"),
            )
        })?;
        labels.set(k, v)?;
    }
    Ok(labels)
}

/// Identifiers already registered on the platform.
#[derive(Debug, Clone, Default)]
pub struct TakenIdentifiers {
    pub iccids: std::collections::HashSet<String>,
    pub imsis: std::collections::HashSet<String>,
    pub msisdns: std::collections::HashSet<String>,
}

/// Moves rows whose ICCID, IMSI or MSISDN is already registered into `errors`.
pub fn mark_taken(
    rows: Vec<CheckedRow>,
    taken: &TakenIdentifiers,
    errors: &mut Vec<RowError>,
) -> Vec<CheckedRow> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let mut bad = Vec::new();
        if taken.iccids.contains(r.sim.iccid.as_str()) {
            bad.push(("iccid", r.sim.iccid.to_string()));
        }
        if taken.imsis.contains(r.sim.imsi.as_str()) {
            bad.push(("imsi", r.sim.imsi.to_string()));
        }
        if let Some(m) = r
            .sim
            .msisdn
            .as_ref()
            .filter(|m| taken.msisdns.contains(m.as_str()))
        {
            bad.push(("msisdn", m.to_string()));
        }
        if bad.is_empty() {
            out.push(r);
        } else {
            for (field, value) in bad {
                errors.push(RowError {
                    row: r.line,
                    field: field.to_owned(),
                    value,
                    reason: "already in inventory".to_owned(),
                });
            }
        }
    }
    errors.sort_by_key(|e| e.row);
    out
}

/// Seals PIN and PUK of checked rows.
pub fn seal_rows(rows: &[CheckedRow], cipher: &SecretCipher) -> Result<Vec<NewSim>> {
    rows.iter()
        .map(|r| {
            let mut sim = r.sim.clone();
            sim.pin = r
                .pin
                .as_ref()
                .map(|p| cipher.seal(sim.iccid.as_str(), "pin", p))
                .transpose()?;
            sim.puk = r
                .puk
                .as_ref()
                .map(|p| cipher.seal(sim.iccid.as_str(), "puk", p))
                .transpose()?;
            Ok(sim)
        })
        .collect()
}

/// An activation code (eSIM matching id or printed code): 1 to 128 printable characters.
pub fn parse_activation_code(s: &str) -> Result<String> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 128 || s.chars().any(char::is_control) {
        return Err(Error::invalid(
            "activationCode",
            "must be 1 to 128 printable characters",
        ));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifiers::luhn_check_digit;

    fn iccid(n: u32) -> String {
        let body = format!("8949000000{n:08}");
        format!("{body}{}", luhn_check_digit(&body).unwrap())
    }

    fn table(rows: &[[&str; 4]]) -> Table {
        Table {
            header: ["ICCID", "imsi", "msisdn", "Type"].map(String::from).to_vec(),
            rows: rows.iter().map(|r| r.map(String::from).to_vec()).collect(),
        }
    }

    #[test]
    fn every_kind_of_bad_row_is_reported_with_its_line() {
        let good = iccid(1);
        let mut bad_check = iccid(2);
        bad_check.pop();
        bad_check.push(if iccid(2).ends_with('0') { '1' } else { '0' });
        let t = table(&[
            [&good, "262011234567890", "+491511111111", "prepaid"],
            [&bad_check, "262011234567891", "", ""],
            [&good, "262011234567892", "", ""],
            [&iccid(3), "262011234567893", "12", ""],
            [&iccid(4), "262011234567894", "", "free"],
        ]);
        let target = ImportTarget {
            tenant_id: TenantId::new(),
            customer_id: None,
        };
        let (ok, errors) = check_rows(&t, target).unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].sim.sim_type, SimType::Prepaid);
        let summary: Vec<(usize, &str)> = errors.iter().map(|e| (e.row, e.field.as_str())).collect();
        assert_eq!(
            summary,
            vec![(3, "iccid"), (4, "iccid"), (5, "msisdn"), (6, "type")]
        );
        assert!(errors[0].reason.contains("Luhn"), "{:?}", errors[0]);
        assert_eq!(errors[1].reason, "duplicate in file: already on row 2");
    }

    #[test]
    fn labels_column() {
        let l = parse_label_list("site=berlin; fleet = cold-chain;").unwrap();
        assert_eq!(l.get("site"), Some("berlin"));
        assert_eq!(l.get("fleet"), Some("cold-chain"));
        assert!(parse_label_list("site")
            .unwrap_err()
            .to_string()
            .contains("key=value"));
    }

    #[test]
    fn header_problems_fail_the_whole_file() {
        let target = ImportTarget {
            tenant_id: TenantId::new(),
            customer_id: None,
        };
        let t = Table {
            header: vec!["iccid".into(), "imzi".into()],
            rows: vec![],
        };
        assert!(check_rows(&t, target)
            .unwrap_err()
            .to_string()
            .contains("unknown column 'imzi'"));
        let t = Table {
            header: vec!["iccid".into()],
            rows: vec![],
        };
        assert!(check_rows(&t, target)
            .unwrap_err()
            .to_string()
            .contains("no 'imsi' column"));
    }

    #[test]
    fn taken_identifiers_become_row_errors() {
        let t = table(&[
            [&iccid(1), "262011234567890", "", ""],
            [&iccid(2), "262011234567891", "", ""],
        ]);
        let target = ImportTarget {
            tenant_id: TenantId::new(),
            customer_id: None,
        };
        let (ok, mut errors) = check_rows(&t, target).unwrap();
        let mut taken = TakenIdentifiers::default();
        taken.iccids.insert(iccid(2));
        let ok = mark_taken(ok, &taken, &mut errors);
        assert_eq!(ok.len(), 1);
        assert_eq!(errors[0].row, 3);
        assert_eq!(errors[0].reason, "already in inventory");
    }
}
