//! Workbooks that lie about themselves, sent by an operator to `POST /bulk-jobs` and
//! `POST /imports/sims`: each is read by what it holds or refused with a clear reason, and the
//! server goes on serving every tenant.

use std::io::{Cursor, Write};

use ioto_domain::Role;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::Value;

const WORKBOOK: &str = r#"<?xml version="1.0"?><workbook xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="SIMs" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
const RELS: &str = r#"<Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#;

/// A workbook of one sheet holding `cells` (the inside of `<sheetData>`) and `strings` as its
/// shared-strings part.
pub(crate) fn workbook(cells: &str, strings: &str) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let sheet = format!("<worksheet><sheetData>{cells}</sheetData></worksheet>");
    for (name, xml) in [
        ("xl/workbook.xml", WORKBOOK),
        ("xl/_rels/workbook.xml.rels", RELS),
        ("xl/sharedStrings.xml", strings),
        ("xl/worksheets/sheet1.xml", sheet.as_str()),
    ] {
        w.start_file(name, options).unwrap();
        w.write_all(xml.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The process's peak resident memory so far, in MiB.
fn peak_rss_mib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: i64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

fn inline(cell: &str, text: &str) -> String {
    format!(r#"<c r="{cell}" t="inlineStr"><is><t>{text}</t></is></c>"#)
}

async fn post(app: &TestApp, token: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .header(
            "content-type",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn workbooks_that_lie_about_their_size_are_read_by_what_they_hold() {
    let app = TestApp::spawn(Engines::Real).await;
    let t = app.factory.tenant("Lying files").await;
    let sims = app.factory.sims(&t, None, 1).await;
    let iccid = sims[0].iccid.as_str().to_owned();
    let operator = app.factory.user(&t, Role::Operator, None).await;
    let token = app.login(operator.email.as_str(), TEST_PASSWORD).await;

    // The shared strings declare four billion entries and hold two: a reader that reserves room
    // for the declared count asks for ~100 GB, and a failed allocation aborts the process.
    let lying_count = workbook(
        r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" t="s"><v>1</v></c></row>"#,
        &format!(
            r#"<sst count="4294967295" uniqueCount="4294967295"><si><t>iccid</t></si><si><t>{iccid}</t></si></sst>"#
        ),
    );
    let (status, body) = post(
        &app,
        &token,
        "/bulk-jobs?action=SUSPEND&format=xlsx",
        lying_count.clone(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["report"]["validRecords"], 1, "{body}");
    // The import reads it too: what it refuses is the content (no `imsi` column), not the file.
    let (status, body) = post(&app, &token, "/imports/sims?format=xlsx", lying_count).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("no 'imsi' column"), "{body}");

    // A cell in the 64th column and one a million rows down: padded into the rectangle between
    // them it is 64 million cells (1.5 GB); kept sparse it is read and checked, and the
    // process's peak memory hardly moves (each test runs in a process of its own).
    let far_apart = workbook(
        &format!(
            r#"<row r="1">{}{}{}</row><row r="999999">{}{}</row>"#,
            inline("A1", "iccid"),
            inline("B1", "imsi"),
            inline("BL1", "labels"),
            inline("A999999", &iccid),
            inline("B999999", "262011234567890")
        ),
        "<sst/>",
    );
    let before = peak_rss_mib();
    let (status, body) = post(&app, &token, "/imports/sims?format=xlsx", far_apart).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"], 1, "one row that is not blank: {body}");
    let grew = peak_rss_mib() - before;
    assert!(
        grew < 400,
        "reading two far-apart cells raised the peak memory by {grew} MiB"
    );

    // A cell naming a shared string the workbook does not have: refused naming the cell.
    let dangling = workbook(
        &format!(
            r#"<row r="1">{}</row><row r="2"><c r="A2" t="s"><v>7</v></c></row>"#,
            inline("A1", "iccid")
        ),
        "<sst/>",
    );
    let (status, body) = post(&app, &token, "/bulk-jobs?action=SUSPEND&format=xlsx", dangling).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("cell A2") && message.contains("shared string"),
        "{body}"
    );

    // The server still serves, everyone.
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    app.stop().await;
}
