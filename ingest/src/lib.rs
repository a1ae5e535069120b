#![doc = include_str!("../README.md")]

mod budget;
pub mod device_simulator;
pub mod in_process;
pub mod kafka;
mod kafka_log;
mod poll_wait;
pub mod simulator;
pub mod stages;
pub mod telemetry;
pub mod worker;

pub use in_process::InProcessBus;
pub use kafka::{KafkaBus, KafkaConfig};
