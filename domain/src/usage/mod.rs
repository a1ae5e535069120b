//! Usage: event contracts of data sessions and CDRs, radio access types, the network catalogue,
//! and the arithmetic that turns cumulative session counters into usage deltas.

pub mod delta;
pub mod events;
pub mod networks;
pub mod rat;
pub mod session;
pub mod telemetry;

pub use delta::{counted_update, step, SessionProgress, Step, UsageDelta};
pub use events::{Cdr, EventWindow, Rejection, RequestType, SessionRollup, CONTRACT_VERSION, MAX_COUNTER};
pub use networks::{Network, Networks};
pub use rat::RadioAccessType;
pub use session::{period_start, Granularity, SessionKey, SessionUpdate};
pub use telemetry::{telemetry_topic, TelemetryReading, TELEMETRY_FILTER};
