//! One contract suite per port, run against every adapter.

mod analytics;
mod billing;
mod bus;
mod directory;
mod export;
mod fleet;
mod jobs;
mod network;
mod notifications;
mod telemetry;
mod usage;
