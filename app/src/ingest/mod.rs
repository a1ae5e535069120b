//! Session ingest: a batch of rollups from the bus becomes counted session updates, exactly once.
//!
//! ```text
//! payloads ──parse──► rollups ──owner (SIM lookup)──► progress (cache, else recovered from the
//!    │                   │                                usage store) ──step──► updates ──► one write
//!    └─ rejections ──────┴──────────────► dead letters (with the original payload)
//! ```
//!
//! The progress of each session (its counters so far) decides what a rollup adds; a redelivered
//! rollup adds nothing. A session not cached is asked of the store only when the filter of
//! stored sessions says the store may hold it ([`self::stored_sessions`]): a new
//! session costs no read. Progress lives in a cache that is only advanced after the usage store has
//! acknowledged the write. After a failed or ambiguous write the cache forgets the batch's
//! sessions, so a retry recovers them from what the store actually holds — a write that did land
//! is then recognised, and nothing is counted twice.

mod cdrs;
mod owners;
mod progress;
mod sessions;
pub mod stored_sessions;
mod telemetry;

pub use self::cdrs::{CdrIngest, CdrOutcome, PreparedCdrs};
pub use self::owners::{Owners, MAX_OWNERS_CACHE_BYTES};
pub use self::progress::{ProgressCache, MAX_PROGRESS_CACHE_BYTES};
pub use self::sessions::{BatchOutcome, PreparedSessions, SessionIngest};
pub use self::telemetry::{TelemetryIngest, TelemetryOutcome};

use ioto_domain::usage::Rejection;

/// An event that cannot be counted, for the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Where it came from (`topic/partition/offset`), for people tracing it.
    pub source: String,
    pub rejection: Rejection,
    pub payload: Vec<u8>,
}
