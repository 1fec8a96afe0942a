//! PATCH bodies: every field optional, an absent field is left unchanged, and `null` is
//! refused (a name cannot be "unset"), so that the answer names the field.

use serde::{Deserialize, Deserializer};

/// Deserializes a present field; with `#[serde(default)]` an absent one stays `None`,
/// while `null` fails and the error names the field.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct P {
        #[serde(default, deserialize_with = "super::present")]
        name: Option<String>,
    }

    #[test]
    fn absent_is_none_null_is_refused() {
        assert_eq!(serde_json::from_str::<P>("{}").unwrap().name, None);
        assert_eq!(
            serde_json::from_str::<P>(r#"{"name":"7b"}"#).unwrap().name,
            Some("7b".into())
        );
        assert!(serde_json::from_str::<P>(r#"{"name":null}"#).is_err());
        assert!(serde_json::from_str::<P>(r#"{"nme":"7b"}"#).is_err());
    }
}
