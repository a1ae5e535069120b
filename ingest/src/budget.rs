//! A budget of bytes shared by a producing thread and a consuming task: the producer waits while
//! what is in flight would exceed the limit, so a buffer between them is bounded by bytes and
//! not only by its count of messages.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

#[derive(Debug)]
pub struct ByteBudget {
    limit: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

impl ByteBudget {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Takes `bytes` from the budget, waiting while they do not fit. A message larger than the
    /// whole budget is let through once nothing else is in flight, so it is never stuck. Gives up
    /// after `patience` (returns `false`) so the caller can check whether it should stop.
    pub fn take(&self, bytes: usize, patience: Duration) -> bool {
        let used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut used, timeout) = self
            .freed
            .wait_timeout_while(used, patience, |u| *u > 0 && *u + bytes > self.limit)
            .unwrap_or_else(PoisonError::into_inner);
        if timeout.timed_out() && *used > 0 && *used + bytes > self.limit {
            return false;
        }
        *used += bytes;
        true
    }

    /// Returns `bytes` taken earlier.
    pub fn give(&self, bytes: usize) {
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        *used = used.saturating_sub(bytes);
        self.freed.notify_all();
    }

    #[cfg(test)]
    fn used(&self) -> usize {
        *self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_producer_waits_until_the_consumer_frees_bytes() {
        let budget = Arc::new(ByteBudget::new(100));
        assert!(budget.take(60, Duration::from_millis(10)));
        // 60 + 50 > 100: this one has to wait, and gives up when nobody frees anything.
        assert!(!budget.take(50, Duration::from_millis(50)));
        assert_eq!(budget.used(), 60);
        let b = Arc::clone(&budget);
        let freer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            b.give(60);
        });
        let started = Instant::now();
        assert!(budget.take(50, Duration::from_secs(5)));
        assert!(started.elapsed() >= Duration::from_millis(80), "it did not wait");
        assert_eq!(budget.used(), 50);
        freer.join().unwrap();
    }

    #[test]
    fn a_message_larger_than_the_budget_passes_alone() {
        let budget = ByteBudget::new(100);
        assert!(budget.take(500, Duration::from_millis(10)));
        assert!(!budget.take(1, Duration::from_millis(10)));
        budget.give(500);
        assert!(budget.take(1, Duration::from_millis(10)));
    }
}
