//! School calendars: named closures (holidays, movable days off) as inclusive local date ranges, imported from iCalendar or CSV.
//!
//! An authority's calendar and a school's own closures combine with
//! [`Calendar::union`]. Which calendar applies to an assignment is the caller's choice.

use chrono::{Days, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::json::parse_date;

/// A calendar or closure that could not be read; names the line (1-based) or the closure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// A line of an imported ICS or CSV file is wrong.
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number in the file (for folded ICS lines: where the property starts).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A closure itself is wrong (empty name, `to` before `from`).
    #[error("closure {name:?}: {reason}")]
    Closure {
        /// The closure's name as given.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

fn line_err(line: usize, reason: impl Into<String>) -> CalendarError {
    CalendarError::Line {
        line,
        reason: reason.into(),
    }
}

/// A named run of days on which the school is closed, `from` to `to` inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Closure {
    name: String,
    from: NaiveDate,
    to: NaiveDate,
}

impl Closure {
    /// Checks a non-empty name and `from` <= `to`.
    pub fn new(
        name: impl Into<String>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Self, CalendarError> {
        let name = name.into().trim().to_owned();
        if name.is_empty() {
            return Err(CalendarError::Closure {
                name,
                reason: "name must not be empty".into(),
            });
        }
        if to < from {
            return Err(CalendarError::Closure {
                name,
                reason: format!("to ({to}) must not be before from ({from})"),
            });
        }
        Ok(Self { name, from, to })
    }

    /// E.g. "Weihnachtsferien".
    pub fn name(&self) -> &str {
        &self.name
    }

    /// First closed day.
    pub fn from(&self) -> NaiveDate {
        self.from
    }

    /// Last closed day (inclusive).
    pub fn to(&self) -> NaiveDate {
        self.to
    }

    /// Whether the school is closed on `day` because of this closure.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.from <= day && day <= self.to
    }
}

/// The closures of one school (its authority's plus its own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    /// Sorted by (from, to, name).
    closures: Vec<Closure>,
    /// Closed days as disjoint, sorted, non-adjacent inclusive spans (for binary search).
    spans: Vec<(NaiveDate, NaiveDate)>,
}

impl Calendar {
    /// No closures.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A calendar of these closures (overlaps are fine).
    pub fn new(mut closures: Vec<Closure>) -> Self {
        closures.sort_by(|a, b| (a.from, a.to, &a.name).cmp(&(b.from, b.to, &b.name)));
        closures.dedup();
        let mut spans: Vec<(NaiveDate, NaiveDate)> = Vec::with_capacity(closures.len());
        for c in &closures {
            match spans.last_mut() {
                // Overlapping or adjacent (next day): one span.
                Some(last) if c.from <= last.1.succ_opt().unwrap_or(last.1) => {
                    last.1 = last.1.max(c.to)
                }
                _ => spans.push((c.from, c.to)),
            }
        }
        Self { closures, spans }
    }

    /// The closures, sorted by start.
    pub fn closures(&self) -> &[Closure] {
        &self.closures
    }

    /// Both calendars' closures (an authority's holidays plus a school's own days off).
    pub fn union(&self, other: &Calendar) -> Calendar {
        Calendar::new(
            self.closures
                .iter()
                .chain(&other.closures)
                .cloned()
                .collect(),
        )
    }

    /// Whether the school is closed on `day`.
    pub fn is_closed(&self, day: NaiveDate) -> bool {
        self.span_containing(day).is_some()
    }

    /// A closure that covers `day`, for showing why a window does not occur.
    pub fn closure_on(&self, day: NaiveDate) -> Option<&Closure> {
        self.closures.iter().find(|c| c.contains(day))
    }

    /// The whole run of closed days around `day` (merged across overlapping closures).
    pub(super) fn span_containing(&self, day: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
        let i = self.spans.partition_point(|s| s.0 <= day);
        let span = *self.spans.get(i.checked_sub(1)?)?;
        (day <= span.1).then_some(span)
    }

    /// Reads an iCalendar file of all-day VEVENTs, as German school-holiday calendars
    /// publish them: `SUMMARY` is the name, `DTSTART;VALUE=DATE` the first day, and
    /// `DTEND` the day *after* the last (exclusive, RFC 5545). Without `DTEND` a
    /// `DURATION` of days/weeks counts, else the event is one day. Date-times at
    /// 00:00:00 are read as dates; other times, and `RRULE`, are rejected.
    pub fn parse_ics(text: &str) -> Result<Calendar, CalendarError> {
        let mut closures = Vec::new();
        let mut event: Option<IcsEvent> = None;
        let mut depth_in_event = 0usize; // nested components (VALARM) inside a VEVENT
        let mut saw_calendar = false;
        for (line, content) in unfold(text.strip_prefix('\u{feff}').unwrap_or(text)) {
            if content.trim().is_empty() {
                continue;
            }
            let (name, params, value) = split_property(&content)
                .ok_or_else(|| line_err(line, "not an iCalendar content line (NAME:value)"))?;
            if !saw_calendar {
                if !(name == "BEGIN" && value.eq_ignore_ascii_case("VCALENDAR")) {
                    return Err(line_err(
                        line,
                        "not an iCalendar file (expected BEGIN:VCALENDAR)",
                    ));
                }
                saw_calendar = true;
                continue;
            }
            match (name.as_str(), event.as_mut()) {
                ("BEGIN", None) if value.eq_ignore_ascii_case("VEVENT") => {
                    event = Some(IcsEvent::new(line));
                }
                ("BEGIN", Some(_)) => depth_in_event += 1,
                ("END", Some(_)) if depth_in_event > 0 => depth_in_event -= 1,
                ("END", Some(ev)) if value.eq_ignore_ascii_case("VEVENT") => {
                    closures.push(ev.finish()?);
                    event = None;
                }
                (_, Some(_)) if depth_in_event > 0 => {}
                ("SUMMARY", Some(ev)) => ev.summary = Some(unescape_text(value)),
                ("DTSTART", Some(ev)) => {
                    ev.start = Some(ics_date(&params, value, line, "DTSTART")?)
                }
                ("DTEND", Some(ev)) => ev.end = Some(ics_date(&params, value, line, "DTEND")?),
                ("DURATION", Some(ev)) => ev.duration_days = Some(ics_days(value, line)?),
                ("RRULE" | "RDATE", Some(_)) => {
                    return Err(line_err(
                        line,
                        format!("{name} (repeating events) is not supported; list each closure"),
                    ))
                }
                _ => {}
            }
        }
        if let Some(ev) = event {
            return Err(line_err(ev.line, "BEGIN:VEVENT without END:VEVENT"));
        }
        if !saw_calendar {
            return Err(line_err(
                1,
                "not an iCalendar file (expected BEGIN:VCALENDAR)",
            ));
        }
        Ok(Calendar::new(closures))
    }

    /// Reads `name,from,to` lines with ISO dates (`Herbstferien,2026-10-12,2026-10-24`).
    /// `to` is inclusive. The first line is a header if its dates do not parse.
    /// Blank lines and `#` comments are skipped; a line without commas may use `;`
    /// (spreadsheet exports); names may contain the separator (the last two fields
    /// are the dates) and may be quoted.
    pub fn parse_csv(text: &str) -> Result<Calendar, CalendarError> {
        let mut closures = Vec::new();
        let mut first = true;
        for (i, raw) in text
            .strip_prefix('\u{feff}')
            .unwrap_or(text)
            .lines()
            .enumerate()
        {
            let line = i + 1;
            let row = raw.trim();
            if row.is_empty() || row.starts_with('#') {
                continue;
            }
            let sep = if row.contains(',') { ',' } else { ';' };
            let mut fields = row.rsplitn(3, sep);
            let (to, from, name) = match (fields.next(), fields.next(), fields.next()) {
                (Some(to), Some(from), Some(name)) => (to, from, name),
                _ => return Err(line_err(line, "expected name,from,to")),
            };
            let (from_d, to_d) = (parse_date(unquote(from)), parse_date(unquote(to)));
            if first && from_d.is_none() && to_d.is_none() {
                first = false;
                continue; // header
            }
            first = false;
            let from = from_d.ok_or_else(|| {
                line_err(
                    line,
                    format!("from: expected a date YYYY-MM-DD, not {:?}", unquote(from)),
                )
            })?;
            let to = to_d.ok_or_else(|| {
                line_err(
                    line,
                    format!("to: expected a date YYYY-MM-DD, not {:?}", unquote(to)),
                )
            })?;
            let closure = Closure::new(unquote(name), from, to).map_err(|e| match e {
                CalendarError::Closure { reason, .. } => line_err(line, reason),
                other => other,
            })?;
            closures.push(closure);
        }
        Ok(Calendar::new(closures))
    }
}

/// An all-day VEVENT being read.
struct IcsEvent {
    line: usize,
    summary: Option<String>,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    duration_days: Option<u64>,
}

impl IcsEvent {
    fn new(line: usize) -> Self {
        Self {
            line,
            summary: None,
            start: None,
            end: None,
            duration_days: None,
        }
    }

    fn finish(&self) -> Result<Closure, CalendarError> {
        let start = self
            .start
            .ok_or_else(|| line_err(self.line, "VEVENT without DTSTART"))?;
        let last = match (self.end, self.duration_days) {
            // DTEND is exclusive: the last closed day is the day before.
            (Some(end), _) if end <= start => {
                return Err(line_err(self.line, "VEVENT: DTEND must be after DTSTART"))
            }
            (Some(end), _) => end.pred_opt(),
            (None, Some(0)) => {
                return Err(line_err(
                    self.line,
                    "VEVENT: DURATION must be at least one day",
                ))
            }
            (None, Some(days)) => start.checked_add_days(Days::new(days - 1)),
            (None, None) => Some(start),
        }
        .ok_or_else(|| line_err(self.line, "VEVENT: date out of range"))?;
        let name = self.summary.clone().unwrap_or_default();
        Closure::new(name, start, last).map_err(|e| match e {
            CalendarError::Closure { reason, .. } => {
                line_err(self.line, format!("VEVENT: {reason}"))
            }
            other => other,
        })
    }
}

/// Logical lines with the 1-based number of their first physical line (RFC 5545 §3.1 folding).
fn unfold(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), out.last_mut()) {
            (Some(rest), Some(last)) => last.1.push_str(rest),
            _ => out.push((i + 1, raw.to_owned())),
        }
    }
    out
}

/// `NAME;PARAM=x;PARAM2="a:b":value` → (upper-case NAME, params text, value).
fn split_property(line: &str) -> Option<(String, String, &str)> {
    let mut in_quotes = false;
    let colon = line.char_indices().find_map(|(i, c)| {
        match c {
            '"' => in_quotes = !in_quotes,
            ':' if !in_quotes => return Some(i),
            _ => {}
        }
        None
    })?;
    let (head, value) = (&line[..colon], &line[colon + 1..]);
    let (name, params) = head.split_once(';').unwrap_or((head, ""));
    if name.is_empty() {
        return None;
    }
    Some((
        name.trim().to_ascii_uppercase(),
        params.to_ascii_uppercase(),
        value.trim(),
    ))
}

/// A DTSTART/DTEND value as a date: `20261221`, or a date-time at midnight.
fn ics_date(
    params: &str,
    value: &str,
    line: usize,
    name: &str,
) -> Result<NaiveDate, CalendarError> {
    let bad = |why: &str| line_err(line, format!("{name}: {why}, not {value:?}"));
    if value.len() == 8 {
        return NaiveDate::parse_from_str(value, "%Y%m%d")
            .map_err(|_| bad("expected a date YYYYMMDD"));
    }
    if params.contains("VALUE=DATE") && !params.contains("VALUE=DATE-TIME") {
        return Err(bad("expected a date YYYYMMDD"));
    }
    let at = NaiveDateTime::parse_from_str(value.trim_end_matches('Z'), "%Y%m%dT%H%M%S")
        .map_err(|_| bad("expected a date YYYYMMDD"))?;
    if at.time() != chrono::NaiveTime::MIN {
        return Err(bad("holiday calendars need all-day dates (VALUE=DATE)"));
    }
    Ok(at.date())
}

/// A DURATION in whole days or weeks (`P14D`, `P2W`).
fn ics_days(value: &str, line: usize) -> Result<u64, CalendarError> {
    let bad = || {
        line_err(
            line,
            format!("DURATION: expected whole days or weeks like P14D or P2W, not {value:?}"),
        )
    };
    let body = value.strip_prefix('P').ok_or_else(bad)?;
    let (n, per) = if let Some(d) = body.strip_suffix('D') {
        (d, 1)
    } else if let Some(w) = body.strip_suffix('W') {
        (w, 7)
    } else {
        return Err(bad());
    };
    let n: u64 = n.parse().map_err(|_| bad())?;
    n.checked_mul(per).filter(|d| *d <= 3660).ok_or_else(bad)
}

/// RFC 5545 TEXT unescaping: `\,` `\;` `\\` `\n`.
fn unescape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push(' '),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn unquote(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(f)
        .trim()
}

#[derive(Serialize, Deserialize)]
struct ClosureJson {
    name: String,
    from: NaiveDate,
    to: NaiveDate,
}

/// JSON: a list of `{"name": "Weihnachtsferien", "from": "2026-12-21", "to": "2027-01-02"}`.
impl Serialize for Calendar {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.closures.iter().map(|c| ClosureJson {
            name: c.name.clone(),
            from: c.from,
            to: c.to,
        }))
    }
}

impl<'de> Deserialize<'de> for Calendar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Vec::<ClosureJson>::deserialize(deserializer)?;
        let closures = raw
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                Closure::new(c.name, c.from, c.to)
                    .map_err(|e| serde::de::Error::custom(format!("[{i}]: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Calendar::new(closures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    const SH_2026: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//Schulferien//DE\r\n\
BEGIN:VEVENT\r\n\
UID:herbst-2026@example\r\n\
SUMMARY:Herbstferien 2026 Schleswig-Holstein\r\n\
DTSTART;VALUE=DATE:20261019\r\n\
DTEND;VALUE=DATE:20261031\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
SUMMARY;LANGUAGE=de:Weihnachts\r\n\
\x20ferien\\, SH\r\n\
DTSTART;VALUE=DATE:20261221\r\n\
DTEND;VALUE=DATE:20270103\r\n\
BEGIN:VALARM\r\n\
ACTION:DISPLAY\r\n\
DTSTART:19700101T090000\r\n\
END:VALARM\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
SUMMARY:Beweglicher Ferientag\r\n\
DTSTART:20270507\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

    #[test]
    fn ics_dtend_is_exclusive_and_folded_lines_join() {
        let cal = Calendar::parse_ics(SH_2026).unwrap();
        let c = cal.closures();
        assert_eq!(c.len(), 3);
        assert_eq!(
            (c[0].name(), c[0].from(), c[0].to()),
            (
                "Herbstferien 2026 Schleswig-Holstein",
                d("2026-10-19"),
                d("2026-10-30")
            )
        );
        assert_eq!(
            (c[1].name(), c[1].from(), c[1].to()),
            ("Weihnachtsferien, SH", d("2026-12-21"), d("2027-01-02"))
        );
        // No DTEND: one day.
        assert_eq!((c[2].from(), c[2].to()), (d("2027-05-07"), d("2027-05-07")));
        assert!(cal.is_closed(d("2027-01-02")));
        assert!(!cal.is_closed(d("2027-01-03")));
        assert!(!cal.is_closed(d("2026-12-20")));
        assert_eq!(
            cal.closure_on(d("2026-12-24")).map(Closure::name),
            Some("Weihnachtsferien, SH")
        );
    }

    #[test]
    fn ics_errors_name_the_line() {
        let bad = SH_2026.replace("DTEND;VALUE=DATE:20270103", "DTEND;VALUE=DATE:2027013");
        assert_eq!(
            Calendar::parse_ics(&bad).unwrap_err().to_string(),
            "line 14: DTEND: expected a date YYYYMMDD, not \"2027013\""
        );
        let timed = SH_2026.replace("DTSTART;VALUE=DATE:20261019", "DTSTART:20261019T080000");
        assert_eq!(
            Calendar::parse_ics(&timed).unwrap_err().to_string(),
            "line 7: DTSTART: holiday calendars need all-day dates (VALUE=DATE), not \"20261019T080000\""
        );
        let backwards = SH_2026.replace("DTEND;VALUE=DATE:20261031", "DTEND;VALUE=DATE:20261019");
        assert_eq!(
            Calendar::parse_ics(&backwards).unwrap_err().to_string(),
            "line 4: VEVENT: DTEND must be after DTSTART"
        );
        assert_eq!(
            Calendar::parse_ics("name,from,to\n")
                .unwrap_err()
                .to_string(),
            "line 1: not an iCalendar content line (NAME:value)"
        );
        let unterminated = SH_2026.replace("END:VCALENDAR\r\n", "BEGIN:VEVENT\r\n");
        assert!(Calendar::parse_ics(&unterminated)
            .unwrap_err()
            .to_string()
            .ends_with("BEGIN:VEVENT without END:VEVENT"));
    }

    #[test]
    fn csv_with_header_comments_and_semicolons() {
        let cal = Calendar::parse_csv(
            "name,from,to\n\
             # Schleswig-Holstein 2026/27\n\
             Herbstferien,2026-10-19,2026-10-30\n\
             \n\
             \"Weihnachtsferien, SH\",2026-12-21,2027-01-02\n\
             Beweglicher Ferientag;2027-05-07;2027-05-07\n",
        )
        .unwrap();
        let names: Vec<&str> = cal.closures().iter().map(Closure::name).collect();
        assert_eq!(
            names,
            [
                "Herbstferien",
                "Weihnachtsferien, SH",
                "Beweglicher Ferientag"
            ]
        );
        assert_eq!(cal.closures()[1].to(), d("2027-01-02"));
    }

    #[test]
    fn csv_errors_name_the_line() {
        let text = "Herbstferien,2026-10-19,2026-10-30\nWeihnachtsferien,2026-12-21,02.01.2027\n";
        assert_eq!(
            Calendar::parse_csv(text).unwrap_err().to_string(),
            "line 2: to: expected a date YYYY-MM-DD, not \"02.01.2027\""
        );
        assert_eq!(
            Calendar::parse_csv("Herbstferien,2026-10-30,2026-10-19\n")
                .unwrap_err()
                .to_string(),
            "line 1: to (2026-10-19) must not be before from (2026-10-30)"
        );
        assert_eq!(
            Calendar::parse_csv("a,b,c\nOstern 2027-03-29\n")
                .unwrap_err()
                .to_string(),
            "line 2: expected name,from,to"
        );
    }

    #[test]
    fn overlapping_and_adjacent_closures_form_one_span() {
        let c = |n: &str, a: &str, b: &str| Closure::new(n, d(a), d(b)).unwrap();
        let authority = Calendar::new(vec![c("Osterferien", "2027-03-29", "2027-04-10")]);
        let school = Calendar::new(vec![
            c("Brückentag", "2027-04-11", "2027-04-12"),
            c("Projekttage", "2027-04-05", "2027-04-06"),
        ]);
        let cal = authority.union(&school);
        assert_eq!(cal.closures().len(), 3);
        assert_eq!(
            cal.span_containing(d("2027-04-01")),
            Some((d("2027-03-29"), d("2027-04-12")))
        );
        assert_eq!(cal.span_containing(d("2027-04-13")), None);
        assert_eq!(cal.span_containing(d("2027-03-28")), None);
    }

    #[test]
    fn calendar_json_round_trips_and_validates() {
        let cal = Calendar::parse_csv("Weihnachtsferien,2026-12-21,2027-01-02").unwrap();
        let v = serde_json::to_value(&cal).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"name": "Weihnachtsferien", "from": "2026-12-21", "to": "2027-01-02"}])
        );
        assert_eq!(serde_json::from_value::<Calendar>(v).unwrap(), cal);
        let bad = serde_json::json!([{"name": "x", "from": "2027-01-02", "to": "2026-12-21"}]);
        assert!(serde_json::from_value::<Calendar>(bad).is_err());
    }
}
