//! Prometheus metrics on `prometheus-client`: request counters and latency histograms per route,
//! GraphQL errors by code, engine readiness, and the pipeline's and the store's own counters read
//! at scrape time. Every label is bounded (routes are the router's, methods the standard ones,
//! codes and reasons enumerations). Help texts carry no final period: the encoder adds one.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ioto_domain::ports::Fleet;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::server::pipeline::Pipeline;

/// The content type of the exposition (OpenMetrics text, which Prometheus scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EngineLabels {
    port: String,
    engine: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    graphql_errors: Family<CodeLabels, Counter>,
    engine_up: Family<EngineLabels, Gauge>,
    operation_cost: Histogram,
    store_queries: Histogram,
}

/// Costs of GraphQL operations: 1 to the largest limit a deployment would set.
const COST_BUCKETS: [f64; 9] = [
    10.0, 50.0, 100.0, 500.0, 1_000.0, 5_000.0, 10_000.0, 20_000.0, 100_000.0,
];
/// Store queries of one GraphQL operation.
const QUERY_BUCKETS: [f64; 8] = [0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0];

impl Metrics {
    /// The registry of this process; `pipeline` and `fleet` are read at every scrape.
    pub fn new(pipeline: Pipeline, fleet: Arc<dyn Fleet>) -> Self {
        let mut registry = Registry::default();
        registry.register(
            "ioto_build",
            "Build information",
            Info::new(vec![("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned())]),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "ioto_http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "ioto_http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        let graphql_errors = Family::<CodeLabels, Counter>::default();
        registry.register(
            "ioto_graphql_errors",
            "GraphQL errors by extensions.code",
            graphql_errors.clone(),
        );
        let engine_up = Family::<EngineLabels, Gauge>::default();
        registry.register(
            "ioto_engine_up",
            "Whether the engine behind a port answered the last readiness check",
            engine_up.clone(),
        );
        let operation_cost = Histogram::new(COST_BUCKETS);
        registry.register(
            "ioto_graphql_operation_cost",
            "Cost (complexity) of GraphQL operations that passed validation, as charged to rate limits",
            operation_cost.clone(),
        );
        let store_queries = Histogram::new(QUERY_BUCKETS);
        registry.register(
            "ioto_graphql_store_queries",
            "Store queries (SQL statements and usage-store reads) one GraphQL operation ran",
            store_queries.clone(),
        );
        registry.register_collector(Box::new(ScrapeTime { pipeline, fleet }));
        Self {
            registry,
            requests,
            latency,
            graphql_errors,
            engine_up,
            operation_cost,
            store_queries,
        }
    }

    /// One GraphQL operation over HTTP: its cost (0: refused before validation passed) and the
    /// store queries it ran.
    pub fn record_operation(&self, cost: u64, store_queries: u64) {
        if cost > 0 {
            self.operation_cost.observe(cost as f64);
        }
        self.store_queries.observe(store_queries as f64);
    }

    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn record_graphql_error(&self, code: &str) {
        self.graphql_errors
            .get_or_create(&CodeLabels {
                code: code.to_owned(),
            })
            .inc();
    }

    pub fn set_engine_up(&self, port: &str, engine: &str, up: bool) {
        self.engine_up
            .get_or_create(&EngineLabels {
                port: port.to_owned(),
                engine: engine.to_owned(),
            })
            .set(i64::from(up));
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a collector.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("encoding /metrics failed: {e}");
        }
        out
    }
}

/// Counters that live elsewhere (the ingest worker, the telemetry subscriber, the store's
/// statement counter), read when Prometheus scrapes.
struct ScrapeTime {
    pipeline: Pipeline,
    fleet: Arc<dyn Fleet>,
}

impl std::fmt::Debug for ScrapeTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScrapeTime")
    }
}

fn counter(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> std::fmt::Result {
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
}

fn by_reason<'a>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> std::fmt::Result {
    let mut family =
        encoder.encode_descriptor(name, help, None, prometheus_client::metrics::MetricType::Counter)?;
    for (reason, n) in values {
        let labels = ReasonLabels {
            reason: reason.to_owned(),
        };
        ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for ScrapeTime {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        counter(
            &mut encoder,
            "ioto_sql_statements",
            "SQL statements sent to the transactional store",
            self.fleet.statements(),
        )?;
        if let Some(s) = &self.pipeline.ingest {
            let counters = [
                ("ioto_ingest_batches", "Batches counted and committed", &s.batches),
                (
                    "ioto_ingest_events",
                    "Events taken off the bus and committed",
                    &s.events,
                ),
                (
                    "ioto_ingest_session_updates",
                    "Session updates written to the usage store",
                    &s.session_updates_written,
                ),
                (
                    "ioto_ingest_cdrs",
                    "CDRs written to the usage store",
                    &s.cdrs_written,
                ),
                (
                    "ioto_ingest_already_counted",
                    "Redelivered events recognised and skipped",
                    &s.already_counted,
                ),
                (
                    "ioto_ingest_sessions_looked_up",
                    "Sessions new to the worker whose progress was asked of the usage store",
                    &s.sessions_looked_up,
                ),
                (
                    "ioto_ingest_sessions_known_new",
                    "Sessions new to the worker that its filter of stored sessions showed were never stored",
                    &s.sessions_known_new,
                ),
                (
                    "ioto_ingest_write_retries",
                    "Failed attempts to write a batch (each retried)",
                    &s.write_retries,
                ),
                (
                    "ioto_ingest_commit_failures",
                    "Batches counted but not committed (redelivered and recognised)",
                    &s.commit_failures,
                ),
                (
                    "ioto_ingest_rebalances",
                    "Partition assignment changes seen",
                    &s.rebalances,
                ),
                (
                    "ioto_ingest_worker_restarts",
                    "Times the ingest worker ended unexpectedly and was started again",
                    &s.restarts,
                ),
            ];
            for (name, help, value) in counters {
                counter(&mut encoder, name, help, value.load(Ordering::Relaxed))?;
            }
            let mut family = encoder.encode_descriptor(
                "ioto_ingest_stage_seconds",
                "Where an event's time goes on its way to the API, by stage (see ingest/src/stages.rs)",
                None,
                prometheus_client::metrics::MetricType::Histogram,
            )?;
            for (stage, timing) in s.stages.all() {
                let labels = StageLabels {
                    stage: stage.to_owned(),
                };
                family.encode_family(&labels)?.encode_histogram::<StageLabels>(
                    timing.sum().as_secs_f64(),
                    timing.count(),
                    &timing.buckets(),
                    None,
                )?;
            }
            by_reason(
                &mut encoder,
                "ioto_ingest_dead_letters",
                "Events sent to the dead-letter topic, by reason",
                s.dead_letters(),
            )?;
        }
        if let Some(t) = &self.pipeline.telemetry {
            counter(
                &mut encoder,
                "ioto_telemetry_readings",
                "Device readings stored",
                t.stored.load(Ordering::Relaxed),
            )?;
            by_reason(
                &mut encoder,
                "ioto_telemetry_rejected",
                "Device readings refused, by reason",
                t.rejected(),
            )?;
        }
        Ok(())
    }
}
