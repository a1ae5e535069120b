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

use std::sync::Arc;

use ioto_domain::ports::UsageWriter;
use ioto_domain::usage::Rejection;
use ioto_domain::Result;

/// An event that cannot be counted, for the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Where it came from (`topic/partition/offset`), for people tracing it.
    pub source: String,
    pub rejection: Rejection,
    pub payload: Vec<u8>,
}

/// The count-write-acknowledge protocol every counted ingest kind follows, written once.
///
/// [`Counted::prepare`] counts a batch against the progress so far without writing anything;
/// [`Counted::stage`] marks it as being written, so that a batch prepared meanwhile counts on top
/// of it; the caller writes it with [`Counted::write`] (possibly on another task while the next
/// batch is prepared); once the store has acknowledged, [`Counted::acknowledge`] advances the
/// progress. After a failed or ambiguous write, [`Counted::forget`] drops what the write may have
/// left, and a retry recovers the progress from what the store holds: a write that did land is
/// then recognised, and nothing is counted twice. [`Counted::process`] is the whole protocol for
/// one batch.
#[async_trait::async_trait]
pub trait Counted: Send {
    /// A batch counted and ready to write.
    type Prepared: Default + Send + Sync + 'static;
    /// What a batch did: written, already counted, dead letters.
    type Outcome: Default + Send;

    /// Counts `batch` (source, payload) against the progress so far, including a batch being
    /// written; writes nothing.
    async fn prepare(&mut self, batch: &[(String, Vec<u8>)]) -> Result<Self::Prepared>;
    /// Marks `prepared` as being written.
    fn stage(&mut self, prepared: &Self::Prepared);
    /// Writes `prepared` to the usage store.
    async fn write(usage: &dyn UsageWriter, prepared: &Self::Prepared) -> Result<()>;
    /// The store acknowledged `prepared`: its progress becomes the progress.
    fn acknowledge(&mut self, prepared: Self::Prepared) -> Self::Outcome;
    /// A write failed or may not have landed: forgets what it staged, to be recovered from the
    /// store.
    fn forget(&mut self);
    /// Where [`Counted::process`] writes.
    fn usage(&self) -> Arc<dyn UsageWriter>;

    /// Counts, writes and acknowledges one batch.
    async fn process(&mut self, batch: &[(String, Vec<u8>)]) -> Result<Self::Outcome> {
        let prepared = self.prepare(batch).await?;
        self.stage(&prepared);
        if let Err(e) = Self::write(&*self.usage(), &prepared).await {
            self.forget();
            return Err(e);
        }
        Ok(self.acknowledge(prepared))
    }
}
