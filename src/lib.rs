//! The `ioto` binary as a library: CLI, configuration, auth, HTTP and the wiring of adapters to
//! ports. Tests build the same [`app::App`] the binary serves.

pub mod admin;
pub mod app;
pub mod auth;
pub mod bench;
pub mod bench_bare;
pub mod bench_fleet;
pub mod bench_ingest;
pub mod cli;
pub mod config;
pub mod demo;
pub mod engines;
pub mod http;
pub mod imports;
pub mod metrics;
pub mod pipeline;
pub mod realtime;
pub mod scheduler;
pub mod session;
pub mod simulate;
pub mod telemetry;
