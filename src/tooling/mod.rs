//! Beside the server: operator tasks, the demo, simulators and benchmarks.

pub mod admin;
pub mod bench;
pub mod bench_analytics;
pub mod bench_bare;
pub mod bench_bulk;
pub mod bench_cpu;
pub mod bench_exports;
pub mod bench_faults;
pub mod bench_fleet;
pub mod bench_ingest;
pub mod bench_rating;
pub mod demo;
pub mod demo_billing;
pub mod remote;
pub mod simulate;
