//! A school's named lesson periods ("1" = 08:00–08:45, …), so a teacher can ask for "2nd–3rd period".
//!
//! JSON, either an object keyed by name or a list (kept in time order either way):
//!
//! ```json
//! {"1": {"start": "08:00", "end": "08:45"}, "2": {"start": "08:50", "end": "09:35"}}
//! [{"name": "1", "start": "08:00", "end": "08:45"}, {"name": "2", "start": "08:50", "end": "09:35"}]
//! ```
//!
//! Names match ignoring case, surrounding spaces and a trailing dot ("2." is "2").

use chrono::NaiveTime;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::json;
use super::spec::{ScheduleError, TimeRange};

/// Most periods one table may hold.
pub const MAX_PERIODS: usize = 30;
/// Longest period name.
const MAX_NAME_CHARS: usize = 32;

/// A period table that did not validate, or a period request it cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// The table's JSON is wrong; `path` names the field (`2.end`, `[1].start`).
    #[error("{}", json::render(.path, .reason))]
    Invalid {
        /// Path of the offending field.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// No period of that name; `known` lists the table's periods in time order.
    #[error("unknown period {name:?} ({})", known_periods(.known))]
    UnknownPeriod {
        /// The name asked for.
        name: String,
        /// The periods that exist.
        known: Vec<String>,
    },
    /// The period text is empty or too long.
    #[error("must name a period or a span of periods like \"2\" or \"2-3\", not {0:?}")]
    BadSpan(String),
    /// The last period ends before the first one starts ("3rd–2nd").
    #[error("period {to:?} ends before period {from:?} starts")]
    EndBeforeStart {
        /// The first period asked for.
        from: String,
        /// The last period asked for.
        to: String,
    },
}

/// "the school's periods: 1, 2, 3", or how to get some.
fn known_periods(known: &[String]) -> String {
    if known.is_empty() {
        "the school has no periods; set them in its lesson settings".to_owned()
    } else {
        format!("the school's periods: {}", known.join(", "))
    }
}

impl From<ScheduleError> for PeriodError {
    fn from(e: ScheduleError) -> Self {
        PeriodError::Invalid {
            path: e.path().to_owned(),
            reason: e.reason().to_owned(),
        }
    }
}

/// One named period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    name: String,
    time: TimeRange,
}

impl Period {
    /// The name as written ("1", "Mittagspause").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Local start and end.
    pub fn time(&self) -> TimeRange {
        self.time
    }
}

/// A school's periods, sorted by start time, names unique.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeriodTable {
    periods: Vec<Period>,
}

impl PeriodTable {
    /// Checks names (non-empty, unique, at most 32 characters) and count.
    pub fn new(
        periods: impl IntoIterator<Item = (String, TimeRange)>,
    ) -> Result<Self, PeriodError> {
        let mut out: Vec<Period> = Vec::new();
        for (i, (name, time)) in periods.into_iter().enumerate() {
            let name = name.trim().to_owned();
            let path = if name.is_empty() {
                json::index("", i)
            } else {
                name.clone()
            };
            if out.len() >= MAX_PERIODS {
                return Err(ScheduleError::at(
                    &path,
                    format!("too many periods (at most {MAX_PERIODS})"),
                )
                .into());
            }
            if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
                return Err(ScheduleError::at(
                    &path,
                    format!("name must have 1 to {MAX_NAME_CHARS} characters"),
                )
                .into());
            }
            if out.iter().any(|p| same_name(&p.name, &name)) {
                return Err(ScheduleError::at(&path, "name is used twice").into());
            }
            out.push(Period { name, time });
        }
        out.sort_by_key(|p| p.time);
        Ok(Self { periods: out })
    }

    /// Parses either JSON form; errors name the period (`2.end: must be after start`).
    pub fn parse_json(value: &Value) -> Result<Self, PeriodError> {
        let mut periods = Vec::new();
        match value {
            Value::Object(map) => {
                if map.len() > MAX_PERIODS {
                    return Err(ScheduleError::at(
                        "",
                        format!("too many periods (at most {MAX_PERIODS})"),
                    )
                    .into());
                }
                for (name, v) in map {
                    periods.push((name.clone(), parse_time(v, name, &["start", "end"])?));
                }
            }
            Value::Array(list) => {
                if list.len() > MAX_PERIODS {
                    return Err(ScheduleError::at(
                        "",
                        format!("too many periods (at most {MAX_PERIODS})"),
                    )
                    .into());
                }
                for (i, v) in list.iter().enumerate() {
                    let path = json::index("", i);
                    let map = json::object(v, &path)?;
                    let name = json::string(
                        json::required(map, &path, "name")?,
                        &json::key(&path, "name"),
                    )?;
                    periods.push((
                        name.to_owned(),
                        parse_time(v, &path, &["name", "start", "end"])?,
                    ));
                }
            }
            _ => {
                return Err(
                    ScheduleError::at("", "must be a JSON object or array of periods").into(),
                )
            }
        }
        Self::new(periods)
    }

    /// All periods in time order.
    pub fn periods(&self) -> &[Period] {
        &self.periods
    }

    /// The period called `name`.
    pub fn get(&self, name: &str) -> Option<&Period> {
        self.periods.iter().find(|p| same_name(&p.name, name))
    }

    /// The names of all periods, in time order.
    pub fn names(&self) -> Vec<String> {
        self.periods.iter().map(|p| p.name.clone()).collect()
    }

    fn period(&self, name: &str) -> Result<&Period, PeriodError> {
        self.get(name).ok_or_else(|| PeriodError::UnknownPeriod {
            name: name.trim().to_owned(),
            known: self.names(),
        })
    }

    /// From the start of period `from` to the end of period `to` ("2", "3" → 08:50–10:30).
    pub fn resolve(&self, from: &str, to: &str) -> Result<(NaiveTime, NaiveTime), PeriodError> {
        let first = self.period(from)?;
        let last = self.period(to)?;
        let (start, end) = (first.time.start(), last.time.end());
        if end <= start {
            return Err(PeriodError::EndBeforeStart {
                from: first.name.clone(),
                to: last.name.clone(),
            });
        }
        Ok((start, end))
    }

    /// A teacher's text: one period ("2") or a span ("2-3", "2.–3.", "2 bis 3").
    pub fn resolve_text(&self, text: &str) -> Result<(NaiveTime, NaiveTime), PeriodError> {
        self.resolve_span(&PeriodSpan::parse(text)?)
    }

    /// The local time span a parsed [`PeriodSpan`] covers today in this table.
    pub fn resolve_span(&self, span: &PeriodSpan) -> Result<(NaiveTime, NaiveTime), PeriodError> {
        self.resolve(&span.from, &span.to)
    }
}

/// Longest period text ("Mittagspause bis 10", two names and a separator).
const MAX_SPAN_CHARS: usize = 2 * MAX_NAME_CHARS + 8;

/// Period text as lesson requests and schedules write it: one period ("2") or a span
/// ("2-3", "2.–3.", "2 bis 3"). Only the syntax is checked here; the names are looked
/// up in a school's [`PeriodTable`] when a time is needed, so a later change of the
/// school's period times applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeriodSpan {
    text: String,
    from: String,
    to: String,
}

impl PeriodSpan {
    /// Splits at the first of "–", "—", " bis ", "-"; both sides must be non-empty.
    pub fn parse(text: &str) -> Result<Self, PeriodError> {
        let text = text.trim();
        let bad = || PeriodError::BadSpan(text.to_owned());
        if text.is_empty() || text.chars().count() > MAX_SPAN_CHARS {
            return Err(bad());
        }
        let (from, to) = ["–", "—", " bis ", "-"]
            .iter()
            .find_map(|sep| text.split_once(sep))
            .unwrap_or((text, text));
        let (from, to) = (from.trim(), to.trim());
        if from.is_empty() || to.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            text: text.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
        })
    }

    /// The text as written (trimmed), e.g. "2-3".
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first period's name.
    pub fn first(&self) -> &str {
        &self.from
    }

    /// The last period's name (the first's for a single period).
    pub fn last(&self) -> &str {
        &self.to
    }
}

/// Reads `start`/`end` of one period at `path`, rejecting fields other than `allowed`.
fn parse_time(v: &Value, path: &str, allowed: &[&str]) -> Result<TimeRange, ScheduleError> {
    let map = json::object(v, path)?;
    json::deny_unknown(map, path, allowed)?;
    let start = json::time(
        json::required(map, path, "start")?,
        &json::key(path, "start"),
    )?;
    let end = json::time(json::required(map, path, "end")?, &json::key(path, "end"))?;
    TimeRange::new(start, end).map_err(|e| e.under(path))
}

/// Names compare ignoring case, surrounding spaces and a trailing dot.
fn same_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim().trim_end_matches('.').trim().to_owned();
    let (a, b) = (norm(a), norm(b));
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

#[derive(Serialize)]
struct PeriodOut {
    name: String,
    start: String,
    end: String,
}

/// JSON: the list form, in time order.
impl Serialize for PeriodTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.periods.iter().map(|p| PeriodOut {
            name: p.name.clone(),
            start: json::format_time(p.time.start()),
            end: json::format_time(p.time.end()),
        }))
    }
}

impl<'de> Deserialize<'de> for PeriodTable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        PeriodTable::parse_json(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hm(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }

    fn gymnasium() -> PeriodTable {
        PeriodTable::parse_json(&json!({
            "1": {"start": "08:00", "end": "08:45"},
            "2": {"start": "08:50", "end": "09:35"},
            "3": {"start": "09:45", "end": "10:30"},
            "Mittagspause": {"start": "12:10", "end": "12:55"}
        }))
        .unwrap()
    }

    #[test]
    fn teacher_asks_for_second_to_third_period() {
        let table = gymnasium();
        assert_eq!(table.resolve("2", "3"), Ok((hm("08:50"), hm("10:30"))));
        assert_eq!(table.resolve_text("2.–3."), Ok((hm("08:50"), hm("10:30"))));
        assert_eq!(table.resolve_text("2-3"), Ok((hm("08:50"), hm("10:30"))));
        assert_eq!(table.resolve_text("1"), Ok((hm("08:00"), hm("08:45"))));
        assert_eq!(
            table.resolve_text("mittagspause"),
            Ok((hm("12:10"), hm("12:55")))
        );
    }

    #[test]
    fn unknown_periods_and_backwards_spans_are_errors() {
        let table = gymnasium();
        assert_eq!(
            table.resolve("2", "9"),
            Err(PeriodError::UnknownPeriod {
                name: "9".into(),
                known: vec!["1".into(), "2".into(), "3".into(), "Mittagspause".into()]
            })
        );
        assert_eq!(
            table.resolve_text("2-9").unwrap_err().to_string(),
            "unknown period \"9\" (the school's periods: 1, 2, 3, Mittagspause)"
        );
        assert_eq!(
            PeriodTable::default()
                .resolve_text("1")
                .unwrap_err()
                .to_string(),
            "unknown period \"1\" (the school has no periods; set them in its lesson settings)"
        );
        assert_eq!(
            table.resolve("3", "1").unwrap_err().to_string(),
            "period \"1\" ends before period \"3\" starts"
        );
    }

    #[test]
    fn period_text_is_one_period_or_a_span() {
        let span = PeriodSpan::parse(" 2. bis 3. ").unwrap();
        assert_eq!(
            (span.as_str(), span.first(), span.last()),
            ("2. bis 3.", "2.", "3.")
        );
        let one = PeriodSpan::parse("5").unwrap();
        assert_eq!((one.first(), one.last()), ("5", "5"));
        for bad in ["", "  ", "2-", "-3", "–"] {
            assert_eq!(
                PeriodSpan::parse(bad),
                Err(PeriodError::BadSpan(bad.trim().to_owned())),
                "{bad:?}"
            );
        }
        assert!(PeriodSpan::parse(&"9".repeat(80)).is_err());
        assert_eq!(
            gymnasium().resolve_span(&span),
            Ok((hm("08:50"), hm("10:30")))
        );
    }

    #[test]
    fn both_json_forms_read_the_same_and_keep_time_order() {
        let list = PeriodTable::parse_json(&json!([
            {"name": "Mittagspause", "start": "12:10", "end": "12:55"},
            {"name": "3", "start": "09:45", "end": "10:30"},
            {"name": "1", "start": "08:00", "end": "08:45"},
            {"name": "2", "start": "08:50", "end": "09:35"}
        ]))
        .unwrap();
        assert_eq!(list, gymnasium());
        let names: Vec<&str> = list.periods().iter().map(Period::name).collect();
        assert_eq!(names, ["1", "2", "3", "Mittagspause"]);
        let back: PeriodTable =
            serde_json::from_value(serde_json::to_value(&list).unwrap()).unwrap();
        assert_eq!(back, list);
    }

    #[test]
    fn table_errors_name_the_period() {
        let e =
            PeriodTable::parse_json(&json!({"2": {"start": "09:35", "end": "08:50"}})).unwrap_err();
        assert_eq!(e.to_string(), "2.end: must be after start");
        let e = PeriodTable::parse_json(&json!([{"name": "1", "start": "8", "end": "08:45"}]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "[0].start: must be a time of day \"HH:MM\", not \"8\""
        );
        let e = PeriodTable::parse_json(&json!([
            {"name": "1", "start": "08:00", "end": "08:45"},
            {"name": "1.", "start": "08:50", "end": "09:35"}
        ]))
        .unwrap_err();
        assert_eq!(e.to_string(), "1.: name is used twice");
        let e = PeriodTable::parse_json(
            &json!({"1": {"start": "08:00", "end": "08:45", "room": "A1"}}),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("1.room: unknown field"));
    }
}
