//! Push coalescing: a burst of commands for one device becomes at most one push per window.
//!
//! A push only wakes the device, which then drains its whole queue, so fifty
//! commands queued for one iPad need one push, not fifty. A push goes out `delay`
//! after the first request for it (so a burst of requests collects into one), and
//! never sooner than `window` after the previous push to the same device; requests
//! that arrive after a push was handed out make one trailing push, so a command
//! queued just after the device checked in is still announced.
//!
//! The coalescer is plain data with explicit time, driven by a background task:
//!
//! ```ignore
//! loop {
//!     let sleep_until = coalescer.next_deadline();
//!     tokio::select! {
//!         Some(device) = rx.recv() => coalescer.add(device, Instant::now()),
//!         _ = sleep_until_or_forever(sleep_until) => {
//!             for device in coalescer.due(Instant::now()) { /* push it */ }
//!         }
//!     }
//! }
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One device's state.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// When a push was first asked for since the last one went out.
    pending_since: Option<Instant>,
    /// When the last push for this device was handed out.
    last_sent: Option<Instant>,
}

impl Entry {
    /// When the pending push may go out.
    fn deadline(&self, delay: Duration, window: Duration) -> Option<Instant> {
        let since = self.pending_since? + delay;
        Some(match self.last_sent {
            Some(sent) => since.max(sent + window),
            None => since,
        })
    }
}

/// Merges push requests per device; see the module docs.
#[derive(Debug, Clone)]
pub struct Coalescer {
    delay: Duration,
    window: Duration,
    devices: HashMap<String, Entry>,
}

impl Coalescer {
    /// A coalescer that collects requests for `delay` and hands out each device at
    /// most once per `window`.
    pub fn new(delay: Duration, window: Duration) -> Self {
        Self {
            delay,
            window,
            devices: HashMap::new(),
        }
    }

    /// Asks for a push to `device_id`.
    pub fn add(&mut self, device_id: String, now: Instant) {
        let entry = self.devices.entry(device_id).or_default();
        entry.pending_since.get_or_insert(now);
    }

    /// The devices to push now, each once, earliest first; they count as pushed at `now`.
    pub fn due(&mut self, now: Instant) -> Vec<String> {
        let (delay, window) = (self.delay, self.window);
        let mut due: Vec<(Instant, String)> = Vec::new();
        self.devices.retain(|device, entry| {
            if let Some(deadline) = entry.deadline(delay, window) {
                if deadline <= now {
                    due.push((deadline, device.clone()));
                    entry.pending_since = None;
                    entry.last_sent = Some(now);
                }
            }
            // A device whose window has passed with nothing pending needs no memory.
            entry.pending_since.is_some() || entry.last_sent.is_some_and(|t| t + window > now)
        });
        due.sort();
        due.into_iter().map(|(_, device)| device).collect()
    }

    /// When the next pending push becomes due (possibly already past); `None` when nothing is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.devices
            .values()
            .filter_map(|entry| entry.deadline(self.delay, self.window))
            .min()
    }

    /// Number of devices waiting for a push.
    pub fn pending(&self) -> usize {
        self.devices
            .values()
            .filter(|entry| entry.pending_since.is_some())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(5);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn fifty_commands_in_a_burst_become_one_push() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(WINDOW, WINDOW);
        for i in 0..50 {
            c.add("ipad-1".into(), t0 + ms(i));
            // The service asks after every request; nothing is due inside the window.
            assert!(c.due(t0 + ms(i)).is_empty());
        }
        assert_eq!(c.pending(), 1);
        assert_eq!(c.next_deadline(), Some(t0 + WINDOW));
        assert_eq!(c.due(t0 + WINDOW), ["ipad-1"]);
        assert!(c.due(t0 + WINDOW + ms(1)).is_empty());
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn commands_after_a_push_wait_for_one_trailing_push() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(WINDOW, WINDOW);
        c.add("ipad-1".into(), t0);
        assert_eq!(c.due(t0 + WINDOW), ["ipad-1"]);

        // The teacher adds three more apps a second later.
        for i in 0..3 {
            c.add(
                "ipad-1".into(),
                t0 + WINDOW + Duration::from_secs(1) + ms(i),
            );
        }
        assert_eq!(
            c.next_deadline(),
            Some(t0 + WINDOW * 2 + Duration::from_secs(1))
        );
        assert!(c.due(t0 + WINDOW * 2).is_empty());
        assert_eq!(c.due(t0 + WINDOW * 2 + Duration::from_secs(1)), ["ipad-1"]);
        assert!(c.due(t0 + WINDOW * 5).is_empty());
    }

    #[test]
    fn devices_come_out_in_deadline_order_and_independently() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(WINDOW, WINDOW);
        c.add("b".into(), t0 + ms(2));
        c.add("a".into(), t0 + ms(1));
        c.add("c".into(), t0 + ms(3));
        assert_eq!(c.due(t0 + WINDOW + ms(2)), ["a", "b"]);
        assert_eq!(c.next_deadline(), Some(t0 + WINDOW + ms(3)));
        assert_eq!(c.due(t0 + WINDOW + ms(3)), ["c"]);
    }

    #[test]
    fn a_short_delay_collects_a_burst_and_the_window_limits_the_rate() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(ms(25), WINDOW);
        c.add("ipad-1".into(), t0);
        c.add("ipad-1".into(), t0 + ms(10));
        assert!(c.due(t0 + ms(24)).is_empty());
        assert_eq!(c.due(t0 + ms(25)), ["ipad-1"]);
        c.add("ipad-1".into(), t0 + ms(100));
        assert!(
            c.due(t0 + ms(200)).is_empty(),
            "not again within the window"
        );
        assert_eq!(c.due(t0 + ms(25) + WINDOW), ["ipad-1"]);
    }

    #[test]
    fn never_more_than_once_per_window_under_a_steady_stream() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(WINDOW, WINDOW);
        let mut pushed = Vec::new();
        // A command every 100 ms for 30 s, and a tick every 10 ms.
        for tick in 0..3000u64 {
            let now = t0 + ms(tick * 10);
            if tick % 10 == 0 {
                c.add("ipad-1".into(), now);
            }
            if !c.due(now).is_empty() {
                pushed.push(now);
            }
        }
        assert!(pushed.windows(2).all(|w| w[1] - w[0] >= WINDOW));
        assert_eq!(pushed.len(), 5); // at 5, 10, 15, 20, 25 s
    }
}
