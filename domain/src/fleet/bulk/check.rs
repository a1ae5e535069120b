//! A bulk file's rows and their checking: actions by name, what the network must do for a SIM in its state, the rows of a table, each line checked against the tenant's SIMs into a validation report.

use std::collections::HashMap;

use serde::Serialize;

use super::{group_digits, RowOutcome, BULK_COLUMNS, MAX_BULK_ROWS};
use crate::fleet::import::Table;
use crate::fleet::lifecycle::Lifecycle;
use crate::fleet::network_action::NetworkAction;
use crate::fleet::sim::SimState;
use crate::identifiers::Iccid;
use crate::{CustomerId, Error, Result, SimId};

/// Parses an action name (`ACTIVATE`, `suspend`, `lost-stolen`, …).
pub fn parse_action(s: &str, field: &str) -> Result<NetworkAction> {
    let wanted = s.trim().to_ascii_uppercase().replace(['-', ' '], "_");
    let wanted = match wanted.as_str() {
        "LOST_STOLEN" | "REPORT_LOST" | "LOST" => "REPORT_LOST_STOLEN",
        "TERMINATE_SIM" | "DEACTIVATE" => "TERMINATE",
        other => other,
    };
    NetworkAction::ALL
        .into_iter()
        .find(|a| a.as_str() == wanted)
        .ok_or_else(|| {
            Error::invalid(
                field,
                format!(
                    "'{}' is not an action; allowed: {}",
                    s.trim(),
                    NetworkAction::ALL.map(NetworkAction::as_str).join(", ")
                ),
            )
        })
}

/// The state an action leads to (`None` for a location update, which changes no state).
pub fn target_state(action: NetworkAction) -> Option<SimState> {
    match action {
        NetworkAction::Activate | NetworkAction::Resume => Some(SimState::Active),
        NetworkAction::Suspend => Some(SimState::Suspended),
        NetworkAction::ReportLostStolen => Some(SimState::LostStolen),
        NetworkAction::Terminate => Some(SimState::Terminated),
        NetworkAction::LocationUpdate => None,
    }
}

/// What a row asks of a SIM in `state`: `Ok(Some(to))` to move it, `Ok(None)` when it is there
/// already (or, for a location update, never), `Err` with the reason when the action does not
/// apply.
pub fn plan(action: NetworkAction, state: SimState) -> std::result::Result<Option<SimState>, String> {
    match action {
        NetworkAction::LocationUpdate => {
            if matches!(state, SimState::Active | SimState::Suspended) {
                Ok(None)
            } else {
                Err(format!(
                    "a location update needs an ACTIVE or SUSPENDED SIM; this one is {}",
                    state.as_str()
                ))
            }
        }
        NetworkAction::Resume if state != SimState::Suspended && state != SimState::Active => Err(format!(
            "RESUME applies to SUSPENDED SIMs; this one is {} (use ACTIVATE for a SIM in INVENTORY)",
            state.as_str()
        )),
        _ => {
            let Some(to) = target_state(action) else {
                return Ok(None);
            };
            if state == to {
                return Ok(None);
            }
            state.check(to).map(|()| Some(to)).map_err(|e| match e {
                Error::Conflict(m) => m,
                other => other.to_string(),
            })
        }
    }
}

/// A line of a bulk file or API list, before it is checked against the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkLine {
    pub line: u64,
    pub iccid: String,
    /// The row's own action, when the file has an `action` column.
    pub action: Option<String>,
}

/// The lines of a table: `iccid` column required (names case-insensitive, a UTF-8 BOM ignored),
/// `action` optional; blank lines left out.
pub fn table_lines(table: &Table) -> Result<Vec<BulkLine>> {
    let norm = |h: &str| {
        h.trim()
            .trim_start_matches('\u{feff}')
            .trim()
            .to_ascii_lowercase()
            .replace([' ', '-'], "_")
    };
    let find = |name: &str| table.header.iter().position(|h| norm(h) == name);
    let Some(iccid_col) = find("iccid") else {
        return Err(Error::invalid(
            "file",
            format!(
                "has no ICCID column; the first line must name the columns ({} found); expected: {}",
                if table.header.is_empty() {
                    "none".to_owned()
                } else {
                    table.header.join(", ")
                },
                BULK_COLUMNS.join(", ")
            ),
        ));
    };
    let action_col = find("action");
    if table.rows.len() > MAX_BULK_ROWS {
        return Err(too_many_rows(table.rows.len()));
    }
    let cell = |row: &[String], i: usize| row.get(i).map(|s| s.trim().to_owned()).unwrap_or_default();
    let lines: Vec<BulkLine> = table
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.iter().any(|c| !c.trim().is_empty()))
        .map(|(i, r)| BulkLine {
            line: i as u64 + 2,
            iccid: cell(r, iccid_col),
            action: action_col.map(|c| cell(r, c)).filter(|a| !a.is_empty()),
        })
        .collect();
    if lines.is_empty() {
        return Err(Error::invalid("file", "has no rows after the header"));
    }
    Ok(lines)
}

pub fn too_many_rows(n: usize) -> Error {
    Error::invalid(
        "file",
        format!(
            "has {} rows; a bulk job takes at most {}: split the file",
            group_digits(n as u64),
            group_digits(MAX_BULK_ROWS as u64)
        ),
    )
}

/// What validation knows of a SIM (the tenant's own; others' are never looked at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimStateRow {
    pub iccid: Iccid,
    pub id: SimId,
    pub customer_id: Option<CustomerId>,
    pub state: SimState,
}

/// A row refused by validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BulkRowError {
    pub row: u64,
    pub iccid: String,
    pub reason: String,
}

/// Parses an ICCID from a file, naming what a spreadsheet did to it when it turned it into a
/// number (scientific notation, or digits lost past the 15 a number keeps).
pub fn parse_file_iccid(text: &str) -> std::result::Result<Iccid, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("the ICCID is empty".into());
    }
    let looks_numeric = t
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if looks_numeric && (t.contains(['e', 'E']) || t.contains('.')) {
        return Err(format!(
            "'{t}' is a number a spreadsheet made of the ICCID (scientific notation): its last digits are lost; format the column as text and export the file again"
        ));
    }
    if t.len() >= 19 && t.chars().all(|c| c.is_ascii_digit()) && t.ends_with("00000") {
        if let Err(e) = Iccid::parse(t) {
            return Err(format!(
                "{}; it ends in zeros, as an ICCID does that a spreadsheet stored as a number (15 significant digits): format the column as text and export the file again",
                reason_of(&e)
            ));
        }
    }
    Iccid::parse(t).map_err(|e| reason_of(&e))
}

/// What is wrong, without the field name (a row's reason names the row, not a field).
fn reason_of(e: &Error) -> String {
    match e {
        Error::InvalidInput { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// A checked row: what will be stored for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedLine {
    pub line: u64,
    pub iccid: String,
    pub sim: Option<SimId>,
    pub action: Option<NetworkAction>,
    pub outcome: RowOutcome,
    pub reason: Option<String>,
}

/// Checks lines against the tenant's SIMs (`sims`: those of the ICCIDs that parsed, found in the
/// tenant; an ICCID of another tenant is as unknown as one that does not exist).
pub fn check_lines(
    lines: &[BulkLine],
    file_action: Option<NetworkAction>,
    sims: &HashMap<Iccid, SimStateRow>,
) -> Vec<CheckedLine> {
    let mut seen: HashMap<String, u64> = HashMap::new();
    lines
        .iter()
        .map(|l| {
            let mut row = CheckedLine {
                line: l.line,
                iccid: l.iccid.clone(),
                sim: None,
                action: None,
                outcome: RowOutcome::Invalid,
                reason: None,
            };
            let action = match (&l.action, file_action) {
                (Some(a), _) => parse_action(a, "action").map_err(|e| reason_of(&e)),
                (None, Some(a)) => Ok(a),
                (None, None) => Err("no action: give the row an action or the whole file one".into()),
            };
            let checked = parse_file_iccid(&l.iccid).and_then(|iccid| {
                if let Some(first) = seen.insert(iccid.to_string(), l.line) {
                    return Err(format!("ICCID {iccid} is already on row {first}"));
                }
                let action = action?;
                let sim = sims
                    .get(&iccid)
                    .ok_or_else(|| format!("NOT_FOUND: no SIM {iccid} in your inventory"))?;
                Ok((iccid, sim, action))
            });
            match checked {
                Err(reason) => row.reason = Some(reason),
                Ok((iccid, sim, action)) => {
                    row.iccid = iccid.to_string();
                    row.sim = Some(sim.id);
                    row.action = Some(action);
                    match plan(action, sim.state) {
                        Err(reason) => row.reason = Some(reason),
                        Ok(None) if action != NetworkAction::LocationUpdate => {
                            row.outcome = RowOutcome::Skipped;
                            row.reason = Some(format!("already {}", sim.state.as_str()));
                        }
                        Ok(_) => row.outcome = RowOutcome::Pending,
                    }
                }
            }
            row
        })
        .collect()
}

/// The validation report of a job.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationReport {
    pub valid: u64,
    pub invalid: u64,
    pub already_in_state: u64,
    pub errors: Vec<BulkRowError>,
}

impl ValidationReport {
    pub fn of(rows: &[CheckedLine]) -> Self {
        let mut r = Self::default();
        for row in rows {
            match row.outcome {
                RowOutcome::Invalid => {
                    r.invalid += 1;
                    r.errors.push(BulkRowError {
                        row: row.line,
                        iccid: row.iccid.clone(),
                        reason: row.reason.clone().unwrap_or_default(),
                    });
                }
                RowOutcome::Skipped => r.already_in_state += 1,
                _ => r.valid += 1,
            }
        }
        r
    }
}
