//! What an assignment's schedule says — "always", or time windows in a school's time zone — validated at the edge.
//!
//! The JSON an admin writes (every field except `kind` and one window list is optional):
//!
//! ```json
//! {"kind": "always"}
//!
//! {"kind": "windows",
//!  "timezone": "Europe/Berlin",
//!  "weekly": [{"weekday": "tue", "start": "08:00", "end": "09:30"}],
//!  "dates":  [{"date": "2026-12-01", "start": "10:00", "end": "11:30"}],
//!  "ranges": [{"from": "2026-12-01", "to": "2026-12-18", "start": "08:00", "end": "13:00"}],
//!  "valid_from": "2026-11-01", "valid_until": "2027-01-31",
//!  "lead_minutes": 60, "after": "remove", "exclude_holidays": true}
//! ```
//!
//! - `timezone`: IANA name, default `Europe/Berlin`.
//! - `weekly`: weekday (`mon`..`sun`, also `monday`.., `mo`/`di`/`mi`/`do`/`fr`/`sa`/`so`)
//!   with local `start`/`end` (`HH:MM`, end after start, same day).
//! - Instead of `start`/`end`, any window may name the school's periods as lesson
//!   requests write them: `{"weekday": "di", "periods": "2-3"}`, or a weekly entry as
//!   text, `"Di 2-3"`. Such a schedule is a [`ScheduleSpec`]: stored as written and
//!   resolved with the school's [`PeriodTable`] whenever it is evaluated
//!   ([`ScheduleSpec::resolve`]), so a later change of the period times applies.
//! - `dates`: one-off windows (a lesson). `start`/`end` optional: without them the whole day.
//! - `ranges`: every day from `from` to `to` (inclusive); with `start`/`end` daily
//!   from start to end, without them around the clock.
//! - `valid_from`/`valid_until`: inclusive local dates bounding every window
//!   ("weekly until 2027-01-31"). A one-off date outside them is an error.
//! - `lead_minutes`: 0..=1440, default 60 — the app must be on the iPad before the lesson.
//! - `after`: `keep` (default) or `remove` once a window closes. Keep is the default
//!   because removing an app deletes its documents on the iPad.
//! - `exclude_holidays`: default true — weekly and range windows do not occur on days
//!   of the school's calendar closures. One-off `dates` always occur: they were
//!   picked on purpose (a holiday course).
//! - At most [`MAX_WINDOWS`] entries in weekly, dates and ranges together, at least one.

use std::convert::Infallible;
use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveTime, TimeDelta, Timelike, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::json;
use super::periods::{PeriodSpan, PeriodTable};
use super::wire::{DateJson, RangeJson, ScheduleJson, WeeklyJson};

/// Most windows (weekly + dates + ranges together) one schedule may hold.
pub const MAX_WINDOWS: usize = 200;
/// Longest lead time in minutes (one day).
pub const MAX_LEAD_MINUTES: u16 = 1440;
/// Lead time when the JSON does not say: apps arrive an hour before the lesson.
pub const DEFAULT_LEAD_MINUTES: u16 = 60;
/// Time zone when the JSON does not say.
pub const DEFAULT_TIMEZONE: Tz = chrono_tz::Europe::Berlin;
/// Earliest year a schedule date may name (catches typos like `0226-12-01`).
pub const MIN_YEAR: i32 = 2000;
/// Latest year a schedule date may name.
pub const MAX_YEAR: i32 = 2199;

/// A schedule that failed validation; `path` names the field (`weekly[1].end`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", json::render(.path, .reason))]
pub struct ScheduleError {
    path: String,
    reason: String,
}

impl ScheduleError {
    pub(super) fn at(path: &str, reason: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    /// The same error one level deeper: `end` under `weekly[1]` is `weekly[1].end`.
    pub(super) fn under(self, prefix: &str) -> Self {
        let path = if self.path.is_empty() {
            prefix.to_owned()
        } else if prefix.is_empty() {
            self.path
        } else {
            format!("{prefix}.{}", self.path)
        };
        Self { path, ..self }
    }

    /// The JSON path of the offending field, e.g. `weekly[1].end` (empty for the whole document).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong with it, e.g. `must be after start`.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A local time span within one day: `start` < `end`, both on whole minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeRange {
    start: NaiveTime,
    end: NaiveTime,
}

impl TimeRange {
    /// Checks `start` < `end` and whole minutes; errors name `start`/`end`.
    pub fn new(start: NaiveTime, end: NaiveTime) -> Result<Self, ScheduleError> {
        let whole = |t: NaiveTime| t.second() == 0 && t.nanosecond() == 0;
        if !whole(start) {
            return Err(ScheduleError::at("start", "must be a whole minute"));
        }
        if !whole(end) {
            return Err(ScheduleError::at("end", "must be a whole minute"));
        }
        if end <= start {
            return Err(ScheduleError::at("end", "must be after start"));
        }
        Ok(Self { start, end })
    }

    /// Local start time.
    pub fn start(&self) -> NaiveTime {
        self.start
    }

    /// Local end time (exclusive).
    pub fn end(&self) -> NaiveTime {
        self.end
    }
}

/// Lead time before a window opens: 0..=[`MAX_LEAD_MINUTES`] minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeadTime(u16);

impl LeadTime {
    /// No lead time.
    pub const ZERO: Self = Self(0);

    /// Checks the range; the error names `lead_minutes`.
    pub fn from_minutes(minutes: u64) -> Result<Self, ScheduleError> {
        match u16::try_from(minutes) {
            Ok(m) if m <= MAX_LEAD_MINUTES => Ok(Self(m)),
            _ => Err(ScheduleError::at(
                "lead_minutes",
                format!("must be between 0 and {MAX_LEAD_MINUTES}"),
            )),
        }
    }

    /// The lead time in minutes.
    pub fn minutes(self) -> u16 {
        self.0
    }

    /// The lead time as a duration.
    pub fn duration(self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.0))
    }
}

impl Default for LeadTime {
    fn default() -> Self {
        Self(DEFAULT_LEAD_MINUTES)
    }
}

/// What happens to an app or profile once its window has closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AfterWindow {
    /// Remove it unless another window of the same schedule is active or within lead time.
    Remove,
    /// Leave it on the device.
    #[default]
    Keep,
}

/// When in the day a window runs, as the admin wrote it: clock times, or the school's
/// periods. Periods are looked up in the school's [`PeriodTable`] each time the schedule
/// is resolved ([`ScheduleSpec::resolve`]), so changed period times apply at once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hours {
    /// Local start and end.
    Clock(TimeRange),
    /// The school's periods ("2-3").
    Periods(PeriodSpan),
}

/// A window that repeats every week: weekday + local time span (`T` = [`Hours`] as written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeeklyWindow<T = TimeRange> {
    /// The weekday in the school's time zone.
    pub weekday: Weekday,
    /// Local start and end.
    pub time: T,
}

/// A one-off window on one date: a lesson, or (without times) the whole day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateWindow<T = TimeRange> {
    /// The local date.
    pub date: NaiveDate,
    /// Local start and end; `None` means the whole day.
    pub time: Option<T>,
}

/// Every day from `from` to `to` (inclusive), daily within `time` or around the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateRange<T = TimeRange> {
    from: NaiveDate,
    to: NaiveDate,
    time: Option<T>,
}

impl<T> DateRange<T> {
    /// Checks `from` <= `to`; the error names `to`.
    pub fn new(from: NaiveDate, to: NaiveDate, time: Option<T>) -> Result<Self, ScheduleError> {
        if to < from {
            return Err(ScheduleError::at("to", "must not be before from"));
        }
        Ok(Self { from, to, time })
    }

    /// Daily hours as written; `None` means whole days.
    pub fn hours(&self) -> Option<&T> {
        self.time.as_ref()
    }

    /// First day (inclusive).
    pub fn from(&self) -> NaiveDate {
        self.from
    }

    /// Last day (inclusive).
    pub fn to(&self) -> NaiveDate {
        self.to
    }

    /// Whether `day` is one of the range's days.
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.from <= day && day <= self.to
    }
}

impl DateRange {
    /// Daily local span; `None` means whole days.
    pub fn time(&self) -> Option<TimeRange> {
        self.time
    }
}

/// When and how an assignment applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Desired at every instant; holidays do not matter.
    Always,
    /// Desired inside time windows (plus lead time).
    Windows(WindowSchedule),
}

/// A schedule as the admin wrote it: like [`Schedule`], but a window's hours may name the
/// school's periods. Stored as written (periods stay periods) and turned into a
/// [`Schedule`] with the school's current [`PeriodTable`] whenever it is evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleSpec {
    /// Desired at every instant.
    Always,
    /// Desired inside time windows whose hours are clock times or periods.
    Windows(WindowSchedule<Hours>),
}

/// A validated set of time windows in one time zone. Build with
/// [`Schedule::parse_json`] or [`WindowSchedule::builder`]; `T` is [`TimeRange`] for
/// evaluation and [`Hours`] as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSchedule<T = TimeRange> {
    timezone: Tz,
    weekly: Vec<WeeklyWindow<T>>,
    /// Sorted by date (evaluation binary-searches it).
    dates: Vec<DateWindow<T>>,
    ranges: Vec<DateRange<T>>,
    valid_from: Option<NaiveDate>,
    valid_until: Option<NaiveDate>,
    lead: LeadTime,
    after: AfterWindow,
    exclude_holidays: bool,
}

impl WindowSchedule {
    /// A builder with the JSON defaults (Europe/Berlin, 60 min lead, keep, exclude holidays).
    pub fn builder() -> WindowScheduleBuilder {
        empty_builder()
    }
}

/// A builder with the JSON defaults, for clock times or hours as written.
fn empty_builder<T>() -> WindowScheduleBuilder<T> {
    WindowScheduleBuilder {
        timezone: DEFAULT_TIMEZONE,
        weekly: Vec::new(),
        dates: Vec::new(),
        ranges: Vec::new(),
        valid_from: None,
        valid_until: None,
        lead: LeadTime::default(),
        after: AfterWindow::default(),
        exclude_holidays: true,
    }
}

impl<T> WindowSchedule<T> {
    /// The school's time zone.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// Weekly windows, in the order given.
    pub fn weekly(&self) -> &[WeeklyWindow<T>] {
        &self.weekly
    }

    /// One-off windows, sorted by date.
    pub fn dates(&self) -> &[DateWindow<T>] {
        &self.dates
    }

    /// Date ranges, in the order given.
    pub fn ranges(&self) -> &[DateRange<T>] {
        &self.ranges
    }

    /// First local date any window may occur (inclusive).
    pub fn valid_from(&self) -> Option<NaiveDate> {
        self.valid_from
    }

    /// Last local date any window may occur (inclusive).
    pub fn valid_until(&self) -> Option<NaiveDate> {
        self.valid_until
    }

    /// Lead time before each window.
    pub fn lead(&self) -> LeadTime {
        self.lead
    }

    /// What happens after a window closes.
    pub fn after(&self) -> AfterWindow {
        self.after
    }

    /// Whether weekly and range windows skip calendar closures.
    pub fn exclude_holidays(&self) -> bool {
        self.exclude_holidays
    }

    /// Whether `day` lies within `valid_from..=valid_until`.
    pub fn is_valid_on(&self, day: NaiveDate) -> bool {
        self.valid_from.is_none_or(|f| f <= day) && self.valid_until.is_none_or(|u| day <= u)
    }

    /// The same options with each window's hours mapped (`f` gets the window's path).
    fn map_hours<U, E>(
        &self,
        mut f: impl FnMut(&T, &str) -> Result<U, E>,
    ) -> Result<WindowSchedule<U>, E> {
        let mut weekly = Vec::with_capacity(self.weekly.len());
        for (i, w) in self.weekly.iter().enumerate() {
            weekly.push(WeeklyWindow {
                weekday: w.weekday,
                time: f(&w.time, &json::index("weekly", i))?,
            });
        }
        let mut dates = Vec::with_capacity(self.dates.len());
        for (i, d) in self.dates.iter().enumerate() {
            let path = json::index("dates", i);
            dates.push(DateWindow {
                date: d.date,
                time: d.time.as_ref().map(|t| f(t, &path)).transpose()?,
            });
        }
        let mut ranges = Vec::with_capacity(self.ranges.len());
        for (i, r) in self.ranges.iter().enumerate() {
            let path = json::index("ranges", i);
            ranges.push(DateRange {
                from: r.from,
                to: r.to,
                time: r.time.as_ref().map(|t| f(t, &path)).transpose()?,
            });
        }
        Ok(WindowSchedule {
            timezone: self.timezone,
            weekly,
            dates,
            ranges,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            lead: self.lead,
            after: self.after,
            exclude_holidays: self.exclude_holidays,
        })
    }
}

impl WindowSchedule<Hours> {
    fn parse_map(map: &Map<String, Value>) -> Result<Self, ScheduleError> {
        json::deny_unknown(map, "", FIELDS)?;
        let mut b = empty_builder();
        if let Some(v) = json::field(map, "timezone") {
            let name = json::string(v, "timezone")?;
            b.timezone = name.parse().map_err(|_| {
                ScheduleError::at(
                    "timezone",
                    format!(
                        "unknown time zone {name:?} (expected an IANA name like \"Europe/Berlin\")"
                    ),
                )
            })?;
        }
        let list = |name: &str| -> Result<&[Value], ScheduleError> {
            json::field(map, name).map_or(Ok(&[][..]), |v| json::array(v, name))
        };
        let (weekly, dates, ranges) = (list("weekly")?, list("dates")?, list("ranges")?);
        // Check the count before parsing elements so a huge list costs nothing.
        check_count(weekly.len(), dates.len(), ranges.len())?;
        for (i, v) in weekly.iter().enumerate() {
            b.weekly.push(parse_weekly(v, &json::index("weekly", i))?);
        }
        for (i, v) in dates.iter().enumerate() {
            b.dates
                .push(parse_date_window(v, &json::index("dates", i))?);
        }
        for (i, v) in ranges.iter().enumerate() {
            b.ranges.push(parse_range(v, &json::index("ranges", i))?);
        }
        if let Some(v) = json::field(map, "valid_from") {
            b.valid_from = Some(json::date(v, "valid_from")?);
        }
        if let Some(v) = json::field(map, "valid_until") {
            b.valid_until = Some(json::date(v, "valid_until")?);
        }
        if let Some(v) = json::field(map, "lead_minutes") {
            b.lead = LeadTime::from_minutes(json::integer(v, "lead_minutes").map_err(|_| {
                ScheduleError::at(
                    "lead_minutes",
                    format!("must be a whole number between 0 and {MAX_LEAD_MINUTES}"),
                )
            })?)?;
        }
        if let Some(v) = json::field(map, "after") {
            b.after = match json::string(v, "after")? {
                "remove" => AfterWindow::Remove,
                "keep" => AfterWindow::Keep,
                other => {
                    return Err(ScheduleError::at(
                        "after",
                        format!("must be \"remove\" or \"keep\", not {other:?}"),
                    ))
                }
            };
        }
        if let Some(v) = json::field(map, "exclude_holidays") {
            b.exclude_holidays = json::boolean(v, "exclude_holidays")?;
        }
        b.build()
    }
}

const FIELDS: &[&str] = &[
    "kind",
    "timezone",
    "weekly",
    "dates",
    "ranges",
    "valid_from",
    "valid_until",
    "lead_minutes",
    "after",
    "exclude_holidays",
];

/// Collects windows and options; [`WindowScheduleBuilder::build`] runs the same
/// checks as [`Schedule::parse_json`] (paths index the windows in the order added).
#[derive(Debug, Clone)]
#[must_use]
pub struct WindowScheduleBuilder<T = TimeRange> {
    timezone: Tz,
    weekly: Vec<WeeklyWindow<T>>,
    dates: Vec<DateWindow<T>>,
    ranges: Vec<DateRange<T>>,
    valid_from: Option<NaiveDate>,
    valid_until: Option<NaiveDate>,
    lead: LeadTime,
    after: AfterWindow,
    exclude_holidays: bool,
}

impl<T: Ord> WindowScheduleBuilder<T> {
    /// The school's time zone.
    pub fn timezone(mut self, tz: Tz) -> Self {
        self.timezone = tz;
        self
    }

    /// Adds a weekly window.
    pub fn weekly(mut self, weekday: Weekday, time: T) -> Self {
        self.weekly.push(WeeklyWindow { weekday, time });
        self
    }

    /// Adds a one-off window (`None` = the whole day).
    pub fn date(mut self, date: NaiveDate, time: Option<T>) -> Self {
        self.dates.push(DateWindow { date, time });
        self
    }

    /// Adds a date range.
    pub fn range(mut self, range: DateRange<T>) -> Self {
        self.ranges.push(range);
        self
    }

    /// First local date any window may occur.
    pub fn valid_from(mut self, day: NaiveDate) -> Self {
        self.valid_from = Some(day);
        self
    }

    /// Last local date any window may occur.
    pub fn valid_until(mut self, day: NaiveDate) -> Self {
        self.valid_until = Some(day);
        self
    }

    /// Lead time before each window.
    pub fn lead(mut self, lead: LeadTime) -> Self {
        self.lead = lead;
        self
    }

    /// What happens after a window closes.
    pub fn after(mut self, after: AfterWindow) -> Self {
        self.after = after;
        self
    }

    /// Whether weekly and range windows skip calendar closures.
    pub fn exclude_holidays(mut self, exclude: bool) -> Self {
        self.exclude_holidays = exclude;
        self
    }

    /// Checks what single fields cannot: window count, years, validity bounds.
    pub fn build(self) -> Result<WindowSchedule<T>, ScheduleError> {
        check_count(self.weekly.len(), self.dates.len(), self.ranges.len())?;
        check_year(self.valid_from, "valid_from")?;
        check_year(self.valid_until, "valid_until")?;
        if let (Some(from), Some(until)) = (self.valid_from, self.valid_until) {
            if until < from {
                return Err(ScheduleError::at(
                    "valid_until",
                    "must not be before valid_from",
                ));
            }
        }
        let in_validity = |day: NaiveDate| {
            self.valid_from.is_none_or(|f| f <= day) && self.valid_until.is_none_or(|u| day <= u)
        };
        for (i, d) in self.dates.iter().enumerate() {
            let path = json::key(&json::index("dates", i), "date");
            check_year(Some(d.date), &path)?;
            if !in_validity(d.date) {
                return Err(ScheduleError::at(
                    &path,
                    "lies outside valid_from..valid_until",
                ));
            }
        }
        for (i, r) in self.ranges.iter().enumerate() {
            let path = json::index("ranges", i);
            check_year(Some(r.from), &json::key(&path, "from"))?;
            check_year(Some(r.to), &json::key(&path, "to"))?;
            let overlaps = self.valid_from.is_none_or(|f| f <= r.to)
                && self.valid_until.is_none_or(|u| r.from <= u);
            if !overlaps {
                return Err(ScheduleError::at(
                    &path,
                    "lies entirely outside valid_from..valid_until",
                ));
            }
        }
        let mut dates = self.dates;
        dates.sort_unstable();
        Ok(WindowSchedule {
            timezone: self.timezone,
            weekly: self.weekly,
            dates,
            ranges: self.ranges,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            lead: self.lead,
            after: self.after,
            exclude_holidays: self.exclude_holidays,
        })
    }
}

fn check_count(weekly: usize, dates: usize, ranges: usize) -> Result<(), ScheduleError> {
    let total = weekly + dates + ranges;
    if total == 0 {
        return Err(ScheduleError::at(
            "weekly",
            "a \"windows\" schedule needs at least one window in weekly, dates or ranges",
        ));
    }
    if total <= MAX_WINDOWS {
        return Ok(());
    }
    // Name the first entry over the limit.
    let path = if weekly > MAX_WINDOWS {
        json::index("weekly", MAX_WINDOWS)
    } else if weekly + dates > MAX_WINDOWS {
        json::index("dates", MAX_WINDOWS - weekly)
    } else {
        json::index("ranges", MAX_WINDOWS - weekly - dates)
    };
    Err(ScheduleError::at(
        &path,
        format!("too many windows: at most {MAX_WINDOWS} in weekly, dates and ranges together"),
    ))
}

fn check_year(day: Option<NaiveDate>, path: &str) -> Result<(), ScheduleError> {
    match day {
        Some(d) if !(MIN_YEAR..=MAX_YEAR).contains(&d.year()) => Err(ScheduleError::at(
            path,
            format!("year must be between {MIN_YEAR} and {MAX_YEAR}"),
        )),
        _ => Ok(()),
    }
}

/// A weekly window: `{"weekday": "tue", "start": "08:00", "end": "09:30"}`,
/// `{"weekday": "Di", "periods": "2-3"}`, or the same as text: `"Di 2-3"`.
fn parse_weekly(v: &Value, path: &str) -> Result<WeeklyWindow<Hours>, ScheduleError> {
    if let Value::String(text) = v {
        return parse_lesson(text).map_err(|reason| ScheduleError::at(path, reason));
    }
    let map = json::object(v, path)?;
    json::deny_unknown(map, path, &["weekday", "start", "end", "periods"])?;
    let wd_path = json::key(path, "weekday");
    let name = json::string(json::required(map, path, "weekday")?, &wd_path)?;
    let weekday = parse_weekday(name).ok_or_else(|| {
        ScheduleError::at(
            &wd_path,
            format!("must be one of mon, tue, wed, thu, fri, sat, sun, not {name:?}"),
        )
    })?;
    let time = parse_hours(map, path)?.ok_or_else(|| {
        ScheduleError::at(
            &json::key(path, "start"),
            "is required (or give the school's periods in \"periods\")",
        )
    })?;
    Ok(WeeklyWindow { weekday, time })
}

/// "Di 2-3": a weekday (as `weekday` accepts it), a space, the school's periods as
/// lesson requests write them.
fn parse_lesson(text: &str) -> Result<WeeklyWindow<Hours>, String> {
    let bad = || {
        format!(
            "must be a weekday and the school's periods like \"Di 2-3\", or an object, not {text:?}"
        )
    };
    let (day, periods) = text
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(bad)?;
    let weekday = parse_weekday(day).ok_or_else(bad)?;
    let span = PeriodSpan::parse(periods).map_err(|_| bad())?;
    Ok(WeeklyWindow {
        weekday,
        time: Hours::Periods(span),
    })
}

fn parse_date_window(v: &Value, path: &str) -> Result<DateWindow<Hours>, ScheduleError> {
    let map = json::object(v, path)?;
    json::deny_unknown(map, path, &["date", "start", "end", "periods"])?;
    let date = json::date(json::required(map, path, "date")?, &json::key(path, "date"))?;
    Ok(DateWindow {
        date,
        time: parse_hours(map, path)?,
    })
}

fn parse_range(v: &Value, path: &str) -> Result<DateRange<Hours>, ScheduleError> {
    let map = json::object(v, path)?;
    json::deny_unknown(map, path, &["from", "to", "start", "end", "periods"])?;
    let from = json::date(json::required(map, path, "from")?, &json::key(path, "from"))?;
    let to = json::date(json::required(map, path, "to")?, &json::key(path, "to"))?;
    let time = parse_hours(map, path)?;
    DateRange::new(from, to, time).map_err(|e| e.under(path))
}

/// A window's hours: `start`/`end`, or `periods`, or neither (`None`: the whole day).
fn parse_hours(map: &Map<String, Value>, path: &str) -> Result<Option<Hours>, ScheduleError> {
    let clock = parse_time_range(map, path)?;
    let Some(v) = json::field(map, "periods") else {
        return Ok(clock.map(Hours::Clock));
    };
    let p_path = json::key(path, "periods");
    if clock.is_some() {
        return Err(ScheduleError::at(
            &p_path,
            "give start and end, or periods, not both",
        ));
    }
    let text = json::string(v, &p_path)?;
    PeriodSpan::parse(text)
        .map(|span| Some(Hours::Periods(span)))
        .map_err(|e| ScheduleError::at(&p_path, e.to_string()))
}

/// `start`/`end` of a window: both or neither (`None`).
fn parse_time_range(
    map: &Map<String, Value>,
    path: &str,
) -> Result<Option<TimeRange>, ScheduleError> {
    let read = |name: &str| {
        json::field(map, name)
            .map(|v| json::time(v, &json::key(path, name)))
            .transpose()
    };
    match (read("start")?, read("end")?) {
        (Some(start), Some(end)) => TimeRange::new(start, end)
            .map(Some)
            .map_err(|e| e.under(path)),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ScheduleError::at(
            &json::key(path, "end"),
            "is required when start is given",
        )),
        (None, Some(_)) => Err(ScheduleError::at(
            &json::key(path, "start"),
            "is required when end is given",
        )),
    }
}

/// `mon`..`sun`, full English names, or German two-letter abbreviations; any case.
fn parse_weekday(s: &str) -> Option<Weekday> {
    let s = s.trim().to_ascii_lowercase();
    Some(match s.as_str() {
        "mon" | "monday" | "mo" => Weekday::Mon,
        "tue" | "tuesday" | "di" => Weekday::Tue,
        "wed" | "wednesday" | "mi" => Weekday::Wed,
        "thu" | "thursday" | "do" => Weekday::Thu,
        "fri" | "friday" | "fr" => Weekday::Fri,
        "sat" | "saturday" | "sa" => Weekday::Sat,
        "sun" | "sunday" | "so" => Weekday::Sun,
        _ => return None,
    })
}

fn weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

impl Schedule {
    /// Parses and validates the admin's JSON in clock times; the error names the field
    /// path. A window naming the school's periods is refused here (no school known):
    /// parse a [`ScheduleSpec`] and [`ScheduleSpec::resolve`] it with the school's table.
    pub fn parse_json(value: &Value) -> Result<Schedule, ScheduleError> {
        ScheduleSpec::parse_json(value)?.resolve(None)
    }

    /// The admin-facing JSON (the shape [`Schedule::parse_json`] reads; defaults written out).
    pub fn to_json(&self) -> Value {
        // Serializing plain strings, numbers and dates into a Value cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl ScheduleSpec {
    /// Parses and validates the admin's JSON; period names are checked for their
    /// syntax only (see [`ScheduleSpec::resolve`]). The error names the field path.
    pub fn parse_json(value: &Value) -> Result<ScheduleSpec, ScheduleError> {
        let map = json::object(value, "")?;
        let kind = json::string(json::required(map, "", "kind")?, "kind")?;
        match kind {
            "always" => {
                json::deny_unknown(map, "", &["kind"])?;
                Ok(ScheduleSpec::Always)
            }
            "windows" => WindowSchedule::parse_map(map).map(ScheduleSpec::Windows),
            other => Err(ScheduleError::at(
                "kind",
                format!("must be \"always\" or \"windows\", not {other:?}"),
            )),
        }
    }

    /// Whether a window names the school's periods (the assignment then needs a school).
    pub fn uses_periods(&self) -> bool {
        let ScheduleSpec::Windows(w) = self else {
            return false;
        };
        let periods = |h: Option<&Hours>| matches!(h, Some(Hours::Periods(_)));
        w.weekly.iter().any(|x| periods(Some(&x.time)))
            || w.dates.iter().any(|x| periods(x.time.as_ref()))
            || w.ranges.iter().any(|x| periods(x.time.as_ref()))
    }

    /// The schedule in clock times under the school's current `periods` (`None`: the
    /// assignment belongs to no school). The error names the window
    /// (`weekly[0].periods`) and, for an unknown period, the periods that exist.
    pub fn resolve(&self, periods: Option<&PeriodTable>) -> Result<Schedule, ScheduleError> {
        let ScheduleSpec::Windows(w) = self else {
            return Ok(Schedule::Always);
        };
        let mut out = w.map_hours(|hours, path| match hours {
            Hours::Clock(t) => Ok(*t),
            Hours::Periods(span) => {
                let path = json::key(path, "periods");
                let table = periods.ok_or_else(|| {
                    ScheduleError::at(
                        &path,
                        "the school's periods need an assignment within one school \
                         (a school, class, cart or a school's device); give start and end instead",
                    )
                })?;
                let (start, end) = table
                    .resolve_span(span)
                    .map_err(|e| ScheduleError::at(&path, e.to_string()))?;
                TimeRange::new(start, end).map_err(|e| e.under(&path))
            }
        })?;
        out.dates.sort_unstable();
        Ok(Schedule::Windows(out))
    }

    /// The admin-facing JSON as written: periods stay periods, defaults written out.
    pub fn to_json(&self) -> Value {
        // Serializing plain strings, numbers and dates into a Value cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl From<Schedule> for ScheduleSpec {
    fn from(s: Schedule) -> Self {
        match s {
            Schedule::Always => ScheduleSpec::Always,
            Schedule::Windows(w) => {
                let Ok(w) = w.map_hours(|t, _| Ok::<_, Infallible>(Hours::Clock(*t)));
                ScheduleSpec::Windows(w)
            }
        }
    }
}

/// How a window's hours are written: (`start`, `end`) or `periods`.
trait WriteHours {
    fn write(&self) -> (Option<String>, Option<String>, Option<String>);
}

impl WriteHours for TimeRange {
    fn write(&self) -> (Option<String>, Option<String>, Option<String>) {
        (
            Some(json::format_time(self.start)),
            Some(json::format_time(self.end)),
            None,
        )
    }
}

impl WriteHours for Hours {
    fn write(&self) -> (Option<String>, Option<String>, Option<String>) {
        match self {
            Hours::Clock(t) => t.write(),
            Hours::Periods(p) => (None, None, Some(p.as_str().to_owned())),
        }
    }
}

fn write_hours<T: WriteHours>(t: Option<&T>) -> (Option<String>, Option<String>, Option<String>) {
    t.map_or((None, None, None), WriteHours::write)
}

/// The JSON of a window schedule.
fn wire<T: WriteHours>(w: &WindowSchedule<T>) -> ScheduleJson {
    ScheduleJson::Windows {
        timezone: w.timezone.name().to_owned(),
        weekly: w
            .weekly
            .iter()
            .map(|x| {
                let (start, end, periods) = x.time.write();
                WeeklyJson {
                    weekday: weekday_name(x.weekday).to_owned(),
                    start,
                    end,
                    periods,
                }
            })
            .collect(),
        dates: w
            .dates
            .iter()
            .map(|x| {
                let (start, end, periods) = write_hours(x.time.as_ref());
                DateJson {
                    date: x.date,
                    start,
                    end,
                    periods,
                }
            })
            .collect(),
        ranges: w
            .ranges
            .iter()
            .map(|x| {
                let (start, end, periods) = write_hours(x.time.as_ref());
                RangeJson {
                    from: x.from,
                    to: x.to,
                    start,
                    end,
                    periods,
                }
            })
            .collect(),
        valid_from: w.valid_from,
        valid_until: w.valid_until,
        lead_minutes: w.lead.minutes(),
        after: w.after,
        exclude_holidays: w.exclude_holidays,
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Schedule::Always => ScheduleJson::Always,
            Schedule::Windows(w) => wire(w),
        }
        .serialize(serializer)
    }
}

impl Serialize for ScheduleSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ScheduleSpec::Always => ScheduleJson::Always,
            ScheduleSpec::Windows(w) => wire(w),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Schedule::parse_json(&value).map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for ScheduleSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        ScheduleSpec::parse_json(&value).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}–{}",
            json::format_time(self.start),
            json::format_time(self.end)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        Schedule::parse_json(&v).unwrap_err().to_string()
    }

    fn class_7b() -> Value {
        json!({
            "kind": "windows",
            "timezone": "Europe/Berlin",
            "weekly": [
                {"weekday": "tue", "start": "08:00", "end": "09:30"},
                {"weekday": "thu", "start": "10:00", "end": "11:30"}
            ],
            "dates": [{"date": "2026-12-01", "start": "10:00", "end": "11:30"}],
            "ranges": [{"from": "2026-12-01", "to": "2026-12-18", "start": "08:00", "end": "13:00"}],
            "valid_from": "2026-11-01",
            "valid_until": "2027-01-31",
            "lead_minutes": 60,
            "after": "remove",
            "exclude_holidays": true
        })
    }

    #[test]
    fn always_is_just_a_kind() {
        assert_eq!(
            Schedule::parse_json(&json!({"kind": "always"})),
            Ok(Schedule::Always)
        );
        assert_eq!(
            err(json!({"kind": "always", "lead_minutes": 5})),
            "lead_minutes: unknown field (expected one of: kind)"
        );
    }

    #[test]
    fn the_full_example_parses_and_round_trips() {
        let s = Schedule::parse_json(&class_7b()).unwrap();
        let Schedule::Windows(w) = &s else {
            panic!("windows expected")
        };
        assert_eq!(w.timezone(), chrono_tz::Europe::Berlin);
        assert_eq!(w.weekly().len(), 2);
        assert_eq!(w.weekly()[1].weekday, Weekday::Thu);
        assert_eq!(w.lead().minutes(), 60);
        assert_eq!(w.after(), AfterWindow::Remove);
        assert_eq!(s.to_json(), class_7b());
        let via_serde: Schedule = serde_json::from_value(class_7b()).unwrap();
        assert_eq!(via_serde, s);
    }

    #[test]
    fn defaults_are_berlin_sixty_minutes_keep_and_holidays_excluded() {
        let s = Schedule::parse_json(&json!({
            "kind": "windows",
            "dates": [{"date": "2026-12-01"}]
        }))
        .unwrap();
        assert_eq!(
            s.to_json(),
            json!({
                "kind": "windows",
                "timezone": "Europe/Berlin",
                "dates": [{"date": "2026-12-01"}],
                "lead_minutes": 60,
                "after": "keep",
                "exclude_holidays": true
            })
        );
    }

    #[test]
    fn errors_name_the_field_path() {
        let mut v = class_7b();
        v["weekly"][1]["end"] = json!("09:00");
        assert_eq!(err(v), "weekly[1].end: must be after start");

        let mut v = class_7b();
        v["timezone"] = json!("Europe/Berln");
        assert!(err(v).starts_with("timezone: unknown time zone \"Europe/Berln\""));

        let mut v = class_7b();
        v["ranges"][0]["to"] = json!("2026-11-30");
        assert_eq!(err(v), "ranges[0].to: must not be before from");

        let mut v = class_7b();
        v["lead_minutes"] = json!(1441);
        assert_eq!(err(v), "lead_minutes: must be between 0 and 1440");

        let mut v = class_7b();
        v["lead_minutes"] = json!(-5);
        assert_eq!(
            err(v),
            "lead_minutes: must be a whole number between 0 and 1440"
        );

        let mut v = class_7b();
        v["weekly"][0]["weekday"] = json!("tuesdy");
        assert!(err(v).starts_with("weekly[0].weekday: must be one of mon"));

        let mut v = class_7b();
        v["weekly"][0]["start"] = json!("8 Uhr");
        assert_eq!(
            err(v),
            "weekly[0].start: must be a time of day \"HH:MM\", not \"8 Uhr\""
        );

        let mut v = class_7b();
        v["dates"][0].as_object_mut().unwrap().remove("end");
        assert_eq!(err(v), "dates[0].end: is required when start is given");

        let mut v = class_7b();
        v["weekly"][0].as_object_mut().unwrap().remove("weekday");
        assert_eq!(err(v), "weekly[0].weekday: is required");

        let mut v = class_7b();
        v["lead_minute"] = json!(30);
        assert!(err(v).starts_with("lead_minute: unknown field"));

        let mut v = class_7b();
        v["after"] = json!("delete");
        assert_eq!(
            err(v),
            "after: must be \"remove\" or \"keep\", not \"delete\""
        );

        let mut v = class_7b();
        v["valid_until"] = json!("2026-10-01");
        assert_eq!(err(v), "valid_until: must not be before valid_from");

        let mut v = class_7b();
        v["dates"][0]["date"] = json!("2027-02-02");
        assert_eq!(
            err(v),
            "dates[0].date: lies outside valid_from..valid_until"
        );

        let mut v = class_7b();
        v["dates"][0]["date"] = json!("0226-12-01");
        assert_eq!(err(v), "dates[0].date: year must be between 2000 and 2199");

        assert_eq!(err(json!([])), "must be a JSON object");
        assert_eq!(
            err(json!({"kind": "sometimes"})),
            "kind: must be \"always\" or \"windows\", not \"sometimes\""
        );
        assert!(err(json!({"kind": "windows"}))
            .starts_with("weekly: a \"windows\" schedule needs at least one window"));
    }

    #[test]
    fn at_most_200_windows_and_the_error_names_the_first_one_too_many() {
        let weekly: Vec<Value> = (0..150)
            .map(|_| json!({"weekday": "mon", "start": "08:00", "end": "09:00"}))
            .collect();
        let dates: Vec<Value> = (0..60).map(|_| json!({"date": "2026-12-01"})).collect();
        let v = json!({"kind": "windows", "weekly": weekly, "dates": dates});
        assert_eq!(
            err(v),
            "dates[50]: too many windows: at most 200 in weekly, dates and ranges together"
        );
    }

    #[test]
    fn german_weekday_abbreviations_are_accepted() {
        let s = Schedule::parse_json(&json!({
            "kind": "windows",
            "weekly": [{"weekday": "Di", "start": "08:00", "end": "09:30"}]
        }))
        .unwrap();
        assert_eq!(s.to_json()["weekly"][0]["weekday"], json!("tue"));
    }

    fn periods(v: Value) -> PeriodTable {
        PeriodTable::parse_json(&v).unwrap()
    }

    fn gymnasium() -> PeriodTable {
        periods(json!({
            "1": {"start": "08:00", "end": "08:45"},
            "2": {"start": "08:50", "end": "09:35"},
            "3": {"start": "09:45", "end": "10:30"}
        }))
    }

    fn tuesday_periods() -> Value {
        json!({
            "kind": "windows",
            "weekly": ["Di 2-3", {"weekday": "thu", "periods": "1"}],
            "dates": [{"date": "2026-12-02", "periods": "3"}],
            "ranges": [{"from": "2026-12-14", "to": "2026-12-15", "periods": "1-2"}],
            "lead_minutes": 0,
            "after": "remove"
        })
    }

    #[test]
    fn periods_are_kept_as_written_and_resolved_with_the_schools_table() {
        let spec = ScheduleSpec::parse_json(&tuesday_periods()).unwrap();
        assert!(spec.uses_periods());
        let written = spec.to_json();
        assert_eq!(
            written["weekly"],
            json!([{"weekday": "tue", "periods": "2-3"}, {"weekday": "thu", "periods": "1"}])
        );
        assert_eq!(
            written["dates"],
            json!([{"date": "2026-12-02", "periods": "3"}])
        );
        assert_eq!(
            ScheduleSpec::parse_json(&written).unwrap(),
            spec,
            "what is written reads back the same"
        );
        let Schedule::Windows(w) = spec.resolve(Some(&gymnasium())).unwrap() else {
            panic!("windows expected")
        };
        let t = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        assert_eq!(w.weekly()[0].weekday, Weekday::Tue);
        assert_eq!(
            w.weekly()[0].time,
            TimeRange::new(t("08:50"), t("10:30")).unwrap()
        );
        assert_eq!(
            w.weekly()[1].time,
            TimeRange::new(t("08:00"), t("08:45")).unwrap()
        );
        assert_eq!(
            w.dates()[0].time,
            Some(TimeRange::new(t("09:45"), t("10:30")).unwrap())
        );
        assert_eq!(
            w.ranges()[0].time(),
            Some(TimeRange::new(t("08:00"), t("09:35")).unwrap())
        );
        // Clock-time schedules are specs without periods and write the same JSON.
        let clock = Schedule::parse_json(&class_7b()).unwrap();
        let as_spec = ScheduleSpec::from(clock.clone());
        assert!(!as_spec.uses_periods());
        assert_eq!(as_spec.to_json(), clock.to_json());
        assert_eq!(as_spec.resolve(None), Ok(clock));
    }

    #[test]
    fn a_change_of_the_period_times_moves_the_window() {
        let spec = ScheduleSpec::parse_json(&tuesday_periods()).unwrap();
        let cal = crate::Calendar::empty();
        // Tuesday 8 December 2026, 08:55 in Berlin (07:55 UTC): inside period 2.
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-08T07:55:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let now = spec.resolve(Some(&gymnasium())).unwrap();
        assert!(now.evaluate(at, &cal).desired);
        let later = periods(json!({
            "1": {"start": "08:00", "end": "08:45"},
            "2": {"start": "09:00", "end": "09:45"},
            "3": {"start": "09:50", "end": "10:35"}
        }));
        let moved = spec.resolve(Some(&later)).unwrap();
        assert!(
            !moved.evaluate(at, &cal).desired,
            "period 2 now starts at 09:00"
        );
    }

    #[test]
    fn period_errors_name_the_window_and_the_periods_that_exist() {
        let spec = ScheduleSpec::parse_json(&tuesday_periods()).unwrap();
        let short = periods(
            json!({"1": {"start": "08:00", "end": "08:45"}, "2": {"start": "08:50", "end": "09:35"}}),
        );
        assert_eq!(
            spec.resolve(Some(&short)).unwrap_err().to_string(),
            "weekly[0].periods: unknown period \"3\" (the school's periods: 1, 2)"
        );
        assert!(spec.resolve(None).unwrap_err().to_string().starts_with(
            "weekly[0].periods: the school's periods need an assignment within one school"
        ));
        assert!(err(tuesday_periods()).starts_with("weekly[0].periods: the school's periods need"));

        let with = |weekly: Value| {
            ScheduleSpec::parse_json(&json!({"kind": "windows", "weekly": [weekly]}))
                .unwrap_err()
                .to_string()
        };
        assert!(with(json!("Dienstag 2-3"))
            .starts_with("weekly[0]: must be a weekday and the school's periods like \"Di 2-3\""));
        assert!(with(json!("Di")).starts_with("weekly[0]: must be a weekday"));
        assert_eq!(
            with(json!({"weekday": "di", "start": "08:00", "end": "09:00", "periods": "2"})),
            "weekly[0].periods: give start and end, or periods, not both"
        );
        assert!(with(json!({"weekday": "di", "periods": "2-"}))
            .starts_with("weekly[0].periods: must name a period"));
        assert!(with(json!({"weekday": "di"}))
            .starts_with("weekly[0].start: is required (or give the school's periods"));
    }

    #[test]
    fn the_builder_runs_the_same_checks() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let e = WindowSchedule::builder()
            .date(d("2026-12-01"), None)
            .valid_from(d("2027-01-01"))
            .build()
            .unwrap_err();
        assert_eq!(e.path(), "dates[0].date");
        assert_eq!(e.reason(), "lies outside valid_from..valid_until");
        let t = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        assert_eq!(
            TimeRange::new(t("09:00"), t("09:00"))
                .unwrap_err()
                .to_string(),
            "end: must be after start"
        );
    }
}
