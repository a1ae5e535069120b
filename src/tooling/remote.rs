//! Commands that talk to a running server: `ioto bulk submit`, `ioto import sims` and
//! `ioto export`, with a progress bar while the work runs.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

/// Where the server is and who is asking.
pub struct Remote {
    pub server: String,
    pub token: String,
}

impl Remote {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.trim_end_matches('/'))
    }

    async fn graphql(&self, http: &reqwest::Client, query: &str, variables: Value) -> anyhow::Result<Value> {
        let body: Value = http
            .post(self.url("/graphql"))
            .bearer_auth(&self.token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .with_context(|| format!("reaching {}", self.server))?
            .json()
            .await
            .context("reading the server's answer")?;
        if let Some(e) = body["errors"].as_array().and_then(|e| e.first()) {
            bail!(
                "{} ({})",
                e["message"].as_str().unwrap_or("error"),
                e["extensions"]["code"].as_str().unwrap_or("ERROR")
            );
        }
        Ok(body["data"].clone())
    }

    /// POSTs a file as the body of `path` with query `params`; the JSON answer, or the server's
    /// error as one line.
    async fn post_file(
        &self,
        http: &reqwest::Client,
        path: &str,
        params: &[(&str, String)],
        bytes: Vec<u8>,
    ) -> anyhow::Result<Value> {
        let resp = http
            .post(self.url(path))
            .query(params)
            .bearer_auth(&self.token)
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .with_context(|| format!("reaching {}", self.server))?;
        let status = resp.status();
        let body: Value = resp.json().await.context("reading the server's answer")?;
        if !status.is_success() {
            let e = &body["error"];
            bail!(
                "{} ({}{})",
                e["message"].as_str().unwrap_or("the server refused the file"),
                e["code"].as_str().unwrap_or("ERROR"),
                e["field"]
                    .as_str()
                    .map(|f| format!(", field {f}"))
                    .unwrap_or_default()
            );
        }
        Ok(body)
    }
}

fn read_file(file: &Path) -> anyhow::Result<(Vec<u8>, String, String)> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file.csv".into());
    let format = if name.to_ascii_lowercase().ends_with(".xlsx") {
        "xlsx"
    } else {
        "csv"
    };
    Ok((bytes, name, format.to_owned()))
}

fn print_errors(errors: &[Value], total: u64) {
    for e in errors.iter().take(20) {
        println!(
            "  row {}: {} — {}",
            e["row"],
            e["iccid"].as_str().or(e["value"].as_str()).unwrap_or(""),
            e["reason"].as_str().unwrap_or("")
        );
    }
    if total > 20 {
        println!("  … and {} more", total - 20);
    }
}

/// What `ioto bulk submit` does.
pub struct BulkSubmit<'a> {
    pub file: &'a Path,
    pub action: Option<&'a str>,
    pub note: Option<&'a str>,
    /// Run the valid rows even when some are invalid.
    pub skip_invalid: bool,
    /// Validate only.
    pub dry_run: bool,
}

const JOB: &str = "query($id: ID!) { bulkJob(id: $id) { status validRecords processed succeeded failed skipped summary etaSeconds } }";

/// Uploads a bulk file, prints the validation report, confirms (unless told not to) and follows
/// the job to its end with a progress bar. Fails when the job fails as a whole.
pub async fn bulk_submit(remote: &Remote, args: BulkSubmit<'_>) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let (bytes, name, format) = read_file(args.file)?;
    let mut params = vec![("format", format), ("fileName", name)];
    if let Some(a) = args.action {
        params.push(("action", a.to_owned()));
    }
    if let Some(n) = args.note {
        params.push(("note", n.to_owned()));
    }
    let out = remote.post_file(&http, "/bulk-jobs", &params, bytes).await?;
    let report = &out["report"];
    let id = out["job"]["id"]
        .as_str()
        .context("the server answered without a job id")?
        .to_owned();
    let invalid = report["invalidRecords"].as_u64().unwrap_or(0);
    println!(
        "Job {id}: {} valid, {} invalid, {} already in state",
        report["validRecords"], invalid, report["alreadyInState"]
    );
    print_errors(report["errors"].as_array().map_or(&[][..], |v| v), invalid);
    if args.dry_run {
        println!("Dry run: the job waits for confirmation (confirmBulkJob) or cancellation.");
        return Ok(());
    }
    if invalid > 0 && !args.skip_invalid {
        bail!("{invalid} rows are invalid; fix the file, or pass --skip-invalid to run the valid rows (job {id} waits for confirmation)");
    }
    remote
        .graphql(
            &http,
            "mutation($id: ID!) { confirmBulkJob(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await?;
    let bar = ProgressBar::new(report["validRecords"].as_u64().unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let job = loop {
        let job = remote.graphql(&http, JOB, json!({ "id": id })).await?["bulkJob"].clone();
        bar.set_position(job["processed"].as_u64().unwrap_or(0));
        bar.set_message(job["summary"].as_str().unwrap_or("").to_owned());
        if matches!(
            job["status"].as_str(),
            Some("COMPLETED" | "COMPLETED_WITH_ERRORS" | "FAILED" | "CANCELLED")
        ) {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bar.finish_and_clear();
    println!("{}", job["summary"].as_str().unwrap_or(""));
    if job["status"] == "FAILED" {
        bail!("bulk job {id} failed");
    }
    Ok(())
}

/// What `ioto import sims` does.
pub struct ImportSims<'a> {
    pub file: &'a Path,
    pub commit: bool,
    pub skip_invalid: bool,
    pub customer_id: Option<&'a str>,
    pub note: Option<&'a str>,
}

/// Sends an inventory file to `POST /imports/sims`: a preview, or with `commit` the import.
pub async fn import_sims(remote: &Remote, args: ImportSims<'_>) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let (bytes, _, format) = read_file(args.file)?;
    let mut params = vec![
        ("format", format),
        ("commit", args.commit.to_string()),
        ("skipInvalid", args.skip_invalid.to_string()),
    ];
    if let Some(c) = args.customer_id {
        params.push(("customerId", c.to_owned()));
    }
    if let Some(n) = args.note {
        params.push(("note", n.to_owned()));
    }
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(format!("sending {} ({} bytes)", args.file.display(), bytes.len()));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let out = remote.post_file(&http, "/imports/sims", &params, bytes).await;
    spinner.finish_and_clear();
    let out = out?;
    let errors = out["errors"].as_array().map_or(&[][..], |v| v);
    println!(
        "{} rows, {} valid, {} with errors",
        out["rows"],
        out["valid"],
        errors.len()
    );
    print_errors(errors, errors.len() as u64);
    if out["committed"] == true {
        println!(
            "Imported {} SIMs (import {}).",
            out["created"],
            out["importId"].as_str().unwrap_or("-")
        );
    } else if args.commit {
        bail!("nothing was imported: fix the rows above, or pass --skip-invalid");
    } else {
        println!("Preview only: pass --commit to create the SIMs.");
    }
    Ok(())
}

/// What `ioto export` does.
pub struct ExportFile<'a> {
    /// `sim-inventory`, `CUSTOMER_BILLING`, … (either spelling).
    pub kind: &'a str,
    /// `csv`, `xlsx` or `parquet`.
    pub format: &'a str,
    /// The `requestExport` filter as JSON (`{"sims": {"states": ["ACTIVE"]}}`).
    pub filter: Option<&'a str>,
    pub out: &'a Path,
}

const EXPORT_JOB: &str = "query($id: ID!) { exportJob(id: $id) { status rows bytes expectedRows etaSeconds failure sha256 downloadUrl fileName } }";

/// Requests an export, follows it with a progress bar and downloads the file to `out` (written
/// beside it first, renamed when whole and its SHA-256 matches the job's).
pub async fn export(remote: &Remote, args: ExportFile<'_>) -> anyhow::Result<()> {
    use sha2::Digest as _;
    let kind = ioto_domain::export::ExportKind::parse(args.kind)?;
    let format = ioto_domain::export::ExportFormat::parse(args.format)?;
    let filter: Value = match args.filter {
        Some(f) => serde_json::from_str(f).context("--filter is not JSON")?,
        None => json!({}),
    };
    let http = reqwest::Client::new();
    let job = remote
        .graphql(
            &http,
            "mutation($kind: ExportKind!, $format: ExportFormat!, $filter: ExportFilterInput) { requestExport(kind: $kind, format: $format, filter: $filter) { id expectedRows } }",
            json!({ "kind": kind.as_str(), "format": format.as_str(), "filter": filter }),
        )
        .await?["requestExport"]
        .clone();
    let id = job["id"]
        .as_str()
        .context("the server answered without a job id")?
        .to_owned();
    let bar = ProgressBar::new(job["expectedRows"].as_u64().unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let job = loop {
        let job = remote.graphql(&http, EXPORT_JOB, json!({ "id": id })).await?["exportJob"].clone();
        if let Some(n) = job["expectedRows"].as_u64() {
            bar.set_length(n);
        }
        bar.set_position(job["rows"].as_u64().unwrap_or(0));
        bar.set_message(format!(
            "{} KiB{}",
            job["bytes"].as_u64().unwrap_or(0) / 1024,
            job["etaSeconds"]
                .as_u64()
                .map(|s| format!(", {s} s left"))
                .unwrap_or_default()
        ));
        match job["status"].as_str() {
            Some("COMPLETED") => break job,
            Some(s @ ("FAILED" | "CANCELLED" | "EXPIRED")) => {
                bar.finish_and_clear();
                bail!(
                    "export {id} {}: {}",
                    s.to_ascii_lowercase(),
                    job["failure"].as_str().unwrap_or("no reason given")
                );
            }
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    };
    bar.finish_and_clear();
    let link = job["downloadUrl"]
        .as_str()
        .context("the export has no download link")?;
    let mut resp = http
        .get(remote.url(link))
        .send()
        .await
        .with_context(|| format!("reaching {}", remote.server))?;
    if !resp.status().is_success() {
        let body: Value = resp.json().await.unwrap_or_default();
        bail!(
            "download refused: {}",
            body["error"]["message"].as_str().unwrap_or("no reason given")
        );
    }
    let partial = args.out.with_extension("partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut written = 0_u64;
    while let Some(chunk) = resp.chunk().await.context("downloading")? {
        hasher.update(&chunk);
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await?;
        written += chunk.len() as u64;
    }
    tokio::io::AsyncWriteExt::flush(&mut file).await?;
    drop(file);
    let sum = crate::server::auth::hex(&hasher.finalize());
    if job["sha256"].as_str() != Some(sum.as_str()) {
        let _ = tokio::fs::remove_file(&partial).await;
        bail!("the downloaded file's SHA-256 ({sum}) is not the export's; nothing was written");
    }
    tokio::fs::rename(&partial, args.out)
        .await
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{} rows, {written} bytes → {} (export {id}, {})",
        job["rows"],
        args.out.display(),
        job["fileName"].as_str().unwrap_or("")
    );
    Ok(())
}
