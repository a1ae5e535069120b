//! One contract suite per port, run against every adapter.

mod bus;
mod directory;
mod fleet;
mod telemetry;
mod usage;
