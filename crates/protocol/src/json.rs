//! JSON ⇄ plist conversion for the admin API, with `{"$data": "<base64>"}`
//! standing for `<data>` and `{"$date": "<RFC 3339>"}` for `<date>`.
//!
//! JSON has no bytes or dates, and MDM commands need both (InstallProfile's
//! `Payload`, ClearPasscode's `UnlockToken`); a one-key object is the least
//! surprising escape, and the same convention is used in both directions.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use plist::{Date, Dictionary, Value};
use serde_json::{Map, Number, Value as Json};

use super::error::ProtocolError;

/// The marker key for `<data>`.
pub const DATA_KEY: &str = "$data";
/// The marker key for `<date>`.
pub const DATE_KEY: &str = "$date";

/// Converts a JSON object into a plist dictionary; `path` names the object in
/// errors (empty for the top level, so top-level keys appear bare).
pub fn json_object_to_plist(
    object: &Map<String, Json>,
    path: &str,
) -> Result<Dictionary, ProtocolError> {
    let mut dict = Dictionary::new();
    for (key, value) in object {
        let child = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        dict.insert(key.clone(), json_to_plist(value, &child)?);
    }
    Ok(dict)
}

/// Converts one JSON value into a plist value; `path` names it in errors.
///
/// Objects become dicts, arrays arrays, integers `<integer>`, other numbers
/// `<real>`, booleans and strings themselves; `null` has no plist form and is
/// rejected.
pub fn json_to_plist(value: &Json, path: &str) -> Result<Value, ProtocolError> {
    match value {
        Json::Null => Err(ProtocolError::InvalidValue {
            key: path.to_owned(),
            reason: "null has no property-list equivalent; omit the key instead".to_owned(),
        }),
        Json::Bool(b) => Ok(Value::Boolean(*b)),
        Json::Number(n) => Ok(number_to_plist(n)),
        Json::String(s) => Ok(Value::String(s.clone())),
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| json_to_plist(item, &format!("{path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Json::Object(object) => {
            if object.len() == 1 {
                if let Some(encoded) = object.get(DATA_KEY) {
                    return decode_data(encoded, path).map(Value::Data);
                }
                if let Some(encoded) = object.get(DATE_KEY) {
                    return decode_date(encoded, path).map(Value::Date);
                }
            }
            json_object_to_plist(object, path).map(Value::Dictionary)
        }
    }
}

fn number_to_plist(n: &Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Integer(i.into())
    } else if let Some(u) = n.as_u64() {
        Value::Integer(u.into())
    } else {
        // serde_json numbers are always one of i64, u64 or finite f64.
        Value::Real(n.as_f64().unwrap_or(0.0))
    }
}

fn decode_data(encoded: &Json, path: &str) -> Result<Vec<u8>, ProtocolError> {
    let Json::String(text) = encoded else {
        return Err(ProtocolError::WrongType {
            key: path.to_owned(),
            expected: "base64 string in {\"$data\": …}",
        });
    };
    STANDARD
        .decode(text.as_bytes())
        .map_err(|e| ProtocolError::InvalidValue {
            key: path.to_owned(),
            reason: format!("`$data` is not valid standard base64: {e}"),
        })
}

fn decode_date(encoded: &Json, path: &str) -> Result<Date, ProtocolError> {
    let Json::String(text) = encoded else {
        return Err(ProtocolError::WrongType {
            key: path.to_owned(),
            expected: "RFC 3339 string in {\"$date\": …}",
        });
    };
    Date::from_xml_format(text).map_err(|_| ProtocolError::InvalidValue {
        key: path.to_owned(),
        reason: format!("`$date` is not an RFC 3339 date-time: {text}"),
    })
}

/// Converts a plist value to JSON with the same `$data`/`$date` convention.
///
/// A non-finite real becomes `null` (JSON cannot hold it); a keyed-archive
/// `Uid` becomes its number.
pub fn plist_to_json(value: &Value) -> Json {
    match value {
        Value::Array(items) => Json::Array(items.iter().map(plist_to_json).collect()),
        Value::Dictionary(dict) => Json::Object(plist_dict_to_json(dict)),
        Value::Boolean(b) => Json::Bool(*b),
        Value::Data(bytes) => tagged(DATA_KEY, STANDARD.encode(bytes)),
        Value::Date(date) => tagged(DATE_KEY, date.to_xml_format()),
        Value::Real(r) => Number::from_f64(*r).map_or(Json::Null, Json::Number),
        Value::Integer(i) => match (i.as_signed(), i.as_unsigned()) {
            (Some(s), _) => Json::from(s),
            (None, Some(u)) => Json::from(u),
            (None, None) => Json::Null,
        },
        Value::String(s) => Json::String(s.clone()),
        Value::Uid(uid) => Json::from(uid.get()),
        _ => Json::Null,
    }
}

/// Converts a plist dictionary to a JSON object (see [`plist_to_json`]).
pub fn plist_dict_to_json(dict: &Dictionary) -> Map<String, Json> {
    dict.iter()
        .map(|(key, value)| (key.clone(), plist_to_json(value)))
        .collect()
}

fn tagged(key: &str, text: String) -> Json {
    let mut object = Map::new();
    object.insert(key.to_owned(), Json::String(text));
    Json::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_map_to_their_plist_types() {
        let object = json!({
            "i": 42, "big": u64::MAX, "r": 1.5, "b": true, "s": "hi",
            "a": [1, "x"], "d": {"nested": false}
        });
        let Json::Object(map) = &object else { panic!() };
        let dict = json_object_to_plist(map, "").unwrap();
        assert_eq!(dict.get("i"), Some(&Value::Integer(42.into())));
        assert_eq!(dict.get("big"), Some(&Value::Integer(u64::MAX.into())));
        assert_eq!(dict.get("r"), Some(&Value::Real(1.5)));
        assert_eq!(dict.get("b"), Some(&Value::Boolean(true)));
        assert_eq!(dict.get("s"), Some(&Value::String("hi".into())));
        assert!(matches!(dict.get("a"), Some(Value::Array(a)) if a.len() == 2));
        assert!(matches!(dict.get("d"), Some(Value::Dictionary(_))));
        assert_eq!(
            Json::Object(plist_dict_to_json(&dict)),
            object,
            "plist → JSON is the inverse"
        );
    }

    #[test]
    fn data_and_date_markers_round_trip() {
        let object = json!({
            "Payload": {"$data": "PD94bWw+"},
            "When": {"$date": "2024-09-03T08:00:00Z"},
            "NotData": {"$data": "AAAA", "other": 1}
        });
        let Json::Object(map) = &object else { panic!() };
        let dict = json_object_to_plist(map, "").unwrap();
        assert_eq!(dict.get("Payload"), Some(&Value::Data(b"<?xml>".to_vec())));
        assert!(matches!(dict.get("When"), Some(Value::Date(_))));
        assert!(matches!(dict.get("NotData"), Some(Value::Dictionary(_))));
        assert_eq!(Json::Object(plist_dict_to_json(&dict)), object);
    }

    #[test]
    fn dates_with_offsets_are_normalised_to_utc() {
        let value = json_to_plist(&json!({"$date": "2024-09-03T10:00:00+02:00"}), "When").unwrap();
        assert_eq!(
            plist_to_json(&value),
            json!({"$date": "2024-09-03T08:00:00Z"})
        );
    }

    #[test]
    fn bad_markers_and_null_name_the_key() {
        assert!(matches!(
            json_to_plist(&json!({"$data": "not base64!"}), "Payload"),
            Err(ProtocolError::InvalidValue { key, .. }) if key == "Payload"
        ));
        assert!(matches!(
            json_to_plist(&json!({"$data": 7}), "Payload"),
            Err(ProtocolError::WrongType { key, .. }) if key == "Payload"
        ));
        assert!(matches!(
            json_to_plist(&json!({"$date": "yesterday"}), "When"),
            Err(ProtocolError::InvalidValue { key, .. }) if key == "When"
        ));
        assert!(matches!(
            json_to_plist(&json!({"a": [1, null]}), "Configuration"),
            Err(ProtocolError::InvalidValue { key, .. }) if key == "Configuration.a[1]"
        ));
    }
}
