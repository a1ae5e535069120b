//! Logging: text or JSON lines through tracing.

use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `log.level`. Logs go to stderr
/// so that commands printing a result (`token issue`, `config`) keep stdout clean.
pub fn init(cfg: &LogConfig, quiet: bool) {
    let default = if quiet { "warn" } else { cfg.level.as_str() };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if cfg.format == crate::config::LogFormat::Json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
