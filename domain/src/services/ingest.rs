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
//! stored sessions says the store may hold it ([`crate::services::stored_sessions`]): a new
//! session costs no read. Progress lives in a cache that is only advanced after the usage store has
//! acknowledged the write. After a failed or ambiguous write the cache forgets the batch's
//! sessions, so a retry recovers them from what the store actually holds — a write that did land
//! is then recognised, and nothing is counted twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::identifiers::Iccid;
use crate::ports::{CdrRecord, Fleet, SessionKey, SessionUpdate, TelemetryStore, UsageWriter};
use chrono::Utc;

use crate::services::stored_sessions::{SessionFilter, SESSION_FILTER_BYTES};
use crate::usage::{
    counted_update, step, Cdr, EventWindow, Rejection, RequestType, SessionProgress, SessionRollup, Step,
    TelemetryReading,
};
use crate::{CustomerId, DeviceId, Result, Scope, TenantId};

/// An event that cannot be counted, for the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Where it came from (`topic/partition/offset`), for people tracing it.
    pub source: String,
    pub rejection: Rejection,
    pub payload: Vec<u8>,
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Updates written (including keep-alives that counted zero bytes).
    pub written: usize,
    /// Redeliveries recognised and skipped.
    pub already_counted: usize,
    pub dead: Vec<DeadLetter>,
    /// The session updates written (for live views).
    pub counted: Vec<SessionUpdate>,
}

impl BatchOutcome {
    /// Adds what a later part of the same batch did.
    pub fn merge(&mut self, other: Self) {
        self.written += other.written;
        self.already_counted += other.already_counted;
        self.dead.extend(other.dead);
        self.counted.extend(other.counted);
    }
}

/// Most bytes the cached SIM owners may hold, by the estimate of [`Owners::bytes`]; beyond it
/// the cache starts over (owners are looked up again, in one query per batch). At about 100
/// bytes a SIM this keeps some 160,000 SIMs. A worker has two such caches (session rollups and
/// CDRs), and the hash table's capacity grows in powers of two, so the memory behind them can
/// reach about 3.5 times this.
pub const MAX_OWNERS_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Which tenant and sub-customer each SIM belongs to, looked up in batches and cached, bounded
/// by the bytes it holds.
pub struct Owners {
    fleet: Arc<dyn Fleet>,
    known: HashMap<Iccid, (TenantId, Option<CustomerId>)>,
    bytes: usize,
    limit: usize,
}

impl Owners {
    pub fn new(fleet: Arc<dyn Fleet>) -> Self {
        Self::with_limit(fleet, MAX_OWNERS_CACHE_BYTES)
    }

    /// Owners cached up to `limit` bytes.
    pub fn with_limit(fleet: Arc<dyn Fleet>, limit: usize) -> Self {
        Self {
            fleet,
            known: HashMap::new(),
            bytes: 0,
            limit,
        }
    }

    /// What one cached owner holds: the entry, the ICCID's characters and the table's control
    /// byte and spare capacity (about one slot in eight).
    fn entry_bytes(iccid: &Iccid) -> usize {
        let slot = std::mem::size_of::<(Iccid, (TenantId, Option<CustomerId>))>();
        slot + slot / 8 + 1 + iccid.as_str().len()
    }

    /// The bytes the cache holds now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Looks up, in one query, the SIMs of `iccids` not cached yet. When they would take the
    /// cache past its limit, it starts over first (a batch's own SIMs are always all there
    /// afterwards, whatever the limit).
    pub async fn load<'a>(&mut self, iccids: impl Iterator<Item = &'a Iccid>) -> Result<()> {
        let wanted: Vec<&Iccid> = iccids.collect();
        let mut unknown: Vec<Iccid> = wanted
            .iter()
            .filter(|i| !self.known.contains_key(**i))
            .map(|i| (*i).clone())
            .collect();
        unknown.sort();
        unknown.dedup();
        if unknown.is_empty() {
            return Ok(());
        }
        let adding: usize = unknown.iter().map(Self::entry_bytes).sum();
        if self.bytes + adding > self.limit && !self.known.is_empty() {
            self.clear();
            unknown = wanted.into_iter().cloned().collect();
            unknown.sort();
            unknown.dedup();
        }
        for sim in self.fleet.sims_by_iccid(Scope::Platform, &unknown).await? {
            let bytes = Self::entry_bytes(&sim.iccid);
            if self
                .known
                .insert(sim.iccid, (sim.tenant_id, sim.customer_id))
                .is_none()
            {
                self.bytes += bytes;
            }
        }
        Ok(())
    }

    /// The owner of a SIM loaded before; `None` for an ICCID no tenant has.
    pub fn get(&self, iccid: &Iccid) -> Option<(TenantId, Option<CustomerId>)> {
        self.known.get(iccid).copied()
    }

    /// Forgets every owner (after assignments may have changed).
    pub fn clear(&mut self) {
        self.known.clear();
        self.known.shrink_to(0);
        self.bytes = 0;
    }
}

/// Most bytes the acknowledged session progress may hold in memory; beyond it the cache starts
/// over (progress is then recovered from the store, which is always correct, only slower). At
/// about 200 bytes a session this keeps some 300,000 sessions.
pub const MAX_PROGRESS_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Session progress by session, with the bytes it holds counted so the cache is bounded by
/// memory, not by a count of sessions whose ids may be of any length.
#[derive(Debug, Default)]
pub struct ProgressCache {
    entries: HashMap<SessionKey, SessionProgress>,
    bytes: usize,
}

impl ProgressCache {
    /// What one entry holds: the key and value themselves, their strings, and the hash table's
    /// control byte and spare capacity (counted as one more pointer).
    pub fn entry_bytes(key: &SessionKey, progress: &SessionProgress) -> usize {
        std::mem::size_of::<SessionKey>()
            + std::mem::size_of::<SessionProgress>()
            + key.iccid.as_str().len()
            + key.session_id.capacity()
            + progress.session_id.capacity()
            + 1
            + std::mem::size_of::<usize>()
    }

    pub fn get(&self, key: &SessionKey) -> Option<&SessionProgress> {
        self.entries.get(key)
    }

    pub fn contains_key(&self, key: &SessionKey) -> bool {
        self.entries.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes the cache holds, as counted by [`Self::entry_bytes`].
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Starts the cache over when `additional` more bytes would take it past `limit`, so that
    /// entries inserted next all stay until they are used — keeping the entries of `keep`: the
    /// sessions of the batch being counted, whose progress counting needs (a session whose
    /// progress went missing would be counted again from zero).
    pub fn make_room(&mut self, additional: usize, limit: usize, keep: &HashSet<SessionKey>) {
        if self.bytes + additional > limit {
            self.entries.retain(|k, _| keep.contains(k));
            self.entries.shrink_to_fit();
            self.bytes = self.entries.iter().map(|(k, p)| Self::entry_bytes(k, p)).sum();
        }
    }

    pub fn insert(&mut self, key: SessionKey, progress: SessionProgress) {
        self.bytes += Self::entry_bytes(&key, &progress);
        if let Some((old_key, old)) = self.entries.remove_entry(&key) {
            self.bytes -= Self::entry_bytes(&old_key, &old);
        }
        self.entries.insert(key, progress);
    }

    pub fn remove(&mut self, key: &SessionKey) {
        if let Some((old_key, old)) = self.entries.remove_entry(key) {
            self.bytes -= Self::entry_bytes(&old_key, &old);
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.entries.shrink_to(0);
        self.bytes = 0;
    }
}

/// What the worker knows of the sessions the usage store holds (see [`crate::services::stored_sessions`]).
enum Stored {
    /// Nothing: every session not cached is asked of the store.
    Unknown,
    /// Being read from the store. `current`, when there is one, answers meanwhile (a full
    /// filter being replaced); `meanwhile` takes the keys counted during the read.
    Building {
        task: tokio::task::JoinHandle<Result<SessionFilter>>,
        meanwhile: SessionFilter,
        current: Option<SessionFilter>,
    },
    /// Answering. `read` keys came from the store; when the filter is full and as many more
    /// again as half its capacity were counted since, it is read afresh (the store's retention
    /// may have dropped sessions meanwhile).
    Ready { filter: SessionFilter, read: usize },
}

/// After a failed read of the stored sessions, the next try waits this long.
const FILTER_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

pub struct SessionIngest {
    usage: Arc<dyn UsageWriter>,
    owners: Owners,
    /// Progress as acknowledged by the store, by session (SIM and session id: two SIMs may use
    /// the same session id).
    progress: ProgressCache,
    /// Most bytes `progress` may hold.
    progress_limit: usize,
    /// Progress of the batch being written (staged, not yet acknowledged).
    pending: HashMap<SessionKey, SessionProgress>,
    window: EventWindow,
    /// Sessions the store may hold.
    stored: Stored,
    /// No read of the stored sessions starts before then (after a failed one).
    next_read: std::time::Instant,
}

/// A batch of session rollups counted and ready to write.
#[derive(Debug, Default)]
pub struct PreparedSessions {
    pub updates: Vec<SessionUpdate>,
    local: HashMap<SessionKey, SessionProgress>,
    terminated: Vec<SessionKey>,
    pub already_counted: usize,
    pub dead: Vec<DeadLetter>,
    /// Time spent waiting for the store's answers (SIM owners, session progress).
    pub lookup: std::time::Duration,
    /// Sessions not cached whose progress was asked of the store.
    pub looked_up: usize,
    /// Sessions not cached that the filter showed were never stored (not asked).
    pub known_new: usize,
}

impl SessionIngest {
    pub fn new(usage: Arc<dyn UsageWriter>, fleet: Arc<dyn Fleet>) -> Self {
        Self {
            usage,
            owners: Owners::new(fleet),
            progress: ProgressCache::default(),
            progress_limit: MAX_PROGRESS_CACHE_BYTES,
            pending: HashMap::new(),
            window: EventWindow::default(),
            stored: Stored::Unknown,
            next_read: std::time::Instant::now(),
        }
    }

    /// Whether the filter of stored sessions is in use (built and answering).
    pub fn filter_ready(&mut self) -> bool {
        self.poll_filter();
        matches!(
            self.stored,
            Stored::Ready { .. } | Stored::Building { current: Some(_), .. }
        )
    }

    /// Drops the filter of stored sessions: it is read from the store again.
    fn forget_stored(&mut self) {
        if let Stored::Building { task, .. } = &self.stored {
            task.abort();
        }
        self.stored = Stored::Unknown;
        self.next_read = std::time::Instant::now();
    }

    /// Takes a finished read of the stored sessions, and starts one when there is no filter or
    /// the filter is full.
    fn poll_filter(&mut self) {
        let now = std::time::Instant::now();
        let state = std::mem::replace(&mut self.stored, Stored::Unknown);
        self.stored = match state {
            Stored::Building {
                task,
                meanwhile,
                current,
            } if task.is_finished() => {
                match futures::FutureExt::now_or_never(task) {
                    Some(Ok(Ok(mut filter))) => {
                        let read = filter.inserted();
                        filter.merge(&meanwhile);
                        Stored::Ready { filter, read }
                    }
                    failed => {
                        let error = match failed {
                            Some(Ok(Err(e))) => e.to_string(),
                            Some(Err(e)) => e.to_string(),
                            _ => "unfinished".to_owned(),
                        };
                        tracing::warn!(%error, "reading the stored sessions failed; every new session is looked up meanwhile");
                        drop(meanwhile);
                        self.next_read = now + FILTER_RETRY;
                        match current {
                            // A full filter stays right (it took every key counted meanwhile);
                            // it only answers "may be stored" more often.
                            Some(filter) => Stored::Ready { filter, read: 0 },
                            None => Stored::Unknown,
                        }
                    }
                }
            }
            Stored::Unknown if now >= self.next_read => self.build_filter(None),
            Stored::Ready { filter, read }
                if now >= self.next_read
                    && filter.is_full()
                    && filter.inserted() - read >= filter.capacity() / 2 =>
            {
                self.build_filter(Some(filter))
            }
            other => other,
        };
    }

    /// Starts reading the stored sessions into a new filter. The batch being written goes into
    /// the filter of keys counted meanwhile (the read may not see it).
    fn build_filter(&self, current: Option<SessionFilter>) -> Stored {
        let mut built = SessionFilter::with_bytes(SESSION_FILTER_BYTES);
        let mut meanwhile = built.empty_like();
        for key in self.pending.keys() {
            meanwhile.insert(key);
        }
        let usage = Arc::clone(&self.usage);
        let task = tokio::spawn(async move {
            usage
                .visit_stored_sessions(&mut |iccid, session| built.insert_parts(iccid, session))
                .await?;
            Ok(built)
        });
        Stored::Building {
            task,
            meanwhile,
            current,
        }
    }

    /// `false` when the session was certainly never stored.
    fn may_be_stored(&self, key: &SessionKey) -> bool {
        match &self.stored {
            Stored::Ready { filter: f, .. } | Stored::Building { current: Some(f), .. } => f.may_contain(key),
            _ => true,
        }
    }

    /// Records sessions about to be written in the filter (and in the one of keys counted
    /// during a read).
    fn remember_stored<'a>(&mut self, keys: impl Iterator<Item = &'a SessionKey>) {
        match &mut self.stored {
            Stored::Ready { filter, .. } => keys.for_each(|k| filter.insert(k)),
            Stored::Building {
                meanwhile, current, ..
            } => {
                for k in keys {
                    meanwhile.insert(k);
                    if let Some(f) = current {
                        f.insert(k);
                    }
                }
            }
            Stored::Unknown => {}
        }
    }

    /// Bounds the acknowledged progress kept in memory to `bytes` (the default:
    /// [`MAX_PROGRESS_CACHE_BYTES`]).
    pub fn with_progress_limit(mut self, bytes: usize) -> Self {
        self.progress_limit = bytes;
        self
    }

    /// Bytes of acknowledged session progress held in memory.
    pub fn progress_bytes(&self) -> usize {
        self.progress.bytes()
    }

    /// Accepts events within `window` of now (the default: 35 days back, 10 minutes ahead).
    pub fn with_window(mut self, window: EventWindow) -> Self {
        self.window = window;
        self
    }

    /// Forgets cached SIM owners (after assignments change, or periodically).
    pub fn forget_owners(&mut self) {
        self.owners.clear();
    }

    /// The usage store batches are written to.
    pub fn usage(&self) -> Arc<dyn UsageWriter> {
        Arc::clone(&self.usage)
    }

    /// Forgets cached session progress: after a rebalance another worker may have counted the
    /// same sessions, and after a failed write the store may or may not hold a batch, so
    /// progress is recovered from the store again.
    pub fn forget_progress(&mut self) {
        self.progress.clear();
        self.pending.clear();
        self.forget_stored();
    }

    /// Processes one batch of `(source, payload)` in order: prepares, writes and acknowledges it.
    /// On `Err` the batch may or may not have landed; the caller retries the same batch later and
    /// what landed is then recognised.
    pub async fn process(&mut self, batch: &[(String, Vec<u8>)]) -> Result<BatchOutcome> {
        let prepared = self.prepare(batch).await?;
        self.stage(&prepared);
        if let Err(e) = self.usage.write_session_updates(&prepared.updates).await {
            self.forget_progress();
            return Err(e);
        }
        Ok(self.acknowledge(prepared))
    }

    /// Counts a batch against the progress so far, including the batch being written (if any),
    /// without writing anything.
    pub async fn prepare(&mut self, batch: &[(String, Vec<u8>)]) -> Result<PreparedSessions> {
        let mut out = PreparedSessions::default();
        let mut rollups = Vec::with_capacity(batch.len());
        let now = Utc::now();
        for (source, payload) in batch {
            match SessionRollup::from_json(payload).and_then(|r| {
                self.window.check("event_timestamp", r.event_timestamp, now)?;
                Ok(r)
            }) {
                Ok(r) => rollups.push((source, payload, r)),
                Err(rejection) => out.dead.push(DeadLetter {
                    source: source.clone(),
                    rejection,
                    payload: payload.clone(),
                }),
            }
        }
        let looking_up = std::time::Instant::now();
        self.owners.load(rollups.iter().map(|(_, _, r)| &r.iccid)).await?;
        // Progress of sessions not known here, recovered from the store in one query, except
        // for those the filter shows were never stored.
        let mut missing: Vec<SessionKey> = rollups
            .iter()
            .map(|(_, _, r)| r.key())
            .filter(|k| !self.progress.contains_key(k) && !self.pending.contains_key(k))
            .collect();
        missing.sort();
        missing.dedup();
        self.poll_filter();
        let unknown = missing.len();
        missing.retain(|k| self.may_be_stored(k));
        out.looked_up = missing.len();
        out.known_new = unknown - missing.len();
        if !missing.is_empty() {
            let recovered: Vec<(SessionKey, SessionProgress)> = self
                .usage
                .session_states(&missing)
                .await?
                .into_iter()
                .map(|s| {
                    (
                        s.key(),
                        SessionProgress {
                            session_id: s.session_id,
                            started_at: s.started_at,
                            last_event: s.event_time,
                            bytes_in: s.total_in,
                            bytes_out: s.total_out,
                        },
                    )
                })
                .collect();
            let size = recovered
                .iter()
                .map(|(k, p)| ProgressCache::entry_bytes(k, p))
                .sum();
            let batch: HashSet<SessionKey> = rollups.iter().map(|(_, _, r)| r.key()).collect();
            self.progress.make_room(size, self.progress_limit, &batch);
            for (key, progress) in recovered {
                self.progress.insert(key, progress);
            }
        }
        out.lookup = looking_up.elapsed();
        for (source, payload, r) in rollups {
            let Some((tenant_id, customer_id)) = self.owners.get(&r.iccid) else {
                out.dead.push(DeadLetter {
                    source: source.clone(),
                    rejection: Rejection::UnknownIccid {
                        iccid: r.iccid.to_string(),
                    },
                    payload: payload.clone(),
                });
                continue;
            };
            let key = r.key();
            let previous = out
                .local
                .get(&key)
                .or_else(|| self.pending.get(&key))
                .or_else(|| self.progress.get(&key));
            match step(previous, &r) {
                Ok(Step::AlreadyCounted) => out.already_counted += 1,
                Ok(Step::Count { delta, progress }) => {
                    if r.request_type == RequestType::Terminate {
                        out.terminated.push(key.clone());
                    }
                    out.updates
                        .push(counted_update(tenant_id, customer_id, &r, &delta, &progress));
                    out.local.insert(key, progress);
                }
                Err(rejection) => out.dead.push(DeadLetter {
                    source: source.clone(),
                    rejection,
                    payload: payload.clone(),
                }),
            }
        }
        Ok(out)
    }

    /// Marks a prepared batch as being written: the next batch is counted on top of it.
    pub fn stage(&mut self, prepared: &PreparedSessions) {
        self.pending.clone_from(&prepared.local);
        self.remember_stored(prepared.local.keys());
    }

    /// The store acknowledged the staged batch: its progress becomes the known progress.
    pub fn acknowledge(&mut self, prepared: PreparedSessions) -> BatchOutcome {
        self.pending.clear();
        let size = prepared
            .local
            .iter()
            .map(|(k, p)| ProgressCache::entry_bytes(k, p))
            .sum();
        // What this batch counted replaces what the cache held of its sessions.
        self.progress
            .make_room(size, self.progress_limit, &HashSet::new());
        for (key, progress) in prepared.local {
            self.progress.insert(key, progress);
        }
        // A terminated session's later redeliveries are recognised from the store.
        for key in &prepared.terminated {
            self.progress.remove(key);
        }
        BatchOutcome {
            written: prepared.updates.len(),
            already_counted: prepared.already_counted,
            dead: prepared.dead,
            counted: prepared.updates,
        }
    }
}

/// What one batch of CDRs did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdrOutcome {
    pub written: usize,
    /// CDRs stored before (redeliveries, or duplicates from mediation) and skipped.
    pub already_counted: usize,
    pub dead: Vec<DeadLetter>,
}

impl CdrOutcome {
    /// Adds what a later part of the same batch did.
    pub fn merge(&mut self, other: Self) {
        self.written += other.written;
        self.already_counted += other.already_counted;
        self.dead.extend(other.dead);
    }
}

/// CDR ingest: billing records stored once each, by `cdr_id`.
///
/// A CDR id already stored (asked of the store for every batch), being written in the batch
/// before, or seen earlier in the batch is skipped, so redeliveries and duplicate records from
/// mediation bill nothing twice.
pub struct CdrIngest {
    usage: Arc<dyn UsageWriter>,
    owners: Owners,
    /// Ids of the batch being written.
    pending: HashSet<String>,
    window: EventWindow,
}

/// A batch of CDRs checked and ready to write.
#[derive(Debug, Default)]
pub struct PreparedCdrs {
    pub records: Vec<CdrRecord>,
    pub already_counted: usize,
    pub dead: Vec<DeadLetter>,
    /// Time spent waiting for the store's answers (SIM owners, CDRs already stored).
    pub lookup: std::time::Duration,
}

impl CdrIngest {
    pub fn new(usage: Arc<dyn UsageWriter>, fleet: Arc<dyn Fleet>) -> Self {
        Self {
            usage,
            owners: Owners::new(fleet),
            pending: HashSet::new(),
            window: EventWindow::default(),
        }
    }

    /// Accepts records whose start and end are within `window` of now.
    pub fn with_window(mut self, window: EventWindow) -> Self {
        self.window = window;
        self
    }

    pub fn forget_owners(&mut self) {
        self.owners.clear();
    }

    /// Forgets the batch being written (it failed, or the assignment changed).
    pub fn forget_pending(&mut self) {
        self.pending.clear();
    }

    /// Processes one batch of `(source, payload)`: prepares, writes and acknowledges it. On `Err`
    /// the caller retries the same batch and what did land is then recognised.
    pub async fn process(&mut self, batch: &[(String, Vec<u8>)]) -> Result<CdrOutcome> {
        let prepared = self.prepare(batch).await?;
        self.stage(&prepared);
        if !prepared.records.is_empty() {
            if let Err(e) = self.usage.write_cdrs(&prepared.records).await {
                self.forget_pending();
                return Err(e);
            }
        }
        Ok(self.acknowledge(prepared))
    }

    /// Checks a batch and leaves out what is stored or being written, without writing anything.
    pub async fn prepare(&mut self, batch: &[(String, Vec<u8>)]) -> Result<PreparedCdrs> {
        let mut out = PreparedCdrs::default();
        let mut cdrs = Vec::with_capacity(batch.len());
        let now = Utc::now();
        for (source, payload) in batch {
            match Cdr::from_json(payload).and_then(|c| {
                self.window.check("start", c.start, now)?;
                self.window.check("end", c.end, now)?;
                Ok(c)
            }) {
                Ok(c) => cdrs.push((source, payload, c)),
                Err(rejection) => out.dead.push(DeadLetter {
                    source: source.clone(),
                    rejection,
                    payload: payload.clone(),
                }),
            }
        }
        let looking_up = std::time::Instant::now();
        self.owners.load(cdrs.iter().map(|(_, _, c)| &c.iccid)).await?;
        let ids: Vec<String> = cdrs.iter().map(|(_, _, c)| c.cdr_id.clone()).collect();
        let mut seen: HashSet<String> = if ids.is_empty() {
            HashSet::new()
        } else {
            self.usage.known_cdrs(&ids).await?.into_iter().collect()
        };
        out.lookup = looking_up.elapsed();
        seen.extend(self.pending.iter().cloned());
        for (source, payload, c) in cdrs {
            let Some((tenant_id, customer_id)) = self.owners.get(&c.iccid) else {
                out.dead.push(DeadLetter {
                    source: source.clone(),
                    rejection: Rejection::UnknownIccid {
                        iccid: c.iccid.to_string(),
                    },
                    payload: payload.clone(),
                });
                continue;
            };
            if !seen.insert(c.cdr_id.clone()) {
                out.already_counted += 1;
                continue;
            }
            out.records.push(CdrRecord {
                tenant_id,
                customer_id,
                cdr_id: c.cdr_id,
                iccid: c.iccid,
                start: c.start,
                end: c.end,
                mcc_mnc: c.mcc_mnc,
                bytes_in: c.bytes_in,
                bytes_out: c.bytes_out,
                rating_group: c.rating_group,
            });
        }
        Ok(out)
    }

    /// Marks a prepared batch as being written.
    pub fn stage(&mut self, prepared: &PreparedCdrs) {
        self.pending = prepared.records.iter().map(|r| r.cdr_id.clone()).collect();
    }

    /// The store acknowledged the staged batch.
    pub fn acknowledge(&mut self, prepared: PreparedCdrs) -> CdrOutcome {
        self.pending.clear();
        CdrOutcome {
            written: prepared.records.len(),
            already_counted: prepared.already_counted,
            dead: prepared.dead,
        }
    }
}

/// What one batch of device readings did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelemetryOutcome {
    /// Readings stored, with their device's tenant (for live views).
    pub stored: Vec<(TenantId, TelemetryReading)>,
    pub rejected: Vec<DeadLetter>,
}

/// Device telemetry: readings checked, matched to their device's tenant, stored.
pub struct TelemetryIngest {
    usage: Arc<dyn TelemetryStore>,
    fleet: Arc<dyn Fleet>,
    tenants: HashMap<DeviceId, TenantId>,
    window: EventWindow,
}

impl TelemetryIngest {
    pub fn new(usage: Arc<dyn TelemetryStore>, fleet: Arc<dyn Fleet>) -> Self {
        Self {
            usage,
            fleet,
            tenants: HashMap::new(),
            window: EventWindow::default(),
        }
    }

    /// Accepts readings taken within `window` of now.
    pub fn with_window(mut self, window: EventWindow) -> Self {
        self.window = window;
        self
    }

    /// Processes `(topic, payload)` pairs as received from MQTT. The device the topic names must
    /// be the one the reading names. On `Err` nothing was stored for sure; the caller retries.
    pub async fn process(&mut self, batch: &[(String, Vec<u8>)]) -> Result<TelemetryOutcome> {
        let mut out = TelemetryOutcome::default();
        let mut readings = Vec::with_capacity(batch.len());
        let now = Utc::now();
        for (topic, payload) in batch {
            let reject = |rejection| DeadLetter {
                source: topic.clone(),
                rejection,
                payload: payload.clone(),
            };
            match TelemetryReading::from_json(payload).and_then(|r| {
                self.window.check("at", r.at, now)?;
                Ok(r)
            }) {
                Ok(r)
                    if crate::usage::telemetry::topic_device(topic)
                        .is_some_and(|d| d != r.device_id.to_string()) =>
                {
                    out.rejected.push(reject(Rejection::InvalidField {
                        field: "device_id".into(),
                        detail: format!("{} differs from the device the topic {topic} names", r.device_id),
                    }));
                }
                Ok(r) => readings.push((topic, payload, r)),
                Err(rejection) => out.rejected.push(reject(rejection)),
            }
        }
        let mut unknown: Vec<DeviceId> = readings
            .iter()
            .map(|(_, _, r)| r.device_id)
            .filter(|d| !self.tenants.contains_key(d))
            .collect();
        unknown.sort();
        unknown.dedup();
        if !unknown.is_empty() {
            for device in self.fleet.devices_by_id(Scope::Platform, &unknown).await? {
                self.tenants.insert(device.id, device.tenant_id);
            }
        }
        let mut sources = Vec::with_capacity(readings.len());
        for (topic, payload, r) in readings {
            match self.tenants.get(&r.device_id) {
                Some(tenant) => {
                    out.stored.push((*tenant, r));
                    sources.push((topic, payload));
                }
                None => out.rejected.push(DeadLetter {
                    source: topic.clone(),
                    rejection: Rejection::UnknownDevice {
                        device_id: r.device_id.to_string(),
                    },
                    payload: payload.clone(),
                }),
            }
        }
        if out.stored.is_empty() {
            return Ok(out);
        }
        match self.usage.write_telemetry(&out.stored).await {
            Ok(()) => {}
            // The store refused some reading's content: store them one by one, so only the
            // refused ones are dead-lettered (a reading stored twice is still one reading).
            Err(crate::Error::InvalidInput { .. }) => {
                for (reading, (topic, payload)) in std::mem::take(&mut out.stored).into_iter().zip(sources) {
                    match self.usage.write_telemetry(std::slice::from_ref(&reading)).await {
                        Ok(()) => out.stored.push(reading),
                        Err(crate::Error::InvalidInput { field, reason }) => out.rejected.push(DeadLetter {
                            source: topic.clone(),
                            rejection: Rejection::Unstorable {
                                detail: format!("{field}: {reason}"),
                            },
                            payload: payload.clone(),
                        }),
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(iccid: &str, session: &str, bytes_in: u64) -> (SessionKey, SessionProgress) {
        let at = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        (
            SessionKey {
                iccid: Iccid::with_check_digit(iccid).unwrap(),
                session_id: session.into(),
            },
            SessionProgress {
                session_id: session.into(),
                started_at: at,
                last_event: at,
                bytes_in,
                bytes_out: 0,
            },
        )
    }

    #[test]
    fn progress_cache_counts_bytes_replaces_without_double_counting_and_starts_over() {
        let mut cache = ProgressCache::default();
        let (k1, p1) = entry("894900000000000001", "a", 1);
        let one = ProgressCache::entry_bytes(&k1, &p1);
        assert!(one > 100, "an entry holds more than its counters: {one}");
        cache.insert(k1.clone(), p1);
        assert_eq!(cache.bytes(), one);
        let (k1b, p1b) = entry("894900000000000001", "a", 2);
        cache.insert(k1b, p1b);
        assert_eq!(
            (cache.len(), cache.bytes()),
            (1, one),
            "a newer progress replaces the old"
        );
        assert_eq!(cache.get(&k1).unwrap().bytes_in, 2);

        // A long session id costs what it holds.
        let (k2, p2) = entry("894900000000000002", &"x".repeat(1000), 1);
        let two = ProgressCache::entry_bytes(&k2, &p2);
        assert_eq!(
            two - one,
            2 * 999,
            "the id is held twice: in the key and in the progress"
        );
        let none = HashSet::new();
        cache.make_room(two, 10 * one + two, &none);
        assert_eq!(cache.len(), 1, "room enough: nothing forgotten");
        cache.insert(k2.clone(), p2);
        assert_eq!(cache.bytes(), one + two);
        cache.remove(&k2);
        assert_eq!(cache.bytes(), one);

        cache.make_room(two, one + two - 1, &none);
        assert!(
            cache.is_empty() && cache.bytes() == 0,
            "past the limit the cache starts over"
        );

        // Starting over keeps the sessions of the batch being counted.
        let (k3, p3) = entry("894900000000000003", "c", 1);
        cache.insert(k1.clone(), entry("894900000000000001", "a", 3).1);
        cache.insert(k3.clone(), p3);
        let three = cache.bytes();
        cache.make_room(two, three + two - 1, &HashSet::from([k3.clone()]));
        assert_eq!(cache.len(), 1, "past the limit only the batch's sessions stay");
        assert!(cache.get(&k3).is_some() && cache.get(&k1).is_none());
        assert_eq!(cache.bytes(), three - one, "what stays is counted");
    }
}
