//! Failed-login throttling: after too many wrong passwords for one e-mail within a window, further
//! attempts for it are refused with `RATE_LIMITED` until the window passes. Kept per server
//! instance (a distributed limiter comes with the rate-limit work).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct LoginThrottle {
    max_failures: u32,
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
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn key(email: &str) -> String {
        email.trim().to_lowercase()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, Instant)>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Some(wait)` when attempts for `email` are currently refused.
    pub fn blocked(&self, email: &str) -> Option<Duration> {
        let mut map = self.map();
        let key = Self::key(email);
        let (count, since) = *map.get(&key)?;
        let elapsed = since.elapsed();
        if elapsed >= self.window {
            map.remove(&key);
            return None;
        }
        (count >= self.max_failures).then(|| self.window - elapsed)
    }

    pub fn failed(&self, email: &str) {
        let mut map = self.map();
        // Bound memory under a spray of random e-mails: forget expired entries first.
        if map.len() > 100_000 {
            let window = self.window;
            map.retain(|_, (_, since)| since.elapsed() < window);
        }
        let entry = map.entry(Self::key(email)).or_insert((0, Instant::now()));
        entry.0 += 1;
    }

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
        t.failed("A@x.io");
        assert!(t.blocked("a@x.io").is_none());
        t.failed("a@x.io");
        assert!(t.blocked("a@x.io").is_some());
        assert!(t.blocked("b@x.io").is_none(), "other e-mails are unaffected");
        t.succeeded("a@x.io");
        assert!(t.blocked("a@x.io").is_none());
    }

    #[test]
    fn the_window_expires() {
        let t = LoginThrottle::new(1, Duration::from_millis(1));
        t.failed("a@x.io");
        std::thread::sleep(Duration::from_millis(5));
        assert!(t.blocked("a@x.io").is_none());
    }
}
