//! The telemetry-source port on two engines.
//!
//! ```text
//!  devices / simulator ──publish──► source ──subscribe(group)──► telemetry ingest ──store──► ack
//!       MqttTelemetry: rumqttc; QoS 1 both ways, `$share/{group}/ioto/devices/+/telemetry`,
//!                      manual acknowledgements (PUBACK after the reading is stored)
//!  InProcessTelemetry: one bounded queue per group, shared by the group's subscribers
//! ```
//!
//! Both pass `tests/it/contracts/telemetry.rs`.

mod config;
mod in_process;
mod mqtt;

pub use config::MqttConfig;
pub use in_process::InProcessTelemetry;
pub use mqtt::MqttTelemetry;
