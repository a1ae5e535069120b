#![doc = include_str!("../README.md")]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness: failing loudly is the point"
)]

pub mod app;
pub mod clickhouse;
pub mod factory;
pub mod kafka;
pub mod pg;
pub mod proxy;

pub use app::{Engines, TestApp};
pub use factory::{Factory, TEST_PASSWORD};

/// A name unique to this test run, usable as a database, topic or group name.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Reads an override from the environment.
pub(crate) fn env_or(var: &str, default: &str) -> String {
    std::env::vars()
        .find(|(k, _)| k == var)
        .map_or_else(|| default.to_owned(), |(_, v)| v)
}

/// The Python with the outside readers of export files (pyarrow, openpyxl), installed by
/// `scripts/engines.sh` into `IOTO_PY_ENV` (default `~/.local/share/ioto/py`). Fails loudly when
/// it is missing.
pub fn python_readers() -> std::path::PathBuf {
    let home = env_or("HOME", "/root");
    let env = env_or("IOTO_PY_ENV", &format!("{home}/.local/share/ioto/py"));
    let python = std::path::PathBuf::from(env).join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/engines.sh (it installs pyarrow and openpyxl there)",
        python.display()
    );
    python
}

/// A fresh temporary directory.
pub fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("ioto-test"));
    std::fs::create_dir_all(&dir).expect("creating a temporary directory");
    dir
}
