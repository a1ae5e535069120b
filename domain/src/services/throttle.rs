//! Failed-login throttling: after too many wrong passwords for one e-mail within a window, further
//! attempts for it are refused with `RATE_LIMITED` until the window passes; the same, with a
//! higher limit, per client address, so that a spray of random e-mails from one place (which the
//! per-e-mail limit never sees twice) is stopped too. Kept per server instance (a distributed
//! limiter comes with the rate-limit work).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct LoginThrottle {
    max_failures: u32,
    /// Failures allowed per client address (several users may share one, behind a NAT).
    max_per_address: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(10, Duration::from_secs(15 * 60))
    }
}

impl LoginThrottle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            max_per_address: max_failures.saturating_mul(5),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn key(email: &str) -> String {
        format!("e:{}", email.trim().to_lowercase())
    }

    fn address_key(addr: IpAddr) -> String {
        format!("a:{addr}")
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, Instant)>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Some((wait, why))` when attempts for `email`, or from `addr`, are currently refused.
    pub fn blocked(&self, email: &str, addr: Option<IpAddr>) -> Option<(Duration, &'static str)> {
        let mut map = self.map();
        let mut check = |key: String, max: u32| {
            let (count, since) = *map.get(&key)?;
            let elapsed = since.elapsed();
            if elapsed >= self.window {
                map.remove(&key);
                return None;
            }
            (count >= max).then(|| self.window - elapsed)
        };
        if let Some(wait) = check(Self::key(email), self.max_failures) {
            return Some((wait, "for this e-mail"));
        }
        let addr = addr?;
        check(Self::address_key(addr), self.max_per_address).map(|wait| (wait, "from this address"))
    }

    pub fn failed(&self, email: &str, addr: Option<IpAddr>) {
        let mut map = self.map();
        // Bound memory under a spray of random e-mails: forget expired entries first.
        if map.len() > 100_000 {
            let window = self.window;
            map.retain(|_, (_, since)| since.elapsed() < window);
        }
        let keys = std::iter::once(Self::key(email)).chain(addr.map(Self::address_key));
        for key in keys {
            map.entry(key).or_insert((0, Instant::now())).0 += 1;
        }
    }

    /// A successful login forgets the e-mail's failures (not the address's: one good account must
    /// not reset the count of a spray).
    pub fn succeeded(&self, email: &str) {
        self.map().remove(&Self::key(email));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_and_success_resets() {
        let t = LoginThrottle::new(2, Duration::from_secs(60));
        t.failed("A@x.io", None);
        assert!(t.blocked("a@x.io", None).is_none());
        t.failed("a@x.io", None);
        assert!(t.blocked("a@x.io", None).is_some());
        assert!(
            t.blocked("b@x.io", None).is_none(),
            "other e-mails are unaffected"
        );
        t.succeeded("a@x.io");
        assert!(t.blocked("a@x.io", None).is_none());
    }

    #[test]
    fn the_window_expires() {
        let t = LoginThrottle::new(1, Duration::from_millis(1));
        t.failed("a@x.io", None);
        std::thread::sleep(Duration::from_millis(5));
        assert!(t.blocked("a@x.io", None).is_none());
    }

    #[test]
    fn a_spray_of_random_e_mails_from_one_address_is_stopped() {
        let t = LoginThrottle::new(2, Duration::from_secs(60));
        let (spray, other): (IpAddr, IpAddr) = ("192.0.2.7".parse().unwrap(), "192.0.2.8".parse().unwrap());
        for n in 0..10 {
            assert!(t.blocked(&format!("u{n}@x.io"), Some(spray)).is_none());
            t.failed(&format!("u{n}@x.io"), Some(spray));
        }
        let (_, why) = t
            .blocked("fresh@x.io", Some(spray))
            .expect("the address is blocked");
        assert_eq!(why, "from this address");
        assert!(
            t.blocked("fresh@x.io", Some(other)).is_none(),
            "other addresses are unaffected"
        );
    }
}
