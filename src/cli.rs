//! The `ioto` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};
use ioto_domain::Role;

use crate::config::{self, Config, Loaded};
use crate::server::{self, App};
use crate::tooling::bench::in_scratch_clickhouse;
use crate::tooling::demo;
use crate::{engines, logging};

#[derive(Parser)]
#[command(
    name = "ioto",
    version,
    about = "Connectivity & fleet management for IoT SIM fleets"
)]
struct Cli {
    /// Configuration file (default: ./ioto.toml when present). Also IOTO_CONFIG.
    #[arg(long, global = true, env = "IOTO_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations (when needed) and serve the GraphQL API.
    Serve(ServeArgs),
    /// Seed a demo tenant (once), then serve; prints the playground URL, a login and a token per role.
    Demo(ServeArgs),
    /// Apply pending migrations to the transactional store and the usage store, then exit.
    Migrate(DataDirArgs),
    /// Run only the ingest worker (sessions and CDRs from the bus, device telemetry from MQTT)
    /// until SIGTERM or Ctrl-C; workers of one deployment share the partitions.
    Ingest(IngestArgs),
    /// Operator tasks on the configured engines: the first platform admin, tenants, users,
    /// secret rotation.
    Admin {
        #[command(subcommand)]
        command: crate::tooling::admin::AdminCommand,
        #[arg(long, global = true)]
        data_dir: Option<PathBuf>,
    },
    /// Development tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the effective configuration (TOML, secrets redacted).
    Config(DataDirArgs),
    /// Simulators feeding the platform.
    Simulate {
        #[command(subcommand)]
        command: SimulateCommand,
    },
    /// Bulk jobs on a running server (IOTO_URL, IOTO_TOKEN).
    Bulk {
        #[command(subcommand)]
        command: BulkCommand,
    },
    /// Inventory imports into a running server (IOTO_URL, IOTO_TOKEN).
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Exports a file from a running server (IOTO_URL, IOTO_TOKEN): requests the export job,
    /// follows it with a progress bar and downloads what the job wrote.
    Export {
        /// sim-inventory, devices, audit-log, session-history, customer-billing, invoice-lines
        /// or usage-analytics.
        kind: String,
        /// csv, xlsx or parquet.
        #[arg(long, default_value = "csv")]
        format: String,
        /// The requestExport filter as JSON, e.g. '{"sims": {"states": ["ACTIVE"]}}'.
        #[arg(long)]
        filter: Option<String>,
        /// Where to write the file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Measure the running system; prints figures for docs/benchmarks.md.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

/// The server a client command talks to.
#[derive(Args)]
struct RemoteArgs {
    /// The server's base URL.
    #[arg(long, env = "IOTO_URL", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// A bearer token (from `login`, `ioto demo` or `ioto token issue`).
    #[arg(long, env = "IOTO_TOKEN", hide_env_values = true)]
    token: String,
}

impl RemoteArgs {
    fn remote(self) -> crate::tooling::remote::Remote {
        crate::tooling::remote::Remote {
            server: self.server,
            token: self.token,
        }
    }
}

#[derive(Subcommand)]
enum BulkCommand {
    /// Uploads a CSV or XLSX of ICCIDs (and, unless --action is given, an ACTION column),
    /// prints the validation report, confirms the job and follows it with a progress bar.
    Submit {
        file: PathBuf,
        /// One action for every row: ACTIVATE, SUSPEND, RESUME, REPORT_LOST_STOLEN, TERMINATE or
        /// LOCATION_UPDATE.
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        note: Option<String>,
        /// Run the valid rows even when some rows are invalid.
        #[arg(long)]
        skip_invalid: bool,
        /// Validate only; the job waits for confirmation.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Checks an inventory file (CSV or XLSX; docs/fleet.md) row by row; with --commit creates
    /// the SIMs, all or nothing.
    Sims {
        file: PathBuf,
        #[arg(long)]
        commit: bool,
        /// Import the valid rows even when some rows have errors.
        #[arg(long)]
        skip_invalid: bool,
        /// Assign the new SIMs to this sub-customer.
        #[arg(long)]
        customer_id: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

#[derive(Subcommand)]
enum SimulateCommand {
    /// Data sessions of a tenant's ACTIVE SIMs: rollups (cumulative counters, every 5 minutes)
    /// to `ioto.sessions` and one CDR per session to `ioto.cdrs`, on the configured bus.
    Sessions {
        /// Tenant slug.
        #[arg(long, default_value = "demo")]
        tenant: String,
        /// How many SIMs (the first ACTIVE ones by ICCID).
        #[arg(long, default_value_t = 100, value_parser = positive::<usize>())]
        sims: usize,
        /// Start of the simulated range, RFC 3339 (default: 24 hours ago).
        #[arg(long, value_parser = rfc3339)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// End of the simulated range, RFC 3339 (default: now).
        #[arg(long, value_parser = rfc3339)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// Smallest session, in bytes.
        #[arg(long, default_value_t = 10_000)]
        bytes_min: u64,
        /// Largest session, in bytes.
        #[arg(long, default_value_t = 50_000_000)]
        bytes_max: u64,
        #[arg(long, default_value_t = 3)]
        sessions_per_sim: u32,
        /// Events per second (0: as fast as the bus takes them).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Same seed, same sessions.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        data: DataDirArgs,
    },
    /// Sensor readings (temperature, humidity, battery, light, GPS) of a tenant's devices in
    /// service, published to the MQTT broker on `ioto/devices/{id}/telemetry`.
    Devices {
        #[arg(long, default_value = "demo")]
        tenant: String,
        /// How many devices (the first IN_SERVICE ones by name).
        #[arg(long, default_value_t = 50, value_parser = positive::<usize>())]
        devices: usize,
        /// Seconds between two readings of a device.
        #[arg(long, default_value_t = 5, value_parser = positive::<u64>())]
        interval_seconds: u64,
        /// Readings per device (default: until stopped).
        #[arg(long)]
        count: Option<u64>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        data: DataDirArgs,
    },
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
        #[arg(long, value_delimiter = ',', value_parser = crate::tooling::bench_faults::Outage::parse)]
        outages: Vec<crate::tooling::bench_faults::Outage>,
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

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080). Also IOTO_LISTEN.
    #[arg(long)]
    listen: Option<String>,
    /// Directory for embedded engines and the generated JWT secret (default ./ioto-data). Also IOTO_DATA_DIR.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Do not apply migrations at start-up.
    #[arg(long)]
    no_migrate: bool,
}

#[derive(Args)]
struct IngestArgs {
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Do not apply migrations at start-up.
    #[arg(long)]
    no_migrate: bool,
    /// Do not store device telemetry in this process (another worker does).
    #[arg(long)]
    no_telemetry: bool,
}

#[derive(Args)]
struct DataDirArgs {
    /// Directory for embedded engines and the generated JWT secret. Also IOTO_DATA_DIR.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token for a tenant and role; prints only the token.
    Issue {
        /// Tenant id or slug.
        #[arg(long)]
        tenant: String,
        /// PLATFORM_ADMIN, TENANT_ADMIN, OPERATOR, CUSTOMER_USER or VIEWER.
        #[arg(long, value_parser = crate::tooling::admin::parse_role)]
        role: Role,
        /// Customer id or name (CUSTOMER_USER only).
        #[arg(long)]
        customer: Option<String>,
        /// Lifetime in minutes (default: auth.token_ttl_minutes).
        #[arg(long)]
        ttl_minutes: Option<u64>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn load(file: Option<&Path>, listen: Option<String>, data_dir: Option<PathBuf>) -> anyhow::Result<Loaded> {
    let mut loaded = config::load(file, std::env::vars())?;
    if let Some(l) = listen {
        loaded.config.listen = l;
    }
    if let Some(d) = data_dir {
        loaded.config.data_dir = d;
    }
    loaded.config.validate()?;
    Ok(loaded)
}

/// Counts that must be at least 1, checked by clap (the error names the flag).
fn positive<T>() -> clap::builder::RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
    <T as TryFrom<u64>>::Error: std::error::Error + Send + Sync + 'static,
{
    clap::builder::RangedU64ValueParser::<T>::new().range(1..)
}

/// 1 to the rows one import takes.
fn import_rows() -> clap::builder::RangedU64ValueParser<usize> {
    positive::<usize>().range(1..=ioto_domain::fleet::import::MAX_IMPORT_ROWS as u64)
}

/// A time on the command line (clap names the flag when it does not parse).
fn rfc3339(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| format!("'{s}' is not an RFC 3339 time (2026-11-22T10:00:00Z)"))
}

/// Whether a command's logs stay quiet (commands that print a result) or show `log.level`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quiet {
    Yes,
    No,
}

/// The one set-up every command shares: configuration layered (defaults < file < environment <
/// flags) and validated, logging installed, unknown keys warned about.
fn setup(
    file: Option<&Path>,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    quiet: Quiet,
) -> anyhow::Result<Loaded> {
    let loaded = load(file, listen, data_dir)?;
    logging::init(&loaded.config.log, quiet == Quiet::Yes);
    warn_unknown(&loaded);
    Ok(loaded)
}

fn warn_unknown(loaded: &Loaded) {
    for k in &loaded.unknown_keys {
        tracing::warn!("unknown {k}: ignored (see docs/configuration.md)");
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ioto: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ioto: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let file = cli.config.as_deref();
    match cli.command {
        Command::Serve(args) => serve_command(file, args, false).await,
        Command::Demo(args) => serve_command(file, args, true).await,
        Command::Ingest(args) => ingest_command(file, args).await,
        Command::Migrate(args) => migrate_command(file, args).await,
        Command::Config(args) => config_command(file, args),
        Command::Simulate { command } => simulate_command(file, command).await,
        Command::Bench { command } => bench_command(file, command).await,
        Command::Bulk {
            command:
                BulkCommand::Submit {
                    file,
                    action,
                    note,
                    skip_invalid,
                    dry_run,
                    remote,
                },
        } => {
            crate::tooling::remote::bulk_submit(
                &remote.remote(),
                crate::tooling::remote::BulkSubmit {
                    file: &file,
                    action: action.as_deref(),
                    note: note.as_deref(),
                    skip_invalid,
                    dry_run,
                },
            )
            .await
        }
        Command::Import {
            command:
                ImportCommand::Sims {
                    file,
                    commit,
                    skip_invalid,
                    customer_id,
                    note,
                    remote,
                },
        } => {
            crate::tooling::remote::import_sims(
                &remote.remote(),
                crate::tooling::remote::ImportSims {
                    file: &file,
                    commit,
                    skip_invalid,
                    customer_id: customer_id.as_deref(),
                    note: note.as_deref(),
                },
            )
            .await
        }
        Command::Export {
            kind,
            format,
            filter,
            out,
            remote,
        } => {
            crate::tooling::remote::export(
                &remote.remote(),
                crate::tooling::remote::ExportFile {
                    kind: &kind,
                    format: &format,
                    filter: filter.as_deref(),
                    out: &out,
                },
            )
            .await
        }
        Command::Admin { command, data_dir } => admin_command(file, command, data_dir).await,
        Command::Token { command } => token_command(file, command).await,
    }
}

async fn serve_command(file: Option<&Path>, args: ServeArgs, demo_mode: bool) -> anyhow::Result<()> {
    let loaded = setup(file, args.listen, args.data_dir, Quiet::No)?;
    serve(&loaded.config, !args.no_migrate, demo_mode).await
}

async fn ingest_command(file: Option<&Path>, args: IngestArgs) -> anyhow::Result<()> {
    let mut loaded = setup(file, None, args.data_dir, Quiet::No)?;
    if args.no_telemetry {
        loaded.config.ingest.telemetry = false;
    }
    ingest(&loaded.config, !args.no_migrate).await
}

async fn migrate_command(file: Option<&Path>, args: DataDirArgs) -> anyhow::Result<()> {
    let loaded = setup(file, None, args.data_dir, Quiet::No)?;
    let applied = engines::migrate(&loaded.config).await?;
    println!("migrations applied (usage store versions applied now: {applied:?})");
    Ok(())
}

fn config_command(file: Option<&Path>, args: DataDirArgs) -> anyhow::Result<()> {
    let loaded = setup(file, None, args.data_dir, Quiet::Yes)?;
    if let Some(f) = &loaded.file {
        println!("# read from {} and the environment", f.display());
    }
    print!("{}", loaded.config.to_redacted_toml()?);
    Ok(())
}

async fn simulate_command(file: Option<&Path>, command: SimulateCommand) -> anyhow::Result<()> {
    match command {
        SimulateCommand::Sessions {
            tenant,
            sims,
            from,
            to,
            bytes_min,
            bytes_max,
            sessions_per_sim,
            rate,
            seed,
            data,
        } => {
            let loaded = setup(file, None, data.data_dir, Quiet::Yes)?;
            if loaded.config.kafka.brokers.is_none() {
                bail!(
                    "simulate needs a Kafka bus (set KAFKA_BROKERS): the embedded bus lives inside one server process"
                );
            }
            let now = chrono::Utc::now();
            let opts = crate::tooling::simulate::SessionOptions {
                tenant,
                sims,
                from: from.unwrap_or(now - chrono::Duration::hours(24)),
                to: to.unwrap_or(now),
                bytes_min,
                bytes_max,
                sessions_per_sim,
                rate,
                seed,
                progress: true,
            };
            engines::migrate(&loaded.config).await?;
            let e = engines::connect(&loaded.config).await?;
            let summary =
                crate::tooling::simulate::sessions(&e.directory, &e.fleet, &e.bus, &e.topic_prefix, &opts)
                    .await?;
            println!(
                "published {} session rollups and {} CDRs for {} SIMs",
                summary.rollups, summary.cdrs, summary.sims
            );
            Ok(())
        }
        SimulateCommand::Devices {
            tenant,
            devices,
            interval_seconds,
            count,
            seed,
            data,
        } => {
            let loaded = setup(file, None, data.data_dir, Quiet::Yes)?;
            if loaded.config.mqtt.url.is_none() {
                bail!("simulate devices needs an MQTT broker (set MQTT_URL, e.g. mqtt://127.0.0.1:1883)");
            }
            let opts = crate::tooling::simulate::DeviceOptions {
                tenant,
                devices,
                interval: Duration::from_secs(interval_seconds),
                count,
                seed,
                progress: true,
            };
            engines::migrate(&loaded.config).await?;
            let e = engines::connect(&loaded.config).await?;
            let n = crate::tooling::simulate::devices(&e.directory, &e.fleet, &e.telemetry, &opts).await?;
            println!("published {n} readings");
            Ok(())
        }
    }
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
        return crate::tooling::bench_cpu::rating_child(*cdrs, child == "rate");
    }
    println!("{}", crate::tooling::bench::machine());
    println!("{}", crate::tooling::bench::reference());
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
                    let sets = crate::tooling::bench::api(&config, requests, concurrency).await?;
                    crate::tooling::bench::print_api(&sets);
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
                crate::tooling::bench::print_summary(&title, &figures);
            }
        }
        BenchCommand::Exports { rows, runs, format } => {
            let only = format
                .as_deref()
                .map(ioto_domain::export::ExportFormat::parse)
                .transpose()?;
            let table =
                tokio::task::spawn_blocking(move || crate::tooling::bench_exports::exports(rows, runs, only))
                    .await??;
            print!("{table}");
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
                crate::tooling::bench_bulk::bulk(&config, sims, rows, runs, probes).await
            })
            .await?;
            crate::tooling::bench_bulk::print(&run, &loaded.config.network.simulated);
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
            let report = crate::tooling::bench_faults::run(
                &loaded.config,
                crate::tooling::bench_faults::Options {
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
                crate::tooling::bench_fleet::fleet(&config, sims, requests, concurrency, runs).await
            })
            .await?;
            crate::tooling::bench_fleet::print_imports(&imports);
            let engines = engines::describe_config(&loaded.config);
            for (i, figures) in runs.iter().enumerate() {
                println!("\nrun {} of {}", i + 1, runs.len());
                crate::tooling::bench::print(figures, &engines);
            }
            println!();
            crate::tooling::bench::print_summary("pages", &runs);
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
            let steps = crate::tooling::bench_cpu::cpu(
                &loaded.config,
                events,
                sims,
                cdrs,
                import_rows,
                runs,
                instructions,
            )
            .await?;
            crate::tooling::bench_cpu::print(&steps);
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
                crate::tooling::bench_analytics::analytics(&config, updates, sims, runs, requests, merge)
                    .await
            })
            .await?;
            crate::tooling::bench_analytics::print(&figures);
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
                crate::tooling::bench_rating::rating(&config, cdrs, sims, zones, runs).await
            })
            .await?;
            crate::tooling::bench_rating::print(&figures);
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
                    let figures =
                        crate::tooling::bench_ingest::ingest(&config, events, sims, live_rate, probes)
                            .await?;
                    crate::tooling::bench_ingest::print(&figures);
                    all.push(figures);
                }
                Ok(all)
            })
            .await?;
            crate::tooling::bench_ingest::print_summary(&all);
        }
    }
    Ok(())
}

async fn admin_command(
    file: Option<&Path>,
    command: crate::tooling::admin::AdminCommand,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let loaded = setup(file, None, data_dir, Quiet::Yes)?;
    println!("{}", crate::tooling::admin::run(&loaded.config, command).await?);
    Ok(())
}

async fn token_command(file: Option<&Path>, command: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Issue {
        tenant,
        role,
        customer,
        ttl_minutes,
        data_dir,
    } = command;
    let loaded = setup(file, None, data_dir, Quiet::Yes)?;
    let token = issue_token(&loaded.config, &tenant, role, customer.as_deref(), ttl_minutes).await?;
    println!("{token}");
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
    Ok((loaded, scratch))
}

async fn issue_token(
    config: &Config,
    tenant: &str,
    role: Role,
    customer: Option<&str>,
    ttl_minutes: Option<u64>,
) -> anyhow::Result<String> {
    let admin = crate::tooling::admin::Admin::connect(config).await?;
    let tenant = admin.tenant(tenant).await?;
    let customer_id = admin.customer_for_role(&tenant, role, customer).await?;
    let jwt = server::jwt(config).await?;
    let (token, _) = jwt.issue_for(
        None,
        format!("cli:{}", role.as_str().to_ascii_lowercase()),
        tenant.id,
        role,
        customer_id,
        ttl_minutes.map(|m| Duration::from_secs(m * 60)),
    )?;
    Ok(token)
}

async fn serve(config: &Config, migrate: bool, demo_mode: bool) -> anyhow::Result<()> {
    if demo_mode && !config.listen_addr()?.ip().is_loopback() {
        anyhow::bail!(
            "ioto demo signs everyone in with a published password, so it listens on loopback only \
             (listen = \"127.0.0.1:8080\"), not on {}; to show it on a network, put a proxy with its \
             own sign-in in front of it",
            config.listen_addr()?
        );
    }
    if migrate {
        engines::migrate(config).await?;
    }
    let app = App::build(config).await?;
    for (port, info) in app.engines.describe() {
        tracing::info!("{port}: {} ({})", info.engine, info.location);
    }
    let listener = App::bind(config).await?;
    let addr = listener.local_addr()?;
    if demo_mode {
        let demo = demo::seed(&app.engines.directory, &app.engines.fleet).await?;
        crate::tooling::demo_billing::seed(&app.billing, &demo.tenant).await?;
        demo::example_bulk_job(&app.fleet, &demo).await?;
        if config.ingest.enabled {
            demo::animate(config, &app.engines, &app.pipeline, &demo.tenant).await?;
            crate::tooling::demo_billing::rate_regularly(app.billing.clone());
        }
        print_demo(&app, &demo, addr)?;
    }
    tracing::info!(%addr, "listening: GraphQL at http://{addr}/graphql, console at http://{addr}/console, playground at http://{addr}/playground");
    app.serve(listener, server::shutdown_signal()).await
}

/// `ioto ingest`: the pipeline alone, until a shutdown signal; the batch in progress is left
/// uncommitted (the next worker counts it once).
async fn ingest(config: &Config, migrate: bool) -> anyhow::Result<()> {
    if migrate {
        engines::migrate(config).await?;
    }
    let engines = engines::connect(config).await?;
    for (port, info) in engines.describe() {
        tracing::info!("{port}: {} ({})", info.engine, info.location);
    }
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let realtime = crate::server::realtime::BusRealtime::publisher(
        std::sync::Arc::clone(&engines.bus),
        &engines.topic_prefix,
        stop_rx.clone(),
    )
    .await?;
    let pipeline = crate::server::pipeline::start(config, &engines, realtime, stop_rx).await?;
    tracing::info!("ingest running; SIGTERM or Ctrl-C stops it");
    server::shutdown_signal().await;
    let _ = stop.send(true);
    if let Some(s) = &pipeline.ingest {
        tracing::info!(
            events = s.events.load(std::sync::atomic::Ordering::Relaxed),
            "ingest stopped"
        );
    }
    // Let the tasks see the signal and drop their consumers (leaving the group promptly).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    Ok(())
}

fn print_demo(app: &App, demo: &demo::Demo, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    println!();
    println!(
        "Ioto demo is running — tenant '{}' ({})",
        demo.tenant.name, demo.tenant.slug
    );
    println!("  Console:     http://{addr}/console");
    println!("  Playground:  http://{addr}/playground");
    println!("  GraphQL:     http://{addr}/graphql   (subscriptions: ws://{addr}/graphql/ws)");
    println!(
        "  Login:       admin@demo.ioto / {}   (every demo user has this password)",
        demo::DEMO_PASSWORD
    );
    println!("  Tokens — send as 'Authorization: Bearer <token>':");
    let mut first = None;
    for u in &demo.users {
        let (token, _) = app.jwt.issue_for(
            Some(u.id),
            u.id.to_string(),
            u.tenant_id,
            u.role,
            u.customer_id,
            None,
        )?;
        println!("    {:<15} {:<22} {token}", u.role.as_str(), u.email.as_str());
        if u.role == Role::TenantAdmin {
            first = Some(token);
        }
    }
    println!(
        "  Live:        {} SIMs in data sessions and {} devices reporting every {} s (subscription {{ liveSessions {{ iccid session {{ bytesIn }} }} }})",
        demo::DEMO_SESSION_SIMS,
        demo::DEMO_TELEMETRY_DEVICES,
        demo::DEMO_TICK.as_secs()
    );
    if let Some(t) = first {
        println!("  Try:");
        println!(
            "    curl -s http://{addr}/graphql -H 'content-type: application/json' -H 'authorization: Bearer {t}' \\\n      -d '{{\"query\":\"{{ me {{ email role tenant {{ id name }} }} }}\"}}'"
        );
    }
    println!();
    Ok(())
}
