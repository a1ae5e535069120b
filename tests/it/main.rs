//! Integration tests against real engines (Postgres, ClickHouse, a Kafka-protocol broker, MQTT)
//! and the embedded adapters. One binary, one module per area.
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod advice;
mod alerts;
mod alerts_forecast;
mod alerts_instances;
mod alerts_telemetry;
mod analytics;
mod api_keys;
mod auth;
mod auth_keys;
mod billing_api;
mod browser;
mod cli;
mod console;
mod console_advice;
mod console_alerts;
mod console_api_keys;
mod console_dashboard_forecast;
mod console_forecasts;
mod console_sessions;
mod contracts;
mod exports;
mod fleet;
mod forecasts;
mod hardening;
mod http;
mod ingest;
mod limits;
mod live;
mod mfa;
mod pipeline;
mod quota_import;
mod quota_pools;
mod quotas;
mod rate_cards_api;
mod rating;
mod rating_late;
mod rls;
mod roles;
mod sessions;
mod simulate;
mod tenancy;
mod usage;
mod users;

/// The ingest worker's stages, in the order an event passes them, as `/metrics` and
/// `ioto-bench ingest` must name them.
const INGEST_STAGES: [&str; 8] = [
    "in_broker",
    "poll",
    "lookup",
    "count",
    "write",
    "visible",
    "commit",
    "counted",
];
