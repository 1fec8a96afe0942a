//! When an assignment applies: validated schedules, school calendars, lesson periods and their evaluation.
//!
//! Pure logic: no I/O, no clock reads. Callers pass the instant `t` (UTC) and the
//! school's [`Calendar`]; the reconciler asks [`Schedule::evaluate`] once per
//! assignment and arms a timer for the smallest [`Evaluation::next_boundary`].
//!
//! Error policy: everything an admin or teacher writes is parsed here at the edge
//! ([`ScheduleSpec::parse_json`], [`Schedule::parse_json`], [`Calendar::parse_ics`], [`Calendar::parse_csv`],
//! [`PeriodTable::parse_json`]) into types that cannot hold invalid states; every
//! error names the field path or line. Evaluation never fails and never panics.
//!
//! Daylight saving (see [`local`]): a local time that does not exist (skipped by a
//! spring-forward) moves forward to the first instant that exists; an ambiguous local
//! time (repeated by a fall-back) means its earlier instant.

mod calendar;
mod eval;
mod json;
pub mod local;
mod periods;
mod spec;
mod wire;

pub use calendar::{Calendar, CalendarError, Closure};
pub use eval::{Evaluation, HORIZON_DAYS};
pub use periods::{Period, PeriodError, PeriodSpan, PeriodTable, MAX_PERIODS};
pub use spec::{
    AfterWindow, DateRange, DateWindow, Hours, LeadTime, Schedule, ScheduleError, ScheduleSpec,
    TimeRange, WeeklyWindow, WindowSchedule, WindowScheduleBuilder, DEFAULT_LEAD_MINUTES,
    DEFAULT_TIMEZONE, MAX_LEAD_MINUTES, MAX_WINDOWS, MAX_YEAR, MIN_YEAR,
};
#[cfg(feature = "utoipa")]
pub use wire::WeeklyItem;
pub use wire::{DateJson, RangeJson, ScheduleJson, WeeklyJson};
