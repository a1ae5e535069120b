//! The `ioto` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Parser;
use ioto_domain::Role;

mod args;

use args::{
    BulkCommand, Cli, Command, DataDirArgs, ImportCommand, IncidentKind, IngestArgs, ServeArgs,
    SimulateCommand, TokenCommand,
};

use crate::config::{self, Config, Loaded};
use crate::server::{self, App};
use crate::tooling::demo;
use crate::{engines, logging};

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
pub fn positive<T>() -> clap::builder::RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
    <T as TryFrom<u64>>::Error: std::error::Error + Send + Sync + 'static,
{
    clap::builder::RangedU64ValueParser::<T>::new().range(1..)
}

/// A share from 0 to 1 on the command line (clap names the flag when it is not one).
fn share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a share from 0 to 1 (0.05 is one in 20)")),
    }
}

/// A time on the command line (clap names the flag when it does not parse).
fn rfc3339(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| format!("'{s}' is not an RFC 3339 time (2026-11-22T10:00:00Z)"))
}

/// Whether a command's logs stay quiet (commands that print a result) or show `log.level`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Quiet {
    Yes,
    No,
}

/// The one set-up every command shares: configuration layered (defaults < file < environment <
/// flags) and validated, logging installed, unknown keys warned about.
pub fn setup(
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

/// The configuration, when it names a Kafka bus (what the simulators publish to).
fn with_kafka(loaded: Loaded) -> anyhow::Result<Loaded> {
    if loaded.config.kafka.brokers.is_none() {
        bail!("simulate needs a Kafka bus (set KAFKA_BROKERS): the embedded bus lives inside one server process");
    }
    Ok(loaded)
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
            let loaded = with_kafka(setup(file, None, data.data_dir, Quiet::Yes)?)?;
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
        SimulateCommand::Incident {
            kind,
            tenant,
            iccid,
            bytes,
            data,
        } => {
            use ioto_ingest::simulator::Incident;
            let loaded = with_kafka(setup(file, None, data.data_dir, Quiet::Yes)?)?;
            let incident = match kind {
                IncidentKind::Roam => Incident::Roam,
                IncidentKind::Flap => Incident::Flap,
                IncidentKind::Swap => Incident::Swap,
                IncidentKind::Burst => Incident::Burst(bytes),
            };
            let opts = crate::tooling::simulate::IncidentOptions {
                tenant,
                iccid,
                incident,
            };
            engines::migrate(&loaded.config).await?;
            let e = engines::connect(&loaded.config).await?;
            let (iccid, events) =
                crate::tooling::simulate::incident(&e.directory, &e.fleet, &e.bus, &e.topic_prefix, &opts)
                    .await?;
            println!("published {events} events of SIM {iccid}: {kind:?}");
            Ok(())
        }
        SimulateCommand::History {
            tenant,
            sims,
            days,
            anomalies,
            seed,
            truth,
            data,
        } => {
            use crate::tooling::simulate_history::{check, history, HistoryOptions};
            let loaded = with_kafka(setup(file, None, data.data_dir, Quiet::Yes)?)?;
            let window = usize::try_from(loaded.config.ingest.max_event_age_days).unwrap_or(usize::MAX);
            let opts = HistoryOptions {
                tenant,
                sims,
                // As many days as the server counts, up to the 90 a forecast reads.
                days: days.unwrap_or_else(|| window.saturating_sub(1).clamp(1, 90)),
                anomaly_rate: anomalies,
                seed,
                truth,
                max_event_age_days: loaded.config.ingest.max_event_age_days,
                progress: true,
            };
            // Refused before any engine is reached.
            check(&opts)?;
            engines::migrate(&loaded.config).await?;
            let e = engines::connect(&loaded.config).await?;
            let summary = history(&e.directory, &e.fleet, &e.bus, &e.topic_prefix, &opts).await?;
            println!(
                "published {} sessions ({} rollups, {} CDRs) of {} SIMs from {} to {}; {} anomalies injected{}",
                summary.sessions,
                summary.rollups,
                summary.cdrs,
                summary.sims,
                summary.first_day,
                summary.last_day,
                summary.anomalies,
                opts.truth
                    .as_ref()
                    .map(|path| format!(", ground truth in {}", path.display()))
                    .unwrap_or_default()
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
        let mut history = None;
        if config.ingest.enabled {
            history =
                demo::animate(config, &app.engines, &app.pipeline, &app.forecasts, &demo.tenant).await?;
            crate::tooling::demo_billing::rate_regularly(app.billing.clone());
        }
        print_demo(&app, &demo, history.as_ref(), addr)?;
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

fn print_demo(
    app: &App,
    demo: &demo::Demo,
    history: Option<&crate::tooling::demo_history::DemoHistory>,
    addr: std::net::SocketAddr,
) -> anyhow::Result<()> {
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
    if let Some(h) = history {
        println!(
            "  History:     {} days of simulated usage; yesterday SIM {} used {} (its usual: {}) and SIM {} was in {} ({}) for the first time: forecasts and anomalies within a minute ({{ anomalies(first: 10) {{ nodes {{ iccid sentence }} }} }})",
            crate::tooling::demo_history::DEMO_HISTORY_DAYS,
            h.spike,
            ioto_forecast::anomaly::bytes_text(h.spike_bytes as f64),
            ioto_forecast::anomaly::bytes_text(h.spike_usual_bytes as f64),
            h.roaming,
            h.roaming_country,
            h.roaming_network
        );
    }
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
