//! Export jobs end to end: requested through GraphQL, written by the server's worker, downloaded
//! through signed links, and read back by outside readers — pyarrow for Parquet and openpyxl for
//! XLSX (installed by `scripts/engines.sh` into `IOTO_PY_ENV`) — and the `csv` crate for CSV.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use hmac::{Hmac, Mac};
use ioto_domain::identifiers::MccMnc;
use ioto_domain::ports::CdrRecord;
use ioto_domain::Role;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};
use sha2::Sha256;

const REQUEST: &str = "mutation($kind: ExportKind!, $format: ExportFormat!, $filter: ExportFilterInput) { \
     requestExport(kind: $kind, format: $format, filter: $filter) { id status kind format expectedRows } }";
const JOB: &str = "query($id: ID!) { exportJob(id: $id) { id status rows bytes expectedRows failure sha256 fileName downloadUrl expiresAt filter } }";

/// Runs a reader script on `file`; its JSON output.
fn read_with_python(script: &str, file: &std::path::Path) -> Value {
    let out = std::process::Command::new(ioto_test_support::python_readers())
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("running python");
    assert!(
        out.status.success(),
        "reader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("reader output is JSON")
}

const PYARROW: &str = r#"
import sys, json
import pyarrow.parquet as pq
f = pq.ParquetFile(sys.argv[1])
t = f.read()
md = f.metadata
print(json.dumps({
    "types": {x.name: str(x.type) for x in t.schema},
    "rows": t.to_pylist(),
    "meta": {k.decode(): v.decode() for k, v in (md.metadata or {}).items() if not k.startswith(b"ARROW")},
    "row_groups": md.num_row_groups,
    "compression": md.row_group(0).column(0).compression if md.num_row_groups else None,
}, default=str))
"#;

const OPENPYXL: &str = r#"
import sys, json
import openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
out = {}
for ws in wb.worksheets:
    out[ws.title] = {
        "freeze": ws.freeze_panes,
        "rows": [[[type(c.value).__name__, c.value, c.number_format] for c in row] for row in ws.iter_rows()],
    }
print(json.dumps(out, default=str))
"#;

struct Fx {
    app: TestApp,
}

impl Fx {
    async fn request(&self, token: &str, kind: &str, format: &str, filter: Value) -> Value {
        self.app
            .gql(
                Some(token),
                REQUEST,
                json!({"kind": kind, "format": format, "filter": filter}),
            )
            .await
    }

    /// Requests an export and waits for its end; the finished job.
    async fn export(&self, token: &str, kind: &str, format: &str, filter: Value) -> Value {
        let body = self.request(token, kind, format, filter).await;
        let id = body["data"]["requestExport"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned();
        self.finished(token, &id).await
    }

    async fn job(&self, token: &str, id: &str) -> Value {
        let body = self.app.gql(Some(token), JOB, json!({"id": id})).await;
        assert!(body["errors"].is_null(), "{body}");
        body["data"]["exportJob"].clone()
    }

    async fn finished(&self, token: &str, id: &str) -> Value {
        let start = Instant::now();
        loop {
            let job = self.job(token, id).await;
            if !matches!(job["status"].as_str(), Some("QUEUED" | "RUNNING")) {
                return job;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "export {id} did not end: {job}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// GETs a path without a token; status and body.
    async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let resp = self.app.http.get(self.app.url(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.bytes().await.unwrap().to_vec())
    }

    /// Downloads a completed job's file (checking its headers and hash) into a temp file.
    async fn download(&self, job: &Value) -> (Vec<u8>, PathBuf) {
        assert_eq!(job["status"], "COMPLETED", "{job}");
        let (status, headers, bytes) = self.get(job["downloadUrl"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(bytes.len() as u64, job["bytes"].as_u64().unwrap(), "{job}");
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with("attachment;") && disposition.contains(job["fileName"].as_str().unwrap()),
            "{disposition}"
        );
        assert_eq!(headers["cache-control"], "private, no-store");
        use sha2::Digest as _;
        let sum: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            job["sha256"].as_str(),
            Some(sum.as_str()),
            "the file is the one the job wrote"
        );
        // As a browser asks for it (compressed): the answer ends, whole.
        let zipped = tokio::time::timeout(Duration::from_secs(20), async {
            let resp = self
                .app
                .http
                .get(self.app.url(job["downloadUrl"].as_str().unwrap()))
                .header("accept-encoding", "gzip")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.bytes().await
        })
        .await
        .expect("a compressed download ends");
        assert!(!zipped.expect("a compressed download is read whole").is_empty() || bytes.is_empty());
        let path = ioto_test_support::temp_dir().join(job["fileName"].as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        (bytes, path)
    }
}

fn csv_rows(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    assert!(!bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "no BOM");
    let mut r = csv::ReaderBuilder::new().from_reader(bytes);
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

/// A download link signed with the server's key (read from its data directory).
fn signed(app: &TestApp, job: &str, tenant: &str, expires: i64) -> String {
    let key = std::fs::read_to_string(app.config.data_dir.join("export-link-key")).unwrap();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.trim().as_bytes()).unwrap();
    mac.update(format!("ioto-export-download\n{job}\n{tenant}\n{expires}").as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("/exports/{job}/download?tenant={tenant}&expires={expires}&signature={sig}")
}

fn card(tenant: &str, kind: &str, from: &str, price: &str) -> Value {
    json!({ "input": {
        "tenantId": tenant, "kind": kind, "name": "Standard", "currency": "eur", "billingPeriod": "MONTHLY",
        "versions": [{
            "effectiveFrom": from, "accessFee": "1.50", "roundingIncrementBytes": 1000,
            "zones": [
                { "name": "Home", "networks": ["262-01"], "pricePerMb": price },
                { "name": "World", "pricePerMb": "0.1", "isDefault": true }
            ]
        }]
    }})
}

const CREATE_CARD: &str = "mutation($input: CreateRateCardInput!) { createRateCard(input: $input) { id } }";

async fn exports_read_back_by_outside_readers_on(engines: Engines) {
    let app = TestApp::spawn(engines).await;
    let f = &app.factory;
    let t = f.tenant("Export Co").await;
    let acme = f.customer(&t, "Zürich, \"Nord\" — 東京").await;
    let acme_sims = f.sims(&t, Some(acme.id), 2).await;
    let own_sims = f.sims(&t, None, 1).await;
    f.device(&t, None, "=HYPERLINK(\"http://evil.example\",\"x\")")
        .await;
    let token = |role: Role, customer| {
        let (app, t) = (&app, &t);
        async move {
            let u = app.factory.user(t, role, customer).await;
            app.login(u.email.as_str(), TEST_PASSWORD).await
        }
    };
    let platform = token(Role::PlatformAdmin, None).await;
    let admin = token(Role::TenantAdmin, None).await;
    let customer = token(Role::CustomerUser, Some(acme.id)).await;
    let tenant = t.id.to_string();
    let month = format!("{}", Utc::now().format("%Y-%m-01"));
    let fx = Fx { app };

    // Rated usage: 2 MB on each of Acme's SIMs at home, 1 MB (999,001 B) on the tenant's own.
    for kind in ["RETAIL", "SUPPLIER"] {
        let body = fx
            .app
            .gql(Some(&platform), CREATE_CARD, card(&tenant, kind, &month, "0.5"))
            .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    // Today's: the reconciliation, the rating and the billing files below read today's period.
    let cdr_start = ioto_test_support::earlier_today(20);
    let cdrs: Vec<CdrRecord> = acme_sims
        .iter()
        .chain(&own_sims)
        .enumerate()
        .map(|(i, s)| CdrRecord {
            tenant_id: t.id,
            customer_id: s.customer_id,
            cdr_id: format!("{}-{i}", t.id),
            iccid: s.iccid.clone(),
            start: cdr_start,
            end: cdr_start + chrono::Duration::minutes(10),
            mcc_mnc: MccMnc::parse("262-01").unwrap(),
            bytes_in: if s.customer_id.is_some() {
                1_500_000
            } else {
                999_001
            },
            bytes_out: if s.customer_id.is_some() { 500_000 } else { 0 },
            rating_group: 0,
        })
        .collect();
    fx.app.app_engines.usage.write_cdrs(&cdrs).await.unwrap();
    let body = fx
        .app
        .gql(
            Some(&admin),
            "mutation { rateBillingPeriod { kind status } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let rated = fx
        .app
        .gql(
            Some(&admin),
            "{ ratedUsage(kind: RETAIL, by: CUSTOMER) { usage { key records cost } usageTotal fees { key charges fees } feesTotal } }",
            json!({}),
        )
        .await;
    let rated = &rated["data"]["ratedUsage"];
    assert_eq!(rated["usageTotal"], "2.50", "{rated}");

    // The billing file as CSV: one row per sub-customer (and the tenant's own SIMs), exact
    // amounts, totals equal to the rating engine's rollup.
    let csv_job = fx.export(&admin, "CUSTOMER_BILLING", "CSV", json!({})).await;
    assert_eq!(csv_job["rows"], 2, "{csv_job}");
    assert_eq!(csv_job["expectedRows"], 2, "{csv_job}");
    assert!(
        csv_job["fileName"]
            .as_str()
            .unwrap()
            .starts_with("customer-billing-"),
        "{csv_job}"
    );
    assert!(
        csv_job["filter"]["day"].is_string(),
        "the day asked for is kept: {csv_job}"
    );
    let (bytes, _) = fx.download(&csv_job).await;
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains("\r\n"), "CRLF line ends");
    let (header, rows) = csv_rows(&bytes);
    let (id, name, cost, fees, total, cur) = (
        column(&header, "customer_id"),
        column(&header, "customer_name"),
        column(&header, "data_cost"),
        column(&header, "access_fees"),
        column(&header, "total"),
        column(&header, "currency"),
    );
    let acme_row = rows.iter().find(|r| r[id] == acme.id.to_string()).unwrap();
    assert_eq!(
        acme_row[name], "Zürich, \"Nord\" — 東京",
        "quotes, comma and non-ASCII round-trip"
    );
    assert_eq!(acme_row[cost], "2.000000000000");
    assert_eq!(acme_row[fees], "3.000000000000");
    assert_eq!(acme_row[total], "5.000000000000");
    assert_eq!(acme_row[cur], "EUR");
    let own_row = rows.iter().find(|r| r[id].is_empty()).unwrap();
    assert_eq!(own_row[cost], "0.500000000000");
    // Sums equal the engine's rollups, to the last digit.
    for (usage, col) in [(&rated["usage"], cost), (&rated["fees"], fees)] {
        for r in usage.as_array().unwrap() {
            let key = r["key"].as_str().unwrap();
            let row = rows.iter().find(|x| x[id] == key).unwrap();
            let expect = r["cost"].as_str().or(r["fees"].as_str()).unwrap();
            assert_eq!(
                row[col].trim_end_matches('0'),
                expect.trim_end_matches('0'),
                "{key}: {row:?} against {r}"
            );
        }
    }

    // The same as Parquet, read by pyarrow: typed columns, exact decimals, metadata.
    let pq_job = fx.export(&admin, "CUSTOMER_BILLING", "PARQUET", json!({})).await;
    let (_, path) = fx.download(&pq_job).await;
    let read = read_with_python(PYARROW, &path);
    let types = &read["types"];
    assert_eq!(types["data_cost"], "decimal128(38, 12)", "{read}");
    assert_eq!(types["total"], "decimal128(38, 12)", "{read}");
    assert_eq!(types["period_start"], "date32[day]", "{read}");
    assert_eq!(types["records"], "int64", "{read}");
    assert_eq!(types["customer_id"], "string", "{read}");
    assert_eq!(read["compression"], "ZSTD", "{read}");
    assert_eq!(read["meta"]["ioto.export.kind"], "CUSTOMER_BILLING", "{read}");
    assert!(
        read["meta"]["ioto.export.filter"]
            .as_str()
            .unwrap()
            .contains("day"),
        "{read}"
    );
    let pq_rows = read["rows"].as_array().unwrap();
    assert_eq!(pq_rows.len(), 2);
    let acme_pq = pq_rows
        .iter()
        .find(|r| r["customer_id"] == acme.id.to_string())
        .unwrap();
    assert_eq!(acme_pq["data_cost"], "2.000000000000", "{acme_pq}");
    assert_eq!(acme_pq["records"], 2, "{acme_pq}");
    assert_eq!(acme_pq["period_start"], month, "{acme_pq}");

    // As XLSX, read by openpyxl: numbers as numbers in the currency's format, dates as dates,
    // a frozen header row.
    let xlsx_job = fx.export(&admin, "CUSTOMER_BILLING", "XLSX", json!({})).await;
    let (_, path) = fx.download(&xlsx_job).await;
    let read = read_with_python(OPENPYXL, &path);
    let sheet = &read["Data"];
    assert_eq!(sheet["freeze"], "A2", "{read}");
    let xrows = sheet["rows"].as_array().unwrap();
    assert_eq!(xrows.len(), 3, "header and two rows: {read}");
    let xheader: Vec<String> = xrows[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[1].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(xheader, header, "the same columns in every format");
    let acme_x = xrows[1..]
        .iter()
        .find(|r| r[id][1] == acme.id.to_string())
        .unwrap();
    // A number (openpyxl answers whole numbers as int), never text.
    assert!(
        matches!(acme_x[cost][0].as_str(), Some("int" | "float")),
        "{acme_x}"
    );
    assert_eq!(acme_x[cost][1].as_f64(), Some(2.0), "{acme_x}");
    assert!(
        acme_x[cost][2].as_str().unwrap().contains("EUR"),
        "money in its currency: {acme_x}"
    );
    assert_eq!(acme_x[column(&header, "records")][0], "int", "{acme_x}");
    assert_eq!(acme_x[column(&header, "period_start")][0], "datetime", "{acme_x}");

    // Rated usage per SIM, day and network, streamed from the usage store into Parquet: its
    // costs sum to the engine's rollup exactly.
    let rated_job = fx.export(&admin, "RATED_USAGE", "PARQUET", json!({})).await;
    let (_, path) = fx.download(&rated_job).await;
    let read = read_with_python(PYARROW, &path);
    assert_eq!(read["types"]["cost"], "decimal128(38, 12)", "{read}");
    assert_eq!(read["types"]["day"], "date32[day]", "{read}");
    assert_eq!(read["types"]["rounded_bytes"], "int64", "{read}");
    let rated_rows = read["rows"].as_array().unwrap();
    assert_eq!(rated_rows.len(), 3, "{read}");
    let units: i128 = rated_rows
        .iter()
        .map(|r| {
            r["cost"]
                .as_str()
                .unwrap()
                .replace('.', "")
                .parse::<i128>()
                .unwrap()
        })
        .sum();
    assert_eq!(units, 2_500_000_000_000, "2.50 in 10^-12 units: {read}");
    // A customer user gets costs only once the tenant shares them, and then only its own.
    let body = fx.request(&customer, "RATED_USAGE", "CSV", json!({})).await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let body = fx
        .app
        .gql(
            Some(&admin),
            "mutation { setFleetSettings(customersSeeCosts: true) { customersSeeCosts } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let theirs_rated = fx.export(&customer, "RATED_USAGE", "CSV", json!({})).await;
    let (bytes, _) = fx.download(&theirs_rated).await;
    let (h, lines) = csv_rows(&bytes);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines
        .iter()
        .all(|l| l[column(&h, "customer_id")] == acme.id.to_string()));
    let body = fx
        .request(
            &customer,
            "RATED_USAGE",
            "CSV",
            json!({"rateCardKind": "SUPPLIER"}),
        )
        .await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("FORBIDDEN"),
        "supplier costs: {body}"
    );
    let supplier = fx
        .export(
            &platform,
            "RATED_USAGE",
            "CSV",
            json!({"tenantId": tenant, "rateCardKind": "SUPPLIER"}),
        )
        .await;
    assert_eq!(supplier["rows"], 3, "{supplier}");
    // What a platform admin exported of the tenant (supplier costs here) is the platform's:
    // the tenant's own admin neither lists nor opens it.
    let body = fx.app.gql(Some(&admin), JOB, json!({"id": supplier["id"]})).await;
    assert_eq!(body["data"]["exportJob"], Value::Null, "{body}");
    let body = fx
        .app
        .gql(
            Some(&admin),
            "{ exportJobs(first: 100) { nodes { id } } }",
            json!({}),
        )
        .await;
    let listed = body["data"]["exportJobs"]["nodes"].as_array().unwrap();
    assert!(!listed.is_empty(), "{body}");
    assert!(!listed.iter().any(|n| n["id"] == supplier["id"]), "{body}");

    // Reconciliation: every SIM-day with CDRs (no sessions were counted here), paged through.
    let today = cdr_start.format("%Y-%m-%d").to_string();
    let recon = fx
        .export(
            &admin,
            "USAGE_RECONCILIATION",
            "CSV",
            json!({"reconciliation": {"from": today, "to": today}}),
        )
        .await;
    let (bytes, _) = fx.download(&recon).await;
    let (h, lines) = csv_rows(&bytes);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let acme_iccid = acme_sims[0].iccid.to_string();
    let line = lines
        .iter()
        .find(|l| l[column(&h, "iccid")] == acme_iccid)
        .unwrap();
    assert_eq!(line[column(&h, "cdr_bytes_in")], "1500000");
    assert_eq!(line[column(&h, "session_bytes_in")], "0");
    assert_eq!(line[column(&h, "difference")], "2000000");

    // The platform's invoice lines; a tenant admin may not export them.
    let inv = fx
        .export(&platform, "INVOICE_LINES", "CSV", json!({"tenantId": tenant}))
        .await;
    let (bytes, _) = fx.download(&inv).await;
    let (h, lines) = csv_rows(&bytes);
    let amount = column(&h, "amount");
    let sum: f64 = lines.iter().map(|l| l[amount].parse::<f64>().unwrap()).sum();
    assert!(
        (sum - 7.0).abs() < 1e-9,
        "lines sum to the invoice's total: {lines:?}"
    );
    let body = fx
        .request(&admin, "INVOICE_LINES", "CSV", json!({"tenantId": tenant}))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");

    // The inventory: a customer user's export holds its own sub-customer's SIMs only.
    let all = fx.export(&admin, "SIM_INVENTORY", "CSV", json!({})).await;
    let (bytes, _) = fx.download(&all).await;
    let (h, rows) = csv_rows(&bytes);
    assert_eq!(rows.len(), 3);
    let iccids: Vec<&str> = rows.iter().map(|r| r[column(&h, "iccid")].as_str()).collect();
    let mut sorted = iccids.clone();
    sorted.sort_unstable();
    assert_eq!(iccids, sorted, "ordered by ICCID");
    let mine = fx.export(&customer, "SIM_INVENTORY", "CSV", json!({})).await;
    let (bytes, _) = fx.download(&mine).await;
    let (h, rows) = csv_rows(&bytes);
    let mut got: Vec<String> = rows.iter().map(|r| r[column(&h, "iccid")].clone()).collect();
    got.sort_unstable();
    let mut want: Vec<String> = acme_sims.iter().map(|s| s.iccid.to_string()).collect();
    want.sort_unstable();
    assert_eq!(got, want, "only Acme's SIMs");
    assert!(rows
        .iter()
        .all(|r| r[column(&h, "customer_id")] == acme.id.to_string()));

    // Progress by subscription: from the current state to the final one, then the stream ends.
    let body = fx.request(&admin, "SIM_INVENTORY", "PARQUET", json!({})).await;
    let id = body["data"]["requestExport"]["id"].as_str().unwrap().to_owned();
    let mut ws = crate::http::ws_subscribe(
        &fx.app,
        &admin,
        &format!("subscription {{ exportJobProgress(id: \"{id}\") {{ jobId status rows expectedRows }} }}"),
    )
    .await;
    let mut seen = Vec::new();
    while let Some(msg) = crate::http::ws_next(&mut ws).await {
        match msg["type"].as_str() {
            Some("next") => seen.push(msg["payload"]["data"]["exportJobProgress"].clone()),
            Some("complete") => break,
            other => panic!("unexpected {other:?}: {msg}"),
        }
    }
    let last = seen.last().unwrap_or_else(|| panic!("no progress"));
    assert_eq!(last["status"], "COMPLETED", "{seen:?}");
    assert_eq!(last["rows"], 3, "{seen:?}");
    assert!(
        seen.iter()
            .all(|p| p["jobId"] == id.as_str() && p["expectedRows"] == 3),
        "{seen:?}"
    );

    // Formula-like text is neutralised: a spreadsheet shows it, never evaluates it.
    let devices = fx.export(&admin, "DEVICES", "CSV", json!({})).await;
    let (bytes, _) = fx.download(&devices).await;
    let (h, rows) = csv_rows(&bytes);
    assert_eq!(
        rows[0][column(&h, "name")],
        "'=HYPERLINK(\"http://evil.example\",\"x\")"
    );
    let devices_x = fx.export(&admin, "DEVICES", "XLSX", json!({})).await;
    let (_, path) = fx.download(&devices_x).await;
    let read = read_with_python(OPENPYXL, &path);
    let cell = &read["Data"]["rows"][1][column(&h, "name")];
    assert_eq!(cell[0], "str", "{cell}");
    assert_eq!(cell[1], "'=HYPERLINK(\"http://evil.example\",\"x\")", "{cell}");

    // Links: without a token they work; changed, another job's, another tenant's or expired
    // ones do not.
    let link = all["downloadUrl"].as_str().unwrap();
    let (status, _, _) = fx.get(&link.replace("signature=", "signature=0")).await;
    assert_eq!(status, 403);
    let mut tampered = link.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    let (status, _, body) = fx.get(&tampered).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = fx
        .get(&link.replace(all["id"].as_str().unwrap(), mine["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 403, "a link names one job");
    let other = fx.app.factory.tenant("Other Co").await;
    let stranger = fx.app.factory.user(&other, Role::TenantAdmin, None).await;
    let stranger = fx.app.login(stranger.email.as_str(), TEST_PASSWORD).await;
    let theirs = fx.export(&stranger, "SIM_INVENTORY", "CSV", json!({})).await;
    let their_link = theirs["downloadUrl"].as_str().unwrap();
    let (status, _, _) = fx
        .get(&their_link.replace(theirs["id"].as_str().unwrap(), all["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        status, 403,
        "another tenant's link does not open this tenant's export"
    );
    let forged = signed(
        &fx.app,
        all["id"].as_str().unwrap(),
        &other.id.to_string(),
        Utc::now().timestamp() + 60,
    );
    let (status, _, _) = fx.get(&forged).await;
    assert_eq!(status, 404, "even signed, a link of another tenant finds nothing");
    let expired = signed(
        &fx.app,
        all["id"].as_str().unwrap(),
        &tenant,
        Utc::now().timestamp() - 1,
    );
    let (status, _, body) = fx.get(&expired).await;
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("expired"));
    let fresh = signed(
        &fx.app,
        all["id"].as_str().unwrap(),
        &tenant,
        Utc::now().timestamp() + 60,
    );
    let (status, _, _) = fx.get(&fresh).await;
    assert_eq!(status, 200, "the same link, in time, works");
    // The other tenant sees none of this tenant's jobs.
    let body = fx.app.gql(Some(&stranger), JOB, json!({"id": all["id"]})).await;
    assert_eq!(body["data"]["exportJob"], Value::Null, "{body}");
    let body = fx
        .app
        .gql(Some(&stranger), "{ exportJobs { nodes { id } } }", json!({}))
        .await;
    assert_eq!(
        body["data"]["exportJobs"]["nodes"],
        json!([{"id": theirs["id"]}]),
        "{body}"
    );

    fx.app.stop().await;
}

#[tokio::test]
async fn exports_read_back_by_outside_readers_on_real_engines() {
    exports_read_back_by_outside_readers_on(Engines::Real).await;
}

#[tokio::test]
async fn exports_read_back_by_outside_readers_on_embedded_engines() {
    exports_read_back_by_outside_readers_on(Engines::Embedded).await;
}

async fn export_requests_are_checked_queued_and_cancelled_on(engines: Engines) {
    let mut config = TestApp::config(engines).await;
    // No worker: jobs stay queued.
    config.exports.max_jobs = 0;
    let app = TestApp::spawn_with(config).await;
    let f = &app.factory;
    let t = f.tenant("Queue Co").await;
    f.sims(&t, None, 3).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let admin = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let operator = f.user(&t, Role::Operator, None).await;
    let operator = app.login(operator.email.as_str(), TEST_PASSWORD).await;
    let fx = Fx { app };

    // Bad requests name the field; nothing is queued for them.
    for (kind, filter, field) in [
        ("DEVICES", json!({"sims": {}}), "filter.sims"),
        ("SIM_INVENTORY", json!({"day": "2026-01-01"}), "filter.day"),
        ("SESSION_HISTORY", json!({}), "filter.sessionHistory"),
        ("USAGE_ANALYTICS", json!({}), "filter.analytics"),
        (
            "SIM_INVENTORY",
            json!({"sims": {"iccidPrefix": "89x"}}),
            "filter.iccidPrefix",
        ),
        ("SIM_INVENTORY", json!({"tenantId": "not-a-tenant"}), "tenantId"),
        (
            "SIM_INVENTORY",
            json!({"reconciliation": {"from": "2026-02-01", "to": "2026-02-02"}}),
            "filter.reconciliation",
        ),
        (
            "SESSION_HISTORY",
            json!({"tenantId": uuid::Uuid::new_v4().to_string(), "sessionHistory": {"iccid": ioto_domain::Iccid::with_check_digit("894902000012345678").unwrap().to_string()}}),
            "filter.tenantId",
        ),
        (
            "USAGE_RECONCILIATION",
            json!({"reconciliation": {"from": "2026-02-02", "to": "2026-02-01"}}),
            "to",
        ),
    ] {
        let body = fx.request(&admin, kind, "CSV", filter.clone()).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{kind} {filter}: {body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    let body = fx
        .request(
            &admin,
            "SESSION_HISTORY",
            "CSV",
            json!({"sessionHistory": {"iccid": ioto_domain::Iccid::with_check_digit("894902000012345678").unwrap().to_string()}}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
    let list = "query($s: [ExportStatus!]) { exportJobs(statuses: $s) { nodes { id status requestedBy } } }";
    // Hostile arguments of the lists and lookups are refused, naming them.
    for (query, field) in [
        ("{ exportJobs(first: 1001) { nodes { id } } }", "first"),
        ("{ exportJobs(first: 0) { nodes { id } } }", "first"),
        (
            "{ exportJobs(after: \"'; DROP TABLE export_jobs; --\") { nodes { id } } }",
            "after",
        ),
        ("{ exportJob(id: \"../../etc/passwd\") { id } }", "id"),
        ("mutation { cancelExport(id: \"1 OR 1=1\") { id } }", "id"),
    ] {
        let body = fx.app.gql(Some(&admin), query, json!({})).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{query}: {body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{query}: {body}");
    }
    // A download link with hostile parameters is refused, saying nothing of any job.
    for path in [
        "/exports/not-a-uuid/download?tenant=x&expires=1&signature=00",
        "/exports/00000000-0000-0000-0000-000000000000/download?tenant=00000000-0000-0000-0000-000000000000&expires=99999999999999999999&signature=zz",
        "/exports/00000000-0000-0000-0000-000000000000/download",
    ] {
        let (status, _, _) = fx.get(path).await;
        assert_eq!(status, 403, "{path}");
    }
    let body = fx.app.gql(Some(&admin), list, json!({})).await;
    assert_eq!(body["data"]["exportJobs"]["nodes"], json!([]), "{body}");

    // Five open exports per user; the sixth waits for one of them.
    let mut ids = Vec::new();
    for _ in 0..5 {
        let body = fx.request(&operator, "SIM_INVENTORY", "PARQUET", json!({})).await;
        let job = &body["data"]["requestExport"];
        assert_eq!(job["status"], "QUEUED", "{body}");
        assert_eq!(job["expectedRows"], 3, "{body}");
        ids.push(job["id"].as_str().unwrap().to_owned());
    }
    let body = fx.request(&operator, "SIM_INVENTORY", "CSV", json!({})).await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    // Another user has their own five.
    let body = fx.request(&admin, "SIM_INVENTORY", "CSV", json!({})).await;
    assert_eq!(body["data"]["requestExport"]["status"], "QUEUED", "{body}");
    let admins = body["data"]["requestExport"]["id"].as_str().unwrap().to_owned();

    // The operator sees its own jobs, the admin all of the tenant's.
    let body = fx.app.gql(Some(&operator), list, json!({})).await;
    assert_eq!(
        body["data"]["exportJobs"]["nodes"].as_array().unwrap().len(),
        5,
        "{body}"
    );
    let body = fx.app.gql(Some(&operator), JOB, json!({"id": admins})).await;
    assert_eq!(body["data"]["exportJob"], Value::Null, "{body}");
    let body = fx.app.gql(Some(&admin), list, json!({})).await;
    assert_eq!(
        body["data"]["exportJobs"]["nodes"].as_array().unwrap().len(),
        6,
        "{body}"
    );

    // Cancelled: no file, no link; cancelling again is a conflict; a slot is free again.
    let cancel = "mutation($id: ID!) { cancelExport(id: $id) { status downloadUrl } }";
    let body = fx.app.gql(Some(&operator), cancel, json!({"id": ids[0]})).await;
    assert_eq!(
        body["data"]["cancelExport"],
        json!({"status": "CANCELLED", "downloadUrl": null}),
        "{body}"
    );
    let body = fx.app.gql(Some(&operator), cancel, json!({"id": ids[0]})).await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    let body = fx.app.gql(Some(&operator), cancel, json!({"id": admins})).await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("NOT_FOUND"),
        "not the operator's: {body}"
    );
    let body = fx.request(&operator, "SIM_INVENTORY", "CSV", json!({})).await;
    assert_eq!(body["data"]["requestExport"]["status"], "QUEUED", "{body}");
    let body = fx.app.gql(Some(&admin), list, json!({"s": ["CANCELLED"]})).await;
    assert_eq!(
        body["data"]["exportJobs"]["nodes"].as_array().unwrap().len(),
        1,
        "{body}"
    );

    // A job whose worker died is taken over once its lease lapsed, and starts over.
    let store = &fx.app.app_engines.export_jobs;
    let now = Utc::now();
    let claimed = store
        .claim_export_jobs("dead", now, now + chrono::Duration::seconds(1), 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let first = claimed[0].id;
    let held = store
        .export_progress(
            first,
            "dead",
            &ioto_domain::ports::ExportProgressUpdate {
                rows: 2,
                bytes: 100,
                expected_rows: Some(3),
                at: now,
                until: now + chrono::Duration::seconds(1),
            },
        )
        .await
        .unwrap();
    assert!(held);
    let later = now + chrono::Duration::seconds(5);
    let taken = store
        .claim_export_jobs("alive", later, later + chrono::Duration::seconds(60), 10)
        .await
        .unwrap();
    let again = taken.iter().find(|j| j.id == first).expect("taken over");
    assert_eq!((again.rows, again.bytes), (0, 0), "the file starts over");
    assert!(
        !store
            .export_progress(
                first,
                "dead",
                &ioto_domain::ports::ExportProgressUpdate {
                    rows: 3,
                    bytes: 120,
                    expected_rows: Some(3),
                    at: later,
                    until: later,
                },
            )
            .await
            .unwrap(),
        "the old worker is told to stop"
    );

    fx.app.stop().await;
}

#[tokio::test]
async fn export_requests_are_checked_queued_and_cancelled_on_real_engines() {
    export_requests_are_checked_queued_and_cancelled_on(Engines::Real).await;
}

#[tokio::test]
async fn export_requests_are_checked_queued_and_cancelled_on_embedded_engines() {
    export_requests_are_checked_queued_and_cancelled_on(Engines::Embedded).await;
}

/// With a bucket configured, finished files go to the object store and download from it.
#[tokio::test]
async fn exports_go_to_an_s3_bucket_when_one_is_configured() {
    let s3 = ioto_test_support::S3Server::start().await;
    let mut config = TestApp::config(Engines::Embedded).await;
    config.exports.s3.bucket = Some(s3.bucket.clone());
    config.exports.s3.endpoint = s3.endpoint.clone();
    config.exports.s3.access_key_id = "test".into();
    config.exports.s3.secret_access_key = Some(ioto::config::Secret::new("test"));
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Bucket Co").await;
    app.factory.sims(&t, None, 4).await;
    let admin = app.factory.user(&t, Role::TenantAdmin, None).await;
    let admin = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let fx = Fx { app };
    let job = fx.export(&admin, "SIM_INVENTORY", "CSV", json!({})).await;
    let (bytes, _) = fx.download(&job).await;
    assert_eq!(csv_rows(&bytes).1.len(), 4);
    let keys = s3.keys().await;
    assert_eq!(
        keys,
        vec![format!("exports/{}/{}.csv", t.id, job["id"].as_str().unwrap())],
        "the file is in the bucket, under the tenant"
    );
    assert!(
        !fx.app
            .config
            .data_dir
            .join("exports")
            .join(t.id.to_string())
            .exists(),
        "and not in the data directory"
    );
    fx.app.stop().await;
}

/// A finished file is kept `retention_seconds`; then it is deleted, its job says `EXPIRED` and
/// its link finds nothing.
async fn an_export_expires_and_its_file_is_deleted_on(engines: Engines) {
    let mut config = TestApp::config(engines).await;
    config.exports.retention_seconds = 2;
    config.exports.poll_ms = 100;
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Expiry Co").await;
    app.factory.sims(&t, None, 2).await;
    let admin = app.factory.user(&t, Role::TenantAdmin, None).await;
    let admin = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let fx = Fx { app };
    let job = fx.export(&admin, "SIM_INVENTORY", "CSV", json!({})).await;
    let link = job["downloadUrl"].as_str().unwrap().to_owned();
    let file = fx
        .app
        .config
        .data_dir
        .join("exports")
        .join(t.id.to_string())
        .join(format!("{}.csv", job["id"].as_str().unwrap()));
    assert!(file.exists(), "stored at {}", file.display());
    let start = Instant::now();
    let expired = loop {
        let now = fx.job(&admin, job["id"].as_str().unwrap()).await;
        if now["status"] == "EXPIRED" {
            break now;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "not expired: {now}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(expired["downloadUrl"], Value::Null, "{expired}");
    assert!(!file.exists(), "the file is deleted");
    // A link never outlives its file.
    let (status, _, body) = fx.get(&link).await;
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("expired"));
    fx.app.stop().await;
}

#[tokio::test]
async fn an_export_expires_and_its_file_is_deleted_on_real_engines() {
    an_export_expires_and_its_file_is_deleted_on(Engines::Real).await;
}

#[tokio::test]
async fn an_export_expires_and_its_file_is_deleted_on_embedded_engines() {
    an_export_expires_and_its_file_is_deleted_on(Engines::Embedded).await;
}
