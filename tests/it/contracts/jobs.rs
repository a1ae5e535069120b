//! The `BulkJobStore` and `ExportJobStore` port contracts, on Postgres and SQLite.

use super::open;
use std::fmt::Debug;
use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use ioto_domain::directory::Tenant;
use ioto_domain::export::{ExportFormat, ExportJob, ExportKind, ExportStatus};
use ioto_domain::fleet::audit::{AuditQuery, EntityKind};
use ioto_domain::fleet::bulk::{
    BulkJob, BulkJobStatus, BulkRow, BulkSource, RowOutcome, RowResult, SimStateRow,
};
use ioto_domain::fleet::{AuditAction, AuditStamp, NetworkAction, NewAuditEntry, Sim, SimState};
use ioto_domain::ports::{
    AuditLog, BulkJobQuery, BulkJobStore, BulkRowQuery, BulkStatusChange, Changeset, ExportEnd,
    ExportJobQuery, ExportJobStore, ExportProgressUpdate, FleetChanges, Versioned,
};
use ioto_domain::{CustomerId, Error, Role, Scope, TenantId, UserId};
use ioto_store::{SqlFleet, StoreLocation};
use ioto_test_support::{pg, temp_dir, Factory};
use uuid::Uuid;

use BulkJobStatus::{AwaitingConfirmation, Cancelled, Completed, CompletedWithErrors, Processing};
use ExportStatus::{Expired, Queued, Running};
use RowOutcome::{Invalid, Pending, Sent, Skipped, Succeeded};
use SimState::{Active, Suspended};

/// Now, to the microsecond both engines keep: a time written is read back equal.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

/// `why` is what a user would notice when `r` is not a conflict naming `says`.
#[track_caller]
fn conflict<T: Debug>(r: ioto_domain::Result<T>, says: &str, why: &str) {
    let ok = matches!(&r, Err(Error::Conflict(m)) if m.contains(says));
    assert!(ok, "{why}: expected a conflict naming '{says}', got {r:?}");
}

#[track_caller]
fn not_found<T: Debug>(r: ioto_domain::Result<T>, why: &str) {
    let ok = matches!(r, Err(Error::NotFound { .. }));
    assert!(ok, "{why}: expected NOT_FOUND, got {r:?}");
}

fn tenant_and(tenant: TenantId, customer: CustomerId) -> Scope {
    Scope::Tenant {
        tenant_id: tenant,
        customer_id: Some(customer),
    }
}

/// A job awaiting confirmation; `[total, valid, invalid, already in state]`.
fn new_job(tenant: TenantId, at: DateTime<Utc>, [total, valid, invalid, in_state]: [u64; 4]) -> BulkJob {
    BulkJob {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        source: BulkSource::File,
        file_name: Some("suspend.csv".into()),
        action: Some(NetworkAction::Suspend),
        status: AwaitingConfirmation,
        total,
        valid,
        invalid,
        already_in_state: in_state,
        processed: 0,
        succeeded: 0,
        failed: 0,
        skipped: in_state,
        created_by: "alice".into(),
        created_by_user: None,
        created_by_role: Role::TenantAdmin,
        confirmed_by: None,
        cancelled_by: None,
        note: Some("quarterly clean-up".into()),
        notify: true,
        failure: None,
        created_at: at,
        confirmed_at: None,
        started_at: None,
        finished_at: None,
        heartbeat_at: None,
    }
}

/// Row `position` of `job`, for `sim` (none: an ICCID a spreadsheet mangled).
fn row(
    job: &BulkJob,
    position: u64,
    sim: Option<&Sim>,
    outcome: RowOutcome,
    reason: Option<&str>,
) -> BulkRow {
    BulkRow {
        job_id: job.id,
        position,
        line: position + 2,
        iccid: sim.map_or_else(|| "8.94E+19".to_owned(), |s| s.iccid.to_string()),
        sim_id: sim.map(|s| s.id),
        action: Some(NetworkAction::Suspend),
        outcome,
        reason: reason.map(str::to_owned),
        request_id: Uuid::new_v4(),
        reference: None,
        finished_at: (!outcome.is_open()).then_some(job.created_at),
    }
}

/// A change to `to` from where confirming (or cancelling) starts.
fn change(to: BulkJobStatus, at: DateTime<Utc>, by: &str) -> BulkStatusChange {
    let from = match to {
        Cancelled => vec![BulkJobStatus::Validating, AwaitingConfirmation, Processing],
        _ => vec![AwaitingConfirmation],
    };
    BulkStatusChange {
        from,
        to,
        at,
        by: Some(by.to_owned()),
        claim: None,
    }
}

fn answered(position: u64, outcome: RowOutcome, reason: Option<&str>) -> RowResult {
    RowResult {
        position,
        outcome,
        reason: reason.map(str::to_owned),
        reference: None,
        sim: None,
        audit: Vec::new(),
    }
}

/// A succeeded row: its SIM suspended, as read at `version`, with its audit entry.
fn suspended(position: u64, sim: &Sim, version: i64, job: Uuid) -> RowResult {
    let mut row = sim.clone();
    row.state = Suspended;
    let entry = NewAuditEntry {
        tenant_id: sim.tenant_id,
        customer_id: sim.customer_id,
        entity_kind: EntityKind::Sim,
        entity_id: sim.id.0,
        entity_ref: sim.iccid.to_string(),
        action: AuditAction::StateChanged,
        stamp: AuditStamp {
            actor: format!("bulk job {job}"),
            actor_user_id: None,
            at: Utc::now(),
            note: None,
        },
        old_value: serde_json::json!({ "state": "ACTIVE" }),
        new_value: serde_json::json!({ "state": "SUSPENDED" }),
    };
    RowResult {
        reference: Some(format!("ref-{position}")),
        sim: Some(Versioned {
            expected_version: Some(version),
            row,
        }),
        audit: vec![entry],
        ..answered(position, Succeeded, None)
    }
}

fn state_of(s: &Sim) -> SimStateRow {
    SimStateRow {
        iccid: s.iccid.clone(),
        id: s.id,
        customer_id: s.customer_id,
        state: s.state,
    }
}

/// What validation finds of these SIMs in `scope`, in ICCID order.
async fn found(fleet: &SqlFleet, scope: Scope, sims: &[&Sim]) -> Vec<SimStateRow> {
    let iccids: Vec<_> = sims.iter().map(|s| s.iccid.clone()).collect();
    let mut rows = fleet.sim_states(scope, &iccids).await.unwrap();
    rows.sort_by(|x, y| x.iccid.cmp(&y.iccid));
    rows
}

/// The jobs `worker` claims at `at` (leased for a minute): their ids and start times.
async fn claim(
    fleet: &SqlFleet,
    worker: &str,
    at: DateTime<Utc>,
    skip: &[Uuid],
) -> Vec<(Uuid, Option<DateTime<Utc>>)> {
    let jobs = fleet.claim_bulk_jobs(worker, at, at + secs(60), 10, skip).await;
    jobs.unwrap().into_iter().map(|j| (j.id, j.started_at)).collect()
}

async fn job_ids(fleet: &SqlFleet, scope: Scope, tenant: TenantId, query: BulkJobQuery) -> Vec<Uuid> {
    let jobs = fleet.bulk_jobs(scope, tenant, &query).await.unwrap();
    jobs.into_iter().map(|j| j.id).collect()
}

async fn rows_of(fleet: &SqlFleet, scope: Scope, job: Uuid, query: &BulkRowQuery) -> Vec<BulkRow> {
    fleet.bulk_rows(scope, job, query).await.unwrap()
}

async fn open_rows(fleet: &SqlFleet, job: Uuid, after: Option<u64>) -> Vec<u64> {
    let rows = fleet.open_bulk_rows(job, after, 10).await.unwrap();
    rows.into_iter().map(|r| r.position).collect()
}

async fn bulk_contract(fleet: &SqlFleet, f: &Factory, a: &Tenant, b: &Tenant, acme: CustomerId) {
    let (a_scope, b_scope, acme_scope) = (Scope::tenant(a.id), Scope::tenant(b.id), tenant_and(a.id, acme));
    let sims = f.sims(a, None, 4).await;
    let acme_sim = f.sims(a, Some(acme), 1).await.remove(0);
    let b_sim = f.sims(b, None, 1).await.remove(0);
    let t = now();

    // Validation reads the tenant's own SIMs; a sub-customer's scope narrows them to its own.
    let asked = [&sims[0], &acme_sim, &b_sim];
    let mut mine = vec![state_of(&sims[0]), state_of(&acme_sim)];
    mine.sort_by(|x, y| x.iccid.cmp(&y.iccid));
    let a_found = found(fleet, a_scope, &asked).await;
    assert_eq!(a_found, mine, "A's file finds B's SIM");
    let acme_found = found(fleet, acme_scope, &asked).await;
    assert_eq!(acme_found, [state_of(&acme_sim)], "Acme's file finds A's SIMs");

    // A job is stored with all its rows and read back as submitted, rows in file order.
    let j1 = new_job(a.id, t, [5, 3, 1, 1]);
    let rows = vec![
        row(&j1, 0, Some(&sims[0]), Pending, None),
        row(&j1, 1, None, Invalid, Some("scientific notation")),
        row(&j1, 2, Some(&sims[1]), Pending, None),
        row(&j1, 3, Some(&sims[2]), Pending, None),
        row(&j1, 4, Some(&sims[3]), Skipped, Some("already SUSPENDED")),
    ];
    fleet.create_bulk_job(a_scope, &j1, &rows).await.unwrap();
    let j2 = new_job(a.id, t + secs(1), [2, 2, 0, 0]);
    let j2_rows = [0, 1].map(|p| row(&j2, p, Some(&sims[p as usize]), Pending, None));
    fleet.create_bulk_job(a_scope, &j2, &j2_rows).await.unwrap();
    let j3 = new_job(a.id, t + secs(1), [1, 0, 0, 1]);
    let j3_rows = [row(&j3, 0, Some(&sims[3]), Skipped, None)];
    fleet.create_bulk_job(a_scope, &j3, &j3_rows).await.unwrap();
    let (jb1, jb2) = (new_job(b.id, t, [0; 4]), new_job(b.id, t, [0; 4]));
    for j in [&jb1, &jb2] {
        fleet.create_bulk_job(b_scope, j, &[]).await.unwrap();
    }
    let read = fleet.bulk_job(a_scope, j1.id).await.unwrap();
    assert_eq!(read, Some(j1.clone()), "the job reads back changed");
    let read = fleet.bulk_job(b_scope, j1.id).await.unwrap();
    assert_eq!(read, None, "B sees A's job");
    // Jobs are the tenant's: which of its users see them is the service's rule.
    let read = fleet.bulk_job(acme_scope, j1.id).await.unwrap();
    assert_eq!(read.map(|j| j.id), Some(j1.id), "Acme's scope loses A's job");
    let all = BulkRowQuery {
        limit: 100,
        ..BulkRowQuery::default()
    };
    let positions = |rows: Vec<BulkRow>| rows.into_iter().map(|r| r.position).collect::<Vec<_>>();
    let outcomes = |rows: Vec<BulkRow>| rows.into_iter().map(|r| r.outcome).collect::<Vec<_>>();
    let read = rows_of(fleet, a_scope, j1.id, &all).await;
    assert_eq!(read, rows, "rows read back changed, or out of file order");
    let read = rows_of(fleet, b_scope, j1.id, &all).await;
    assert!(read.is_empty(), "B sees A's rows");
    let invalid = BulkRowQuery {
        outcomes: vec![Invalid],
        ..all.clone()
    };
    let listed = positions(rows_of(fleet, a_scope, j1.id, &invalid).await);
    assert_eq!(listed, [1], "the outcome filter lets other rows through");
    let page = BulkRowQuery {
        after: Some(1),
        limit: 2,
        ..all.clone()
    };
    let listed = positions(rows_of(fleet, a_scope, j1.id, &page).await);
    assert_eq!(listed, [2, 3], "the page after row 1 skips or repeats rows");
    let again = fleet.create_bulk_job(a_scope, &j1, &rows[..1]).await;
    conflict(again, "", "the same job is stored twice");
    let listed = rows_of(fleet, a_scope, j1.id, &all).await;
    assert_eq!(listed.len(), 5, "the refused job added rows");
    let foreign = new_job(a.id, t, [0; 4]);
    let r = fleet.create_bulk_job(b_scope, &foreign, &[]).await;
    not_found(r, "B submits a job into A");
    let read = fleet.bulk_job(Scope::Platform, foreign.id).await.unwrap();
    assert_eq!(read, None, "what B submitted into A was stored");

    // Lists: newest first, equal times by id; cursor pages lose or repeat no job.
    let mut tied = [j2.id, j3.id];
    tied.sort();
    let [lo, hi] = tied;
    let q = |limit, before| BulkJobQuery {
        statuses: vec![],
        before,
        limit,
    };
    let listed = job_ids(fleet, a_scope, a.id, q(9, None)).await;
    assert_eq!(listed, [hi, lo, j1.id], "jobs are not listed newest first");
    let listed = job_ids(fleet, a_scope, a.id, q(1, Some((j2.created_at, hi)))).await;
    assert_eq!(listed, [lo], "paging loses a job of the same time");
    let listed = job_ids(fleet, a_scope, a.id, q(9, Some((j2.created_at, lo)))).await;
    assert_eq!(listed, [j1.id], "the last page loses or repeats a job");
    let listed = job_ids(fleet, Scope::Platform, a.id, q(9, None)).await;
    assert_eq!(listed.len(), 3, "A's list holds B's jobs");
    let listed = job_ids(fleet, acme_scope, a.id, q(9, None)).await;
    assert_eq!(listed.len(), 3, "Acme's scope loses A's jobs");
    let r = fleet.bulk_jobs(b_scope, a.id, &q(9, None)).await;
    not_found(r, "B lists A's jobs");

    // Confirming: once, and only in the job's tenant.
    let cancel = change(Cancelled, t, "eve");
    let r = fleet.change_bulk_status(b_scope, j1.id, &cancel).await;
    not_found(r, "B cancels A's job");
    let confirm = change(Processing, t + secs(2), "alice");
    let confirmed = fleet.change_bulk_status(a_scope, j1.id, &confirm).await.unwrap();
    let expected = BulkJob {
        status: Processing,
        confirmed_by: Some("alice".into()),
        confirmed_at: Some(t + secs(2)),
        ..j1.clone()
    };
    assert_eq!(confirmed, expected, "confirming does not start the job as asked");
    let twice = fleet.change_bulk_status(a_scope, j1.id, &confirm).await;
    conflict(twice, "is PROCESSING", "a job is confirmed twice");

    // Claims: one worker while the lease holds; a lapsed lease is taken over.
    let c = t + secs(10);
    let claimed = claim(fleet, "w1", c, &[]).await;
    assert_eq!(claimed, [(j1.id, Some(c))], "the confirmed job is not started");
    let second = claim(fleet, "w2", c + secs(59), &[]).await;
    assert!(second.is_empty(), "two workers hold the job at once");
    let taken = claim(fleet, "w2", c + secs(61), &[]).await;
    assert_eq!(taken, [(j1.id, Some(c))], "the lapsed job is not taken over");
    let lost = vec![answered(0, Succeeded, None)];
    let lost = fleet.record_bulk_results(j1.id, "w1", lost, c + secs(300)).await;
    conflict(lost, "no longer held", "a lost claim records results");
    let lost = fleet.mark_bulk_rows_sent(j1.id, "w1", 0..=3).await;
    conflict(lost, "no longer held", "a lost claim sends rows");
    let lost = fleet.finish_bulk_job(j1.id, "w1", Completed, None).await;
    conflict(lost, "no longer held", "a lost claim ends the job");
    let read = rows_of(fleet, a_scope, j1.id, &all).await;
    assert_eq!(read, rows, "a lost claim changed rows");

    // Running: open rows in file order, marked sent, results counted as they are recorded.
    let open = open_rows(fleet, j1.id, None).await;
    assert_eq!(open, [0, 2, 3], "the rows to send are not the open ones");
    let open = open_rows(fleet, j1.id, Some(0)).await;
    assert_eq!(open, [2, 3], "the open rows after row 0 skip or repeat rows");
    fleet.mark_bulk_rows_sent(j1.id, "w2", 0..=3).await.unwrap();
    let marked = outcomes(rows_of(fleet, a_scope, j1.id, &all).await);
    let expected = [Sent, Invalid, Sent, Sent, Skipped];
    assert_eq!(marked, expected, "marking rows sent changes answered rows");
    let open = open_rows(fleet, j1.id, None).await;
    assert_eq!(open, [0, 2, 3], "a sent row is not sent again on resume");
    let refusal = "the network refused: unknown subscriber";
    let first = vec![
        suspended(0, &sims[0], sims[0].version, j1.id),
        answered(2, RowOutcome::Failed, Some(refusal)),
    ];
    let until = c + secs(300);
    let r = fleet.record_bulk_results(j1.id, "w2", first, until).await;
    let (job, refused) = r.unwrap();
    assert!(refused.is_empty(), "good rows are refused: {refused:?}");
    let counts = (job.processed, job.succeeded, job.failed, job.skipped);
    assert_eq!(counts, (2, 1, 1, 1), "counts are off after a batch");
    let other = claim(fleet, "w3", c + secs(200), &[]).await;
    assert!(other.is_empty(), "recording does not renew the lease: {other:?}");
    // Someone edits the third SIM meanwhile: its row fails, the batch does not.
    let mut edited = sims[2].clone();
    edited.tariff_plan = Some("edited meanwhile".into());
    let edit = Versioned {
        expected_version: Some(sims[2].version),
        row: edited,
    };
    let edit = Changeset {
        sims: vec![edit],
        ..Changeset::default()
    };
    fleet.apply(a_scope, edit).await.unwrap();
    let second = vec![suspended(3, &sims[2], sims[2].version, j1.id)];
    let r = fleet.record_bulk_results(j1.id, "w2", second, until).await;
    let (job, refused) = r.unwrap();
    assert_eq!(refused, [3], "a row whose SIM changed meanwhile is not failed");
    let counts = (job.processed, job.succeeded, job.failed);
    assert_eq!(counts, (3, 1, 2), "counts are off after a refused row");
    // A batch recorded again (a retry whose first commit went through) changes nothing: its
    // rows keep their outcomes and count once.
    let retry = vec![
        suspended(0, &sims[0], sims[0].version, j1.id),
        answered(2, RowOutcome::Failed, Some(refusal)),
    ];
    let r = fleet.record_bulk_results(j1.id, "w2", retry, until).await;
    let (job, refused) = r.unwrap();
    let counts = (job.processed, job.succeeded, job.failed);
    assert_eq!(
        (counts, refused),
        ((3, 1, 2), vec![]),
        "a batch recorded twice counts twice"
    );
    let done = rows_of(fleet, a_scope, j1.id, &all).await;
    let failed = RowOutcome::Failed;
    let expected = [Succeeded, Invalid, failed, failed, Skipped];
    assert_eq!(outcomes(done.clone()), expected, "a row shows the wrong outcome");
    let kept = (done[0].reference.as_deref(), done[2].reason.as_deref());
    assert_eq!(kept, (Some("ref-0"), Some(refusal)), "an answer is lost");
    let why = done[3].reason.clone().unwrap_or_default();
    let said = why.contains("changed by someone else");
    assert!(said, "the refused row does not say why: {why}");
    let untimed: Vec<_> = done.iter().filter(|r| r.finished_at.is_none()).collect();
    assert!(untimed.is_empty(), "rows lack finish times: {untimed:?}");
    let open = open_rows(fleet, j1.id, None).await;
    assert!(open.is_empty(), "answered rows are sent again: {open:?}");
    let after = found(fleet, a_scope, &[&sims[0], &sims[2]]).await;
    let states = (after[0].state, after[1].state);
    assert_eq!(states, (Suspended, Active), "SIM states do not match the rows");
    let changed = |sim: &Sim| AuditQuery {
        entity_id: Some(sim.id.0),
        actions: vec![AuditAction::StateChanged],
        limit: 10,
        ..AuditQuery::default()
    };
    let trail = fleet.audit(a_scope, a.id, &changed(&sims[0])).await.unwrap();
    let actors: Vec<_> = trail.into_iter().map(|e| e.actor).collect();
    let by = format!("bulk job {}", j1.id);
    assert_eq!(actors, [by], "the SIM's trail misses the change");
    let trail = fleet.audit(a_scope, a.id, &changed(&sims[2])).await.unwrap();
    assert!(trail.is_empty(), "a refused row left an audit entry: {trail:?}");

    // Finishing: the job ends, is released, and takes no more results or changes.
    let end = fleet
        .finish_bulk_job(j1.id, "w2", CompletedWithErrors, None)
        .await;
    let end = end.unwrap();
    let end = (end.status, end.failure, end.finished_at.is_some());
    assert_eq!(end, (CompletedWithErrors, None, true), "the job ends otherwise");
    let late = vec![answered(3, Succeeded, None)];
    let late = fleet.record_bulk_results(j1.id, "w2", late, until).await;
    conflict(late, "no longer held", "a finished job takes more results");
    let again = claim(fleet, "w3", c + secs(900), &[]).await;
    assert!(again.is_empty(), "a finished job is claimed again");
    let cancel = change(Cancelled, c, "bob");
    let cancel = fleet.change_bulk_status(a_scope, j1.id, &cancel).await;
    conflict(cancel, "is COMPLETED_WITH_ERRORS", "a finished job is cancelled");

    // A job its caller runs (provisioning) is claimed as it is confirmed. Cancelled while it
    // runs, it sends no more rows, records those in flight and stays cancelled.
    let (until, t5, t20) = (t + secs(600), t + secs(5), t + secs(20));
    let api = BulkStatusChange {
        claim: Some(("api-1".to_owned(), until)),
        ..change(Processing, t5, "api")
    };
    let run = fleet.change_bulk_status(a_scope, j2.id, &api).await.unwrap();
    let facts = (run.status, run.notify, run.started_at);
    assert_eq!(facts, (Processing, false, Some(t5)), "the caller does not run it");
    let other = claim(fleet, "w3", c, &[]).await;
    assert!(other.is_empty(), "a worker takes a job its caller runs");
    let cancel = change(Cancelled, t20, "bob");
    let stop = fleet.change_bulk_status(a_scope, j2.id, &cancel).await.unwrap();
    let facts = (stop.status, stop.cancelled_by.as_deref(), stop.finished_at);
    assert_eq!(facts, (Cancelled, Some("bob"), Some(t20)), "who or when is lost");
    let sent = fleet.mark_bulk_rows_sent(j2.id, "api-1", 0..=1).await;
    conflict(sent, "no longer held", "rows are sent after a cancel");
    let in_flight = vec![answered(0, Succeeded, None), answered(1, Pending, None)];
    let r = fleet.record_bulk_results(j2.id, "api-1", in_flight, until).await;
    let (after, _) = r.unwrap();
    let facts = (after.status, after.processed, after.succeeded);
    assert_eq!(facts, (Cancelled, 1, 1), "the rows in flight are miscounted");
    let end = fleet.finish_bulk_job(j2.id, "api-1", Completed, None).await;
    let end = end.unwrap();
    let end = (end.status, end.finished_at);
    assert_eq!(end, (Cancelled, Some(t20)), "the run's end undoes the cancel");
    let r = fleet.notify_bulk_job(b_scope, j2.id).await;
    not_found(r, "B touches A's job");
    let notified = fleet.notify_bulk_job(a_scope, j2.id).await.unwrap();
    assert!(notified.notify, "the job's end is never notified");

    // A job with nothing to send ends as it is confirmed.
    let t30 = t + secs(30);
    let confirm = change(Completed, t30, "alice");
    let end = fleet.change_bulk_status(a_scope, j3.id, &confirm).await.unwrap();
    let end = (end.status, end.confirmed_at, end.finished_at);
    assert_eq!(end, (Completed, Some(t30), Some(t30)), "an empty job goes on");

    // A tenant's jobs run one at a time, in the order confirmed.
    for (j, at) in [(&jb1, t + secs(100)), (&jb2, t + secs(101))] {
        let confirm = change(Processing, at, "carol");
        fleet.change_bulk_status(b_scope, j.id, &confirm).await.unwrap();
    }
    let d = t + secs(102);
    let early = claim(fleet, "w5", d, &[jb1.id]).await;
    assert!(early.is_empty(), "B's later job overtakes its earlier one");
    let first = claim(fleet, "w5", d, &[]).await;
    assert_eq!(first, [(jb1.id, Some(d))], "B's jobs run out of order");
    let both = claim(fleet, "w6", d, &[]).await;
    assert!(both.is_empty(), "two of B's jobs run at once");
    let end = fleet.finish_bulk_job(jb1.id, "w5", Completed, None).await;
    end.unwrap();
    let next = claim(fleet, "w6", d, &[]).await;
    assert_eq!(next, [(jb2.id, Some(d))], "B's next job does not start");

    let ended = BulkJobQuery {
        statuses: vec![Cancelled, Completed],
        ..q(9, None)
    };
    let listed = job_ids(fleet, a_scope, a.id, ended).await;
    assert_eq!(listed, [hi, lo], "the status filter lets other jobs through");
}

fn export(tenant: TenantId, user: Option<UserId>, role: Role, at: DateTime<Utc>) -> ExportJob {
    ExportJob {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        kind: ExportKind::SimInventory,
        format: ExportFormat::Csv,
        filter: serde_json::json!({ "states": ["ACTIVE"], "labels": { "site": "berlin" } }),
        status: Queued,
        rows: 0,
        bytes: 0,
        expected_rows: Some(3),
        created_by: user.map_or_else(|| "ci-bot".to_owned(), |u| u.to_string()),
        created_by_user: user,
        created_by_role: role,
        created_by_customer: None,
        failure: None,
        created_at: at,
        started_at: None,
        finished_at: None,
        heartbeat_at: None,
        expires_at: None,
        sha256: None,
    }
}

/// The end of an export: completed with its file of `bytes` kept that long, or failed.
fn end_of(at: DateTime<Utc>, file: Result<(u64, Duration), &str>) -> ExportEnd {
    ExportEnd {
        status: if file.is_ok() {
            ExportStatus::Completed
        } else {
            ExportStatus::Failed
        },
        rows: 3,
        bytes: file.map_or(0, |(bytes, _)| bytes),
        sha256: file.ok().map(|_| "9f86d081884c7d659a2feaa0c55ad015".to_owned()),
        failure: file.err().map(str::to_owned),
        at,
        expires_at: file.ok().map(|(_, kept)| at + kept),
    }
}

/// Progress of `rows` rows at `at`, the lease renewed for a minute.
fn progress(rows: u64, at: DateTime<Utc>) -> ExportProgressUpdate {
    ExportProgressUpdate {
        rows,
        bytes: rows * 40,
        expected_rows: Some(3),
        at,
        until: at + secs(60),
    }
}

fn ids(jobs: &[ExportJob]) -> Vec<Uuid> {
    jobs.iter().map(|j| j.id).collect()
}

async fn export_contract(fleet: &SqlFleet, a: TenantId, b: TenantId, acme: CustomerId) {
    let (a_scope, b_scope, acme_scope) = (Scope::tenant(a), Scope::tenant(b), tenant_and(a, acme));
    let (alice, bob) = (UserId::new(), UserId::new());
    let t = now();
    let eb = export(b, Some(UserId::new()), Role::TenantAdmin, t);
    let e1 = export(a, Some(alice), Role::TenantAdmin, t + secs(1));
    let e2 = ExportJob {
        created_by_customer: Some(acme),
        ..export(a, Some(bob), Role::CustomerUser, t + secs(2))
    };
    let e3 = export(a, None, Role::Operator, t + secs(3));
    let ep = export(a, Some(UserId::new()), Role::PlatformAdmin, t + secs(4));
    let requested = [(b_scope, &eb), (a_scope, &e1), (acme_scope, &e2), (a_scope, &e3)];
    for (scope, job) in requested.into_iter().chain([(Scope::Platform, &ep)]) {
        fleet.create_export_job(scope, job).await.unwrap();
    }

    // Scoping: a job is its tenant's; another tenant neither writes nor reads it.
    let foreign = export(a, None, Role::TenantAdmin, t);
    let r = fleet.create_export_job(b_scope, &foreign).await;
    not_found(r, "B queues an export into A");
    let read = fleet.export_job(Scope::Platform, foreign.id).await.unwrap();
    assert_eq!(read, None, "what B queued into A was stored");
    let read = fleet.export_job(a_scope, e1.id).await.unwrap();
    assert_eq!(read, Some(e1.clone()), "the export reads back changed");
    let read = fleet.export_job(b_scope, e1.id).await.unwrap();
    assert_eq!(read, None, "B sees A's export");
    // Exports are the tenant's: which of its users see them is the service's rule.
    let read = fleet.export_job(acme_scope, e1.id).await.unwrap();
    assert_eq!(read.map(|j| j.id), Some(e1.id), "Acme's scope loses A's export");

    // Lists: newest first, by requester, without the platform's, paged.
    let a_jobs = ExportJobQuery {
        tenant: Some(a),
        limit: 10,
        ..ExportJobQuery::default()
    };
    let list = |scope, query: &ExportJobQuery| {
        let query = query.clone();
        async move { ids(&fleet.export_jobs(scope, &query).await.unwrap()) }
    };
    let listed = list(a_scope, &a_jobs).await;
    assert_eq!(listed, [ep.id, e3.id, e2.id, e1.id], "the list is out of order");
    let mut query = ExportJobQuery {
        hide_platform: true,
        ..a_jobs.clone()
    };
    let listed = list(a_scope, &query).await;
    assert_eq!(listed, [e3.id, e2.id, e1.id], "a platform admin's exports show");
    query.requested_by = Some(alice);
    let listed = list(a_scope, &query).await;
    assert_eq!(listed, [e1.id], "a user sees others' exports");
    query.requested_by = None;
    query.requested_by_subject = Some("ci-bot".into());
    let listed = list(a_scope, &query).await;
    assert_eq!(listed, [e3.id], "a token sees others' exports");
    query.requested_by_subject = Some(alice.to_string());
    let listed = list(a_scope, &query).await;
    assert!(listed.is_empty(), "a token sees a user's exports");
    query.requested_by_subject = None;
    query.before = Some((e2.created_at, e2.id));
    let listed = list(a_scope, &query).await;
    assert_eq!(listed, [e1.id], "the next page loses or repeats exports");
    assert!(list(b_scope, &a_jobs).await.is_empty(), "B lists A's exports");
    let everyone = ExportJobQuery {
        tenant: None,
        ..a_jobs
    };
    let listed = list(Scope::Platform, &everyone).await;
    assert_eq!(listed.len(), 5, "the platform misses exports");

    // Cancelling: a queued job, once, in its tenant.
    let r = fleet.cancel_export_job(b_scope, e2.id, t).await;
    not_found(r, "B cancels A's export");
    let t5 = t + secs(5);
    let cancelled = fleet.cancel_export_job(a_scope, e3.id, t5).await.unwrap();
    let expected = ExportJob {
        status: ExportStatus::Cancelled,
        finished_at: Some(t5),
        ..e3.clone()
    };
    assert_eq!(cancelled, expected, "the queued export is not cancelled as asked");
    let twice = fleet.cancel_export_job(a_scope, e3.id, t).await;
    conflict(twice, "CANCELLED", "an export is cancelled twice");

    // Claims: oldest first across tenants, one worker per job while its lease holds.
    let c = t + secs(10);
    let take = |worker: &'static str, at: DateTime<Utc>, limit| async move {
        let jobs = fleet.claim_export_jobs(worker, at, at + secs(60), limit).await;
        let jobs = jobs.unwrap().into_iter();
        jobs.map(|j| (j.id, j.status, j.started_at, j.rows))
            .collect::<Vec<_>>()
    };
    let run = |id, at| (id, Running, Some(at), 0);
    let first: Vec<_> = take("w1", c, 2).await;
    assert_eq!(first, [run(eb.id, c), run(e1.id, c)], "the oldest wait");
    let second: Vec<_> = take("w2", c, 10).await;
    assert_eq!(second, [run(e2.id, c), run(ep.id, c)], "a wrong export runs");
    let third: Vec<_> = take("w3", c, 10).await;
    assert!(third.is_empty(), "a held export is run twice");

    // Progress: written by the holder only; it renews the lease.
    let (c1, c2, c30) = (c + secs(1), c + secs(2), c + secs(30));
    let taken = fleet.export_progress(e1.id, "w1", &progress(2, c1)).await;
    assert!(taken.unwrap(), "the holder's progress is refused");
    let taken = fleet.export_progress(e1.id, "w2", &progress(3, c2)).await;
    assert!(!taken.unwrap(), "another worker's progress is taken");
    let read = fleet.export_job(a_scope, e1.id).await.unwrap().unwrap();
    let facts = (read.rows, read.bytes, read.expected_rows, read.heartbeat_at);
    assert_eq!(facts, (2, 80, Some(3), Some(c1)), "the progress does not show");
    for (id, worker) in [(eb.id, "w1"), (e2.id, "w2"), (ep.id, "w2")] {
        let renewed = fleet.export_progress(id, worker, &progress(0, c30)).await;
        assert!(renewed.unwrap(), "a holder cannot renew its lease");
    }
    let c70 = c + secs(70);
    let over: Vec<_> = take("w3", c70, 10).await;
    assert_eq!(over, [run(e1.id, c70)], "the lapsed export is not restarted");
    let stale = fleet.export_progress(e1.id, "w1", &progress(3, c70)).await;
    assert!(!stale.unwrap(), "the worker that lost it is not stopped");
    let late = end_of(c70, Ok((120, Duration::hours(1))));
    let late = fleet.finish_export_job(e1.id, "w1", &late).await.unwrap();
    assert_eq!(late, None, "the worker that lost the export ends it");
    let read = fleet.export_job(a_scope, e1.id).await.unwrap().unwrap();
    assert_eq!((read.status, read.rows), (Running, 0), "a lost claim wrote");

    // Ending: completed with its file's facts, or failed saying why; once.
    let end = end_of(c + secs(80), Ok((120, Duration::hours(1))));
    let done = fleet.finish_export_job(e1.id, "w3", &end).await.unwrap().unwrap();
    let file = (done.status, done.rows, done.bytes, done.sha256.as_deref());
    let expected = (ExportStatus::Completed, 3, 120, end.sha256.as_deref());
    assert_eq!(file, expected, "the completed export does not show its file");
    let times = (done.finished_at, done.expires_at, done.failure.clone());
    assert_eq!(times, (Some(end.at), end.expires_at, None), "its end is off");
    let read = fleet.export_job(a_scope, e1.id).await.unwrap();
    assert_eq!(read, Some(done), "the stored export differs");
    let again = fleet.finish_export_job(e1.id, "w3", &end).await.unwrap();
    assert_eq!(again, None, "an export ends twice");
    let cancel = fleet.cancel_export_job(a_scope, e1.id, c).await;
    conflict(cancel, "COMPLETED", "a completed export is cancelled");
    let why = "the filter names a deleted sub-customer";
    let failure = end_of(c + secs(85), Err(why));
    let failed = fleet.finish_export_job(e2.id, "w2", &failure).await.unwrap();
    let failed = failed.unwrap();
    let facts = (failed.status, failed.failure.as_deref(), failed.expires_at);
    let expected = (ExportStatus::Failed, Some(why), None);
    assert_eq!(facts, expected, "the failed export does not say why");
    let stopped = fleet.cancel_export_job(Scope::Platform, ep.id, c70).await;
    let stopped = stopped.unwrap().status;
    assert_eq!(stopped, ExportStatus::Cancelled, "the export goes on");
    let told = fleet.export_progress(ep.id, "w2", &progress(1, c70)).await;
    assert!(!told.unwrap(), "its worker is not stopped");
    let late = fleet.finish_export_job(ep.id, "w2", &end).await.unwrap();
    assert_eq!(late, None, "a cancelled export ends with a file");
    let read = fleet.export_job(Scope::Platform, ep.id).await.unwrap();
    let read = read.unwrap().status;
    assert_eq!(read, ExportStatus::Cancelled, "the cancel is undone");
    let eb_end = end_of(c + secs(90), Ok((500, Duration::minutes(10))));
    let eb_done = fleet.finish_export_job(eb.id, "w1", &eb_end).await.unwrap();
    assert!(eb_done.is_some(), "the holder cannot end the export");

    // Expiry: completed files past their time, oldest first, every tenant's; once each.
    let soon = fleet.expired_exports(c + Duration::minutes(5), 10).await.unwrap();
    assert!(soon.is_empty(), "a file expires before its time: {soon:?}");
    let later = c + Duration::hours(2);
    let due = ids(&fleet.expired_exports(later, 10).await.unwrap());
    assert_eq!(due, [eb.id, e1.id], "wrong files are due, or out of order");
    let due = ids(&fleet.expired_exports(later, 1).await.unwrap());
    assert_eq!(due, [eb.id], "the limit is not applied");
    fleet.expire_export_job(eb.id).await.unwrap();
    let gone = fleet.export_job(b_scope, eb.id).await.unwrap().unwrap();
    assert_eq!(gone.status, Expired, "the export does not say its file is gone");
    let due = ids(&fleet.expired_exports(later, 10).await.unwrap());
    assert_eq!(due, [e1.id], "an expired file is due again");
    fleet.expire_export_job(e2.id).await.unwrap();
    let kept = fleet.export_job(a_scope, e2.id).await.unwrap().unwrap();
    assert_eq!(kept.status, ExportStatus::Failed, "a failed export expires");
}

async fn contract(store: ioto_store::SqlStore) {
    let fleet = store.fleet();
    let f = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    let (a, b) = (f.tenant("Jobs A").await, f.tenant("Jobs B").await);
    let acme = f.customer(&a, "Acme").await;
    bulk_contract(&fleet, &f, &a, &b, acme.id).await;
    export_contract(&fleet, a.id, b.id, acme.id).await;
}

#[tokio::test]
async fn jobs_contract_on_sqlite() {
    contract(
        open(StoreLocation::Sqlite {
            path: temp_dir().join("jobs.sqlite"),
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn jobs_contract_on_postgres() {
    contract(
        open(StoreLocation::Postgres {
            url: pg::database().await,
        })
        .await,
    )
    .await;
}
