//! `ioto-bench`: measures the system on this machine and prints figures for
//! docs/benchmarks.md. Kept out of the `ioto` binary, which is the product; each bench builds the
//! same server and engines `ioto serve` does, from the same configuration.

mod alerts;
mod analytics;
mod api;
mod bare;
mod bulk;
mod common;
mod cpu;
mod exports;
mod faults;
mod fleet;
mod forecast;
mod forecast_pass;
mod ingest;
mod rating;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{Parser, Subcommand};
use ioto::cli::{positive, setup, Quiet};
use ioto::config::{Config, Loaded};

use crate::common::in_scratch_clickhouse;

/// jemalloc, as the `ioto` binary has (see its `main.rs`): the benches measure what it runs.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "ioto-bench",
    version,
    about = "Measures Ioto on this machine; prints figures for docs/benchmarks.md"
)]
struct Cli {
    /// Configuration file (default: ./ioto.toml when present). Also IOTO_CONFIG.
    #[arg(long, global = true, env = "IOTO_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: BenchCommand,
}

/// 1 to the rows one import takes.
fn import_rows() -> clap::builder::RangedU64ValueParser<usize> {
    positive::<usize>().range(1..=ioto_domain::fleet::import::MAX_IMPORT_ROWS as u64)
}

/// 1 to the rules one tenant may keep, less the one the offline pass adds.
fn alert_rules() -> clap::builder::RangedU64ValueParser<usize> {
    positive::<usize>().range(1..=ioto_domain::alert::MAX_RULES_PER_TENANT - 1)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ioto-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench_command(cli.config.as_deref(), cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ioto-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Subcommand)]
enum BenchCommand {
    /// GraphQL over HTTP on the configured engines (embedded by default, in a fresh data dir):
    /// login, `me`, and a page of SIMs.
    Api {
        /// Requests per measured operation.
        #[arg(long, default_value_t = 5000, value_parser = positive::<usize>())]
        requests: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16, value_parser = positive::<usize>())]
        concurrency: usize,
        /// Consecutive runs, each on fresh data (median and spread are printed after them).
        #[arg(long, default_value_t = 3, value_parser = positive::<usize>())]
        runs: usize,
        /// Data directory, kept afterwards (default: a fresh temporary one, removed when the bench ends).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Alert rules on the configured engines (embedded by default, in fresh data dirs): a backlog
    /// of session events counted by the server's worker on `--sims` SIMs without rules and with
    /// `--rules` rules; the clock pass finding every SIM offline; and, under `--rate` background
    /// events per second, probes timed from publish until their alert is stored and from a
    /// quota's crossing until the SIM is suspended.
    Alerts {
        /// SIMs of the tenant, the probes' SIMs among them (two per probe).
        #[arg(long, default_value_t = 100_000, value_parser = positive::<usize>())]
        sims: usize,
        /// Alert rules, the probe rule among them (the rest a mix over all SIMs).
        #[arg(long, default_value_t = 20, value_parser = alert_rules())]
        rules: usize,
        /// Background session events per second while the probes run.
        #[arg(long, default_value_t = 5_000, value_parser = positive::<u64>())]
        rate: u64,
        /// Probes of each kind (an alert probe and a quota probe every second).
        #[arg(long, default_value_t = 50, value_parser = positive::<usize>())]
        probes: usize,
        /// Session events in the backlog counted without and with the rules.
        #[arg(long, default_value_t = 500_000, value_parser = positive::<usize>())]
        backlog: usize,
        /// Consecutive runs, each on its own SIMs, topics and data dirs (median and spread are
        /// printed after the runs).
        #[arg(long, default_value_t = 3, value_parser = positive::<usize>())]
        runs: usize,
        /// Data directory, kept afterwards (default: a fresh temporary one, removed when the bench ends).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// The ingest pipeline on the configured engines (Kafka and ClickHouse when set): a backlog
    /// of session rollups counted by the worker, the same rows inserted directly for comparison,
    /// and event → live session latency under a steady load.
    Ingest {
        /// Session rollups in the backlog.
        #[arg(long, default_value_t = 1_000_000, value_parser = positive::<usize>())]
        events: usize,
        /// SIMs the rollups belong to.
        #[arg(long, default_value_t = 10_000, value_parser = positive::<usize>())]
        sims: usize,
        /// Events per second of live load while the latency probes run.
        #[arg(long, default_value_t = 5_000)]
        live_rate: u64,
        /// Latency probes (one every 100 ms).
        #[arg(long, default_value_t = 300, value_parser = positive::<usize>())]
        probes: usize,
        /// Consecutive runs, each on its own topics, SIMs and data dir (median and spread are
        /// printed after the runs).
        #[arg(long, default_value_t = 3, value_parser = positive::<usize>())]
        runs: usize,
        /// Data directory, kept afterwards (default: a fresh temporary one, removed when the bench ends).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// The CPU-bound steps of ingest (decoding and counting session events), rating, and an
    /// import's checking and sealing, with no engine in the way: time per event over several
    /// runs and, with `--instructions`, instructions per event counted by valgrind's callgrind.
    Cpu {
        /// Session rollups decoded and counted per run.
        #[arg(long, default_value_t = 100_000, value_parser = positive::<usize>())]
        events: usize,
        /// SIMs the rollups belong to (one session each).
        #[arg(long, default_value_t = 2_000, value_parser = positive::<usize>())]
        sims: usize,
        /// CDRs rated in memory per run (one SIM per hundred, a 300-zone card).
        #[arg(long, default_value_t = 1_000_000, value_parser = positive::<usize>())]
        cdrs: usize,
        /// SIMs in the inventory file read, checked and sealed per run (with PIN and PUK), at
        /// most what one import takes (1,000,000).
        #[arg(long, default_value_t = 100_000, value_parser = import_rows())]
        import_rows: usize,
        /// Timed runs (median and spread are printed).
        #[arg(long, default_value_t = 5, value_parser = positive::<usize>())]
        runs: usize,
        /// Also count instructions per event under `valgrind --tool=callgrind` (one more run
        /// per step, two for rating, about 50 times slower).
        #[arg(long)]
        instructions: bool,
        /// Internal: what the process callgrind counts for the rating step does (`build` the
        /// CDRs, or build and `rate` them), and nothing else.
        #[arg(long, hide = true, value_parser = ["build", "rate"])]
        rating_child: Option<String>,
        /// Data directory, kept afterwards (default: a fresh temporary one, removed when the bench ends).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// The dashboard and a month-by-network `usageAnalytics` request over GraphQL on a tenant with
    /// this month's session updates; each request's time split into the stores' share and the
    /// API layer's own.
    Analytics {
        /// Session updates this month (generated by ClickHouse through its materialized views,
        /// or written through the embedded store's writer).
        #[arg(long, default_value_t = 100_000_000, value_parser = positive::<u64>())]
        updates: u64,
        /// SIMs of the tenant (at most 100,000).
        #[arg(long, default_value_t = 100_000, value_parser = positive::<usize>())]
        sims: usize,
        /// Rounds of requests (median and spread of each round's percentiles are printed).
        #[arg(long, default_value_t = 5, value_parser = positive::<usize>())]
        runs: usize,
        /// Requests of each kind per round.
        #[arg(long, default_value_t = 100, value_parser = positive::<usize>())]
        requests: usize,
        /// On ClickHouse: after the rounds, merge the tables the requests read (`OPTIMIZE …
        /// FINAL`, what background merges reach in time) and measure the rounds again.
        #[arg(long)]
        merge: bool,
        /// Data directory, kept afterwards (default: a fresh temporary one, removed when the bench ends).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Rating in Polars on the configured usage store: a month of CDRs read, rated and written,
    /// with each stage's time and the peak memory; on ClickHouse also the same rating as one SQL
    /// statement, timed and compared.
    Rating {
        /// CDRs in the rated month.
        #[arg(long, default_value_t = 10_000_000, value_parser = positive::<usize>())]
        cdrs: usize,
        /// SIMs the CDRs belong to.
        #[arg(long, default_value_t = 100_000, value_parser = positive::<usize>())]
        sims: usize,
        /// Zones of the rate card (one network each, and the default zone).
        #[arg(long, default_value_t = 300, value_parser = positive::<usize>())]
        zones: usize,
        /// Ratings of the loaded month (median and spread are printed).
        #[arg(long, default_value_t = 3, value_parser = positive::<usize>())]
        runs: usize,
        /// Data directory, kept afterwards (default: a fresh temporary one, removed when the bench ends).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// The export file writers: rows per second and peak memory writing `--rows` rows of 10
    /// columns as CSV, XLSX and Parquet (each `--runs` times).
    Exports {
        #[arg(long, default_value_t = 10_000_000, value_parser = positive::<usize>())]
        rows: usize,
        #[arg(long, default_value_t = 3, value_parser = positive::<usize>())]
        runs: usize,
        /// Only this format (csv, xlsx or parquet).
        #[arg(long)]
        format: Option<String>,
    },
    /// Bulk provisioning on the configured engines with the simulated HLR: validation of a
    /// `--rows` file against a tenant of `--sims` SIMs, stage by stage; execution of the file;
    /// another tenant's `provisionSims` of one SIM and pages of its SIMs, idle and meanwhile.
    Bulk {
        /// SIMs of the tenant the file is checked against.
        #[arg(long, default_value_t = 1_000_000, value_parser = positive::<usize>())]
        sims: usize,
        /// Rows of the bulk file (at most 100,000).
        #[arg(long, default_value_t = 100_000, value_parser = positive::<usize>())]
        rows: usize,
        /// Files validated and executed (median and spread are printed).
        #[arg(long, default_value_t = 3, value_parser = positive::<usize>())]
        runs: usize,
        /// The other tenant's calls while nothing runs.
        #[arg(long, default_value_t = 100, value_parser = positive::<usize>())]
        probes: usize,
        /// Data directory, kept afterwards (default: a fresh temporary one, removed when the bench ends).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// A fault drill against a running server on the configured engines (`scripts/faults.sh`
    /// starts both): session events published to the broker, API clients, subscriptions, a bulk
    /// job and exports, while an outage hook stops and starts each engine in turn; then checks
    /// that every call answered data or UNAVAILABLE, every byte was counted once and the jobs
    /// finished. With no `--outages` the same load runs for `--minutes` (the soak). Exits with
    /// an error when a check fails.
    Faults {
        /// The running server.
        #[arg(long, default_value = "http://127.0.0.1:8091")]
        server: String,
        /// The server's process id, for its resident memory.
        #[arg(long)]
        server_pid: Option<u32>,
        /// SIMs whose sessions are published.
        #[arg(long, default_value_t = 5_000, value_parser = positive::<usize>())]
        sims: usize,
        /// Session events per second.
        #[arg(long, default_value_t = 5_000, value_parser = positive::<u64>())]
        rate: u64,
        /// API clients, each calling, pausing `--think-ms`, calling again.
        #[arg(long, default_value_t = 200, value_parser = positive::<usize>())]
        clients: usize,
        #[arg(long, default_value_t = 1_000, value_parser = positive::<u64>())]
        think_ms: u64,
        /// Subscriptions, ten per WebSocket.
        #[arg(long, default_value_t = 1_000)]
        subscriptions: usize,
        /// SIMs the bulk job suspends.
        #[arg(long, default_value_t = 4_000, value_parser = positive::<usize>())]
        bulk_sims: usize,
        /// Seconds between two export requests.
        #[arg(long, default_value_t = 30, value_parser = positive::<u64>())]
        export_every: u64,
        /// Engines to stop and start, in order (postgres, clickhouse, broker, hlr).
        #[arg(long, value_delimiter = ',', value_parser = crate::faults::Outage::parse)]
        outages: Vec<crate::faults::Outage>,
        /// Program called as `HOOK stop ENGINE` and `HOOK start ENGINE`.
        #[arg(long)]
        outage_hook: Option<PathBuf>,
        /// Seconds each engine stays down.
        #[arg(long, default_value_t = 30, value_parser = positive::<u64>())]
        outage_seconds: u64,
        /// Seconds of load before the first outage and after each engine is back.
        #[arg(long, default_value_t = 60, value_parser = positive::<u64>())]
        settle_seconds: u64,
        /// Minutes of load after the outages (the whole run without outages).
        #[arg(long, default_value_t = 0.0)]
        minutes: f64,
        /// Minutes per reporting window without outages.
        #[arg(long, default_value_t = 5, value_parser = positive::<u64>())]
        window_minutes: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Forecast accuracy on a simulated fleet with ground truth, no engine: each SIM's last
    /// `--holdout` days forecast by every method and by the one chosen per SIM (MASE, WAPE, the
    /// tenant's daily WAPE, interval coverage); every SIM's 30-day forecast timed on one thread and
    /// on every core; a month of quota warnings replayed on `--replay-sims` SIMs.
    Forecast {
        /// Simulated SIMs.
        #[arg(long, default_value_t = 10_000, value_parser = positive::<usize>())]
        sims: usize,
        /// Days of history per SIM (60 to 366).
        #[arg(long, default_value_t = 90, value_parser = positive::<usize>())]
        days: usize,
        /// Last days of each SIM held out and forecast from the days before.
        #[arg(long, default_value_t = 14, value_parser = positive::<usize>())]
        holdout: usize,
        /// Runs, each on a fleet of its own (seeds `--seed` to `--seed` + runs − 1; median and
        /// spread are printed after them).
        #[arg(long, default_value_t = 3, value_parser = positive::<usize>())]
        runs: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Chance of an injected anomaly per SIM and 10 days of the last 30 (0 to 1).
        #[arg(long, default_value_t = 0.05)]
        anomaly_rate: f64,
        /// SIMs (the first ones) whose month of quota warnings is replayed, 30 forecasts each.
        #[arg(long, default_value_t = 2_000, value_parser = positive::<usize>())]
        replay_sims: usize,
        /// Writes the first run's ground truth (injected anomalies) to this CSV file.
        #[arg(long)]
        truth_out: Option<PathBuf>,
    },
    /// The product's forecast pass on the configured engines (embedded by default, each run in
    /// fresh data): `--sims` SIMs of one tenant with `--days` days of simulated usage written
    /// into the usage store, sub-customers, quotas, pools and a retail card; three passes timed,
    /// with the process's peak resident memory during each: the first, a whole one again (as
    /// another server or the day's first makes it), and one going by that after an hour of usage
    /// of one SIM in `--changed-every`.
    ForecastPass {
        /// SIMs of the tenant, each with its history.
        #[arg(long, default_value_t = 100_000, value_parser = positive::<usize>())]
        sims: usize,
        /// Days of history before today (28 to 90, what a pass reads).
        #[arg(long, default_value_t = 90, value_parser = positive::<usize>())]
        days: usize,
        /// Sub-customers owning the SIMs in turn, each with a quota pool of its SIMs.
        #[arg(long, default_value_t = 10)]
        customers: usize,
        /// One SIM in this many has a monthly data quota of its own.
        #[arg(long, default_value_t = 10, value_parser = positive::<usize>())]
        quota_every: usize,
        /// Before the third pass (which goes by the second), one SIM in this many uses data.
        #[arg(long, default_value_t = 10, value_parser = positive::<usize>())]
        changed_every: usize,
        /// Consecutive runs, each on fresh data (median and spread are printed after them).
        #[arg(long, default_value_t = 3, value_parser = positive::<usize>())]
        runs: usize,
        /// Data directory, kept afterwards (default: a fresh temporary one, removed when the bench ends).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// The anomaly detector on a simulated fleet with injected, labelled anomalies, no engine:
    /// every SIM judged on each of the last 30 days; precision and recall per kind against the
    /// truth, the confusion table, and one day's detection over all SIMs timed.
    Anomalies {
        /// Simulated SIMs.
        #[arg(long, default_value_t = 10_000, value_parser = positive::<usize>())]
        sims: usize,
        /// Days of history per SIM (60 to 366).
        #[arg(long, default_value_t = 90, value_parser = positive::<usize>())]
        days: usize,
        /// Runs, each on a fleet of its own (seeds `--seed` to `--seed` + runs − 1; median and
        /// spread are printed after them).
        #[arg(long, default_value_t = 3, value_parser = positive::<usize>())]
        runs: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Chance of an injected anomaly per SIM and 10 days of the last 30 (above 0, at most 1).
        #[arg(long, default_value_t = 0.05)]
        anomaly_rate: f64,
        /// Writes the first run's ground truth (injected anomalies) to this CSV file.
        #[arg(long)]
        truth_out: Option<PathBuf>,
    },
    /// The fleet on the configured engines: imports of 100,000 SIMs up to `--sims`, then pages
    /// of 50 SIMs with nested sub-customer, device and labels over HTTP.
    Fleet {
        /// SIMs to load, imported 100,000 at a time (the import figures are the median over
        /// these imports: three by default).
        #[arg(long, default_value_t = 300_000, value_parser = positive::<usize>())]
        sims: usize,
        /// Requests per measured list operation.
        #[arg(long, default_value_t = 2000, value_parser = positive::<usize>())]
        requests: usize,
        /// Concurrent clients for the throughput figures.
        #[arg(long, default_value_t = 8, value_parser = positive::<usize>())]
        concurrency: usize,
        /// Times the page measurements are repeated on the loaded fleet (median and spread are
        /// printed after them).
        #[arg(long, default_value_t = 3, value_parser = positive::<usize>())]
        runs: usize,
        /// Data directory, kept afterwards (default: a fresh temporary one, removed when the bench ends).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

async fn bench_command(file: Option<&Path>, command: BenchCommand) -> anyhow::Result<()> {
    // The process callgrind counts for the rating step does that and nothing else (the machine
    // and reference lines time things, and would count differently each time).
    if let BenchCommand::Cpu {
        rating_child: Some(child),
        cdrs,
        ..
    } = &command
    {
        return crate::cpu::rating_child(*cdrs, child == "rate");
    }
    println!("{}", crate::common::machine());
    println!("{}", crate::common::reference());
    match command {
        BenchCommand::Api {
            requests,
            concurrency,
            runs,
            data_dir,
        } => {
            let (loaded, _scratch) = bench_config(file, data_dir)?;
            let all = in_scratch_clickhouse(&loaded.config, "api", |config| async move {
                let mut all = Vec::with_capacity(runs);
                for run in 1..=runs {
                    let config = run_config(&config, run, runs);
                    let sets = crate::api::api(&config, requests, concurrency).await?;
                    crate::api::print_api(&sets);
                    all.push(sets);
                }
                Ok(all)
            })
            .await?;
            let sets = all.first().map_or(0, Vec::len);
            for set in 0..sets {
                println!();
                let figures: Vec<_> = all.iter().map(|r| r[set].figures.clone()).collect();
                let title = all[0][set]
                    .engines
                    .iter()
                    .map(|(p, e)| format!("{p}={e}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                crate::common::print_summary(&title, &figures);
            }
        }
        BenchCommand::Exports { rows, runs, format } => {
            let only = format
                .as_deref()
                .map(ioto_domain::export::ExportFormat::parse)
                .transpose()?;
            let table =
                tokio::task::spawn_blocking(move || crate::exports::exports(rows, runs, only)).await??;
            print!("{table}");
        }
        BenchCommand::Forecast {
            sims,
            days,
            holdout,
            runs,
            seed,
            anomaly_rate,
            replay_sims,
            truth_out,
        } => {
            let options = crate::forecast::ForecastOptions {
                sims,
                days,
                holdout,
                runs,
                seed,
                anomaly_rate,
                replay_sims,
                truth_out,
            };
            tokio::task::spawn_blocking(move || crate::forecast::run_forecast(&options)).await??;
        }
        BenchCommand::ForecastPass {
            sims,
            days,
            customers,
            quota_every,
            changed_every,
            runs,
            data_dir,
        } => {
            let options = crate::forecast_pass::Options {
                sims,
                days,
                customers,
                quota_every,
                changed_every,
            };
            crate::forecast_pass::check(&options)?;
            let (loaded, _scratch) = bench_config(file, data_dir)?;
            if loaded.config.database.url.is_some() && runs > 1 {
                // The pass goes through every tenant in the store: a second run's would pass
                // the first run's tenant too.
                bail!(
                    "--runs: 1 on Postgres (each run needs an empty database: run the bench once \
                     per fresh database)"
                );
            }
            let each = options.clone();
            let all = in_scratch_clickhouse(&loaded.config, "forecast", |config| async move {
                let mut all = Vec::with_capacity(runs);
                for run in 1..=runs {
                    let config = run_config(&config, run, runs);
                    let figures = crate::forecast_pass::run(&config, &each, u32::try_from(run)?).await?;
                    crate::forecast_pass::print(&figures, &each);
                    all.push(figures);
                }
                Ok(all)
            })
            .await?;
            crate::forecast_pass::print_summary(&all, &options);
        }
        BenchCommand::Anomalies {
            sims,
            days,
            runs,
            seed,
            anomaly_rate,
            truth_out,
        } => {
            let options = crate::forecast::anomalies::AnomalyOptions {
                sims,
                days,
                runs,
                seed,
                anomaly_rate,
                truth_out,
            };
            tokio::task::spawn_blocking(move || crate::forecast::anomalies::run_anomalies(&options))
                .await??;
        }
        BenchCommand::Bulk {
            sims,
            rows,
            runs,
            probes,
            data_dir,
        } => {
            let (loaded, _scratch) = bench_config(file, data_dir)?;
            let run = in_scratch_clickhouse(&loaded.config, "bulk", |config| async move {
                crate::bulk::bulk(&config, sims, rows, runs, probes).await
            })
            .await?;
            crate::bulk::print(&run, &loaded.config.network.simulated);
        }
        BenchCommand::Faults {
            server,
            server_pid,
            sims,
            rate,
            clients,
            think_ms,
            subscriptions,
            bulk_sims,
            export_every,
            outages,
            outage_hook,
            outage_seconds,
            settle_seconds,
            minutes,
            window_minutes,
            seed,
        } => {
            if !(0.0..=1440.0).contains(&minutes) {
                bail!("--minutes: between 0 and 1440 (a day)");
            }
            if outages.is_empty() && minutes == 0.0 {
                bail!("name --outages for a drill, or --minutes of load for a soak");
            }
            let loaded = setup(file, None, None, Quiet::Yes)?;
            let report = crate::faults::run(
                &loaded.config,
                crate::faults::Options {
                    server: server.trim_end_matches('/').to_owned(),
                    server_pid,
                    sims,
                    rate,
                    clients,
                    think: Duration::from_millis(think_ms),
                    subscriptions,
                    bulk_sims,
                    export_every: Duration::from_secs(export_every),
                    settle: Duration::from_secs(settle_seconds),
                    outage: Duration::from_secs(outage_seconds),
                    outages,
                    hook: outage_hook,
                    tail: Duration::from_secs_f64(minutes * 60.0),
                    window: Duration::from_secs(window_minutes * 60),
                    seed,
                },
            )
            .await?;
            if !report.failures.is_empty() {
                bail!("{} check(s) failed", report.failures.len());
            }
        }
        BenchCommand::Fleet {
            sims,
            requests,
            concurrency,
            runs,
            data_dir,
        } => {
            let (loaded, _scratch) = bench_config(file, data_dir)?;
            let (imports, runs) = in_scratch_clickhouse(&loaded.config, "fleet", |config| async move {
                crate::fleet::fleet(&config, sims, requests, concurrency, runs).await
            })
            .await?;
            crate::fleet::print_imports(&imports);
            let engines = ioto::engines::describe_config(&loaded.config);
            for (i, figures) in runs.iter().enumerate() {
                println!("\nrun {} of {}", i + 1, runs.len());
                crate::common::print(figures, &engines);
            }
            println!();
            crate::common::print_summary("pages", &runs);
        }
        BenchCommand::Cpu {
            events,
            sims,
            cdrs,
            import_rows,
            runs,
            instructions,
            rating_child: _,
            data_dir,
        } => {
            let (loaded, _scratch) = bench_config(file, data_dir)?;
            let steps = crate::cpu::cpu(
                &loaded.config,
                events,
                sims,
                cdrs,
                import_rows,
                runs,
                instructions,
            )
            .await?;
            crate::cpu::print(&steps);
        }
        BenchCommand::Analytics {
            updates,
            sims,
            runs,
            requests,
            merge,
            data_dir,
        } => {
            if sims > 100_000 {
                anyhow::bail!("--sims: at most 100000 (the bench's ICCIDs number SIMs with five digits)");
            }
            let (loaded, _scratch) = bench_config(file, data_dir)?;
            let figures = in_scratch_clickhouse(&loaded.config, "analytics", |config| async move {
                crate::analytics::analytics(&config, updates, sims, runs, requests, merge).await
            })
            .await?;
            crate::analytics::print(&figures);
        }
        BenchCommand::Rating {
            cdrs,
            sims,
            zones,
            runs,
            data_dir,
        } => {
            let (loaded, _scratch) = bench_config(file, data_dir)?;
            let figures = in_scratch_clickhouse(&loaded.config, "rating", |config| async move {
                crate::rating::rating(&config, cdrs, sims, zones, runs).await
            })
            .await?;
            crate::rating::print(&figures);
        }
        BenchCommand::Alerts {
            sims,
            rules,
            rate,
            probes,
            backlog,
            runs,
            data_dir,
        } => {
            if sims <= 2 * probes {
                bail!(
                    "--sims ({sims}) must exceed twice --probes ({probes}): each probe has a SIM of its own"
                );
            }
            let (loaded, _scratch) = bench_config(file, data_dir)?;
            let options = crate::alerts::Options {
                sims,
                rules,
                rate,
                probes,
                backlog,
            };
            let all = in_scratch_clickhouse(&loaded.config, "alerts", |config| async move {
                let mut all = Vec::with_capacity(runs);
                for run in 1..=runs {
                    let config = run_config(&config, run, runs);
                    let figures = crate::alerts::alerts(&config, &options).await?;
                    crate::alerts::print(&figures);
                    all.push(figures);
                }
                Ok(all)
            })
            .await?;
            crate::alerts::print_summary(&all);
        }
        BenchCommand::Ingest {
            events,
            sims,
            live_rate,
            probes,
            runs,
            data_dir,
        } => {
            let (loaded, _scratch) = bench_config(file, data_dir)?;
            // One ClickHouse database for the invocation: its runs write into the tables as
            // a service's days do, and nothing stays behind.
            let all = in_scratch_clickhouse(&loaded.config, "ingest", |config| async move {
                let mut all = Vec::with_capacity(runs);
                for run in 1..=runs {
                    let config = run_config(&config, run, runs);
                    let figures = crate::ingest::ingest(&config, events, sims, live_rate, probes).await?;
                    crate::ingest::print(&figures);
                    all.push(figures);
                }
                Ok(all)
            })
            .await?;
            crate::ingest::print_summary(&all);
        }
    }
    Ok(())
}

/// The configuration of run `run` of `runs` of a bench, in a data dir of its own; announces it.
fn run_config(config: &Config, run: usize, runs: usize) -> Config {
    println!("\nrun {run} of {runs}");
    let mut config = config.clone();
    config.data_dir = config.data_dir.join(format!("run{run}"));
    config
}

/// A bench's own data dir in the temporary directory, removed with everything in it when the
/// bench ends, whether it succeeded or not (an embedded ingest bench leaves ~400 MB there).
struct ScratchDir(Option<PathBuf>);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("could not remove the bench's data dir {}: {e}", dir.display());
                }
            }
        }
    }
}

/// Configuration for a benchmark: an ephemeral port, quiet logs, and the given data dir (kept)
/// or else a fresh one in the temporary directory, removed when the returned guard drops.
fn bench_config(file: Option<&Path>, data_dir: Option<PathBuf>) -> anyhow::Result<(Loaded, ScratchDir)> {
    let (data_dir, scratch) = match data_dir {
        Some(dir) => (dir, ScratchDir(None)),
        None => {
            let dir = std::env::temp_dir().join(format!("ioto-bench-{}", uuid::Uuid::new_v4().simple()));
            (dir.clone(), ScratchDir(Some(dir)))
        }
    };
    let mut loaded = setup(file, Some("127.0.0.1:0".into()), Some(data_dir), Quiet::Yes)?;
    // Benches measure capacity: a rate limit would measure the limit instead.
    loaded.config.rate_limit.enabled = false;
    // Nor does the hourly forecast pass run in a bench's server: it would compete with what is
    // measured (`ioto-bench forecast` measures it by itself).
    loaded.config.fleet.forecast_minutes = 0;
    Ok((loaded, scratch))
}
