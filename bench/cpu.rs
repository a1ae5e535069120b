//! `ioto-bench cpu`: the CPU-bound steps of ingest with no engine in the way, as time per event
//! (median and spread over `--runs`) and, under `--instructions`, as instructions per event
//! counted by `valgrind --tool=callgrind`, which repeat exactly where times do not.
//!
//! - **decode**: a session rollup's JSON payload to a checked [`SessionRollup`];
//! - **count**: a batch through [`SessionIngest::prepare`] (decode, window check, owner and
//!   progress lookups from the worker's caches, the counting step) and its acknowledgement, as the
//!   worker does between two writes. The caches are warmed first with each session's first event
//!   (that part reads the store and is not measured), so the measured part touches no engine;
//! - **rate**: `--cdrs` CDRs held as columns rated in Polars under a 300-zone card (what a rating
//!   run does between reading the CDRs and writing its rows), per CDR. Polars works on a thread
//!   pool of its own, which callgrind's per-thread `--toggle-collect` cannot follow, so its
//!   instructions are two whole processes' counts subtracted: one that builds the CDRs and rates
//!   them, one that only builds them;
//! - **import check**: an inventory CSV of `--import-rows` SIMs (with PIN and PUK) read and every
//!   row checked, as an import does before anything is sealed or written, per SIM, on one thread
//!   (instructions counted) and with the rows checked on every core (as an import does);
//! - **import seal**: the checked rows' PIN and PUK sealed (AES-256-GCM), per SIM, on one thread
//!   (instructions counted) and on every core (as an import does).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::NaiveDate;
use ioto_app::fleet::{read_and_check, read_and_check_on};
use ioto_app::ingest::Counted;
use ioto_app::SessionIngest;
use ioto_domain::billing::rating::{BillableSim, RatingJob};
use ioto_domain::fleet::import::{seal_rows, seal_rows_on, CheckedRow, ImportTarget, TableFormat};
use ioto_domain::fleet::secret::SecretCipher;
use ioto_domain::identifiers::Iccid;
use ioto_domain::usage::SessionRollup;
use ioto_domain::{CustomerId, TenantId};

use crate::common::median_spread;
use crate::ingest::{backlog, sims};
use ioto::config::Config;
use ioto::engines;

/// Events per batch, as the worker takes them under load.
const BATCH: usize = 5_000;

/// One bench step: time per event in each run, and instructions per event when counted.
pub struct CpuStep {
    pub name: &'static str,
    pub events: usize,
    pub nanos_per_event: Vec<f64>,
    pub instructions_per_event: Option<f64>,
    /// What the instructions column says when nothing was counted.
    pub uncounted: &'static str,
}

impl CpuStep {
    /// A step of `events` events, counted only under `--instructions`.
    fn new(name: &'static str, events: usize) -> Self {
        Self {
            name,
            events,
            nanos_per_event: Vec::new(),
            instructions_per_event: None,
            uncounted: "not counted (--instructions)",
        }
    }

    /// A step doing the one-thread step's work on every core: callgrind follows one thread, so
    /// it has no count of its own.
    fn on_every_core(name: &'static str, events: usize) -> Self {
        Self {
            uncounted: "as on one thread (callgrind follows one)",
            ..Self::new(name, events)
        }
    }
}

type Payloads = Vec<(String, Vec<u8>)>;

/// Zones of the rating step's card (the rating target's card).
const RATING_ZONES: usize = 300;

/// CDRs per SIM in the rating step (100,000 SIMs for 10 M CDRs, as in `ioto-bench rating`).
const CDRS_PER_SIM: usize = 100;

pub async fn cpu(
    config: &Config,
    events: usize,
    sim_count: usize,
    cdrs: usize,
    import_rows: usize,
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

    let mut decode = CpuStep::new("decode (JSON → checked rollup)", payloads.len());
    let mut count = CpuStep::new("count (prepare + acknowledge a batch)", measured.len());
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
    let (columns, job) = rating_input(cdrs)?;
    let mut rate = CpuStep::new("rate (Polars: CDR columns → rated rows, 300 zones)", cdrs);
    for _ in 0..runs {
        let input = columns.clone();
        let started = Instant::now();
        let rated = tokio::task::block_in_place(|| ioto_analytics::rating::rate(input, &job))?;
        rate.nanos_per_event.push(per_event(started, cdrs));
        if rated.totals.records as usize != cdrs {
            bail!("rated {} of {cdrs} CDRs", rated.totals.records);
        }
    }
    let file = crate::fleet::import_file(run, 0, import_rows, true);
    let target = ImportTarget {
        tenant_id: TenantId(uuid::Uuid::from_u128(0x1071)),
        customer_id: None,
    };
    let cipher = SecretCipher::new(&[7; 32]);
    let mut check = CpuStep::new(
        "import check (inventory CSV → checked SIM rows, one thread)",
        import_rows,
    );
    let mut check_all = CpuStep::on_every_core(
        "import check (rows checked on every core, as an import does)",
        import_rows,
    );
    let mut seal_one = CpuStep::new("import seal (PIN + PUK, AES-256-GCM, one thread)", import_rows);
    let mut seal_all = CpuStep::on_every_core(
        "import seal (PIN + PUK, on every core, as an import does)",
        import_rows,
    );
    for _ in 0..runs {
        let started = Instant::now();
        let rows = measure_import_check(file.as_bytes(), target)?;
        check.nanos_per_event.push(per_event(started, import_rows));
        let started = Instant::now();
        let (on_every_core, errors, _) = read_and_check(
            &ioto_imports::TableFiles,
            file.as_bytes(),
            TableFormat::Csv,
            target,
        )?;
        check_all.nanos_per_event.push(per_event(started, import_rows));
        if rows.len() != import_rows || on_every_core.len() != import_rows || !errors.is_empty() {
            bail!("{} of {import_rows} rows passed the import check", rows.len());
        }
        drop(on_every_core);
        let mut one = rows.clone();
        let started = Instant::now();
        measure_import_seal(&mut one, &cipher)?;
        seal_one.nanos_per_event.push(per_event(started, import_rows));
        let mut all = rows;
        let started = Instant::now();
        seal_rows(&mut all, &cipher)?;
        seal_all.nanos_per_event.push(per_event(started, import_rows));
        if one
            .iter()
            .chain(&all)
            .any(|r| r.sim.pin.is_none() || r.sim.puk.is_none())
        {
            bail!("a row's PIN or PUK was not sealed");
        }
    }
    if instructions {
        let dir = config.data_dir.join("callgrind");
        std::fs::create_dir_all(&dir)?;
        // The rating step's CDRs and the import's rows at a token size: those steps are
        // counted on their own.
        let ingest_size = child_size(events, sim_count, 1, 1);
        count_function(&dir, &mut decode, "measure_decode", &ingest_size)?;
        count_function(&dir, &mut count, "measure_count", &ingest_size)?;
        let size = child_size(1, 1, cdrs, 1);
        let with = callgrind(
            &dir,
            "rating",
            &[],
            &[&size[..], &["--rating-child".into(), "rate".into()]].concat(),
        )?;
        let without = callgrind(
            &dir,
            "rating-input",
            &[],
            &[&size[..], &["--rating-child".into(), "build".into()]].concat(),
        )?;
        if with <= without {
            bail!("callgrind counted {with} instructions rating and {without} without: nothing was rated");
        }
        rate.instructions_per_event = Some((with - without) as f64 / cdrs as f64);
        let import_size = child_size(1, 1, 1, import_rows);
        count_function(&dir, &mut check, "measure_import_check", &import_size)?;
        count_function(&dir, &mut seal_one, "measure_import_seal", &import_size)?;
    }
    Ok(vec![decode, count, rate, check, check_all, seal_one, seal_all])
}

/// What a child process under callgrind does for the rating step: builds the CDR columns, and
/// rates them when `rate`; nothing else (no engine, no other step).
pub fn rating_child(cdrs: usize, rate: bool) -> anyhow::Result<()> {
    let (columns, job) = rating_input(cdrs)?;
    if rate {
        std::hint::black_box(ioto_analytics::rating::rate(columns, &job)?);
    } else {
        std::hint::black_box(columns);
    }
    Ok(())
}

/// `cdrs` CDRs of one tenant's month as the rating reads them (one SIM per hundred CDRs, four
/// sub-customers, every SIM each day, networks drawn from a fixed sequence over the card's 349,
/// about one in seven on a network no zone lists, priced by the default zone), and the job rating
/// them under a 300-zone card. The same every time,
/// so two processes build exactly the same input.
fn rating_input(cdrs: usize) -> anyhow::Result<(ioto_analytics::rating::CdrColumns, RatingJob)> {
    let tenant = TenantId(uuid::Uuid::from_u128(0x1070));
    let from = NaiveDate::from_ymd_opt(2026, 10, 1).context("a date")?;
    let to = NaiveDate::from_ymd_opt(2026, 11, 1).context("a date")?;
    let days = (to - from).num_days() as usize;
    let (card, networks) = crate::rating::card(tenant, RATING_ZONES, from)?;
    let sim_count = cdrs.div_ceil(CDRS_PER_SIM);
    let sims: Vec<Iccid> = (0..sim_count as u64)
        .map(|i| Iccid::with_check_digit(&format!("8988{:014}", 42_000_000 + i)))
        .collect::<ioto_domain::Result<_>>()?;
    let customers: Vec<String> = (1..=4u128)
        .map(|i| uuid::Uuid::from_u128(i).to_string())
        .collect();
    let networks: Vec<String> = networks.iter().map(ToString::to_string).collect();
    let mut columns = ioto_analytics::rating::CdrColumns::default();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..cdrs {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let sim = i % sim_count;
        let day = from + chrono::Days::new(((i / sim_count) % days) as u64);
        columns.push(
            sims[sim].as_str(),
            &customers[sim % customers.len()],
            ioto_analytics::rating::columns::epoch_days(day),
            &networks[(x >> 20) as usize % networks.len()],
            x % 2_000_000,
            (x >> 32) % 200_000,
        );
    }
    let job = RatingJob {
        run_id: uuid::Uuid::from_u128(0x2070),
        tenant_id: tenant,
        from,
        to,
        card,
        sims: sims
            .iter()
            .enumerate()
            .map(|(i, s)| BillableSim {
                iccid: s.clone(),
                customer_id: Some(CustomerId(uuid::Uuid::from_u128((i % 4) as u128 + 1))),
                tariff_plan: None,
            })
            .collect(),
        active: vec![],
    };
    Ok((columns, job))
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

/// Reads and checks an inventory CSV as an import does, on this thread alone (so callgrind,
/// which counts one thread here, sees all of it); returns the rows to create.
#[inline(never)]
pub fn measure_import_check(file: &[u8], target: ImportTarget) -> anyhow::Result<Vec<CheckedRow>> {
    let (rows, errors, _) =
        read_and_check_on(&ioto_imports::TableFilesOn(1), file, TableFormat::Csv, target, 1)?;
    if let Some(e) = errors.first() {
        bail!(
            "row {} of the bench's own file was refused: {} {}",
            e.row,
            e.field,
            e.reason
        );
    }
    Ok(rows)
}

/// Seals the rows' PIN and PUK on this thread alone (so callgrind, which counts one thread
/// here, sees all of it).
#[inline(never)]
pub fn measure_import_seal(rows: &mut [CheckedRow], cipher: &SecretCipher) -> anyhow::Result<()> {
    Ok(seal_rows_on(rows, cipher, 1)?)
}

/// The sizes a child run under callgrind gets.
fn child_size(events: usize, sims: usize, cdrs: usize, import_rows: usize) -> Vec<String> {
    [
        ("--events", events),
        ("--sims", sims),
        ("--cdrs", cdrs),
        ("--import-rows", import_rows),
    ]
    .into_iter()
    .flat_map(|(flag, n)| [flag.to_owned(), n.to_string()])
    .collect()
}

/// Counts the instructions of `function` (collected only inside it) in a child run with `args`,
/// as `step`'s instructions per event.
fn count_function(dir: &Path, step: &mut CpuStep, function: &str, args: &[String]) -> anyhow::Result<()> {
    let total = callgrind(
        dir,
        function,
        &[format!("--toggle-collect=ioto_bench::cpu::{function}")],
        args,
    )?;
    step.instructions_per_event = Some(total as f64 / step.events.max(1) as f64);
    Ok(())
}

/// Runs this bench once under callgrind with `options` (e.g. collecting only inside one
/// function; the function itself, not its closures: a matching closure would toggle collection
/// off) and `args`; returns the instructions it counted. Polars gets one worker thread: valgrind
/// runs one thread at a time, and idle workers spinning for work would count differently in
/// every process.
fn callgrind(dir: &Path, name: &str, options: &[String], args: &[String]) -> anyhow::Result<u64> {
    let out = dir.join(format!("{name}.out"));
    let exe = std::env::current_exe()?;
    eprintln!("counting the instructions of {name} under callgrind …");
    let result = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .args(options)
        .env("POLARS_MAX_THREADS", "1")
        .arg(&exe)
        .args(["cpu", "--runs", "1"])
        .args(args)
        .arg("--data-dir")
        .arg(dir.join(name))
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
        bail!("callgrind counted nothing for {name}: was the function inlined or renamed?");
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
            s.instructions_per_event
                .map_or_else(|| s.uncounted.to_owned(), |i| format!("{i:.0}"))
        );
    }
}
