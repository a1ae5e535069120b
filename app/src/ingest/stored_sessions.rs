//! Which sessions the usage store may hold, so that counting asks the store only for those.
//!
//! Counting a rollup needs its session's progress so far. A session this worker has not seen may
//! have been counted before (by this worker before a restart, or by the member that owned the
//! partition before a rebalance), so its progress used to be asked of the store — for every new
//! session, on the path of every event: a lookup as long as the write itself on a slow machine.
//!
//! A Bloom filter of every session key the store holds answers "certainly not stored" for most
//! new sessions without asking. It is built by reading the store's session keys once (when the
//! worker joins, after a rebalance or a failed write, and when it has taken in as many keys as it
//! was sized for), and every session the worker counts is added before its batch is written —
//! so a key the filter has never seen was never written by anyone owning the partition since the
//! read. While a filter is being built, keys counted meanwhile go into a second filter of the
//! same size that is merged into it (the read may or may not see their writes), and every
//! unknown session is asked of the store as before. A "may be stored" answer (stored, or a
//! false positive: about 1 % at capacity) is asked of the store.

use std::hash::{BuildHasher, Hasher};

use ioto_domain::ports::SessionKey;

/// Bits per key at capacity: with [`HASHES`] probes, about 1 % false positives.
const BITS_PER_KEY: usize = 10;
/// Probes per key.
const HASHES: usize = 7;

/// Default size of a worker's filter: 4 MiB, about 3.4 million sessions at 1 % false
/// positives. While a filter is built a second one of the same size takes the keys counted
/// meanwhile.
pub const SESSION_FILTER_BYTES: usize = 4 * 1024 * 1024;

/// A Bloom filter of session keys (SIM and session id).
#[derive(Clone)]
pub struct SessionFilter {
    words: Vec<u64>,
    /// Bits − 1 (the number of bits is a power of two).
    mask: u64,
    /// Keys inserted (with repeats).
    inserted: usize,
    hasher: std::hash::RandomState,
}

impl std::fmt::Debug for SessionFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SessionFilter({} bytes, {} keys)",
            self.words.len() * 8,
            self.inserted
        )
    }
}

impl SessionFilter {
    /// A filter of at most `bytes` (rounded down to a power of two, at least 64 bytes).
    pub fn with_bytes(bytes: usize) -> Self {
        let bits = (bytes.max(64) * 8).next_power_of_two();
        let bits = if bits / 8 > bytes.max(64) { bits / 2 } else { bits };
        Self {
            words: vec![0; bits / 64],
            mask: bits as u64 - 1,
            inserted: 0,
            hasher: std::hash::RandomState::new(),
        }
    }

    /// An empty filter of the same size and hashing (to be merged into this one).
    pub fn empty_like(&self) -> Self {
        Self {
            words: vec![0; self.words.len()],
            mask: self.mask,
            inserted: 0,
            hasher: self.hasher.clone(),
        }
    }

    /// The bytes its bits take.
    pub fn bytes(&self) -> usize {
        self.words.len() * 8
    }

    /// Keys it was sized for (about 1 % false positives at that many).
    pub fn capacity(&self) -> usize {
        self.words.len() * 64 / BITS_PER_KEY
    }

    /// Keys inserted so far (a key inserted twice counts twice).
    pub fn inserted(&self) -> usize {
        self.inserted
    }

    /// Whether it has taken in as many keys as it was sized for.
    pub fn is_full(&self) -> bool {
        self.inserted >= self.capacity()
    }

    fn probes(&self, iccid: &str, session_id: &str) -> [u64; HASHES] {
        let mut h = self.hasher.build_hasher();
        h.write(iccid.as_bytes());
        h.write_u8(0xff);
        h.write(session_id.as_bytes());
        let a = h.finish();
        // Kirsch–Mitzenmacher: the probes are a + i·b for one odd b.
        let b = a.rotate_left(32).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        std::array::from_fn(|i| a.wrapping_add((i as u64).wrapping_mul(b)) & self.mask)
    }

    /// Adds a session (by its SIM and session id, as the store gives them).
    pub fn insert_parts(&mut self, iccid: &str, session_id: &str) {
        for bit in self.probes(iccid, session_id) {
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        self.inserted += 1;
    }

    pub fn insert(&mut self, key: &SessionKey) {
        self.insert_parts(key.iccid.as_str(), &key.session_id);
    }

    /// `false`: the session was never inserted. `true`: it may have been.
    pub fn may_contain(&self, key: &SessionKey) -> bool {
        self.probes(key.iccid.as_str(), &key.session_id)
            .into_iter()
            .all(|bit| self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    /// Adds every key of `other`, a filter made by [`Self::empty_like`] of this one.
    pub fn merge(&mut self, other: &Self) {
        debug_assert_eq!(self.mask, other.mask);
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w |= o;
        }
        self.inserted += other.inserted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ioto_domain::identifiers::Iccid;

    fn key(n: usize) -> SessionKey {
        SessionKey {
            iccid: Iccid::with_check_digit(&format!("8949{:014}", n % 1000)).expect("ICCID"),
            session_id: format!("s-{n}"),
        }
    }

    #[test]
    fn an_inserted_key_is_always_found_and_few_others_are() {
        let mut f = SessionFilter::with_bytes(64 * 1024);
        let cap = f.capacity();
        assert_eq!(f.bytes(), 64 * 1024);
        for n in 0..cap {
            f.insert(&key(n));
        }
        assert!(f.is_full());
        assert!((0..cap).all(|n| f.may_contain(&key(n))), "a false negative");
        let false_positives = (cap..cap * 2).filter(|&n| f.may_contain(&key(n))).count();
        // About 1 % at capacity; 2 % leaves room for chance.
        assert!(
            false_positives * 50 < cap,
            "{false_positives} false positives in {cap}"
        );
    }

    #[test]
    fn a_merged_filter_holds_the_keys_of_both() {
        let mut built = SessionFilter::with_bytes(4096);
        let mut meanwhile = built.empty_like();
        built.insert(&key(1));
        meanwhile.insert(&key(2));
        assert!(!built.may_contain(&key(2)));
        built.merge(&meanwhile);
        assert!(built.may_contain(&key(1)) && built.may_contain(&key(2)));
        assert_eq!(built.inserted(), 2);
    }

    #[test]
    fn the_size_is_a_power_of_two_not_above_the_bytes_asked() {
        assert_eq!(SessionFilter::with_bytes(5000).bytes(), 4096);
        assert_eq!(SessionFilter::with_bytes(4096).bytes(), 4096);
        assert_eq!(SessionFilter::with_bytes(1).bytes(), 64);
    }
}
