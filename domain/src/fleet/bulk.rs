//! Bulk jobs: many SIM actions from a file or an API list, validated before anything runs,
//! confirmed, then executed row by row against the network in file order.
//!
//! A job's rows are checked here ([`check_lines`]) against the SIMs the tenant has; what the
//! network must do for each row comes from the SIM's current state and the row's action. The
//! outcome of every row is kept: `SUCCEEDED`, `FAILED` (the network refused or did not answer, or
//! the SIM moved on meanwhile), `SKIPPED` (nothing to do), `INVALID` (refused by validation).

mod check;

pub use check::{
    check_lines, parse_action, parse_file_iccid, plan, table_lines, target_state, too_many_rows, BulkLine,
    BulkRowError, CheckedLine, SimStateRow, ValidationReport,
};

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::fleet::network_action::NetworkAction;
use crate::{Error, Result, Role, SimId, TenantId, UserId};

/// Most rows one bulk job may hold.
pub const MAX_BULK_ROWS: usize = 100_000;
/// Largest file a bulk job accepts.
pub const MAX_BULK_FILE_BYTES: usize = 20 * 1024 * 1024;
/// Columns a bulk file understands: `iccid` (required) and `action` (one per row, unless the
/// whole file has one). Other columns are ignored (a list exported from elsewhere may carry them).
pub const BULK_COLUMNS: [&str; 2] = ["iccid", "action"];

/// Where a job's status stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BulkJobStatus {
    Validating,
    AwaitingConfirmation,
    Processing,
    Completed,
    CompletedWithErrors,
    Failed,
    Cancelled,
}

impl BulkJobStatus {
    pub const ALL: [BulkJobStatus; 7] = [
        Self::Validating,
        Self::AwaitingConfirmation,
        Self::Processing,
        Self::Completed,
        Self::CompletedWithErrors,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validating => "VALIDATING",
            Self::AwaitingConfirmation => "AWAITING_CONFIRMATION",
            Self::Processing => "PROCESSING",
            Self::Completed => "COMPLETED",
            Self::CompletedWithErrors => "COMPLETED_WITH_ERRORS",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| Error::invalid("status", format!("'{s}' is not a bulk job status")))
    }

    /// No more changes: completed (with or without errors), failed or cancelled.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::CompletedWithErrors | Self::Failed | Self::Cancelled
        )
    }
}

impl fmt::Display for BulkJobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a job came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BulkSource {
    /// An uploaded CSV or XLSX file.
    File,
    /// A list of ICCIDs (`provisionSims`).
    Api,
}

impl BulkSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "FILE",
            Self::Api => "API",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "FILE" => Ok(Self::File),
            "API" => Ok(Self::Api),
            _ => Err(Error::invalid(
                "source",
                format!("'{s}' is not a bulk job source"),
            )),
        }
    }
}

/// What became of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RowOutcome {
    /// Waiting to be sent.
    Pending,
    /// Sent to the network; its answer is not recorded yet (a worker died in between: the row is
    /// sent again with the same request id, which the network answers without acting twice).
    Sent,
    Succeeded,
    Failed,
    /// Nothing to do (the SIM was already in the asked state).
    Skipped,
    /// Refused by validation; never sent.
    Invalid,
}

impl RowOutcome {
    pub const ALL: [RowOutcome; 6] = [
        Self::Pending,
        Self::Sent,
        Self::Succeeded,
        Self::Failed,
        Self::Skipped,
        Self::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Sent => "SENT",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Skipped => "SKIPPED",
            Self::Invalid => "INVALID",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| Error::invalid("outcome", format!("'{s}' is not a row outcome")))
    }

    /// Whether the row still has to be sent.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Sent)
    }
}

/// A bulk job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkJob {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub source: BulkSource,
    pub file_name: Option<String>,
    /// The action of the whole file, when it has one (rows may name their own otherwise).
    pub action: Option<NetworkAction>,
    pub status: BulkJobStatus,
    /// Rows in the file (valid, invalid and already in state).
    pub total: u64,
    /// Rows to send.
    pub valid: u64,
    pub invalid: u64,
    pub already_in_state: u64,
    /// Rows to send that have an outcome.
    pub processed: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Rows that needed nothing when their turn came (already in state then), and the rows
    /// already in state at validation.
    pub skipped: u64,
    pub created_by: String,
    pub created_by_user: Option<UserId>,
    pub created_by_role: Role,
    pub confirmed_by: Option<String>,
    pub cancelled_by: Option<String>,
    pub note: Option<String>,
    /// Whether its end is notified (in the app, by e-mail, by webhooks): not for provisioning
    /// calls that waited for every outcome.
    pub notify: bool,
    /// Why the job failed as a whole, when it did.
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Last sign of life of the worker running it.
    pub heartbeat_at: Option<DateTime<Utc>>,
}

/// A job's row counts, as its list, its progress events and its GraphQL objects show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkCounts {
    pub total: u64,
    pub valid: u64,
    pub invalid: u64,
    pub already_in_state: u64,
    pub processed: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl BulkJob {
    pub fn counts(&self) -> BulkCounts {
        BulkCounts {
            total: self.total,
            valid: self.valid,
            invalid: self.invalid,
            already_in_state: self.already_in_state,
            processed: self.processed,
            succeeded: self.succeeded,
            failed: self.failed,
            skipped: self.skipped,
        }
    }

    /// Rows to send that have no outcome yet.
    pub fn remaining(&self) -> u64 {
        self.valid.saturating_sub(self.processed)
    }

    /// Time left at the pace so far; `None` before the first outcome or when nothing is left.
    pub fn eta(&self, now: DateTime<Utc>) -> Option<std::time::Duration> {
        let started = self.started_at?;
        if self.status != BulkJobStatus::Processing || self.processed == 0 || self.remaining() == 0 {
            return None;
        }
        let elapsed = (now - started).to_std().ok()?.as_secs_f64();
        let per_row = elapsed / self.processed as f64;
        Some(std::time::Duration::from_secs_f64(
            per_row * self.remaining() as f64,
        ))
    }

    /// The status a finished run ends in: `FAILED` when rows were sent and none succeeded,
    /// `COMPLETED_WITH_ERRORS` when any row failed or was invalid, `COMPLETED` otherwise.
    pub fn final_status(&self) -> BulkJobStatus {
        if self.valid > 0 && self.succeeded == 0 && self.failed > 0 {
            BulkJobStatus::Failed
        } else if self.failed > 0 || self.invalid > 0 {
            BulkJobStatus::CompletedWithErrors
        } else {
            BulkJobStatus::Completed
        }
    }

    fn action_words(&self) -> (&'static str, &'static str) {
        match self.action {
            Some(NetworkAction::Activate) => ("activate", "activated"),
            Some(NetworkAction::Suspend) => ("suspend", "suspended"),
            Some(NetworkAction::Resume) => ("resume", "resumed"),
            Some(NetworkAction::ReportLostStolen) => ("report lost or stolen", "reported lost or stolen"),
            Some(NetworkAction::Terminate) => ("terminate", "terminated"),
            Some(NetworkAction::LocationUpdate) => {
                ("update the location of", "asked to update their location")
            }
            None => ("change", "changed"),
        }
    }

    /// One plain-language sentence on where the job stands.
    pub fn summary(&self, now: DateTime<Utc>) -> String {
        let (verb, done) = self.action_words();
        let n = |v: u64| group_digits(v);
        let sims = |v: u64| if v == 1 { "SIM" } else { "SIMs" };
        let extras = || {
            let mut parts = Vec::new();
            if self.already_in_state > 0 {
                parts.push(format!("{} already in state", n(self.already_in_state)));
            }
            if self.invalid > 0 {
                parts.push(format!(
                    "{} invalid {} not run",
                    n(self.invalid),
                    if self.invalid == 1 { "row was" } else { "rows were" }
                ));
            }
            if parts.is_empty() {
                String::new()
            } else {
                format!("; {}", parts.join(", "))
            }
        };
        match self.status {
            BulkJobStatus::Validating => format!("Checking {} rows.", n(self.total)),
            BulkJobStatus::AwaitingConfirmation => format!(
                "Ready to {verb} {} {}{}; confirm to start or cancel.",
                n(self.valid),
                sims(self.valid),
                extras()
            ),
            BulkJobStatus::Processing if self.processed == 0 => format!(
                "Queued: {} {} to {verb}; starting as soon as the network has capacity.",
                n(self.valid),
                sims(self.valid)
            ),
            BulkJobStatus::Processing => {
                let eta = self
                    .eta(now)
                    .map(|d| format!(", about {} left", human_duration(d)))
                    .unwrap_or_default();
                format!(
                    "Working: {} of {} {} done ({} succeeded, {} failed){eta}.",
                    n(self.processed),
                    n(self.valid),
                    sims(self.valid),
                    n(self.succeeded),
                    n(self.failed)
                )
            }
            BulkJobStatus::Completed if self.valid == 0 => {
                format!("Nothing to do: every SIM was already in state{}.", extras())
            }
            BulkJobStatus::Completed => format!(
                "All {} {} were {done}{}.",
                n(self.succeeded),
                sims(self.succeeded),
                extras()
            ),
            BulkJobStatus::CompletedWithErrors => format!(
                "{} of {} {} were {done}; {} failed{} (see the rows for why).",
                n(self.succeeded),
                n(self.valid),
                sims(self.valid),
                n(self.failed),
                extras()
            ),
            BulkJobStatus::Failed => format!(
                "No SIM was {done}: {}.",
                self.failure.clone().unwrap_or_else(|| format!(
                    "all {} sent rows failed (see the rows for why)",
                    n(self.failed)
                ))
            ),
            BulkJobStatus::Cancelled if self.processed == 0 => format!(
                "Cancelled by {} before any SIM was sent.",
                self.cancelled_by.as_deref().unwrap_or("a user")
            ),
            BulkJobStatus::Cancelled => format!(
                "Cancelled by {} after {} of {} {} ({} succeeded, {} failed); the rest were not sent.",
                self.cancelled_by.as_deref().unwrap_or("a user"),
                n(self.processed),
                n(self.valid),
                sims(self.valid),
                n(self.succeeded),
                n(self.failed)
            ),
        }
    }
}

/// `12345678` as `12,345,678`.
pub fn group_digits(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{} s", s.max(1)),
        60..=3599 => format!("{} min", s.div_ceil(60)),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// One row of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRow {
    pub job_id: Uuid,
    /// Order of execution (0-based, file order).
    pub position: u64,
    /// Line in the file, counting the header as line 1 (for API lists: index + 1).
    pub line: u64,
    /// As written in the file (an invalid one too).
    pub iccid: String,
    pub sim_id: Option<SimId>,
    pub action: Option<NetworkAction>,
    pub outcome: RowOutcome,
    pub reason: Option<String>,
    /// The network request id the row is sent with (the same on every attempt).
    pub request_id: Uuid,
    /// The network's reference of the transaction, once confirmed.
    pub reference: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The result of sending one row, to record.
#[derive(Debug, Clone)]
pub struct RowResult {
    pub position: u64,
    pub outcome: RowOutcome,
    pub reason: Option<String>,
    pub reference: Option<String>,
    /// The SIM as it is to be written (state changed), with the version it was read at.
    pub sim: Option<super::Versioned<super::sim::Sim>>,
    /// Audit entries of the change (written only when the SIM write succeeds).
    pub audit: Vec<super::audit::NewAuditEntry>,
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::fleet::import::Table;
    use crate::fleet::sim::SimState;
    use crate::identifiers::Iccid;

    fn lines(rows: &[(&str, Option<&str>)]) -> Vec<BulkLine> {
        rows.iter()
            .enumerate()
            .map(|(i, (iccid, action))| BulkLine {
                line: i as u64 + 2,
                iccid: (*iccid).to_owned(),
                action: action.map(str::to_owned),
            })
            .collect()
    }

    fn iccid(n: u64) -> Iccid {
        Iccid::with_check_digit(&format!("894900000000{n:06}")).expect("iccid")
    }

    #[test]
    fn rows_are_checked_for_format_duplicates_presence_and_transition() {
        let a = iccid(1);
        let b = iccid(2);
        let c = iccid(3);
        let mut sims = HashMap::new();
        for (i, (iccid, state)) in [
            (&a, SimState::Inventory),
            (&b, SimState::Active),
            (&c, SimState::Terminated),
        ]
        .into_iter()
        .enumerate()
        {
            sims.insert(
                iccid.clone(),
                SimStateRow {
                    iccid: iccid.clone(),
                    id: SimId(Uuid::from_u128(i as u128)),
                    customer_id: None,
                    state,
                },
            );
        }
        let unknown = iccid(4);
        let checked = check_lines(
            &lines(&[
                (a.as_str(), None),
                (b.as_str(), None),
                (c.as_str(), None),
                (unknown.as_str(), None),
                (a.as_str(), None),
                ("8.94900000000001E+19", None),
                (iccid(5).as_str(), Some("explode")),
            ]),
            Some(NetworkAction::Activate),
            &sims,
        );
        let outcomes: Vec<_> = checked.iter().map(|c| c.outcome).collect();
        assert_eq!(
            outcomes,
            [
                RowOutcome::Pending,
                RowOutcome::Skipped,
                RowOutcome::Invalid,
                RowOutcome::Invalid,
                RowOutcome::Invalid,
                RowOutcome::Invalid,
                RowOutcome::Invalid
            ]
        );
        let reason = |i: usize| checked[i].reason.clone().unwrap_or_default();
        assert!(reason(2).contains("TERMINATED"), "{}", reason(2));
        assert!(reason(3).starts_with("NOT_FOUND"), "{}", reason(3));
        assert!(reason(4).contains("already on row 2"), "{}", reason(4));
        assert!(reason(5).contains("scientific notation"), "{}", reason(5));
        assert!(reason(6).contains("allowed: ACTIVATE"), "{}", reason(6));
        let report = ValidationReport::of(&checked);
        assert_eq!((report.valid, report.invalid, report.already_in_state), (1, 5, 1));
        assert_eq!(report.errors[0].row, 4);
    }

    #[test]
    fn an_iccid_that_lost_its_digits_is_named() {
        let e = parse_file_iccid("89490000000000000000").expect_err("lost digits");
        assert!(e.contains("spreadsheet"), "{e}");
    }

    #[test]
    fn a_file_without_iccid_column_is_refused() {
        let t = Table {
            header: vec!["imsi".into()],
            rows: vec![vec!["1".into()]],
        };
        let e = table_lines(&t).expect_err("no column");
        assert!(e.to_string().contains("no ICCID column"), "{e}");
    }

    #[test]
    fn summaries_say_where_the_job_stands() {
        let now = Utc::now();
        let mut job = BulkJob {
            id: Uuid::nil(),
            tenant_id: TenantId(Uuid::nil()),
            source: BulkSource::File,
            file_name: None,
            action: Some(NetworkAction::Suspend),
            status: BulkJobStatus::AwaitingConfirmation,
            total: 12_000,
            valid: 10_000,
            invalid: 2_000,
            already_in_state: 0,
            processed: 0,
            succeeded: 0,
            failed: 0,
            skipped: 0,
            created_by: "a".into(),
            created_by_user: None,
            created_by_role: Role::TenantAdmin,
            confirmed_by: None,
            cancelled_by: None,
            note: None,
            notify: true,
            failure: None,
            created_at: now,
            confirmed_at: None,
            started_at: Some(now - chrono::Duration::seconds(10)),
            finished_at: None,
            heartbeat_at: None,
        };
        assert_eq!(
            job.summary(now),
            "Ready to suspend 10,000 SIMs; 2,000 invalid rows were not run; confirm to start or cancel."
        );
        job.status = BulkJobStatus::Processing;
        job.processed = 5_000;
        job.succeeded = 4_990;
        job.failed = 10;
        assert_eq!(
            job.summary(now),
            "Working: 5,000 of 10,000 SIMs done (4,990 succeeded, 10 failed), about 10 s left."
        );
        job.processed = 10_000;
        job.succeeded = 9_990;
        job.status = job.final_status();
        assert_eq!(job.status, BulkJobStatus::CompletedWithErrors);
        assert!(job
            .summary(now)
            .starts_with("9,990 of 10,000 SIMs were suspended; 10 failed"));
    }
}
