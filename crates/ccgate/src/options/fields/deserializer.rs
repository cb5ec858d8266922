//! The `serde::Deserializer` behind [`super::from_value`]: a JSON value
//! and its path, handing serde canonical field and variant names.

use std::fmt;

use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};
use serde_json::{Map, Value};

/// An error on its way out. The innermost value that knows its path sets
/// it; a visitor's error (a type error, a missing field) has none yet.
#[derive(Debug)]
pub(super) struct Error {
    pub(super) path: Option<String>,
    pub(super) reason: String,
    /// A missing field of the struct the error passes out of.
    missing: Option<&'static str>,
}

impl Error {
    fn new(path: String, reason: impl Into<String>) -> Self {
        Self {
            path: Some(path),
            reason: reason.into(),
            missing: None,
        }
    }

    /// The error, placed at `path` unless a deeper value placed it.
    pub(super) fn at(mut self, path: &str) -> Self {
        if self.path.is_none() {
            self.path = Some(match self.missing.take() {
                Some(field) => join(path, field),
                None => path.to_owned(),
            });
        }
        self
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(reason: T) -> Self {
        Self {
            path: None,
            reason: reason.to_string(),
            missing: None,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self {
            path: None,
            reason: "required".to_owned(),
            missing: Some(field),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Error {}

/// A value at a path (`""` at the top).
pub(super) struct Node {
    value: Value,
    path: String,
}

impl Node {
    pub(super) fn new(value: Value, path: String) -> Self {
        Self { value, path }
    }

    /// The entries of a mapping; nothing is an empty one.
    fn mapping(self) -> Result<(Map<String, Value>, String), Error> {
        match self.value {
            Value::Object(object) => Ok((object, self.path)),
            Value::Null => Ok((Map::new(), self.path)),
            other => {
                let reason = format!("expected a mapping, found {}", kind(&other));
                Err(Error::new(self.path, reason))
            }
        }
    }

    /// Reads the variant of an enum written as a mapping of one key.
    fn variant_of<'de, V: Visitor<'de>>(
        self,
        name: &str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // The name says what the variants are, and maybe what to call the
        // supported ones ("middleware type: plugin.oAuthClientCredentials").
        let (what, supported) = match name.split_once(": ") {
            Some((what, supported)) => (what, supported.to_owned()),
            None => (name, variants.join(", ")),
        };
        let (object, path) = self.mapping()?;
        if object.len() > 1 {
            let keys: Vec<&str> = object.keys().map(String::as_str).collect();
            let given = keys.join(", ");
            let reason = format!("holds {} ({given}): give exactly one {what}", keys.len());
            return Err(Error::new(path, reason));
        }
        let Some((key, value)) = object.into_iter().next() else {
            let reason = format!("empty: expected a {what} ({supported})");
            return Err(Error::new(path, reason));
        };
        let Some(variant) = canonical(variants, &key) else {
            let reason = format!("unsupported {what} `{key}` (ccgate supports {supported})");
            return Err(Error::new(join(&path, &key), reason));
        };
        visitor.visit_enum(Variant {
            name: variant,
            value: Some(value),
            path: join(&path, variant),
        })
    }
}

/// serde_json's own reading, for values that hold no names.
fn plain<T>(result: Result<T, serde_json::Error>) -> Result<T, Error> {
    result.map_err(de::Error::custom)
}

macro_rules! plain {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            plain(self.value.$method(visitor))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Node {
    type Error = Error;

    plain! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_identifier
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Array(_) => self.deserialize_seq(visitor),
            Value::Object(_) => self.deserialize_map(visitor),
            value => plain(value.deserialize_any(visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        plain(self.value.deserialize_unit_struct(name, visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let items = match self.value {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            other => {
                let reason = format!("expected a list, found {}", kind(&other));
                return Err(Error::new(self.path, reason));
            }
        };
        let len = items.len();
        let mut items = Items {
            items: items.into_iter().enumerate(),
            path: self.path,
        };
        let value = visitor.visit_seq(&mut items)?;
        match items.items.len() {
            0 => Ok(value),
            _ => Err(de::Error::invalid_length(len, &"fewer elements")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (object, path) = self.mapping()?;
        let entries: Vec<(String, Value)> = object.into_iter().collect();
        visitor.visit_map(Entries::new(entries, path))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (object, path) = self.mapping()?;
        let mut entries: Vec<(String, Value)> = Vec::with_capacity(object.len());
        for (key, value) in object {
            let Some(field) = canonical(fields, &key) else {
                let reason = format!("unknown field (known: {})", fields.join(", "));
                return Err(Error::new(join(&path, &key), reason));
            };
            if entries.iter().any(|(name, _)| name == field) {
                let reason = "given twice (field names match case-insensitively)";
                return Err(Error::new(join(&path, field), reason));
            }
            entries.push((field.to_owned(), value));
        }
        visitor.visit_map(Entries::new(entries, path))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Value::String(text) => {
                let Some(variant) = canonical(variants, &text) else {
                    return Err(de::Error::unknown_variant(&text, variants));
                };
                visitor.visit_enum(Variant {
                    name: variant,
                    value: None,
                    path: self.path,
                })
            }
            Value::Object(_) | Value::Null => self.variant_of(name, variants, visitor),
            other => plain(other.deserialize_enum(name, variants, visitor)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// The name of `names` that `key` spells in some case.
fn canonical(names: &'static [&'static str], key: &str) -> Option<&'static str> {
    names
        .iter()
        .copied()
        .find(|name| name.eq_ignore_ascii_case(key))
}

/// The entries of a struct (keys made canonical) or a map (as written).
struct Entries {
    entries: std::vec::IntoIter<(String, Value)>,
    path: String,
    /// The value whose key was just read, and its path.
    value: Option<(Value, String)>,
}

impl Entries {
    fn new(entries: Vec<(String, Value)>, path: String) -> Self {
        Self {
            entries: entries.into_iter(),
            path,
            value: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for Entries {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let path = join(&self.path, &key);
        let key: StringDeserializer<Error> = key.into_deserializer();
        let key = seed.deserialize(key).map_err(|error| error.at(&path))?;
        self.value = Some((value, path));
        Ok(Some(key))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        let (value, path) = self
            .value
            .take()
            .expect("next_key_seed before next_value_seed");
        seed.deserialize(Node::new(value, path.clone()))
            .map_err(|error| error.at(&path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// The items of a list, numbered for their paths.
struct Items {
    items: std::iter::Enumerate<std::vec::IntoIter<Value>>,
    path: String,
}

impl<'de> de::SeqAccess<'de> for Items {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        let Some((index, value)) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{index}]", self.path);
        seed.deserialize(Node::new(value, path.clone()))
            .map(Some)
            .map_err(|error| error.at(&path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// A variant by its canonical name, and its content when written as a
/// mapping.
struct Variant {
    name: &'static str,
    value: Option<Value>,
    path: String,
}

impl Variant {
    fn content(self, expected: &'static str) -> Result<Node, Error> {
        match self.value {
            Some(value) => Ok(Node::new(value, self.path)),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &expected)),
        }
    }
}

impl<'de> de::EnumAccess<'de> for Variant {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Error> {
        let name: de::value::StrDeserializer<'_, Error> = self.name.into_deserializer();
        Ok((seed.deserialize(name)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            None | Some(Value::Null) => Ok(()),
            Some(other) => {
                let reason = format!(
                    "expected nothing after `{}`, found {}",
                    self.name,
                    kind(&other)
                );
                Err(Error::new(self.path, reason))
            }
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        let node = self.content("a variant with content")?;
        let path = node.path.clone();
        seed.deserialize(node).map_err(|error| error.at(&path))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        let node = self.content("a variant with a list")?;
        let path = node.path.clone();
        de::Deserializer::deserialize_seq(node, visitor).map_err(|error| error.at(&path))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let node = self.content("a variant with fields")?;
        let path = node.path.clone();
        de::Deserializer::deserialize_struct(node, "", fields, visitor)
            .map_err(|error| error.at(&path))
    }
}

/// `path.key`, `path[i]`, or `key` at the top.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else if key.starts_with('[') {
        format!("{path}{key}")
    } else {
        format!("{path}.{key}")
    }
}

/// The name of a value's type, for messages (never the value itself).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
