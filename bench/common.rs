//! `ioto-bench api`: the real server on an ephemeral port, measured from a real HTTP client.
//! Prints latency percentiles and throughput for login, `me` and a page of SIMs.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use ioto_domain::directory::{NewTenant, NewUser};
use ioto_domain::fleet::{AuditAction, AuditStamp, NewSim, SimState};
use ioto_domain::identifiers::{Email, Iccid, Imsi, Name, Slug};
use ioto_domain::{Role, Scope};
use serde_json::Value;

use ioto::config::Config;
use ioto::engines;
use ioto::server::App;

pub(crate) const PASSWORD: &str = "bench-password-123";

/// One measured operation.
#[derive(Clone)]
pub struct Figures {
    pub name: &'static str,
    pub requests: usize,
    pub concurrency: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
}

impl Figures {
    pub(crate) fn new(
        name: &'static str,
        concurrency: usize,
        elapsed: Duration,
        mut lat: Vec<Duration>,
    ) -> Self {
        lat.sort();
        let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
        Self {
            name,
            requests: lat.len(),
            concurrency,
            elapsed,
            p50: pct(0.50),
            p95: pct(0.95),
            p99: pct(0.99),
        }
    }

    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> anyhow::Result<Value> {
    let mut req = client.post(url).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let v: Value = req.send().await?.json().await?;
    if v.get("errors").is_some() {
        anyhow::bail!("GraphQL errors: {v}");
    }
    Ok(v)
}

/// An OPERATOR of `tenant` signing in with `email` and the bench password.
pub(crate) async fn operator(
    dir: &dyn ioto_domain::ports::Directory,
    tenant: ioto_domain::TenantId,
    email: &str,
) -> anyhow::Result<ioto_domain::directory::User> {
    Ok(dir
        .create_user(
            Scope::Platform,
            NewUser {
                tenant_id: tenant,
                customer_id: None,
                email: Email::parse(email)?,
                display_name: Name::parse("Bench", "displayName")?,
                role: Role::Operator,
                password_hash: ioto_domain::password::hash_password(PASSWORD)?,
            },
        )
        .await?)
}

/// Runs `total` requests of `body` from `concurrency` tasks and summarises their latencies.
pub(crate) async fn measure(
    name: &'static str,
    url: &str,
    token: Option<&str>,
    body: Value,
    total: usize,
    concurrency: usize,
) -> anyhow::Result<Figures> {
    let client = reqwest::Client::new();
    let start = Instant::now();
    let per_task = total.div_ceil(concurrency);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, token, body) = (
            client.clone(),
            url.to_owned(),
            token.map(str::to_owned),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_task);
            for _ in 0..per_task {
                let t = Instant::now();
                post(&client, &url, token.as_deref(), &body).await?;
                lat.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(Figures::new(name, concurrency, start.elapsed(), all))
}

/// [`seed`], also answering the tenant.
pub(crate) async fn seed_tenant(
    app: &App,
    sims: usize,
) -> anyhow::Result<(ioto_domain::TenantId, String, String)> {
    let dir = &app.engines.directory;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let tenant = dir
        .create_tenant(
            Scope::Platform,
            NewTenant {
                slug: Slug::parse(&format!("bench-{tag}"))?,
                name: Name::parse("Bench", "name")?,
            },
        )
        .await?;
    let email = format!("bench-{tag}@example.com");
    operator(dir.as_ref(), tenant.id, &email).await?;
    let seed = u64::from(uuid::Uuid::new_v4().as_u128() as u32) % 100_000;
    let batch = (0..sims as u64)
        .map(|i| {
            let mut sim = NewSim::basic(
                tenant.id,
                Iccid::with_check_digit(&format!("8988{seed:09}{i:05}"))?,
                Imsi::parse(&format!("{:010}{:05}", seed, i))?,
            );
            sim.state = SimState::Active;
            Ok(sim)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let stamp = AuditStamp {
        actor: "bench".into(),
        actor_user_id: None,
        at: chrono::Utc::now(),
        note: None,
    };
    let middle = batch
        .get(batch.len() / 2)
        .map(|s| s.iccid.to_string())
        .context("no SIMs to seed")?;
    app.engines
        .fleet
        .insert_sims(
            Scope::Platform,
            &batch.iter().collect::<Vec<_>>(),
            AuditAction::Imported,
            &stamp,
            None,
        )
        .await?;
    Ok((tenant.id, email, middle))
}

/// The process's high-water mark of resident memory, MB (`VmHWM`; reset by writing `5` to
/// `/proc/self/clear_refs`).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Median of `values` and their spread (min–max).
pub fn median_spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let median = match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    };
    (
        median,
        v.first().copied().unwrap_or(f64::NAN),
        v.last().copied().unwrap_or(f64::NAN),
    )
}

/// Each operation over repeated runs: median and spread (min–max) of its throughput and
/// latencies, so one lucky or unlucky run does not make the figure.
pub fn print_summary(title: &str, runs: &[Vec<Figures>]) {
    println!("{title}: median (min–max) of {} runs", runs.len());
    println!("| operation | req/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|");
    let Some(first) = runs.first() else { return };
    for op in first {
        let same: Vec<&Figures> = runs
            .iter()
            .filter_map(|r| r.iter().find(|f| f.name == op.name))
            .collect();
        let cell = |get: &dyn Fn(&Figures) -> f64, digits: usize| {
            let (median, min, max) = median_spread(&same.iter().map(|f| get(f)).collect::<Vec<_>>());
            format!("{median:.digits$} ({min:.digits$}–{max:.digits$})")
        };
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "| {} | {} | {} | {} |",
            op.name,
            cell(&Figures::per_second, 0),
            cell(&|f| ms(f.p50), 2),
            cell(&|f| ms(f.p99), 2)
        );
    }
}

pub fn print(figures: &[Figures], engines: &[(&'static str, String)]) {
    println!(
        "engines: {}",
        engines
            .iter()
            .map(|(p, e)| format!("{p}={e}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "{:<34} {:>9} {:>5} {:>10} {:>9} {:>9} {:>9}",
        "operation", "requests", "conc", "req/s", "p50 ms", "p95 ms", "p99 ms"
    );
    for f in figures {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<34} {:>9} {:>5} {:>10.0} {:>9.2} {:>9.2} {:>9.2}",
            f.name,
            f.requests,
            f.concurrency,
            f.per_second(),
            ms(f.p50),
            ms(f.p95),
            ms(f.p99)
        );
    }
}

/// The machine a figure was measured on (processor, cores, memory), printed first by every
/// bench so that figures travel with it.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or_else(
            || "unknown memory".to_owned(),
            |kb| format!("{:.1} GiB", kb as f64 / 1_048_576.0),
        );
    format!("machine: {cpu}, {cores} cores, {memory}")
}

/// Two reference figures printed under [`machine`], because machines of one name differ: a
/// fixed CPU task on one core (SHA-256 of 1 MiB) and a small write made durable (4 KiB and
/// `fdatasync`, in the temporary directory's filesystem), each the median and spread of 20.
pub fn reference() -> String {
    use sha2::Digest as _;
    const TIMES: usize = 20;
    let data = vec![0x5a_u8; 1 << 20];
    let cpu: Vec<f64> = (0..TIMES)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(sha2::Sha256::digest(std::hint::black_box(&data)));
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let (m, lo, hi) = median_spread(&cpu);
    let disk = match fsync_ms(TIMES) {
        Ok(times) => {
            let (m, lo, hi) = median_spread(&times);
            format!("{m:.2} ms ({lo:.2}–{hi:.2})")
        }
        Err(e) => format!("not measured ({e})"),
    };
    format!("reference: SHA-256 of 1 MiB {m:.2} ms ({lo:.2}–{hi:.2}); 4 KiB write + fdatasync {disk}")
}

/// Times `n` appends of 4 KiB, each made durable, to a scratch file that is removed afterwards.
fn fsync_ms(n: usize) -> std::io::Result<Vec<f64>> {
    use std::io::Write as _;
    let path = std::env::temp_dir().join(format!("ioto-bench-fsync-{}", std::process::id()));
    let mut file = std::fs::File::create(&path)?;
    let block = [0x5a_u8; 4096];
    let times = (0..n)
        .map(|_| {
            let started = Instant::now();
            file.write_all(&block)?;
            file.sync_data()?;
            Ok(started.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<std::io::Result<Vec<f64>>>();
    drop(file);
    std::fs::remove_file(&path)?;
    times
}

/// Runs `bench` on `config` with ClickHouse pointed at a database of the bench's own on the
/// configured server (`<database>_bench_<what>_<8 hex digits>`), so that the bench starts from
/// empty tables and leaves nothing behind: the database is dropped when `bench` ends, whether it
/// succeeded or not. Without ClickHouse, `bench` gets the configuration unchanged.
pub async fn in_scratch_clickhouse<T, F, Fut>(config: &Config, what: &str, bench: F) -> anyhow::Result<T>
where
    F: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let (config, scratch) = scratch_clickhouse(config, what);
    finish_scratch(scratch, bench(config).await).await
}

/// The configuration of [`in_scratch_clickhouse`]'s bench and the database to drop after it
/// (`None` without ClickHouse). (The rating bench used to
/// load its 10 M CDRs into the configured database and leave them there; `cdrs` is ordered by
/// `cdr_id`, so every later read of one tenant's month scanned them all and the read grew from
/// 3.4 to 10 s over ten invocations.)
fn scratch_clickhouse(config: &Config, what: &str) -> (Config, Option<ioto_analytics::ClickHouseConfig>) {
    let mut config = config.clone();
    let scratch = engines::clickhouse_config(&config).map(|mut ch| {
        let id = uuid::Uuid::new_v4().simple().to_string();
        ch.database = format!("{}_bench_{what}_{}", ch.database, &id[..8]);
        ch
    });
    if let Some(ch) = &scratch {
        config.clickhouse.database.clone_from(&ch.database);
        // On stderr: stdout is the bench's report. A bench killed before its end leaves the
        // database behind; this names what to drop.
        eprintln!(
            "the bench works in ClickHouse database {} (dropped at its end)",
            ch.database
        );
    }
    (config, scratch)
}

/// Drops what [`scratch_clickhouse`] named, and hands on the bench's result. When the bench
/// failed, its error is the one returned, and a failed drop is only a warning beside it.
async fn finish_scratch<T>(
    scratch: Option<ioto_analytics::ClickHouseConfig>,
    result: anyhow::Result<T>,
) -> anyhow::Result<T> {
    let Some(ch) = scratch else {
        return result;
    };
    let dropped = ioto_analytics::ClickHouseUsage::drop_database(&ch)
        .await
        .with_context(|| format!("dropping the bench's ClickHouse database {}", ch.database));
    match (result, dropped) {
        (Ok(figures), dropped) => dropped.map(|()| figures),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(d)) => {
            eprintln!("warning: {d:#}");
            Err(e)
        }
    }
}
