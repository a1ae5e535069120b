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

/// `minutes` ago, but not before today's 00:00 UTC: the start of a CDR that counts in today's
/// day, month and billing period whatever the time the test runs at (a CDR counts in the day it
/// starts in; a run at 00:05 with a CDR starting 20 minutes earlier found it in yesterday's).
pub fn earlier_today(minutes: i64) -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    let midnight = now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
    (now - chrono::Duration::minutes(minutes)).max(midnight)
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

/// An S3-compatible server (moto's, from the same environment as [`python_readers`]) on a free
/// loopback port with one bucket; stopped when dropped.
pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    child: std::process::Child,
}

impl S3Server {
    pub async fn start() -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().expect("its address").port()
        };
        let server = python_readers().with_file_name("moto_server");
        let child = std::process::Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", server.display()));
        let endpoint = format!("http://127.0.0.1:{port}");
        let bucket = unique("exports").to_lowercase().replace('_', "-");
        let http = reqwest::Client::new();
        let start = std::time::Instant::now();
        loop {
            // Path-style bucket creation; moto accepts unsigned requests.
            match http.put(format!("{endpoint}/{bucket}")).send().await {
                Ok(r) if r.status().is_success() => break,
                _ if start.elapsed() < std::time::Duration::from_secs(30) => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                other => panic!("the S3 server at {endpoint} did not come up: {other:?}"),
            }
        }
        Self {
            endpoint,
            bucket,
            child,
        }
    }

    /// Keys of the bucket's objects.
    pub async fn keys(&self) -> Vec<String> {
        let body = reqwest::Client::new()
            .get(format!("{}/{}?list-type=2", self.endpoint, self.bucket))
            .send()
            .await
            .expect("listing the bucket")
            .text()
            .await
            .expect("the listing");
        body.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh temporary directory.
pub fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("ioto-test"));
    std::fs::create_dir_all(&dir).expect("creating a temporary directory");
    dir
}
