//! Typed values stored as text: the column keeps the words it always held (no data
//! migration), Rust code sees an enum, so a typo does not compile.
//!
//! [`text_enum!`] declares such an enum with its words; [`TextValue`] is what it and
//! other text-stored types (`tafel::queue::ItemKey`) implement so that one pair of
//! diesel impls ([`text_sql!`]) serves all of them on both backends.

/// A stored word that is not one of the enum's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownText {
    /// What was parsed (`queue state`, `item key`, …).
    pub kind: &'static str,
    /// The word found.
    pub value: String,
}

/// A value with one text form, read back with [`std::str::FromStr`].
pub trait TextValue: Sized {
    /// What the value is, for errors (`queue state`).
    const KIND: &'static str;
    /// The stored text.
    fn as_text(&self) -> &str;
    /// Parses the stored text.
    fn parse_text(s: &str) -> Result<Self, UnknownText>;
}

/// A [`TextValue`] with a fixed list of words (what [`text_enum!`] declares).
pub trait TextEnum: TextValue + 'static {
    /// Every stored word, in declaration order.
    const WORDS: &'static [&'static str];
}

/// diesel's `ToSql`/`FromSql`, `FromStr` and serde for a type stored as `Text`, all
/// through its [`TextValue`] (generic over the backend, so the multi-connection takes
/// it too).
#[macro_export]
macro_rules! text_sql {
    ($name:ty) => {
        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, DB>>::to_sql(
                    <$name as $crate::text::TextValue>::as_text(self),
                    out,
                )
            }
        }

        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<
                                                                            diesel::sql_types::Text,
                                                                            DB,
                                                                        >>::from_sql(bytes)?;
                Ok(<$name as $crate::text::TextValue>::parse_text(&text)?)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::text::UnknownText;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$name as $crate::text::TextValue>::parse_text(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(<$name as $crate::text::TextValue>::as_text(self))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                <$name as $crate::text::TextValue>::parse_text(&text)
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

/// An enum of fixed words stored as text.
///
/// ```ignore
/// text_enum! {
///     /// Queue row states.
///     pub enum State("queue state") {
///         /// Waiting for the device.
///         Pending = "pending",
///     }
/// }
/// ```
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($kind:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored word.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::text::TextValue for $name {
            const KIND: &'static str = $kind;
            fn as_text(&self) -> &str {
                self.as_str()
            }
            fn parse_text(s: &str) -> Result<Self, $crate::text::UnknownText> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    other => Err($crate::text::UnknownText {
                        kind: $kind,
                        value: other.to_owned(),
                    }),
                }
            }
        }

        impl $crate::text::TextEnum for $name {
            const WORDS: &'static [&'static str] = &[$($text),+];
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        $crate::text_sql!($name);
    };
}

#[cfg(test)]
mod tests {
    use super::TextValue;

    crate::text_enum! {
        /// A test enum.
        pub enum Colour("colour") {
            /// Red.
            Red = "red",
            /// Dark blue.
            DarkBlue = "dark_blue",
        }
    }

    #[test]
    fn words_round_trip_and_unknown_words_are_named() {
        for c in Colour::ALL {
            assert_eq!(Colour::parse_text(c.as_str()), Ok(*c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert_eq!("dark_blue".parse::<Colour>(), Ok(Colour::DarkBlue));
        let err = "green".parse::<Colour>().unwrap_err();
        assert_eq!(err.to_string(), "unknown colour \"green\"");
        assert!(serde_json::from_str::<Colour>("\"Red\"").is_err());
    }
}
