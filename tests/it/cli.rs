//! The `ioto` and `ioto-bench` binaries as a newcomer uses them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ioto_test_support::temp_dir;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_ioto");
const BENCH_BIN: &str = env!("CARGO_BIN_EXE_ioto-bench");
const ENGINE_VARS: &[&str] = &["DATABASE_URL", "CLICKHOUSE_URL", "KAFKA_BROKERS", "MQTT_URL"];

pub(crate) fn ioto() -> Command {
    command(BIN)
}

/// The benchmarks' binary, `ioto-bench`.
fn ioto_bench() -> Command {
    command(BENCH_BIN)
}

fn command(bin: &str) -> Command {
    let mut c = Command::new(bin);
    for v in ENGINE_VARS {
        c.env_remove(v);
    }
    c.env("RUST_LOG", "warn");
    c
}

/// Posts a GraphQL request `body` to a server at `addr` as `token`; the JSON answer.
/// The standard output of a command that must have succeeded; a failure shows both outputs,
/// after `what` when given.
fn succeeded(out: &std::process::Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}{}{stdout}\n{}",
        if what.is_empty() { "" } else { ": " },
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn gql(addr: &str, token: &str, body: &Value) -> Value {
    reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn me(addr: &str, token: &str) -> Value {
    gql(
        addr,
        token,
        &json!({ "query": "{ me { email role tenant { id name } } }" }),
    )
    .await
}

/// A child process of a test (`ioto demo`, `ioto ingest`), killed (if still running) and reaped
/// when dropped, so a test that fails part way leaves nothing running.
pub(crate) struct ChildProcess(pub std::process::Child);

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ioto demo` on a free port with its data in `data`: the process and the lines it printed up to
/// its tenant admin's token (the end of its greeting).
pub(crate) fn start_demo(data: &std::path::Path) -> (ChildProcess, Vec<String>) {
    let mut demo = ChildProcess(
        ioto()
            .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = demo.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("demo printed its tokens");
        let done = line.split_whitespace().next() == Some("TENANT_ADMIN");
        lines.push(line);
        if done {
            return (demo, lines);
        }
    }
}

/// The address a demo's greeting names for `page` ("Console", "Playground").
pub(crate) fn demo_address(lines: &[String], page: &str) -> Option<String> {
    let path = format!("/{}", page.to_ascii_lowercase());
    lines.iter().find_map(|line| {
        line.trim().strip_prefix(&format!("{page}:")).map(|rest| {
            rest.trim()
                .trim_start_matches("http://")
                .trim_end_matches(path.as_str())
                .to_owned()
        })
    })
}

#[tokio::test]
async fn demo_prints_tokens_that_answer_me_and_stops_on_sigterm() {
    let data = temp_dir();
    let started = Instant::now();
    let (mut demo, lines) = start_demo(&data);
    let ready = Instant::now();
    let login_line = lines
        .iter()
        .any(|l| l.contains("admin@demo.ioto / ioto-demo-password"));
    let admin_token = lines
        .last()
        .and_then(|l| l.split_whitespace().last())
        .map(str::to_owned);
    let addr = demo_address(&lines, "Playground");
    assert_eq!(
        demo_address(&lines, "Console"),
        addr,
        "the console is printed, on the same server"
    );
    assert!(login_line, "the demo login is printed");
    let addr = addr.expect("playground URL printed");
    let body = me(&addr, admin_token.as_deref().unwrap()).await;
    assert_eq!(body["data"]["me"]["email"], "admin@demo.ioto", "{body}");
    assert_eq!(body["data"]["me"]["tenant"]["name"], "Demo Fleet GmbH");
    // The demo fleet: SIMs in several states, devices holding SIMs, labels, recent networks.
    let fleet = gql(
        &addr,
        admin_token.as_deref().unwrap(),
        &json!({ "query": "{
            all: sims(first: 1) { totalCount }
            suspended: sims(first: 1, filter: { states: [SUSPENDED] }) { totalCount }
            inDevices: sims(first: 1, filter: { bound: true, networks: [\"262-01\"] }) { totalCount }
            devices(first: 1) { totalCount nodes { sims { iccid } labels { key } } }
            labelCatalogue { key }
        }" }),
    )
    .await;
    assert_eq!(fleet["data"]["all"]["totalCount"], 3000, "{fleet}");
    assert!(
        fleet["data"]["suspended"]["totalCount"].as_i64().unwrap() > 100,
        "{fleet}"
    );
    assert!(
        fleet["data"]["inDevices"]["totalCount"].as_i64().unwrap() > 100,
        "{fleet}"
    );
    assert_eq!(fleet["data"]["devices"]["totalCount"], 1200, "{fleet}");
    assert!(
        !fleet["data"]["labelCatalogue"].as_array().unwrap().is_empty(),
        "{fleet}"
    );
    assert!(started.elapsed() < Duration::from_secs(120));

    // The demo is alive: session history and live sessions flow through the ingest pipeline, and
    // devices report telemetry.
    let live_query = json!({ "query": "{
        sims(first: 100, filter: { states: [ACTIVE] }) { nodes { liveSession { bytesIn } usage(from: \"2020-01-01T00:00:00Z\", to: \"2100-01-01T00:00:00Z\", granularity: YEAR) { bytesIn } } }
        devices(first: 50, filter: { states: [IN_SERVICE] }) { nodes { telemetry(last: 5) { temperatureC } } }
    }" });
    let mut alive = Value::Null;
    for _ in 0..120 {
        alive = gql(&addr, admin_token.as_deref().unwrap(), &live_query).await;
        let sessions = alive["data"]["sims"]["nodes"]
            .as_array()
            .map_or(0, |n| n.iter().filter(|s| !s["liveSession"].is_null()).count());
        let readings = alive["data"]["devices"]["nodes"].as_array().map_or(0, |n| {
            n.iter()
                .filter(|d| d["telemetry"].as_array().is_some_and(|t| !t.is_empty()))
                .count()
        });
        if sessions > 50 && readings > 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(alive["errors"].is_null(), "{alive}");
    let with_usage = alive["data"]["sims"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["usage"].as_array().is_some_and(|u| !u.is_empty()))
        .count();
    assert!(with_usage > 50, "SIMs have usage: {alive}");
    let readings = alive["data"]["devices"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["telemetry"].as_array().is_some_and(|t| !t.is_empty()))
        .count();
    assert!(readings > 20, "devices report telemetry: {alive}");

    // The demo has rate cards and rates its history as soon as it is counted: the dashboard
    // shows a cost within its first minute.
    let mut dashboard = Value::Null;
    while ready.elapsed() < Duration::from_secs(60) {
        dashboard = gql(
            &addr,
            admin_token.as_deref().unwrap(),
            &json!({ "query": "{ dashboard { costSoFar currency } }" }),
        )
        .await;
        let cost = dashboard["data"]["dashboard"]["costSoFar"].as_str();
        if cost.is_some_and(|c| c.parse::<f64>().is_ok_and(|c| c > 0.0)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let cost = dashboard["data"]["dashboard"]["costSoFar"]
        .as_str()
        .unwrap_or("none");
    assert!(
        cost.parse::<f64>().is_ok_and(|c| c > 0.0),
        "a cost within the first minute, {:?} after the demo was ready: {dashboard}",
        ready.elapsed()
    );
    assert_eq!(dashboard["data"]["dashboard"]["currency"], "EUR", "{dashboard}");

    // Within its first minute the demo's alerts show SIMs past their quota's stages and SIMs
    // gone quiet, and its quota pool is past a stage.
    let mut seen = Value::Null;
    let shows = |seen: &Value| {
        let rules: Vec<&str> = seen["data"]["alerts"]["nodes"]
            .as_array()
            .map(|a| a.iter().filter_map(|n| n["rule"]["name"].as_str()).collect())
            .unwrap_or_default();
        let pool = seen["data"]["quotaPools"][0]["quota"]["stageReached"]
            .as_i64()
            .unwrap_or(0);
        rules.contains(&"Quota nearly used") && rules.contains(&"Gone quiet") && pool >= 50
    };
    while ready.elapsed() < Duration::from_secs(60) {
        seen = gql(
            &addr,
            admin_token.as_deref().unwrap(),
            &json!({ "query": "{ alerts(first: 100, filter: {states: [FIRING]}) { nodes { rule { name } } }
                quotaPools { name quota { stageReached usedBytes } } }" }),
        )
        .await;
        if shows(&seen) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        shows(&seen),
        "quota stages, a quiet SIM and the pool's stage within the first minute, {:?} after the demo was ready: {seen}",
        ready.elapsed()
    );
    assert_eq!(seen["data"]["quotaPools"][0]["name"], "Demo pool", "{seen}");

    // Within its first minutes the demo forecasts the tenant's usage from the 90 days of history
    // it wrote, and lists the anomalies it put on yesterday: the SIM its greeting names used ten
    // times its usual.
    let spike = lines
        .iter()
        .find(|l| l.trim_start().starts_with("History:"))
        .and_then(|l| {
            l.split_whitespace()
                .map(|w| w.trim_matches(|c: char| !c.is_ascii_digit()))
                .find(|w| ioto_domain::Iccid::parse(w).is_ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("the greeting names the SIM whose usage spiked: {lines:?}"));
    let forecast_query = json!({ "query": "{ dashboard { forecast { method days { bytes } } }
        anomalies(first: 10) { nodes { kind iccid day sentence } } }" });
    let shows_forecasts = |v: &Value| {
        let days = v["data"]["dashboard"]["forecast"]["days"]
            .as_array()
            .map_or(0, Vec::len);
        let spiked = v["data"]["anomalies"]["nodes"].as_array().is_some_and(|nodes| {
            nodes
                .iter()
                .any(|n| n["iccid"] == spike.as_str() && n["kind"] == "USAGE_SPIKE")
        });
        days > 0 && spiked
    };
    let mut forecasts = Value::Null;
    while ready.elapsed() < Duration::from_secs(120) {
        forecasts = gql(&addr, admin_token.as_deref().unwrap(), &forecast_query).await;
        if shows_forecasts(&forecasts) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        shows_forecasts(&forecasts),
        "the tenant's forecast and SIM {spike}'s usage spike, {:?} after the demo was ready: {forecasts}",
        ready.elapsed()
    );
    assert!(
        forecasts["data"]["dashboard"]["forecast"]["method"].is_string(),
        "{forecasts}"
    );

    // The demo's history holds a finished example bulk job (through the simulated HLR).
    let admin = admin_token.as_deref().unwrap();
    let mut jobs = Value::Null;
    for _ in 0..60 {
        jobs = gql(
            &addr,
            admin,
            &json!({ "query": "{ bulkJobs(first: 5) { nodes { status fileName succeeded summary } } }" }),
        )
        .await;
        if jobs["data"]["bulkJobs"]["nodes"][0]["status"] == "COMPLETED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let example = &jobs["data"]["bulkJobs"]["nodes"][0];
    assert_eq!(example["status"], "COMPLETED", "{jobs}");
    assert_eq!(example["succeeded"], 60, "{jobs}");

    // `ioto bulk submit` uploads a file, confirms it and follows it to the end.
    let server = format!("http://{addr}");
    let iccid = |prefix: &str, i: usize| {
        ioto_domain::Iccid::with_check_digit(&format!("{prefix}{i:08}"))
            .unwrap()
            .to_string()
    };
    let file = data.join("activate.csv");
    std::fs::write(
        &file,
        format!(
            "iccid\n{}\n{}\n",
            iccid("8988228066", 400),
            iccid("8988228066", 401)
        ),
    )
    .unwrap();
    let out = ioto()
        .args(["bulk", "submit"])
        .arg(&file)
        .args(["--action", "ACTIVATE", "--server", &server, "--token", admin])
        .output()
        .unwrap();
    let stdout = succeeded(&out, "");
    assert!(stdout.contains("2 valid, 0 invalid"), "{stdout}");
    assert!(stdout.contains("All 2 SIMs were activated"), "{stdout}");
    // A file with an invalid row stops before running, naming the row.
    std::fs::write(&file, "iccid\n8988228066123\n").unwrap();
    let out = ioto()
        .args(["bulk", "submit"])
        .arg(&file)
        .args(["--action", "SUSPEND", "--server", &server, "--token", admin])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("row 2: 8988228066123"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--skip-invalid"));

    // `ioto import sims` previews, then imports.
    let inventory = data.join("inventory.csv");
    std::fs::write(
        &inventory,
        format!("iccid,imsi\n{},901990000000001\n", iccid("8988228099", 1)),
    )
    .unwrap();
    for (flags, expected) in [(&[][..], "Preview only"), (&["--commit"][..], "Imported 1 SIMs")] {
        let out = ioto()
            .args(["import", "sims"])
            .arg(&inventory)
            .args(flags)
            .args(["--server", &server, "--token", admin])
            .output()
            .unwrap();
        let stdout = succeeded(&out, "");
        assert!(stdout.contains("1 rows, 1 valid, 0 with errors"), "{stdout}");
        assert!(stdout.contains(expected), "{stdout}");
    }

    // `ioto export` writes the demo tenant's billing file, inventory and a Parquet usage file:
    // the job's bytes (the CLI checks them against the job's SHA-256).
    let analytics = r#"{"analytics": {"measures": ["BYTES_IN", "BYTES_OUT", "ACTIVE_SIMS"], "dimensions": ["TIME", "NETWORK"], "timeRange": {"preset": "LAST_7_DAYS"}, "granularity": "DAY"}}"#;
    for (kind, format, filter, magic) in [
        ("customer-billing", "xlsx", None, &b"PK"[..]),
        ("sim-inventory", "csv", None, &b"iccid,imsi,"[..]),
        ("usage-analytics", "parquet", Some(analytics), &b"PAR1"[..]),
    ] {
        let out_file = data.join(format!("{kind}.{format}"));
        let run = || {
            let mut cmd = ioto();
            cmd.args(["export", kind, "--format", format, "--out"])
                .arg(&out_file)
                .args(["--server", &server, "--token", admin]);
            if let Some(f) = filter {
                cmd.args(["--filter", f]);
            }
            cmd.output().unwrap()
        };
        // The demo rates its open period 30 s after start: until then the billing file is
        // refused, saying so.
        let waiting = Instant::now();
        let mut out = run();
        while String::from_utf8_lossy(&out.stderr).contains("has not been rated yet")
            && waiting.elapsed() < Duration::from_secs(120)
        {
            std::thread::sleep(Duration::from_secs(2));
            out = run();
        }
        let stdout = succeeded(&out, kind);
        let bytes = std::fs::read(&out_file).unwrap();
        assert!(
            bytes.starts_with(magic),
            "{kind}: {:?}",
            &bytes[..bytes.len().min(16)]
        );
        let rows: u64 = stdout.split(' ').next().unwrap().parse().unwrap();
        assert!(rows > 0, "the demo has data to export: {stdout}");
    }
    let out = ioto()
        .args(["export", "everything", "--out"])
        .arg(data.join("x.csv"))
        .args(["--server", &server, "--token", admin])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sim_inventory"));

    // `token issue` with the same data directory mints a token the server accepts; stdout is only the token.
    let out = ioto()
        .args([
            "token",
            "issue",
            "--tenant",
            "demo",
            "--role",
            "customer_user",
            "--customer",
            "Acme Logistics",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let body = me(&addr, stdout.trim()).await;
    assert_eq!(body["data"]["me"]["role"], "CUSTOMER_USER", "{body}");
    assert!(body["data"]["me"]["email"].is_null());

    let bad = ioto()
        .args([
            "token",
            "issue",
            "--tenant",
            "demo",
            "--role",
            "CUSTOMER_USER",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--customer is required"));

    let status = Command::new("kill")
        .args(["-TERM", &demo.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = demo.0.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
}

#[tokio::test]
async fn unreachable_engine_gives_one_clear_line_and_fails() {
    let cases = [
        (
            "DATABASE_URL",
            "postgres://ioto:hunter2secret@127.0.0.1:1/ioto",
            "transactional store at postgres://ioto:***@127.0.0.1:1/ioto",
        ),
        (
            "CLICKHOUSE_URL",
            "http://ioto:hunter2secret@127.0.0.1:1",
            "ClickHouse at http://ioto:***@127.0.0.1:1",
        ),
        ("KAFKA_BROKERS", "127.0.0.1:1", "Kafka at 127.0.0.1:1"),
        (
            "MQTT_URL",
            "mqtt://ioto:hunter2secret@127.0.0.1:1",
            "MQTT broker at mqtt://ioto:***@127.0.0.1:1",
        ),
    ];
    for (var, value, names) in cases {
        let out = ioto()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(temp_dir())
            .env(var, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{var}: {stderr}");
        assert!(
            lines[0].contains(names) && lines[0].ends_with("is unavailable"),
            "{var}: {stderr}"
        );
        assert!(!stderr.contains("hunter2secret"), "{var}: {stderr}");
    }
}

#[test]
fn config_prints_effective_values_redacted_and_warns_about_unknown_keys() {
    let out = ioto()
        .args(["config", "--data-dir", "/tmp/somewhere"])
        .env("IOTO_AUTH__JWT_SECRET", "0123456789abcdef0123456789abcdef-secret")
        .env("IOTO_GRAPHQL__MAX_DEPHT", "3")
        .env("IOTO_LOG__FORMAT", "json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("data_dir = \"/tmp/somewhere\""), "{stdout}");
    assert!(stdout.contains("jwt_secret = \"***\""), "{stdout}");
    assert!(!stdout.contains("0123456789abcdef"));
    // The warning is a JSON log line when log.format = json.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning: Value = stderr
        .lines()
        .find(|l| l.contains("IOTO_GRAPHQL__MAX_DEPHT"))
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .unwrap_or_else(|| panic!("no warning about the unknown key: {stderr}"));
    assert_eq!(warning["level"], "WARN");
}

#[test]
fn simulate_without_a_broker_says_what_is_missing() {
    let out = ioto()
        .args(["simulate", "sessions", "--data-dir"])
        .arg(ioto_test_support::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KAFKA_BROKERS"), "{err}");
}

/// `ioto simulate history` asks for no more days than the ingest worker counts: 90 days against
/// the default 35-day window are refused naming `--days` and the setting to change, before any
/// engine is reached (the broker named here does not exist).
#[test]
fn simulate_history_past_the_ingest_window_says_what_to_change() {
    let data = ioto_test_support::temp_dir();
    let truth = data.join("truth.csv");
    let out = ioto()
        .args(["simulate", "history", "--days", "90", "--truth"])
        .arg(&truth)
        .arg("--data-dir")
        .arg(&data)
        .env("KAFKA_BROKERS", "127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--days") && err.contains("IOTO_INGEST__MAX_EVENT_AGE_DAYS=91"),
        "{err}"
    );
    assert!(
        !truth.exists(),
        "nothing written before the arguments are accepted"
    );
    // Without a broker it says that first, as the other simulators do.
    let out = ioto()
        .args(["simulate", "history", "--days", "7", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KAFKA_BROKERS"));
}

/// Runs `ioto admin …` against `config`'s transactional store and data directory, with `stdin`
/// as standard input; returns (success, stdout, stderr).
fn admin(
    config: &ioto::config::Config,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> (bool, String, String) {
    use std::io::Write;
    let mut cmd = ioto();
    cmd.arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(&config.data_dir)
        .env("DATABASE_URL", config.database.url.as_ref().unwrap().expose())
        .env_remove(ioto::tooling::admin::PASSWORD_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

/// From an empty Postgres database to a signed-in platform admin, a tenant and its admin — the
/// README's "Production" section, step by step.
#[tokio::test]
async fn admin_cli_bootstraps_an_empty_database() {
    use ioto_test_support::{Engines, TestApp};
    let config = TestApp::config(Engines::Real).await;

    // Refusals first: they must leave nothing behind.
    let (ok, _, err) = admin(
        &config,
        &["create-platform-admin", "--email", "ops@example.com"],
        "",
        &[],
    );
    assert!(
        !ok && err.contains("--password-stdin"),
        "no password source: {err}"
    );
    let (ok, _, err) = admin(
        &config,
        &[
            "create-platform-admin",
            "--email",
            "ops@example.com",
            "--password-stdin",
        ],
        "short\n",
        &[],
    );
    assert!(!ok && err.contains("password: must be at least"), "{err}");
    let (ok, _, err) = admin(
        &config,
        &[
            "create-user",
            "--tenant",
            "acme",
            "--email",
            "a@acme.io",
            "--role",
            "GOD",
        ],
        "",
        &[],
    );
    assert!(!ok && err.contains("--role"), "{err}");

    let (ok, out, err) = admin(
        &config,
        &[
            "create-platform-admin",
            "--email",
            "ops@example.com",
            "--password-stdin",
        ],
        "correct horse battery staple\n",
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("ops@example.com"), "{out}");
    let (ok, tenant_id, err) = admin(
        &config,
        &["create-tenant", "--slug", "acme", "--name", "Acme IoT"],
        "",
        &[],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = admin(
        &config,
        &[
            "create-user",
            "--tenant",
            "acme",
            "--email",
            "admin@acme.io",
            "--role",
            "TENANT_ADMIN",
        ],
        "",
        &[(ioto::tooling::admin::PASSWORD_ENV, "acme admin password")],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = admin(
        &config,
        &["create-tenant", "--slug", "acme", "--name", "Again"],
        "",
        &[],
    );
    assert!(
        !ok && err.to_lowercase().contains("acme"),
        "a taken slug is named: {err}"
    );

    let app = TestApp::spawn_with(config.clone()).await;
    let ops = app.login("ops@example.com", "correct horse battery staple").await;
    let me = app
        .gql(Some(&ops), "{ me { role } tenants { slug } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["role"], "PLATFORM_ADMIN", "{me}");
    let slugs: Vec<&str> = me["data"]["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert!(slugs.contains(&"acme"), "{me}");
    let acme = app.login("admin@acme.io", "acme admin password").await;
    let me = app
        .gql(Some(&acme), "{ me { role tenant { id } } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["role"], "TENANT_ADMIN", "{me}");
    assert_eq!(me["data"]["me"]["tenant"]["id"], tenant_id, "{me}");
    app.stop().await;

    // Rotation: tokens signed before no longer verify on a server started after.
    let mut config = config;
    config.auth.jwt_secret = None;
    let app = TestApp::spawn_with(config.clone()).await;
    let before = app.login("admin@acme.io", "acme admin password").await;
    app.stop().await;
    let (ok, out, err) = admin(&config, &["rotate-jwt-secret"], "", &[]);
    assert!(ok && out.contains("jwt-secret"), "{out} {err}");
    let app = TestApp::spawn_with(config).await;
    let (status, _) = app.gql_status(Some(&before), "{ me { role } }", json!({})).await;
    assert_eq!(status, 401);
    let after = app.login("admin@acme.io", "acme admin password").await;
    let me = app.gql(Some(&after), "{ me { role } }", json!({})).await;
    assert_eq!(me["data"]["me"]["role"], "TENANT_ADMIN", "{me}");
    app.stop().await;
}

/// `ioto-bench api` runs against the current schema on both engine sets and prints the ratios
/// its targets are stated in (a bench that no longer runs is caught here, not by its next user).
#[tokio::test]
async fn bench_api_runs_on_both_engine_sets() {
    let db = ioto_test_support::pg::database().await;
    let out = ioto_bench()
        .args([
            "api",
            "--requests",
            "40",
            "--concurrency",
            "2",
            "--runs",
            "2",
            "--data-dir",
        ])
        .arg(temp_dir())
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    let stdout = succeeded(&out, "");
    for line in [
        "me, bare handler",
        "sim(iccid), bare handler",
        "sims(first: 100) of 1000",
        "configured: GraphQL / bare handler throughput: me ",
        "configured / embedded throughput: me ",
        "| sim(iccid), with an API key | ",
        "configured: sim(iccid) with an API key against a login's token: p50 ",
        "configured: an API key's check, cached: p50 ",
        "run 2 of 2",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // A summary per engine set, each naming every operation.
    assert_eq!(
        stdout.matches("median (min–max) of 2 runs").count(),
        2,
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("| sim(iccid), bare handler | ").count(),
        2,
        "{stdout}"
    );
}

/// Flags out of range are refused by the parser, naming the flag and what is allowed, before
/// anything starts.
#[test]
fn out_of_range_flags_name_the_flag() {
    for (args, flag) in [
        (&["bench", "api", "--requests", "0"][..], "--requests"),
        (&["bench", "fleet", "--concurrency", "0"][..], "--concurrency"),
        (&["bench", "cpu", "--cdrs", "0"][..], "--cdrs"),
        (&["bench", "alerts", "--rules", "0"][..], "--rules"),
        (&["bench", "alerts", "--rules", "200"][..], "--rules"),
        (&["bench", "alerts", "--rate", "0"][..], "--rate"),
        (&["bench", "cpu", "--import-rows", "0"][..], "--import-rows"),
        (&["bench", "cpu", "--import-rows", "1000001"][..], "--import-rows"),
        (
            &["bench", "cpu", "--rating-child", "everything"][..],
            "--rating-child",
        ),
        (
            &["simulate", "devices", "--interval-seconds", "0"][..],
            "--interval-seconds",
        ),
        (&["simulate", "incident", "teleport"][..], "<KIND>"),
        (&["simulate", "incident", "burst", "--bytes", "10"][..], "--bytes"),
        (&["simulate", "history", "--days", "0"][..], "--days"),
        (&["simulate", "history", "--days", "401"][..], "--days"),
        (&["simulate", "history", "--days", "ninety"][..], "--days"),
        (&["simulate", "history", "--sims", "0"][..], "--sims"),
        (&["simulate", "history", "--sims", "100001"][..], "--sims"),
        (&["simulate", "history", "--anomalies", "1.5"][..], "--anomalies"),
        (&["simulate", "history", "--anomalies=-0.1"][..], "--anomalies"),
        (&["simulate", "history", "--anomalies", "NaN"][..], "--anomalies"),
        (&["simulate", "history", "--anomalies", "inf"][..], "--anomalies"),
        (&["simulate", "history", "--anomalies", "some"][..], "--anomalies"),
        (
            &["token", "issue", "--tenant", "demo", "--role", "GOD"][..],
            "--role",
        ),
    ] {
        let out = match args {
            ["bench", bench @ ..] => ioto_bench().args(bench).output(),
            _ => ioto().args(args).output(),
        }
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            err.contains(flag) && err.contains("invalid value"),
            "{args:?}: {err}"
        );
    }
}

/// `ioto-bench forecast` and `ioto-bench anomalies` run, small, on simulated fleets and print
/// their accuracy figures; the forecast bench writes the ground truth it injected as RFC 4180 CSV.
#[test]
fn bench_forecast_and_anomalies_run() {
    let truth = temp_dir().join("truth.csv");
    let out = ioto_bench()
        .args([
            "forecast",
            "--sims",
            "300",
            "--days",
            "60",
            "--runs",
            "2",
            "--replay-sims",
            "50",
            "--truth-out",
        ])
        .arg(&truth)
        .output()
        .unwrap();
    let stdout = succeeded(&out, "forecast");
    for expect in [
        "chosen never worse than seasonal naive",
        "quota warnings, replaying",
        "SEASONAL_NAIVE",
    ] {
        assert!(stdout.contains(expect), "{expect}:\n{stdout}");
    }
    assert!(
        stdout.starts_with("machine: "),
        "the machine comes first:\n{stdout}"
    );
    let csv = std::fs::read_to_string(&truth).unwrap();
    assert!(csv.starts_with("sim,day,kind,magnitude\r\n"), "{csv}");
    assert!(csv.lines().count() > 1, "no anomaly injected in 300 SIMs: {csv}");

    let out = ioto_bench()
        .args(["anomalies", "--sims", "500", "--days", "60", "--runs", "1"])
        .output()
        .unwrap();
    let stdout = succeeded(&out, "anomalies");
    for expect in ["| said \\ true |", "USAGE_SPIKE", "SILENCE", "NEW_COUNTRY"] {
        assert!(stdout.contains(expect), "{expect}:\n{stdout}");
    }
}

/// `ioto-bench ingest` at a tiny size on the embedded engines: two runs and their summary.
const TINY_INGEST: &[&str] = &[
    "ingest",
    "--events",
    "2000",
    "--sims",
    "100",
    "--live-rate",
    "100",
    "--probes",
    "5",
    "--runs",
    "2",
];

/// `ioto-bench fleet` at a tiny size: two runs and their summary.
const TINY_FLEET: &[&str] = &[
    "fleet",
    "--sims",
    "2000",
    "--requests",
    "20",
    "--concurrency",
    "2",
    "--runs",
    "2",
];

/// A bench run small on the embedded engines prints `expect` after the machine, its reference
/// figures and the engines' versions (what a user re-running it would see first is that it
/// still works), and the rows that bench promises.
fn bench_runs(args: &[&str], expect: &str) -> String {
    let out = ioto_bench()
        .args(args)
        .arg("--data-dir")
        .arg(temp_dir())
        .output()
        .unwrap();
    let stdout = succeeded(&out, &format!("{args:?}"));
    assert!(stdout.contains(expect), "{args:?} printed:\n{stdout}");
    assert!(
        stdout.starts_with("machine: ") && stdout.lines().next().unwrap().contains(" cores, "),
        "the machine comes first:\n{stdout}"
    );
    // Then its reference figures (one core's speed, a durable write's latency).
    let reference = stdout.lines().nth(1).unwrap_or_default();
    assert!(
        reference.starts_with("reference: SHA-256 of 1 MiB ")
            && reference.contains(" ms (")
            && reference.contains("; 4 KiB write + fdatasync ")
            && !reference.contains("not measured"),
        "the reference figures come second:\n{stdout}"
    );
    // The engines' versions follow, so a figure names what it ran on.
    let engines = stdout
        .lines()
        .find(|l| l.starts_with("engines: transactional store "))
        .unwrap_or_else(|| panic!("no engine versions:\n{stdout}"));
    assert!(
        engines.contains("SQLite 3.") || engines.contains("PostgreSQL "),
        "{engines}"
    );
    stdout
}

/// `ioto-bench fleet`: two runs, their summary, and where the imports' time went.
#[test]
fn bench_fleet_runs() {
    let stdout = bench_runs(TINY_FLEET, "pages: median (min–max) of 2 runs");
    // Where the imports' time went, stage by stage.
    for stage in [
        "reading and checking the file",
        "sealing PINs and PUKs",
        "the store's insert and commit",
    ] {
        assert!(
            stdout.contains(&format!("  {stage}: median ")),
            "{stage}:\n{stdout}"
        );
    }
}

/// `ioto-bench ingest`: two runs, their summary and every stage observed.
#[test]
fn bench_ingest_runs() {
    let stdout = bench_runs(TINY_INGEST, "summary of 2 runs");
    // The stage breakdown names every stage, each observed during the live load.
    for stage in crate::INGEST_STAGES {
        let row = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("| {stage} |")))
            .unwrap_or_else(|| panic!("no {stage} row:\n{stdout}"));
        assert!(!row.contains("| 0 |"), "{stage} observed nothing: {row}");
        // And the summary follows its p99 run by run.
        assert!(
            stdout.contains(&format!("| stage `{stage}` p99 (bucket bound), ms |")),
            "no summary row for {stage}:\n{stdout}"
        );
    }
}

/// `ioto-bench cpu` with instruction counts from callgrind for every step.
#[test]
fn bench_cpu_counts_instructions() {
    let stdout = bench_runs(
        &[
            "cpu",
            "--events",
            "1000",
            "--sims",
            "100",
            "--cdrs",
            "5000",
            "--import-rows",
            "500",
            "--runs",
            "3",
            "--instructions",
        ],
        "| count (prepare + acknowledge a batch) |",
    );
    // Every step carries an instruction count from callgrind, not the hint to ask for
    // one; rating's (two processes subtracted) included, and the import's check and
    // seal (the seal on every core is the same work as on one thread).
    for step in [
        "| decode",
        "| count",
        "| rate",
        "| import check",
        "| import seal (PIN + PUK, AES-256-GCM, one thread)",
    ] {
        let row = stdout.lines().find(|l| l.starts_with(step)).unwrap();
        assert!(row.contains(" | 3 | "), "three timed runs: {row}");
        let instructions: f64 = row
            .trim_end_matches(" |")
            .rsplit("| ")
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no instruction count: {row}"));
        assert!(instructions > 100.0, "{row}");
    }
    for step in [
        "| import check (rows checked on every core",
        "| import seal (PIN + PUK, on every core",
    ] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(step))
            .unwrap_or_else(|| panic!("no {step}:\n{stdout}"));
        assert!(row.contains(" | 500 | 3 | "), "{row}");
    }
}

/// `ioto-bench bulk`: the probes' latency without the HLR's time.
#[test]
fn bench_bulk_runs() {
    bench_runs(
        &[
            "bulk", "--sims", "3000", "--rows", "500", "--runs", "2", "--probes", "4",
        ],
        "p99 without the HLR's time, during the job",
    );
}

/// `ioto-bench alerts`: an event's way to a stored alert.
#[test]
fn bench_alerts_runs() {
    bench_runs(
        &[
            "alerts",
            "--sims",
            "300",
            "--rules",
            "20",
            "--rate",
            "200",
            "--probes",
            "3",
            "--backlog",
            "2000",
            "--runs",
            "1",
        ],
        "| event → alert stored p95, s |",
    );
}

/// A bench given no `--data-dir` works in a fresh one in the temporary directory and removes it
/// when it ends: re-running benches does not fill the disk (one embedded ingest bench of the
/// documented size left ~400 MB there per invocation).
#[test]
fn a_bench_without_a_data_dir_leaves_nothing_behind() {
    let tmp = temp_dir();
    let out = ioto_bench()
        .env("TMPDIR", &tmp)
        .args(TINY_INGEST)
        .output()
        .unwrap();
    let stdout = succeeded(&out, "");
    assert!(stdout.contains("summary of 2 runs"), "{stdout}");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "the bench left {left:?} in {}", tmp.display());
    std::fs::remove_dir(&tmp).unwrap();
}

/// `ioto-bench exports` runs, small, for every format.
#[test]
fn bench_exports_runs_every_format() {
    let out = ioto_bench()
        .args(["exports", "--rows", "20000", "--runs", "2"])
        .output()
        .unwrap();
    let stdout = succeeded(&out, "");
    assert!(stdout.starts_with("machine: "), "{stdout}");
    for row in ["| CSV |", "| XLSX |", "| PARQUET |", "generating the rows alone"] {
        assert!(stdout.contains(row), "{row}:\n{stdout}");
    }
}

/// The environment that points a bench at a test's ClickHouse database.
fn on_clickhouse(ch: &ioto_analytics::ClickHouseConfig) -> [(&'static str, String); 2] {
    [
        ("CLICKHOUSE_URL", ch.url.clone()),
        ("IOTO_CLICKHOUSE__DATABASE", ch.database.clone()),
    ]
}

/// `ioto-bench rating` runs, small, on the embedded store and on ClickHouse, where the same rating
/// as SQL must sum to exactly what Polars rated.
#[tokio::test]
async fn bench_rating_runs_on_both_usage_stores() {
    let ch = ioto_test_support::clickhouse::database().await;
    for clickhouse in [false, true] {
        let mut cmd = ioto_bench();
        cmd.args([
            "rating", "--cdrs", "20000", "--sims", "200", "--zones", "12", "--runs", "2",
        ])
        .arg("--data-dir")
        .arg(temp_dir());
        if clickhouse {
            cmd.envs(on_clickhouse(&ch));
        }
        let out = cmd.output().unwrap();
        let stdout = succeeded(&out, "");
        assert!(stdout.starts_with("machine: "), "{stdout}");
        assert!(
            stdout.contains("rating 20000 CDRs: median (min–max) of 2 runs"),
            "{stdout}"
        );
        for row in [
            "| end to end, s |",
            "| read from the store, s |",
            "| rate in Polars, s |",
            "| write results, s |",
            "| peak RSS of the process, MB |",
        ] {
            assert!(stdout.contains(row), "{row}:\n{stdout}");
        }
        if clickhouse {
            assert!(
                stdout.contains("| ClickHouse SQL sums equal Polars' (by zone, to the last digit) | yes |"),
                "{stdout}"
            );
            assert!(
                stdout.contains(
                    "| removing the two runs' rows afterwards (background mutation, waited for), s |"
                ),
                "{stdout}"
            );
            bench_left_clickhouse_as_it_was(&ch).await;
        }
    }
    ioto_analytics::ClickHouseUsage::drop_database(&ch).await.unwrap();
}

/// A bench on ClickHouse worked in a database of its own, not the configured one, and dropped
/// it: nothing stays behind.
async fn bench_left_clickhouse_as_it_was(ch: &ioto_analytics::ClickHouseConfig) {
    let count = |sql: String| async move {
        ioto_test_support::clickhouse::sql(ch, &sql)
            .await
            .trim()
            .to_owned()
    };
    let scratch = format!(
        "SELECT count() FROM system.databases WHERE startsWith(name, '{}_bench_')",
        ch.database
    );
    assert_eq!(count(scratch).await, "0", "the bench left its database behind");
    let configured = format!(
        "SELECT count() FROM system.tables WHERE database = '{}'",
        ch.database
    );
    assert_eq!(
        count(configured).await,
        "0",
        "the bench wrote into the configured database"
    );
}

/// `ioto-bench fleet` on Postgres and ClickHouse, small: it measures and leaves the configured
/// ClickHouse database as it was (it used to create the schema there).
#[tokio::test]
async fn bench_fleet_on_the_engines_leaves_the_configured_clickhouse_database_alone() {
    let ch = ioto_test_support::clickhouse::database().await;
    let out = ioto_bench()
        .args(TINY_FLEET)
        .arg("--data-dir")
        .arg(temp_dir())
        .env("DATABASE_URL", ioto_test_support::pg::database().await)
        .envs(on_clickhouse(&ch))
        .output()
        .unwrap();
    let stdout = succeeded(&out, "");
    assert!(stdout.contains("pages: median (min–max) of 2 runs"), "{stdout}");
    assert!(stdout.contains("usage store=clickhouse"), "{stdout}");
    bench_left_clickhouse_as_it_was(&ch).await;
    ioto_analytics::ClickHouseUsage::drop_database(&ch).await.unwrap();
}

/// `ioto-bench forecast-pass` runs, small, on Postgres and ClickHouse: both passes forecast the
/// seeded SIMs, print their phases and the target, and leave the configured ClickHouse database
/// alone; days it cannot read are refused, saying what it can.
#[tokio::test]
async fn bench_forecast_pass_runs_on_the_engines() {
    let ch = ioto_test_support::clickhouse::database().await;
    let out = ioto_bench()
        .args([
            "forecast-pass",
            "--sims",
            "300",
            "--days",
            "35",
            "--customers",
            "3",
            "--runs",
            "1",
        ])
        .arg("--data-dir")
        .arg(temp_dir())
        .env("DATABASE_URL", ioto_test_support::pg::database().await)
        .envs(on_clickhouse(&ch))
        .output()
        .unwrap();
    let stdout = succeeded(&out, "");
    assert!(stdout.starts_with("machine: "), "{stdout}");
    for pass in ["first pass", "second pass", "third pass"] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(pass) && l.contains("SIMs forecast"))
            .unwrap_or_else(|| panic!("no {pass} line:\n{stdout}"));
        // The number right before `words`, after the last `start` before them.
        let number_before = |words: &str, start: char| -> usize {
            line.split(words)
                .next()
                .and_then(|l| l.rsplit(start).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no number before {words:?}: {line}"))
        };
        let forecast = number_before(" SIMs forecast", ' ');
        assert!(
            (250..=300).contains(&forecast),
            "most of the 300 seeded SIMs use data and are forecast: {line}"
        );
        let kept = number_before(" kept as stored", '(');
        if pass == "third pass" {
            // It goes by the second: the 30 SIMs that used data since are computed again (and
            // the young ones), the others kept.
            assert!((forecast / 2..=forecast - 30).contains(&kept), "{line}");
        } else {
            assert_eq!(kept, 0, "a whole pass computes every SIM: {line}");
        }
    }
    for expect in [
        "second read",
        "then 30 SIMs used data",
        "target (every whole pass < 60 s, peak RSS < 1 GiB)",
    ] {
        assert!(stdout.contains(expect), "{expect}:\n{stdout}");
    }
    bench_left_clickhouse_as_it_was(&ch).await;

    let refused = ioto_bench()
        .args(["forecast-pass", "--sims", "300", "--days", "7", "--runs", "1"])
        .arg("--data-dir")
        .arg(temp_dir())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--days: 28 to 90"), "{stderr}");
    // No SIM in 0 uses data: refused naming the flag and what it takes.
    let refused = ioto_bench()
        .args([
            "forecast-pass",
            "--sims",
            "300",
            "--changed-every",
            "0",
            "--runs",
            "1",
        ])
        .arg("--data-dir")
        .arg(temp_dir())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("'--changed-every <CHANGED_EVERY>'") && stderr.contains("not in 1.."),
        "{stderr}"
    );
    ioto_analytics::ClickHouseUsage::drop_database(&ch).await.unwrap();
}

/// `ioto-bench analytics` runs, small, on the embedded store and on ClickHouse (where ClickHouse
/// generates the updates through its materialized views) and prints its table.
#[tokio::test]
async fn bench_analytics_runs_on_both_usage_stores() {
    let ch = ioto_test_support::clickhouse::database().await;
    for clickhouse in [false, true] {
        let mut cmd = ioto_bench();
        cmd.args([
            "analytics",
            "--updates",
            "20000",
            "--sims",
            "200",
            "--runs",
            "2",
            "--requests",
            "3",
            "--merge",
        ])
        .arg("--data-dir")
        .arg(temp_dir());
        if clickhouse {
            cmd.envs(on_clickhouse(&ch));
        }
        let out = cmd.output().unwrap();
        let stdout = succeeded(&out, "");
        assert!(stdout.starts_with("machine: "), "{stdout}");
        assert!(
            stdout.contains("loaded 20000 session updates over 200 SIMs"),
            "{stdout}"
        );
        assert!(
            stdout.contains("month × network answered from NETWORK_MONTHLY"),
            "{stdout}"
        );
        for row in ["| dashboard |", "| usageAnalytics month × network |"] {
            assert!(stdout.contains(row), "{row}:\n{stdout}");
        }
        // On ClickHouse the rounds run again after the merge; the embedded store says why not.
        assert_eq!(
            stdout.contains("after merging the tables the requests read"),
            clickhouse,
            "{stdout}"
        );
    }
    ioto_analytics::ClickHouseUsage::drop_database(&ch).await.unwrap();
}
