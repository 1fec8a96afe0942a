//! Reads a JSON value field by field so that every error names its path (`weekly[1].end`).

use chrono::{NaiveDate, NaiveTime, Timelike};
use serde_json::{Map, Value};

use super::spec::ScheduleError;

/// `path.key`, or `key` at the root.
pub(super) fn key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub(super) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// How an error with a path reads: `weekly[1].end: must be after start`.
pub(super) fn render(path: &str, reason: &str) -> String {
    if path.is_empty() {
        reason.to_owned()
    } else {
        format!("{path}: {reason}")
    }
}

pub(super) fn object<'v>(
    v: &'v Value,
    path: &str,
) -> Result<&'v Map<String, Value>, ScheduleError> {
    v.as_object()
        .ok_or_else(|| ScheduleError::at(path, "must be a JSON object"))
}

/// Rejects the first field not in `allowed` (a typo like `lead_minute` must not be ignored).
pub(super) fn deny_unknown(
    map: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
) -> Result<(), ScheduleError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(ScheduleError::at(
            &key(path, unknown),
            format!("unknown field (expected one of: {})", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// The field's value; a missing field and `null` both read as absent.
pub(super) fn field<'v>(map: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    map.get(name).filter(|v| !v.is_null())
}

pub(super) fn required<'v>(
    map: &'v Map<String, Value>,
    path: &str,
    name: &str,
) -> Result<&'v Value, ScheduleError> {
    field(map, name).ok_or_else(|| ScheduleError::at(&key(path, name), "is required"))
}

pub(super) fn string<'v>(v: &'v Value, path: &str) -> Result<&'v str, ScheduleError> {
    v.as_str()
        .ok_or_else(|| ScheduleError::at(path, "must be a string"))
}

pub(super) fn array<'v>(v: &'v Value, path: &str) -> Result<&'v [Value], ScheduleError> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| ScheduleError::at(path, "must be a JSON array"))
}

pub(super) fn boolean(v: &Value, path: &str) -> Result<bool, ScheduleError> {
    v.as_bool()
        .ok_or_else(|| ScheduleError::at(path, "must be true or false"))
}

pub(super) fn integer(v: &Value, path: &str) -> Result<u64, ScheduleError> {
    v.as_u64()
        .ok_or_else(|| ScheduleError::at(path, "must be a whole number"))
}

/// A local time of day written `HH:MM` (or `H:MM`), 00:00..=23:59.
pub(super) fn time(v: &Value, path: &str) -> Result<NaiveTime, ScheduleError> {
    let s = string(v, path)?;
    parse_time(s).ok_or_else(|| {
        ScheduleError::at(path, format!("must be a time of day \"HH:MM\", not {s:?}"))
    })
}

/// A calendar date written `YYYY-MM-DD`.
pub(super) fn date(v: &Value, path: &str) -> Result<NaiveDate, ScheduleError> {
    let s = string(v, path)?;
    parse_date(s)
        .ok_or_else(|| ScheduleError::at(path, format!("must be a date \"YYYY-MM-DD\", not {s:?}")))
}

/// `HH:MM` or `H:MM` → a whole-minute time of day.
pub(super) fn parse_time(s: &str) -> Option<NaiveTime> {
    let (h, m) = s.split_once(':')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || h.len() > 2 || !digits(m) || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

/// `YYYY-MM-DD` exactly (ten characters).
pub(super) fn parse_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// `HH:MM` for output.
pub(super) fn format_time(t: NaiveTime) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_strict_hh_mm() {
        assert_eq!(parse_time("08:00"), NaiveTime::from_hms_opt(8, 0, 0));
        assert_eq!(parse_time("8:05"), NaiveTime::from_hms_opt(8, 5, 0));
        for bad in [
            "24:00", "08:60", "8", "08:0", "08:00:00", "-1:00", " 8:00", "08.00",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_are_iso() {
        assert_eq!(
            parse_date("2026-12-01"),
            NaiveDate::from_ymd_opt(2026, 12, 1)
        );
        for bad in ["2026-12-1", "01.12.2026", "2026-02-30", "20261201"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
