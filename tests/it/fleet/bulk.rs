//! Bulk jobs: a file uploaded through the GraphQL multipart request, validated row by row before
//! anything runs, confirmed, run in file order against the (simulated) network, followed by
//! subscription; the provisioning API; roles; bad files; a killed worker resumed elsewhere.

use std::sync::Arc;
use std::time::Duration;

use futures::SinkExt;
use ioto_app::fleet::BulkFile;
use ioto_app::FleetService;
use ioto_domain::fleet::bulk::{BulkJobStatus, RowOutcome};
use ioto_domain::fleet::SimState;
use ioto_domain::ports::network::NetworkAction;
use ioto_domain::ports::{AuditLog, BulkJobStore, BulkRowQuery, NoNotifier, SimStore};
use ioto_domain::{Actor, Role, Scope};
use ioto_network::{HlrProfile, SimulatedHlr};
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, Factory, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::Fixture;

const SUBMIT: &str = "mutation($input: SubmitBulkJobInput!) { submitBulkJob(input: $input) { job { id status total validRecords invalidRecords alreadyInState summary } report { validRecords invalidRecords alreadyInState errors { row iccid reason } errorsTruncated } } }";
const JOB: &str = "query($id: ID!) { bulkJob(id: $id) { status processed succeeded failed skipped summary finishedAt rows { nodes { row iccid outcome reason networkReference } } } }";
const SIM: &str = "query($i: Iccid!) { sim(iccid: $i) { state events { action newValue actor } } }";

/// Sends `file` to `submitBulkJob` (see [`upload_to`]).
pub(crate) async fn upload(
    app: &TestApp,
    token: &str,
    file_name: &str,
    file: Vec<u8>,
    input: Value,
) -> Value {
    upload_to(app, token, SUBMIT, file_name, file, input).await
}

/// Sends `file` as `$input.file` of the mutation `query`, as the GraphQL multipart request spec
/// says: `operations`, `map`, the file part.
pub(crate) async fn upload_to(
    app: &TestApp,
    token: &str,
    query: &str,
    file_name: &str,
    file: Vec<u8>,
    input: Value,
) -> Value {
    let boundary = "ioto-test-boundary-7d1f";
    let mut input = input;
    input["file"] = Value::Null;
    let operations = json!({ "query": query, "variables": { "input": input } });
    let mut body = Vec::new();
    let mut part = |headers: String, content: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    };
    part(
        "Content-Disposition: form-data; name=\"operations\"".into(),
        operations.to_string().as_bytes(),
    );
    part(
        "Content-Disposition: form-data; name=\"map\"".into(),
        json!({ "0": ["variables.input.file"] }).to_string().as_bytes(),
    );
    part(
        format!("Content-Disposition: form-data; name=\"0\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream"),
        &file,
    );
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    app.http
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("upload")
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap_or_else(|_| panic!("{file_name}: not JSON: {t}")))
        .expect("answer")
}

pub(super) async fn wait_final(fx: &Fixture, id: &str) -> Value {
    for _ in 0..200 {
        let job = fx.ok(JOB, json!({"id": id}), "bulkJob").await;
        if job["finishedAt"].is_string() {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("bulk job {id} did not finish in 10 s");
}

async fn a_file_is_validated_confirmed_and_run_on(engines: Engines) {
    let fx = Fixture::on(engines, Role::TenantAdmin).await;
    let sims = fx.app.factory.sims(&fx.tenant, None, 3).await;
    let other = fx.app.factory.tenant("Elsewhere").await;
    let theirs = fx.app.factory.sims(&other, None, 1).await;
    let [a, b, c] = [0, 1, 2].map(|i| sims[i].iccid.to_string());
    let foreign = theirs[0].iccid.to_string();
    // A BOM, `;` separators, header names in any case, actions per row.
    let bad_check = {
        let mut s = a.clone();
        let last = s.pop().unwrap();
        s.push(if last == '0' { '1' } else { '0' });
        s
    };
    let file = format!(
        "\u{feff}ICCID;Action\n{a};suspend\n{b};SUSPEND\n{c};ACTIVATE\n{foreign};SUSPEND\n{a};SUSPEND\n8.98800000000001E+19;SUSPEND\n{bad_check};SUSPEND\n"
    );
    let out = upload(
        &fx.app,
        &fx.token,
        "suspend.csv",
        file.into_bytes(),
        json!({ "note": "winter pause" }),
    )
    .await;
    assert!(out["errors"].is_null(), "{out}");
    let sub = &out["data"]["submitBulkJob"];
    let report = &sub["report"];
    assert_eq!(report["validRecords"], 2, "{out}");
    assert_eq!(report["alreadyInState"], 1, "{out}");
    assert_eq!(report["invalidRecords"], 4, "{out}");
    assert_eq!(report["errorsTruncated"], false);
    let errors = report["errors"].as_array().unwrap();
    let reason = |row: i64| {
        errors
            .iter()
            .find(|e| e["row"] == row)
            .unwrap_or_else(|| panic!("no error for row {row}: {report}"))["reason"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Another tenant's SIM is as unknown as one that does not exist.
    assert!(reason(5).starts_with("NOT_FOUND"), "{report}");
    assert!(!reason(5).contains("Elsewhere"), "{report}");
    assert!(reason(6).contains("already on row 2"), "{report}");
    assert!(reason(7).contains("scientific notation"), "{report}");
    assert!(reason(8).contains("Luhn"), "{report}");
    assert_eq!(sub["job"]["status"], "AWAITING_CONFIRMATION");
    assert!(
        sub["job"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("Ready to change 2 SIMs"),
        "{sub}"
    );
    let id = sub["job"]["id"].as_str().unwrap().to_owned();

    // Nothing ran yet.
    let sim = fx.ok(SIM, json!({"i": a}), "sim").await;
    assert_eq!(sim["state"], "ACTIVE");

    // Progress by subscription, from the state now to the end.
    let mut ws = crate::http::ws_subscribe(
        &fx.app,
        &fx.token,
        &format!(
            "subscription {{ bulkJobProgress(id: \"{id}\") {{ status processed validRecords summary }} }}"
        ),
    )
    .await;
    let first = crate::http::ws_next(&mut ws).await.expect("first progress");
    assert_eq!(
        first["payload"]["data"]["bulkJobProgress"]["status"], "AWAITING_CONFIRMATION",
        "{first}"
    );

    let confirmed = fx
        .ok(
            "mutation($id: ID!) { confirmBulkJob(id: $id) { status } }",
            json!({"id": id}),
            "confirmBulkJob",
        )
        .await;
    assert_eq!(confirmed["status"], "PROCESSING");
    let mut last = Value::Null;
    while let Some(msg) = crate::http::ws_next(&mut ws).await {
        if msg["type"] == "complete" {
            break;
        }
        last = msg["payload"]["data"]["bulkJobProgress"].clone();
    }
    assert_eq!(last["status"], "COMPLETED_WITH_ERRORS", "{last}");
    assert_eq!(last["processed"], 2);
    let _ = ws.send(Message::Close(None)).await;

    let job = wait_final(&fx, &id).await;
    assert_eq!(
        (
            job["succeeded"].as_i64(),
            job["failed"].as_i64(),
            job["skipped"].as_i64()
        ),
        (Some(2), Some(0), Some(1)),
        "{job}"
    );
    let rows = job["rows"]["nodes"].as_array().unwrap();
    let outcomes: Vec<&str> = rows.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(
        outcomes,
        [
            "SUCCEEDED",
            "SUCCEEDED",
            "SKIPPED",
            "INVALID",
            "INVALID",
            "INVALID",
            "INVALID"
        ]
    );
    assert!(
        rows[0]["networkReference"].as_str().unwrap().starts_with("hlr-"),
        "{job}"
    );
    assert!(
        job["summary"]
            .as_str()
            .unwrap()
            .starts_with("2 of 2 SIMs were changed"),
        "{job}"
    );

    // The SIMs changed, each audited with the job.
    for iccid in [&a, &b] {
        let sim = fx.ok(SIM, json!({"i": iccid}), "sim").await;
        assert_eq!(sim["state"], "SUSPENDED", "{sim}");
        assert_eq!(sim["events"][0]["newValue"]["bulkJobId"], id.as_str(), "{sim}");
        assert_eq!(sim["events"][0]["newValue"]["network"]["action"], "SUSPEND");
    }
    assert_eq!(fx.ok(SIM, json!({"i": foreign}), "sim").await, Value::Null);

    // Confirmed twice, or cancelled once finished: CONFLICT.
    for op in ["confirmBulkJob", "cancelBulkJob"] {
        let body = fx
            .gql(
                &format!("mutation($id: ID!) {{ {op}(id: $id) {{ status }} }}"),
                json!({"id": id}),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{op}: {body}");
    }

    // Listed, filterable by status; rows filterable by outcome.
    let list = fx
        .ok(
            "query { bulkJobs(statuses: [COMPLETED_WITH_ERRORS]) { nodes { id rows(outcomes: [INVALID], first: 2) { nodes { row } pageInfo { hasNextPage endCursor } } } } }",
            json!({}),
            "bulkJobs",
        )
        .await;
    assert_eq!(list["nodes"][0]["id"], id.as_str(), "{list}");
    let page = &list["nodes"][0]["rows"];
    assert_eq!(page["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);

    // Another tenant sees neither the job nor its rows.
    let stranger = fx.app.factory.user(&other, Role::TenantAdmin, None).await;
    let token = fx.app.login(stranger.email.as_str(), TEST_PASSWORD).await;
    let body = fx.app.gql(Some(&token), JOB, json!({"id": id})).await;
    assert_eq!(body["data"]["bulkJob"], Value::Null, "{body}");
    let body = fx
        .app
        .gql(
            Some(&token),
            "mutation($id: ID!) { confirmBulkJob(id: $id) { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
}

#[tokio::test]
async fn a_file_is_validated_confirmed_and_run() {
    a_file_is_validated_confirmed_and_run_on(Engines::Real).await;
}

#[tokio::test]
async fn a_file_is_validated_confirmed_and_run_embedded() {
    a_file_is_validated_confirmed_and_run_on(Engines::Embedded).await;
}

const PROVISION: &str = "mutation($i: [String!]!, $a: BulkAction!) { provisionSims(iccids: $i, action: $a) { completed job { status } report { invalidRecords } results { iccid outcome reason } } }";

async fn provision_sims_answers_small_lists_with_every_outcome_and_keeps_roles_on(engines: Engines) {
    let fx = Fixture::on(engines, Role::TenantAdmin).await;
    let sims = fx.app.factory.sims(&fx.tenant, None, 3).await;
    let iccids: Vec<String> = sims.iter().map(|s| s.iccid.to_string()).collect();
    let out = fx
        .ok(
            PROVISION,
            json!({"i": [iccids[0], "8988000000000000000"], "a": "SUSPEND"}),
            "provisionSims",
        )
        .await;
    assert_eq!(out["completed"], true, "{out}");
    assert_eq!(out["job"]["status"], "COMPLETED_WITH_ERRORS");
    assert_eq!(out["results"][0]["outcome"], "SUCCEEDED", "{out}");
    assert_eq!(out["results"][1]["outcome"], "INVALID", "{out}");
    let sim = fx.ok(SIM, json!({"i": iccids[0]}), "sim").await;
    assert_eq!(sim["state"], "SUSPENDED");

    // Operators run jobs up to the tenant's limit; viewers none.
    let limited = fx
        .ok(
            "mutation { setFleetSettings(operatorBulkLimit: 1) { operatorBulkLimit } }",
            json!({}),
            "setFleetSettings",
        )
        .await;
    assert_eq!(limited["operatorBulkLimit"], 1);
    let operator = fx.app.factory.user(&fx.tenant, Role::Operator, None).await;
    let op_token = fx.app.login(operator.email.as_str(), TEST_PASSWORD).await;
    let body = fx
        .app
        .gql(
            Some(&op_token),
            PROVISION,
            json!({"i": [iccids[1], iccids[2]], "a": "SUSPEND"}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("up to 1 SIMs"),
        "{body}"
    );
    let body = fx
        .app
        .gql(
            Some(&op_token),
            PROVISION,
            json!({"i": [iccids[1]], "a": "SUSPEND"}),
        )
        .await;
    assert_eq!(
        body["data"]["provisionSims"]["results"][0]["outcome"], "SUCCEEDED",
        "{body}"
    );
    let viewer = fx.app.factory.user(&fx.tenant, Role::Viewer, None).await;
    let v_token = fx.app.login(viewer.email.as_str(), TEST_PASSWORD).await;
    let body = fx
        .app
        .gql(
            Some(&v_token),
            PROVISION,
            json!({"i": [iccids[2]], "a": "SUSPEND"}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let body = fx
        .app
        .gql(
            Some(&fx.token),
            "mutation { setFleetSettings(operatorBulkLimit: -1) { operatorBulkLimit } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
}

async fn bad_files_are_refused_before_anything_runs_on(engines: Engines) {
    let fx = Fixture::on(engines, Role::TenantAdmin).await;
    let sims = fx.app.factory.sims(&fx.tenant, None, 1).await;
    let iccid = sims[0].iccid.to_string();
    let cases: Vec<(&str, Vec<u8>, Value, &str)> = vec![
        ("empty.csv", Vec::new(), json!({"action": "SUSPEND"}), "is empty"),
        (
            "list.csv",
            b"imsi\n123456\n".to_vec(),
            json!({"action": "SUSPEND"}),
            "no ICCID column",
        ),
        (
            "list.pdf",
            b"%PDF-1.7".to_vec(),
            json!({"action": "SUSPEND"}),
            "name the file .csv or .xlsx",
        ),
        (
            "header.csv",
            b"iccid\n".to_vec(),
            json!({"action": "SUSPEND"}),
            "no rows after the header",
        ),
        (
            "fake.xlsx",
            b"not a zip".to_vec(),
            json!({"action": "SUSPEND"}),
            "XLSX",
        ),
        (
            "big.csv",
            {
                let mut s = String::from("iccid\n");
                for _ in 0..100_001 {
                    s.push_str(&iccid);
                    s.push('\n');
                }
                s.into_bytes()
            },
            json!({"action": "SUSPEND"}),
            "at most 100,000",
        ),
    ];
    for (name, bytes, input, expected) in cases {
        let body = upload(&fx.app, &fx.token, name, bytes, input).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{name}: {body}"
        );
        let msg = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(expected), "{name}: expected '{expected}' in {msg}");
    }
    // A file over 20 MB is refused by size: by the server when the upload is larger than it
    // takes, by the job otherwise.
    for size in [21 * 1024 * 1024, 20 * 1024 * 1024 + 512 * 1024] {
        let huge = vec![b'8'; size];
        let body = upload(&fx.app, &fx.token, "huge.csv", huge, json!({"action": "SUSPEND"})).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{size}: {body}"
        );
        let msg = body["errors"][0]["message"].as_str().unwrap();
        assert!(msg.contains("at most 20 MB"), "{size}: {body}");
    }
    // Rows without an action, when the file has none: each row says so.
    let body = upload(
        &fx.app,
        &fx.token,
        "x.csv",
        format!("iccid\n{iccid}\n").into_bytes(),
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["submitBulkJob"]["report"]["invalidRecords"], 1,
        "{body}"
    );
    // No job ran: the SIM is as it was.
    let sim = fx.ok(SIM, json!({"i": iccid}), "sim").await;
    assert_eq!(sim["state"], "ACTIVE");

    // Hostile arguments of the lists and the provisioning API are refused, naming the field.
    for (query, field) in [
        ("{ bulkJobs(first: 0) { nodes { id } } }", "first"),
        ("{ bulkJobs(first: 1001) { nodes { id } } }", "first"),
        ("{ bulkJobs(after: \"x'; drop table bulk_jobs; --\") { nodes { id } } }", "after"),
        ("{ bulkJob(id: \"../../etc/passwd\") { id } }", "id"),
        ("mutation { provisionSims(iccids: [], action: SUSPEND) { completed } }", "iccids"),
        (
            "mutation { provisionSims(iccids: [\"1\"], action: SUSPEND, options: { note: \"\\u0000\" }) { completed } }",
            "note",
        ),
    ] {
        let body = fx.gql(query, json!({})).await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{query}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{query}: {body}");
    }
    let jobs = fx
        .ok("{ bulkJobs(first: 1) { nodes { id } } }", json!({}), "bulkJobs")
        .await;
    if let Some(id) = jobs["nodes"][0]["id"].as_str() {
        let body = fx
            .gql(
                "query($id: ID!) { bulkJob(id: $id) { rows(after: \"-1\") { nodes { row } } } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    }

    // The plain REST endpoint for scripts validates the same way.
    let resp = fx
        .app
        .http
        .post(
            fx.app
                .url("/bulk-jobs?action=SUSPEND&fileName=pause.csv&confirm=true"),
        )
        .bearer_auth(&fx.token)
        .body(format!("iccid\n{iccid}\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["report"]["validRecords"], 1, "{out}");
    assert_eq!(out["job"]["status"], "PROCESSING", "{out}");
    let id = out["job"]["id"].as_str().unwrap().to_owned();
    let job = wait_final(&fx, &id).await;
    assert_eq!(job["succeeded"], 1, "{job}");
}

fn admin(tenant: &ioto_domain::directory::Tenant) -> Actor {
    Actor {
        user_id: None,
        subject: "bulk-test".into(),
        tenant_id: tenant.id,
        role: Role::TenantAdmin,
        customer_id: None,
        issued_at: None,
        api_key: None,
        session_id: None,
    }
}

/// A fleet service on `store` that tells `hlr` of every change and nobody of its events.
fn service_on(store: &ioto_store::SqlStore, hlr: &Arc<SimulatedHlr>) -> FleetService {
    let fleet = store.fleet();
    FleetService::new(
        Arc::new(fleet.clone()),
        Arc::new(fleet.clone()),
        Arc::new(fleet),
        Arc::new(
            ioto_domain::fleet::SecretCipher::from_base64(&ioto_domain::fleet::SecretCipher::generate_key())
                .unwrap(),
        ),
        Arc::new(ioto_imports::TableFiles),
        Arc::new(NoNotifier),
        hlr.clone(),
    )
}

async fn a_killed_worker_is_resumed_without_sending_a_row_twice_on(
    store: ioto_store::SqlStore,
    factory: Factory,
) {
    // 300 SIMs at 300 transactions per second: the run takes about a second.
    let hlr = Arc::new(
        SimulatedHlr::new(HlrProfile {
            tps: 300,
            latency_median_ms: 5.0,
            latency_p99_ms: 20.0,
            ..HlrProfile::default()
        })
        .unwrap(),
    );
    let service = service_on(&store, &hlr).with_network_slots(16);
    let fleet = store.fleet();
    let tenant = factory.tenant("Resume").await;
    let sims = factory.sims(&tenant, None, 300).await;
    let actor = admin(&tenant);
    let mut csv = String::from("iccid\n");
    for s in &sims {
        csv.push_str(s.iccid.as_str());
        csv.push('\n');
    }
    let submitted = service
        .submit_bulk_file(
            &actor,
            BulkFile {
                tenant_id: None,
                file_name: Some("resume.csv".into()),
                format: ioto_domain::fleet::import::TableFormat::Csv,
                bytes: csv.into_bytes(),
                action: Some(NetworkAction::Suspend),
                note: None,
            },
        )
        .await
        .unwrap();
    let id = submitted.job.id;
    service.confirm_bulk_job(&actor, id).await.unwrap();

    // Worker A claims the job with a short lease and is killed part-way.
    let lease = Duration::from_secs(1);
    let claimed = service.claim_bulk_jobs("worker-a", lease, 4, &[]).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let run = {
        let service = service.clone();
        let job = claimed[0].clone();
        tokio::spawn(async move { service.run_bulk_job(job, "worker-a", lease).await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    run.abort();
    let _ = run.await;
    let part = fleet.bulk_job(Scope::Platform, id).await.unwrap().unwrap();
    assert_eq!(part.status, BulkJobStatus::Processing);
    assert!(
        part.processed > 0 && part.processed < 300,
        "killed part-way: {part:?}"
    );
    let sent_before = hlr.executed();

    // While A's lease lasts nobody else takes the job; after it lapses worker B does.
    assert!(service
        .claim_bulk_jobs("worker-b", lease, 4, &[])
        .await
        .unwrap()
        .is_empty());
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let claimed = service.claim_bulk_jobs("worker-b", lease, 4, &[]).await.unwrap();
    assert_eq!(claimed.len(), 1, "the lapsed job is taken over");
    let done = service
        .run_bulk_job(claimed[0].clone(), "worker-b", lease)
        .await
        .unwrap();
    assert_eq!(done.status, BulkJobStatus::Completed, "{done:?}");
    assert_eq!((done.processed, done.succeeded), (300, 300));

    // Every SIM was sent once: rows in flight when A died went again with the same request id,
    // which the network answered without acting twice.
    assert_eq!(hlr.executed(), 300, "sent before the kill: {sent_before}");
    let rows = fleet
        .bulk_rows(
            Scope::Platform,
            id,
            &BulkRowQuery {
                outcomes: vec![],
                after: None,
                limit: 1_000,
            },
        )
        .await
        .unwrap();
    assert!(rows.iter().all(|r| r.outcome == RowOutcome::Succeeded));
    let now = fleet
        .sims_by_id(Scope::Platform, &sims.iter().map(|s| s.id).collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(now.iter().all(|s| s.state == SimState::Suspended));
    // One audit entry per SIM change, not two.
    let audit = fleet
        .audit(
            Scope::Platform,
            tenant.id,
            &ioto_domain::fleet::AuditQuery {
                actions: vec![ioto_domain::fleet::AuditAction::StateChanged],
                limit: 1_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(audit.len(), 300);
}

/// A job of `n` SIMs suspending them, confirmed, on a service whose HLR is down while `down`
/// exists and which waits `patience` for it.
async fn outage_job(
    store: &ioto_store::SqlStore,
    factory: &Factory,
    name: &str,
    n: usize,
    down: &std::path::Path,
    patience: Duration,
) -> (FleetService, Arc<SimulatedHlr>, uuid::Uuid) {
    let hlr = Arc::new(
        SimulatedHlr::new(HlrProfile {
            latency_median_ms: 2.0,
            latency_p99_ms: 10.0,
            down_file: Some(down.to_path_buf()),
            ..HlrProfile::default()
        })
        .unwrap(),
    );
    let service = service_on(store, &hlr).with_network_patience(patience);
    let tenant = factory.tenant(name).await;
    let sims = factory.sims(&tenant, None, n).await;
    let actor = admin(&tenant);
    let csv: String = std::iter::once("iccid".to_owned())
        .chain(sims.iter().map(|s| s.iccid.as_str().to_owned()))
        .collect::<Vec<_>>()
        .join("\n");
    let submitted = service
        .submit_bulk_file(
            &actor,
            BulkFile {
                tenant_id: None,
                file_name: Some("outage.csv".into()),
                format: ioto_domain::fleet::import::TableFormat::Csv,
                bytes: csv.into_bytes(),
                action: Some(NetworkAction::Suspend),
                note: None,
            },
        )
        .await
        .unwrap();
    service.confirm_bulk_job(&actor, submitted.job.id).await.unwrap();
    (service, hlr, submitted.job.id)
}

#[tokio::test]
async fn a_job_waits_out_a_network_outage_and_keeps_its_claim() {
    let (store, factory) = ioto_test_support::factory::postgres_store().await;
    let fleet = store.fleet();
    let down = ioto_test_support::temp_dir().join("hlr-down");
    std::fs::write(&down, b"").unwrap();
    let (service, hlr, id) =
        outage_job(&store, &factory, "Outage", 40, &down, Duration::from_secs(120)).await;
    let lease = Duration::from_secs(3);
    let claimed = service.claim_bulk_jobs("worker-a", lease, 4, &[]).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let run = {
        let service = service.clone();
        let job = claimed[0].clone();
        tokio::spawn(async move { service.run_bulk_job(job, "worker-a", lease).await })
    };
    // The HLR stays down longer than the lease: the job waits, sends nothing, fails nothing,
    // and keeps its claim.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let waiting = fleet.bulk_job(Scope::Platform, id).await.unwrap().unwrap();
    assert_eq!(waiting.status, BulkJobStatus::Processing);
    assert_eq!((waiting.processed, waiting.failed), (0, 0), "{waiting:?}");
    assert!(
        service
            .claim_bulk_jobs("worker-b", lease, 4, &[])
            .await
            .unwrap()
            .is_empty(),
        "the waiting job is still worker A's"
    );
    assert_eq!(hlr.executed(), 0);
    // The HLR is back: every row goes through, once.
    std::fs::remove_file(&down).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the job ends once the HLR answers")
        .unwrap()
        .unwrap();
    assert_eq!(done.status, BulkJobStatus::Completed, "{done:?}");
    assert_eq!((done.succeeded, done.failed), (40, 0), "{done:?}");
    assert_eq!(hlr.executed(), 40);
}

#[tokio::test]
async fn a_network_silent_beyond_the_patience_fails_the_rows_as_no_answer() {
    let (store, factory) = ioto_test_support::factory::postgres_store().await;
    let fleet = store.fleet();
    let down = ioto_test_support::temp_dir().join("hlr-down");
    std::fs::write(&down, b"").unwrap();
    let (service, hlr, id) = outage_job(&store, &factory, "Gone", 5, &down, Duration::from_secs(2)).await;
    let lease = Duration::from_secs(30);
    let claimed = service.claim_bulk_jobs("worker-a", lease, 4, &[]).await.unwrap();
    let done = tokio::time::timeout(
        Duration::from_secs(30),
        service.run_bulk_job(claimed[0].clone(), "worker-a", lease),
    )
    .await
    .expect("the job gives up after its patience")
    .unwrap();
    assert_eq!((done.succeeded, done.failed), (0, 5), "{done:?}");
    assert_eq!(hlr.executed(), 0);
    let rows = fleet
        .bulk_rows(
            Scope::Platform,
            id,
            &BulkRowQuery {
                outcomes: vec![],
                after: None,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert!(
        rows.iter()
            .all(|r| r.reason.as_deref().is_some_and(|w| w.contains("did not answer"))),
        "{rows:?}"
    );
}

#[tokio::test]
async fn a_killed_worker_is_resumed_without_sending_a_row_twice() {
    let (store, factory) = ioto_test_support::factory::postgres_store().await;
    a_killed_worker_is_resumed_without_sending_a_row_twice_on(store, factory).await;
}

#[tokio::test]
async fn a_killed_worker_is_resumed_without_sending_a_row_twice_sqlite() {
    let path = ioto_test_support::temp_dir().join("bulk.db");
    let loc = ioto_store::StoreLocation::Sqlite { path };
    ioto_store::migrate(&loc).await.unwrap();
    let store = ioto_store::connect(&loc, 2).await.unwrap();
    let factory = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    a_killed_worker_is_resumed_without_sending_a_row_twice_on(store, factory).await;
}

/// Sample and hold: rapid single-SIM calls from one caller are sent as one job, each answered
/// with its own SIM's outcome and a warning recommending the list form.
async fn rapid_single_sim_calls_are_sent_together_with_a_warning_on(engines: Engines) {
    let fx = Fixture::on(engines, Role::TenantAdmin).await;
    let sims = fx.app.factory.sims(&fx.tenant, None, 12).await;
    let query = "mutation($i: [String!]!) { provisionSims(iccids: $i, action: SUSPEND) { completed job { id total } results { iccid outcome } } }";
    let calls = sims.iter().map(|s| {
        let iccid = s.iccid.to_string();
        let fx = &fx;
        async move { (iccid.clone(), fx.gql(query, json!({ "i": [iccid] })).await) }
    });
    let answers = futures::future::join_all(calls).await;
    // Held job → (its total, the calls it answered).
    let mut held_jobs = std::collections::HashMap::<String, (i64, i64)>::new();
    for (iccid, body) in &answers {
        assert!(body["errors"].is_null(), "{body}");
        let out = &body["data"]["provisionSims"];
        assert_eq!(out["completed"], true, "{body}");
        let results = out["results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "each call answers its own SIM: {body}");
        assert_eq!(results[0]["iccid"], iccid.as_str());
        assert_eq!(results[0]["outcome"], "SUCCEEDED", "{body}");
        if let Some(w) = body["extensions"]["warnings"][0].as_str() {
            assert!(w.contains("send the ICCIDs as one list"), "{w}");
            assert!(out["job"]["total"].as_i64().unwrap() > 1, "{body}");
            let held = held_jobs
                .entry(out["job"]["id"].as_str().unwrap().to_owned())
                .or_insert((out["job"]["total"].as_i64().unwrap(), 0));
            held.1 += 1;
        }
    }
    // The hold window is 50 ms of arrival time: twelve concurrent calls on a loaded machine may
    // arrive over more than one window, so they may form more than one held job — but they are
    // held, and each held job is exactly the calls it answers.
    assert!(
        !held_jobs.is_empty(),
        "rapid calls were held together: {answers:?}"
    );
    for (job, (total, answered)) in &held_jobs {
        assert_eq!(
            total, answered,
            "held job {job} runs exactly the calls it answers: {answers:?}"
        );
    }
    for s in &sims {
        let sim = fx.ok(SIM, json!({"i": s.iccid.to_string()}), "sim").await;
        assert_eq!(sim["state"], "SUSPENDED");
    }
}

#[tokio::test]
async fn provision_sims_answers_small_lists_with_every_outcome_and_keeps_roles() {
    provision_sims_answers_small_lists_with_every_outcome_and_keeps_roles_on(Engines::Real).await;
}

#[tokio::test]
async fn provision_sims_answers_small_lists_with_every_outcome_and_keeps_roles_embedded() {
    provision_sims_answers_small_lists_with_every_outcome_and_keeps_roles_on(Engines::Embedded).await;
}

#[tokio::test]
async fn bad_files_are_refused_before_anything_runs() {
    bad_files_are_refused_before_anything_runs_on(Engines::Real).await;
}

#[tokio::test]
async fn bad_files_are_refused_before_anything_runs_embedded() {
    bad_files_are_refused_before_anything_runs_on(Engines::Embedded).await;
}

#[tokio::test]
async fn rapid_single_sim_calls_are_sent_together_with_a_warning() {
    rapid_single_sim_calls_are_sent_together_with_a_warning_on(Engines::Real).await;
}

#[tokio::test]
async fn rapid_single_sim_calls_are_sent_together_with_a_warning_embedded() {
    rapid_single_sim_calls_are_sent_together_with_a_warning_on(Engines::Embedded).await;
}
