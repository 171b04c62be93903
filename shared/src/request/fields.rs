//! Small parsed newtypes for the scalar fields of a request.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Defines a string newtype whose only constructor is `parse`, which serde uses too.
macro_rules! parsed_string {
    ($(#[$meta:meta])* $name:ident, $schema:tt) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!($schema)
            }
        }
    };
}

fn check_length(what: &str, s: &str, max: usize) -> Result<(), String> {
    let n = s.chars().count();
    if n == 0 {
        return Err(format!("{what} must not be empty"));
    }
    if n > max {
        return Err(format!("{what} is {n} characters long; at most {max} are allowed"));
    }
    Ok(())
}

/// SQS refuses U+FFFE and U+FFFF in a message: a value holding one could not be
/// deferred or reported, so it is refused up front.
pub(crate) fn is_sqs_safe(c: char) -> bool {
    c != '\u{fffe}' && c != '\u{ffff}'
}

fn check_printable(what: &str, s: &str) -> Result<(), String> {
    if s.chars().any(|c| c.is_control() || !is_sqs_safe(c)) {
        return Err(format!(
            "{what} must contain printable characters only (no control characters, line breaks, U+FFFE or U+FFFF)"
        ));
    }
    Ok(())
}

parsed_string!(
    /// The orchestrator's idempotency key: 1 to 128 printable characters.
    RequestId,
    {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$",
     "description": "Idempotency key: 1 to 128 printable characters. The same id is delivered at most once (per tenant)."}
);

impl RequestId {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_length("the id", s, 128)?;
        check_printable("the id", s)?;
        Ok(RequestId(s.to_owned()))
    }
}

parsed_string!(
    /// The orchestrator's id for a person: 1 to 128 printable characters.
    RecipientId,
    {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$",
     "description": "Stable id of the person in the orchestrator (not an address); scopes consent and frequency caps."}
);

impl RecipientId {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_length("the recipient id", s, 128)?;
        check_printable("the recipient id", s)?;
        Ok(RecipientId(s.to_owned()))
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

parsed_string!(
    /// Brand or workspace name.
    TenantId,
    {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9._-]+$",
     "description": "Brand or workspace; scopes idempotency, consent and caps."}
);

impl TenantId {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_length("the tenant", s, 64)?;
        if !s.chars().all(is_name_char) {
            return Err("the tenant may contain only letters, digits, '.', '_' and '-'".into());
        }
        Ok(TenantId(s.to_owned()))
    }
}

parsed_string!(
    /// Message category, lower-cased: `transactional`, `marketing`, `product-updates`...
    Category,
    {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9._-]+$",
     "description": "Kind of message, case-insensitive (stored lower-case). `transactional` is never capped, never held by quiet hours and ignores category unsubscribes."}
);

impl Category {
    pub const TRANSACTIONAL: &'static str = "transactional";

    pub fn parse(s: &str) -> Result<Self, String> {
        check_length("the category", s, 64)?;
        if !s.chars().all(is_name_char) {
            return Err("the category may contain only letters, digits, '.', '_' and '-' (e.g. `marketing`)".into());
        }
        Ok(Category(s.to_ascii_lowercase()))
    }

    pub fn is_transactional(&self) -> bool {
        self.0 == Self::TRANSACTIONAL
    }
}

parsed_string!(
    /// Name of a template in the catalogue (a folder name: no path separators).
    TemplateName,
    {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$",
     "description": "Name of a template in the catalogue."}
);

impl TemplateName {
    pub fn parse(s: &str) -> Result<Self, String> {
        check_length("the template name", s, 128)?;
        let ok_first = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !ok_first || !s.chars().all(is_name_char) || s.contains("..") {
            return Err("a template name is letters, digits, '.', '_' and '-', starting with a letter or digit (e.g. `order-confirmation`)".into());
        }
        Ok(TemplateName(s.to_owned()))
    }
}

parsed_string!(
    /// A BCP 47 language tag in canonical case (`fr-CA`, `zh-Hant-TW`, `en`).
    Locale,
    {"type": "string", "maxLength": 35, "pattern": "^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$",
     "description": "BCP 47 language tag such as `fr-CA`; `_` is accepted for `-`. Templates fall back fr-CA -> fr -> default."}
);

impl Locale {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || "expected a BCP 47 language tag like `en`, `fr-CA` or `zh-Hant-TW`".to_owned();
        if s.is_empty() || s.len() > 35 {
            return Err(bad());
        }
        let mut out: Vec<String> = Vec::new();
        for (i, sub) in s.split(['-', '_']).enumerate() {
            let valid = match i {
                0 => (2..=3).contains(&sub.len()) && sub.chars().all(|c| c.is_ascii_alphabetic()),
                _ => (1..=8).contains(&sub.len()) && sub.chars().all(|c| c.is_ascii_alphanumeric()),
            };
            if !valid {
                return Err(bad());
            }
            // Canonical case: language lower, script title, region upper.
            let canon = match (i, sub.len()) {
                (0, _) => sub.to_ascii_lowercase(),
                (_, 4) if sub.chars().all(|c| c.is_ascii_alphabetic()) => {
                    let lower = sub.to_ascii_lowercase();
                    let mut chars = lower.chars();
                    chars.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(chars).collect()
                }
                (_, 2) if sub.chars().all(|c| c.is_ascii_alphabetic()) => sub.to_ascii_uppercase(),
                (_, 3) if sub.chars().all(|c| c.is_ascii_digit()) => sub.to_owned(),
                _ => sub.to_ascii_lowercase(),
            };
            out.push(canon);
        }
        Ok(Locale(out.join("-")))
    }

    /// This tag, then each shorter prefix: `zh-Hant-TW`, `zh-Hant`, `zh`.
    pub fn fallbacks(&self) -> Vec<&str> {
        let mut chain = vec![self.0.as_str()];
        let mut cur = self.0.as_str();
        while let Some((head, _)) = cur.rsplit_once('-') {
            chain.push(head);
            cur = head;
        }
        chain
    }
}

parsed_string!(
    /// An IANA time zone name known to the bundled time zone database.
    TimeZoneName,
    {"type": "string", "minLength": 1, "maxLength": 64,
     "description": "IANA time zone such as `Europe/Paris` or `America/Toronto`, used for quiet hours."}
);

impl TimeZoneName {
    pub fn parse(s: &str) -> Result<Self, String> {
        match jiff::tz::db().get(s) {
            Ok(tz) => Ok(TimeZoneName(tz.iana_name().unwrap_or(s).to_owned())),
            Err(_) => {
                Err("unknown time zone: expected an IANA name such as `Europe/Paris` or `America/New_York`".into())
            }
        }
    }

    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        jiff::tz::db().get(&self.0).unwrap_or(jiff::tz::TimeZone::UTC)
    }
}

/// Which template to render: `"name"` or `{"name": "...", "version": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateRef {
    pub name: TemplateName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateRefObject {
    name: TemplateName,
    #[serde(default)]
    version: Option<String>,
}

impl<'de> Deserialize<'de> for TemplateRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TemplateRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a template name or an object {\"name\": ..., \"version\": ...}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TemplateRef, E> {
                Ok(TemplateRef { name: TemplateName::parse(v).map_err(E::custom)?, version: None })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<TemplateRef, A::Error> {
                let o = TemplateRefObject::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                if let Some(v) = &o.version
                    && (v.is_empty() || v.len() > 64 || v.chars().any(char::is_control))
                {
                    return Err(serde::de::Error::custom("the template version must be 1 to 64 printable characters"));
                }
                Ok(TemplateRef { name: o.name, version: o.version })
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for TemplateRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TemplateRef".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Template to render: its name, or an object with the name and the version it must have.",
            "oneOf": [
                {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"},
                {"type": "object", "additionalProperties": false, "required": ["name"], "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"},
                    "version": {"type": "string", "minLength": 1, "maxLength": 64}
                }}
            ]
        })
    }
}
