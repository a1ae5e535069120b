//! Beside the server: operator tasks, the demo and simulators (the benchmarks are the
//! `ioto-bench` binary, in `bench/`).

pub mod admin;
pub mod demo;
pub mod demo_billing;
pub mod demo_history;
pub mod remote;
pub mod simulate;
pub mod simulate_history;
