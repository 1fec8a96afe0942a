//! School-local wall-clock time → UTC instant, with tafel's one daylight-saving rule.
//!
//! The rule:
//! - a local time that does not exist (the hour skipped by a spring-forward, e.g.
//!   02:30 on 2027-03-28 in Europe/Berlin) moves forward to the first instant that
//!   exists after the gap (03:00 CEST = 01:00 UTC);
//! - an ambiguous local time (the hour repeated by a fall-back, e.g. 02:30 on
//!   2026-10-25 in Europe/Berlin) means its earlier instant (02:30 CEST = 00:30 UTC).
//!
//! The mapping never goes backwards: a later local time never gives an earlier
//! instant. A window whose start and end both fall into the same gap becomes empty
//! and does not occur that day.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// The UTC instant of a local wall-clock time in `tz`, by the rule above.
///
/// `None` only at the edges of chrono's representable range.
pub fn to_utc(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _later) => Some(earlier.with_timezone(&Utc)),
        LocalResult::None => first_instant_after_gap(tz, local),
    }
}

/// The instant local midnight starts `day` in `tz` (by the same rule).
pub fn midnight(tz: Tz, day: NaiveDate) -> Option<DateTime<Utc>> {
    to_utc(tz, day.and_time(NaiveTime::MIN))
}

/// The local wall-clock time of `t` in `tz`; `None` only at the edges of chrono's range
/// (where chrono's own `naive_local` would panic).
pub fn local_datetime(tz: Tz, t: DateTime<Utc>) -> Option<NaiveDateTime> {
    let utc = t.naive_utc();
    utc.checked_add_offset(tz.offset_from_utc_datetime(&utc).fix())
}

/// The local calendar date of `t` in `tz` (see [`local_datetime`]).
pub fn local_date(tz: Tz, t: DateTime<Utc>) -> Option<NaiveDate> {
    local_datetime(tz, t).map(|l| l.date())
}

/// The first whole second whose local time in `tz` is at or after `local`.
///
/// Only called for local times inside a gap. Offsets lie within ±26 hours, so the
/// answer lies within ±26 hours of `local` read as UTC; binary search on whole
/// seconds (zone transitions happen on whole seconds) takes about 18 offset lookups.
fn first_instant_after_gap(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    const SPAN: i64 = 26 * 3600;
    let guess = local.and_utc().timestamp();
    let mut lo = guess.checked_sub(SPAN)?; // local(lo) < local
    let mut hi = guess.checked_add(SPAN)?; // local(hi) >= local
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let at = DateTime::from_timestamp(mid, 0)?;
        if local_datetime(tz, at)? >= local {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Berlin;

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn ordinary_winter_and_summer_times() {
        assert_eq!(
            to_utc(Berlin, local("2026-12-01 08:00")),
            Some(utc("2026-12-01T07:00:00Z"))
        );
        assert_eq!(
            to_utc(Berlin, local("2026-06-02 08:00")),
            Some(utc("2026-06-02T06:00:00Z"))
        );
    }

    #[test]
    fn skipped_time_on_spring_forward_moves_to_first_existing_instant() {
        // 2027-03-28: clocks jump from 02:00 CET to 03:00 CEST (01:00 UTC).
        assert_eq!(
            to_utc(Berlin, local("2027-03-28 02:00")),
            Some(utc("2027-03-28T01:00:00Z"))
        );
        assert_eq!(
            to_utc(Berlin, local("2027-03-28 02:30")),
            Some(utc("2027-03-28T01:00:00Z"))
        );
        assert_eq!(
            to_utc(Berlin, local("2027-03-28 03:00")),
            Some(utc("2027-03-28T01:00:00Z"))
        );
        assert_eq!(
            to_utc(Berlin, local("2027-03-28 03:30")),
            Some(utc("2027-03-28T01:30:00Z"))
        );
    }

    #[test]
    fn repeated_time_on_fall_back_takes_the_earlier_instant() {
        // 2026-10-25: 02:00–03:00 happens twice (CEST, then CET).
        assert_eq!(
            to_utc(Berlin, local("2026-10-25 02:30")),
            Some(utc("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            to_utc(Berlin, local("2026-10-25 03:00")),
            Some(utc("2026-10-25T02:00:00Z"))
        );
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        let _ = local_date(Berlin, DateTime::<Utc>::MIN_UTC);
        let _ = local_date(Berlin, DateTime::<Utc>::MAX_UTC);
        let _ = to_utc(Berlin, NaiveDateTime::MIN);
        let _ = to_utc(Berlin, NaiveDateTime::MAX);
    }
}
