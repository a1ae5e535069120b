//! Each session's counters so far, cached within a byte budget and advanced only after the usage
//! store acknowledged the write.

use ioto_domain::ports::SessionKey;
use ioto_domain::usage::SessionProgress;
use std::collections::{HashMap, HashSet};

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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::{TimeZone, Utc};
    use ioto_domain::identifiers::Iccid;
    use ioto_domain::ports::SessionKey;
    use ioto_domain::usage::SessionProgress;

    use super::*;

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
