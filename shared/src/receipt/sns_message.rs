//! Verifies Amazon SNS messages: the JSON bodies SNS posts to HTTP/S subscribers and the
//! SNS records Lambda and SQS deliver. SNS signs a canonical string of some of the
//! message's fields with the key of a certificate it serves at `SigningCertURL`; this
//! module builds that string, says which URLs may be fetched, reads the certificate and
//! checks the signature. Fetching (over HTTPS, only from a URL [`signing_cert_url_ok`]
//! accepted) is the caller's: [`CertificateCache`] keeps what was fetched.
//!
//! X.509: x509-cert 0.2 (would add der, der_derive, spki, const-oid 0.9, flagset) and
//! x509-parser (would add nom, asn1-rs, der-parser, oid-registry, time, ...) were weighed
//! against rustls-webpki 0.103, which rustls already builds. webpki parses the
//! certificate strictly and reads its DNS names, but keeps the validity window to itself
//! and has no SHA1: so a small DER walk below reads the validity and the RSA key, and
//! ring verifies. The certificate's own chain is not checked: the HTTPS fetch from an SNS
//! host vouches for it, as in AWS's own SDKs.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde_json::{Map, Value};

/// A usual replay window for HTTP/S deliveries. Not for SQS or Lambda: there the
/// Timestamp is the publish time, and a record can wait in a queue for days.
pub const DEFAULT_MAX_AGE: SignedDuration = SignedDuration::from_hours(1);

/// A signing certificate is about 2 KiB; past this it is not one.
const MAX_PEM_BYTES: usize = 16 * 1024;
const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const PEM_END: &str = "-----END CERTIFICATE-----";

/// Why a message, URL or certificate was refused. Never carries any part of the input
/// (a forged message may be built to inject text into logs): only field names and rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    #[error("malformed SNS message: {0}")]
    Malformed(String),
    #[error("unsupported SNS SignatureVersion: only \"1\" (SHA1) and \"2\" (SHA256) are known")]
    UnsupportedVersion,
    #[error("SNS URL refused: {0}")]
    BadUrl(&'static str),
    #[error("bad SNS signing certificate: {0}")]
    BadCertificate(&'static str),
    #[error("SNS signing certificate is outside its validity window (expired or not yet valid)")]
    CertificateExpired,
    #[error("SNS message signature does not verify (wrong key, altered field, or not base64)")]
    BadSignature,
    #[error("SNS message Timestamp is further from now than the accepted age (replayed, or a clock is off)")]
    Stale,
}

fn malformed(reason: impl Into<String>) -> SnsError {
    SnsError::Malformed(reason.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Notification => "Notification",
            MessageType::SubscriptionConfirmation => "SubscriptionConfirmation",
            MessageType::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

/// One SNS message, its values as SNS signed them (JSON escapes decoded).
#[derive(Debug, Clone, PartialEq)]
pub struct SnsMessage {
    pub kind: MessageType,
    pub message_id: String,
    pub topic_arn: String,
    /// Notifications only; `null` (Lambda records) reads as absent.
    pub subject: Option<String>,
    pub message: String,
    /// As sent: the signed text is this string, not a re-formatted time.
    pub timestamp: String,
    pub signature_version: String,
    pub signature: String,
    pub signing_cert_url: String,
    /// Confirmations only (both kinds carry it, and sign it).
    pub subscribe_url: Option<String>,
    /// Confirmations only.
    pub token: Option<String>,
    pub unsubscribe_url: Option<String>,
    /// Not signed: trust it only as far as the caller trusts unsigned input.
    pub message_attributes: Option<Value>,
}

/// The JSON object's members, taken out one field at a time.
struct Fields(Map<String, Value>);

impl Fields {
    /// The string under any of `names` (HTTP and Lambda spellings); `null` is absent.
    fn optional(&mut self, names: &[&'static str]) -> Result<Option<String>, SnsError> {
        let mut found = None;
        for &name in names {
            match self.0.remove(name) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if found.is_none() => found = Some(s),
                // Two spellings could carry two values: which one was signed is unknowable.
                Some(Value::String(_)) => {
                    return Err(malformed(format!("{} is given twice, in two spellings", names[0])));
                }
                Some(_) => return Err(malformed(format!("{name} is not a string"))),
            }
        }
        Ok(found)
    }

    fn required(&mut self, names: &[&'static str]) -> Result<String, SnsError> {
        self.optional(names)?.ok_or_else(|| malformed(format!("{} is missing", names[0])))
    }
}

impl SnsMessage {
    /// Reads an HTTP/S body or an SQS body (SNS's JSON envelope).
    pub fn parse(json: &str) -> Result<Self, SnsError> {
        // serde_json's own messages can quote the input: only its position is kept.
        let value: Value = serde_json::from_str(json)
            .map_err(|e| malformed(format!("not valid JSON (line {}, column {})", e.line(), e.column())))?;
        Self::from_value(value)
    }

    /// Reads an already parsed object, e.g. the `Sns` member of a Lambda record.
    pub fn from_value(value: Value) -> Result<Self, SnsError> {
        let Value::Object(map) = value else {
            return Err(malformed("not a JSON object"));
        };
        let mut f = Fields(map);
        let kind = match f.required(&["Type"])?.as_str() {
            "Notification" => MessageType::Notification,
            "SubscriptionConfirmation" => MessageType::SubscriptionConfirmation,
            "UnsubscribeConfirmation" => MessageType::UnsubscribeConfirmation,
            _ => {
                return Err(malformed("Type is not Notification, SubscriptionConfirmation or UnsubscribeConfirmation"));
            }
        };
        let message = SnsMessage {
            kind,
            message_id: f.required(&["MessageId"])?,
            topic_arn: f.required(&["TopicArn"])?,
            subject: f.optional(&["Subject"])?,
            message: f.required(&["Message"])?,
            timestamp: f.required(&["Timestamp"])?,
            signature_version: f.required(&["SignatureVersion"])?,
            signature: f.required(&["Signature"])?,
            signing_cert_url: f.required(&["SigningCertURL", "SigningCertUrl"])?,
            subscribe_url: f.optional(&["SubscribeURL", "SubscribeUrl"])?,
            token: f.optional(&["Token"])?,
            unsubscribe_url: f.optional(&["UnsubscribeURL", "UnsubscribeUrl"])?,
            message_attributes: f.0.remove("MessageAttributes").filter(|v| !v.is_null()),
        };
        message.sent_at()?;
        if kind != MessageType::Notification {
            // Both are signed: a confirmation without them cannot be checked, nor acted on.
            if message.subscribe_url.is_none() {
                return Err(malformed(format!("{} without SubscribeURL", kind.as_str())));
            }
            if message.token.is_none() {
                return Err(malformed(format!("{} without Token", kind.as_str())));
            }
        }
        Ok(message)
    }

    /// When SNS sent (published) the message.
    pub fn sent_at(&self) -> Result<Timestamp, SnsError> {
        self.timestamp.parse().map_err(|_| malformed("Timestamp is not an RFC 3339 UTC time"))
    }

    /// What SNS signed: `key\nvalue\n` for each signed key present, in byte order of
    /// the keys. Which keys depends on the type; Subject only if present and not null.
    pub fn string_to_sign(&self) -> String {
        let signed: Vec<(&str, Option<&str>)> = match self.kind {
            MessageType::Notification => vec![
                ("Message", Some(&self.message)),
                ("MessageId", Some(&self.message_id)),
                ("Subject", self.subject.as_deref()),
                ("Timestamp", Some(&self.timestamp)),
                ("TopicArn", Some(&self.topic_arn)),
                ("Type", Some(self.kind.as_str())),
            ],
            MessageType::SubscriptionConfirmation | MessageType::UnsubscribeConfirmation => vec![
                ("Message", Some(&self.message)),
                ("MessageId", Some(&self.message_id)),
                ("SubscribeURL", self.subscribe_url.as_deref()),
                ("Timestamp", Some(&self.timestamp)),
                ("Token", self.token.as_deref()),
                ("TopicArn", Some(&self.topic_arn)),
                ("Type", Some(self.kind.as_str())),
            ],
        };
        let mut out = String::new();
        for (key, value) in signed {
            if let Some(value) = value {
                for part in [key, "\n", value, "\n"] {
                    out.push_str(part);
                }
            }
        }
        out
    }

    /// Checks the signature with `cert`, the certificate fetched from this message's
    /// `SigningCertURL`, at time `now`. SignatureVersion 1 is RSA PKCS#1 v1.5 with SHA1,
    /// 2 with SHA256; any other is refused. The URL rule is checked again here, so a
    /// message naming a foreign URL fails even if the caller skipped the check.
    pub fn verify(&self, cert: &SigningCertificate, now: Timestamp) -> Result<(), SnsError> {
        let algorithm: &'static dyn VerificationAlgorithm = match self.signature_version.as_str() {
            "1" => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            "2" => &signature::RSA_PKCS1_2048_8192_SHA256,
            _ => return Err(SnsError::UnsupportedVersion),
        };
        signing_cert_url_ok(&self.signing_cert_url)?;
        if !cert.is_valid_at(now) {
            return Err(SnsError::CertificateExpired);
        }
        let signature = STANDARD.decode(&self.signature).map_err(|_| SnsError::BadSignature)?;
        // ring's RSA check does not branch on the signature's bytes.
        UnparsedPublicKey::new(algorithm, &cert.rsa_public_key)
            .verify(self.string_to_sign().as_bytes(), &signature)
            .map_err(|_| SnsError::BadSignature)
    }

    /// Replay guard: refuses a message whose Timestamp is more than `max_age` before
    /// (or after: a clock far off) `now`. See [`DEFAULT_MAX_AGE`] for which deliveries.
    pub fn check_age(&self, now: Timestamp, max_age: SignedDuration) -> Result<(), SnsError> {
        let age = now.duration_since(self.sent_at()?);
        if age.unsigned_abs() > max_age.unsigned_abs() { Err(SnsError::Stale) } else { Ok(()) }
    }
}

/// Checks that `url` is an SNS signing-certificate URL, `https://sns.<region>.amazonaws.com/<path>.pem`
/// (`.amazonaws.com.cn` for China), and returns its region. Refused: other schemes,
/// hosts, userinfo, ports other than 443, queries, fragments, escapes and `..`.
pub fn signing_cert_url_ok(url: &str) -> Result<&str, SnsError> {
    let (region, path) = split_sns_url(url)?;
    let plain = path.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if !plain || path.contains("..") || path.contains("//") {
        return Err(SnsError::BadUrl("certificate path may hold only letters, digits, '-', '_', '.' and '/'"));
    }
    if !path.starts_with('/') || path.len() <= "/.pem".len() || !path.ends_with(".pem") {
        return Err(SnsError::BadUrl("certificate path must end in .pem"));
    }
    // SNS names its signing certificates `SimpleNotificationService-<32 hex>.pem`: any
    // other path would only make herald fetch what an attacker chose.
    let name = path.strip_prefix("/SimpleNotificationService-").and_then(|n| n.strip_suffix(".pem"));
    if !name.is_some_and(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(SnsError::BadUrl("certificate path must be /SimpleNotificationService-<32 hex digits>.pem"));
    }
    Ok(region)
}

/// Checks that a `SubscribeURL` (or `UnsubscribeURL`) points at SNS itself, over HTTPS,
/// and returns its region: visiting it must not send a request anywhere else.
pub fn subscribe_url_ok(url: &str) -> Result<&str, SnsError> {
    let (region, rest) = split_sns_url(url)?;
    if !rest.bytes().all(|b| b.is_ascii_graphic() && b != b'#' && b != b'\\') {
        return Err(SnsError::BadUrl("URL may not hold spaces, control characters, '#' or '\\'"));
    }
    Ok(region)
}

/// Splits `https://sns.<region>.amazonaws.com[.cn][:443]<rest>` into the region and the rest.
fn split_sns_url(url: &str) -> Result<(&str, &str), SnsError> {
    let rest = url.strip_prefix("https://").ok_or(SnsError::BadUrl("must start with https://"))?;
    let (authority, rest) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    // Userinfo, another port, '?', '\' all leave characters that no SNS host has.
    let host = authority.strip_suffix(":443").unwrap_or(authority);
    let region = sns_host_region(host).ok_or(SnsError::BadUrl("host must be sns.<region>.amazonaws.com[.cn]"))?;
    Ok((region, rest))
}

fn sns_host_region(host: &str) -> Option<&str> {
    let inner = host.strip_prefix("sns.")?;
    let (region, china) = match inner.strip_suffix(".amazonaws.com.cn") {
        Some(region) => (region, true),
        None => (inner.strip_suffix(".amazonaws.com")?, false),
    };
    // China's regions, and only they, are served under .com.cn.
    (is_region(region) && region.starts_with("cn-") == china).then_some(region)
}

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`: lowercase words, then a number.
fn is_region(s: &str) -> bool {
    let Some((words, number)) = s.rsplit_once('-') else {
        return false;
    };
    s.len() <= 32
        && words.contains('-')
        && words.split('-').all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// The DNS names SNS signing certificates carry, after AWS's SDK for Java v2: `sns.amazonaws.com`
/// in most regions, `sns.amazonaws.com.cn`, `sns-<region>.amazonaws.com[.cn]` (China,
/// GovCloud), `sns-signing.<region>.amazonaws.com` (opt-in regions).
fn is_sns_signing_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    if name == "sns.amazonaws.com" || name == "sns.amazonaws.com.cn" {
        return true;
    }
    if let Some(rest) = name.strip_prefix("sns-signing.") {
        return rest.strip_suffix(".amazonaws.com").is_some_and(is_region);
    }
    name.strip_prefix("sns-")
        .and_then(|rest| rest.strip_suffix(".amazonaws.com.cn").or_else(|| rest.strip_suffix(".amazonaws.com")))
        .is_some_and(is_region)
}

/// A parsed SNS signing certificate: its RSA key and validity window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningCertificate {
    /// PKCS#1 RSAPublicKey DER, the form ring reads.
    rsa_public_key: Vec<u8>,
    not_before: Timestamp,
    not_after: Timestamp,
}

impl SigningCertificate {
    /// Reads exactly one PEM `CERTIFICATE` block with nothing but whitespace around it,
    /// whose subject alternative names include an SNS signing name. Validity is not
    /// checked here but at [`SnsMessage::verify`], against the caller's clock.
    pub fn from_pem(pem: &[u8]) -> Result<Self, SnsError> {
        if pem.len() > MAX_PEM_BYTES {
            return Err(SnsError::BadCertificate("larger than any single certificate"));
        }
        let text = std::str::from_utf8(pem).map_err(|_| SnsError::BadCertificate("not PEM text"))?;
        let body = text
            .trim_ascii()
            .strip_prefix(PEM_BEGIN)
            .and_then(|t| t.strip_suffix(PEM_END))
            .ok_or(SnsError::BadCertificate("not one PEM CERTIFICATE block with only whitespace around it"))?;
        // A second block inside would bring '-', which base64 refuses.
        let base64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = STANDARD.decode(base64).map_err(|_| SnsError::BadCertificate("PEM body is not base64"))?;

        let der_ref = rustls_pki_types::CertificateDer::from(der.as_slice());
        let parsed = webpki::EndEntityCert::try_from(&der_ref)
            .map_err(|_| SnsError::BadCertificate("not a well-formed X.509 v3 certificate"))?;
        if !parsed.valid_dns_names().any(is_sns_signing_name) {
            return Err(SnsError::BadCertificate("not issued to SNS (no SNS signing name among its DNS names)"));
        }
        let (not_before, not_after, rsa_public_key) = read_validity_and_key(&der)?;
        Ok(SigningCertificate { rsa_public_key: rsa_public_key.to_vec(), not_before, not_after })
    }

    pub fn not_before(&self) -> Timestamp {
        self.not_before
    }

    pub fn not_after(&self) -> Timestamp {
        self.not_after
    }

    /// Both ends inclusive, as X.509 has it.
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const EXPLICIT_0: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// AlgorithmIdentifier content for rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters.
const RSA_ENCRYPTION: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];

/// One DER element from the front of `input`: tag, content and what follows.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        // Up to 3 length bytes (16 MiB): far past any certificate.
        let (bytes, after) = rest.split_at_checked(usize::from(first & 0x7f))?;
        if bytes.is_empty() || bytes.len() > 3 {
            return None;
        }
        rest = after;
        bytes.iter().fold(0, |n, &b| (n << 8) | usize::from(b))
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

fn der_expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    der_next(input).and_then(|(t, content, rest)| (t == tag).then_some((content, rest)))
}

/// Walks the TBSCertificate (webpki has already checked its shape) to the validity and
/// the subjectPublicKeyInfo; returns notBefore, notAfter and the RSAPublicKey.
fn read_validity_and_key(der: &[u8]) -> Result<(Timestamp, Timestamp, &[u8]), SnsError> {
    let shape = || SnsError::BadCertificate("unexpected TBSCertificate layout");
    let (cert, _) = der_expect(der, SEQUENCE).ok_or_else(shape)?;
    let (tbs, _) = der_expect(cert, SEQUENCE).ok_or_else(shape)?;
    let mut rest = tbs;
    let mut fields = [&[][..]; 7];
    for (field, tag) in fields.iter_mut().zip([EXPLICIT_0, INTEGER, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE]) {
        // version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo
        (*field, rest) = der_expect(rest, tag).ok_or_else(shape)?;
    }
    let [_, _, _, _, validity, _, spki] = fields;

    let bad_time = || SnsError::BadCertificate("unreadable validity time");
    let (not_before, validity) = der_time(validity).ok_or_else(bad_time)?;
    let (not_after, _) = der_time(validity).ok_or_else(bad_time)?;

    let not_rsa = || SnsError::BadCertificate("its key is not an RSA key");
    let (algorithm, spki) = der_expect(spki, SEQUENCE).ok_or_else(not_rsa)?;
    if algorithm != RSA_ENCRYPTION {
        return Err(not_rsa());
    }
    let (bits, _) = der_expect(spki, BIT_STRING).ok_or_else(not_rsa)?;
    // The first byte counts unused bits: a DER key has none.
    let key = bits.strip_prefix(&[0]).ok_or_else(not_rsa)?;
    Ok((not_before, not_after, key))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, 50..99 = 19xx) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn der_time(input: &[u8]) -> Option<(Timestamp, &[u8])> {
    let (tag, content, rest) = der_next(input)?;
    let digits = std::str::from_utf8(content.strip_suffix(b"Z")?).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let full = match (tag, digits.len()) {
        (UTC_TIME, 12) if digits < "50" => format!("20{digits}"),
        (UTC_TIME, 12) => format!("19{digits}"),
        (GENERALIZED_TIME, 14) => digits.to_owned(),
        _ => return None,
    };
    let (y, rest_of) = full.split_at(4);
    let (mo, rest_of) = rest_of.split_at(2);
    let (d, rest_of) = rest_of.split_at(2);
    let (h, rest_of) = rest_of.split_at(2);
    let (mi, s) = rest_of.split_at(2);
    let at: Timestamp = format!("{y}-{mo}-{d}T{h}:{mi}:{s}Z").parse().ok()?;
    Some((at, rest))
}

/// Parsed signing certificates by URL, so an endpoint fetches each one once. SNS uses
/// a handful; past [`CertificateCache::MAX_ENTRIES`] the cache starts over, so messages
/// naming many URLs cannot grow it. Not synchronised: wrap it in a lock to share it.
#[derive(Debug, Default, Clone)]
pub struct CertificateCache {
    certs: HashMap<String, SigningCertificate>,
}

impl CertificateCache {
    pub const MAX_ENTRIES: usize = 32;

    pub fn new() -> Self {
        Self::default()
    }

    /// The certificate cached for `url`, if it is still valid at `now`.
    pub fn get(&self, url: &str, now: Timestamp) -> Option<&SigningCertificate> {
        self.certs.get(url).filter(|cert| cert.is_valid_at(now))
    }

    /// Checks `url` and the PEM fetched from it, then caches the certificate.
    pub fn insert(&mut self, url: &str, pem: &[u8]) -> Result<&SigningCertificate, SnsError> {
        signing_cert_url_ok(url)?;
        let cert = SigningCertificate::from_pem(pem)?;
        if self.certs.len() >= Self::MAX_ENTRIES && !self.certs.contains_key(url) {
            self.certs.clear();
        }
        Ok(self.certs.entry(url.to_owned()).insert_entry(cert).into_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT_URL: &str =
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem";
    const NAME: &str = "SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem";

    fn refused(url: &str) -> bool {
        matches!(signing_cert_url_ok(url), Err(SnsError::BadUrl(_)))
    }

    #[test]
    fn cert_url_accepts_sns_hosts_and_returns_the_region() {
        assert_eq!(signing_cert_url_ok(CERT_URL), Ok("us-east-1"));
        let url = |host: &str| format!("https://{host}/{NAME}");
        assert_eq!(signing_cert_url_ok(&url("sns.us-gov-west-1.amazonaws.com")), Ok("us-gov-west-1"));
        assert_eq!(signing_cert_url_ok(&url("sns.cn-north-1.amazonaws.com.cn")), Ok("cn-north-1"));
        assert_eq!(signing_cert_url_ok(&url("sns.eu-west-3.amazonaws.com:443")), Ok("eu-west-3"));
        // Any other file on an SNS host is not a signing certificate.
        assert!(refused("https://sns.eu-west-3.amazonaws.com/a/b.pem"));
        assert!(refused("https://sns.eu-west-3.amazonaws.com/SimpleNotificationService-1234.pem"));
        assert!(refused(
            "https://sns.eu-west-3.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdeg.pem"
        ));
    }

    #[test]
    fn cert_url_refuses_other_schemes_and_hosts() {
        assert!(refused("http://sns.us-east-1.amazonaws.com/cert.pem"));
        assert!(refused("HTTPS://sns.us-east-1.amazonaws.com/cert.pem"));
        assert!(refused("//sns.us-east-1.amazonaws.com/cert.pem"));
        assert!(refused("https://internetbadguys.com/cert.pem"));
        assert!(refused("https://sns.us-east-1.amazonaws.com.evil.com/cert.pem"));
        assert!(refused("https://sns.us-east-1.amazonaws.com.evil.com"));
        assert!(refused("https://evil.us-east-1.amazonaws.com/cert.pem"));
        assert!(refused("https://sns.amazonaws.com/cert.pem"));
        assert!(refused("https://s3.amazonaws.com/cert.pem"));
        assert!(refused("https://sns.us-east-1.amazonaws.com.cn/cert.pem"));
        assert!(refused("https://sns.cn-north-1.amazonaws.com/cert.pem"));
        assert!(refused("https://sns.US-EAST-1.amazonaws.com/cert.pem"));
        assert!(refused("https://sns.evil.com/.amazonaws.com/cert.pem"));
        assert!(refused("https://sns.us_east-1.amazonaws.com/cert.pem"));
        assert!(refused("https://sns.useast1.amazonaws.com/cert.pem"));
        assert!(refused(""));
    }

    #[test]
    fn cert_url_refuses_userinfo_ports_and_authority_tricks() {
        assert!(refused("https://sns.us-east-1.amazonaws.com@evil.com/x.pem"));
        assert!(refused("https://user@sns.us-east-1.amazonaws.com/x.pem"));
        assert!(refused("https://sns.us-east-1.amazonaws.com:8443/x.pem"));
        assert!(refused("https://sns.us-east-1.amazonaws.com:/x.pem"));
        assert!(refused("https://sns.us-east-1.amazonaws.com:443:443/x.pem"));
        assert!(refused("https://sns.us-east-1.amazonaws.com\\@evil.com/x.pem"));
        assert!(refused("https://sns.us-east-1.amazonaws.com?@evil.com/x.pem"));
        assert!(refused("https://sns.us-east-1.amazonaws.com#@evil.com/x.pem"));
        assert!(refused("https://sns.us-east-1.amazonaws.com./x.pem"));
    }

    #[test]
    fn cert_url_path_must_be_a_plain_pem_file() {
        assert!(refused("https://sns.us-east-1.amazonaws.com/cert.txt"));
        assert!(refused("https://sns.us-east-1.amazonaws.com/cert.pem.txt"));
        assert!(refused("https://sns.us-east-1.amazonaws.com/"));
        assert!(refused("https://sns.us-east-1.amazonaws.com"));
        assert!(refused("https://sns.us-east-1.amazonaws.com/.pem"));
        assert!(refused("https://sns.us-east-1.amazonaws.com/x?a=.pem"));
        assert!(refused("https://sns.us-east-1.amazonaws.com/x.pem?a=b"));
        assert!(refused("https://sns.us-east-1.amazonaws.com/x.pem#f"));
        assert!(refused("https://sns.us-east-1.amazonaws.com/x%2epem"));
        assert!(refused("https://sns.us-east-1.amazonaws.com/../x.pem"));
        assert!(refused("https://sns.us-east-1.amazonaws.com//evil.com/x.pem"));
        assert!(refused("https://sns.us-east-1.amazonaws.com/x .pem"));
    }

    #[test]
    fn subscribe_url_allows_a_query_but_only_on_sns() {
        let url = "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:1:t&Token=ab12";
        assert_eq!(subscribe_url_ok(url), Ok("us-west-2"));
        for bad in [
            "http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
            "https://internetbadguys.com/?Action=ConfirmSubscription",
            "https://sns.us-west-2.amazonaws.com.evil.com/?Action=ConfirmSubscription",
            "https://sns.us-west-2.amazonaws.com@evil.com/?Action=ConfirmSubscription",
            "https://sns.us-west-2.amazonaws.com:8443/?Action=ConfirmSubscription",
            "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription#x",
            "https://sns.us-west-2.amazonaws.com/?Action=Confirm Subscription",
            "https://sns.us-west-2.amazonaws.com/?a=\r\nHost: evil.com",
        ] {
            assert!(matches!(subscribe_url_ok(bad), Err(SnsError::BadUrl(_))), "{bad}");
        }
    }

    #[test]
    fn url_errors_do_not_echo_the_url() {
        let err = signing_cert_url_ok("https://evil-marker.example/x.pem").unwrap_err();
        assert!(!err.to_string().contains("evil-marker"), "{err}");
    }

    #[test]
    fn signing_names_follow_the_sdk_rules() {
        for good in [
            "sns.amazonaws.com",
            "SNS.amazonaws.com",
            "sns.amazonaws.com.cn",
            "sns-cn-north-1.amazonaws.com.cn",
            "sns-us-gov-west-1.amazonaws.com",
            "sns-signing.me-south-1.amazonaws.com",
        ] {
            assert!(is_sns_signing_name(good), "{good}");
        }
        for bad in [
            "*.amazonaws.com",
            "amazonaws.com",
            "sqs.amazonaws.com",
            "sns.amazonaws.com.evil.com",
            "sns-evil.amazonaws.com",
            "sns-signing.evil.com",
            "sns.us-east-1.amazonaws.com",
        ] {
            assert!(!is_sns_signing_name(bad), "{bad}");
        }
    }

    #[test]
    fn der_times_read_both_encodings() {
        let utc = |s: &str| [&[UTC_TIME, 13][..], s.as_bytes()].concat();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(der_time(&utc("491231235959Z")).unwrap().0, at("2049-12-31T23:59:59Z"));
        assert_eq!(der_time(&utc("500101000000Z")).unwrap().0, at("1950-01-01T00:00:00Z"));
        let generalized = [&[GENERALIZED_TIME, 15][..], b"20500101000000Z"].concat();
        assert_eq!(der_time(&generalized).unwrap().0, at("2050-01-01T00:00:00Z"));
        assert!(der_time(&utc("491331235959Z")).is_none(), "month 13");
        assert!(der_time(&utc("4912312359590")).is_none(), "no Z");
        assert!(der_time(&[UTC_TIME, 14, b'1']).is_none(), "truncated");
    }

    #[test]
    fn der_lengths_are_bounded() {
        assert_eq!(der_next(&[0x30, 0x81, 0x01, 0xff]), Some((0x30, &[0xff][..], &[][..])));
        assert_eq!(der_next(&[0x30, 0x82, 0x00]), None);
        assert_eq!(der_next(&[0x30, 0x84, 0, 0, 0, 1, 0]), None);
        assert_eq!(der_next(&[0x30, 0x80]), None);
        assert_eq!(der_next(&[0x30, 0x05, 0x00]), None);
    }

    #[test]
    fn pem_framing_is_strict() {
        let bad = |pem: &str| matches!(SigningCertificate::from_pem(pem.as_bytes()), Err(SnsError::BadCertificate(_)));
        assert!(bad(""));
        assert!(bad("not a certificate"));
        assert!(bad("<xml>-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----</xml>"));
        assert!(bad(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
        ));
        assert!(bad("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"));
        assert!(bad("-----BEGIN CERTIFICATE-----\nA*AA\n-----END CERTIFICATE-----"));
        assert!(bad("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"), "base64 of no certificate");
        assert!(bad(&" ".repeat(MAX_PEM_BYTES + 1)));
    }

    fn notification() -> Value {
        serde_json::json!({
            "Type": "Notification",
            "MessageId": "m-1",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "Subject": "Hi",
            "Message": "line one\nline two",
            "Timestamp": "2026-01-02T03:04:05.678Z",
            "SignatureVersion": "2",
            "Signature": "AAAA",
            "SigningCertURL": CERT_URL,
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
            "MessageAttributes": {"a": {"Type": "String", "Value": "b"}}
        })
    }

    #[test]
    fn notification_string_to_sign_orders_keys_and_decodes_escapes() {
        let message = SnsMessage::parse(&notification().to_string()).unwrap();
        assert_eq!(
            message.string_to_sign(),
            "Message\nline one\nline two\nMessageId\nm-1\nSubject\nHi\nTimestamp\n2026-01-02T03:04:05.678Z\n\
             TopicArn\narn:aws:sns:us-east-1:123456789012:t\nType\nNotification\n"
        );
    }

    #[test]
    fn lambda_casing_and_null_subject_are_read() {
        let mut json = notification();
        let object = json.as_object_mut().unwrap();
        let url = object.remove("SigningCertURL").unwrap();
        object.insert("SigningCertUrl".into(), url);
        let unsubscribe = object.remove("UnsubscribeURL").unwrap();
        object.insert("UnsubscribeUrl".into(), unsubscribe);
        object.insert("Subject".into(), Value::Null);
        let message = SnsMessage::from_value(json).unwrap();
        assert_eq!(message.signing_cert_url, CERT_URL);
        assert!(message.unsubscribe_url.is_some());
        assert_eq!(message.subject, None);
        assert!(!message.string_to_sign().contains("Subject"));
    }

    #[test]
    fn confirmation_string_to_sign_has_its_own_keys() {
        let mut json = notification();
        let object = json.as_object_mut().unwrap();
        object.insert("Type".into(), "SubscriptionConfirmation".into());
        object.remove("Subject");
        object.insert("Token".into(), "tok".into());
        object.insert("SubscribeURL".into(), "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription".into());
        let message = SnsMessage::from_value(json.clone()).unwrap();
        assert_eq!(
            message.string_to_sign(),
            "Message\nline one\nline two\nMessageId\nm-1\n\
             SubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription\n\
             Timestamp\n2026-01-02T03:04:05.678Z\nToken\ntok\n\
             TopicArn\narn:aws:sns:us-east-1:123456789012:t\nType\nSubscriptionConfirmation\n"
        );
        json.as_object_mut().unwrap().remove("Token");
        assert!(matches!(SnsMessage::from_value(json), Err(SnsError::Malformed(_))));
    }

    #[test]
    fn malformed_input_is_refused_without_echo() {
        let marker = "MARKER<script>";
        let mut cases = vec![format!("{{\"Type\": \"{marker}\""), format!("[\"{marker}\"]"), marker.to_owned()];
        let mut wrong_type = notification();
        wrong_type["Type"] = marker.into();
        let mut not_string = notification();
        not_string["Message"] = serde_json::json!([marker]);
        let mut bad_time = notification();
        bad_time["Timestamp"] = marker.into();
        let mut both = notification();
        both["SigningCertUrl"] = marker.into();
        let mut missing = notification();
        missing.as_object_mut().unwrap().remove("Signature");
        cases.extend([wrong_type, not_string, bad_time, both, missing].map(|v| v.to_string()));
        for case in cases {
            let err = SnsMessage::parse(&case).unwrap_err();
            assert!(matches!(err, SnsError::Malformed(_)), "{err:?}");
            assert!(!err.to_string().contains("MARKER"), "{err}");
        }
    }

    #[test]
    fn unknown_signature_version_is_refused_before_anything_else() {
        let mut json = notification();
        json["SignatureVersion"] = "3".into();
        json["SigningCertURL"] = "http://evil.com/x".into();
        let message = SnsMessage::from_value(json).unwrap();
        let cert = SigningCertificate {
            rsa_public_key: Vec::new(),
            not_before: Timestamp::UNIX_EPOCH,
            not_after: Timestamp::MAX,
        };
        assert_eq!(message.verify(&cert, Timestamp::UNIX_EPOCH), Err(SnsError::UnsupportedVersion));
    }

    #[test]
    fn check_age_refuses_old_and_far_future_messages() {
        let message = SnsMessage::from_value(notification()).unwrap();
        let sent = message.sent_at().unwrap();
        let at = |offset: SignedDuration| sent.checked_add(offset).unwrap();
        assert_eq!(message.check_age(at(SignedDuration::from_mins(59)), DEFAULT_MAX_AGE), Ok(()));
        assert_eq!(message.check_age(at(SignedDuration::from_mins(61)), DEFAULT_MAX_AGE), Err(SnsError::Stale));
        assert_eq!(message.check_age(at(SignedDuration::from_mins(-61)), DEFAULT_MAX_AGE), Err(SnsError::Stale));
    }

    #[test]
    fn cache_refuses_foreign_urls_before_parsing() {
        let mut cache = CertificateCache::new();
        let err = cache.insert("https://internetbadguys.com/cert.pem", b"").unwrap_err();
        assert!(matches!(err, SnsError::BadUrl(_)));
        assert!(cache.get("https://internetbadguys.com/cert.pem", Timestamp::UNIX_EPOCH).is_none());
    }
}
