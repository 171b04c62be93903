//! Payload budgets: a rendered push payload is measured before it is sent, and one over
//! its provider's limit ends `failed` with `payload_too_large:<bytes>`; nothing is ever
//! truncated.
//!
//! What is measured, per provider (`payload_bytes` of [`check`]):
//! - APNs: the UTF-8 bytes of the JSON body of the HTTP/2 request (the `aps` dictionary
//!   and custom keys), as sent. Apple's limit for regular remote notifications is 4096
//!   bytes (VoIP: 5120, not used here); over it APNs answers 413 `PayloadTooLarge`.
//! - FCM HTTP v1: the UTF-8 bytes of the compact JSON of the message's `data` object
//!   plus its `notification` object. Firebase documents "a payload of up to 4096 bytes"
//!   for both message types; the token, the target, the `android`/`apns`/`webpush`
//!   overrides and the envelope do not count. FCM's own accounting adds a small hidden
//!   overhead (a one-key `data` map was observed to be refused a little below 4096), so
//!   a payload at the limit may still come back 400 `INVALID_ARGUMENT` without details,
//!   which `errors` classifies as permanent `invalid_argument`. Sent to an Apple device,
//!   the APNs payload FCM builds is also bound by APNs' 4096.
//! - Web Push: the plaintext before RFC 8291 encryption. Push services must accept at
//!   least 4096 bytes of encrypted body (RFC 8030 §7.2); `aes128gcm` in one record adds a
//!   header of 86 bytes (salt 16, rs 4, idlen 1, keyid 65: the sender's uncompressed P-256
//!   key) and, per record, a 16-byte tag and a 1-byte padding delimiter: 4096 - 86 - 17 =
//!   3993 bytes of plaintext, with no padding added.
//!
//! SNS mobile push to a platform endpoint: check against the endpoint's platform
//! (APNs or FCM); SNS's own 256 KB message limit is never the binding one.

use crate::request::PushPlatform;

/// APNs: regular remote notifications.
pub const APNS_MAX_PAYLOAD: usize = 4096;
/// FCM HTTP v1: `data` plus `notification`, compact JSON.
pub const FCM_MAX_MESSAGE: usize = 4096;
/// The smallest encrypted body every push service must accept (RFC 8030 §7.2).
pub const WEBPUSH_MAX_ENCRYPTED_BODY: usize = 4096;
/// RFC 8291 `aes128gcm` header: salt (16) + record size (4) + key id length (1) + key id,
/// the application server's uncompressed P-256 public key (65).
pub const AES128GCM_HEADER: usize = 16 + 4 + 1 + 65;
/// Per record: the AES-GCM tag (16) and the padding delimiter octet (1).
pub const AES128GCM_RECORD_OVERHEAD: usize = 16 + 1;
/// The largest Web Push plaintext that fits one record of the smallest accepted body.
pub const WEBPUSH_MAX_PLAINTEXT: usize = WEBPUSH_MAX_ENCRYPTED_BODY - AES128GCM_HEADER - AES128GCM_RECORD_OVERHEAD;

// The budget and the encryption agree on what a Web Push payload may hold.
const _: () = assert!(WEBPUSH_MAX_PLAINTEXT == super::webpush::MAX_PLAINTEXT_LEN);

impl PushPlatform {
    /// The most payload bytes this provider takes, measured as the module says.
    pub const fn payload_limit(self) -> usize {
        match self {
            PushPlatform::Apns => APNS_MAX_PAYLOAD,
            PushPlatform::Fcm => FCM_MAX_MESSAGE,
            PushPlatform::WebPush => WEBPUSH_MAX_PLAINTEXT,
            // Its endpoints are APNs or FCM devices: both allow 4096 (see `payload`).
            PushPlatform::Sns => APNS_MAX_PAYLOAD,
        }
    }
}

/// A payload over its provider's limit. Displays as the receipt reason,
/// `payload_too_large:<bytes>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("payload_too_large:{bytes}")]
pub struct PayloadTooLarge {
    pub bytes: usize,
    pub limit: usize,
}

/// Whether `payload_bytes` fits `provider`'s limit; the limit itself fits.
pub fn check(provider: PushPlatform, payload_bytes: usize) -> Result<(), PayloadTooLarge> {
    let limit = provider.payload_limit();
    if payload_bytes <= limit { Ok(()) } else { Err(PayloadTooLarge { bytes: payload_bytes, limit }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_fits_and_one_byte_more_does_not() {
        for (provider, limit) in [(PushPlatform::Apns, 4096), (PushPlatform::Fcm, 4096), (PushPlatform::WebPush, 3993)]
        {
            assert_eq!(provider.payload_limit(), limit);
            assert_eq!(check(provider, 0), Ok(()));
            assert_eq!(check(provider, limit), Ok(()), "{provider:?}");
            assert_eq!(check(provider, limit + 1), Err(PayloadTooLarge { bytes: limit + 1, limit }), "{provider:?}");
        }
    }

    #[test]
    fn the_reason_is_the_receipt_string() {
        let err = check(PushPlatform::Apns, 5000).unwrap_err();
        assert_eq!(err.to_string(), "payload_too_large:5000");
        assert_eq!(err.limit, 4096);
        assert_eq!(check(PushPlatform::WebPush, 3994).unwrap_err().to_string(), "payload_too_large:3994");
    }

    #[test]
    fn webpush_overhead_adds_up_to_the_smallest_accepted_body() {
        assert_eq!(AES128GCM_HEADER, 86);
        assert_eq!(AES128GCM_RECORD_OVERHEAD, 17);
        assert_eq!(WEBPUSH_MAX_PLAINTEXT + AES128GCM_HEADER + AES128GCM_RECORD_OVERHEAD, 4096);
        assert_eq!(WEBPUSH_MAX_PLAINTEXT, 3993);
    }
}
