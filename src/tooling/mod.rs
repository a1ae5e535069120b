//! Beside the server: operator tasks, the demo and simulators (the benchmarks are the
//! `ioto-bench` binary, in `bench/`).

pub mod admin;
pub mod demo;
pub mod demo_billing;
pub mod remote;
pub mod simulate;
