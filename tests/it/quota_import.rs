//! Data quotas set from a file: uploaded through the GraphQL multipart request, checked row by
//! row (each error naming its line, column and value), written only when asked — all or, when
//! asked to skip the bad rows, the good ones — and shown on the SIMs; hostile files and callers
//! refused.

use ioto_domain::fleet::bulk::{MAX_BULK_FILE_BYTES, MAX_BULK_ROWS};
use ioto_domain::{Iccid, Role};
use ioto_test_support::app::{assert_refused, error_code};
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

const IMPORT: &str = "mutation($input: ImportSimQuotasInput!) { importSimQuotas(input: $input) {
    rows valid invalid set removed unchanged committed errors { line column value message } fileErrors } }";

const QUOTA: &str =
    "query($i: Iccid!) { sim(iccid: $i) { quota { limitBytes stages action resumeNextPeriod source } } }";

/// Sends `file` to `importSimQuotas` as a GraphQL multipart request.
async fn upload(app: &TestApp, token: &str, file_name: &str, file: Vec<u8>, input: Value) -> Value {
    crate::fleet::bulk::upload_to(app, token, IMPORT, file_name, file, input).await
}

/// The report of an upload that must not fail.
async fn report(app: &TestApp, token: &str, file_name: &str, file: Vec<u8>, input: Value) -> Value {
    let body = upload(app, token, file_name, file, input).await;
    assert!(body["errors"].is_null(), "{file_name}: {body}");
    body["data"]["importSimQuotas"].clone()
}

/// The quota each SIM shows (null without one).
async fn quotas(app: &TestApp, token: &str, iccids: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    for iccid in iccids {
        let body = app.gql(Some(token), QUOTA, json!({"i": iccid})).await;
        assert!(body["errors"].is_null(), "{body}");
        out.push(body["data"]["sim"]["quota"].clone());
    }
    out
}

/// A valid ICCID no SIM has (the factory's start with 8988).
fn unknown_iccid() -> String {
    let body = format!("8949{:014}", uuid::Uuid::new_v4().as_u128() % 100_000_000_000_000);
    Iccid::with_check_digit(&body).unwrap().to_string()
}

fn csv_of(rows: &[Vec<String>]) -> Vec<u8> {
    let mut text = String::new();
    for row in rows {
        text.push_str(&row.join(","));
        text.push('\n');
    }
    text.into_bytes()
}

/// The rows as a workbook; a limit in bytes is typed as a number, as a spreadsheet keeps it.
fn xlsx_of(rows: &[Vec<String>]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32, c as u16);
            if cell.is_empty() {
                continue;
            }
            match cell.parse::<f64>() {
                Ok(n) if r > 0 && c == 1 => sheet.write_number(r, c, n).unwrap(),
                _ => sheet.write_string(r, c, cell.as_str()).unwrap(),
            };
        }
    }
    book.save_to_buffer().unwrap()
}

fn table(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
        .collect()
}

/// `file(rows)` as `name`: good rows (units, stages, SUSPEND with resume, REMOVE) and bad ones
/// (an unknown ICCID, a bad limit, a bad stage, a repeated ICCID, another tenant's SIM).
async fn a_file_sets_quotas_only_as_asked_on(
    engines: Engines,
    name: &str,
    file: fn(&[Vec<String>]) -> Vec<u8>,
) {
    let app = TestApp::spawn(engines).await;
    let f = &app.factory;
    let (a, b) = (f.tenant("Quota file").await, f.tenant("Quota file, other").await);
    let s: Vec<String> = f
        .sims(&a, None, 6)
        .await
        .iter()
        .map(|s| s.iccid.to_string())
        .collect();
    let other = f.sims(&b, None, 1).await.remove(0).iccid.to_string();
    let admin = f.user(&a, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    // A quota set before, which the file's REMOVE row takes away.
    let set = app
        .gql(
            Some(&token),
            "mutation($i: Iccid!) { setSimQuota(iccid: $i, input: { limitBytes: 1000 }) { limitBytes } }",
            json!({"i": s[4]}),
        )
        .await;
    assert!(set["errors"].is_null(), "{set}");
    let unknown = unknown_iccid();
    let rows = table(&[
        &["ICCID", "Limit", "Stages", "Action", "Resume next period", "Note"],
        &[&s[0], "1.5 GB", "80;90;95", "", "", "truck 1"],
        &[&s[1], "524288000", "", "SUSPEND", "yes", ""],
        &[&s[5], "2 GiB", "", "notify", "", ""],
        &[&unknown, "1 GB", "", "", "", ""],
        &[&s[2], "lots", "", "", "", ""],
        &[&s[3], "1 GB", "90;80", "", "", ""],
        &[&s[0], "2 GB", "", "", "", ""],
        &[&other, "1 GB", "", "", "", ""],
        &[&s[4], "", "", "REMOVE", "", ""],
    ]);
    let bytes = file(&rows);

    // Checked only: every bad row named by line, column and why; nothing written.
    let checked = report(&app, &token, name, bytes.clone(), json!({})).await;
    let counts = (
        &checked["rows"],
        &checked["valid"],
        &checked["invalid"],
        &checked["set"],
        &checked["removed"],
        &checked["unchanged"],
        &checked["committed"],
    );
    assert_eq!(
        counts,
        (
            &json!(9),
            &json!(4),
            &json!(5),
            &json!(3),
            &json!(1),
            &json!(0),
            &json!(false)
        ),
        "{checked}"
    );
    let errors = checked["errors"].as_array().unwrap();
    let said: Vec<(u64, &str, &str)> = errors
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["column"].as_str().unwrap(),
                e["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        said,
        [
            (5, "iccid", unknown.as_str()),
            (6, "limit", "lots"),
            (7, "stages", "90;80"),
            (8, "iccid", s[0].as_str()),
            (9, "iccid", other.as_str()),
        ],
        "{checked}"
    );
    let message = |i: usize| errors[i]["message"].as_str().unwrap();
    assert_eq!(message(0), "no such SIM in this tenant");
    assert!(
        message(1).contains("not a limit") && message(1).contains("KiB"),
        "{checked}"
    );
    assert!(message(2).contains("ascending"), "{checked}");
    assert!(message(3).contains("already on line 2"), "{checked}");
    // Another tenant's SIM is told in the same words as one that does not exist.
    assert_eq!(message(4), message(0));
    let all: Vec<&str> = s.iter().map(String::as_str).collect();
    let before = quotas(&app, &token, &all).await;
    assert!(
        before[..4].iter().chain(&before[5..]).all(Value::is_null),
        "a check wrote quotas: {before:?}"
    );
    assert_eq!(before[4]["limitBytes"], 1000, "a check removed a quota");

    // Committed with bad rows: refused as a whole, nothing written.
    let body = upload(&app, &token, name, bytes.clone(), json!({"commit": true})).await;
    assert_refused(&body, "file", "5 rows have errors");
    assert_eq!(
        quotas(&app, &token, &all).await,
        before,
        "a refused file wrote quotas"
    );

    // Committed skipping the bad rows: exactly the good ones are written.
    let done = report(
        &app,
        &token,
        name,
        bytes,
        json!({"commit": true, "skipInvalid": true}),
    )
    .await;
    let counts = (
        &done["valid"],
        &done["invalid"],
        &done["set"],
        &done["removed"],
        &done["unchanged"],
        &done["committed"],
    );
    assert_eq!(
        counts,
        (
            &json!(4),
            &json!(5),
            &json!(3),
            &json!(1),
            &json!(0),
            &json!(true)
        ),
        "{done}"
    );
    let after = quotas(&app, &token, &all).await;
    let quota = |limit: u64, stages: Value, action: &str, resume: bool| {
        json!({"limitBytes": limit, "stages": stages, "action": action,
            "resumeNextPeriod": resume, "source": "SIM"})
    };
    assert_eq!(
        after,
        [
            quota(1_500_000_000, json!([80, 90, 95]), "NOTIFY", false),
            quota(524_288_000, json!([80, 90]), "SUSPEND", true),
            Value::Null,
            Value::Null,
            Value::Null,
            quota(2 << 30, json!([80, 90]), "NOTIFY", false),
        ]
    );
    let other_admin = f.user(&b, Role::TenantAdmin, None).await;
    let other_token = app.login(other_admin.email.as_str(), TEST_PASSWORD).await;
    assert_eq!(
        quotas(&app, &other_token, &[&other]).await,
        [Value::Null],
        "another tenant's SIM took a quota"
    );

    // REMOVE on a SIM without a quota of its own changes nothing; on one with a quota, removes it.
    let removal = file(&table(&[
        &["iccid", "limit", "action"],
        &[&s[4], "", "REMOVE"],
        &[&s[0], "", "remove"],
    ]));
    let done = report(&app, &token, name, removal, json!({"commit": true})).await;
    let counts = (&done["removed"], &done["unchanged"], &done["committed"]);
    assert_eq!(counts, (&json!(1), &json!(1), &json!(true)), "{done}");
    assert!(
        quotas(&app, &token, &[&s[0]]).await[0].is_null(),
        "the quota stays"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_csv_file_sets_quotas_only_as_asked_on_embedded_engines() {
    a_file_sets_quotas_only_as_asked_on(Engines::Embedded, "quotas.csv", csv_of).await;
}

#[tokio::test]
async fn a_csv_file_sets_quotas_only_as_asked_on_real_engines() {
    a_file_sets_quotas_only_as_asked_on(Engines::Real, "quotas.csv", csv_of).await;
}

#[tokio::test]
async fn an_xlsx_file_sets_quotas_like_a_csv() {
    a_file_sets_quotas_only_as_asked_on(Engines::Embedded, "Quotas.XLSX", xlsx_of).await;
}

#[tokio::test]
async fn hostile_files_and_callers_are_refused_and_nothing_is_written() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let f = &app.factory;
    let t = f.tenant("Quota file, hostile").await;
    let sim = f.sims(&t, None, 1).await.remove(0).iccid.to_string();
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let good = format!("iccid,limit\n{sim},1 GB\n").into_bytes();

    // One byte past the bound: refused by size.
    let huge = vec![b'8'; MAX_BULK_FILE_BYTES + 1];
    let body = upload(&app, &token, "huge.csv", huge, json!({"commit": true})).await;
    assert_refused(&body, "file", "at most 20 MB");

    // One row past the bound: refused as a whole, naming the bound.
    let mut many = String::from("iccid,limit\n");
    for _ in 0..=MAX_BULK_ROWS {
        many.push_str(&sim);
        many.push_str(",1 GB\n");
    }
    let body = upload(
        &app,
        &token,
        "many.csv",
        many.into_bytes(),
        json!({"commit": true}),
    )
    .await;
    assert_refused(&body, "file", "at most 100,000");

    // A header without `limit`: the file is refused naming the column and the allowed ones.
    let no_limit = format!("iccid,limit_bytes\n{sim},5\n").into_bytes();
    let checked = report(&app, &token, "nolimit.csv", no_limit.clone(), json!({})).await;
    let said = checked["fileErrors"][0].as_str().unwrap_or_default();
    assert!(
        said.contains("no 'limit' column")
            && said.contains("iccid, limit, stages, action, resume_next_period"),
        "{checked}"
    );
    assert_eq!(checked["committed"], false);
    let body = upload(&app, &token, "nolimit.csv", no_limit, json!({"commit": true})).await;
    assert_refused(&body, "file", "no 'limit' column");

    // Not a workbook, not a known format, nothing at all.
    let garbage = b"PK\x03\x04\x00\xff\xfe garbage, not a workbook".to_vec();
    let body = upload(&app, &token, "quotas.xlsx", garbage, json!({"commit": true})).await;
    assert_refused(&body, "file", "is not an XLSX workbook");
    let body = upload(&app, &token, "quotas.pdf", good.clone(), json!({"commit": true})).await;
    assert_refused(&body, "file", "name the file .csv or .xlsx");
    let body = upload(&app, &token, "quotas.csv", Vec::new(), json!({"commit": true})).await;
    assert_refused(&body, "file", "is empty");

    // Roles that may not set quotas: a customer user (its sub-customer's SIMs are not its to
    // manage either) and a viewer.
    let customer = f.customer(&t, "Sub-customer").await;
    let own = f.sims(&t, Some(customer.id), 1).await.remove(0).iccid.to_string();
    let customer_user = f.user(&t, Role::CustomerUser, Some(customer.id)).await;
    let viewer = f.user(&t, Role::Viewer, None).await;
    let file = format!("iccid,limit\n{own},1 GB\n{sim},1 GB\n").into_bytes();
    for user in [customer_user, viewer] {
        let user_token = app.login(user.email.as_str(), TEST_PASSWORD).await;
        for input in [json!({}), json!({"commit": true, "skipInvalid": true})] {
            let body = upload(&app, &user_token, "quotas.csv", file.clone(), input).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("FORBIDDEN"),
                "{}: {body}",
                user.role
            );
        }
    }
    // Nothing of the above wrote a quota.
    assert_eq!(
        quotas(&app, &token, &[&sim, &own]).await,
        [Value::Null, Value::Null]
    );
    // And the good file still goes through.
    let done = report(&app, &token, "quotas.csv", good, json!({"commit": true})).await;
    assert_eq!(done["set"], 1, "{done}");
    app.stop().await;
}
