//! `ioto bench cpu`: the CPU-bound steps of ingest with no engine in the way, as time per event
//! (median and spread over `--runs`) and, under `--instructions`, as instructions per event
//! counted by `valgrind --tool=callgrind`, which repeat exactly where times do not.
//!
//! - **decode**: a session rollup's JSON payload to a checked [`SessionRollup`];
//! - **count**: a batch through [`SessionIngest::prepare`] (decode, window check, owner and
//!   progress lookups from the worker's caches, the counting step) and its acknowledgement, as the
//!   worker does between two writes. The caches are warmed first with each session's first event
//!   (that part reads the store and is not measured), so the measured part touches no engine.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use ioto_domain::services::SessionIngest;
use ioto_domain::usage::SessionRollup;

use crate::config::Config;
use crate::engines;
use crate::tooling::bench::median_spread;
use crate::tooling::bench_ingest::{backlog, sims};

/// Events per batch, as the worker takes them under load.
const BATCH: usize = 5_000;

/// One bench step: time per event in each run, and instructions per event when counted.
pub struct CpuStep {
    pub name: &'static str,
    pub events: usize,
    pub nanos_per_event: Vec<f64>,
    pub instructions_per_event: Option<f64>,
}

type Payloads = Vec<(String, Vec<u8>)>;

pub async fn cpu(
    config: &Config,
    events: usize,
    sim_count: usize,
    runs: usize,
    instructions: bool,
) -> anyhow::Result<Vec<CpuStep>> {
    // The embedded engines in a fresh data dir: only the warm-up reads them.
    let mut config = config.clone();
    config.database.url = None;
    config.clickhouse.url = None;
    config.kafka.brokers = None;
    config.mqtt.url = None;
    engines::migrate(&config).await?;
    let engines = engines::connect(&config).await?;
    println!("{}", engines.versions().await?);
    let run = (uuid::Uuid::new_v4().as_u128() % 100_000) as u32;
    let (_, iccids) = sims(&engines, run, sim_count.min(events)).await?;
    // One session per SIM: its first event (the warm-up) makes every later one a cache hit.
    let rollups = backlog(&iccids, events, Some(1));
    let payloads: Payloads = rollups
        .iter()
        .enumerate()
        .map(|(i, r)| Ok((format!("bench/0/{i}"), serde_json::to_vec(&r.to_json())?)))
        .collect::<anyhow::Result<_>>()?;
    let (warm, measured) = payloads.split_at(iccids.len().min(payloads.len()));

    let mut decode = CpuStep {
        name: "decode (JSON → checked rollup)",
        events: payloads.len(),
        nanos_per_event: Vec::new(),
        instructions_per_event: None,
    };
    let mut count = CpuStep {
        name: "count (prepare + acknowledge a batch)",
        events: measured.len(),
        nanos_per_event: Vec::new(),
        instructions_per_event: None,
    };
    for _ in 0..runs {
        let started = Instant::now();
        let decoded = measure_decode(&payloads);
        decode.nanos_per_event.push(per_event(started, payloads.len()));
        if decoded != payloads.len() {
            bail!(
                "{} of {} payloads did not decode",
                payloads.len() - decoded,
                payloads.len()
            );
        }

        let mut ingest = SessionIngest::new(engines.usage.clone(), engines.fleet.clone());
        let prepared = ingest.prepare(warm).await?;
        ingest.stage(&prepared);
        ingest.acknowledge(prepared);
        let started = Instant::now();
        let counted = tokio::task::block_in_place(|| measure_count(&mut ingest, measured))?;
        count.nanos_per_event.push(per_event(started, measured.len()));
        if counted != measured.len() {
            bail!(
                "{counted} of {} events counted: the workload is not what the bench assumes",
                measured.len()
            );
        }
    }
    if instructions {
        let dir = config.data_dir.join("callgrind");
        std::fs::create_dir_all(&dir)?;
        for step in [&mut decode, &mut count] {
            let function = if step.name.starts_with("decode") {
                "measure_decode"
            } else {
                "measure_count"
            };
            let total = callgrind(&dir, function, events, sim_count)?;
            step.instructions_per_event = Some(total as f64 / step.events.max(1) as f64);
        }
    }
    Ok(vec![decode, count])
}

fn per_event(started: Instant, events: usize) -> f64 {
    started.elapsed().as_secs_f64() * 1e9 / events.max(1) as f64
}

/// Decodes every payload; returns how many decoded. Its own function so callgrind can count it.
#[inline(never)]
pub fn measure_decode(payloads: &[(String, Vec<u8>)]) -> usize {
    payloads
        .iter()
        .filter(|(_, p)| std::hint::black_box(SessionRollup::from_json(p)).is_ok())
        .count()
}

/// Counts `payloads` batch by batch against warm caches; returns the updates counted. Nothing
/// in it waits on I/O, so it is driven to completion right here, on this thread.
#[inline(never)]
pub fn measure_count(ingest: &mut SessionIngest, payloads: &[(String, Vec<u8>)]) -> anyhow::Result<usize> {
    let mut counted = 0;
    for batch in payloads.chunks(BATCH) {
        let prepared = futures::executor::block_on(ingest.prepare(batch))?;
        counted += prepared.updates.len();
        ingest.stage(&prepared);
        ingest.acknowledge(prepared);
    }
    Ok(counted)
}

/// Runs this bench once under callgrind, collecting only inside `function`; returns the
/// instructions it executed.
fn callgrind(dir: &Path, function: &str, events: usize, sims: usize) -> anyhow::Result<u64> {
    let out = dir.join(format!("{function}.out"));
    let exe = std::env::current_exe()?;
    eprintln!("counting the instructions of {function} under callgrind …");
    let result = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        // The function itself, not its closures: a matching closure would toggle collection off.
        .arg(format!("--toggle-collect=*::bench_cpu::{function}"))
        .arg(&exe)
        .args(["bench", "cpu", "--runs", "1"])
        .arg("--events")
        .arg(events.to_string())
        .arg("--sims")
        .arg(sims.to_string())
        .arg("--data-dir")
        .arg(dir.join(function))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("running valgrind (Debian package valgrind; scripts/engines.sh installs it)")?;
    if !result.status.success() {
        bail!(
            "valgrind --tool=callgrind failed ({}): {}",
            result.status,
            String::from_utf8_lossy(&result.stderr)
        );
    }
    let text = std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
    let total = text
        .lines()
        .find_map(|l| l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .with_context(|| format!("no instruction total in {}", out.display()))?;
    if total == 0 {
        bail!("callgrind counted nothing inside {function}: was the function inlined or renamed?");
    }
    Ok(total)
}

pub fn print(steps: &[CpuStep]) {
    println!("| step | events | runs | ns/event median | spread (min–max) | instructions/event |");
    println!("|---|---:|---:|---:|---:|---:|");
    for s in steps {
        let (median, min, max) = median_spread(&s.nanos_per_event);
        println!(
            "| {} | {} | {} | {median:.0} | {min:.0}–{max:.0} | {} |",
            s.name,
            s.events,
            s.nanos_per_event.len(),
            s.instructions_per_event.map_or_else(
                || "not counted (--instructions)".to_owned(),
                |i| format!("{i:.0}")
            )
        );
    }
}
