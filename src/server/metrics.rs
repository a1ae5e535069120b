//! Prometheus metrics in the text exposition format, without a metrics framework: a few counters
//! and one latency histogram per route are all `/metrics` needs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    graphql_errors: Mutex<BTreeMap<String, u64>>,
    engine_up: Mutex<BTreeMap<(String, String), bool>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        *lock(&self.requests)
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut lat = lock(&self.latency);
        let h = lat.entry(route.to_owned()).or_default();
        h.count += 1;
        h.sum += secs;
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.buckets[i] += 1;
            }
        }
    }

    pub fn record_graphql_error(&self, code: &str) {
        *lock(&self.graphql_errors).entry(code.to_owned()).or_default() += 1;
    }

    pub fn set_engine_up(&self, port: &str, engine: &str, up: bool) {
        lock(&self.engine_up).insert((port.to_owned(), engine.to_owned()), up);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP ioto_build_info Build information.\n# TYPE ioto_build_info gauge"
        );
        let _ = writeln!(
            out,
            "ioto_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            out,
            "# HELP ioto_http_requests_total HTTP requests by method, route and status."
        );
        let _ = writeln!(out, "# TYPE ioto_http_requests_total counter");
        for ((m, r, s), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "ioto_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP ioto_http_request_duration_seconds HTTP request latency by route."
        );
        let _ = writeln!(out, "# TYPE ioto_http_request_duration_seconds histogram");
        for (r, h) in lock(&self.latency).iter() {
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "ioto_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{le}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "ioto_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "ioto_http_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "ioto_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP ioto_graphql_errors_total GraphQL errors by extensions.code."
        );
        let _ = writeln!(out, "# TYPE ioto_graphql_errors_total counter");
        for (code, n) in lock(&self.graphql_errors).iter() {
            let _ = writeln!(out, "ioto_graphql_errors_total{{code=\"{code}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP ioto_engine_up Whether the engine behind a port answered the last readiness check."
        );
        let _ = writeln!(out, "# TYPE ioto_engine_up gauge");
        for ((p, e), up) in lock(&self.engine_up).iter() {
            let _ = writeln!(
                out,
                "ioto_engine_up{{port=\"{p}\",engine=\"{e}\"}} {}",
                u8::from(*up)
            );
        }
        out
    }
}

/// The ingest pipeline's counters, in the exposition format.
pub fn render_pipeline(out: &mut String, pipeline: &crate::server::pipeline::Pipeline) {
    if let Some(s) = &pipeline.ingest {
        let counters = [
            (
                "ioto_ingest_batches_total",
                "Batches counted and committed.",
                &s.batches,
            ),
            (
                "ioto_ingest_events_total",
                "Events taken off the bus and committed.",
                &s.events,
            ),
            (
                "ioto_ingest_session_updates_total",
                "Session updates written to the usage store.",
                &s.session_updates_written,
            ),
            (
                "ioto_ingest_cdrs_total",
                "CDRs written to the usage store.",
                &s.cdrs_written,
            ),
            (
                "ioto_ingest_already_counted_total",
                "Redelivered events recognised and skipped.",
                &s.already_counted,
            ),
            (
                "ioto_ingest_write_retries_total",
                "Failed attempts to write a batch (each retried).",
                &s.write_retries,
            ),
            (
                "ioto_ingest_commit_failures_total",
                "Batches counted but not committed (redelivered and recognised).",
                &s.commit_failures,
            ),
            (
                "ioto_ingest_rebalances_total",
                "Partition assignment changes seen.",
                &s.rebalances,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP ioto_ingest_dead_letters_total Events sent to the dead-letter topic, by reason.\n\
             # TYPE ioto_ingest_dead_letters_total counter"
        );
        for (reason, n) in s.dead_letters() {
            let _ = writeln!(out, "ioto_ingest_dead_letters_total{{reason=\"{reason}\"}} {n}");
        }
    }
    if let Some(t) = &pipeline.telemetry {
        let _ = writeln!(
            out,
            "# HELP ioto_telemetry_readings_total Device readings stored.\n\
             # TYPE ioto_telemetry_readings_total counter\nioto_telemetry_readings_total {}",
            t.stored.load(std::sync::atomic::Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP ioto_telemetry_rejected_total Device readings refused, by reason.\n\
             # TYPE ioto_telemetry_rejected_total counter"
        );
        for (reason, n) in t.rejected() {
            let _ = writeln!(out, "ioto_telemetry_rejected_total{{reason=\"{reason}\"}} {n}");
        }
    }
}
