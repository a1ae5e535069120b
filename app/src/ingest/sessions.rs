//! Session rollups: parsed, attributed to their SIM's owner, stepped against the session's progress
//! and written once (see the module above for the whole path).

use self::stored_sessions::{SessionFilter, SESSION_FILTER_BYTES};
use super::*;
use chrono::Utc;
use ioto_domain::ports::{Fleet, SessionKey, SessionUpdate, UsageWriter};
use ioto_domain::usage::{
    counted_update, step, EventWindow, Rejection, RequestType, SessionProgress, SessionRollup, Step,
};
use ioto_domain::Result;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

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

/// What the worker knows of the sessions the usage store holds (see [`self::stored_sessions`]).
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
}

#[async_trait::async_trait]
impl Counted for SessionIngest {
    type Prepared = PreparedSessions;
    type Outcome = BatchOutcome;

    /// Counts a batch against the progress so far, including the batch being written (if any),
    /// without writing anything.
    async fn prepare(&mut self, batch: &[(String, Vec<u8>)]) -> Result<PreparedSessions> {
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
    fn stage(&mut self, prepared: &PreparedSessions) {
        self.pending.clone_from(&prepared.local);
        self.remember_stored(prepared.local.keys());
    }

    async fn write(usage: &dyn UsageWriter, prepared: &PreparedSessions) -> Result<()> {
        usage.write_session_updates(&prepared.updates).await
    }

    /// The store acknowledged the staged batch: its progress becomes the known progress.
    fn acknowledge(&mut self, prepared: PreparedSessions) -> BatchOutcome {
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

    /// Forgets cached session progress: after a rebalance another worker may have counted the
    /// same sessions, and after a failed write the store may or may not hold a batch, so
    /// progress is recovered from the store again.
    fn forget(&mut self) {
        self.progress.clear();
        self.pending.clear();
        self.forget_stored();
    }

    fn usage(&self) -> Arc<dyn UsageWriter> {
        Arc::clone(&self.usage)
    }
}
