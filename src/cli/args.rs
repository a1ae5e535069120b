//! The `ioto` command line's words: commands, subcommands and their arguments, as clap parses them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ioto_domain::Role;

use super::{positive, rfc3339, share};

#[derive(Parser)]
#[command(
    name = "ioto",
    version,
    about = "Connectivity & fleet management for IoT SIM fleets"
)]
pub(super) struct Cli {
    /// Configuration file (default: ./ioto.toml when present). Also IOTO_CONFIG.
    #[arg(long, global = true, env = "IOTO_CONFIG")]
    pub(super) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand)]
pub(super) enum Command {
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
}

/// The server a client command talks to.
#[derive(Args)]
pub(super) struct RemoteArgs {
    /// The server's base URL.
    #[arg(long, env = "IOTO_URL", default_value = "http://127.0.0.1:8080")]
    pub(super) server: String,
    /// A bearer token (from `login`, `ioto demo` or `ioto token issue`).
    #[arg(long, env = "IOTO_TOKEN", hide_env_values = true)]
    pub(super) token: String,
}

impl RemoteArgs {
    pub(super) fn remote(self) -> crate::tooling::remote::Remote {
        crate::tooling::remote::Remote {
            server: self.server,
            token: self.token,
        }
    }
}

#[derive(Subcommand)]
pub(super) enum BulkCommand {
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
pub(super) enum ImportCommand {
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

/// What `ioto simulate incident` makes a SIM do.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(super) enum IncidentKind {
    /// A session in a country the fleet never visits (Japan, 440-10).
    Roam,
    /// Twelve short sessions in a row.
    Flap,
    /// A session from another device (another IMEI).
    Swap,
    /// One session of `--bytes`.
    Burst,
}

#[derive(Subcommand)]
pub(super) enum SimulateCommand {
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
    /// One ACTIVE SIM doing something out of the ordinary, as the network would report it: a
    /// session abroad (`roam`), a dozen short sessions (`flap`), a session from another device
    /// (`swap`), or one large session (`burst`, of `--bytes`) — what alert rules and quotas
    /// notice. On the configured bus.
    Incident {
        #[arg(value_enum)]
        kind: IncidentKind,
        #[arg(long, default_value = "demo")]
        tenant: String,
        /// The SIM (default: the tenant's first ACTIVE SIM by ICCID).
        #[arg(long)]
        iccid: Option<String>,
        /// Bytes of a burst, in and out together (1,000 to 10^12).
        #[arg(long, default_value_t = 100_000_000, value_parser = clap::value_parser!(u64).range(1_000..=1_000_000_000_000))]
        bytes: u64,
        #[command(flatten)]
        data: DataDirArgs,
    },
    /// Days of usage of a tenant's ACTIVE SIMs before today, from the forecast crate's fleet
    /// simulator (trackers, meters, cameras and gateways, with their weekly seasons, trends and
    /// noise), with labelled anomalies in the last 30 days (spikes, silences, session storms, new
    /// networks and countries, changes of device): one closed session per SIM, day and network (a
    /// storm's many short ones), rollups and CDRs on the configured bus. The server's ingest
    /// counts events up to `ingest.max_event_age_days` old (35): raise it above `--days` there
    /// and here (IOTO_INGEST__MAX_EVENT_AGE_DAYS).
    History {
        #[arg(long, default_value = "demo")]
        tenant: String,
        /// How many SIMs (the first ACTIVE ones by ICCID; SIM i is the simulator's SIM i), at
        /// most 100,000.
        #[arg(
            long,
            default_value_t = crate::tooling::simulate_history::MAX_SIMS,
            value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
                .range(1..=crate::tooling::simulate_history::MAX_SIMS as u64)
        )]
        sims: usize,
        /// Days of history before today (1 to 400); by default 90, or as many as
        /// `ingest.max_event_age_days` lets the server count when that is fewer (34 with its
        /// default of 35).
        #[arg(
            long,
            value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
                .range(1..=crate::tooling::simulate_history::MAX_DAYS as u64)
        )]
        days: Option<usize>,
        /// The chance that an anomaly starts, per SIM and each 10 days of the last 30 (0 to 1;
        /// the simulator's rate, as `ioto-bench anomalies --anomaly-rate`).
        #[arg(
            long,
            value_name = "RATE",
            default_value_t = ioto_forecast::simulate::DEFAULT_ANOMALY_RATE,
            value_parser = share
        )]
        anomalies: f64,
        /// Same seed, same history.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Writes the injected anomalies as CSV (RFC 4180): iccid, kind (the device kind),
        /// anomaly_kind, day, detail.
        #[arg(long, value_name = "FILE")]
        truth: Option<PathBuf>,
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

#[derive(Args)]
pub(super) struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080). Also IOTO_LISTEN.
    #[arg(long)]
    pub(super) listen: Option<String>,
    /// Directory for embedded engines and the generated JWT secret (default ./ioto-data). Also IOTO_DATA_DIR.
    #[arg(long)]
    pub(super) data_dir: Option<PathBuf>,
    /// Do not apply migrations at start-up.
    #[arg(long)]
    pub(super) no_migrate: bool,
}

#[derive(Args)]
pub(super) struct IngestArgs {
    #[arg(long)]
    pub(super) data_dir: Option<PathBuf>,
    /// Do not apply migrations at start-up.
    #[arg(long)]
    pub(super) no_migrate: bool,
    /// Do not store device telemetry in this process (another worker does).
    #[arg(long)]
    pub(super) no_telemetry: bool,
}

#[derive(Args)]
pub(super) struct DataDirArgs {
    /// Directory for embedded engines and the generated JWT secret. Also IOTO_DATA_DIR.
    #[arg(long)]
    pub(super) data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
pub(super) enum TokenCommand {
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
