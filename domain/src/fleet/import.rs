//! Inventory import: a table of new SIMs checked row by row before anything is written.
//!
//! The file is read into a [`Table`] by a table reader (a port); [`check_rows`] turns it
//! into SIMs to create and per-row errors. Nothing is written until the caller commits a file
//! without errors (or asks to skip the bad rows).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::secret::SecretCipher;
use super::sim::{parse_pin, parse_tariff_plan, NewSim, SimState, SimType};
use crate::identifiers::{Iccid, Imsi, Msisdn};
use crate::parallel::in_parallel;
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
/// PUKs, and the store's insert and commit (all or nothing). `ioto-bench fleet` prints them.
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

/// A checked row: its line and the SIM it creates. PIN and PUK stay here in clear until
/// [`seal_rows`] moves them, sealed, into `sim`.
#[derive(Clone)]
pub struct CheckedRow {
    pub line: usize,
    pub sim: NewSim,
    pub pin: Option<String>,
    pub puk: Option<String>,
}

/// Never prints a PIN or PUK in clear (sealed ones print as `Sealed(***)`).
impl std::fmt::Debug for CheckedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("CheckedRow")
            .field("line", &self.line)
            .field("sim", &self.sim)
            .field("pin", &hidden(&self.pin))
            .field("puk", &hidden(&self.puk))
            .finish()
    }
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

/// Rows checked by one thread: fewer are checked on the calling thread alone.
const CHECK_CHUNK: usize = 4_096;

/// Checks every row: identifiers, types, PIN/PUK, duplicates inside the file. The caller checks
/// against the inventory with [`mark_taken`]. Large files are checked on every core (each row's
/// fields on their own), then duplicates are looked for in file order, so the errors and their
/// order are the same as one pass from the first row to the last.
pub fn check_rows(table: &Table, target: ImportTarget) -> Result<(Vec<CheckedRow>, Vec<RowError>)> {
    let (rows, errors, _) = check_rows_on(table, target, crate::parallel::cores())?;
    Ok((rows, errors))
}

/// [`check_rows`] on at most `threads` threads (the calling one when 1), also counting the rows
/// that are not blank.
pub fn check_rows_on(table: &Table, target: ImportTarget, threads: usize) -> Result<CheckedFile> {
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
    let at = Positions::of(&cols);
    let per_thread = table.rows.len().div_ceil(threads.max(1)).max(CHECK_CHUNK);
    let pieces: Vec<(usize, &[Vec<String>])> = table.rows.chunks(per_thread).enumerate().collect();
    let parsed: Vec<ParsedRow> = in_parallel("checking import rows", pieces, |(n, chunk)| {
        Ok(parse_rows(chunk, n * per_thread, &at))
    })?
    .into_iter()
    .flatten()
    .collect();
    // Duplicates inside the file, in file order: the first row with a value keeps it, every
    // later one is refused naming it. The three identifiers are looked at side by side, then
    // their refusals put back in file order (and, within a row, ICCID, IMSI, MSISDN).
    let fields = (0..DUPLICATE_FIELDS.len()).collect::<Vec<_>>();
    let per_field = if threads > 1 && parsed.len() > CHECK_CHUNK {
        in_parallel("checking import rows", fields, |f| Ok(duplicates_of(&parsed, f)))?
    } else {
        fields.into_iter().map(|f| duplicates_of(&parsed, f)).collect()
    };
    let mut duplicates: Vec<(usize, usize, RowError)> = per_field.into_iter().flatten().collect();
    duplicates.sort_by_key(|(k, f, _)| (*k, *f));
    let duplicates: Vec<(usize, RowError)> = duplicates.into_iter().map(|(k, _, e)| (k, e)).collect();
    let non_blank = parsed.len();
    let mut ok = Vec::with_capacity(parsed.len());
    let mut errors = Vec::new();
    let mut duplicates = duplicates.into_iter().peekable();
    for (k, p) in parsed.into_iter().enumerate() {
        let mut failed = !p.errors.is_empty();
        errors.extend(p.errors);
        while let Some((_, e)) = duplicates.next_if(|(d, _)| *d == k) {
            errors.push(e);
            failed = true;
        }
        if failed {
            continue;
        }
        if let (Some(iccid), Some(imsi), Some(msisdn), Some(rest)) = (p.iccid, p.imsi, p.msisdn, p.rest) {
            let mut sim = NewSim::basic(target.tenant_id, iccid, imsi);
            sim.customer_id = target.customer_id;
            sim.msisdn = msisdn;
            sim.sim_type = rest.sim_type;
            sim.tariff_plan = rest.tariff;
            sim.activation_code = rest.activation;
            sim.labels = rest.labels;
            sim.state = SimState::Inventory;
            ok.push(CheckedRow {
                line: p.line,
                sim,
                pin: rest.pin,
                puk: rest.puk,
            });
        }
    }
    Ok((ok, errors, non_blank))
}

/// The identifiers that must be unique inside a file.
const DUPLICATE_FIELDS: [&str; 3] = ["iccid", "imsi", "msisdn"];

/// The rows (their position in `parsed`, the field's position in [`DUPLICATE_FIELDS`] and the
/// refusal) whose value of field `f` an earlier row has.
fn duplicates_of<'a>(parsed: &'a [ParsedRow], f: usize) -> Vec<(usize, usize, RowError)> {
    let value = |p: &'a ParsedRow| -> Option<&'a str> {
        match f {
            0 => p.iccid.as_ref().map(Iccid::as_str),
            1 => p.imsi.as_ref().map(Imsi::as_str),
            _ => p.msisdn.as_ref().and_then(Option::as_ref).map(Msisdn::as_str),
        }
    };
    let mut seen: HashMap<&'a str, usize> = HashMap::with_capacity(parsed.len());
    let mut out = Vec::new();
    for (k, p) in parsed.iter().enumerate() {
        let Some(v) = value(p) else { continue };
        match seen.entry(v) {
            std::collections::hash_map::Entry::Occupied(first) => out.push((
                k,
                f,
                RowError {
                    row: p.line,
                    field: DUPLICATE_FIELDS[f].to_owned(),
                    value: v.to_owned(),
                    reason: format!("duplicate in file: already on row {}", first.get()),
                },
            )),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(p.line);
            }
        }
    }
    out
}

/// Where each known column is in the file.
struct Positions([Option<usize>; IMPORT_COLUMNS.len()]);

impl Positions {
    fn of(cols: &HashMap<&'static str, usize>) -> Self {
        Self(IMPORT_COLUMNS.map(|name| cols.get(name).copied()))
    }

    /// The trimmed cells of `cells` in the order of [`IMPORT_COLUMNS`] ("" for a column the file
    /// does not have).
    fn cells<'a>(&self, cells: &'a [String]) -> [&'a str; IMPORT_COLUMNS.len()] {
        self.0
            .map(|c| c.and_then(|c| cells.get(c)).map_or("", |s| s.trim()))
    }
}

/// One row's fields checked on their own, before duplicates are looked for.
struct ParsedRow {
    line: usize,
    errors: Vec<RowError>,
    iccid: Option<Iccid>,
    imsi: Option<Imsi>,
    /// `Some(None)`: no MSISDN; `None`: a bad one.
    msisdn: Option<Option<Msisdn>>,
    /// The other fields, when all of them are good.
    rest: Option<RowRest>,
}

struct RowRest {
    sim_type: SimType,
    pin: Option<String>,
    puk: Option<String>,
    tariff: Option<String>,
    activation: Option<String>,
    labels: super::labels::Labels,
}

/// Checks the fields of `rows`, the first of which is row `first` of the table (blank rows are
/// left out).
fn parse_rows(rows: &[Vec<String>], first: usize, at: &Positions) -> Vec<ParsedRow> {
    rows.iter()
        .enumerate()
        .filter(|(_, cells)| cells.iter().any(|c| !c.trim().is_empty()))
        .map(|(i, cells)| parse_row(cells, first + i + 2, at))
        .collect()
}

fn parse_row(cells: &[String], line: usize, at: &Positions) -> ParsedRow {
    // In the order of IMPORT_COLUMNS.
    let [iccid, imsi, msisdn, pin, puk, sim_type, tariff, activation, labels] = at.cells(cells);
    let mut errors = Vec::new();
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
    let iccid = match iccid {
        "" => {
            fail("iccid", "", Error::invalid("iccid", "is required"));
            None
        }
        v => Iccid::parse(v).map_err(|e| fail("iccid", v, e)).ok(),
    };
    let imsi = match imsi {
        "" => {
            fail("imsi", "", Error::invalid("imsi", "is required"));
            None
        }
        v => Imsi::parse(v).map_err(|e| fail("imsi", v, e)).ok(),
    };
    let msisdn = match msisdn {
        "" => Some(None),
        v => Msisdn::parse(v).map(Some).map_err(|e| fail("msisdn", v, e)).ok(),
    };
    let sim_type = match sim_type {
        "" => Some(SimType::default()),
        v => SimType::parse(v).map_err(|e| fail("type", v, e)).ok(),
    };
    let pin = match pin {
        "" => Some(None),
        v => parse_pin(v, "pin", 4..=8)
            .map(Some)
            .map_err(|e| fail("pin", v, e))
            .ok(),
    };
    let puk = match puk {
        "" => Some(None),
        v => parse_pin(v, "puk", 8..=8)
            .map(Some)
            .map_err(|e| fail("puk", v, e))
            .ok(),
    };
    let tariff = match tariff {
        "" => Some(None),
        v => parse_tariff_plan(v)
            .map(Some)
            .map_err(|e| fail("tariff_plan", v, e))
            .ok(),
    };
    let activation = match activation {
        "" => Some(None),
        v => parse_activation_code(v)
            .map(Some)
            .map_err(|e| fail("activation_code", v, e))
            .ok(),
    };
    let labels = match labels {
        "" => Some(super::labels::Labels::new()),
        v => parse_label_list(v).map_err(|e| fail("labels", v, e)).ok(),
    };
    let rest = match (sim_type, pin, puk, tariff, activation, labels) {
        (Some(sim_type), Some(pin), Some(puk), Some(tariff), Some(activation), Some(labels)) => {
            Some(RowRest {
                sim_type,
                pin,
                puk,
                tariff,
                activation,
                labels,
            })
        }
        _ => None,
    };
    ParsedRow {
        line,
        errors,
        iccid,
        imsi,
        msisdn,
        rest,
    }
}

/// A file read and checked: the rows to create, the bad rows, and how many rows were not empty.
pub type CheckedFile = (Vec<CheckedRow>, Vec<RowError>, usize);

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

/// Rows sealed by one thread: fewer are sealed on the calling thread alone.
const SEAL_CHUNK: usize = 4_096;

/// Seals PIN and PUK of checked rows in place: each clear value moves from the row into its SIM,
/// sealed, so nothing is copied and a row already sealed (an import retried after a conflict)
/// keeps its sealed values. Large files are sealed on every core, each thread drawing the nonces
/// of its rows in one read of the system's random source.
pub fn seal_rows(rows: &mut [CheckedRow], cipher: &SecretCipher) -> Result<()> {
    seal_rows_on(rows, cipher, crate::parallel::cores())
}

/// [`seal_rows`] on at most `threads` threads (the calling one when 1).
pub fn seal_rows_on(rows: &mut [CheckedRow], cipher: &SecretCipher, threads: usize) -> Result<()> {
    let per_thread = rows.len().div_ceil(threads.max(1)).max(SEAL_CHUNK);
    let pieces: Vec<&mut [CheckedRow]> = rows.chunks_mut(per_thread).collect();
    in_parallel("sealing PINs and PUKs", pieces, |chunk| seal_chunk(chunk, cipher))?;
    Ok(())
}

fn seal_chunk(rows: &mut [CheckedRow], cipher: &SecretCipher) -> Result<()> {
    let count = rows
        .iter()
        .map(|r| usize::from(r.pin.is_some()) + usize::from(r.puk.is_some()))
        .sum();
    if count == 0 {
        return Ok(());
    }
    let mut nonces = super::secret::nonces(count)?;
    for r in rows {
        if let Some(pin) = r.pin.take() {
            r.sim.pin = Some(cipher.seal_with(&mut nonces, r.sim.iccid.as_str(), "pin", &pin)?);
        }
        if let Some(puk) = r.puk.take() {
            r.sim.puk = Some(cipher.seal_with(&mut nonces, r.sim.iccid.as_str(), "puk", &puk)?);
        }
    }
    Ok(())
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
    fn a_large_file_is_sealed_on_several_threads_each_secret_bound_to_its_own_sim() {
        let cipher = SecretCipher::from_base64(&SecretCipher::generate_key()).unwrap();
        let tenant = TenantId::new();
        for threads in [1, 2, 3, 8] {
            // More rows than one thread seals, some without a PIN or PUK.
            let mut rows: Vec<CheckedRow> = (0..3 * SEAL_CHUNK as u32)
                .map(|n| CheckedRow {
                    line: n as usize + 2,
                    sim: NewSim::basic(
                        tenant,
                        Iccid::parse(&iccid(n)).unwrap(),
                        Imsi::parse(&format!("26201{n:010}")).unwrap(),
                    ),
                    pin: (n % 5 != 0).then(|| format!("{:04}", n % 10_000)),
                    puk: (n % 7 != 0).then(|| format!("{:08}", n)),
                })
                .collect();
            seal_rows_on(&mut rows, &cipher, threads).unwrap();
            let mut nonces = std::collections::HashSet::new();
            for (n, r) in rows.iter().enumerate() {
                let n = n as u32;
                assert!(
                    r.pin.is_none() && r.puk.is_none(),
                    "row {n} kept a secret in clear"
                );
                let open = |field, sealed: &Option<crate::fleet::secret::Sealed>| {
                    sealed
                        .as_ref()
                        .map(|p| cipher.open(r.sim.iccid.as_str(), field, p).unwrap())
                };
                assert_eq!(
                    open("pin", &r.sim.pin),
                    (n % 5 != 0).then(|| format!("{:04}", n % 10_000))
                );
                assert_eq!(open("puk", &r.sim.puk), (n % 7 != 0).then(|| format!("{:08}", n)));
                // No nonce serves two secrets, within a thread's rows or across them.
                for sealed in [&r.sim.pin, &r.sim.puk].into_iter().flatten() {
                    assert!(
                        nonces.insert(crate::fleet::secret::tests::nonce_of(sealed)),
                        "{threads} threads, row {n}: a nonce repeats"
                    );
                }
            }
            // Bound to its SIM: a value moved onto another SIM does not open.
            let moved = rows[1].sim.pin.clone().unwrap();
            assert!(cipher.open(rows[2].sim.iccid.as_str(), "pin", &moved).is_err());
            // Sealing again (an import retried after a conflict) keeps what was sealed.
            let before: Vec<_> = rows.iter().map(|r| r.sim.pin.clone()).collect();
            seal_rows_on(&mut rows, &cipher, threads).unwrap();
            assert!(rows.iter().zip(&before).all(|(r, b)| &r.sim.pin == b));
        }
    }

    #[test]
    fn a_large_file_checked_on_several_threads_reports_what_one_pass_in_file_order_would() {
        // Three threads' worth of rows; the second half repeats the first half's ICCIDs, so
        // duplicates cross from one thread's rows into another's; every 50th row repeats an
        // earlier row's IMSI and MSISDN too (three duplicates in one row). Some rows are blank,
        // some have a bad IMSI.
        let n = 3 * CHECK_CHUNK + 7;
        let distinct = 2 * CHECK_CHUNK;
        let blank = |i: usize| i % 1000 == 999;
        let imsi_of = |i: usize| if i % 50 == 49 { i - 10 } else { i };
        let t = Table {
            header: ["iccid", "imsi", "msisdn"].map(String::from).to_vec(),
            rows: (0..n)
                .map(|i| {
                    if blank(i) {
                        vec![String::new(), " ".into(), String::new()]
                    } else {
                        vec![
                            iccid((i % distinct) as u32),
                            if i % 777 == 0 {
                                "12".into()
                            } else {
                                format!("26201{:010}", imsi_of(i))
                            },
                            format!("+49151{:08}", imsi_of(i)),
                        ]
                    }
                })
                .collect(),
        };
        // What a pass from the first row to the last reports: a row's own field errors, then
        // its duplicates (ICCID, IMSI, MSISDN), naming the first row with the value.
        let mut first: [HashMap<String, usize>; 3] = Default::default();
        let mut expected = Vec::new();
        let mut good = Vec::new();
        for (i, cells) in t.rows.iter().enumerate().filter(|(i, _)| !blank(*i)) {
            let line = i + 2;
            let before = expected.len();
            let bad_imsi = cells[1] == "12";
            if bad_imsi {
                expected.push((line, "imsi".to_owned(), String::new()));
            }
            for (f, field) in ["iccid", "imsi", "msisdn"].into_iter().enumerate() {
                if f == 1 && bad_imsi {
                    continue;
                }
                match first[f].get(&cells[f]) {
                    Some(at) => expected.push((
                        line,
                        field.to_owned(),
                        format!("duplicate in file: already on row {at}"),
                    )),
                    None => {
                        first[f].insert(cells[f].clone(), line);
                    }
                }
            }
            if expected.len() == before {
                good.push(line);
            }
        }
        assert!(
            expected.iter().any(|e| e.1 == "msisdn")
                && expected.iter().any(|e| e.1 == "imsi" && !e.2.is_empty())
        );
        let target = ImportTarget {
            tenant_id: TenantId::new(),
            customer_id: None,
        };
        for threads in [1, 2, 3, 8] {
            let (ok, errors, non_blank) = check_rows_on(&t, target, threads).unwrap();
            assert_eq!(
                non_blank,
                (0..n).filter(|i| !blank(*i)).count(),
                "{threads} threads"
            );
            let reported: Vec<(usize, String, String)> = errors
                .iter()
                .map(|e| {
                    let reason = if e.reason.starts_with("duplicate") {
                        e.reason.clone()
                    } else {
                        String::new()
                    };
                    (e.row, e.field.clone(), reason)
                })
                .collect();
            assert_eq!(reported.len(), expected.len(), "{threads} threads");
            assert_eq!(reported, expected, "{threads} threads");
            assert_eq!(
                ok.iter().map(|r| r.line).collect::<Vec<_>>(),
                good,
                "{threads} threads"
            );
            assert!(ok
                .iter()
                .all(|r| r.sim.imsi.as_str() == format!("26201{:010}", imsi_of(r.line - 2))));
        }
    }

    #[test]
    fn a_checked_row_never_prints_its_pin_or_puk() {
        let row = CheckedRow {
            line: 2,
            sim: NewSim::basic(
                TenantId::new(),
                Iccid::parse(&iccid(1)).unwrap(),
                Imsi::parse("262011234567890").unwrap(),
            ),
            pin: Some("4711".into()),
            puk: Some("93418765".into()),
        };
        let printed = format!("{row:?}");
        assert!(
            !printed.contains("4711") && !printed.contains("93418765"),
            "{printed}"
        );
        assert!(printed.contains("262011234567890"), "{printed}");
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
