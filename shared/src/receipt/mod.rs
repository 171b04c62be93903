//! Receipts: what happened to a request, one JSON object per outcome.
//!
//! Every request ends in exactly one terminal receipt (`sent`, `duplicate`,
//! `suppressed`, `unsubscribed`, `capped`, `expired`, `rejected`, `failed`), possibly
//! after `deferred` ones. `reason` is machine-readable (`frequency_capped:marketing:7d`,
//! `suppressed:hard_bounce`, `invalid_request:recipient.email`); `detail` is for humans
//! and never contains an address.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ports::SuppressionReason;
use crate::render::sms::{self, SmsEncoding};
use crate::request::{Channel, DeliveryRequest, RawFacts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Sent,
    Duplicate,
    Suppressed,
    Unsubscribed,
    Capped,
    Expired,
    Rejected,
    Failed,
    /// Not terminal: the request is held until `deferred_until`.
    Deferred,
}

impl Status {
    pub const TERMINAL: [Status; 8] = [
        Status::Sent,
        Status::Duplicate,
        Status::Suppressed,
        Status::Unsubscribed,
        Status::Capped,
        Status::Expired,
        Status::Rejected,
        Status::Failed,
    ];

    pub fn is_terminal(self) -> bool {
        self != Status::Deferred
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Duplicate => "duplicate",
            Status::Suppressed => "suppressed",
            Status::Unsubscribed => "unsubscribed",
            Status::Capped => "capped",
            Status::Expired => "expired",
            Status::Rejected => "rejected",
            Status::Failed => "failed",
            Status::Deferred => "deferred",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Status::TERMINAL
            .into_iter()
            .chain([Status::Deferred])
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown status `{s}`"))
    }
}

/// Why a request ended (or waits) the way it did: the receipt's `reason`, whose
/// `Display` is the wire format orchestrators match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `invalid_request:<path>`: the request is malformed at that field.
    InvalidRequest(String),
    /// A template lookup or render failure, already in wire form (`render_error:...`).
    Template(String),
    Expired,
    /// The quiet-hours window ends after the request expires.
    ExpiredInQuietHours,
    Suppressed(SuppressionReason),
    Unsubscribed(String),
    /// The provider refused: the recipient opted out there (an SMS `STOP`), so nothing
    /// was sent. Ends the request `unsubscribed`.
    OptedOut,
    /// Another message already used this request id; carries its outcome.
    Duplicate(Status),
    /// Another message used this request id and has no recorded outcome.
    DuplicateUndecided,
    FrequencyCapped(String),
    /// The provider refused the message: `provider:<code>`.
    Provider(String),
    /// The provider may or may not have sent it, and the category is at most once.
    UnknownOutcome,
    RetriesExhausted,
    /// The queued message is older than idempotency can vouch for.
    StaleMessage,
    SmsTooLong,
    /// A push payload over its provider's limit: `payload_too_large:<bytes>`.
    PayloadTooLarge(usize),
    EmailNotConfigured,
    /// The request's channel is not one this function sends: `wrong_queue:<channel>`.
    WrongQueue(Channel),
    // Deferrals (not terminal).
    SendAfter,
    QuietHours,
    InProgress,
    Retry,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::InvalidRequest(path) => write!(f, "invalid_request:{path}"),
            Reason::Template(r) => f.write_str(r),
            Reason::Expired => f.write_str("expired"),
            Reason::ExpiredInQuietHours => f.write_str("expired:quiet_hours"),
            Reason::Suppressed(why) => write!(f, "suppressed:{}", why.as_str()),
            Reason::Unsubscribed(category) => write!(f, "unsubscribed:{category}"),
            Reason::OptedOut => f.write_str("opted_out"),
            Reason::Duplicate(prior) => write!(f, "duplicate:{prior}"),
            Reason::DuplicateUndecided => f.write_str("duplicate:undecided"),
            Reason::FrequencyCapped(rule) => write!(f, "frequency_capped:{rule}"),
            Reason::Provider(code) => write!(f, "provider:{code}"),
            Reason::UnknownOutcome => f.write_str("provider:unknown_outcome"),
            Reason::RetriesExhausted => f.write_str("retries_exhausted"),
            Reason::StaleMessage => f.write_str("stale_message"),
            Reason::SmsTooLong => f.write_str("sms_too_long"),
            Reason::PayloadTooLarge(bytes) => write!(f, "payload_too_large:{bytes}"),
            Reason::EmailNotConfigured => f.write_str("email_not_configured"),
            Reason::WrongQueue(channel) => write!(f, "wrong_queue:{channel}"),
            Reason::SendAfter => f.write_str("send_after"),
            Reason::QuietHours => f.write_str("quiet_hours"),
            Reason::InProgress => f.write_str("in_progress"),
            Reason::Retry => f.write_str("retry"),
        }
    }
}

/// Size limits of one receipt, in bytes of UTF-8. With them a receipt stays under
/// [`MAX_RECEIPT_BYTES`] whatever the request carried, so one receipt can never sink
/// a batch of them (SQS takes 256 KiB per batch).
pub mod limits {
    pub const REASON: usize = 256;
    pub const DETAIL: usize = 1024;
    /// Ids, tenant, category, source, provider message id.
    pub const ID: usize = 512;
    pub const METADATA_KEY: usize = 128;
    pub const METADATA_VALUE: usize = 1024;
    /// All metadata keys and values together.
    pub const METADATA_TOTAL: usize = 8 * 1024;
    /// The `sms` object: bounded by construction (the transliteration table and
    /// [`crate::render::sms::MAX_NAMED_NON_GSM`]), checked by a test.
    pub const SMS: usize = 1024;
}

/// The largest a serialized receipt can be (JSON escaping can multiply a byte by six).
pub const MAX_RECEIPT_BYTES: usize = 16 * 1024 + 6 * (limits::METADATA_TOTAL + limits::DETAIL + limits::REASON);

/// What is appended to a value that was cut.
pub const CUT_MARKER: &str = "…[cut]";

/// `s` cut to at most `max` bytes on a character boundary, marked when cut.
pub fn bounded(s: &str, max: usize) -> (String, bool) {
    if s.len() <= max {
        return (s.to_owned(), false);
    }
    let mut end = max.saturating_sub(CUT_MARKER.len());
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    (format!("{}{CUT_MARKER}", &s[..end]), true)
}

/// The stable id of a receipt: the same outcome reported twice has the same id, so
/// consumers de-duplicate on it. 32 hex characters of SHA-256 over the parts.
pub fn receipt_id<P: AsRef<[u8]>>(parts: &[P]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        let p = p.as_ref();
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let digest = h.finalize();
    // Two digits per byte from a table: `write!` per byte cost more than the hash.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(32);
    for b in &digest[..16] {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    id
}

/// What an SMS costs and why: on `sent` receipts, and on `failed` ones with reason
/// `sms_too_long`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SmsFacts {
    /// `gsm-7` or `ucs-2`.
    pub encoding: SmsEncoding,
    /// How many SMS the message is billed as.
    pub segments: u32,
    /// Septets for GSM-7 (extension characters count 2), UTF-16 code units for UCS-2.
    pub units: u32,
    /// What a reader calls characters (grapheme clusters).
    pub characters: u32,
    /// Characters replaced by GSM-7 ones before sending (curly quotes, dashes, Unicode
    /// spaces), as code points (`U+2019`); absent when the body went out as rendered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transliterated: Vec<String>,
    /// UCS-2 only: characters that made it UCS-2, as code points; at most 5, and never a
    /// letter or digit (a rendered body carries personal data).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_gsm_characters: Vec<String>,
    /// UCS-2 only: how many other characters made it UCS-2 (letters, digits, or more
    /// than 5).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub non_gsm_others: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl SmsFacts {
    /// The facts of `body` as sent, after transliterating `transliterated`.
    pub fn of(body: &str, transliterated: &[char]) -> Self {
        let info = sms::segment(body);
        let (named, others) = match info.encoding {
            SmsEncoding::Ucs2 => sms::named_non_gsm_characters(body),
            SmsEncoding::Gsm7 => (Vec::new(), 0),
        };
        SmsFacts {
            encoding: info.encoding,
            segments: info.segments,
            units: info.units,
            characters: info.characters,
            transliterated: transliterated.iter().map(|&c| sms::code_point(c)).collect(),
            non_gsm_characters: named.into_iter().map(sms::code_point).collect(),
            non_gsm_others: u32::try_from(others).unwrap_or(u32::MAX),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Receipt {
    /// Stable per outcome: a receipt delivered twice (receipts travel at least once)
    /// has the same id both times. The terminal receipt of a request always has the
    /// same id; if two terminal receipts ever share it, the first one delivered holds.
    pub receipt_id: String,
    /// The request's `id`; null only when the input was not JSON or had no usable id.
    pub request_id: Option<String>,
    pub status: Status,
    /// Machine-readable cause; null for `sent`.
    pub reason: Option<String>,
    /// Human-readable explanation (never contains addresses, tokens or request values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<String>,
    /// The request's metadata, verbatim (bounded: see `truncated`).
    pub metadata: BTreeMap<String, String>,
    #[schemars(with = "String")]
    pub at: Timestamp,
    /// The provider's id for the message (SES MessageId, outbox id...), when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    /// For `deferred`: when the request becomes sendable again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub deferred_until: Option<Timestamp>,
    /// Where the request came from (`file:line`, an SQS message id), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// SMS only, on `sent` and on `failed` with `sms_too_long`: encoding, segments and
    /// what was transliterated. Not on a receipt re-emitted for a request asked again
    /// (the state store records the outcome, not these facts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsFacts>,
    /// Fields cut to fit the receipt's size limits (values end with `…[cut]`;
    /// `metadata` may also miss entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<String>,
}

fn bounded_opt(value: Option<&str>, max: usize, field: &str, truncated: &mut Vec<String>) -> Option<String> {
    value.map(|v| {
        let (v, cut) = bounded(v, max);
        if cut {
            truncated.push(field.to_owned());
        }
        v
    })
}

/// Metadata within the receipt limits: entries whose key is too long are dropped,
/// values cut, and entries past the total budget dropped.
fn bounded_metadata(metadata: &BTreeMap<String, String>, truncated: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut total = 0;
    let mut cut = false;
    for (k, v) in metadata {
        if k.len() > limits::METADATA_KEY {
            cut = true;
            continue;
        }
        let (v, value_cut) = bounded(v, limits::METADATA_VALUE);
        if total + k.len() + v.len() > limits::METADATA_TOTAL {
            cut = true;
            continue;
        }
        cut |= value_cut;
        total += k.len() + v.len();
        out.insert(k.clone(), v);
    }
    if cut {
        truncated.push("metadata".to_owned());
    }
    out
}

impl Receipt {
    /// A receipt about a parsed request. Its id is set by [`Receipt::id`].
    pub fn for_request(request: &DeliveryRequest, status: Status, at: Timestamp) -> Self {
        let mut truncated = Vec::new();
        let metadata = bounded_metadata(&request.metadata, &mut truncated);
        Receipt {
            receipt_id: String::new(),
            request_id: Some(request.id.as_str().to_owned()),
            status,
            reason: None,
            detail: None,
            channel: Some(request.channel),
            category: Some(request.category.as_str().to_owned()),
            tenant: request.tenant.as_ref().map(|t| t.as_str().to_owned()),
            recipient_id: Some(request.recipient.id.as_str().to_owned()),
            metadata,
            at,
            provider_message_id: None,
            deferred_until: None,
            source: None,
            sms: None,
            truncated,
        }
    }

    /// A receipt for input that never became a request; its id derives from the
    /// input's bytes, so the same bad message always gets the same receipt id.
    pub fn for_raw(facts: &RawFacts, raw: &str, status: Status, at: Timestamp) -> Self {
        let mut truncated = Vec::new();
        let metadata = bounded_metadata(&facts.metadata, &mut truncated);
        let request_id = bounded_opt(facts.id.as_deref(), limits::ID, "request_id", &mut truncated);
        let digest = receipt_id(&[raw]);
        Receipt {
            receipt_id: receipt_id(&["raw", &digest, status.as_str()]),
            request_id,
            status,
            reason: None,
            detail: None,
            channel: facts.channel,
            category: bounded_opt(facts.category.as_deref(), limits::ID, "category", &mut truncated)
                .map(|c| c.to_ascii_lowercase()),
            tenant: bounded_opt(facts.tenant.as_deref(), limits::ID, "tenant", &mut truncated),
            recipient_id: bounded_opt(facts.recipient_id.as_deref(), limits::ID, "recipient_id", &mut truncated),
            metadata,
            at,
            provider_message_id: None,
            deferred_until: None,
            source: None,
            sms: None,
            truncated,
        }
    }

    pub fn id(mut self, receipt_id: String) -> Self {
        self.receipt_id = receipt_id;
        self
    }

    pub fn reason(mut self, reason: Reason) -> Self {
        self.reason = bounded_opt(Some(&reason.to_string()), limits::REASON, "reason", &mut self.truncated);
        self
    }

    /// A reason already in wire form (one recorded earlier by the state store).
    pub fn reason_text(mut self, reason: Option<&str>) -> Self {
        self.reason = bounded_opt(reason, limits::REASON, "reason", &mut self.truncated);
        self
    }

    pub fn detail(mut self, detail: impl AsRef<str>) -> Self {
        self.detail = bounded_opt(Some(detail.as_ref()), limits::DETAIL, "detail", &mut self.truncated);
        self
    }

    pub fn source(mut self, source: Option<&str>) -> Self {
        self.source = bounded_opt(source, limits::ID, "source", &mut self.truncated);
        self
    }

    pub fn provider_message_id(mut self, id: Option<&str>) -> Self {
        self.provider_message_id = bounded_opt(id, limits::ID, "provider_message_id", &mut self.truncated);
        self
    }

    pub fn sms(mut self, facts: Option<SmsFacts>) -> Self {
        self.sms = facts;
        self
    }

    /// The least a receipt can say: used when the full one cannot be delivered.
    pub fn minimal(&self) -> Receipt {
        Receipt {
            receipt_id: self.receipt_id.clone(),
            request_id: self.request_id.as_deref().map(|id| bounded(id, limits::ID).0),
            status: self.status,
            reason: self.reason.clone(),
            detail: None,
            channel: self.channel,
            category: None,
            tenant: self.tenant.as_deref().map(|t| bounded(t, limits::ID).0),
            recipient_id: None,
            metadata: BTreeMap::new(),
            at: self.at,
            provider_message_id: self.provider_message_id.clone(),
            deferred_until: self.deferred_until,
            source: None,
            sms: None,
            truncated: vec!["*".to_owned()],
        }
    }

    /// JSON that SQS accepts: serde_json escapes control characters but writes the
    /// noncharacters U+FFFE and U+FFFF raw, which SQS refuses; escape those too.
    pub fn to_json(&self) -> String {
        sqs_safe_json(serde_json::to_string(self).unwrap_or_default())
    }
}

/// Escapes the characters SQS refuses that serde_json writes raw (U+FFFE, U+FFFF).
/// They can only occur inside JSON strings, where `\uXXXX` means the same.
pub fn sqs_safe_json(json: String) -> String {
    if !json.contains(['\u{fffe}', '\u{ffff}']) {
        return json;
    }
    json.replace('\u{fffe}', "\\ufffe").replace('\u{ffff}', "\\uffff")
}

pub mod event;
pub mod provider;
pub mod sns_message;
pub mod unsubscribe;
pub mod webhook;

/// The JSON Schema of [`event::DeliveryEvent`], as published in
/// `schema/delivery-event.v1.json`.
pub fn delivery_event_schema() -> serde_json::Value {
    schemars::schema_for!(event::DeliveryEvent).to_value()
}

/// The receipt stream (the receipts queue, and each webhook's `data`): a receipt (it has
/// `status`) or a delivery event (it has `event`), as published in
/// `schema/receipt-stream.v1.json`.
pub fn stream_schema() -> serde_json::Value {
    #[derive(schemars::JsonSchema)]
    #[serde(untagged)]
    #[allow(dead_code)]
    /// One message of herald's receipt stream: a receipt (terminal or deferred outcome of
    /// a request: it has `status`) or a delivery event (what the provider reported after
    /// it: it has `event`).
    enum ReceiptStreamMessage {
        Receipt(Receipt),
        DeliveryEvent(event::DeliveryEvent),
    }
    schemars::schema_for!(ReceiptStreamMessage).to_value()
}

/// The JSON Schema of [`Receipt`], as published in `schema/receipt.v1.json`.
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(Receipt).to_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_cuts_on_a_char_boundary_with_a_marker() {
        let (s, cut) = bounded("ééééé", 8);
        assert!(cut && s.len() <= 8 && s.ends_with(CUT_MARKER), "{s}");
        assert_eq!(bounded("abc", 3), ("abc".to_owned(), false));
    }

    #[test]
    fn receipt_ids_are_stable_and_distinct() {
        assert_eq!(receipt_id(&["t", "k", "f"]), receipt_id(&["t", "k", "f"]));
        assert_ne!(receipt_id(&["t", "kf"]), receipt_id(&["tk", "f"]));
        assert_eq!(receipt_id(&["x"]).len(), 32);
    }

    #[test]
    fn noncharacters_are_escaped_for_sqs() {
        let json = sqs_safe_json("{\"a\":\"x\u{ffff}y\u{fffe}\"}".to_owned());
        assert!(!json.contains(['\u{fffe}', '\u{ffff}']));
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["a"], "x\u{ffff}y\u{fffe}");
    }

    #[test]
    fn sms_facts_stay_within_their_limit() {
        // The worst case: every character the table replaces (a body can hold them all),
        // beside the most that can be named for a UCS-2 body.
        let all: String = sms::transliterations().map(|(c, _)| c).collect();
        let replaced = sms::transliterate(&all).map(|t| t.replaced).unwrap_or_default();
        assert_eq!(replaced.len(), sms::transliterations().count());
        let symbols: String = ('\u{2600}'..='\u{26FF}').chain('\u{0410}'..='\u{044F}').collect();
        let mut facts = SmsFacts::of(&symbols, &[]);
        assert_eq!(facts.encoding, SmsEncoding::Ucs2);
        assert_eq!(facts.non_gsm_characters.len(), sms::MAX_NAMED_NON_GSM);
        assert!(facts.non_gsm_others > 0);
        facts.transliterated = replaced.iter().map(|&c| sms::code_point(c)).collect();
        let json = serde_json::to_string(&facts).unwrap();
        assert!(json.len() <= limits::SMS, "{} bytes", json.len());
        // GSM-7: no culprits to name.
        let plain = SmsFacts::of("It's fine", &['\u{2019}']);
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            serde_json::json!({
                "encoding": "gsm-7", "segments": 1, "units": 9, "characters": 9, "transliterated": ["U+2019"]
            })
        );
    }

    #[test]
    fn reasons_have_one_wire_format() {
        assert_eq!(Reason::FrequencyCapped("marketing:7d".into()).to_string(), "frequency_capped:marketing:7d");
        assert_eq!(Reason::Duplicate(Status::Sent).to_string(), "duplicate:sent");
        assert_eq!(Reason::UnknownOutcome.to_string(), "provider:unknown_outcome");
        assert_eq!(Reason::OptedOut.to_string(), "opted_out");
        assert_eq!(Reason::Suppressed(SuppressionReason::HardBounce).to_string(), "suppressed:hard_bounce");
    }
}
