//! Data quotas set from a file: one rule per row, every row checked before anything is written.
//!
//! ```text
//! iccid,limit,stages,action,resume_next_period
//! 8949000000000000018,1.5 GB,80;90;95,NOTIFY,
//! 8949000000000000026,500 MiB,,SUSPEND,yes
//! 8949000000000000034,,,REMOVE,
//! ```
//!
//! The file is read into a [`Table`] by a table reader (a port); [`check_quota_table`] turns it
//! into rules to set or remove and per-row errors, each naming its line (the header is line 1),
//! its column, the value and what is allowed. A row's rule is checked with the same rules as
//! every quota ([`QuotaRule::check`]). Whether each ICCID is a SIM the caller manages is looked
//! up by the caller afterwards ([`QuotaFile::mark_unknown`]).

use std::collections::HashMap;

use crate::fleet::bulk::{group_digits, parse_file_iccid, MAX_BULK_ROWS};
use crate::fleet::import::Table;
use crate::identifiers::Iccid;
use crate::quota::{QuotaAction, QuotaRule, MAX_LIMIT_BYTES};
use crate::{Error, Result};

/// The columns a quota file understands, in the order the checks name them; other columns are
/// ignored (a list exported from elsewhere may carry them).
pub const QUOTA_IMPORT_COLUMNS: [&str; 5] = ["iccid", "limit", "stages", "action", "resume_next_period"];
/// The columns a quota file must have.
pub const REQUIRED_QUOTA_COLUMNS: [&str; 2] = ["iccid", "limit"];
/// The warning stages of a row whose `stages` cell is empty (as the API's default).
pub const DEFAULT_STAGES: [u8; 2] = [80, 90];
/// A value longer than this is cut short when a row error repeats it.
pub const MAX_ERROR_VALUE_CHARS: usize = 100;
/// What a row is told whose ICCID is not a SIM the caller manages in the tenant: the same words
/// whether the SIM does not exist, is another tenant's or is not visible to the caller.
pub const NO_SUCH_SIM: &str = "no such SIM in this tenant";

/// How a limit may be written, for the messages that refuse one.
const LIMIT_HELP: &str =
    "give bytes as a whole number (1500000000) or a number with a unit (1.5 GB, 500 MiB); \
units B, KB, MB, GB, TB count in 1000s, KiB, MiB, GiB, TiB in 1024s";

/// What a row does to its SIM's quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaChange {
    /// Sets this rule on the SIM, replacing the quota it had and overriding its defaults.
    Set(QuotaRule),
    /// Removes the quota set on the SIM (a quota it follows from a default stays).
    Remove,
}

/// A row without errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRow {
    /// Line in the file, counting the header as line 1.
    pub line: usize,
    pub iccid: Iccid,
    pub change: QuotaChange,
}

/// What is wrong with one cell of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRowError {
    /// Line in the file, counting the header as line 1 (what a spreadsheet shows).
    pub line: usize,
    /// The column at fault, as [`QUOTA_IMPORT_COLUMNS`] names it.
    pub column: String,
    /// The cell as given, cut to [`MAX_ERROR_VALUE_CHARS`] characters.
    pub value: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl QuotaRowError {
    pub fn new(line: usize, column: &str, value: &str, message: impl Into<String>) -> Self {
        Self {
            line,
            column: column.to_owned(),
            value: shorten(value),
            message: message.into(),
        }
    }

    /// A row whose ICCID is not a SIM the caller manages in the tenant.
    pub fn no_such_sim(line: usize, iccid: &Iccid) -> Self {
        Self::new(line, "iccid", iccid.as_str(), NO_SUCH_SIM)
    }
}

/// A quota file checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuotaFile {
    /// Data rows (blank lines not counted).
    pub rows: usize,
    /// The rows without errors, in file order.
    pub good: Vec<QuotaRow>,
    /// Rows with at least one error.
    pub invalid: usize,
    /// What is wrong with those rows, in file order (a row may have several).
    pub errors: Vec<QuotaRowError>,
    /// What is wrong with the file as a whole (its header, or no rows at all): when there is
    /// anything, no row is checked and nothing can be written.
    pub file_errors: Vec<String>,
}

impl QuotaFile {
    /// Moves the good rows whose ICCID `known` does not hold into the errors, as
    /// [`NO_SUCH_SIM`], keeping the errors in file order.
    pub fn mark_unknown(&mut self, known: impl Fn(&Iccid) -> bool) {
        let (kept, unknown): (Vec<QuotaRow>, Vec<QuotaRow>) = std::mem::take(&mut self.good)
            .into_iter()
            .partition(|r| known(&r.iccid));
        self.good = kept;
        if unknown.is_empty() {
            return;
        }
        self.invalid += unknown.len();
        self.errors.extend(
            unknown
                .iter()
                .map(|r| QuotaRowError::no_such_sim(r.line, &r.iccid)),
        );
        // Stable: a row's own errors keep their order.
        self.errors.sort_by_key(|e| e.line);
    }
}

/// `value` cut to [`MAX_ERROR_VALUE_CHARS`] characters.
fn shorten(value: &str) -> String {
    value.chars().take(MAX_ERROR_VALUE_CHARS).collect()
}

/// A header cell as a column name: trimmed (a byte-order mark too), lower case, spaces and `-`
/// as `_`.
fn column_name(header: &str) -> String {
    header
        .trim()
        .trim_start_matches('\u{feff}')
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '-'], "_")
}

/// The position of each of [`QUOTA_IMPORT_COLUMNS`] in the file, or what is wrong with the
/// header.
fn positions(header: &[String]) -> std::result::Result<[Option<usize>; 5], Vec<String>> {
    let allowed = format!(
        "allowed columns: {} ({} required)",
        QUOTA_IMPORT_COLUMNS.join(", "),
        REQUIRED_QUOTA_COLUMNS.join(" and ")
    );
    if header
        .iter()
        .all(|h| h.trim().trim_start_matches('\u{feff}').trim().is_empty())
    {
        return Err(vec![format!(
            "has no header: the first line must name the columns; {allowed}"
        )]);
    }
    let mut at = [None; 5];
    let mut problems = Vec::new();
    for (i, h) in header.iter().enumerate() {
        let name = column_name(h);
        let Some(k) = QUOTA_IMPORT_COLUMNS.iter().position(|c| *c == name) else {
            continue;
        };
        if at[k].is_some() {
            problems.push(format!(
                "has the column '{}' twice; each column once",
                QUOTA_IMPORT_COLUMNS[k]
            ));
        } else {
            at[k] = Some(i);
        }
    }
    for required in REQUIRED_QUOTA_COLUMNS {
        let k = QUOTA_IMPORT_COLUMNS.iter().position(|c| *c == required);
        if k.and_then(|k| at[k]).is_none() {
            problems.push(format!("has no '{required}' column; {allowed}"));
        }
    }
    if problems.is_empty() {
        Ok(at)
    } else {
        Err(problems)
    }
}

/// The refusal of a file of `rows` data rows, past [`MAX_BULK_ROWS`].
pub fn too_many_quota_rows(rows: usize) -> Error {
    Error::invalid(
        "file",
        format!(
            "has {} rows; a quota file takes at most {} rows: split the file",
            group_digits(rows as u64),
            group_digits(MAX_BULK_ROWS as u64)
        ),
    )
}

/// Checks every row of a quota file: the header (a problem there is a file error and no row is
/// checked), each cell, and ICCIDs repeated in the file (the later row is refused, naming the
/// earlier line). More than [`MAX_BULK_ROWS`] data rows are refused as a whole.
pub fn check_quota_table(table: &Table) -> Result<QuotaFile> {
    let data: Vec<(usize, &Vec<String>)> = table
        .rows
        .iter()
        .enumerate()
        .filter(|(_, cells)| cells.iter().any(|c| !c.trim().is_empty()))
        .map(|(i, cells)| (i + 2, cells))
        .collect();
    if data.len() > MAX_BULK_ROWS {
        return Err(too_many_quota_rows(data.len()));
    }
    let mut file = QuotaFile {
        rows: data.len(),
        ..QuotaFile::default()
    };
    let at = match positions(&table.header) {
        Ok(at) => at,
        Err(problems) => {
            file.file_errors = problems;
            return Ok(file);
        }
    };
    if data.is_empty() {
        file.file_errors
            .push("has no rows after the header: one row per SIM".to_owned());
        return Ok(file);
    }
    let mut seen: HashMap<Iccid, usize> = HashMap::with_capacity(data.len());
    for (line, cells) in data {
        let cell = |k: usize| at[k].and_then(|c| cells.get(c)).map_or("", |s| s.trim());
        let (row, errors) = check_row(line, [cell(0), cell(1), cell(2), cell(3), cell(4)], &mut seen);
        match row {
            Some(r) if errors.is_empty() => file.good.push(r),
            _ => {
                file.invalid += 1;
                file.errors.extend(errors);
            }
        }
    }
    Ok(file)
}

/// Checks one row's cells (in the order of [`QUOTA_IMPORT_COLUMNS`]), remembering its ICCID in
/// `seen`. The row comes back when every cell is good.
fn check_row(
    line: usize,
    [iccid, limit, stages, action, resume]: [&str; 5],
    seen: &mut HashMap<Iccid, usize>,
) -> (Option<QuotaRow>, Vec<QuotaRowError>) {
    let mut errors = Vec::new();
    let mut fail = |column: &str, value: &str, message: String| {
        errors.push(QuotaRowError::new(line, column, value, message));
    };
    let iccid = match iccid {
        "" => {
            fail(
                "iccid",
                "",
                "is required: the SIM's ICCID (19 or 20 digits)".to_owned(),
            );
            None
        }
        v if v.chars().count() > MAX_ERROR_VALUE_CHARS => {
            fail(
                "iccid",
                v,
                format!(
                    "is {} characters long; an ICCID has 19 or 20 digits",
                    v.chars().count()
                ),
            );
            None
        }
        v => match parse_file_iccid(v) {
            Err(reason) => {
                fail("iccid", v, reason);
                None
            }
            Ok(parsed) => match seen.get(&parsed).copied() {
                Some(first) => {
                    fail(
                        "iccid",
                        v,
                        format!("ICCID {parsed} is already on line {first}: one row per SIM"),
                    );
                    None
                }
                None => {
                    seen.insert(parsed.clone(), line);
                    Some(parsed)
                }
            },
        },
    };
    // `None`: REMOVE.
    let action = match action.to_ascii_uppercase().as_str() {
        "" => Some(Some(QuotaAction::Notify)),
        "REMOVE" => Some(None),
        upper => match QuotaAction::parse(upper) {
            Ok(a) => Some(Some(a)),
            Err(_) => {
                fail(
                    "action",
                    action,
                    format!(
                        "'{}' is not an action; allowed: NOTIFY (the default), SUSPEND, REMOVE (removes the quota set on the SIM)",
                        shorten(action)
                    ),
                );
                None
            }
        },
    };
    let change = match action {
        // A REMOVE row needs no rule: its other cells are not looked at.
        Some(None) => Some(QuotaChange::Remove),
        Some(Some(action)) => rule_of(limit, stages, action, resume, &mut fail).map(QuotaChange::Set),
        None => {
            // The action is bad; the rule's own cells are still checked, so every mistake of the
            // row is told at once.
            let _ = rule_of(limit, stages, QuotaAction::Notify, "", &mut fail);
            None
        }
    };
    let row = match (iccid, change) {
        (Some(iccid), Some(change)) => Some(QuotaRow { line, iccid, change }),
        _ => None,
    };
    (row, errors)
}

/// The rule of a row's cells, each checked on its own with [`QuotaRule::check`] (so a row with
/// several bad cells is told of each), or `None` after `fail` was told what is wrong.
fn rule_of(
    limit: &str,
    stages: &str,
    action: QuotaAction,
    resume: &str,
    fail: &mut impl FnMut(&str, &str, String),
) -> Option<QuotaRule> {
    // A rule good in every part but the one looked at.
    let base = QuotaRule {
        limit_bytes: 1,
        stages: Vec::new(),
        action: QuotaAction::Notify,
        resume_next_period: false,
    };
    let limit_bytes = match limit {
        "" => {
            fail(
                "limit",
                "",
                format!("is required (unless the action is REMOVE): {LIMIT_HELP}"),
            );
            None
        }
        v => match parse_limit(v).and_then(|bytes| {
            checked(QuotaRule {
                limit_bytes: bytes,
                ..base.clone()
            })
        }) {
            Ok(r) => Some(r.limit_bytes),
            Err(message) => {
                fail("limit", v, message);
                None
            }
        },
    };
    let stage_list = match parse_stages(stages).and_then(|list| {
        checked(QuotaRule {
            stages: list,
            ..base.clone()
        })
    }) {
        Ok(r) => Some(r.stages),
        Err(message) => {
            fail("stages", stages, message);
            None
        }
    };
    let resume_next_period = match parse_flag(resume).and_then(|flag| {
        checked(QuotaRule {
            action,
            resume_next_period: flag,
            ..base
        })
    }) {
        Ok(r) => Some(r.resume_next_period),
        Err(message) => {
            fail("resume_next_period", resume, message);
            None
        }
    };
    let rule = QuotaRule {
        limit_bytes: limit_bytes?,
        stages: stage_list?,
        action,
        resume_next_period: resume_next_period?,
    };
    // Each part passed on its own; the whole is checked too, should a rule ever relate them.
    match rule.check() {
        Ok(()) => Some(rule),
        Err(e) => {
            let (column, message) = column_and_message(e);
            let value = match column {
                "limit" => limit,
                "stages" => stages,
                "resume_next_period" => resume,
                _ => "",
            };
            fail(column, value, message);
            None
        }
    }
}

/// `rule` when [`QuotaRule::check`] takes it, else what it says.
fn checked(rule: QuotaRule) -> std::result::Result<QuotaRule, String> {
    match rule.check() {
        Ok(()) => Ok(rule),
        Err(e) => Err(column_and_message(e).1),
    }
}

/// The file column of a [`QuotaRule::check`] refusal, and what it says.
fn column_and_message(e: Error) -> (&'static str, String) {
    match e {
        Error::InvalidInput { field, reason } => {
            let column = match field.as_str() {
                "limitBytes" => "limit",
                "stages" => "stages",
                "action" => "action",
                "resumeNextPeriod" => "resume_next_period",
                _ => "limit",
            };
            (column, reason)
        }
        other => ("limit", other.to_string()),
    }
}

/// A limit as a file gives it: bytes as a whole number (`1500000000`, also as a spreadsheet
/// writes a number: `1.5E9`), or a number with a unit (`1.5 GB`, `500MiB`; B, KB, MB, GB, TB
/// count in 1000s, KiB, MiB, GiB, TiB in 1024s; any case, a space allowed before the unit). A
/// decimal number is allowed when it makes a whole number of bytes. Whether the limit is within
/// what a quota allows is [`QuotaRule::check`]'s to say; numbers past `u64` are refused here.
pub fn parse_limit(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let shown = shorten(t);
    if t.starts_with('-') {
        return Err(format!("'{shown}' is negative; {LIMIT_HELP}"));
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    let bytes = t.as_bytes();
    let digits_from = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    // Only ASCII is stepped over: every index below is a character boundary.
    let mut i = digits_from(0);
    let int = &t[..i];
    let mut frac = "";
    if i < bytes.len() && bytes[i] == b'.' {
        let end = digits_from(i + 1);
        frac = &t[i + 1..end];
        i = end;
    }
    if int.is_empty() && frac.is_empty() {
        return Err(format!("'{shown}' is not a limit; {LIMIT_HELP}"));
    }
    let too_large =
        || format!("'{shown}' is too large: a limit must be between 1 and {MAX_LIMIT_BYTES} bytes (1 PiB)");
    let not_whole =
        || format!("'{shown}' is not a whole number of bytes; give fewer decimals or a smaller unit");
    let mut exponent: i64 = 0;
    if i < bytes.len() && matches!(bytes[i], b'e' | b'E') {
        let mut j = i + 1;
        let negative = j < bytes.len() && bytes[j] == b'-';
        if j < bytes.len() && matches!(bytes[j], b'+' | b'-') {
            j += 1;
        }
        let end = digits_from(j);
        if end > j {
            if end - j > 4 {
                return Err(if negative { not_whole() } else { too_large() });
            }
            let e: i64 = t[j..end].parse().map_err(|_| too_large())?;
            exponent = if negative { -e } else { e };
            i = end;
        }
    }
    let unit = t[i..].trim();
    let multiplier: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "'{shown}': '{}' is not a unit; {LIMIT_HELP}",
                shorten(unit)
            ))
        }
    };
    // The number as whole digits and a power of ten to divide by.
    let all = format!("{int}{frac}");
    let significant = all.trim_start_matches('0');
    if significant.is_empty() {
        return Ok(0);
    }
    let mantissa = significant.trim_end_matches('0');
    let scale = frac.len() as i64 - exponent - (significant.len() - mantissa.len()) as i64;
    if mantissa.len() > 38 {
        return Err(too_large());
    }
    let mantissa: u128 = mantissa.parse().map_err(|_| too_large())?;
    let mut n = mantissa.checked_mul(multiplier).ok_or_else(too_large)?;
    if scale > 0 {
        // n < 10^39: a larger power of ten never divides it.
        let power = u32::try_from(scale)
            .ok()
            .filter(|p| *p <= 38)
            .ok_or_else(not_whole)?;
        let divisor = 10u128.pow(power);
        if n % divisor != 0 {
            return Err(not_whole());
        }
        n /= divisor;
    } else if scale < 0 {
        let power = u32::try_from(-scale)
            .ok()
            .filter(|p| *p <= 38)
            .ok_or_else(too_large)?;
        n = n.checked_mul(10u128.pow(power)).ok_or_else(too_large)?;
    }
    u64::try_from(n).map_err(|_| too_large())
}

/// Warning stages as a file gives them: percentages separated by `;` (`80;90;95`, a `%` after
/// each allowed), `NONE` for no stages, empty for [`DEFAULT_STAGES`]. Their range and order are
/// [`QuotaRule::check`]'s to say.
pub fn parse_stages(text: &str) -> std::result::Result<Vec<u8>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(DEFAULT_STAGES.to_vec());
    }
    if t.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let help = "give whole percentages between 1 and 99 separated by ';' (80;90;95), NONE for no \
                warning stages, or leave the cell empty for 80;90";
    let pieces: Vec<&str> = t.split(';').map(str::trim).filter(|p| !p.is_empty()).collect();
    if pieces.is_empty() {
        return Err(format!("'{}' names no stage; {help}", shorten(t)));
    }
    pieces
        .into_iter()
        .map(|p| {
            let number = p.strip_suffix('%').unwrap_or(p).trim();
            number
                .parse::<u8>()
                .map_err(|_| format!("'{}' is not a percentage; {help}", shorten(p)))
        })
        .collect()
}

/// A yes-or-no cell: `true`, `yes`, `1` or `false`, `no`, `0` (any case); empty is `false`.
pub fn parse_flag(text: &str) -> std::result::Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "0" => Ok(false),
        "true" | "yes" | "1" => Ok(true),
        _ => Err(format!(
            "'{}' is not true or false; allowed: true, false, yes, no, 1, 0 (empty: false)",
            shorten(text.trim())
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifiers::luhn_check_digit;

    fn iccid(n: u32) -> String {
        let body = format!("8949000000{n:08}");
        format!("{body}{}", luhn_check_digit(&body).unwrap())
    }

    fn table(header: &[&str], rows: &[&[&str]]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
                .collect(),
        }
    }

    const HEADER: [&str; 5] = ["ICCID", " Limit ", "stages", "Action", "resume next period"];

    /// The errors of a one-row file of `limit`, `stages`, `action`, `resume`: (column, message).
    fn row_errors(limit: &str, stages: &str, action: &str, resume: &str) -> Vec<(String, String)> {
        let file =
            check_quota_table(&table(&HEADER, &[&[&iccid(1), limit, stages, action, resume]])).unwrap();
        assert!(file.file_errors.is_empty(), "{file:?}");
        file.errors
            .into_iter()
            .map(|e| {
                assert_eq!(e.line, 2);
                (e.column, e.message)
            })
            .collect()
    }

    fn rule_of_row(limit: &str, stages: &str, action: &str, resume: &str) -> QuotaRule {
        let file =
            check_quota_table(&table(&HEADER, &[&[&iccid(1), limit, stages, action, resume]])).unwrap();
        assert!(file.errors.is_empty(), "{:?}", file.errors);
        match &file.good[..] {
            [QuotaRow {
                change: QuotaChange::Set(rule),
                ..
            }] => rule.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_limit_is_bytes_or_a_number_with_a_decimal_or_binary_unit() {
        let cases: [(&str, u64); 16] = [
            ("1000", 1_000),
            ("  42 ", 42),
            ("10 B", 10),
            ("1 KB", 1_000),
            ("1kb", 1_000),
            ("5GB", 5_000_000_000),
            ("5 gb", 5_000_000_000),
            ("2 MB", 2_000_000),
            ("1 TB", 1_000_000_000_000),
            ("1 KiB", 1_024),
            ("1kib", 1_024),
            ("500 MiB", 500 << 20),
            ("2 GiB", 2 << 30),
            ("3 tib", 3 << 40),
            ("+7", 7),
            ("1 gIb", 1 << 30),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_limit(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn a_decimal_limit_is_taken_when_it_makes_whole_bytes() {
        let cases: [(&str, u64); 8] = [
            ("1.5 GB", 1_500_000_000),
            ("0.5 KiB", 512),
            ("1.25 KiB", 1_280),
            ("2.50 MB", 2_500_000),
            ("1.000", 1),
            (".5 KB", 500),
            ("1.5E9", 1_500_000_000),
            ("2e3 KB", 2_000_000),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_limit(text), Ok(bytes), "{text}");
        }
        for text in ["1.5 B", "1.0001 KB", "0.3 KiB", "1.5", "15e-1"] {
            let e = parse_limit(text).unwrap_err();
            assert!(e.contains("not a whole number of bytes"), "{text}: {e}");
        }
    }

    #[test]
    fn a_limit_with_a_bad_unit_or_no_number_says_how_to_write_one() {
        for text in ["5 GBs", "5 XB", "5 PiB", "five GB", "1,5 GB", "GB", ".", "5 G B"] {
            let e = parse_limit(text).unwrap_err();
            assert!(e.contains("KiB, MiB, GiB, TiB"), "{text}: {e}");
        }
        let e = parse_limit("-5 GB").unwrap_err();
        assert!(e.contains("negative"), "{e}");
        let e = parse_limit("99999999999999999999999999 TB").unwrap_err();
        assert!(
            e.contains("too large") && e.contains(&MAX_LIMIT_BYTES.to_string()),
            "{e}"
        );
        let e = parse_limit("1e99999").unwrap_err();
        assert!(e.contains("too large"), "{e}");
        assert_eq!(parse_limit("0 GB"), Ok(0));
    }

    #[test]
    fn a_limit_is_checked_as_every_quota_is() {
        // Zero and past the largest limit: refused with QuotaRule::check's words, on the column.
        let past = (MAX_LIMIT_BYTES + 1).to_string();
        for limit in ["0", "0 MB", "1126 TB", past.as_str()] {
            let errors = row_errors(limit, "", "", "");
            assert_eq!(errors.len(), 1, "{limit}: {errors:?}");
            assert_eq!(errors[0].0, "limit");
            assert!(errors[0].1.contains("between 1 and"), "{errors:?}");
        }
        assert_eq!(rule_of_row("1024 TiB", "", "", "").limit_bytes, MAX_LIMIT_BYTES);
        let errors = row_errors("-1", "", "", "");
        assert!(errors[0].1.contains("negative"), "{errors:?}");
    }

    #[test]
    fn stages_are_percentages_separated_by_semicolons_checked_as_every_quota_is() {
        assert_eq!(rule_of_row("1 GB", "", "", "").stages, DEFAULT_STAGES.to_vec());
        assert_eq!(rule_of_row("1 GB", "80;90;95", "", "").stages, vec![80, 90, 95]);
        assert_eq!(rule_of_row("1 GB", " 50% ; 75 %;", "", "").stages, vec![50, 75]);
        assert_eq!(rule_of_row("1 GB", "none", "", "").stages, Vec::<u8>::new());
        let cases = [
            ("90;80", "ascending"),
            ("80;80", "ascending"),
            ("0;50", "between 1 and 99"),
            ("100", "between 1 and 99"),
            ("10;20;30;40;50;60", "at most 5"),
            ("eighty", "not a percentage"),
            ("80,90", "not a percentage"),
            ("300", "not a percentage"),
            (";", "names no stage"),
        ];
        for (stages, says) in cases {
            let errors = row_errors("1 GB", stages, "", "");
            assert_eq!(errors.len(), 1, "{stages}: {errors:?}");
            assert_eq!(errors[0].0, "stages", "{stages}");
            assert!(errors[0].1.contains(says), "{stages}: {errors:?}");
        }
    }

    #[test]
    fn an_action_and_its_resume_are_checked_as_every_quota_is() {
        let rule = rule_of_row("1 GB", "", "suspend", "YES");
        assert_eq!(
            (rule.action, rule.resume_next_period),
            (QuotaAction::Suspend, true)
        );
        let rule = rule_of_row("1 GB", "", "Notify", "0");
        assert_eq!(
            (rule.action, rule.resume_next_period),
            (QuotaAction::Notify, false)
        );
        assert_eq!(rule_of_row("1 GB", "", "", "").action, QuotaAction::Notify);
        let errors = row_errors("1 GB", "", "", "true");
        assert_eq!(errors[0].0, "resume_next_period");
        assert!(errors[0].1.contains("SUSPEND"), "{errors:?}");
        let errors = row_errors("1 GB", "", "SUSPEND", "maybe");
        assert_eq!(errors[0].0, "resume_next_period");
        assert!(errors[0].1.contains("true, false, yes, no, 1, 0"), "{errors:?}");
        let errors = row_errors("1 GB", "", "throttle", "");
        assert_eq!(errors[0].0, "action");
        assert!(
            errors[0].1.contains("NOTIFY (the default), SUSPEND, REMOVE"),
            "{errors:?}"
        );
    }

    #[test]
    fn every_bad_cell_of_a_row_is_told_at_once() {
        let errors = row_errors("lots", "90;80", "throttle", "");
        let columns: Vec<&str> = errors.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(columns, ["action", "limit", "stages"]);
    }

    #[test]
    fn a_remove_row_needs_no_limit() {
        let file = check_quota_table(&table(
            &HEADER,
            &[
                &[&iccid(1), "", "", "REMOVE", ""],
                &[&iccid(2), "junk", "junk", "remove", "junk"],
                &[&iccid(3), "", "", "SUSPEND", ""],
            ],
        ))
        .unwrap();
        let removed: Vec<(usize, &QuotaChange)> = file.good.iter().map(|r| (r.line, &r.change)).collect();
        assert_eq!(removed, [(2, &QuotaChange::Remove), (3, &QuotaChange::Remove)]);
        assert_eq!((file.rows, file.invalid), (3, 1));
        assert_eq!(file.errors[0].line, 4);
        assert_eq!(file.errors[0].column, "limit");
        assert!(file.errors[0].message.contains("unless the action is REMOVE"));
    }

    #[test]
    fn a_repeated_iccid_is_refused_on_the_later_row_naming_the_earlier_line() {
        let file = check_quota_table(&table(
            &["iccid", "limit"],
            &[
                &[&iccid(1), "1 GB"],
                &["", ""],
                &[&iccid(2), "1 GB"],
                &[&format!(" {} ", iccid(1)), "2 GB"],
            ],
        ))
        .unwrap();
        // The blank line is not a row, but lines still count it.
        assert_eq!((file.rows, file.good.len(), file.invalid), (3, 2, 1));
        let e = &file.errors[0];
        assert_eq!((e.line, e.column.as_str()), (5, "iccid"));
        assert!(e.message.contains("already on line 2"), "{e:?}");
    }

    #[test]
    fn a_bad_iccid_is_refused_saying_why_and_long_values_are_cut_short() {
        let mut bad_check = iccid(2);
        bad_check.pop();
        bad_check.push(if iccid(2).ends_with('0') { '1' } else { '0' });
        let long = "9".repeat(5_000);
        let file = check_quota_table(&table(
            &["iccid", "limit"],
            &[
                &[&bad_check, "1 GB"],
                &["8.94900000000000E+18", "1 GB"],
                &["", "1 GB"],
                &[&long, "1 GB"],
                &[&iccid(3), &long],
            ],
        ))
        .unwrap();
        let said: Vec<(usize, &str)> = file.errors.iter().map(|e| (e.line, e.column.as_str())).collect();
        assert_eq!(
            said,
            [
                (2, "iccid"),
                (3, "iccid"),
                (4, "iccid"),
                (5, "iccid"),
                (6, "limit")
            ]
        );
        assert!(file.errors[0].message.contains("Luhn"), "{:?}", file.errors[0]);
        assert!(
            file.errors[1].message.contains("scientific notation"),
            "{:?}",
            file.errors[1]
        );
        assert!(file.errors[2].message.contains("required"));
        for e in &file.errors[3..] {
            assert_eq!(e.value.chars().count(), MAX_ERROR_VALUE_CHARS);
            assert!(e.message.len() < 400, "{e:?}");
        }
    }

    #[test]
    fn a_header_without_a_required_column_is_one_file_error_naming_it() {
        let file = check_quota_table(&table(
            &["iccid", "limit_bytes", "notes"],
            &[&[&iccid(1), "1 GB", "x"]],
        ))
        .unwrap();
        assert_eq!(file.file_errors.len(), 1, "{file:?}");
        let e = &file.file_errors[0];
        assert!(e.contains("no 'limit' column"), "{e}");
        assert!(
            e.contains("iccid, limit, stages, action, resume_next_period"),
            "{e}"
        );
        assert!(file.good.is_empty() && file.errors.is_empty());
        let file = check_quota_table(&table(&["stages"], &[&["80"]])).unwrap();
        assert_eq!(file.file_errors.len(), 2, "{file:?}");
        let file =
            check_quota_table(&table(&["iccid", "LIMIT", "limit"], &[&[&iccid(1), "1", "2"]])).unwrap();
        assert!(file.file_errors[0].contains("'limit' twice"), "{file:?}");
        let file = check_quota_table(&table(&[""], &[])).unwrap();
        assert!(file.file_errors[0].contains("no header"), "{file:?}");
        let file = check_quota_table(&table(&["iccid", "limit"], &[])).unwrap();
        assert!(file.file_errors[0].contains("no rows"), "{file:?}");
    }

    #[test]
    fn unknown_columns_are_ignored_and_a_bom_is_not_part_of_a_name() {
        let file = check_quota_table(&table(
            &[
                "\u{feff}Iccid",
                "device name",
                "LIMIT",
                "Resume-Next-Period",
                "action",
            ],
            &[&[&iccid(1), "truck 7", "1 GB", "yes", "SUSPEND"]],
        ))
        .unwrap();
        assert!(file.errors.is_empty() && file.file_errors.is_empty(), "{file:?}");
        assert_eq!(file.good.len(), 1);
    }

    #[test]
    fn more_rows_than_a_bulk_file_takes_are_refused_as_a_whole() {
        let row = vec![iccid(1), "1 GB".to_owned()];
        let t = Table {
            header: vec!["iccid".into(), "limit".into()],
            rows: vec![row; MAX_BULK_ROWS + 1],
        };
        let e = check_quota_table(&t).unwrap_err().to_string();
        assert!(e.contains("100,001 rows") && e.contains("at most 100,000"), "{e}");
    }

    #[test]
    fn rows_of_unknown_sims_become_errors_in_file_order() {
        let mut file = check_quota_table(&table(
            &["iccid", "limit"],
            &[
                &[&iccid(1), "1 GB"],
                &[&iccid(2), "nothing"],
                &[&iccid(3), "1 GB"],
                &[&iccid(4), "1 GB"],
            ],
        ))
        .unwrap();
        let known = Iccid::parse(&iccid(4)).unwrap();
        file.mark_unknown(|i| *i == known);
        assert_eq!((file.good.len(), file.invalid), (1, 3));
        let said: Vec<(usize, &str)> = file.errors.iter().map(|e| (e.line, e.message.as_str())).collect();
        assert_eq!(said[0], (2, NO_SUCH_SIM));
        assert_eq!(said[1].0, 3);
        assert_eq!(said[2], (4, NO_SUCH_SIM));
    }
}
