//! Inventory import: preview with per-row errors, commit, IMPORTED events; CSV and XLSX.

use base64::Engine as _;
use ioto_domain::identifiers::luhn_check_digit;
use ioto_domain::Role;
use serde_json::json;

use ioto_test_support::Engines;

use super::Fixture;

const IMPORT: &str = "mutation($content: String!, $format: TableFormat!, $commit: Boolean, $skip: Boolean) {
  importSims(input: { content: $content, format: $format, commit: $commit, skipInvalid: $skip, note: \"delivery 42\" }) {
    rows valid committed importId created errors { row field value reason }
  }
}";

fn iccid(seed: u128, n: u128) -> String {
    let body = format!("8949{:014}", (seed * 1000 + n) % 100_000_000_000_000);
    format!("{body}{}", luhn_check_digit(&body).unwrap())
}

/// Commits `csv` as a whole: refused, nothing written (the tenant keeps its `stored` SIMs); then
/// again skipping the bad rows: `created` SIMs committed. Returns both answers.
async fn refused_whole_then_committed_skipping(
    fx: &Fixture,
    csv: &str,
    stored: i64,
    created: i64,
) -> (serde_json::Value, serde_json::Value) {
    let count = "{ sims { totalCount } }";
    let commit = |variables: serde_json::Value| fx.ok(IMPORT, variables, "importSims");
    let refused = commit(json!({"content": csv, "format": "CSV", "commit": true})).await;
    assert_eq!(refused["committed"], false, "{refused}");
    assert_eq!(fx.ok(count, json!({}), "sims").await["totalCount"], stored);
    let done = commit(json!({"content": csv, "format": "CSV", "commit": true, "skip": true})).await;
    assert_eq!(
        (done["committed"].as_bool(), done["created"].as_i64()),
        (Some(true), Some(created)),
        "{done}"
    );
    assert_eq!(
        fx.ok(count, json!({}), "sims").await["totalCount"],
        stored + created
    );
    (refused, done)
}

#[tokio::test]
async fn a_csv_is_previewed_row_by_row_then_committed() {
    a_csv_is_previewed_row_by_row_then_committed_on(Engines::Real).await;
}

/// The same on SQLite and the embedded engines.
#[tokio::test]
async fn a_csv_is_previewed_row_by_row_then_committed_embedded() {
    a_csv_is_previewed_row_by_row_then_committed_on(Engines::Embedded).await;
}

async fn a_csv_is_previewed_row_by_row_then_committed_on(engines: Engines) {
    let fx = Fixture::on(engines, Role::Operator).await;
    let seed = uuid::Uuid::new_v4().as_u128() % 10_000_000_000;
    let taken = fx.app.factory.sims(&fx.tenant, None, 1).await[0]
        .iccid
        .to_string();
    let mut bad_check = iccid(seed, 2);
    let last = bad_check.pop().unwrap();
    bad_check.push(if last == '0' { '1' } else { '0' });
    let imsi = |n: u128| format!("26201{:010}", (seed * 1000 + n) % 10_000_000_000);
    let csv = format!(
        "iccid,imsi,msisdn,pin,puk,type\n\
         {},{},+4915100000001,1234,12345678,prepaid\n\
         {bad_check},{},,,,\n\
         {},{},,,,\n\
         {},{},0151,,,\n\
         {taken},{},,,,\n\
         {},{},,12,,\n",
        iccid(seed, 1),
        imsi(1),
        imsi(2),
        iccid(seed, 1),
        imsi(3),
        iccid(seed, 4),
        imsi(4),
        imsi(5),
        iccid(seed, 6),
        imsi(6)
    );
    let preview = fx
        .ok(IMPORT, json!({"content": csv, "format": "CSV"}), "importSims")
        .await;
    assert_eq!(
        (
            preview["rows"].as_i64(),
            preview["valid"].as_i64(),
            preview["committed"].as_bool()
        ),
        (Some(6), Some(1), Some(false))
    );
    let errors: Vec<(i64, &str)> = preview["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_i64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        [
            (3, "iccid"),
            (4, "iccid"),
            (5, "msisdn"),
            (6, "iccid"),
            (7, "pin")
        ],
        "{preview}"
    );
    let reasons: Vec<&str> = preview["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(reasons[0].contains("Luhn"));
    assert_eq!(reasons[1], "duplicate in file: already on row 2");
    assert!(reasons[2].contains("E.164"));
    assert_eq!(reasons[3], "already in inventory");
    assert!(reasons[4].contains("4 to 8 digits"));
    // Nothing written by a preview.
    let count = "{ sims { totalCount } }";
    assert_eq!(fx.ok(count, json!({}), "sims").await["totalCount"], 1);

    // Commit with errors: refused as a whole unless the bad rows are skipped.
    let (_, done) = refused_whole_then_committed_skipping(&fx, &csv, 1, 1).await;
    let sim = fx
        .ok(
            "query($i: Iccid!) { sim(iccid: $i) { state type msisdn pin events { action note newValue } } }",
            json!({"i": iccid(seed, 1)}),
            "sim",
        )
        .await;
    assert_eq!(
        (
            sim["state"].as_str(),
            sim["type"].as_str(),
            sim["msisdn"].as_str()
        ),
        (Some("INVENTORY"), Some("PREPAID"), Some("+4915100000001"))
    );
    assert_eq!(sim["events"][0]["action"], "IMPORTED");
    let note = sim["events"][0]["note"].as_str().unwrap();
    assert!(
        note.contains(done["importId"].as_str().unwrap()) && note.contains("delivery 42"),
        "{note}"
    );

    // The same file again: every row is already in inventory now.
    let again = fx
        .ok(IMPORT, json!({"content": csv, "format": "CSV"}), "importSims")
        .await;
    assert_eq!(again["valid"], 0);
    fx.app.stop().await;
}

/// A file clean in itself goes straight to the insert; when the inventory holds one of its
/// ICCIDs the insert is refused, the rows are checked against the inventory, and with
/// `skipInvalid` the others are committed with the PIN and PUK they had in the file (sealed
/// once, before the first attempt).
#[tokio::test]
async fn a_clean_file_meeting_a_taken_iccid_commits_the_other_rows_with_their_secrets() {
    // The tenant's admin: the one role that reads PINs and PUKs in clear.
    let fx = Fixture::on(Engines::Real, Role::TenantAdmin).await;
    let seed = uuid::Uuid::new_v4().as_u128() % 10_000_000_000;
    let taken = fx.app.factory.sims(&fx.tenant, None, 1).await[0]
        .iccid
        .to_string();
    let imsi = |n: u128| format!("26201{:010}", (seed * 1000 + n) % 10_000_000_000);
    let csv = format!(
        "iccid,imsi,pin,puk\n{},{},4711,93418765\n{taken},{},1234,12345678\n{},{},,87654321\n",
        iccid(seed, 1),
        imsi(1),
        imsi(2),
        iccid(seed, 3),
        imsi(3),
    );
    let (refused, _) = refused_whole_then_committed_skipping(&fx, &csv, 1, 2).await;
    assert_eq!(refused["errors"][0]["row"], 3, "{refused}");
    assert_eq!(refused["errors"][0]["reason"], "already in inventory");
    let secrets = "query($i: Iccid!) { sim(iccid: $i) { pin puk } }";
    let first = fx.ok(secrets, json!({"i": iccid(seed, 1)}), "sim").await;
    assert_eq!(
        (first["pin"].as_str(), first["puk"].as_str()),
        (Some("4711"), Some("93418765"))
    );
    let third = fx.ok(secrets, json!({"i": iccid(seed, 3)}), "sim").await;
    assert_eq!(
        (third["pin"].as_str(), third["puk"].as_str()),
        (None, Some("87654321"))
    );
    fx.app.stop().await;
}

#[tokio::test]
async fn an_xlsx_file_imports_like_a_csv() {
    let fx = Fixture::new(Role::TenantAdmin).await;
    let seed = uuid::Uuid::new_v4().as_u128() % 10_000_000_000;
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in ["ICCID", "IMSI", "Type", "PIN"].iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for r in 1..=3u32 {
        sheet.write_string(r, 0, iccid(seed, u128::from(r))).unwrap();
        // IMSIs typed as numbers in the spreadsheet still import exactly.
        sheet
            .write_number(
                r,
                1,
                (262_010_000_000_000 + seed % 1_000_000 * 10 + u128::from(r)) as f64,
            )
            .unwrap();
        sheet.write_string(r, 2, "data-only").unwrap();
        sheet.write_string(r, 3, "0000").unwrap();
    }
    let content = base64::engine::general_purpose::STANDARD.encode(book.save_to_buffer().unwrap());
    let done = fx
        .ok(
            IMPORT,
            json!({"content": content, "format": "XLSX", "commit": true}),
            "importSims",
        )
        .await;
    assert_eq!(done["created"], 3, "{done}");
    let sim = fx
        .ok(
            "query($i: Iccid!) { sim(iccid: $i) { type pin } }",
            json!({"i": iccid(seed, 2)}),
            "sim",
        )
        .await;
    assert_eq!(sim, json!({"type": "DATA_ONLY", "pin": "0000"}));
    let body = fx
        .gql(IMPORT, json!({"content": "not base64!", "format": "XLSX"}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "content", "{body}");
    fx.app.stop().await;
}

#[tokio::test]
async fn files_beyond_the_graphql_body_limit_go_to_the_import_endpoint() {
    let fx = Fixture::new(Role::Operator).await;
    let seed = uuid::Uuid::new_v4().as_u128() % 10_000_000_000;
    let mut csv = String::from("iccid;imsi;labels\n");
    for n in 0..30_000u128 {
        csv.push_str(&format!(
            "{};26202{:010};batch=b1\n",
            iccid(seed, n),
            (seed * 100_000 + n) % 10_000_000_000
        ));
    }
    assert!(
        csv.len() > fx.app.config.graphql.body_limit_bytes,
        "the file must exceed the GraphQL limit"
    );
    let post = |query: &'static str, body: String, token: Option<&str>| {
        let mut req = fx
            .app
            .http
            .post(fx.app.url(&format!("/imports/sims{query}")))
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let resp = post("?format=csv", csv.clone(), Some(&fx.token)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let preview: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        (
            preview["rows"].as_i64(),
            preview["valid"].as_i64(),
            preview["committed"].as_bool()
        ),
        (Some(30_000), Some(30_000), Some(false))
    );
    let resp = post("?format=csv&commit=true&note=bulk", csv.clone(), Some(&fx.token))
        .await
        .unwrap();
    let done: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(done["created"], 30_000, "{done}");
    let count = fx
        .ok(
            "{ sims(filter: { labels: [{ key: \"batch\", value: \"b1\" }] }) { totalCount } }",
            json!({}),
            "sims",
        )
        .await;
    assert_eq!(count["totalCount"], 30_000);

    // Errors say what is wrong, with the HTTP status to match.
    let resp = post("?format=csv", csv.clone(), None).await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = post("", csv.clone(), Some(&fx.token)).await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["field"], "format", "{body}");
    let resp = post("?format=csv&commit=true", csv, Some(&fx.token))
        .await
        .unwrap();
    let again: serde_json::Value = resp.json().await.unwrap();
    // Every row twice: its ICCID and its IMSI are both registered now.
    assert_eq!(
        (
            again["committed"].as_bool(),
            again["errors"].as_array().map(Vec::len)
        ),
        (Some(false), Some(60_000))
    );
    assert_eq!(again["errors"][0]["reason"], "already in inventory");
    fx.app.stop().await;
}

/// Files built to exhaust memory are refused with the reason, and the server goes on serving:
/// one cell in A1 and one in XFD1048576 (read as a rectangle: 17 billion cells), and a CSV line
/// of twenty million empty fields.
#[tokio::test]
async fn spreadsheet_and_csv_bombs_are_refused_and_the_server_keeps_serving() {
    let fx = Fixture::new(Role::Operator).await;
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "iccid").unwrap();
    sheet.write_string(1_048_575, 16_383, "far away").unwrap();
    let xlsx = book.save_to_buffer().unwrap();
    let mut csv = b"iccid;imsi\n".to_vec();
    csv.extend(std::iter::repeat_n(b';', 20 << 20));
    for (format, body, says) in [("xlsx", xlsx, "XFD1048576"), ("csv", csv, "line 2")] {
        let resp = fx
            .app
            .http
            .post(fx.app.url(&format!("/imports/sims?format={format}")))
            .bearer_auth(&fx.token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{format}");
        let err: serde_json::Value = resp.json().await.unwrap();
        assert!(err.to_string().contains(says), "{format}: {err}");
        assert_eq!(
            fx.app.get_text("/healthz").await.trim(),
            "ok",
            "still serving after {format}"
        );
    }
    let count = fx.ok("{ sims { totalCount } }", json!({}), "sims").await;
    assert_eq!(count["totalCount"], 0, "nothing was imported");
    fx.app.stop().await;
}
