//! Delivery request v1: the JSON an orchestrator puts on a queue.
//!
//! Everything here is parsed, not merely stored: once a [`DeliveryRequest`] exists,
//! its addresses, time zone, locale and limits are known to be valid, so the rest of
//! the pipeline never re-checks them.

pub mod address;
pub(crate) mod error;
mod fields;
mod keys;
pub mod phone_region;
mod push;
pub mod value_de;

use std::collections::BTreeMap;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use address::{AddressError, EmailAddress, PhoneNumber};
pub use error::RequestError;
pub use fields::{Category, Locale, RecipientId, RequestId, TemplateName, TemplateRef, TenantId, TimeZoneName};
pub use keys::{IdempotencyKey, RecipientKey, SuppressionKey};
pub use push::{ApnsEnvironment, PushPlatform, PushTarget, SnsPlatform, WebPushKeys};

/// The only request format version this build reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Upper bounds that keep one request from being used to smuggle megabytes into
/// every receipt and state record (all in bytes of UTF-8).
pub mod limits {
    /// A request body as it arrives (SQS's classic message limit).
    pub const REQUEST_BYTES: usize = 256 * 1024;
    /// The request as herald re-enqueues it for a deferral: room is left for the
    /// message attributes within SQS's limit.
    pub const QUEUED_BYTES: usize = 240 * 1024;
    pub const METADATA_ENTRIES: usize = 50;
    pub const METADATA_KEY: usize = crate::receipt::limits::METADATA_KEY;
    pub const METADATA_VALUE: usize = crate::receipt::limits::METADATA_VALUE;
    pub const METADATA_TOTAL: usize = crate::receipt::limits::METADATA_TOTAL;
}

/// The delivery channel of a request: one request is one message on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Push,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Push];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Channel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "email" => Ok(Channel::Email),
            "sms" => Ok(Channel::Sms),
            "push" => Ok(Channel::Push),
            other => Err(format!("unknown channel `{other}`: expected one of email, sms, push")),
        }
    }
}

/// One delivery request, version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "herald delivery request v1")]
pub struct DeliveryRequest {
    /// Format version; only `1` exists. Optional: absent means 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<u32>,
    /// Idempotency key chosen by the orchestrator: the same id is sent at most once.
    pub id: RequestId,
    pub channel: Channel,
    /// What kind of message this is, for consent and frequency caps. `transactional`
    /// is special: never capped, never held by quiet hours, not subject to unsubscribes.
    pub category: Category,
    pub recipient: Recipient,
    pub template: TemplateRef,
    /// Personalisation data, the root of the template context.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Do not send before this instant (RFC 3339). At most `limits.send_after_horizon`
    /// ahead (30 days by default).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "timestamp")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub send_after: Option<Timestamp>,
    /// Do not send at or after this instant (RFC 3339): the request ends `expired`.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "timestamp")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub expires_at: Option<Timestamp>,
    /// Echoed verbatim in every receipt (journey, step, campaign ids...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Brand or workspace; scopes idempotency, consent and caps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantId>,
}

/// Who the message is for, and where each channel reaches them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// The orchestrator's stable id for this person (not an address).
    pub id: RecipientId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushTarget>,
    /// BCP 47 language tag, e.g. `fr-CA`; templates fall back `fr-CA` -> `fr` -> default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<Locale>,
    /// IANA time zone, e.g. `Europe/Paris`, for quiet hours. When absent, an SMS takes
    /// its number's zone where the country keeps one clock, else the configured default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<TimeZoneName>,
}

/// Where a message is delivered: the address of the request's channel.
#[derive(Debug, Clone, Copy)]
pub enum Destination<'a> {
    Email(&'a EmailAddress),
    Sms(&'a PhoneNumber),
    Push(&'a PushTarget),
}

impl Destination<'_> {
    /// Key under which the address is suppressed (hard bounce, complaint, manual).
    pub fn suppression_key(&self) -> SuppressionKey {
        match self {
            Destination::Email(e) => SuppressionKey::email(e),
            Destination::Sms(p) => SuppressionKey::phone(p),
            Destination::Push(t) => SuppressionKey::push(t),
        }
    }
}

impl DeliveryRequest {
    /// Parses one request from JSON, naming the offending field on error. The error
    /// never quotes the input (see `value_de`); a key given twice is refused.
    pub fn from_json(raw: &str) -> Result<Self, RequestError> {
        if raw.len() > limits::REQUEST_BYTES {
            return Err(RequestError::field(
                "request",
                format!("the request is {} bytes; at most {} are accepted", raw.len(), limits::REQUEST_BYTES),
            ));
        }
        let value = serde_json::from_str::<value_de::StrictValue>(raw).map_err(|e| RequestError::syntax(&e))?;
        let request = Self::from_value(value.0)?;
        // Re-serialised, a request is rarely longer than it came; check only when it could matter.
        if raw.len() > limits::QUEUED_BYTES / 2 && request.to_json().len() > limits::QUEUED_BYTES {
            return Err(RequestError::field(
                "data",
                format!("the request is too large to queue again: at most {} bytes", limits::QUEUED_BYTES),
            ));
        }
        Ok(request)
    }

    /// Parses a request already decoded as a JSON value. Only an object is a request.
    pub fn from_value(mut value: serde_json::Value) -> Result<Self, RequestError> {
        // `data` is already the map the request keeps: moved out, not rebuilt key by key
        // through the deserializer (the larger part of reading a request). An empty map
        // stands in for it, so the struct's rules (its type, unknown fields) read the
        // same; anything but an object stays where it is and fails as before.
        let data = match value.get_mut("data") {
            Some(v @ serde_json::Value::Object(_)) => {
                Some(std::mem::replace(v, serde_json::Value::Object(Default::default())))
            }
            _ => None,
        };
        let mut request: DeliveryRequest = value_de::from_value(value).map_err(RequestError::from_fields)?;
        if let Some(serde_json::Value::Object(data)) = data {
            request.data = data;
        }
        request.validate()?;
        Ok(request)
    }

    /// Identifies the content of the request, whatever the order of its keys: two
    /// messages with the same id and the same fingerprint are the same message
    /// delivered twice; with different fingerprints, two messages reusing an id.
    pub fn fingerprint(&self) -> String {
        // Every field but `data` through a JSON value (a few small ones); `data` is JSON
        // already and is written where it stands: copying it into a second tree was most
        // of the fingerprint's cost. The bytes are those of the whole request's value
        // (pinned by `the_fingerprint_is_stable_across_releases`). The literal names every
        // field, so a new one cannot be left out of the fingerprint unnoticed.
        let shell = DeliveryRequest {
            schema_version: self.schema_version,
            id: self.id.clone(),
            channel: self.channel,
            category: self.category.clone(),
            recipient: self.recipient.clone(),
            template: self.template.clone(),
            data: serde_json::Map::new(),
            send_after: self.send_after,
            expires_at: self.expires_at,
            metadata: self.metadata.clone(),
            tenant: self.tenant.clone(),
        };
        let shell = serde_json::to_value(&shell).unwrap_or_default();
        let mut canonical = Vec::with_capacity(1024);
        match &shell {
            serde_json::Value::Object(fields) => {
                let data = (!self.data.is_empty()).then_some(("data", Canonical::Object(&self.data)));
                let entries = fields.iter().map(|(k, v)| (k.as_str(), Canonical::Value(v))).chain(data);
                write_object(entries.collect(), &mut canonical);
            }
            other => write_canonical(other, &mut canonical),
        }
        crate::receipt::receipt_id(&[b"request.v1".as_slice(), &canonical])
    }

    /// Cross-field rules that serde alone cannot express.
    fn validate(&self) -> Result<(), RequestError> {
        if let Some(v) = self.schema_version
            && v != SCHEMA_VERSION
        {
            return Err(RequestError::field(
                "schema_version",
                format!("unsupported version {v}: this herald reads version {SCHEMA_VERSION}"),
            ));
        }
        let missing = |field: &str, what: &str| {
            RequestError::field(
                format!("recipient.{field}"),
                format!("missing: a {} request needs {what}", self.channel),
            )
        };
        match self.channel {
            Channel::Email if self.recipient.email.is_none() => {
                return Err(missing("email", "`recipient.email`, an address like name@example.com"));
            }
            Channel::Sms if self.recipient.phone.is_none() => {
                return Err(missing("phone", "`recipient.phone`, an E.164 number like +14155550123"));
            }
            Channel::Push if self.recipient.push.is_none() => {
                return Err(missing(
                    "push",
                    "`recipient.push`, a device target ({\"platform\": \"fcm\", \"token\": \"...\"})",
                ));
            }
            _ => {}
        }
        if self.metadata.len() > limits::METADATA_ENTRIES {
            return Err(RequestError::field(
                "metadata",
                format!("at most {} entries, got {}", limits::METADATA_ENTRIES, self.metadata.len()),
            ));
        }
        let mut total = 0;
        for (k, v) in &self.metadata {
            if k.is_empty() || k.len() > limits::METADATA_KEY || k.chars().any(|c| c.is_control()) {
                return Err(RequestError::field(
                    "metadata",
                    format!("keys must be 1 to {} bytes of printable characters", limits::METADATA_KEY),
                ));
            }
            let path = || format!("metadata.{}", value_de::mask_key(k));
            if v.len() > limits::METADATA_VALUE {
                return Err(RequestError::field(path(), format!("at most {} bytes", limits::METADATA_VALUE)));
            }
            if !k.chars().chain(v.chars()).all(fields::is_sqs_safe) {
                return Err(RequestError::field(path(), "contains U+FFFE or U+FFFF, which SQS cannot carry"));
            }
            total += k.len() + v.len();
        }
        if total > limits::METADATA_TOTAL {
            return Err(RequestError::field(
                "metadata",
                format!("{total} bytes of keys and values; at most {} in all", limits::METADATA_TOTAL),
            ));
        }
        if !self.data.iter().all(|(k, v)| k.chars().all(fields::is_sqs_safe) && sqs_safe_value(v)) {
            return Err(RequestError::field("data", "contains U+FFFE or U+FFFF, which SQS cannot carry"));
        }
        if let (Some(after), Some(expires)) = (self.send_after, self.expires_at)
            && after >= expires
        {
            return Err(RequestError::field(
                "send_after",
                "must be before `expires_at`, otherwise the request could never be sent",
            ));
        }
        Ok(())
    }

    /// The address this request is delivered to. Validation guarantees it exists.
    pub fn destination(&self) -> Result<Destination<'_>, RequestError> {
        let r = &self.recipient;
        match self.channel {
            Channel::Email => r.email.as_ref().map(Destination::Email),
            Channel::Sms => r.phone.as_ref().map(Destination::Sms),
            Channel::Push => r.push.as_ref().map(Destination::Push),
        }
        .ok_or_else(|| RequestError::field(format!("recipient.{}", self.channel), "missing"))
    }

    pub fn is_transactional(&self) -> bool {
        self.category.is_transactional()
    }

    /// Key scoping idempotency: the same id under two tenants is two requests.
    pub fn idempotency_key(&self) -> IdempotencyKey {
        IdempotencyKey::new(self.tenant.as_ref(), &self.id)
    }

    /// Key scoping per-recipient state (consent, caps).
    pub fn recipient_key(&self) -> RecipientKey {
        RecipientKey::new(self.tenant.as_ref(), self.recipient.id.as_str())
    }

    /// The request as JSON that SQS accepts (see `receipt::sqs_safe_json`).
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        crate::receipt::sqs_safe_json(serde_json::to_string(self).unwrap_or_default())
    }
}

/// RFC 3339 with an offset; the error does not quote the value.
fn timestamp<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse::<Timestamp>()
        .map(Some)
        .map_err(|_| serde::de::Error::custom("expected an RFC 3339 instant with an offset, like 2026-05-01T09:00:00Z"))
}

fn sqs_safe_value(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.chars().all(fields::is_sqs_safe),
        serde_json::Value::Array(items) => items.iter().all(sqs_safe_value),
        serde_json::Value::Object(map) => {
            map.iter().all(|(k, v)| k.chars().all(fields::is_sqs_safe) && sqs_safe_value(v))
        }
        _ => true,
    }
}

/// A node of the canonical form: a JSON value, or an object's entries held apart from
/// one (the request's `data`).
#[derive(Clone, Copy)]
enum Canonical<'a> {
    Value(&'a serde_json::Value),
    Object(&'a serde_json::Map<String, serde_json::Value>),
}

/// An object's entries, keys in byte order.
fn write_object(mut entries: Vec<(&str, Canonical<'_>)>, out: &mut Vec<u8>) {
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_scalar(k, out);
        out.push(b':');
        match v {
            Canonical::Value(v) => write_canonical(v, out),
            Canonical::Object(map) => write_canonical_map(map, out),
        }
    }
    out.push(b'}');
}

fn write_canonical_map(map: &serde_json::Map<String, serde_json::Value>, out: &mut Vec<u8>) {
    write_object(map.iter().map(|(k, v)| (k.as_str(), Canonical::Value(v))).collect(), out);
}

/// JSON with every object's keys sorted, for fingerprints: no blank space, keys and
/// scalars as serde_json writes them. Written in place: a send computes it for the whole
/// request, data included.
fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    match v {
        serde_json::Value::Object(map) => write_canonical_map(map, out),
        serde_json::Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        other => write_scalar(other, out),
    }
}

/// A key or a scalar, as `to_string` writes it (a write into a Vec cannot fail).
fn write_scalar<T: Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(&mut *out, v);
}

/// The JSON Schema of [`DeliveryRequest`], as published in `schema/delivery-request.v1.json`.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(DeliveryRequest);
    schema.to_value()
}

/// Best-effort facts about input that failed to parse, so even its `rejected`
/// receipt carries the id, channel and metadata the orchestrator sent.
#[derive(Debug, Clone, Default)]
pub struct RawFacts {
    pub id: Option<String>,
    pub channel: Option<Channel>,
    pub category: Option<String>,
    pub tenant: Option<String>,
    pub recipient_id: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

impl RawFacts {
    pub fn from_json(raw: &str) -> Self {
        match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(v) => Self::from_value(&v),
            Err(_) => Self::default(),
        }
    }

    pub fn from_value(v: &serde_json::Value) -> Self {
        let s = |key: &str| v.get(key).and_then(|x| x.as_str()).map(str::to_owned);
        let metadata = v
            .get("metadata")
            .and_then(|m| m.as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                    .take(limits::METADATA_ENTRIES)
                    .collect()
            })
            .unwrap_or_default();
        RawFacts {
            id: s("id").filter(|id| RequestId::parse(id).is_ok()),
            channel: s("channel").and_then(|c| c.parse().ok()),
            category: s("category").filter(|c| Category::parse(c).is_ok()),
            tenant: s("tenant").filter(|t| TenantId::parse(t).is_ok()),
            recipient_id: v
                .get("recipient")
                .and_then(|r| r.get("id"))
                .and_then(|x| x.as_str())
                .filter(|id| RecipientId::parse(id).is_ok())
                .map(str::to_owned),
            metadata,
        }
    }
}

#[cfg(test)]
mod tests;
