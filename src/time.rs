//! Times as tafel shows them: RFC 3339 in UTC with its offset (`2026-12-04T20:35:14.097466Z`),
//! so that what an admin copies from an answer is accepted by every filter. Stored
//! times are UTC without a zone (`NaiveDateTime`); these serde helpers add the `Z` on the
//! way out and accept either form on the way in.

use chrono::{DateTime, NaiveDateTime, SecondsFormat};
use serde::{Deserialize, Deserializer, Serializer};

/// A stored UTC time as RFC 3339.
pub fn format(t: &NaiveDateTime) -> String {
    t.and_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// RFC 3339 with any offset (converted to UTC), or a time without one (taken as UTC).
pub fn parse(s: &str) -> Result<NaiveDateTime, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.naive_utc())
        .or_else(|_| s.parse::<NaiveDateTime>())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time ({e})"))
}

/// `#[serde(with = "crate::time::utc")]` for `NaiveDateTime` fields.
pub mod utc {
    use super::*;

    /// Serializes as RFC 3339 UTC.
    pub fn serialize<S: Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    /// Accepts RFC 3339 or a zone-less time (UTC).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "crate::time::utc_opt")]` for `Option<NaiveDateTime>` fields.
pub mod utc_opt {
    use super::*;

    /// Serializes as RFC 3339 UTC or null.
    pub fn serialize<S: Serializer>(t: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format(t)),
            None => s.serialize_none(),
        }
    }

    /// Accepts RFC 3339, a zone-less time (UTC) or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDateTime>, D::Error> {
        Option::<std::borrow::Cow<str>>::deserialize(d)?
            .map(|s| parse(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_leave_with_their_zone_and_come_back_in_either_form() {
        let t = parse("2026-12-04T20:35:14.097466").unwrap();
        assert_eq!(format(&t), "2026-12-04T20:35:14.097466Z");
        assert_eq!(parse(&format(&t)), Ok(t));
        assert_eq!(parse("2026-12-04T21:35:14.097466+01:00"), Ok(t));
        let whole = parse("2026-12-04T20:35:14Z").unwrap();
        assert_eq!(format(&whole), "2026-12-04T20:35:14Z");
        assert!(parse("2026-12-04").unwrap_err().contains("RFC 3339"));
    }
}
