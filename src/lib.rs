//! The `ioto` binary as a library, by concern:
//!
//! - [`server`]: what `ioto serve` runs — the app (wiring of services and schema), the HTTP
//!   surface, auth, realtime fan-out, metrics, the in-process ingest pipeline, the scheduler;
//! - [`engines`] and [`config`]: configuration and the choice of adapter behind each port;
//! - [`tooling`]: what operators and developers run beside it — admin tasks, the demo,
//!   simulators and benchmarks;
//! - [`cli`]: the command table tying them together.
//!
//! Tests build the same [`server::App`] the binary serves.

pub mod cli;
pub mod config;
pub mod engines;
pub mod logging;
pub mod server;
pub mod tooling;
