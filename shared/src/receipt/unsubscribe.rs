//! One-click unsubscribe tokens (RFC 8058): the `List-Unsubscribe` URL carries a
//! signed statement "recipient R of tenant T leaves category C", so the endpoint
//! that receives the POST needs no lookup and cannot be used to unsubscribe others.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

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
}

/// `payload.signature`, both base64url, the signature an HMAC-SHA256 of the payload.
pub fn sign(secret: &[u8], claims: &UnsubscribeClaims) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    // HMAC accepts keys of any length; the error branch cannot happen.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(payload.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{payload}.{sig}")
}

/// The claims of a genuine token; None for anything forged or malformed.
/// The signature comparison is constant-time.
pub fn verify(secret: &[u8], token: &str) -> Option<UnsubscribeClaims> {
    let (payload, sig) = token.split_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(payload.as_bytes());
    mac.verify_slice(&sig).ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> UnsubscribeClaims {
        UnsubscribeClaims { tenant: Some("acme".into()), recipient_id: "user-1".into(), category: "marketing".into() }
    }

    #[test]
    fn round_trip() {
        let token = sign(b"secret", &claims());
        assert_eq!(verify(b"secret", &token), Some(claims()));
    }

    #[test]
    fn rejects_wrong_key_and_tampering() {
        let token = sign(b"secret", &claims());
        assert_eq!(verify(b"other", &token), None);
        let (payload, sig) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"r":"user-2","c":"marketing"}"#);
        assert_eq!(verify(b"secret", &format!("{forged}.{sig}")), None);
        assert_eq!(verify(b"secret", payload), None);
        assert_eq!(verify(b"secret", "not a token"), None);
    }
}
