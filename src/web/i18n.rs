//! The console's texts: Fluent message files (`locales/<lang>/console.ftl`), compiled
//! in; German first, English selectable. Dates and times as schools write them, in the
//! school's (or Europe/Berlin's) time.

use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Weekday};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// German (the default).
    De,
    /// English.
    En,
}

impl Lang {
    /// Its code, as in `lang="…"` and the language cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::De => "de",
            Lang::En => "en",
        }
    }

    /// From a code (`de`, `en`); anything else is none.
    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim() {
            "de" => Some(Lang::De),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first language of an `Accept-Language` header the console speaks (German
    /// when none).
    pub fn from_accept(header: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',').take(20) {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            if let Some(lang) = Lang::parse(primary) {
                if best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, lang));
                }
            }
        }
        best.map(|(_, l)| l).unwrap_or(Lang::De)
    }
}

/// The message files of each language, one per area of the console.
const DE: [&str; 4] = [
    include_str!("../../locales/de/console.ftl"),
    include_str!("../../locales/de/catalog.ftl"),
    include_str!("../../locales/de/people.ftl"),
    include_str!("../../locales/de/account.ftl"),
];
const EN: [&str; 4] = [
    include_str!("../../locales/en/console.ftl"),
    include_str!("../../locales/en/catalog.ftl"),
    include_str!("../../locales/en/people.ftl"),
    include_str!("../../locales/en/account.ftl"),
];

type Bundle = FluentBundle<FluentResource>;

fn bundle(lang: Lang) -> &'static Bundle {
    static BUNDLES: OnceLock<(Bundle, Bundle)> = OnceLock::new();
    let (de, en) = BUNDLES.get_or_init(|| (build(Lang::De, DE), build(Lang::En, EN)));
    match lang {
        Lang::De => de,
        Lang::En => en,
    }
}

fn build(lang: Lang, sources: [&str; 4]) -> Bundle {
    let tag = match lang {
        Lang::De => "de-DE",
        Lang::En => "en-GB",
    };
    let id: unic_langid::LanguageIdentifier = tag.parse().unwrap_or_default();
    let mut b = FluentBundle::new_concurrent(vec![id]);
    // No Unicode isolation marks around values: the pages are HTML, not mixed-direction text.
    b.set_use_isolating(false);
    for source in sources {
        // The files are compiled in and checked by a test: an error here is a build
        // defect, and the bundle keeps what parsed.
        let resource = FluentResource::try_new(source.to_owned()).unwrap_or_else(|(r, errors)| {
            tracing::error!(?errors, lang = lang.code(), "console messages do not parse");
            r
        });
        if let Err(errors) = b.add_resource(resource) {
            tracing::error!(?errors, lang = lang.code(), "console messages clash");
        }
    }
    b
}

/// The texts of one page in one language; templates call `t.t` with a message id.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    /// The page's language.
    pub lang: Lang,
}

impl Tr {
    /// A message without variables (its id when missing, so a gap shows and a test finds it).
    pub fn t(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// A message with one number `$n` (plural forms by the language's rules).
    pub fn n(&self, id: &str, n: impl Count) -> String {
        let mut args = FluentArgs::new();
        args.set("n", FluentValue::from(n.count()));
        self.format(id, Some(&args))
    }

    /// A message with named values.
    pub fn with(&self, id: &str, values: &[(&str, FluentValue<'_>)]) -> String {
        let mut args = FluentArgs::new();
        for (k, v) in values {
            args.set(*k, v.clone());
        }
        self.format(id, Some(&args))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs<'_>>) -> String {
        let b = bundle(self.lang);
        let Some(pattern) = b.get_message(id).and_then(|m| m.value()) else {
            return id.to_owned();
        };
        let mut errors = vec![];
        let s = b.format_pattern(pattern, args, &mut errors);
        if !errors.is_empty() {
            tracing::warn!(id, ?errors, "console message");
        }
        s.into_owned()
    }

    /// `Di, 08.12.2026` (German) or `Tue, 08 Dec 2026` (English).
    pub fn date(&self, d: NaiveDate) -> String {
        match self.lang {
            Lang::De => format!(
                "{}, {}",
                self.weekday_short(d.weekday()),
                d.format("%d.%m.%Y")
            ),
            Lang::En => d.format("%a, %d %b %Y").to_string(),
        }
    }

    /// The weekday as timetables write it: `Di` (German) or `Tue` (English).
    pub fn weekday_short(&self, day: Weekday) -> &'static str {
        const DE: [&str; 7] = ["Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"];
        const EN: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let i = day.num_days_from_monday() as usize;
        match self.lang {
            Lang::De => DE[i],
            Lang::En => EN[i],
        }
    }

    /// A moment in UTC as the school reads it: `Di, 08.12.2026, 08:50` in `tz`.
    pub fn datetime(&self, utc: NaiveDateTime, tz: chrono_tz::Tz) -> String {
        let local = utc.and_utc().with_timezone(&tz).naive_local();
        format!("{}, {}", self.date(local.date()), local.format("%H:%M"))
    }

    /// An optional moment; a dash when there is none.
    pub fn datetime_opt(&self, utc: Option<NaiveDateTime>, tz: chrono_tz::Tz) -> String {
        utc.map(|t| self.datetime(t, tz))
            .unwrap_or_else(|| "–".to_owned())
    }

    /// The weekday's name (1 = Monday).
    pub fn weekday(&self, day: u32) -> String {
        self.t(&format!("weekday-{day}"))
    }
}

/// A number a message counts (templates pass values and references alike).
pub trait Count {
    /// The number.
    fn count(&self) -> i64;
}

impl Count for i64 {
    fn count(&self) -> i64 {
        *self
    }
}

impl Count for &i64 {
    fn count(&self) -> i64 {
        **self
    }
}

/// The district's time zone, for pages that are not one school's.
pub const BERLIN: chrono_tz::Tz = chrono_tz::Europe::Berlin;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message id a template or the console's code passes to `t.t`, `t.n` or
    /// `t.with` as a literal exists in both languages.
    #[test]
    fn every_message_exists_in_both_languages() {
        let mut ids = std::collections::BTreeSet::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![];
        let mut dirs = vec![root.join("templates"), root.join("src/web")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        assert!(files.len() > 10, "found only {files:?}");
        {
            for path in files {
                let text = std::fs::read_to_string(&path).unwrap();
                for pat in [
                    "t.t(\"",
                    "t.n(\"",
                    "t.with(\"",
                    "tr.t(\"",
                    "tr.n(\"",
                    "tr.with(\"",
                ] {
                    for (i, _) in text.match_indices(pat) {
                        let rest = &text[i + pat.len()..];
                        let id = &rest[..rest.find('"').unwrap()];
                        ids.insert(id.to_owned());
                    }
                }
            }
        }
        assert!(ids.len() > 20, "found only {} message ids", ids.len());
        for lang in [Lang::De, Lang::En] {
            let b = bundle(lang);
            let missing: Vec<&String> = ids.iter().filter(|id| !b.has_message(id)).collect();
            assert!(missing.is_empty(), "{lang:?} lacks {missing:?}");
        }
        for d in 1..=7 {
            assert!(bundle(Lang::De).has_message(&format!("weekday-{d}")));
            assert!(bundle(Lang::En).has_message(&format!("weekday-{d}")));
        }
    }

    #[test]
    fn message_files_parse_without_errors() {
        for src in DE.iter().chain(EN.iter()) {
            assert!(FluentResource::try_new((*src).to_owned()).is_ok());
        }
        // No message defined twice (a clash keeps the first and hides the second).
        for sources in [DE, EN] {
            let mut b =
                FluentBundle::new_concurrent(vec![unic_langid::LanguageIdentifier::default()]);
            for src in sources {
                let r = FluentResource::try_new(src.to_owned()).unwrap();
                assert!(b.add_resource(r).is_ok(), "a message id is defined twice");
            }
        }
    }

    #[test]
    fn dates_as_schools_write_them() {
        let de = Tr { lang: Lang::De };
        let d = NaiveDate::from_ymd_opt(2026, 12, 8).unwrap();
        assert_eq!(de.date(d), "Di, 08.12.2026");
        let utc = d.and_hms_opt(7, 50, 0).unwrap();
        assert_eq!(de.datetime(utc, BERLIN), "Di, 08.12.2026, 08:50");
        let en = Tr { lang: Lang::En };
        assert_eq!(en.date(d), "Tue, 08 Dec 2026");
        assert_eq!(de.n("devices-count", 1), "1 Gerät");
        assert_eq!(de.n("devices-count", 3), "3 Geräte");
        assert_eq!(de.n("ready-installing", 1), "1 lädt noch");
        assert_eq!(de.n("ready-installing", 27), "27 laden noch");
        assert_eq!(de.n("ready-pending", 1), "1 wartet");
        assert_eq!(de.n("ready-pending", 3), "3 warten");
    }

    #[test]
    fn accept_language_picks_a_spoken_one() {
        assert_eq!(Lang::from_accept("en-GB,en;q=0.9,de;q=0.8"), Lang::En);
        assert_eq!(Lang::from_accept("fr-FR,de;q=0.5,en;q=0.4"), Lang::De);
        assert_eq!(Lang::from_accept("fr"), Lang::De);
        assert_eq!(Lang::from_accept(""), Lang::De);
    }
}
