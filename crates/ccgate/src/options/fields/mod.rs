//! Case-insensitive field names, driven by serde: [`from_value`] reads a
//! JSON value into any `Deserialize` type, matching each key against the
//! field names serde asks for, as Traefik does (`clientId` is `clientID`).
//!
//! The rules, for every struct, map, list and enum of the target type:
//!
//! - **Structs**: a key matches a field of serde's list in any ASCII case
//!   and is read under its canonical spelling. A key that matches none is
//!   an error listing the known names in serde's order; two keys naming
//!   one field (`clientID`, `clientId`) are an error. Unknown fields are
//!   refused even without `deny_unknown_fields`.
//! - **Maps** (`BTreeMap`, `HashMap`) keep their keys as written.
//! - **Enums** match variant names in any case, written as a string
//!   (`authMethod: client_secret_post`) or as a mapping of exactly one key
//!   (`loadBalancer: {…}`). For the mapping form the enum's serde name
//!   says what its variants are (`#[serde(rename = "service type")]`),
//!   optionally followed by `: ` and what ccgate supports when that is not
//!   the list of variants (`"middleware type: plugin.oAuthClientCredentials"`).
//! - **Nothing** (`null`, a YAML key with nothing after it) is an empty
//!   struct, map or list, and `None` for an `Option`; [`section`] makes an
//!   optional section present when its key is.
//!
//! `#[serde(flatten)]` is not supported: serde buffers a flattened struct
//! with no field list, so its keys would not be matched. Aliases are
//! matched like names, and listed among the known fields.
//!
//! # Errors
//!
//! A [`FieldError`]: the dotted path of the field (`store.redis.tls.key`,
//! `servers[1].url`) and the reason. A missing field is `required`; a type
//! error has serde's reason, which may quote the value: fields holding
//! secrets must replace it (the options read theirs as
//! "expected a string (the value is a secret and not shown)").
//!
//! # Example
//!
//! ```
//! use ccgate::options::fields::{self, FieldError};
//! use serde::Deserialize;
//! use serde_json::json;
//!
//! #[derive(Debug, Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct Server {
//!     url: String,
//!     pass_host_header: Option<bool>,
//! }
//!
//! let server: Server = fields::from_value(json!({"URL": "http://a", "passhostheader": true}))?;
//! assert_eq!((server.url.as_str(), server.pass_host_header), ("http://a", Some(true)));
//!
//! let err = fields::from_value::<Vec<Server>>(json!([{"url": "a"}, {"uri": "b"}])).unwrap_err();
//! assert_eq!(err.field(), "[1].uri");
//! assert_eq!(err.reason(), "unknown field (known: url, passHostHeader)");
//! # Ok::<(), FieldError>(())
//! ```

mod deserializer;

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::Value;

/// Reads `value` into `T`, matching field and variant names
/// case-insensitively.
///
/// # Errors
///
/// A [`FieldError`] naming the field: unknown, given twice, required, or
/// of the wrong type.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, FieldError> {
    T::deserialize(deserializer::Node::new(value, String::new())).map_err(|error| {
        let error = error.at("");
        FieldError {
            field: error.path.unwrap_or_default(),
            reason: error.reason,
        }
    })
}

/// For `#[serde(default, deserialize_with = "fields::section")]` on an
/// `Option` of a struct: a key with nothing after it (`accessLog:`) turns
/// the section on with its defaults instead of leaving it `None`.
///
/// # Errors
///
/// Those of reading `T`; with nothing given, its required fields.
pub fn section<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Section<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Section<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            let empty = std::iter::empty::<((), ())>();
            T::deserialize(de::value::MapDeserializer::new(empty)).map(Some)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            self.visit_none()
        }

        fn visit_some<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            T::deserialize(deserializer).map(Some)
        }
    }

    deserializer.deserialize_option(Section(PhantomData))
}

/// A value that does not fit its type: the dotted path of the field and
/// why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    field: String,
    reason: String,
}

impl FieldError {
    /// The dotted path of the field (`clientConfig.timeoutSeconds`,
    /// `servers[1].url`); empty for the value as a whole.
    #[must_use]
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Why the field is rejected.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "`{}`: {}", self.field, self.reason)
        }
    }
}

impl std::error::Error for FieldError {}

#[cfg(test)]
mod tests;
