//! Password-check throttling, shared by every check of a password (`login`, `changePassword`).
//!
//! - **A slot before the hash.** An attempt takes a slot for its e-mail and its client address
//!   before the password is hashed, and gives it back after: a burst of concurrent attempts for
//!   one e-mail is checked a few at a time, and every one of them counts before the next is let
//!   through (checking first and counting after let a burst pass the check together).
//! - **Delays, not locks.** Failures are counted per (e-mail, address) pair: after a few, each
//!   further attempt from that pair waits, twice as long after each failure, up to a cap. Nobody
//!   else is affected, so a stranger cannot lock someone out by guessing their e-mail. Two wider
//!   counts catch what the pair never sees twice: one per address (a spray of e-mails from one
//!   place) and one per e-mail over all addresses (a guess from many places), the latter capped
//!   low so that at worst the real user waits a minute.
//! - A success forgets the pair's failures (not the address's or the e-mail's: one good account
//!   must not reset a spray), and for a day lets the pair through the wider counts: a stranger
//!   keeping an e-mail's count high from elsewhere does not keep its owner out of a place they
//!   signed in from. Counts are forgotten a window after their last failure.
//! - Addresses count by client: an IPv4 address, or an IPv6 address's /64.
//!
//! Kept per server instance (each instance counts the attempts it sees).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How one of the three counts turns failures into waiting.
#[derive(Debug, Clone, Copy)]
struct Rule {
    /// Failures before attempts wait.
    free: u32,
    /// The longest wait.
    cap: Duration,
    /// Attempts being checked at once.
    in_flight: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Pair,
    Email,
    Address,
}

#[derive(Debug, Default)]
struct Count {
    failures: u32,
    last_failure: Option<Instant>,
    not_before: Option<Instant>,
    in_flight: u32,
    /// A pair's last success: for a day, the pair is not held up by the wider counts.
    succeeded_at: Option<Instant>,
}

/// How long a pair that signed in is let through the wider counts (per e-mail, per address):
/// a stranger guessing from elsewhere cannot keep the owner out.
const KNOWN_GOOD: Duration = Duration::from_secs(24 * 3600);

/// Counts are swept (idle ones forgotten) past this many, at most once per [`SWEEP_EVERY`].
const SWEEP_ABOVE: usize = 100_000;
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// What a refusal says, per count.
struct Words {
    pair: &'static str,
    email: &'static str,
    address: &'static str,
    busy: &'static str,
}

const SIGN_IN: Words = Words {
    pair: "too many failed sign-ins for this e-mail from this address",
    email: "too many failed sign-ins for this e-mail",
    address: "too many failed sign-ins from this address",
    busy: "other sign-ins for this e-mail or from this address are being checked",
};

const EMAIL_CHANGE: Words = Words {
    pair: "too many e-mail changes to addresses that cannot be used",
    email: "too many e-mail changes to addresses that cannot be used",
    address: "too many e-mail changes to addresses that cannot be used",
    busy: "another e-mail change of yours is being made",
};

type Key = (Kind, String);

pub struct LoginThrottle {
    pair: Rule,
    email: Rule,
    address: Rule,
    /// The first wait, doubled after each further failure.
    base_delay: Duration,
    /// Counts are forgotten this long after their last failure.
    window: Duration,
    counts: Mutex<HashMap<Key, Count>>,
    last_sweep: Mutex<Instant>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(10, Duration::from_secs(15 * 60))
    }
}

/// Why an attempt may not be checked now, and how long to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub wait: Duration,
    pub why: &'static str,
}

impl Refused {
    /// The sentence a person reads: what is throttled and when to come back.
    pub fn message(&self) -> String {
        let secs = self.wait.as_secs_f64().ceil().max(1.0) as u64;
        let when = if secs < 120 {
            format!("{secs} second(s)")
        } else {
            format!("{} minute(s)", secs.div_ceil(60))
        };
        format!("{}; try again in {when}", self.why)
    }
}

impl LoginThrottle {
    /// Free failures per (e-mail, address) pair, waits up to `window`; counts forgotten `window`
    /// after their last failure.
    pub fn new(free_failures: u32, window: Duration) -> Self {
        Self {
            pair: Rule {
                free: free_failures,
                cap: window,
                in_flight: 4,
            },
            email: Rule {
                free: free_failures.saturating_mul(5),
                cap: Duration::from_secs(60).min(window),
                in_flight: 4,
            },
            address: Rule {
                free: free_failures.saturating_mul(5),
                cap: window,
                in_flight: 16,
            },
            base_delay: Duration::from_secs(1),
            window,
            counts: Mutex::new(HashMap::new()),
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    fn rule(&self, kind: Kind) -> Rule {
        match kind {
            Kind::Pair => self.pair,
            Kind::Email => self.email,
            Kind::Address => self.address,
        }
    }

    fn counts(&self) -> MutexGuard<'_, HashMap<Key, Count>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The client as the counts know it: an IPv4 address (IPv4-mapped IPv6 included), or an
    /// IPv6 address's /64, which one client holds whole (counting single addresses would let it
    /// move to the next one after each wait).
    fn client(addr: IpAddr) -> String {
        match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
            v4 => v4.to_string(),
        }
    }

    fn keys(email: &str, addr: Option<IpAddr>) -> Vec<Key> {
        let email = email.trim().to_lowercase();
        let mut keys = vec![(Kind::Email, email.clone())];
        if let Some(addr) = addr.map(Self::client) {
            keys.push((Kind::Pair, format!("{email}|{addr}")));
            keys.push((Kind::Address, addr));
        }
        keys
    }

    /// Takes a slot to check a password for `email` from `addr`, or says why not and how long
    /// to wait. The slot is given back when the returned attempt is dropped; a failed check is
    /// reported with [`Attempt::failed`] before that.
    pub fn begin(self: &Arc<Self>, email: &str, addr: Option<IpAddr>) -> Result<Attempt, Refused> {
        self.begin_keys(Self::keys(email, addr), &SIGN_IN)
    }

    /// Takes a slot for an e-mail change by `who` that may clash with an address in use: a
    /// clash counts like a failed sign-in of a pair (10 free, then waits doubling to the cap).
    pub fn begin_email_change(self: &Arc<Self>, who: &str) -> Result<Attempt, Refused> {
        self.begin_keys(
            vec![(Kind::Pair, format!("e-mail changes by {who}"))],
            &EMAIL_CHANGE,
        )
    }

    fn begin_keys(self: &Arc<Self>, keys: Vec<Key>, words: &Words) -> Result<Attempt, Refused> {
        let now = Instant::now();
        let mut counts = self.counts();
        let known_good = keys
            .iter()
            .filter(|k| k.0 == Kind::Pair)
            .filter_map(|k| counts.get(k)?.succeeded_at)
            .any(|t| now.duration_since(t) < KNOWN_GOOD);
        for key in &keys {
            let Some(count) = counts.get(key) else { continue };
            let waits = key.0 == Kind::Pair || !known_good;
            if let Some(wait) = count.not_before.and_then(|t| t.checked_duration_since(now)) {
                if waits && !wait.is_zero() {
                    return Err(Refused {
                        wait,
                        why: match key.0 {
                            Kind::Pair => words.pair,
                            Kind::Email => words.email,
                            Kind::Address => words.address,
                        },
                    });
                }
            }
            let rule = self.rule(key.0);
            // At the limit of checks at once, or with checks under way that could be the ones
            // reaching the free failures: the next waits for them.
            if count.in_flight >= rule.in_flight
                || (count.in_flight > 0 && count.failures + count.in_flight >= rule.free)
            {
                return Err(Refused {
                    wait: Duration::from_secs(1),
                    why: words.busy,
                });
            }
        }
        // Bound memory under a spray of random e-mails: forget idle counts, now and then.
        if counts.len() > SWEEP_ABOVE {
            let mut last = self.last_sweep.lock().unwrap_or_else(PoisonError::into_inner);
            if last.elapsed() >= SWEEP_EVERY {
                *last = now;
                let window = self.window;
                counts.retain(|_, c| {
                    c.in_flight > 0
                        || c.last_failure.is_some_and(|t| t.elapsed() < window)
                        || c.succeeded_at.is_some_and(|t| t.elapsed() < KNOWN_GOOD)
                });
            }
        }
        for key in &keys {
            counts.entry(key.clone()).or_default().in_flight += 1;
        }
        Ok(Attempt {
            throttle: Arc::clone(self),
            keys,
        })
    }

    fn release(&self, keys: &[Key], failed: bool) {
        let now = Instant::now();
        let mut counts = self.counts();
        for key in keys {
            let Some(count) = counts.get_mut(key) else {
                continue;
            };
            count.in_flight = count.in_flight.saturating_sub(1);
            if count
                .last_failure
                .is_some_and(|t| now.duration_since(t) >= self.window)
            {
                count.failures = 0;
            }
            if failed {
                count.failures = count.failures.saturating_add(1);
                count.last_failure = Some(now);
                let rule = self.rule(key.0);
                if count.failures >= rule.free {
                    let doublings = (count.failures - rule.free).min(30);
                    let wait = self.base_delay.saturating_mul(1 << doublings).min(rule.cap);
                    count.not_before = Some(now + wait);
                }
            }
            let remembered = count
                .succeeded_at
                .is_some_and(|t| now.duration_since(t) < KNOWN_GOOD);
            if count.in_flight == 0 && count.failures == 0 && !remembered {
                counts.remove(key);
            }
        }
    }

    fn succeeded(&self, keys: &[Key]) {
        let mut counts = self.counts();
        for key in keys.iter().filter(|k| k.0 == Kind::Pair) {
            if let Some(count) = counts.get_mut(key) {
                count.failures = 0;
                count.not_before = None;
                count.succeeded_at = Some(Instant::now());
            }
        }
    }
}

/// A password check holding its slots; dropped, it gives them back.
pub struct Attempt {
    throttle: Arc<LoginThrottle>,
    keys: Vec<Key>,
}

impl Attempt {
    /// The password was wrong: counts against the e-mail, the address and the pair.
    pub fn failed(mut self) {
        let keys = std::mem::take(&mut self.keys);
        self.throttle.release(&keys, true);
    }

    /// The password was right: the pair's failures are forgotten.
    pub fn succeeded(self) {
        self.throttle.succeeded(&self.keys);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.keys.is_empty() {
            self.throttle.release(&self.keys, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn fail(t: &Arc<LoginThrottle>, email: &str, addr: Option<IpAddr>) {
        t.begin(email, addr).unwrap().failed();
    }

    #[test]
    fn a_pair_waits_after_its_free_failures_and_nobody_else_does() {
        let t = Arc::new(LoginThrottle::new(2, Duration::from_secs(600)));
        let (me, stranger) = (ip("192.0.2.1"), ip("192.0.2.2"));
        fail(&t, "A@x.io", stranger);
        fail(&t, "a@x.io", stranger);
        let refused = t.begin("a@x.io", stranger).err().unwrap();
        assert!(
            refused.why.contains("this e-mail from this address"),
            "{refused:?}"
        );
        assert!(
            refused.wait <= Duration::from_secs(1),
            "the first wait is a second: {refused:?}"
        );
        assert!(
            t.begin("a@x.io", me).is_ok(),
            "the owner from elsewhere is not held up"
        );
        assert!(
            t.begin("b@x.io", stranger).is_ok(),
            "other e-mails are not held up"
        );
    }

    #[test]
    fn waits_double_up_to_the_cap() {
        let t = Arc::new(LoginThrottle::new(1, Duration::from_secs(600)));
        let addr = ip("192.0.2.1");
        let mut waits = Vec::new();
        for _ in 0..14 {
            // Past the wait: forget it, as time would.
            t.counts().values_mut().for_each(|c| c.not_before = None);
            fail(&t, "a@x.io", addr);
            let key = (Kind::Pair, "a@x.io|192.0.2.1".to_owned());
            let c = &t.counts()[&key];
            waits.push(
                c.not_before
                    .map_or(0, |nb| nb.duration_since(c.last_failure.unwrap()).as_secs()),
            );
        }
        assert_eq!(&waits[..6], &[1, 2, 4, 8, 16, 32]);
        assert_eq!(*waits.last().unwrap(), 600, "{waits:?}");
    }

    #[test]
    fn a_success_forgets_the_pair() {
        let t = Arc::new(LoginThrottle::new(2, Duration::from_secs(600)));
        let addr = ip("192.0.2.1");
        fail(&t, "a@x.io", addr);
        fail(&t, "a@x.io", addr);
        t.counts().values_mut().for_each(|c| c.not_before = None);
        t.begin("a@x.io", addr).unwrap().succeeded();
        fail(&t, "a@x.io", addr);
        assert!(
            t.begin("a@x.io", addr).is_ok(),
            "one failure after a success is free again"
        );
    }

    #[test]
    fn a_burst_is_checked_a_few_at_a_time() {
        let t = Arc::new(LoginThrottle::new(10, Duration::from_secs(600)));
        let held: Vec<_> = (0..300)
            .filter_map(|_| t.begin("a@x.io", ip("192.0.2.1")).ok())
            .collect();
        assert_eq!(held.len(), 4, "four checks of one e-mail at a time");
        drop(held);
        assert!(
            t.begin("a@x.io", ip("192.0.2.1")).is_ok(),
            "slots come back when dropped"
        );
        // However the checks interleave, no more than the free failures are ever checked.
        let (mut checked, mut pending) = (0, Vec::new());
        for _ in 0..300 {
            if let Ok(a) = t.begin("a@x.io", ip("192.0.2.1")) {
                checked += 1;
                pending.push(a);
            }
            if pending.len() == 4 {
                pending.remove(0).failed();
            }
        }
        assert_eq!(checked, 10, "checked: {checked}");
    }

    #[test]
    fn a_spray_from_one_address_and_a_guess_from_many_are_slowed() {
        let t = Arc::new(LoginThrottle::new(2, Duration::from_secs(600)));
        for n in 0..10 {
            fail(&t, &format!("u{n}@x.io"), ip("192.0.2.7"));
        }
        let refused = t.begin("fresh@x.io", ip("192.0.2.7")).err().unwrap();
        assert!(refused.why.contains("from this address"), "{refused:?}");
        assert!(t.begin("fresh@x.io", ip("192.0.2.8")).is_ok());

        for n in 0..10 {
            fail(&t, "target@x.io", ip(&format!("198.51.100.{n}")));
        }
        let refused = t.begin("target@x.io", ip("203.0.113.1")).err().unwrap();
        assert!(
            refused.why == "too many failed sign-ins for this e-mail",
            "{refused:?}"
        );
        assert!(
            refused.wait <= Duration::from_secs(60),
            "at most a minute: {refused:?}"
        );
    }

    #[test]
    fn the_owner_is_let_through_where_they_signed_in_and_ipv6_counts_by_its_64() {
        let t = Arc::new(LoginThrottle::new(2, Duration::from_secs(600)));
        let home = ip("192.0.2.1");
        t.begin("a@x.io", home).unwrap().succeeded();
        for n in 0..10 {
            fail(&t, "a@x.io", ip(&format!("198.51.100.{n}")));
        }
        assert!(
            t.begin("a@x.io", ip("203.0.113.9")).is_err(),
            "the e-mail waits elsewhere"
        );
        assert!(t.begin("a@x.io", home).is_ok(), "not where its owner signed in");

        for n in 0..2 {
            fail(&t, "b@x.io", ip(&format!("2001:db8:1:2::{n}")));
        }
        let refused = t.begin("b@x.io", ip("2001:db8:1:2::ffff")).err().unwrap();
        assert!(refused.why.contains("from this address"), "{refused:?}");
        assert!(t.begin("b@x.io", ip("2001:db8:1:3::1")).is_ok(), "another /64");
    }

    #[test]
    fn messages_name_seconds_or_minutes() {
        let r = |s| Refused {
            wait: Duration::from_secs(s),
            why: "x",
        };
        assert_eq!(r(1).message(), "x; try again in 1 second(s)");
        assert_eq!(r(600).message(), "x; try again in 10 minute(s)");
    }
}
