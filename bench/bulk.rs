//! `ioto-bench bulk`: a tenant with `--sims` SIMs and a bulk file of `--rows` of them.
//! Validation of the file is timed stage by stage; then one job of the file runs against the
//! simulated HLR while another tenant calls `provisionSims` for one SIM and reads pages of its
//! SIMs, compared with the same calls while nothing runs.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::StreamExt;
use ioto_app::fleet::{look_up_sims, BulkFile};
use ioto_domain::directory::{NewTenant, NewUser};
use ioto_domain::events::FleetEvent;
use ioto_domain::fleet::bulk::{check_lines, table_lines, BulkJobStatus};
use ioto_domain::fleet::import::TableFormat;
use ioto_domain::fleet::{AuditAction, AuditStamp, NewSim, SimState};
use ioto_domain::identifiers::{Email, Iccid, Imsi, Name, Slug};
use ioto_domain::ports::network::NetworkAction;
use ioto_domain::ports::TableReader;
use ioto_domain::{Actor, Role, Scope, TenantId};
use ioto_resolvers::Realtime;
use serde_json::json;

use crate::common::{median_spread, post, PASSWORD};
use ioto::config::Config;
use ioto::engines;
use ioto::server::App;

/// SIMs inserted per statement batch while loading.
const LOAD_CHUNK: usize = 50_000;

/// One validation of the file, by stage.
pub struct Validation {
    pub read: Duration,
    pub lookup: Duration,
    pub check: Duration,
    /// The whole `submitBulkJob` path (read, look up, check, store the job and its rows).
    pub submit: Duration,
}

/// Latencies of one kind of request, in milliseconds, sorted.
pub struct Latencies(pub Vec<f64>);

impl Latencies {
    fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0[((self.0.len() as f64 - 1.0) * p).round() as usize]
    }
}

/// One execution of the file.
pub struct Execution {
    pub rows: u64,
    pub elapsed: Duration,
    pub succeeded: u64,
    /// Progress events seen for the job, and the longest gap between two while it ran.
    pub events: usize,
    pub longest_gap: Duration,
    /// Another tenant's `provisionSims` of one SIM while the job ran: total, and total minus the
    /// network's own time for that request.
    pub provision_loaded: Latencies,
    pub provision_loaded_excl: Latencies,
    pub page_loaded: Latencies,
}

pub struct BulkRun {
    pub validations: Vec<Validation>,
    pub provision_idle: Latencies,
    pub provision_idle_excl: Latencies,
    pub page_idle: Latencies,
    pub executions: Vec<Execution>,
}

pub(crate) fn iccid(run: u32, i: usize) -> anyhow::Result<Iccid> {
    Ok(Iccid::with_check_digit(&format!("8977{run:05}{i:09}"))?)
}

/// Inserts `rows` as imported by `stamp` (platform scope), checking that each got its id; their
/// ids in order.
pub(crate) async fn insert_sims(
    engines: &ioto::engines::Engines,
    rows: &[NewSim],
    stamp: &AuditStamp,
) -> anyhow::Result<Vec<ioto_domain::SimId>> {
    let ids = engines
        .fleet
        .insert_sims(
            Scope::Platform,
            &rows.iter().collect::<Vec<_>>(),
            AuditAction::Imported,
            stamp,
            None,
        )
        .await?;
    anyhow::ensure!(
        ids.len() == rows.len(),
        "{} SIMs inserted, {} ids answered",
        rows.len(),
        ids.len()
    );
    Ok(ids)
}

/// A tenant with a TENANT_ADMIN who signs in with its e-mail (returned) and the bench password.
pub(crate) async fn tenant(
    engines: &ioto::engines::Engines,
    slug: &str,
    name: &str,
) -> anyhow::Result<(TenantId, Actor, String)> {
    let dir = &engines.directory;
    let t = dir
        .create_tenant(
            Scope::Platform,
            NewTenant {
                slug: Slug::parse(slug)?,
                name: Name::parse(name, "name")?,
            },
        )
        .await?;
    let email = format!("{slug}@example.com");
    let user = dir
        .create_user(
            Scope::Platform,
            NewUser {
                tenant_id: t.id,
                customer_id: None,
                email: Email::parse(&email)?,
                display_name: Name::parse("Bench Admin", "displayName")?,
                role: Role::TenantAdmin,
                password_hash: ioto_domain::password::hash_password(PASSWORD)?,
            },
        )
        .await?;
    let actor = Actor {
        user_id: Some(user.id),
        subject: user.id.to_string(),
        tenant_id: t.id,
        role: Role::TenantAdmin,
        customer_id: None,
        issued_at: None,
        api_key: None,
        session_id: None,
    };
    Ok((t.id, actor, email))
}

/// `n` ACTIVE SIMs of the tenant, numbered from `from` within bench run `run` ([`iccid`]).
pub(crate) async fn load_sims(
    engines: &ioto::engines::Engines,
    tenant: TenantId,
    run: u32,
    from: usize,
    n: usize,
) -> anyhow::Result<()> {
    let stamp = AuditStamp {
        actor: "bench".into(),
        actor_user_id: None,
        at: chrono::Utc::now(),
        note: None,
    };
    let mut i = from;
    while i < from + n {
        let end = (i + LOAD_CHUNK).min(from + n);
        let sims = (i..end)
            .map(|k| {
                let mut s = NewSim::basic(tenant, iccid(run, k)?, Imsi::parse(&format!("9{run:05}{k:09}"))?);
                s.state = SimState::Active;
                Ok(s)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        engines
            .fleet
            .insert_sims(
                Scope::Platform,
                &sims.iter().collect::<Vec<_>>(),
                AuditAction::Imported,
                &stamp,
                None,
            )
            .await?;
        i = end;
    }
    Ok(())
}

pub(crate) async fn login(http: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<String> {
    let v = post(
        http,
        &format!("{base}/graphql"),
        None,
        &json!({ "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }", "variables": { "e": email, "p": PASSWORD } }),
    )
    .await?;
    v["data"]["login"]["token"]
        .as_str()
        .map(str::to_owned)
        .context("login answered no token")
}

const PROVISION: &str = "mutation($i: [String!]!, $a: BulkAction!) { provisionSims(iccids: $i, action: $a) { completed results { outcome networkReference } } }";
const PAGE: &str =
    "{ sims(first: 50) { nodes { iccid state labels { key value } } pageInfo { hasNextPage } } }";

/// What the probes measured: `provisionSims` latencies with their network references, page
/// latencies, and whether the probed SIM ended suspended.
type Probed = (Vec<(f64, String)>, Vec<f64>, bool);

/// Calls `provisionSims` for one SIM of the small tenant `n` times (or until `until`),
/// alternating SUSPEND and RESUME from `suspended`, one every 100 ms; and reads a page of its
/// SIMs in between.
async fn probe(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    sim: &str,
    n: usize,
    mut suspended: bool,
    until: Option<&tokio::sync::watch::Receiver<bool>>,
) -> anyhow::Result<Probed> {
    let url = format!("{base}/graphql");
    let (mut provision, mut page) = (Vec::new(), Vec::new());
    for _ in 0..n {
        if until.is_some_and(|u| *u.borrow()) {
            break;
        }
        let action = if suspended { "RESUME" } else { "SUSPEND" };
        suspended = !suspended;
        let t = Instant::now();
        let v = post(
            http,
            &url,
            Some(token),
            &json!({ "query": PROVISION, "variables": { "i": [sim], "a": action } }),
        )
        .await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let r = &v["data"]["provisionSims"]["results"][0];
        if r["outcome"] != "SUCCEEDED" {
            bail!("provisionSims did not succeed: {v}");
        }
        provision.push((ms, r["networkReference"].as_str().unwrap_or("").to_owned()));
        let t = Instant::now();
        post(http, &url, Some(token), &json!({ "query": PAGE })).await?;
        page.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((provision, page, suspended))
}

/// The network's own time per reference, from the audit trail of the small tenant.
async fn network_times(
    store: &Arc<dyn ioto_domain::ports::Fleet>,
    tenant: TenantId,
) -> anyhow::Result<std::collections::HashMap<String, f64>> {
    let entries = store
        .audit(
            Scope::Platform,
            tenant,
            &ioto_domain::fleet::AuditQuery {
                actions: vec![AuditAction::StateChanged],
                limit: 10_000,
                ..Default::default()
            },
        )
        .await?;
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            let n = &e.new_value["network"];
            Some((n["reference"].as_str()?.to_owned(), n["latencyMs"].as_f64()?))
        })
        .collect())
}

fn split(
    samples: &[(f64, String)],
    network: &std::collections::HashMap<String, f64>,
) -> (Latencies, Latencies) {
    let mut total: Vec<f64> = samples.iter().map(|(ms, _)| *ms).collect();
    let mut excl: Vec<f64> = samples
        .iter()
        .map(|(ms, r)| ms - network.get(r).copied().unwrap_or(0.0))
        .collect();
    total.sort_by(f64::total_cmp);
    excl.sort_by(f64::total_cmp);
    (Latencies(total), Latencies(excl))
}

fn sorted(mut v: Vec<f64>) -> Latencies {
    v.sort_by(f64::total_cmp);
    Latencies(v)
}

pub async fn bulk(
    config: &Config,
    sims: usize,
    rows: usize,
    runs: usize,
    probes: usize,
) -> anyhow::Result<BulkRun> {
    if rows > sims {
        bail!("--rows ({rows}) must not exceed --sims ({sims})");
    }
    engines::migrate(config).await?;
    let app = App::build(config).await?;
    println!("{}", app.engines.versions().await?);
    let listener = App::bind(config).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let run = (uuid::Uuid::new_v4().as_u128() % 100_000) as u32;
    let (big, big_actor, _) = tenant(&app.engines, &format!("bench-bulk-{run}"), "Bench Bulk").await?;
    let (small, _, small_email) = tenant(&app.engines, &format!("bench-small-{run}"), "Bench Small").await?;
    let t = Instant::now();
    load_sims(&app.engines, big, run, 0, sims).await?;
    load_sims(&app.engines, small, run, sims, 200).await?;
    // As after any large load (and as `bench fleet` does): fresh planner statistics.
    ioto_store::analyze(&engines::store_location(config)).await?;
    println!(
        "loaded {sims} SIMs in {:.1} s (statistics refreshed)",
        t.elapsed().as_secs_f64()
    );
    let small_sim = iccid(run, sims)?.to_string();

    let fleet = app.fleet.clone();
    let store = Arc::clone(&app.engines.fleet);
    let bulk_jobs = Arc::clone(&app.engines.bulk_jobs);
    let realtime = Arc::clone(&app.realtime);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(app.serve(listener, async move {
        let mut rx = stop_rx;
        let _ = rx.wait_for(|s| *s).await;
    }));
    let http = reqwest::Client::new();
    let token = login(&http, &base, &small_email).await?;

    // One file per run: `rows` SIMs spread over the fleet, all to be suspended.
    let files: Vec<Vec<u8>> = (0..runs)
        .map(|r| {
            let mut csv = String::with_capacity(rows * 22 + 16);
            csv.push_str("iccid\n");
            let stride = (sims / rows).max(1);
            for k in 0..rows {
                let i = (k * stride + r) % sims;
                let _ = writeln!(csv, "{}", iccid(run, i)?);
            }
            Ok(csv.into_bytes())
        })
        .collect::<anyhow::Result<_>>()?;

    let mut validations = Vec::new();
    let mut jobs = Vec::new();
    for file in &files {
        // The stages on their own (what the submit path does first)...
        let t = Instant::now();
        let table = ioto_imports::TableFiles.read(file, TableFormat::Csv)?;
        let lines = table_lines(&table)?;
        let read = t.elapsed();
        let t = Instant::now();
        let parsed: Vec<Iccid> = lines.iter().filter_map(|l| Iccid::parse(&l.iccid).ok()).collect();
        let scope = Scope::Tenant {
            tenant_id: big,
            customer_id: None,
        };
        let found = look_up_sims(&*bulk_jobs, scope, &parsed).await?;
        let lookup = t.elapsed();
        let t = Instant::now();
        let checked = check_lines(&lines, Some(NetworkAction::Suspend), &found);
        let check = t.elapsed();
        drop(checked);
        // ...and the whole path, storing the job.
        let t = Instant::now();
        let submitted = fleet
            .submit_bulk_file(
                &big_actor,
                BulkFile {
                    tenant_id: None,
                    file_name: Some("bench.csv".into()),
                    format: TableFormat::Csv,
                    bytes: file.clone(),
                    action: Some(NetworkAction::Suspend),
                    note: None,
                },
            )
            .await?;
        let submit = t.elapsed();
        if submitted.report.valid != rows as u64 {
            bail!(
                "expected {rows} valid rows, the report says {:?}",
                submitted.report
            );
        }
        validations.push(Validation {
            read,
            lookup,
            check,
            submit,
        });
        jobs.push(submitted.job.id);
    }

    // The small tenant's calls while nothing runs.
    let (idle, page_idle, mut suspended) =
        probe(&http, &base, &token, &small_sim, probes, false, None).await?;

    let mut executions = Vec::new();
    for id in jobs {
        let mut events = realtime.fleet_events();
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        let watcher = tokio::spawn(async move {
            let (mut seen, mut gap, mut last) = (0usize, Duration::ZERO, None::<Instant>);
            while let Some(e) = events.next().await {
                if let FleetEvent::BulkJobProgress(p) = e {
                    if p.job_id != id {
                        continue;
                    }
                    seen += 1;
                    let now = Instant::now();
                    if let Some(l) = last {
                        gap = gap.max(now - l);
                    }
                    last = Some(now);
                    if p.status.is_final() {
                        break;
                    }
                }
            }
            (seen, gap)
        });
        let t = Instant::now();
        fleet.confirm_bulk_job(&big_actor, id).await?;
        let probes_task = {
            let (http, base, token, sim) = (http.clone(), base.clone(), token.clone(), small_sim.clone());
            let rx = done_rx.clone();
            let start = suspended;
            tokio::spawn(async move { probe(&http, &base, &token, &sim, usize::MAX, start, Some(&rx)).await })
        };
        let job = loop {
            let job = fleet
                .bulk_job(&big_actor, id)
                .await?
                .context("the bench job vanished")?;
            if job.status.is_final() {
                break job;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let elapsed = t.elapsed();
        let _ = done_tx.send(true);
        let (loaded, page_loaded, now_suspended) = probes_task.await??;
        suspended = now_suspended;
        let (seen, gap) = tokio::time::timeout(Duration::from_secs(10), watcher)
            .await
            .context("the progress stream did not end")??;
        if job.status != BulkJobStatus::Completed {
            bail!(
                "the bench job ended {}: {}",
                job.status,
                job.summary(chrono::Utc::now())
            );
        }
        let network = network_times(&store, small).await?;
        let (provision_loaded, provision_loaded_excl) = split(&loaded, &network);
        executions.push(Execution {
            rows: job.valid,
            elapsed,
            succeeded: job.succeeded,
            events: seen,
            longest_gap: gap,
            provision_loaded,
            provision_loaded_excl,
            page_loaded: sorted(page_loaded),
        });
    }
    let network = network_times(&store, small).await?;
    let (provision_idle, provision_idle_excl) = split(&idle, &network);
    let _ = stop_tx.send(true);
    server.await??;
    Ok(BulkRun {
        validations,
        provision_idle,
        provision_idle_excl,
        page_idle: sorted(page_idle),
        executions,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn line(label: &str, values: &[f64], unit: &str) {
    let (median, lo, hi) = median_spread(values);
    println!("  {label:<50} median {median:>9.1} {unit}  (runs: {lo:.1} – {hi:.1})");
}

pub fn print(r: &BulkRun, hlr: &ioto_network::HlrProfile) {
    println!("\nvalidation of the file ({} runs)", r.validations.len());
    let v = &r.validations;
    line(
        "read and split the CSV",
        &v.iter().map(|x| ms(x.read)).collect::<Vec<_>>(),
        "ms",
    );
    line(
        "look up the ICCIDs (5,000 per query, 2 at a time)",
        &v.iter().map(|x| ms(x.lookup)).collect::<Vec<_>>(),
        "ms",
    );
    line(
        "check rows (format, duplicates, transition)",
        &v.iter().map(|x| ms(x.check)).collect::<Vec<_>>(),
        "ms",
    );
    line(
        "whole submit (the above + storing job and rows)",
        &v.iter().map(|x| ms(x.submit)).collect::<Vec<_>>(),
        "ms",
    );
    println!(
        "\nexecution against the simulated HLR ({} TPS, latency median {} ms, p99 {} ms)",
        hlr.tps, hlr.latency_median_ms, hlr.latency_p99_ms
    );
    let e = &r.executions;
    for (i, x) in e.iter().enumerate() {
        let ideal = x.rows as f64 / f64::from(hlr.tps);
        println!(
            "  run {}: {} rows in {:.1} s ({:.0} rows/s; the HLR allows {:.1} s: {:+.1} %), {} progress events, longest gap {:.0} ms",
            i + 1,
            x.succeeded,
            x.elapsed.as_secs_f64(),
            x.rows as f64 / x.elapsed.as_secs_f64(),
            ideal,
            (x.elapsed.as_secs_f64() / ideal - 1.0) * 100.0,
            x.events,
            ms(x.longest_gap)
        );
    }
    line(
        "execution time",
        &e.iter().map(|x| x.elapsed.as_secs_f64()).collect::<Vec<_>>(),
        "s",
    );
    println!("\nanother tenant, one SIM per provisionSims call (p50 / p99, ms)");
    println!(
        "  idle:        total {:>7.1} / {:>7.1}   without the HLR's time {:>6.1} / {:>6.1}   ({} calls)",
        r.provision_idle.pct(0.5),
        r.provision_idle.pct(0.99),
        r.provision_idle_excl.pct(0.5),
        r.provision_idle_excl.pct(0.99),
        r.provision_idle.0.len()
    );
    for (i, x) in e.iter().enumerate() {
        println!(
            "  during run {}: total {:>7.1} / {:>7.1}   without the HLR's time {:>6.1} / {:>6.1}   ({} calls)",
            i + 1,
            x.provision_loaded.pct(0.5),
            x.provision_loaded.pct(0.99),
            x.provision_loaded_excl.pct(0.5),
            x.provision_loaded_excl.pct(0.99),
            x.provision_loaded.0.len()
        );
    }
    line(
        "p99 without the HLR's time, during the job",
        &e.iter()
            .map(|x| x.provision_loaded_excl.pct(0.99))
            .collect::<Vec<_>>(),
        "ms",
    );
    println!("\nanother tenant, a page of 50 SIMs (p50 / p99, ms)");
    println!(
        "  idle:        {:>7.1} / {:>7.1}",
        r.page_idle.pct(0.5),
        r.page_idle.pct(0.99)
    );
    for (i, x) in e.iter().enumerate() {
        println!(
            "  during run {}: {:>7.1} / {:>7.1}",
            i + 1,
            x.page_loaded.pct(0.5),
            x.page_loaded.pct(0.99)
        );
    }
}
