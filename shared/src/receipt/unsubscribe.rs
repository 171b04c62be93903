//! One-click unsubscribe tokens (RFC 8058): the `List-Unsubscribe` URL carries a
//! signed statement "recipient R of tenant T leaves category C, until time E", so the
//! endpoint that receives the POST needs no lookup and cannot be used to unsubscribe others.
//!
//! Token v2: `v2.<kid>.<payload>.<signature>`, payload and signature base64url without
//! padding. The payload is the JSON claims; the signature is HMAC-SHA256 over
//! `herald-unsubscribe-v2.<kid>.<payload>` with the key `kid` names. The purpose prefix
//! keeps a MAC made with the same key for anything else from ever passing as a token,
//! and signing the key id keeps a token from being replayed under another key.
//!
//! Keys live in a [`UnsubscribeKeys`] ring: tokens are signed with its primary key and
//! verified with whichever key they name, so a key can be rotated without breaking the
//! links in mail already sent (see the README, "The unsubscribe key ring").

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The version tag every v2 token starts with.
const VERSION: &str = "v2";
/// What the MAC covers first: a token is valid for this purpose only.
const PURPOSE: &str = "herald-unsubscribe-v2";
/// Longer input is not a token: checked before any decoding.
const MAX_TOKEN_BYTES: usize = 2048;
/// Shortest key accepted; 32 bytes or more recommended.
pub const MIN_KEY_BYTES: usize = 16;
/// Longest key id: it travels in every unsubscribe URL.
pub const MAX_KID_CHARS: usize = 32;
/// Key id given to a secret written as a plain string (no JSON key ring).
pub const PLAIN_SECRET_KID: &str = "k0";
/// The entry of a JSON key ring that names the signing key.
pub const PRIMARY_ENTRY: &str = "primary";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeClaims {
    /// Tenant, if any.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Recipient id.
    #[serde(rename = "r")]
    pub recipient_id: String,
    /// Category left.
    #[serde(rename = "c")]
    pub category: String,
    /// Expiry, Unix seconds: the token is refused from this second on.
    pub exp: i64,
}

/// Why a token was refused. Carries no part of the token: a caller may log it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed unsubscribe token")]
    Malformed,
    #[error("unsubscribe token signed with a key id that is not in the key ring")]
    UnknownKey,
    #[error("unsubscribe token signature does not verify")]
    BadSignature,
    #[error("unsubscribe token has expired")]
    Expired,
}

/// Why a secret is not a usable key ring. Never carries a key: only key ids, which
/// every token shows anyway, and positions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    #[error("the secret is empty")]
    Empty,
    #[error("the secret starts with '{{' but is not valid JSON (line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    #[error("the secret's JSON must be an object: {{\"primary\": \"<key id>\", \"<key id>\": \"<key>\", ...}}")]
    NotAnObject,
    #[error("the secret has no \"primary\" entry naming the key id that signs")]
    MissingPrimary,
    #[error("\"primary\" must be a string naming one of the secret's key ids")]
    PrimaryNotAString,
    #[error("\"primary\" names a key id that has no entry in the secret")]
    UnknownPrimary,
    #[error("a key id must be 1 to {MAX_KID_CHARS} characters among A-Z a-z 0-9 _ -")]
    InvalidKeyId,
    #[error("key {kid}: must be a string")]
    KeyNotAString { kid: String },
    #[error("key {kid}: at least {MIN_KEY_BYTES} bytes (32 or more recommended)")]
    ShortKey { kid: String },
}

/// Key ids appear in tokens between dots and in JSON: keep them to a safe alphabet.
fn valid_kid(kid: &str) -> bool {
    (1..=MAX_KID_CHARS).contains(&kid.len()) && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The keys that sign and verify unsubscribe tokens: `primary` signs, any of `keys`
/// verifies. `Debug` shows key ids only.
#[derive(Clone, PartialEq, Eq)]
pub struct UnsubscribeKeys {
    primary: String,
    keys: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for UnsubscribeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnsubscribeKeys")
            .field("primary", &self.primary)
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl UnsubscribeKeys {
    /// A ring from key ids and keys; `primary` must be one of them.
    pub fn new(
        primary: &str,
        keys: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Result<UnsubscribeKeys, KeyRingError> {
        let mut ring = BTreeMap::new();
        for (kid, key) in keys {
            if !valid_kid(&kid) || kid == PRIMARY_ENTRY {
                return Err(KeyRingError::InvalidKeyId);
            }
            if key.len() < MIN_KEY_BYTES {
                return Err(KeyRingError::ShortKey { kid });
            }
            ring.insert(kid, key);
        }
        if !ring.contains_key(primary) {
            return Err(KeyRingError::UnknownPrimary);
        }
        Ok(UnsubscribeKeys { primary: primary.to_owned(), keys: ring })
    }

    /// One key, with the key id [`PLAIN_SECRET_KID`].
    pub fn single(key: impl Into<Vec<u8>>) -> Result<UnsubscribeKeys, KeyRingError> {
        UnsubscribeKeys::new(PLAIN_SECRET_KID, [(PLAIN_SECRET_KID.to_owned(), key.into())])
    }

    /// The secret format, wherever the secret comes from (Secrets Manager, the
    /// environment, herald.toml):
    ///
    /// - a JSON object `{"primary": "k2", "k2": "<key>", "k1": "<older key>"}`: flat, so
    ///   CloudFormation's `GenerateSecretString` (`SecretStringTemplate: '{"primary":"k1"}'`,
    ///   `GenerateStringKey: k1`) makes a valid one. Each key is the UTF-8 bytes of its string.
    /// - anything else: the whole string is one key, with key id [`PLAIN_SECRET_KID`].
    pub fn parse(secret: &str) -> Result<UnsubscribeKeys, KeyRingError> {
        if secret.is_empty() {
            return Err(KeyRingError::Empty);
        }
        if !secret.trim_start().starts_with('{') {
            return UnsubscribeKeys::single(secret.as_bytes());
        }
        // serde_json's messages can quote the input: keep only the position.
        let value: serde_json::Value =
            serde_json::from_str(secret).map_err(|e| KeyRingError::NotJson { line: e.line(), column: e.column() })?;
        let serde_json::Value::Object(entries) = value else { return Err(KeyRingError::NotAnObject) };
        let primary = match entries.get(PRIMARY_ENTRY) {
            None => return Err(KeyRingError::MissingPrimary),
            Some(serde_json::Value::String(p)) => p.clone(),
            Some(_) => return Err(KeyRingError::PrimaryNotAString),
        };
        let mut keys = Vec::new();
        for (kid, key) in entries {
            if kid == PRIMARY_ENTRY {
                continue;
            }
            if !valid_kid(&kid) {
                return Err(KeyRingError::InvalidKeyId);
            }
            let serde_json::Value::String(key) = key else { return Err(KeyRingError::KeyNotAString { kid }) };
            keys.push((kid, key.into_bytes()));
        }
        UnsubscribeKeys::new(&primary, keys)
    }

    /// The key id that signs.
    pub fn primary(&self) -> &str {
        &self.primary
    }

    /// Every key id the ring verifies, sorted.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    fn mac(&self, purpose: &str, kid: &str, payload: &str) -> Option<HmacSha256> {
        // HMAC takes keys of any length: only an absent kid gives None.
        let mut mac = HmacSha256::new_from_slice(self.keys.get(kid)?).ok()?;
        for part in [purpose, ".", kid, ".", payload] {
            mac.update(part.as_bytes());
        }
        Some(mac)
    }
}

/// A v2 token for `claims`, signed with the ring's primary key.
pub fn sign(keys: &UnsubscribeKeys, claims: &UnsubscribeClaims) -> String {
    sign_for(PURPOSE, keys, claims)
}

fn sign_for(purpose: &str, keys: &UnsubscribeKeys, claims: &UnsubscribeClaims) -> String {
    // Serializing a struct of strings and an integer cannot fail.
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let kid = keys.primary();
    let sig = keys.mac(purpose, kid, &payload).map(|m| URL_SAFE_NO_PAD.encode(m.finalize().into_bytes()));
    format!("{VERSION}.{kid}.{payload}.{}", sig.unwrap_or_default())
}

/// The claims of a genuine token still valid at `now`. Checks run in this order:
/// shape, key id, signature (constant-time), then expiry, so nothing about an unsigned
/// token's content is revealed.
pub fn verify(keys: &UnsubscribeKeys, token: &str, now: jiff::Timestamp) -> Result<UnsubscribeClaims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(VERSION), Some(kid), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| TokenError::Malformed)?;
    let mac = keys.mac(PURPOSE, kid, payload).ok_or(TokenError::UnknownKey)?;
    mac.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
    let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
    let claims: UnsubscribeClaims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if now.as_second() >= claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1-secret-0123456789abcdef";
    const K2: &str = "k2-secret-fedcba9876543210";
    const EXP: i64 = 1_900_000_000;

    fn claims() -> UnsubscribeClaims {
        UnsubscribeClaims {
            tenant: Some("acme".into()),
            recipient_id: "user-1".into(),
            category: "marketing".into(),
            exp: EXP,
        }
    }

    fn at(second: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(second).unwrap()
    }

    fn ring(json: &str) -> UnsubscribeKeys {
        UnsubscribeKeys::parse(json).unwrap()
    }

    /// Every error's text, so tests can check none of them quotes a token or a key.
    fn all_token_errors() -> [TokenError; 4] {
        [TokenError::Malformed, TokenError::UnknownKey, TokenError::BadSignature, TokenError::Expired]
    }

    #[test]
    fn round_trip() {
        let keys = ring(&format!(r#"{{"primary":"k1","k1":"{K1}"}}"#));
        let token = sign(&keys, &claims());
        assert!(token.starts_with("v2.k1."), "{token}");
        assert_eq!(token.split('.').count(), 4);
        assert_eq!(verify(&keys, &token, at(EXP - 3600)), Ok(claims()));
        // Without a tenant.
        let plain = UnsubscribeClaims { tenant: None, ..claims() };
        assert_eq!(verify(&keys, &sign(&keys, &plain), at(0)), Ok(plain));
    }

    #[test]
    fn expiry_at_the_boundary() {
        let keys = UnsubscribeKeys::single(K1).unwrap();
        let token = sign(&keys, &claims());
        assert_eq!(verify(&keys, &token, at(EXP - 1)), Ok(claims()));
        assert_eq!(verify(&keys, &token, at(EXP)), Err(TokenError::Expired));
        assert_eq!(verify(&keys, &token, at(EXP + 86_400)), Err(TokenError::Expired));
    }

    #[test]
    fn a_tampered_token_does_not_verify() {
        let keys = UnsubscribeKeys::single(K1).unwrap();
        let token = sign(&keys, &claims());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"t":"acme","r":"user-2","c":"marketing","exp":1900000000}"#);
        assert_eq!(
            verify(&keys, &format!("v2.{}.{forged}.{}", parts[1], parts[3]), at(0)),
            Err(TokenError::BadSignature)
        );
        // A later expiry is a different payload too.
        let extended = sign(&keys, &UnsubscribeClaims { exp: EXP + 1, ..claims() });
        let extended_payload = extended.split('.').nth(2).unwrap();
        assert_eq!(
            verify(&keys, &format!("v2.{}.{extended_payload}.{}", parts[1], parts[3]), at(0)),
            Err(TokenError::BadSignature)
        );
        let mut sig = URL_SAFE_NO_PAD.decode(parts[3]).unwrap();
        sig[0] ^= 1;
        let flipped = format!("v2.{}.{}.{}", parts[1], parts[2], URL_SAFE_NO_PAD.encode(&sig));
        assert_eq!(verify(&keys, &flipped, at(0)), Err(TokenError::BadSignature));
        // A truncated signature is refused, not compared as a prefix.
        let short = format!("v2.{}.{}.{}", parts[1], parts[2], URL_SAFE_NO_PAD.encode(&sig[..16]));
        assert_eq!(verify(&keys, &short, at(0)), Err(TokenError::BadSignature));
    }

    #[test]
    fn malformed_tokens() {
        let keys = UnsubscribeKeys::single(K1).unwrap();
        let token = sign(&keys, &claims());
        let (_, rest) = token.split_once('.').unwrap();
        for bad in [
            String::new(),
            "not a token".to_owned(),
            format!("v1.{rest}"),
            rest.to_owned(),
            format!("{token}.extra"),
            format!("{token}!"),
            "v2.k0.e30".to_owned(),
            "a".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert_eq!(verify(&keys, &bad, at(0)), Err(TokenError::Malformed), "{bad}");
        }
        // Signed, but not claims: still malformed, never a panic.
        let payload = URL_SAFE_NO_PAD.encode(b"[]");
        let sig = keys.mac(PURPOSE, PLAIN_SECRET_KID, &payload).unwrap().finalize().into_bytes();
        let odd = format!("v2.{PLAIN_SECRET_KID}.{payload}.{}", URL_SAFE_NO_PAD.encode(sig));
        assert_eq!(verify(&keys, &odd, at(0)), Err(TokenError::Malformed));
    }

    #[test]
    fn a_mac_for_another_purpose_is_not_a_token() {
        let keys = UnsubscribeKeys::single(K1).unwrap();
        let other = sign_for("herald-webhook-v1", &keys, &claims());
        assert_eq!(verify(&keys, &other, at(0)), Err(TokenError::BadSignature));
        // The purpose is in the MAC input, not only in the version tag.
        let v1_purpose = sign_for("herald-unsubscribe-v1", &keys, &claims());
        assert_eq!(verify(&keys, &v1_purpose, at(0)), Err(TokenError::BadSignature));
    }

    #[test]
    fn unknown_key_ids_and_other_keys() {
        let k1 = ring(&format!(r#"{{"primary":"k1","k1":"{K1}"}}"#));
        let k2 = ring(&format!(r#"{{"primary":"k2","k2":"{K2}"}}"#));
        assert_eq!(verify(&k2, &sign(&k1, &claims()), at(0)), Err(TokenError::UnknownKey));
        // Same key id, different key.
        let impostor = ring(&format!(r#"{{"primary":"k1","k1":"{K2}"}}"#));
        assert_eq!(verify(&k1, &sign(&impostor, &claims()), at(0)), Err(TokenError::BadSignature));
        // Relabelling a token with another key id of the ring breaks its signature.
        let both = ring(&format!(r#"{{"primary":"k2","k1":"{K1}","k2":"{K2}"}}"#));
        let relabelled = sign(&k1, &claims()).replacen("v2.k1.", "v2.k2.", 1);
        assert_eq!(verify(&both, &relabelled, at(0)), Err(TokenError::BadSignature));
    }

    #[test]
    fn rotation() {
        let old = ring(&format!(r#"{{"primary":"k1","k1":"{K1}"}}"#));
        let token = sign(&old, &claims());
        // Step 1: add k2 (k1 still signs). Step 2: k2 signs; k1 still verifies.
        let added = ring(&format!(r#"{{"primary":"k1","k1":"{K1}","k2":"{K2}"}}"#));
        let switched = ring(&format!(r#"{{"primary":"k2","k2":"{K2}","k1":"{K1}"}}"#));
        assert_eq!(verify(&added, &token, at(0)), Ok(claims()));
        assert_eq!(verify(&switched, &token, at(0)), Ok(claims()));
        let fresh = sign(&switched, &claims());
        assert!(fresh.starts_with("v2.k2."), "{fresh}");
        assert_eq!(verify(&added, &fresh, at(0)), Ok(claims()), "instances still on step 1 accept it");
        // Step 3, after the token lifetime: k1 removed, its tokens refused.
        let removed = ring(&format!(r#"{{"primary":"k2","k2":"{K2}"}}"#));
        assert_eq!(verify(&removed, &token, at(0)), Err(TokenError::UnknownKey));
        assert_eq!(verify(&removed, &fresh, at(0)), Ok(claims()));
    }

    #[test]
    fn errors_quote_no_token_content() {
        let keys = UnsubscribeKeys::single(K1).unwrap();
        let token = sign(&keys, &claims());
        let payload = token.split('.').nth(2).unwrap();
        for e in all_token_errors() {
            let text = format!("{e} {e:?}");
            for needle in [token.as_str(), payload, "user-1", "acme", "marketing", K1, "k0"] {
                assert!(!text.contains(needle), "{text:?} contains {needle:?}");
            }
        }
    }

    #[test]
    fn a_plain_string_is_one_key() {
        let keys = UnsubscribeKeys::parse(K1).unwrap();
        assert_eq!(keys.primary(), PLAIN_SECRET_KID);
        assert_eq!(keys.kids().collect::<Vec<_>>(), [PLAIN_SECRET_KID]);
        assert_eq!(keys, UnsubscribeKeys::single(K1).unwrap());
        // Bytes as given: a plain secret is not trimmed.
        assert_ne!(UnsubscribeKeys::parse(&format!(" {K1}")).unwrap(), keys);
    }

    #[test]
    fn a_json_ring() {
        let keys = ring(&format!("  {{\"primary\": \"k2\", \"k2\": \"{K2}\", \"k1\": \"{K1}\"}}\n"));
        assert_eq!(keys.primary(), "k2");
        assert_eq!(keys.kids().collect::<Vec<_>>(), ["k1", "k2"]);
        // What CloudFormation's GenerateSecretString makes from the template's settings.
        let generated = ring(r#"{"primary":"k1","k1":"aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5oQ7sU9wY1"}"#);
        assert_eq!(generated.primary(), "k1");
    }

    #[test]
    fn secret_format_errors_are_clear_and_quote_no_key() {
        use KeyRingError::*;
        let key = "s3cr3t-value-that-must-not-leak";
        // Positions vary with the text: compared as 0, 0.
        let not_json = NotJson { line: 0, column: 0 };
        let kid = |k: &str| k.to_owned();
        let cases = [
            (String::new(), Empty),
            ("tooshort".into(), ShortKey { kid: kid("k0") }),
            (format!(r#"{{"primary": "k1", "k1": "{key}""#), not_json.clone()),
            (format!(r#"{{"primary": "k1", "k1": {key}}}"#), not_json.clone()),
            (format!(r#"{{"primary": "k1", "k1": "{key}"}} trailing"#), not_json.clone()),
            ("{}".into(), MissingPrimary),
            (format!(r#"{{"k1": "{key}"}}"#), MissingPrimary),
            (format!(r#"{{"primary": 1, "k1": "{key}"}}"#), PrimaryNotAString),
            // A key pasted as "primary" by mistake is not quoted back.
            (format!(r#"{{"primary": "{key}", "k1": "{key}"}}"#), UnknownPrimary),
            (format!(r#"{{"primary": "k2", "k1": "{key}"}}"#), UnknownPrimary),
            (r#"{"primary": "k1"}"#.into(), UnknownPrimary),
            (format!(r#"{{"primary": "k1", "k1": "{key}", "k.2": "{key}"}}"#), InvalidKeyId),
            (format!(r#"{{"primary": "k1", "k1": "{key}", "": "{key}"}}"#), InvalidKeyId),
            (format!(r#"{{"primary": "k1", "{key}{key}": "{key}"}}"#), InvalidKeyId),
            (format!(r#"{{"primary": "k1", "k1": ["{key}"]}}"#), KeyNotAString { kid: kid("k1") }),
            (format!(r#"{{"primary": "k1", "k1": "{key}", "k2": "tooshort"}}"#), ShortKey { kid: kid("k2") }),
        ];
        for (secret, expected) in cases {
            let err = UnsubscribeKeys::parse(&secret).unwrap_err();
            let normalised = match err {
                NotJson { line: 1, .. } => not_json.clone(),
                ref other => other.clone(),
            };
            assert_eq!(normalised, expected, "{secret}");
            let text = format!("{err} {err:?}");
            assert!(!text.contains(key) && !text.contains("tooshort"), "{text}");
        }
        assert_eq!(UnsubscribeKeys::parse("1234567890123456").unwrap().primary(), "k0");
        assert_eq!(UnsubscribeKeys::new("primary", []).unwrap_err(), UnknownPrimary);
        let reserved = UnsubscribeKeys::new("primary", [("primary".to_owned(), key.as_bytes().to_vec())]);
        assert_eq!(reserved.unwrap_err(), InvalidKeyId);
    }

    #[test]
    fn debug_shows_key_ids_only() {
        let keys = ring(&format!(r#"{{"primary":"k1","k1":"{K1}","k2":"{K2}"}}"#));
        let text = format!("{keys:?}");
        assert!(text.contains("k1") && text.contains("k2"), "{text}");
        assert!(!text.contains(K1) && !text.contains(K2), "{text}");
        assert!(!text.contains(&format!("{:?}", K1.as_bytes())), "{text}");
    }
}
