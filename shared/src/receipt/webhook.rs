//! Webhooks to subscribers: Standard Webhooks v1 signatures, the retry schedule, how a
//! response is judged, and which receipts and events a subscription receives.
//!
//! Pure: no I/O, no clock, no randomness. Callers pass `now` and the jitter, so every
//! decision here is reproducible in a test.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Decodes secrets and signatures with or without `=` padding (generators differ);
/// signatures are always written padded, as the reference libraries do.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

// ---------------------------------------------------------------------------------------
// Signing (Standard Webhooks v1, HMAC-SHA256)
// ---------------------------------------------------------------------------------------

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How the spec serialises a symmetric secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The spec's range for a symmetric secret. The reference libraries accept any non-empty
/// key; herald issues its own secrets, so it holds them to the spec: a shorter key is
/// weaker than the scheme promises, and a longer one is nobody's generator.
pub const MIN_SECRET_BYTES: usize = 24;
pub const MAX_SECRET_BYTES: usize = 64;

/// The replay window every reference library uses, in both directions.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// One endpoint's signing key. Holds only the keyed HMAC state; `Debug` never shows it.
#[derive(Clone)]
pub struct WebhookSecret {
    mac: HmacSha256,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("webhook secret is empty (expected `whsec_` followed by base64)")]
    Empty,
    #[error("webhook secret is not base64 (expected `whsec_` followed by base64)")]
    NotBase64,
    #[error("webhook secret decodes to {len} bytes; Standard Webhooks requires 24 to 64")]
    Length { len: usize },
}

impl WebhookSecret {
    /// `whsec_<base64>` or bare base64 (the reference libraries take both). Surrounding
    /// whitespace is ignored: a secret pasted into a secret store often ends in a newline.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        if encoded.is_empty() {
            return Err(SecretError::Empty);
        }
        let key = LENIENT.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        Self::from_bytes(&key)
    }

    /// A key from raw bytes (freshly generated ones).
    pub fn from_bytes(key: &[u8]) -> Result<Self, SecretError> {
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(SecretError::Length { len: key.len() });
        }
        // HMAC takes keys of any length: this arm cannot run, but it needs no unwrap.
        let mac = HmacSha256::new_from_slice(key).map_err(|_| SecretError::Length { len: key.len() })?;
        Ok(WebhookSecret { mac })
    }

    fn mac_for(&self, msg_id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("no webhook secret to sign with")]
    NoSecrets,
    #[error("webhook id must be non-empty visible ASCII without `.`")]
    InvalidId,
    #[error("webhook timestamp must not be negative")]
    InvalidTimestamp,
}

/// The `webhook-signature` header value: one `v1,<base64>` entry per secret, joined by
/// single spaces, in the order given (current key first during a rotation).
///
/// Fails on an id the spec forbids (a `.` would let `id.ts.body` be split another way)
/// or a negative timestamp, which no verifier's integer parser accepts.
pub fn sign(secrets: &[WebhookSecret], msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignError> {
    if secrets.is_empty() {
        return Err(SignError::NoSecrets);
    }
    if !valid_id(msg_id) {
        return Err(SignError::InvalidId);
    }
    if timestamp < 0 {
        return Err(SignError::InvalidTimestamp);
    }
    let timestamp = timestamp.to_string();
    let entries: Vec<String> = secrets
        .iter()
        .map(|secret| {
            format!("v1,{}", STANDARD.encode(secret.mac_for(msg_id, &timestamp, body).finalize().into_bytes()))
        })
        .collect();
    Ok(entries.join(" "))
}

/// The three Standard Webhooks headers for one attempt, names lowercase.
pub fn signed_headers(
    secrets: &[WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<[(&'static str, String); 3], SignError> {
    let signature = sign(secrets, msg_id, timestamp, body)?;
    Ok([(HEADER_ID, msg_id.to_owned()), (HEADER_TIMESTAMP, timestamp.to_string()), (HEADER_SIGNATURE, signature)])
}

/// Header values as received, for [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedHeaders<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
}

impl<'a> SignedHeaders<'a> {
    /// Collects the three headers through `get` (called with the lowercase names).
    pub fn from_lookup(mut get: impl FnMut(&str) -> Option<&'a str>) -> Result<Self, VerifyError> {
        let id = get(HEADER_ID).ok_or(VerifyError::MissingHeader(HEADER_ID))?;
        let timestamp = get(HEADER_TIMESTAMP).ok_or(VerifyError::MissingHeader(HEADER_TIMESTAMP))?;
        let signature = get(HEADER_SIGNATURE).ok_or(VerifyError::MissingHeader(HEADER_SIGNATURE))?;
        Ok(SignedHeaders { id, timestamp, signature })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing `{0}` header")]
    MissingHeader(&'static str),
    #[error("invalid webhook-id")]
    InvalidId,
    #[error("invalid webhook-timestamp (expected integer Unix seconds)")]
    InvalidTimestamp,
    #[error("webhook-timestamp is too old")]
    TooOld,
    #[error("webhook-timestamp is too far in the future")]
    TooNew,
    #[error("no matching v1 signature")]
    NoMatch,
}

/// Checks a received webhook as a subscriber would (herald signs; this is for tests and
/// for the subscriber documentation). Entries of other versions (`v1a`, `v2`) and
/// undecodable ones are skipped; each `v1` entry is compared in constant time.
pub fn verify(
    secret: &WebhookSecret,
    headers: &SignedHeaders<'_>,
    body: &[u8],
    now: Timestamp,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    if !valid_id(headers.id) {
        return Err(VerifyError::InvalidId);
    }
    let sent = parse_unix_seconds(headers.timestamp).ok_or(VerifyError::InvalidTimestamp)?;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    let age = now.as_second().saturating_sub(sent);
    if age > tolerance {
        return Err(VerifyError::TooOld);
    }
    if age < -tolerance {
        return Err(VerifyError::TooNew);
    }
    let expected = secret.mac_for(headers.id, headers.timestamp, body);
    let matched = headers
        .signature
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, encoded)| LENIENT.decode(encoded).ok())
        // verify_slice refuses a tag of the wrong length, so an empty entry never matches.
        .any(|tag| expected.clone().verify_slice(&tag).is_ok());
    if matched { Ok(()) } else { Err(VerifyError::NoMatch) }
}

/// What the spec allows in an id: it goes in a header and must not contain `.`.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_graphic() && b != b'.')
}

/// Digits only: no sign, fraction, exponent or whitespace (`161426533.0`, `-161426533`).
fn parse_unix_seconds(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

// ---------------------------------------------------------------------------------------
// Retry schedule
// ---------------------------------------------------------------------------------------

/// Exponential backoff: after the n-th failed attempt wait `base * 4^(n-1)`, capped at
/// `max`, then shortened by up to half by the jitter.
///
/// Jitter only shortens (the wait lies in `[d/2, d]`), so `max` stays a hard ceiling,
/// which a queue's delay limit can rely on, while retries after one outage still spread
/// over half of each interval instead of arriving together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
}

impl Backoff {
    pub const FACTOR: u32 = 4;
    /// The largest share of a delay the jitter removes.
    pub const JITTER_SPREAD: f64 = 0.5;

    /// 10 attempts: retries after 5 s, 20 s, 80 s, 5 min, 21 min, 85 min, 5.7 h, 8 h, 8 h,
    /// at most 23.6 h from the first attempt to the last (about 17.7 h with average
    /// jitter). The spec's example schedule spans three days; a day is enough for a
    /// receipt whose value fades with its freshness.
    pub const fn standard() -> Self {
        Backoff { base: Duration::from_secs(5), max: Duration::from_secs(8 * 3600), max_attempts: 10 }
    }

    /// The wait after `failed` failed attempts (0: the first attempt, sent at once).
    /// `jitter` is a uniform draw in `[0, 1)`; anything outside is clamped, NaN is 0.
    pub fn delay(&self, failed: u32, jitter: f64) -> Duration {
        let Some(exponent) = failed.checked_sub(1) else {
            return Duration::ZERO;
        };
        let ceiling = Self::FACTOR
            .checked_pow(exponent)
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.max, |delay| delay.min(self.max));
        let jitter = if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, 1.0) };
        let nanos = ceiling.as_nanos();
        // f64 -> u128 saturates; the product stays within [0, nanos / 2].
        let cut = (nanos as f64 * Self::JITTER_SPREAD * jitter) as u128;
        from_nanos(nanos.saturating_sub(cut))
    }

    /// The wait before the next attempt, or `None` once `attempts_made` used them all.
    pub fn next(&self, attempts_made: u32, jitter: f64) -> Option<Duration> {
        (attempts_made < self.max_attempts).then(|| self.delay(attempts_made, jitter))
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::standard()
    }
}

fn from_nanos(nanos: u128) -> Duration {
    const PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits.
    let sub = u32::try_from(nanos % PER_SEC).unwrap_or(0);
    Duration::new(secs, sub)
}

/// A cap for `Retry-After`: a receiver asking for more than a day is treated as asking
/// for a day, so its message is not parked past the schedule's own horizon.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date (IMF-fixdate, and the
/// obsolete RFC 850 and asctime forms recipients must accept). A date in the past is
/// zero; anything beyond `cap` is `cap`; anything else unparsable is `None`.
pub fn parse_retry_after(value: &str, now: Timestamp, cap: Duration) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits to fit a u64 is still "a long time".
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(cap));
    }
    let at = parse_http_date(value)?;
    let wait = at.as_second().saturating_sub(now.as_second());
    let wait = u64::try_from(wait).unwrap_or(0);
    Some(Duration::from_secs(wait).min(cap))
}

fn parse_http_date(value: &str) -> Option<Timestamp> {
    use jiff::fmt::{rfc2822, strtime};

    // Servers get the weekday wrong more often than the date.
    static IMF: rfc2822::DateTimeParser = rfc2822::DateTimeParser::new().relaxed_weekday(true);
    if let Ok(at) = IMF.parse_timestamp(value) {
        return Some(at);
    }
    // RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`),
    // both in GMT.
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"].into_iter().find_map(|format| {
        let civil = strtime::parse(format, value).ok()?.to_datetime().ok()?;
        jiff::tz::TimeZone::UTC.to_timestamp(civil).ok()
    })
}

// ---------------------------------------------------------------------------------------
// Response classification
// ---------------------------------------------------------------------------------------

/// What one delivery attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// 2xx.
    Delivered,
    /// 410: the subscriber wants no more; disable the endpoint.
    Gone,
    /// 429, 502, 503, 504: the receiver is overloaded or limiting us. Retried no sooner
    /// than `after` (its `Retry-After`, already capped) nor than the backoff schedule.
    RetryLater { after: Option<Duration> },
    /// Any other status (3xx included: redirects are never followed, the subscriber
    /// should update the URL), or a transport failure.
    Failed(Failure),
}

/// Why an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Status(u16),
    Timeout,
    /// Refused or reset connection, DNS failure.
    Connect,
    /// The SSRF guard refused the target: it resolves only to internal addresses.
    Refused,
    Tls,
    Other,
}

/// Judges a response status. `retry_after` is the parsed `Retry-After` header (see
/// [`parse_retry_after`]); it counts only on the statuses that ask us to slow down.
pub fn classify(status: u16, retry_after: Option<Duration>) -> Delivery {
    match status {
        200..=299 => Delivery::Delivered,
        410 => Delivery::Gone,
        // The spec groups 502/504 with 429 as "throttle"; 503 commonly carries Retry-After.
        429 | 502 | 503 | 504 => Delivery::RetryLater { after: retry_after },
        _ => Delivery::Failed(Failure::Status(status)),
    }
}

impl Delivery {
    /// Whether another attempt can help. A refused target is not retried: the same DNS
    /// answers the same way, and a subscriber who fixes it is served by the next event.
    pub fn retryable(&self) -> bool {
        match self {
            Delivery::Delivered | Delivery::Gone | Delivery::Failed(Failure::Refused) => false,
            Delivery::RetryLater { .. } | Delivery::Failed(_) => true,
        }
    }

    /// The wait before the next attempt, or `None`: delivered, given up, or out of
    /// attempts (throttled attempts count too, so a receiver that always answers 429
    /// cannot hold a message forever). A `Retry-After` beyond `backoff.max` waits
    /// `backoff.max`, which stays the ceiling of every wait.
    pub fn next_delay(&self, backoff: &Backoff, attempts_made: u32, jitter: f64) -> Option<Duration> {
        if !self.retryable() {
            return None;
        }
        let scheduled = backoff.next(attempts_made, jitter)?;
        match self {
            Delivery::RetryLater { after: Some(after) } => Some(scheduled.max((*after).min(backoff.max))),
            _ => Some(scheduled),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Event filter
// ---------------------------------------------------------------------------------------

/// Receipt statuses, terminal ones and `deferred` (the receipt module's `Status`).
pub const RECEIPT_STATUSES: [&str; 9] =
    ["sent", "duplicate", "suppressed", "unsubscribed", "capped", "expired", "rejected", "failed", "deferred"];

/// Delivery events (the receipt module's `EventKind`).
pub const DELIVERY_EVENTS: [&str; 14] = [
    "provider_accepted",
    "delivery_delayed",
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "rejected_by_provider",
    "undelivered",
    "complained",
    "subscription_changed",
    "unsubscribed",
    "opted_out",
    "opted_in",
    "token_invalid",
];

pub const ALL: &str = "*";
pub const RECEIPT_GROUP: &str = "receipt.*";
pub const EVENT_GROUP: &str = "event.*";
const RECEIPT_PREFIX: &str = "receipt.";
const EVENT_PREFIX: &str = "event.";

/// Whether a subscription with `patterns` receives `type_name`, a receipt status when
/// `is_receipt`, a delivery event otherwise.
///
/// A pattern is `*`, `receipt.*`, `event.*`, a bare name, or a qualified one
/// (`receipt.unsubscribed`, `event.unsubscribed`): `unsubscribed` is both a receipt
/// status and an event, and a bare name matches both. No pattern, nothing received.
pub fn matches(patterns: &[String], type_name: &str, is_receipt: bool) -> bool {
    let own_prefix = if is_receipt { RECEIPT_PREFIX } else { EVENT_PREFIX };
    patterns.iter().any(|pattern| {
        let pattern = pattern.as_str();
        pattern == ALL
            || pattern == type_name
            || pattern.strip_prefix(own_prefix).is_some_and(|rest| rest == "*" || rest == type_name)
    })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("the event filter is empty: list event types, or `*` for everything")]
    Empty,
    #[error("unknown event type `{pattern}`{}; valid: {}", suggestion_text(.suggestion), valid_list())]
    Unknown { pattern: String, suggestion: Option<String> },
}

/// Refuses an empty filter and any pattern [`matches`] would never match, suggesting the
/// closest valid one.
pub fn validate_filter(patterns: &[String]) -> Result<(), FilterError> {
    if patterns.is_empty() {
        return Err(FilterError::Empty);
    }
    match patterns.iter().find(|pattern| !valid_pattern(pattern)) {
        Some(pattern) => Err(FilterError::Unknown { pattern: pattern.clone(), suggestion: suggest(pattern) }),
        None => Ok(()),
    }
}

fn valid_pattern(pattern: &str) -> bool {
    if [ALL, RECEIPT_GROUP, EVENT_GROUP].contains(&pattern) {
        return true;
    }
    if let Some(name) = pattern.strip_prefix(RECEIPT_PREFIX) {
        return RECEIPT_STATUSES.contains(&name);
    }
    if let Some(name) = pattern.strip_prefix(EVENT_PREFIX) {
        return DELIVERY_EVENTS.contains(&name);
    }
    RECEIPT_STATUSES.contains(&pattern) || DELIVERY_EVENTS.contains(&pattern)
}

fn all_patterns() -> impl Iterator<Item = String> {
    [ALL, RECEIPT_GROUP, EVENT_GROUP]
        .into_iter()
        .map(str::to_owned)
        .chain(RECEIPT_STATUSES.iter().chain(DELIVERY_EVENTS.iter()).map(|name| (*name).to_owned()))
        .chain(RECEIPT_STATUSES.iter().map(|name| format!("{RECEIPT_PREFIX}{name}")))
        .chain(DELIVERY_EVENTS.iter().map(|name| format!("{EVENT_PREFIX}{name}")))
}

fn suggest(pattern: &str) -> Option<String> {
    let lowered = pattern.to_ascii_lowercase();
    // A real name under the wrong kind (`receipt.bounced`) gets the right kind, which
    // spelling distance alone would miss.
    if let Some(name) = lowered.strip_prefix(RECEIPT_PREFIX).filter(|name| DELIVERY_EVENTS.contains(name)) {
        return Some(format!("{EVENT_PREFIX}{name}"));
    }
    if let Some(name) = lowered.strip_prefix(EVENT_PREFIX).filter(|name| RECEIPT_STATUSES.contains(name)) {
        return Some(format!("{RECEIPT_PREFIX}{name}"));
    }
    all_patterns()
        .map(|candidate| (strsim::jaro_winkler(&lowered, &candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

fn suggestion_text(suggestion: &Option<String>) -> String {
    suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
}

fn valid_list() -> String {
    format!(
        "`*`, `receipt.*`, `event.*`; receipt statuses: {}; delivery events: {} (prefix with `receipt.` or `event.` to pick one kind)",
        RECEIPT_STATUSES.join(", "),
        DELIVERY_EVENTS.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> WebhookSecret {
        WebhookSecret::parse(SECRET).unwrap()
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> SignedHeaders<'a> {
        SignedHeaders { id, timestamp: ts, signature: sig }
    }

    #[test]
    fn signs_the_reference_vector() {
        assert_eq!(sign(&[secret()], ID, TS, BODY).unwrap(), EXPECTED);
    }

    #[test]
    fn bare_base64_and_whitespace_are_the_same_secret() {
        let bare = WebhookSecret::parse(" MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
        assert_eq!(sign(&[bare], ID, TS, BODY).unwrap(), EXPECTED);
    }

    #[test]
    fn secret_parse_refusals() {
        assert_eq!(WebhookSecret::parse("").unwrap_err(), SecretError::Empty);
        assert_eq!(WebhookSecret::parse("whsec_").unwrap_err(), SecretError::Empty);
        assert_eq!(WebhookSecret::parse("whsec_not base64!").unwrap_err(), SecretError::NotBase64);
        // 16 bytes: what some generators emit, weaker than the spec's floor.
        let short = STANDARD.encode([7u8; 16]);
        assert_eq!(WebhookSecret::parse(&short).unwrap_err(), SecretError::Length { len: 16 });
        let long = STANDARD.encode([7u8; 65]);
        assert_eq!(WebhookSecret::parse(&long).unwrap_err(), SecretError::Length { len: 65 });
        // Both ends of the range, padded and unpadded.
        assert!(WebhookSecret::parse(&STANDARD.encode([1u8; 24])).is_ok());
        let padded = STANDARD.encode([1u8; 64]);
        assert!(padded.ends_with('='));
        assert!(WebhookSecret::parse(&padded).is_ok());
        assert!(WebhookSecret::parse(padded.trim_end_matches('=')).is_ok());
    }

    #[test]
    fn secret_errors_and_debug_show_no_key() {
        let debug = format!("{:?}", secret());
        assert_eq!(debug, "WebhookSecret(<redacted>)");
        let err = WebhookSecret::parse("whsec_c2VjcmV0LXNob3J0").unwrap_err().to_string();
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }

    #[test]
    fn rotation_signs_with_every_key_in_order() {
        let other = WebhookSecret::from_bytes(&[9u8; 32]).unwrap();
        let header = sign(&[secret(), other.clone()], ID, TS, BODY).unwrap();
        let entries: Vec<&str> = header.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0], EXPECTED);
        let now = at(TS);
        assert!(verify(&other, &headers(ID, "1614265330", &header), BODY, now, DEFAULT_TOLERANCE).is_ok());
        assert!(verify(&secret(), &headers(ID, "1614265330", &header), BODY, now, DEFAULT_TOLERANCE).is_ok());
    }

    #[test]
    fn sign_refuses_what_the_spec_forbids() {
        assert_eq!(sign(&[], ID, TS, BODY).unwrap_err(), SignError::NoSecrets);
        for id in ["", "msg.1", "msg 1", "msg\n1", "msg_é"] {
            assert_eq!(sign(&[secret()], id, TS, BODY).unwrap_err(), SignError::InvalidId, "{id:?}");
        }
        assert_eq!(sign(&[secret()], ID, -1, BODY).unwrap_err(), SignError::InvalidTimestamp);
        assert!(sign(&[secret()], ID, 0, BODY).is_ok());
    }

    #[test]
    fn signed_headers_carry_the_signature() {
        let [id, ts, sig] = signed_headers(&[secret()], ID, TS, BODY).unwrap();
        assert_eq!(id, (HEADER_ID, ID.to_owned()));
        assert_eq!(ts, (HEADER_TIMESTAMP, "1614265330".to_owned()));
        assert_eq!(sig, (HEADER_SIGNATURE, EXPECTED.to_owned()));
    }

    #[test]
    fn verify_accepts_within_tolerance_both_ways() {
        for now in [TS - 300, TS, TS + 300] {
            assert_eq!(
                verify(&secret(), &headers(ID, "1614265330", EXPECTED), BODY, at(now), DEFAULT_TOLERANCE),
                Ok(())
            );
        }
        assert_eq!(
            verify(&secret(), &headers(ID, "1614265330", EXPECTED), BODY, at(TS + 301), DEFAULT_TOLERANCE),
            Err(VerifyError::TooOld)
        );
        assert_eq!(
            verify(&secret(), &headers(ID, "1614265330", EXPECTED), BODY, at(TS - 301), DEFAULT_TOLERANCE),
            Err(VerifyError::TooNew)
        );
    }

    #[test]
    fn verify_rejects_tampering() {
        let now = at(TS);
        let check = |id: &str, ts: &str, sig: &str, body: &[u8]| {
            verify(&secret(), &headers(id, ts, sig), body, now, DEFAULT_TOLERANCE)
        };
        assert_eq!(check(ID, "1614265330", EXPECTED, b"{\"test\": 2432232315}"), Err(VerifyError::NoMatch));
        assert_eq!(check("msg_other", "1614265330", EXPECTED, BODY), Err(VerifyError::NoMatch));
        assert_eq!(check(ID, "1614265331", EXPECTED, BODY), Err(VerifyError::NoMatch));
        assert_eq!(check("msg.p5", "1614265330", EXPECTED, BODY), Err(VerifyError::InvalidId));
        assert_eq!(check(ID, "1614265330.0", EXPECTED, BODY), Err(VerifyError::InvalidTimestamp));
        assert_eq!(check(ID, " 1614265330", EXPECTED, BODY), Err(VerifyError::InvalidTimestamp));
        // Unknown versions and truncated tags are skipped, not errors.
        let v2 = EXPECTED.replacen("v1,", "v2,", 1);
        assert_eq!(check(ID, "1614265330", &v2, BODY), Err(VerifyError::NoMatch));
        let truncated = &EXPECTED[..EXPECTED.len() - 8];
        assert_eq!(check(ID, "1614265330", truncated, BODY), Err(VerifyError::NoMatch));
        assert_eq!(check(ID, "1614265330", "", BODY), Err(VerifyError::NoMatch));
        assert_eq!(check(ID, "1614265330", &format!("v1a,xyz {v2} {EXPECTED}"), BODY), Ok(()));
    }

    #[test]
    fn missing_headers_are_named() {
        let all = [(HEADER_ID, ID), (HEADER_TIMESTAMP, "1"), (HEADER_SIGNATURE, "v1,x")];
        for missing in [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE] {
            let got = SignedHeaders::from_lookup(|name| {
                all.iter().find(|(n, _)| *n == name && *n != missing).map(|(_, v)| *v)
            });
            assert_eq!(got, Err(VerifyError::MissingHeader(missing)));
        }
        let got = SignedHeaders::from_lookup(|name| all.iter().find(|(n, _)| *n == name).map(|(_, v)| *v));
        assert_eq!(got, Ok(headers(ID, "1", "v1,x")));
    }

    #[test]
    fn backoff_standard_schedule() {
        let b = Backoff::standard();
        let ceilings: Vec<u64> = (0..=9).map(|n| b.delay(n, 0.0).as_secs()).collect();
        assert_eq!(ceilings, [0, 5, 20, 80, 320, 1280, 5120, 20480, 28800, 28800]);
        let total: u64 = ceilings.iter().sum();
        assert!((23 * 3600..24 * 3600).contains(&total), "{total}");
        assert_eq!(b.next(9, 0.0), Some(Duration::from_secs(28800)));
        assert_eq!(b.next(10, 0.0), None);
        assert_eq!(Backoff::default(), b);
    }

    #[test]
    fn backoff_jitter_only_shortens_and_never_exceeds_max() {
        let b = Backoff::standard();
        assert_eq!(b.delay(2, 0.5), Duration::from_secs(15));
        assert_eq!(b.delay(2, 0.999_999), Duration::from_secs_f64(10.00001));
        for n in 1..40 {
            for jitter in [0.0, 0.25, 0.5, 0.999, 1.0, -3.0, 7.0, f64::NAN] {
                let d = b.delay(n, jitter);
                let ceiling = b.delay(n, 0.0);
                assert!(d <= ceiling && d >= ceiling / 2, "{n} {jitter} {d:?}");
                assert!(d <= b.max);
            }
        }
        assert_eq!(b.delay(7, f64::NAN), b.delay(7, 0.0));
    }

    #[test]
    fn backoff_survives_extremes() {
        let huge = Backoff { base: Duration::MAX, max: Duration::MAX, max_attempts: u32::MAX };
        assert_eq!(huge.delay(u32::MAX, 0.0), Duration::MAX);
        assert!(huge.delay(3, 0.9) >= Duration::MAX / 2);
        let zero = Backoff { base: Duration::ZERO, max: Duration::from_secs(1), max_attempts: 3 };
        assert_eq!(zero.delay(5, 0.3), Duration::ZERO);
        let none = Backoff { max_attempts: 0, ..Backoff::standard() };
        assert_eq!(none.next(0, 0.0), None);
    }

    #[test]
    fn retry_after_forms() {
        let now = at(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let cap = MAX_RETRY_AFTER;
        assert_eq!(parse_retry_after("120", now, cap), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now, cap), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999999999999999999999", now, cap), Some(cap));
        assert_eq!(parse_retry_after("86401", now, cap), Some(cap));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now, cap), Some(Duration::from_secs(60)));
        // Wrong weekday, right date.
        assert_eq!(parse_retry_after("Mon, 06 Nov 1994 08:50:37 GMT", now, cap), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("Sunday, 06-Nov-94 08:51:37 GMT", now, cap), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Sun Nov  6 08:52:37 1994", now, cap), Some(Duration::from_secs(180)));
        // In the past: retry now.
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now, cap), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Tue, 08 Nov 1994 08:49:37 GMT", now, cap), Some(cap));
        for bad in ["", "-5", "1.5", "soon", "+30", "0x10", "Sun, 06 Nov 1994"] {
            assert_eq!(parse_retry_after(bad, now, cap), None, "{bad:?}");
        }
    }

    #[test]
    fn classification() {
        let wait = Some(Duration::from_secs(30));
        assert_eq!(classify(200, None), Delivery::Delivered);
        assert_eq!(classify(204, wait), Delivery::Delivered);
        assert_eq!(classify(299, None), Delivery::Delivered);
        assert_eq!(classify(410, wait), Delivery::Gone);
        for status in [429, 502, 503, 504] {
            assert_eq!(classify(status, wait), Delivery::RetryLater { after: wait });
        }
        assert_eq!(classify(429, None), Delivery::RetryLater { after: None });
        for status in [100, 301, 302, 304, 307, 308, 400, 401, 404, 500, 501, 599] {
            assert_eq!(classify(status, wait), Delivery::Failed(Failure::Status(status)));
        }
    }

    #[test]
    fn next_delay_combines_schedule_and_retry_after() {
        let b = Backoff::standard();
        assert_eq!(Delivery::Delivered.next_delay(&b, 1, 0.0), None);
        assert_eq!(Delivery::Gone.next_delay(&b, 1, 0.0), None);
        assert_eq!(Delivery::Failed(Failure::Refused).next_delay(&b, 1, 0.0), None);
        assert_eq!(Delivery::Failed(Failure::Timeout).next_delay(&b, 1, 0.0), Some(Duration::from_secs(5)));
        let later = Delivery::RetryLater { after: Some(Duration::from_secs(60)) };
        assert_eq!(later.next_delay(&b, 1, 0.0), Some(Duration::from_secs(60)));
        assert_eq!(later.next_delay(&b, 4, 0.0), Some(Duration::from_secs(320)));
        assert_eq!(later.next_delay(&b, 10, 0.0), None);
        let day = Delivery::RetryLater { after: Some(MAX_RETRY_AFTER) };
        assert_eq!(day.next_delay(&b, 1, 0.0), Some(b.max));
        assert_eq!(Delivery::RetryLater { after: None }.next_delay(&b, 2, 0.0), Some(Duration::from_secs(20)));
    }

    fn pats(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn filter_matching() {
        assert!(matches(&pats(&["*"]), "bounced", false));
        assert!(matches(&pats(&["*"]), "sent", true));
        assert!(!matches(&[], "sent", true));
        let receipts = pats(&["receipt.*"]);
        for status in RECEIPT_STATUSES {
            assert!(matches(&receipts, status, true));
            assert!(!matches(&receipts, status, false));
        }
        let events = pats(&["event.*"]);
        for event in DELIVERY_EVENTS {
            assert!(matches(&events, event, false));
            assert!(!matches(&events, event, true));
        }
        let some = pats(&["bounced", "sent"]);
        assert!(matches(&some, "bounced", false));
        assert!(matches(&some, "sent", true));
        assert!(!matches(&some, "delivered", false));
        // The shared name: bare matches both kinds, qualified only its own.
        assert!(matches(&pats(&["unsubscribed"]), "unsubscribed", true));
        assert!(matches(&pats(&["unsubscribed"]), "unsubscribed", false));
        assert!(matches(&pats(&["event.unsubscribed"]), "unsubscribed", false));
        assert!(!matches(&pats(&["event.unsubscribed"]), "unsubscribed", true));
        assert!(matches(&pats(&["receipt.unsubscribed"]), "unsubscribed", true));
        assert!(!matches(&pats(&["receipt.unsubscribed"]), "unsubscribed", false));
        // Matching is exact: no case folding, no partial globs.
        assert!(!matches(&pats(&["Bounced"]), "bounced", false));
        assert!(!matches(&pats(&["bounce*"]), "bounced", false));
    }

    #[test]
    fn filter_validation() {
        let ok = pats(&["*", "receipt.*", "event.*", "bounced", "deferred", "event.unsubscribed", "receipt.sent"]);
        assert_eq!(validate_filter(&ok), Ok(()));
        assert_eq!(validate_filter(&[]), Err(FilterError::Empty));
        let err = validate_filter(&pats(&["sent", "bouncd"])).unwrap_err();
        assert_eq!(err, FilterError::Unknown { pattern: "bouncd".into(), suggestion: Some("bounced".into()) });
        let text = err.to_string();
        assert!(text.starts_with("unknown event type `bouncd` (did you mean `bounced`?); valid: `*`"), "{text}");
        for name in RECEIPT_STATUSES.iter().chain(DELIVERY_EVENTS.iter()) {
            assert!(text.contains(name), "{name} missing from {text}");
        }
        let err = validate_filter(&pats(&["Delivered"])).unwrap_err();
        assert!(matches!(err, FilterError::Unknown { suggestion: Some(ref s), .. } if s == "delivered"), "{err:?}");
        // `bounced` is no receipt status: point at the event.
        let err = validate_filter(&pats(&["receipt.bounced"])).unwrap_err();
        assert!(matches!(err, FilterError::Unknown { suggestion: Some(ref s), .. } if s == "event.bounced"), "{err:?}");
        for bad in ["receipt.", "email.*", "**", ""] {
            assert!(validate_filter(&pats(&[bad])).is_err(), "{bad:?}");
        }
        let err = validate_filter(&pats(&["zzzzzzzz"])).unwrap_err();
        assert_eq!(err, FilterError::Unknown { pattern: "zzzzzzzz".into(), suggestion: None });
    }

    #[test]
    fn every_valid_name_passes_validation() {
        for pattern in all_patterns() {
            assert_eq!(validate_filter(std::slice::from_ref(&pattern)), Ok(()), "{pattern}");
        }
    }
}
