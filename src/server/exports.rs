//! Export jobs on the server: the worker that writes files (claimed through the database, so
//! instances share the work; a job whose instance died restarts its file), the sweeper that
//! deletes expired files, signed download links, and `GET /exports/{id}/download`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use ioto_app::ExportService;
use ioto_domain::export::{ExportBatch, ExportJob, ExportMeta};
use ioto_domain::ports::export::ExportStorage;
use ioto_domain::{Error, Scope, TenantId};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::config::ExportsConfig;
use crate::server::auth::hex;
use crate::server::rest::rest_error;
use crate::server::state::AppState;

/// Longest gap between two progress writes of a running job.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// How long a running export waits out an unavailable store before it fails.
const STORE_PATIENCE: Duration = Duration::from_secs(600);

/// Signs and checks download links: HMAC-SHA256 over the job, its tenant and the expiry.
pub struct LinkSigner {
    key: Vec<u8>,
}

impl LinkSigner {
    pub fn new(key: &str) -> Self {
        Self {
            key: key.as_bytes().to_vec(),
        }
    }

    #[expect(clippy::expect_used, reason = "HMAC takes keys of any length")]
    fn mac(&self, job: Uuid, tenant: TenantId, expires: i64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC key of any length");
        mac.update(format!("ioto-export-download\n{job}\n{tenant}\n{expires}").as_bytes());
        mac
    }

    fn signature(&self, job: Uuid, tenant: TenantId, expires: i64) -> String {
        hex(&self.mac(job, tenant, expires).finalize().into_bytes())
    }

    /// Whether `signature` (hex) is this server's for the job, tenant and expiry (compared in
    /// constant time).
    fn verify(&self, job: Uuid, tenant: TenantId, expires: i64, signature: &str) -> bool {
        let Some(bytes) = unhex(signature) else {
            return false;
        };
        self.mac(job, tenant, expires).verify_slice(&bytes).is_ok()
    }
}

impl ioto_resolvers::exports::ExportLinks for LinkSigner {
    fn link(&self, job: &ExportJob, expires: DateTime<Utc>) -> String {
        let exp = expires.timestamp();
        format!(
            "/exports/{}/download?tenant={}&expires={exp}&signature={}",
            job.id,
            job.tenant_id,
            self.signature(job.id, job.tenant_id, exp)
        )
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct DownloadParams {
    tenant: Option<String>,
    expires: Option<String>,
    signature: Option<String>,
}

fn forbidden(message: &str) -> Response {
    rest_error(&Error::Forbidden(message.to_owned()))
}

/// `GET /exports/{id}/download?tenant=…&expires=…&signature=…`: the file of a completed export,
/// for whoever holds a link `downloadUrl` signed in the last minutes. A link of another job or
/// tenant, a changed one or an expired one is refused; nothing tells whether the job exists.
pub async fn download(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<DownloadParams>,
) -> Response {
    let (Some(tenant), Some(expires), Some(signature)) = (&params.tenant, &params.expires, &params.signature)
    else {
        return forbidden("this download link is incomplete: ask exportJob { downloadUrl } for a link");
    };
    let (Ok(job_id), Ok(tenant), Ok(expires)) = (
        Uuid::parse_str(&id),
        TenantId::parse(tenant, "tenant"),
        expires.parse::<i64>(),
    ) else {
        return forbidden("this download link is not valid: ask exportJob { downloadUrl } for a link");
    };
    if !st.export_links.verify(job_id, tenant, expires, signature) {
        return forbidden("this download link is not valid: ask exportJob { downloadUrl } for a link");
    }
    let now = Utc::now();
    // A link is good strictly before its `expires` second (the job's end rounded down), so it
    // never outlives the file it names.
    if expires <= now.timestamp() {
        return forbidden("this download link has expired: ask exportJob { downloadUrl } for a fresh one");
    }
    // Read in the link's tenant scope: row-level security keeps other tenants' jobs out.
    let job = match st.exports.job_in(Scope::tenant(tenant), job_id).await {
        Ok(Some(j)) => j,
        Ok(None) => return rest_error(&Error::not_found("export", job_id)),
        Err(e) => return rest_error(&e),
    };
    if !job.downloadable(now) {
        return rest_error(&Error::not_found("export file", job_id));
    }
    let stream = match st.export_storage.get(&job.storage_key()).await {
        Ok(s) => s,
        Err(e) => return rest_error(&e),
    };
    let mut res = Body::from_stream(stream).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(job.format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", job.file_name())) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&job.bytes.to_string()) {
        headers.insert(header::CONTENT_LENGTH, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    if let Some(sum) = &job.sha256 {
        if let Ok(v) = HeaderValue::from_str(&format!("\"{sum}\"")) {
            headers.insert(header::ETAG, v);
        }
    }
    *res.status_mut() = StatusCode::OK;
    res
}

/// Starts the worker and the sweeper unless `max_jobs` is 0.
pub fn spawn(
    exports: ExportService,
    storage: Arc<dyn ExportStorage>,
    config: ExportsConfig,
    scratch: PathBuf,
    mut shutdown: watch::Receiver<bool>,
) {
    if config.max_jobs == 0 {
        return;
    }
    let worker = format!("worker-{}", Uuid::new_v4());
    let lease = Duration::from_secs(config.lease_seconds);
    let poll = Duration::from_millis(config.poll_ms);
    let options = ioto_exports::WriterOptions::default();
    let sweep_every = Duration::from_secs(config.retention_seconds.clamp(1, 60));
    tokio::spawn(async move {
        let wake = exports.wakeup();
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut last_sweep: Option<Instant> = None;
        loop {
            if last_sweep.is_none_or(|t| t.elapsed() >= sweep_every) {
                last_sweep = Some(Instant::now());
                sweep(&exports, storage.as_ref()).await;
            }
            let free = config.max_jobs.saturating_sub(tasks.len());
            for _ in 0..free {
                // A token per claim: a task of this instance whose claim lapsed and was taken
                // again (here or elsewhere) is fenced out by it.
                let token = format!("{worker}/{}", Uuid::new_v4().simple());
                match exports.claim(&token, lease, 1).await {
                    Ok(jobs) if jobs.is_empty() => break,
                    Ok(jobs) => {
                        for job in jobs {
                            let (exports, storage, worker, scratch, options) = (
                                exports.clone(),
                                Arc::clone(&storage),
                                token.clone(),
                                scratch.clone(),
                                options.clone(),
                            );
                            tasks.spawn(async move {
                                run(
                                    &exports,
                                    storage.as_ref(),
                                    job,
                                    &worker,
                                    lease,
                                    &scratch,
                                    &options,
                                )
                                .await;
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming export jobs failed; retrying");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                Some(_) = tasks.join_next() => {
                    while tasks.try_join_next().is_some() {}
                }
            }
        }
        tasks.abort_all();
    });
}

/// Deletes the files of expired exports.
async fn sweep(exports: &ExportService, storage: &dyn ExportStorage) {
    let expired = match exports.expired(100).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "listing expired exports failed");
            return;
        }
    };
    for job in expired {
        let result = async {
            storage.delete(&job.storage_key()).await?;
            exports.expire(&job).await
        }
        .await;
        match result {
            Ok(()) => tracing::info!(job = %job.id, "export expired; file deleted"),
            Err(e) => tracing::warn!(job = %job.id, error = %e, "deleting an expired export failed"),
        }
    }
}

/// What a failed job says: the public message of the error (details of internal ones go to
/// the log).
fn failure_of(e: &Error) -> String {
    if e.is_private() {
        tracing::error!(detail = %e, "export failed");
    }
    e.public().message
}

/// What a running job has done, shared by its reader, its writer thread and its heartbeat.
#[derive(Default)]
struct Progress {
    rows: AtomicU64,
    bytes: AtomicU64,
    /// `u64::MAX`: not known.
    expected: AtomicU64,
    /// Set when the job is no longer this task's (cancelled, or its claim lapsed and was taken).
    stop: std::sync::atomic::AtomicBool,
}

impl Progress {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Writes the job's progress and renews its lease every [`PROGRESS_EVERY`] for as long as the
/// task runs — while reading, while finishing the file, hashing and storing it — and raises
/// `stop` when the job is no longer this task's.
async fn heartbeat(
    exports: ExportService,
    mut job: ExportJob,
    worker: String,
    lease: Duration,
    progress: Arc<Progress>,
) {
    loop {
        job.rows = progress.rows.load(Ordering::Relaxed);
        job.bytes = progress.bytes.load(Ordering::Relaxed);
        let expected = progress.expected.load(Ordering::Relaxed);
        job.expected_rows = (expected != u64::MAX).then_some(expected).or(job.expected_rows);
        match exports.progress(&mut job, &worker, lease).await {
            Ok(true) => {}
            Ok(false) => {
                progress.stop.store(true, Ordering::Relaxed);
                return;
            }
            // Tried again at the next beat; the lease covers a few missed ones.
            Err(e) => tracing::warn!(job = %job.id, error = %e, "writing an export's progress failed"),
        }
        tokio::time::sleep(PROGRESS_EVERY).await;
    }
}

/// Runs one claimed job to its end (or until it is cancelled or taken over).
async fn run(
    exports: &ExportService,
    storage: &dyn ExportStorage,
    mut job: ExportJob,
    worker: &str,
    lease: Duration,
    scratch: &std::path::Path,
    options: &ioto_exports::WriterOptions,
) {
    // A scratch file per attempt: an attempt fenced out never touches the next one's file.
    let attempt = worker.rsplit('/').next().unwrap_or(worker);
    let temp = scratch.join(format!("{}.{attempt}.{}.partial", job.id, job.format.extension()));
    let progress = Arc::new(Progress {
        expected: AtomicU64::new(u64::MAX),
        ..Progress::default()
    });
    let beat = tokio::spawn(heartbeat(
        exports.clone(),
        job.clone(),
        worker.to_owned(),
        lease,
        Arc::clone(&progress),
    ));
    // A store that is down (Postgres, ClickHouse, the file storage) is waited out: the file is
    // started again when it is back, for up to STORE_PATIENCE; the heartbeat keeps the claim
    // meanwhile (or, when the claim lapsed and another instance took the job, stops this one).
    let mut pause = Duration::from_secs(1);
    let mut waited = Duration::ZERO;
    let outcome = loop {
        let attempt = match write_file(exports, &mut job, &temp, options, &progress).await {
            Ok(Some(size)) if !progress.stopped() => store(storage, &job, &temp, &progress)
                .await
                .map(|sum| Some((size, sum))),
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        };
        match attempt {
            Err(Error::Unavailable(why)) if !progress.stopped() && waited < STORE_PATIENCE => {
                tracing::warn!(job = %job.id, error = %why, "a store is unavailable; the export starts its file again when it is back");
                let _ = tokio::fs::remove_file(&temp).await;
                tokio::time::sleep(pause).await;
                waited += pause;
                pause = (pause * 2).min(Duration::from_secs(30));
                progress.rows.store(0, Ordering::Relaxed);
                progress.bytes.store(0, Ordering::Relaxed);
            }
            other => break other,
        }
    };
    let outcome = match outcome {
        Ok(Some(done)) if !progress.stopped() => Ok(done),
        Err(e) if !progress.stopped() => Err(failure_of(&e)),
        // Cancelled, or no longer this task's: nothing to record.
        _ => {
            beat.abort();
            let _ = tokio::fs::remove_file(&temp).await;
            tracing::info!(job = %job.id, "export stopped (cancelled or taken over)");
            return;
        }
    };
    beat.abort();
    let _ = tokio::fs::remove_file(&temp).await;
    let completed = outcome.is_ok();
    let finished = loop {
        match exports.finish(&job, worker, outcome.clone()).await {
            Err(Error::Unavailable(why)) if waited < STORE_PATIENCE => {
                tracing::warn!(job = %job.id, error = %why, "recording an export's end waits for the store");
                tokio::time::sleep(pause).await;
                waited += pause;
                pause = (pause * 2).min(Duration::from_secs(30));
            }
            other => break other,
        }
    };
    match finished {
        Ok(Some(done)) => {
            tracing::info!(job = %done.id, kind = %done.kind, format = %done.format, status = %done.status, rows = done.rows, bytes = done.bytes, "export finished")
        }
        Ok(None) => {
            // No longer this task's. Its stored file goes only when the job was cancelled: a
            // task that took it over may have stored the file the job now offers.
            let cancelled = exports
                .job_in(Scope::Platform, job.id)
                .await
                .ok()
                .flatten()
                .is_some_and(|j| j.status == ioto_domain::export::ExportStatus::Cancelled);
            if completed && cancelled {
                let _ = storage.delete(&job.storage_key()).await;
            }
        }
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "recording an export's end failed; its lease will let it restart")
        }
    }
}

/// Hashes the finished file and hands it to the storage.
async fn store(
    storage: &dyn ExportStorage,
    job: &ExportJob,
    temp: &std::path::Path,
    progress: &Progress,
) -> Result<String, Error> {
    let path = temp.to_path_buf();
    let sum = tokio::task::spawn_blocking(move || -> Result<String, Error> {
        let mut f = std::fs::File::open(&path)
            .map_err(|e| Error::Internal(format!("reading {}: {e}", path.display())))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut f, &mut hasher)
            .map_err(|e| Error::Internal(format!("hashing {}: {e}", path.display())))?;
        Ok(hex(&hasher.finalize()))
    })
    .await
    .map_err(|e| Error::Internal(format!("hashing an export: {e}")))??;
    if progress.stopped() {
        return Err(Error::Conflict("the export is no longer this worker's".into()));
    }
    storage.put(&job.storage_key(), temp).await?;
    Ok(sum)
}

/// Reads the job's rows and writes them to `temp`. `Some(size)` when the file is whole, `None`
/// when the job was cancelled or taken over meanwhile (the writer then stops without finishing
/// the file).
async fn write_file(
    exports: &ExportService,
    job: &mut ExportJob,
    temp: &std::path::Path,
    options: &ioto_exports::WriterOptions,
    progress: &Arc<Progress>,
) -> Result<Option<u64>, Error> {
    let request = ioto_resolvers::exports::stored_request(job)?;
    let mut source = exports.source(&job.actor(), request);
    job.expected_rows = source.expected_rows().await?.or(job.expected_rows);
    if let Some(n) = job.expected_rows {
        progress.expected.store(n, Ordering::Relaxed);
    }
    if let Some(dir) = temp.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::Internal(format!("creating {}: {e}", dir.display())))?;
    }
    let columns = source.columns().to_vec();
    let meta = ExportMeta {
        kind: job.kind,
        filter: job.filter.to_string(),
        tenant_id: job.tenant_id,
        created_at: job.created_at,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ExportBatch>(2);
    let writer = {
        let (format, path, options, progress) = (
            job.format,
            temp.to_path_buf(),
            options.clone(),
            Arc::clone(progress),
        );
        tokio::task::spawn_blocking(move || -> Result<Option<u64>, Error> {
            let mut w = ioto_exports::open_writer(format, &columns, &meta, &path, &options)?;
            while let Some(batch) = rx.blocking_recv() {
                if progress.stopped() {
                    return Ok(None);
                }
                w.write(&batch)?;
                progress.bytes.store(w.bytes_written(), Ordering::Relaxed);
            }
            if progress.stopped() {
                return Ok(None);
            }
            w.finish().map(Some)
        })
    };
    let read = async {
        while !progress.stopped() {
            let Some(batch) = source.next_batch().await? else {
                break;
            };
            let n = batch.rows() as u64;
            if tx.send(batch).await.is_err() {
                // The writer stopped: its error is the job's.
                break;
            }
            job.rows += n;
            progress.rows.store(job.rows, Ordering::Relaxed);
        }
        Ok::<(), Error>(())
    };
    let read = read.await;
    // The writer ends with the channel (also when reading failed: the file is then removed
    // after it let go of it).
    drop(tx);
    let size = writer
        .await
        .map_err(|e| Error::Internal(format!("export writer: {e}")))?;
    read?;
    let Some(size) = size? else { return Ok(None) };
    if progress.stopped() {
        return Ok(None);
    }
    job.bytes = size;
    progress.bytes.store(size, Ordering::Relaxed);
    Ok(Some(size))
}
