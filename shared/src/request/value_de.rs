//! Deserializing a request from a parsed JSON value with an error type of our own.
//!
//! serde_json's errors are English sentences that quote the input (`invalid type:
//! string "someone@example.com", expected u32`, `unknown variant `+1415...``): a receipt
//! or a log line built from them leaks what the request carried. Here serde reports
//! through [`FieldError`], whose hooks (`invalid_type`, `unknown_field`, ...) receive
//! the structure of the problem, and we keep only kinds and names we own.
//!
//! Two more rules live here because serde_json's own `Value` cannot enforce them: a
//! key repeated in one object is an error (not "last one wins"), and a struct is read
//! from an object only (serde's derive would also take a positional array).

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Expected, IntoDeserializer, MapAccess, SeqAccess, Unexpected, Visitor,
    value::{MapDeserializer, SeqDeserializer},
};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Number, Value};

/// What serde found wrong, without the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// `got` is a JSON kind (`a string`, `a number`...), `expected` our own wording.
    InvalidType {
        got: &'static str,
        expected: String,
    },
    InvalidValue {
        got: &'static str,
        expected: String,
    },
    InvalidLength {
        len: usize,
        expected: String,
    },
    /// A value outside an enumeration; `hint` is the closest allowed one.
    UnknownVariant {
        hint: Option<&'static str>,
        expected: &'static [&'static str],
    },
    /// `field` is what may be shown of the key: itself when it is a near miss of a
    /// known name (the typo the hint corrects), else a placeholder. `path_segment` is
    /// how a path names it ([`mask_key`]), to replace it there.
    UnknownField {
        field: String,
        path_segment: String,
        hint: Option<&'static str>,
        expected: &'static [&'static str],
    },
    MissingField(&'static str),
    DuplicateField(&'static str),
    /// A message from one of our own parsers (they never quote their input).
    Custom(String),
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldError::InvalidType { got, expected } => write!(f, "expected {expected}, got {got}"),
            FieldError::InvalidValue { got, expected } => write!(f, "invalid value ({got}): expected {expected}"),
            FieldError::InvalidLength { len, expected } => write!(f, "{len} elements: expected {expected}"),
            FieldError::UnknownVariant { hint, expected } => {
                write!(f, "unknown value")?;
                if let Some(h) = hint {
                    write!(f, " (did you mean `{h}`?)")?;
                }
                write!(f, "; expected one of {}", expected.join(", "))
            }
            FieldError::UnknownField { hint, expected, .. } => {
                write!(f, "unknown field")?;
                if let Some(h) = hint {
                    write!(f, " (did you mean `{h}`?)")?;
                }
                if !expected.is_empty() {
                    write!(f, "; allowed fields here: {}", expected.join(", "))?;
                }
                Ok(())
            }
            FieldError::MissingField(_) => write!(f, "missing: this field is required"),
            FieldError::DuplicateField(_) => write!(f, "given twice"),
            FieldError::Custom(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for FieldError {}

/// The JSON kind of a value serde saw, never the value itself.
fn kind(unexp: &Unexpected<'_>) -> &'static str {
    match unexp {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) | Unexpected::Float(_) => "a number",
        Unexpected::Char(_) | Unexpected::Str(_) => "a string",
        Unexpected::Bytes(_) => "bytes",
        Unexpected::Unit | Unexpected::Option => "null",
        Unexpected::Seq => "an array",
        Unexpected::Map => "an object",
        _ => "another kind of value",
    }
}

impl de::Error for FieldError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        FieldError::Custom(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        FieldError::InvalidType { got: kind(&unexp), expected: exp.to_string() }
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        FieldError::InvalidValue { got: kind(&unexp), expected: exp.to_string() }
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        FieldError::InvalidLength { len, expected: exp.to_string() }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        FieldError::UnknownVariant { hint: closest(variant, expected), expected }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let hint = closest(field, expected);
        let shown = if hint.is_some() { mask_key(field) } else { "<key>".to_owned() };
        FieldError::UnknownField { field: shown, path_segment: mask_key(field), hint, expected }
    }

    fn missing_field(field: &'static str) -> Self {
        FieldError::MissingField(field)
    }

    fn duplicate_field(field: &'static str) -> Self {
        FieldError::DuplicateField(field)
    }
}

/// The known name a misspelt one most likely meant (edit distance at most 2).
pub(crate) fn closest<'a>(given: &str, known: &[&'a str]) -> Option<&'a str> {
    if given.len() > 64 {
        return None;
    }
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(given, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// A key the sender chose, fit to appear in an error: a short identifier (letters,
/// digits, `_`, `-`, `.`, few digits) is shown as is, because naming the misspelt
/// field is what makes the error actionable; anything else (an address used as a
/// key, a long or odd string) is replaced by a placeholder.
pub fn mask_key(key: &str) -> String {
    let identifier = !key.is_empty()
        && key.len() <= 40
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && key.chars().filter(char::is_ascii_digit).count() <= 4;
    if identifier { key.to_owned() } else { "<key>".to_owned() }
}

/// Deserializes `T` from `value`, reporting failures through [`FieldError`].
pub fn from_value<'de, T: serde::Deserialize<'de>>(value: Value) -> Result<T, serde_path_to_error::Error<FieldError>> {
    serde_path_to_error::deserialize(ValueDeserializer(value))
}

/// A `serde_json::Value` as a deserializer with [`FieldError`] errors.
pub struct ValueDeserializer(pub Value);

impl<'de> IntoDeserializer<'de, FieldError> for ValueDeserializer {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

fn visit_number<'de, V: Visitor<'de>>(n: Number, visitor: V) -> Result<V::Value, FieldError> {
    if let Some(u) = n.as_u64() {
        visitor.visit_u64(u)
    } else if let Some(i) = n.as_i64() {
        visitor.visit_i64(i)
    } else {
        visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
    }
}

fn unexpected(value: &Value) -> Unexpected<'static> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(_) => Unexpected::Float(0.0),
        Value::String(_) => Unexpected::Str(""),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

fn map_access(map: Map<String, Value>) -> MapDeserializer<'static, MapEntries, FieldError> {
    MapDeserializer::new(MapEntries(map.into_iter()))
}

/// Object entries as (key, value) deserializer pairs.
struct MapEntries(serde_json::map::IntoIter);

impl Iterator for MapEntries {
    type Item = (String, ValueDeserializer);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, ValueDeserializer(v)))
    }
}

impl<'de> de::Deserializer<'de> for ValueDeserializer {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => visit_number(n, visitor),
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter().map(ValueDeserializer));
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Value::Object(map) => {
                let mut access = map_access(map);
                let value = visitor.visit_map(&mut access)?;
                access.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(ValueDeserializer(other)),
        }
    }

    /// Objects only: a positional array is not a request.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Object(map) => {
                let mut access = map_access(map);
                let value = visitor.visit_map(&mut access)?;
                access.end()?;
                Ok(value)
            }
            // serde's own wording would name the Rust type; the sender knows JSON.
            other => Err(de::Error::invalid_type(unexpected(&other), &"a JSON object")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            other => Err(de::Error::invalid_type(unexpected(&other), &"a string")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// A JSON document parsed into a `Value` that refuses a key given twice in one object.
pub struct StrictValue(pub Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrictSeed)?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "the key `{}` is given twice in one object",
                    mask_key(&key)
                )));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Probe {
        name: String,
        n: Option<u32>,
        kind: Option<ProbeKind>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum ProbeKind {
        Email,
        Sms,
    }

    fn err(v: Value) -> String {
        let e = from_value::<Probe>(v).expect_err("should fail");
        let e = crate::request::RequestError::from_fields(e);
        format!("{} {}", e.path(), e.message())
    }

    #[test]
    fn errors_name_kinds_not_values() {
        let e = err(serde_json::json!({"name": "x", "n": "someone@example.com"}));
        assert_eq!(e, "n expected u32, got a string");
        let e = err(serde_json::json!({"name": "x", "kind": "+14155550123"}));
        assert!(e.starts_with("kind unknown value; expected one of email, sms"), "{e}");
        let e = err(serde_json::json!({"name": "x", "kind": "emial"}));
        assert!(e.contains("did you mean `email`"), "{e}");
        let e = err(serde_json::json!({"name": "x", "someone@example.com": 1}));
        assert!(!e.contains("someone"), "{e}");
        let e = err(serde_json::json!({"name": "x", "nme": 1}));
        assert!(e.contains("did you mean `name`"), "{e}");
    }

    #[test]
    fn positional_arrays_are_not_structs() {
        let e = err(serde_json::json!(["x", 1]));
        assert!(e.contains("got an array"), "{e}");
    }

    #[test]
    fn strict_values_refuse_repeated_keys() {
        assert!(serde_json::from_str::<StrictValue>(r#"{"a": 1, "b": {"c": 1, "c": 2}}"#).is_err());
        let e = serde_json::from_str::<StrictValue>(r#"{"someone@example.com": 1, "someone@example.com": 2}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("given twice") && !e.contains("someone"), "{e}");
        let ok = serde_json::from_str::<StrictValue>(r#"{"a": [1, 2.5, null, true, "s"], "b": {}}"#).unwrap();
        assert_eq!(ok.0, serde_json::json!({"a": [1, 2.5, null, true, "s"], "b": {}}));
    }

    #[test]
    fn masking_keeps_identifiers_only() {
        assert_eq!(mask_key("recipient"), "recipient");
        assert_eq!(mask_key("send_after"), "send_after");
        assert_eq!(mask_key("someone@example.com"), "<key>");
        assert_eq!(mask_key("14155550123"), "<key>");
        assert_eq!(mask_key(&"a".repeat(41)), "<key>");
    }
}
