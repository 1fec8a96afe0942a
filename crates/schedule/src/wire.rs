//! The schedule's JSON as types: what [`crate::Schedule::to_json`] and
//! [`crate::ScheduleSpec::to_json`] write, and (feature `utoipa`) what the OpenAPI
//! document shows. Input is read field by field in `spec.rs` so that every error names
//! its path; it accepts what these types write, plus the aliases their docs mention.

use chrono::NaiveDate;
use serde::Serialize;

use super::spec::AfterWindow;

/// When an assignment applies: `always`, or time windows in the school's time zone. A
/// window's hours are clock times (`start`/`end`), the school's periods (`periods`,
/// as lesson requests write them: "2", "2-3", "2.–3.", "2 bis 3"; only for an
/// assignment within one school, resolved with the school's current period times
/// whenever the schedule is evaluated), or absent (the whole day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "utoipa",
    schema(
        as = Schedule,
        examples(
            json!({"kind": "always"}),
            json!({
                "kind": "windows",
                "timezone": "Europe/Berlin",
                "weekly": [{"weekday": "tue", "start": "08:00", "end": "09:30"}],
                "dates": [{"date": "2026-12-01", "start": "10:00", "end": "11:30"}],
                "ranges": [{"from": "2026-12-14", "to": "2026-12-18"}],
                "valid_from": "2026-11-01",
                "valid_until": "2027-01-31",
                "lead_minutes": 60,
                "after": "remove",
                "exclude_holidays": true
            }),
            json!({
                "kind": "windows",
                "weekly": ["Di 2-3", {"weekday": "thu", "periods": "5"}],
                "dates": [{"date": "2026-12-01", "periods": "1-2"}],
                "after": "remove"
            })
        )
    )
)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ScheduleJson {
    /// Wanted at every instant; holidays do not matter. No other field.
    Always,
    /// Wanted inside time windows (and `lead_minutes` before each). At least one
    /// window in `weekly`, `dates` and `ranges` together, at most 200.
    Windows {
        /// IANA time zone of the local dates and times (default `Europe/Berlin`).
        #[serde(default)]
        #[cfg_attr(feature = "utoipa", schema(example = "Europe/Berlin"))]
        timezone: String,
        /// Windows that repeat every week.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[cfg_attr(feature = "utoipa", schema(value_type = Vec<WeeklyItem>))]
        weekly: Vec<WeeklyJson>,
        /// One-off windows (a lesson, a day). They occur on holidays too: they were
        /// picked on purpose.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        dates: Vec<DateJson>,
        /// Every day from `from` to `to`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ranges: Vec<RangeJson>,
        /// First local date any window may occur (inclusive).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        valid_from: Option<NaiveDate>,
        /// Last local date any window may occur (inclusive).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        valid_until: Option<NaiveDate>,
        /// Minutes before each window the item is installed: 0 to 1440 (default 60).
        #[serde(default)]
        #[cfg_attr(feature = "utoipa", schema(minimum = 0, maximum = 1440, example = 60))]
        lead_minutes: u16,
        /// What happens once a window closes (default `keep`: removing an app deletes
        /// its documents on the iPad).
        #[serde(default)]
        after: AfterWindow,
        /// Weekly and range windows skip the school's calendar closures (default true).
        #[serde(default)]
        exclude_holidays: bool,
    },
}

/// A weekly window: a weekday with `start` and `end`, or with the school's `periods`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "utoipa",
    schema(
        as = WeeklyWindow,
        examples(
            json!({"weekday": "tue", "start": "08:00", "end": "09:30"}),
            json!({"weekday": "Di", "periods": "2-3"})
        )
    )
)]
pub struct WeeklyJson {
    /// `mon`..`sun`; also `monday`.., and German `mo`, `di`, `mi`, `do`, `fr`, `sa`, `so`
    /// (any case). Written back as `mon`..`sun`.
    #[cfg_attr(feature = "utoipa", schema(example = "tue"))]
    pub weekday: String,
    /// Local start `HH:MM` (with `end`; or give `periods`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(example = "08:00"))]
    pub start: Option<String>,
    /// Local end `HH:MM`, after `start` on the same day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(example = "09:30"))]
    pub end: Option<String>,
    /// The school's periods instead of `start`/`end`: "2", "2-3", "2.–3.", "2 bis 3".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(example = "2-3"))]
    pub periods: Option<String>,
}

/// One entry of `weekly`: a window object, or the same as text.
#[cfg(feature = "utoipa")]
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum WeeklyItem {
    /// A window object.
    Window(WeeklyJson),
    /// A weekday and the school's periods, as lesson requests write them: "Di 2-3",
    /// "Do 5", "mon 1-2". Written back as a window object with `periods`.
    #[schema(example = "Di 2-3")]
    Lesson(String),
}

/// A one-off window on one date: all day, from `start` to `end`, or the school's `periods`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "utoipa",
    schema(
        as = DateWindow,
        examples(
            json!({"date": "2026-12-01", "start": "10:00", "end": "11:30"}),
            json!({"date": "2026-12-01", "periods": "3-4"}),
            json!({"date": "2026-12-01"})
        )
    )
)]
pub struct DateJson {
    /// The local date `YYYY-MM-DD` (years 2000 to 2199).
    pub date: NaiveDate,
    /// Local start `HH:MM` (with `end`); without times and periods: the whole day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Local end `HH:MM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// The school's periods instead of `start`/`end`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periods: Option<String>,
}

/// Every day from `from` to `to` (inclusive): around the clock, daily from `start` to
/// `end`, or daily in the school's `periods`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "utoipa",
    schema(
        as = DateRangeWindow,
        examples(
            json!({"from": "2026-12-14", "to": "2026-12-18", "start": "08:00", "end": "13:00"}),
            json!({"from": "2026-12-14", "to": "2026-12-18", "periods": "1-6"})
        )
    )
)]
pub struct RangeJson {
    /// First local date (inclusive).
    pub from: NaiveDate,
    /// Last local date (inclusive), not before `from`.
    pub to: NaiveDate,
    /// Daily local start `HH:MM` (with `end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Daily local end `HH:MM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// The school's periods instead of `start`/`end`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periods: Option<String>,
}
