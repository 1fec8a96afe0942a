//! Evaluates a schedule at an instant: is the assignment desired, should it go, when is the next window and the next boundary.
//!
//! The rules:
//! - A *window* is one occurrence of a weekly, date or range entry, turned into UTC
//!   by the DST rule of [`super::local`]. Windows that overlap or touch merge into one.
//! - With `exclude_holidays`, weekly and range windows do not occur on a closed
//!   day of the [`Calendar`]; one-off dates always occur. Windows never cross
//!   local midnight (whole days end at the next midnight), so "on a closed day" is exact.
//! - *Desired* at `t`: `t` lies in `[start − lead, end)` of a window, or the
//!   schedule is `always`.
//! - *Remove now*: `after = remove`, not desired, and some window has already
//!   ended (before the first window nothing is removed).
//! - *Next boundary*: the next instant after `t` at which desired or remove-now
//!   can change — the start of the next lead time or the end of the current
//!   desired stretch. Closures only show up by moving those instants.
//!
//! Horizon: the search looks at most [`HORIZON_DAYS`] local days ahead of `t` (and
//! behind it, for "has a window ended" and the start of a window that runs across
//! midnight). It jumps over empty days and whole closures instead of walking day by
//! day, so a pass costs O(windows near `t`). A window further away than the horizon
//! is not reported as `scheduled_next`; `next_boundary` is then a re-check instant
//! at the horizon, never later than the true next change. Evaluation allocates one
//! small buffer and never fails or panics.

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeDelta, Utc};
use serde::Serialize;

use super::calendar::Calendar;
use super::local::{local_date, midnight, to_utc};
use super::spec::{AfterWindow, Schedule, TimeRange, WindowSchedule};

/// How many local days evaluation searches ahead of (and behind) `t`.
pub const HORIZON_DAYS: u64 = 400;

/// A window or stretch in UTC: `[start, end)`.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// What the reconciler needs to know about one assignment at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// Inside a window or its lead time (or the schedule is `always`): install.
    pub desired: bool,
    /// Start (not lead start) of the next window that starts after `t`.
    pub scheduled_next: Option<DateTime<Utc>>,
    /// A window has ended, `after = remove`, and nothing is active or within lead time: remove.
    pub remove_now: bool,
    /// Next instant after `t` at which `desired` or `remove_now` can change; `None` when
    /// nothing will ever change. Set the timer here (the minimum over all assignments).
    pub next_boundary: Option<DateTime<Utc>>,
    /// The (merged) window containing `t`, without lead time.
    pub active_window: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Evaluation {
    const ALWAYS: Self = Self {
        desired: true,
        scheduled_next: None,
        remove_now: false,
        next_boundary: None,
        active_window: None,
    };

    const NOTHING: Self = Self {
        desired: false,
        scheduled_next: None,
        remove_now: false,
        next_boundary: None,
        active_window: None,
    };
}

impl Schedule {
    /// The assignment's state at `t` (UTC) under the school's calendar.
    pub fn evaluate(&self, t: DateTime<Utc>, calendar: &Calendar) -> Evaluation {
        match self {
            Schedule::Always => Evaluation::ALWAYS,
            Schedule::Windows(w) => Scan::new(w, calendar).evaluate(t),
        }
    }

    /// Merged windows overlapping `[from, to)` (whole, not clipped), closures removed,
    /// without lead time; at most [`HORIZON_DAYS`] days after `from`. `always` gives `[from, to)`.
    pub fn windows_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        calendar: &Calendar,
    ) -> Vec<Span> {
        if to <= from {
            return Vec::new();
        }
        let Schedule::Windows(w) = self else {
            return vec![(from, to)];
        };
        let scan = Scan::new(w, calendar);
        let day = local_date(w.timezone(), from);
        let mut fw = Forward::new(&scan, day);
        let mut out = Vec::new();
        while let Some(win) = fw.next_merged() {
            if win.0 >= to {
                break;
            }
            if win.1 > from {
                out.push(win);
            }
        }
        if let Some(first) = out.first_mut() {
            first.0 = scan.extend_back(first.0, &mut fw.buf);
        }
        out
    }

    /// Start of the first window that starts after `t` (for serving the earliest lesson
    /// first when licences are short). `always` has no window starts.
    pub fn next_window_start_after(
        &self,
        t: DateTime<Utc>,
        calendar: &Calendar,
    ) -> Option<DateTime<Utc>> {
        let Schedule::Windows(w) = self else {
            return None;
        };
        let scan = Scan::new(w, calendar);
        let mut fw = Forward::new(&scan, local_date(w.timezone(), t));
        std::iter::from_fn(|| fw.next_merged())
            .map(|win| win.0)
            .find(|start| *start > t)
    }

    /// Whether a window is active at `t` or starts within `within` after it (licence grace period).
    pub fn has_window_within(
        &self,
        t: DateTime<Utc>,
        within: TimeDelta,
        calendar: &Calendar,
    ) -> bool {
        let Schedule::Windows(w) = self else {
            return true;
        };
        let Some(limit) = t.checked_add_signed(within) else {
            return false;
        };
        let scan = Scan::new(w, calendar);
        let mut fw = Forward::new(&scan, local_date(w.timezone(), t));
        std::iter::from_fn(|| fw.next_merged())
            .find(|win| win.1 > t)
            .is_some_and(|win| win.0 <= limit)
    }
}

/// A window schedule read against one calendar.
struct Scan<'a> {
    s: &'a WindowSchedule,
    calendar: &'a Calendar,
    /// Bit `n` set: a weekly window on weekday `n` (Monday = 0).
    weekdays: u8,
}

impl<'a> Scan<'a> {
    fn new(s: &'a WindowSchedule, calendar: &'a Calendar) -> Self {
        let weekdays = s
            .weekly()
            .iter()
            .fold(0u8, |m, w| m | 1 << w.weekday.num_days_from_monday());
        Self {
            s,
            calendar,
            weekdays,
        }
    }

    fn evaluate(&self, t: DateTime<Utc>) -> Evaluation {
        let Some(today) = local_date(self.s.timezone(), t) else {
            return Evaluation::NOTHING;
        };
        let lead = self.s.lead().duration();
        let mut fw = Forward::new(self, Some(today));
        let mut ended_before = false;
        let mut active = None;
        let mut scheduled_next = None;
        // The first stretch [start − lead, end) of merged windows that ends after t.
        let mut stretch: Option<Span> = None;
        while let Some(win) = fw.next_merged() {
            if win.1 <= t {
                ended_before = true;
                continue;
            }
            if win.0 <= t {
                active = Some(win);
            } else if scheduled_next.is_none() {
                scheduled_next = Some(win.0);
            }
            let lead_start = win
                .0
                .checked_sub_signed(lead)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            match &mut stretch {
                None => stretch = Some((lead_start, win.1)),
                Some(s) if lead_start <= s.1 => s.1 = s.1.max(win.1),
                // A gap: the stretch is complete, and this window (after t) gave scheduled_next.
                Some(_) => break,
            }
        }
        let (desired, next_boundary) = match stretch {
            Some((start, end)) if start <= t => (true, Some(end)),
            Some((start, _)) => (false, Some(start)),
            // Windows may exist beyond the horizon: re-check there.
            None if fw.cut_off => (
                false,
                fw.last_day.and_then(|d| midnight(self.s.timezone(), d)),
            ),
            None => (false, None),
        };
        let active_window = active.map(|(start, end)| (self.extend_back(start, &mut fw.buf), end));
        let remove_now = self.s.after() == AfterWindow::Remove
            && !desired
            && (ended_before || self.any_window_before(today, &mut fw.buf));
        Evaluation {
            desired,
            scheduled_next,
            remove_now,
            next_boundary,
            active_window,
        }
    }

    /// Whether weekly and range windows may occur on `day` (not a closed day).
    fn recurring_on(&self, day: NaiveDate) -> bool {
        !(self.s.exclude_holidays() && self.calendar.is_closed(day))
    }

    /// The windows of local `day` in UTC, sorted by start; empty ones (a span that
    /// fell entirely into a DST gap) dropped.
    fn day_windows(&self, day: NaiveDate, out: &mut Vec<Span>) {
        out.clear();
        if !self.s.is_valid_on(day) {
            return;
        }
        if self.recurring_on(day) {
            let weekday = day.weekday();
            for w in self.s.weekly().iter().filter(|w| w.weekday == weekday) {
                out.extend(self.window(day, Some(w.time)));
            }
            for r in self.s.ranges().iter().filter(|r| r.covers(day)) {
                out.extend(self.window(day, r.time()));
            }
        }
        let dates = self.s.dates();
        let first = dates.partition_point(|d| d.date < day);
        for d in dates[first..].iter().take_while(|d| d.date == day) {
            out.extend(self.window(day, d.time));
        }
        out.sort_unstable();
    }

    /// One window on `day`: `time`, or the whole day up to the next midnight.
    fn window(&self, day: NaiveDate, time: Option<TimeRange>) -> Option<Span> {
        let tz = self.s.timezone();
        let (start, end) = match time {
            Some(t) => (
                to_utc(tz, day.and_time(t.start()))?,
                to_utc(tz, day.and_time(t.end()))?,
            ),
            None => (midnight(tz, day)?, midnight(tz, day.succ_opt()?)?),
        };
        (start < end).then_some((start, end))
    }

    /// The first day >= `from` on which some window may occur; jumps over closures
    /// and empty stretches. `None` when the schedule has no more days.
    fn next_day(&self, from: NaiveDate) -> Option<NaiveDate> {
        let from = self.s.valid_from().map_or(from, |f| from.max(f));
        let dates = self.s.dates();
        let date = dates
            .get(dates.partition_point(|d| d.date < from))
            .map(|d| d.date);
        let day = match (self.next_recurring(from), date) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        self.s.valid_until().is_none_or(|u| day <= u).then_some(day)
    }

    fn next_recurring(&self, mut from: NaiveDate) -> Option<NaiveDate> {
        // Each round either answers or jumps past one closure span.
        loop {
            let weekly = (self.weekdays != 0)
                .then(|| next_weekday(from, self.weekdays))
                .flatten();
            let range = self
                .s
                .ranges()
                .iter()
                .filter(|r| r.to() >= from)
                .map(|r| r.from().max(from))
                .min();
            let day = match (weekly, range) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b)?,
            };
            if self.s.valid_until().is_some_and(|u| day > u) {
                return None;
            }
            match self
                .s
                .exclude_holidays()
                .then(|| self.calendar.span_containing(day))
                .flatten()
            {
                Some((_, last)) => from = last.succ_opt()?,
                None => return Some(day),
            }
        }
    }

    /// The last day <= `from` on which some window may occur (mirror of `next_day`).
    fn prev_day(&self, from: NaiveDate) -> Option<NaiveDate> {
        let from = self.s.valid_until().map_or(from, |u| from.min(u));
        let dates = self.s.dates();
        let date = dates
            .partition_point(|d| d.date <= from)
            .checked_sub(1)
            .and_then(|i| dates.get(i))
            .map(|d| d.date);
        let day = match (self.prev_recurring(from), date) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => a.or(b)?,
        };
        self.s.valid_from().is_none_or(|f| day >= f).then_some(day)
    }

    fn prev_recurring(&self, mut from: NaiveDate) -> Option<NaiveDate> {
        loop {
            let weekly = (self.weekdays != 0)
                .then(|| prev_weekday(from, self.weekdays))
                .flatten();
            let range = self
                .s
                .ranges()
                .iter()
                .filter(|r| r.from() <= from)
                .map(|r| r.to().min(from))
                .max();
            let day = match (weekly, range) {
                (Some(a), Some(b)) => a.max(b),
                (a, b) => a.or(b)?,
            };
            if self.s.valid_from().is_some_and(|f| day < f) {
                return None;
            }
            match self
                .s
                .exclude_holidays()
                .then(|| self.calendar.span_containing(day))
                .flatten()
            {
                Some((first, _)) => from = first.pred_opt()?,
                None => return Some(day),
            }
        }
    }

    /// Whether a window occurred on some day before `today` (within the horizon).
    fn any_window_before(&self, today: NaiveDate, buf: &mut Vec<Span>) -> bool {
        let floor = today
            .checked_sub_days(Days::new(HORIZON_DAYS))
            .unwrap_or(NaiveDate::MIN);
        let mut from = today.pred_opt();
        while let Some(day) = from.and_then(|d| self.prev_day(d)) {
            if day < floor {
                return false;
            }
            self.day_windows(day, buf);
            if !buf.is_empty() {
                return true;
            }
            from = day.pred_opt();
        }
        false
    }

    /// A merged window starting at a local midnight may continue a window of the
    /// day before (whole-day ranges): follow the chain back to its real start.
    fn extend_back(&self, mut start: DateTime<Utc>, buf: &mut Vec<Span>) -> DateTime<Utc> {
        let tz = self.s.timezone();
        let Some(mut day) = local_date(tz, start) else {
            return start;
        };
        for _ in 0..HORIZON_DAYS {
            if midnight(tz, day) != Some(start) {
                break;
            }
            let Some(prev) = day.pred_opt() else { break };
            self.day_windows(prev, buf);
            // Windows of `prev` end at or before `start`; only the last merged group can touch it.
            match last_merged(buf) {
                Some((s, e)) if e >= start => {
                    start = s;
                    day = prev;
                }
                _ => break,
            }
        }
        start
    }
}

/// The last group of merged windows in a start-sorted list.
fn last_merged(windows: &[Span]) -> Option<Span> {
    let mut groups = windows.iter().copied();
    let mut cur = groups.next()?;
    for w in groups {
        if w.0 <= cur.1 {
            cur.1 = cur.1.max(w.1);
        } else {
            cur = w;
        }
    }
    Some(cur)
}

/// First day >= `from` whose weekday bit is set in `mask` (Monday = bit 0).
fn next_weekday(from: NaiveDate, mask: u8) -> Option<NaiveDate> {
    let base = from.weekday().num_days_from_monday();
    (0..7u32)
        .find(|k| mask & (1 << ((base + k) % 7)) != 0)
        .and_then(|k| from.checked_add_days(Days::new(u64::from(k))))
}

/// Last day <= `from` whose weekday bit is set in `mask`.
fn prev_weekday(from: NaiveDate, mask: u8) -> Option<NaiveDate> {
    let base = from.weekday().num_days_from_monday();
    (0..7u32)
        .find(|k| mask & (1 << ((base + 7 - k) % 7)) != 0)
        .and_then(|k| from.checked_sub_days(Days::new(u64::from(k))))
}

/// Merged windows in time order from a local day on, up to the horizon.
struct Forward<'s, 'a> {
    scan: &'s Scan<'a>,
    /// Next day to look at; `None` once the schedule or the horizon is exhausted.
    next_day: Option<NaiveDate>,
    /// Last day looked at (inclusive); `None` if the horizon overflows the calendar.
    last_day: Option<NaiveDate>,
    /// Windows of the current day, sorted by start (reused; the only allocation).
    buf: Vec<Span>,
    pos: usize,
    /// A window read ahead that did not merge.
    pending: Option<Span>,
    /// The horizon, not the schedule, stopped the search: more windows may follow.
    cut_off: bool,
}

impl<'s, 'a> Forward<'s, 'a> {
    /// Starts at `first_day`; `None` (an instant at the edge of chrono's range) yields nothing.
    fn new(scan: &'s Scan<'a>, first_day: Option<NaiveDate>) -> Self {
        Self {
            scan,
            next_day: first_day,
            last_day: first_day.and_then(|d| d.checked_add_days(Days::new(HORIZON_DAYS))),
            buf: Vec::with_capacity(8),
            pos: 0,
            pending: None,
            cut_off: false,
        }
    }

    /// The next single window in start order.
    fn raw(&mut self) -> Option<Span> {
        loop {
            if let Some(w) = self.buf.get(self.pos) {
                self.pos += 1;
                return Some(*w);
            }
            let day = self.scan.next_day(self.next_day.take()?)?;
            if self.last_day.is_none_or(|last| day > last) {
                self.cut_off = true;
                return None;
            }
            self.scan.day_windows(day, &mut self.buf);
            self.pos = 0;
            self.next_day = day.succ_opt();
        }
    }

    /// The next merged window: overlapping or touching windows become one.
    fn next_merged(&mut self) -> Option<Span> {
        let mut cur = match self.pending.take() {
            Some(w) => w,
            None => self.raw()?,
        };
        while let Some(w) = self.raw() {
            if w.0 <= cur.1 {
                cur.1 = cur.1.max(w.1);
            } else {
                self.pending = Some(w);
                break;
            }
        }
        Some(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Closure;
    use super::*;
    use chrono::NaiveDateTime;
    use chrono_tz::Europe::Berlin;
    use serde_json::{json, Value};

    /// A Berlin wall-clock time ("2026-12-01 08:00") as a UTC instant.
    fn berlin(s: &str) -> DateTime<Utc> {
        to_utc(
            Berlin,
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap(),
        )
        .unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn schedule(v: Value) -> Schedule {
        Schedule::parse_json(&v).unwrap()
    }

    /// Class 7b: Tuesday 08:00–09:30 and Thursday 10:00–11:30, apps an hour early, removed after.
    fn class_7b() -> Value {
        json!({
            "kind": "windows",
            "weekly": [
                {"weekday": "tue", "start": "08:00", "end": "09:30"},
                {"weekday": "thu", "start": "10:00", "end": "11:30"}
            ],
            "valid_from": "2026-11-30",
            "lead_minutes": 60,
            "after": "remove"
        })
    }

    fn weihnachtsferien() -> Calendar {
        Calendar::new(vec![Closure::new(
            "Weihnachtsferien",
            "2026-12-21".parse().unwrap(),
            "2027-01-02".parse().unwrap(),
        )
        .unwrap()])
    }

    #[test]
    fn school_week_of_class_7b() {
        let s = schedule(class_7b());
        let none = Calendar::empty();
        let at = |local: &str| s.evaluate(berlin(local), &none);

        // Monday before the first lesson: nothing to do yet, nothing to remove.
        let e = at("2026-11-30 12:00");
        assert!(!e.desired && !e.remove_now);
        assert_eq!(e.scheduled_next, Some(berlin("2026-12-01 08:00")));
        assert_eq!(e.next_boundary, Some(berlin("2026-12-01 07:00")));

        assert!(!at("2026-12-01 06:59").desired);
        assert_eq!(
            at("2026-12-01 06:59").next_boundary,
            Some(berlin("2026-12-01 07:00"))
        );

        // From 07:00 the apps go out, an hour before the lesson.
        let e = at("2026-12-01 07:00");
        assert!(e.desired && !e.remove_now);
        assert_eq!(e.active_window, None);
        assert_eq!(e.scheduled_next, Some(berlin("2026-12-01 08:00")));
        assert_eq!(e.next_boundary, Some(berlin("2026-12-01 09:30")));

        let e = at("2026-12-01 08:15");
        assert!(e.desired);
        assert_eq!(
            e.active_window,
            Some((berlin("2026-12-01 08:00"), berlin("2026-12-01 09:30")))
        );
        assert_eq!(e.scheduled_next, Some(berlin("2026-12-03 10:00")));

        // 09:30: the lesson is over, the apps are removed until Thursday's lead time.
        let e = at("2026-12-01 09:30");
        assert!(!e.desired && e.remove_now);
        assert_eq!(e.active_window, None);
        assert_eq!(e.next_boundary, Some(berlin("2026-12-03 09:00")));

        let e = at("2026-12-03 09:00");
        assert!(e.desired && !e.remove_now);
        assert_eq!(e.next_boundary, Some(berlin("2026-12-03 11:30")));

        let e = at("2026-12-03 11:30");
        assert!(e.remove_now);
        assert_eq!(e.next_boundary, Some(berlin("2026-12-08 07:00")));

        assert_eq!(
            s.windows_between(
                berlin("2026-11-30 00:00"),
                berlin("2026-12-07 00:00"),
                &none
            ),
            vec![
                (berlin("2026-12-01 08:00"), berlin("2026-12-01 09:30")),
                (berlin("2026-12-03 10:00"), berlin("2026-12-03 11:30")),
            ]
        );
        // Licences: Thursday's lesson starts 48.5 h after Tuesday's ends.
        assert_eq!(
            s.next_window_start_after(berlin("2026-12-01 08:15"), &none),
            Some(berlin("2026-12-03 10:00"))
        );
        assert!(!s.has_window_within(berlin("2026-12-01 09:30"), TimeDelta::hours(48), &none));
        assert!(s.has_window_within(berlin("2026-12-01 09:30"), TimeDelta::hours(49), &none));
        assert!(s.has_window_within(berlin("2026-12-01 09:29"), TimeDelta::zero(), &none));
    }

    #[test]
    fn after_keep_never_removes() {
        let mut v = class_7b();
        v["after"] = json!("keep");
        let e = schedule(v).evaluate(berlin("2026-12-01 09:30"), &Calendar::empty());
        assert!(!e.desired && !e.remove_now);
        assert_eq!(e.next_boundary, Some(berlin("2026-12-03 09:00")));
    }

    #[test]
    fn spring_forward_2027_03_28_sunday_0230_to_0330() {
        let s = schedule(json!({
            "kind": "windows",
            "weekly": [{"weekday": "sun", "start": "02:30", "end": "03:30"}],
            "lead_minutes": 60, "after": "remove"
        }));
        let none = Calendar::empty();
        // 02:30 does not exist that night: the window opens at 03:00 CEST (01:00 UTC).
        assert_eq!(
            s.windows_between(
                utc("2027-03-20T00:00:00Z"),
                utc("2027-03-29T00:00:00Z"),
                &none
            ),
            vec![
                (utc("2027-03-21T01:30:00Z"), utc("2027-03-21T02:30:00Z")),
                (utc("2027-03-28T01:00:00Z"), utc("2027-03-28T01:30:00Z")),
            ]
        );
        let e = s.evaluate(utc("2027-03-27T23:59:00Z"), &none);
        assert!(!e.desired);
        assert_eq!(e.next_boundary, Some(utc("2027-03-28T00:00:00Z")));
        let e = s.evaluate(utc("2027-03-28T01:10:00Z"), &none);
        assert!(e.desired);
        assert_eq!(
            e.active_window,
            Some((utc("2027-03-28T01:00:00Z"), utc("2027-03-28T01:30:00Z")))
        );
        let e = s.evaluate(utc("2027-03-28T01:30:00Z"), &none);
        assert!(e.remove_now);
        assert_eq!(e.next_boundary, Some(berlin("2027-04-04 01:30")));

        // A one-off window entirely inside the skipped hour does not happen.
        let gap = schedule(
            json!({"kind": "windows", "dates": [{"date": "2027-03-28", "start": "02:00", "end": "02:45"}]}),
        );
        assert_eq!(
            gap.windows_between(
                berlin("2027-03-27 00:00"),
                berlin("2027-03-30 00:00"),
                &none
            ),
            vec![]
        );
        assert_eq!(
            gap.evaluate(berlin("2027-03-27 12:00"), &none)
                .next_boundary,
            None
        );
    }

    #[test]
    fn class_7b_across_the_spring_forward_week() {
        let s = schedule(class_7b());
        let e = s.evaluate(berlin("2027-03-25 11:30"), &Calendar::empty());
        // Tuesday 07:00 CEST is 05:00 UTC; the Tuesday before it was 06:00 UTC.
        assert_eq!(e.next_boundary, Some(utc("2027-03-30T05:00:00Z")));
        assert_eq!(e.scheduled_next, Some(utc("2027-03-30T06:00:00Z")));
    }

    #[test]
    fn fall_back_2026_10_25_repeated_hour() {
        let none = Calendar::empty();
        // 02:30 happens twice: the window starts at the first (CEST) and ends at 03:30 CET.
        let s = schedule(json!({
            "kind": "windows",
            "weekly": [{"weekday": "sun", "start": "02:30", "end": "03:30"}],
            "lead_minutes": 0, "after": "remove"
        }));
        assert_eq!(
            s.windows_between(
                utc("2026-10-24T00:00:00Z"),
                utc("2026-10-26T00:00:00Z"),
                &none
            ),
            vec![(utc("2026-10-25T00:30:00Z"), utc("2026-10-25T02:30:00Z"))]
        );
        let e = s.evaluate(utc("2026-10-25T01:15:00Z"), &none);
        assert!(e.desired);
        assert_eq!(e.next_boundary, Some(utc("2026-10-25T02:30:00Z")));

        // A window inside the repeated hour happens once, in the first pass.
        let once = schedule(json!({
            "kind": "windows",
            "dates": [{"date": "2026-10-25", "start": "02:00", "end": "02:30"}],
            "lead_minutes": 0, "after": "remove"
        }));
        assert_eq!(
            once.windows_between(
                utc("2026-10-24T00:00:00Z"),
                utc("2026-10-26T00:00:00Z"),
                &none
            ),
            vec![(utc("2026-10-25T00:00:00Z"), utc("2026-10-25T00:30:00Z"))]
        );
        let e = once.evaluate(utc("2026-10-25T01:15:00Z"), &none); // 02:15 CET, second pass
        assert!(!e.desired && e.remove_now);
        assert_eq!(e.next_boundary, None);

        // Class 7b: Thursday 10:00 CEST, then Tuesday 07:00 CET after the change.
        let mut v = class_7b();
        v["valid_from"] = json!("2026-08-01");
        let e = schedule(v).evaluate(berlin("2026-10-22 11:30"), &none);
        assert_eq!(e.next_boundary, Some(utc("2026-10-27T06:00:00Z")));
    }

    #[test]
    fn christmas_holidays_have_no_lessons_and_the_timer_skips_them() {
        let s = schedule(class_7b());
        let cal = weihnachtsferien();
        let e = s.evaluate(berlin("2026-12-17 11:30"), &cal);
        assert!(e.remove_now);
        assert_eq!(e.next_boundary, Some(berlin("2027-01-05 07:00")));
        assert_eq!(e.scheduled_next, Some(berlin("2027-01-05 08:00")));
        assert_eq!(
            s.windows_between(berlin("2026-12-19 00:00"), berlin("2027-01-04 00:00"), &cal),
            vec![]
        );

        let e = s.evaluate(berlin("2026-12-22 08:15"), &cal);
        assert!(!e.desired && e.remove_now && e.active_window.is_none());
        assert_eq!(e.next_boundary, Some(berlin("2027-01-05 07:00")));

        // Without the calendar, or with exclude_holidays off, Tuesday 22nd is a lesson.
        assert!(
            s.evaluate(berlin("2026-12-22 08:15"), &Calendar::empty())
                .desired
        );
        let mut v = class_7b();
        v["exclude_holidays"] = json!(false);
        assert!(
            schedule(v)
                .evaluate(berlin("2026-12-22 08:15"), &cal)
                .desired
        );
    }

    #[test]
    fn a_one_off_date_in_the_holidays_still_happens() {
        let s = schedule(json!({
            "kind": "windows",
            "dates": [{"date": "2026-12-28", "start": "10:00", "end": "12:00"}],
            "after": "remove"
        }));
        let e = s.evaluate(berlin("2026-12-28 09:30"), &weihnachtsferien());
        assert!(e.desired);
        assert_eq!(e.next_boundary, Some(berlin("2026-12-28 12:00")));
    }

    #[test]
    fn valid_until_ends_the_weekly_repetition() {
        let s = schedule(json!({
            "kind": "windows",
            "weekly": [{"weekday": "tue", "start": "08:00", "end": "09:30"}],
            "valid_until": "2027-01-31",
            "after": "remove"
        }));
        let none = Calendar::empty();
        let e = s.evaluate(berlin("2027-01-26 08:00"), &none);
        assert!(e.desired);
        assert_eq!(e.scheduled_next, None);
        assert_eq!(e.next_boundary, Some(berlin("2027-01-26 09:30")));
        let e = s.evaluate(berlin("2027-01-26 09:30"), &none);
        assert!(!e.desired && e.remove_now);
        assert_eq!(e.next_boundary, None);
        assert!(s.evaluate(berlin("2027-02-02 08:00"), &none).remove_now);
        assert_eq!(
            s.windows_between(
                berlin("2027-01-25 00:00"),
                berlin("2027-03-01 00:00"),
                &none
            ),
            vec![(berlin("2027-01-26 08:00"), berlin("2027-01-26 09:30"))]
        );
        assert_eq!(
            s.next_window_start_after(berlin("2027-01-26 09:30"), &none),
            None
        );
    }

    #[test]
    fn overlapping_and_touching_windows_merge_and_lead_bridges_short_gaps() {
        let s = schedule(json!({
            "kind": "windows",
            "weekly": [{"weekday": "tue", "start": "08:00", "end": "09:30"}],
            "dates": [
                {"date": "2026-12-01", "start": "10:30", "end": "12:00"},
                {"date": "2026-12-01", "start": "10:00", "end": "11:00"},
                {"date": "2026-12-01", "start": "12:00", "end": "13:00"}
            ],
            "valid_from": "2026-12-01", "valid_until": "2026-12-01",
            "lead_minutes": 60, "after": "remove"
        }));
        let none = Calendar::empty();
        assert_eq!(
            s.windows_between(
                berlin("2026-12-01 00:00"),
                berlin("2026-12-02 00:00"),
                &none
            ),
            vec![
                (berlin("2026-12-01 08:00"), berlin("2026-12-01 09:30")),
                (berlin("2026-12-01 10:00"), berlin("2026-12-01 13:00")),
            ]
        );
        // The half hour between the lessons lies within the next lead time: keep.
        let e = s.evaluate(berlin("2026-12-01 09:45"), &none);
        assert!(e.desired && !e.remove_now);
        assert_eq!(e.active_window, None);
        assert_eq!(e.scheduled_next, Some(berlin("2026-12-01 10:00")));
        assert_eq!(e.next_boundary, Some(berlin("2026-12-01 13:00")));
        assert_eq!(
            s.evaluate(berlin("2026-12-01 12:30"), &none).active_window,
            Some((berlin("2026-12-01 10:00"), berlin("2026-12-01 13:00")))
        );
    }

    #[test]
    fn whole_day_ranges_run_across_midnight_until_the_holidays() {
        let s = schedule(json!({
            "kind": "windows",
            "ranges": [{"from": "2026-12-18", "to": "2026-12-23"}],
            "lead_minutes": 0, "after": "remove"
        }));
        let cal = weihnachtsferien();
        let e = s.evaluate(berlin("2026-12-19 12:00"), &cal);
        assert!(e.desired);
        assert_eq!(
            e.active_window,
            Some((berlin("2026-12-18 00:00"), berlin("2026-12-21 00:00")))
        );
        assert_eq!(e.next_boundary, Some(berlin("2026-12-21 00:00")));
        assert_eq!(
            s.windows_between(berlin("2026-12-20 10:00"), berlin("2026-12-31 00:00"), &cal),
            vec![(berlin("2026-12-18 00:00"), berlin("2026-12-21 00:00"))]
        );
        let e = s.evaluate(berlin("2026-12-21 00:00"), &cal);
        assert!(!e.desired && e.remove_now);
        assert_eq!(e.next_boundary, None);
    }

    #[test]
    fn daily_range_times_with_a_holiday_in_between() {
        let s = schedule(json!({
            "kind": "windows",
            "ranges": [{"from": "2026-12-17", "to": "2027-01-05", "start": "08:00", "end": "13:00"}],
            "lead_minutes": 30, "after": "remove"
        }));
        let cal = weihnachtsferien();
        let e = s.evaluate(berlin("2026-12-20 13:00"), &cal);
        assert!(!e.desired && e.remove_now);
        assert_eq!(e.next_boundary, Some(berlin("2027-01-03 07:30")));
    }

    #[test]
    fn always_is_always_desired() {
        let none = Calendar::empty();
        let e = Schedule::Always.evaluate(berlin("2026-12-01 08:00"), &none);
        assert!(e.desired && !e.remove_now);
        assert_eq!(e.next_boundary, None);
        let (a, b) = (berlin("2026-12-01 00:00"), berlin("2026-12-02 00:00"));
        assert_eq!(Schedule::Always.windows_between(a, b, &none), vec![(a, b)]);
        assert!(Schedule::Always.has_window_within(a, TimeDelta::zero(), &none));
    }

    #[test]
    fn a_window_beyond_the_horizon_gives_a_recheck_boundary() {
        let s = schedule(
            json!({"kind": "windows", "dates": [{"date": "2028-06-01", "start": "08:00", "end": "09:00"}]}),
        );
        let e = s.evaluate(berlin("2026-12-01 12:00"), &Calendar::empty());
        assert!(!e.desired && !e.remove_now);
        assert_eq!(e.scheduled_next, None);
        // 400 local days after 2026-12-01.
        assert_eq!(e.next_boundary, Some(berlin("2028-01-05 00:00")));
        let e = s.evaluate(berlin("2028-01-05 00:00"), &Calendar::empty());
        assert_eq!(e.scheduled_next, Some(berlin("2028-06-01 08:00")));
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        let s = schedule(class_7b());
        for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            let _ = s.evaluate(t, &weihnachtsferien());
            let _ = s.windows_between(t, DateTime::<Utc>::MAX_UTC, &weihnachtsferien());
            let _ = s.next_window_start_after(t, &weihnachtsferien());
            let _ = s.has_window_within(t, TimeDelta::days(7), &weihnachtsferien());
        }
    }
}
