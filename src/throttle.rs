//! Attempts that guess (passwords, enrollment links) are throttled per key: after a few
//! failures each further attempt waits longer (doubling, up to a ceiling), answered 429
//! with `Retry-After`. Kept in memory per node: it protects the node's CPU and slows
//! guessing; a success clears the key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A limit: free attempts, then a growing wait.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Failures before waiting starts.
    pub free: u32,
    /// The first wait.
    pub first: Duration,
    /// The longest wait.
    pub ceiling: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    blocked_until: Instant,
    last: Instant,
}

/// Failure counts per key.
#[derive(Debug, Default)]
pub struct Throttle {
    entries: Mutex<HashMap<String, Entry>>,
}

/// Keys forgotten after this long without a failure.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Keys kept at most (the oldest go first).
const MAX_KEYS: usize = 100_000;

impl Throttle {
    /// Seconds to wait before `key` may try again, if any.
    pub fn wait(&self, key: &str) -> Option<u64> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|e| e.blocked_until > now)
            .map(|e| (e.blocked_until - now).as_secs().max(1))
    }

    /// Records a failure of `key`; returns the wait it now has, if any.
    pub fn fail(&self, key: &str, limit: Limit) -> Option<u64> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_KEYS {
            entries.retain(|_, e| now.duration_since(e.last) < FORGET_AFTER);
        }
        let e = entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            blocked_until: now,
            last: now,
        });
        if now.duration_since(e.last) > FORGET_AFTER {
            e.failures = 0;
        }
        e.failures += 1;
        e.last = now;
        if e.failures <= limit.free {
            return None;
        }
        let doublings = (e.failures - limit.free - 1).min(20);
        let wait = limit
            .first
            .saturating_mul(1u32 << doublings)
            .min(limit.ceiling);
        e.blocked_until = now + wait;
        Some(wait.as_secs().max(1))
    }

    /// Counts one use of `key` against `per_hour` uses per hour (a fixed window that
    /// starts with the first use); returns the seconds to wait once the window is full.
    pub fn count(&self, key: &str, per_hour: u32) -> Option<u64> {
        const WINDOW: Duration = Duration::from_secs(3600);
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_KEYS {
            entries.retain(|_, e| now.duration_since(e.last) < FORGET_AFTER);
        }
        let e = entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            blocked_until: now + WINDOW,
            last: now,
        });
        // `blocked_until` is the window's end here.
        if e.blocked_until <= now {
            e.failures = 0;
            e.blocked_until = now + WINDOW;
        }
        e.last = now;
        if e.failures >= per_hour {
            return Some((e.blocked_until - now).as_secs().max(1));
        }
        e.failures += 1;
        None
    }

    /// Forgets `key` (a success).
    pub fn clear(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_start_after_the_free_attempts_and_double_up_to_the_ceiling() {
        let t = Throttle::default();
        let limit = Limit {
            free: 3,
            first: Duration::from_secs(2),
            ceiling: Duration::from_secs(10),
        };
        assert_eq!(t.fail("a", limit), None);
        assert_eq!(t.fail("a", limit), None);
        assert_eq!(t.fail("a", limit), None);
        assert!(t.wait("a").is_none());
        assert_eq!(t.fail("a", limit), Some(2));
        assert!(t.wait("a").is_some());
        assert_eq!(t.fail("a", limit), Some(4));
        assert_eq!(t.fail("a", limit), Some(8));
        assert_eq!(t.fail("a", limit), Some(10));
        assert!(t.wait("b").is_none(), "keys are separate");
        for _ in 0..3 {
            assert_eq!(t.count("rate", 3), None);
        }
        assert!(
            t.count("rate", 3).is_some_and(|s| s > 3000),
            "the rest of the hour"
        );
        t.clear("a");
        assert!(t.wait("a").is_none());
    }
}
