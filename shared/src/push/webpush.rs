//! Web Push groundwork, pure code (no network, no clock: callers pass `now`):
//!
//! - RFC 8291 message encryption with the RFC 8188 `aes128gcm` content coding: [`encrypt`]
//!   (random salt and ephemeral key per message), [`encrypt_with`] (both injected), and, for
//!   test stand-ins of a push service (feature `testing`), `decrypt` and `UserAgentKeys`.
//! - RFC 8292 VAPID: [`VapidKey::authorization`] builds the `Authorization: vapid t=…, k=…`
//!   value (ES256 JWT, `aud` = the endpoint's origin), [`VapidCache`] reuses one token per
//!   push-service origin until five minutes before it expires.
//! - RFC 8030 request headers: [`headers`] (`TTL`, `Urgency`, `Topic`, content coding).
//!
//! Everything is built on `ring` (the crypto stack herald already carries, through rustls).
//! ring cannot build an ECDH key from given bytes, which only the tests (the RFC 8291
//! worked example) and a push-service stand-in (decrypting with a subscription's private
//! key) need: that path uses ring's deterministic test RNG and is compiled only under
//! `cfg(test)` or the `testing` feature, never into a production build.
//!
//! No error message carries key material, a token or an endpoint path; `Debug` of the key
//! types shows public keys only.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jiff::Timestamp;
use ring::rand::SecureRandom as _;
use ring::{aead, agreement, hkdf, rand, signature};

/// Length of the random salt in the `aes128gcm` header.
pub const SALT_LEN: usize = 16;
/// Length of an uncompressed P-256 public key (`0x04 || X || Y`): `p256dh`, the VAPID `k`.
pub const PUBLIC_KEY_LEN: usize = 65;
/// Length of a raw P-256 private scalar.
pub const PRIVATE_KEY_LEN: usize = 32;
/// Length of the subscription's `auth` secret (RFC 8291 §3.2).
pub const AUTH_SECRET_LEN: usize = 16;
/// AES-128-GCM tag length.
pub const TAG_LEN: usize = 16;
/// `aes128gcm` header: salt(16) | rs(4) | idlen(1) | keyid(65, the sender's public key).
pub const HEADER_LEN: usize = SALT_LEN + 4 + 1 + PUBLIC_KEY_LEN;
/// Bytes added to a plaintext sent as one record: header, padding delimiter, tag (103).
pub const OVERHEAD: usize = HEADER_LEN + 1 + TAG_LEN;
/// The record size written by [`encrypt`] unless told otherwise.
pub const DEFAULT_RECORD_SIZE: u32 = 4096;
/// The largest request body push services accept (FCM, Mozilla autopush, Apple: 4096).
pub const MAX_BODY_LEN: usize = 4096;
/// The largest plaintext that fits [`MAX_BODY_LEN`] (3993 bytes).
pub const MAX_PLAINTEXT_LEN: usize = MAX_BODY_LEN - OVERHEAD;
/// RFC 8292 §2: a VAPID token must not expire more than 24 hours after the request.
pub const MAX_VAPID_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// [`VapidCache`] renews a token once it has less than this left.
pub const VAPID_RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// Longest `Topic` header value (RFC 8030 §5.4).
pub const MAX_TOPIC_LEN: usize = 32;

/// The smallest valid record size (RFC 8188 §2: a delimiter, the tag and one byte).
const MIN_RECORD_SIZE: u32 = 18;
const KEY_INFO: &[u8] = b"WebPush: info\0";
const CEK_INFO: &[u8] = b"Content-Encoding: aes128gcm\0";
const NONCE_INFO: &[u8] = b"Content-Encoding: nonce\0";
const JWT_HEADER: &[u8] = br#"{"typ":"JWT","alg":"ES256"}"#;

/// Everything that can go wrong here. Messages never carry key material, tokens or an
/// endpoint's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebPushError {
    #[error("{field} is not valid base64url")]
    Base64 { field: &'static str },
    #[error("subscription p256dh is not an uncompressed P-256 public key (65 bytes, on the curve)")]
    InvalidP256dh,
    #[error("subscription auth secret must be 16 bytes")]
    InvalidAuthSecret,
    #[error("private key is not a valid P-256 scalar (32 bytes)")]
    InvalidPrivateKey,
    /// `bytes` is the plaintext length, `limit` the largest plaintext that fits.
    #[error("payload too large: {bytes} bytes, limit {limit}")]
    PayloadTooLarge { bytes: usize, limit: usize },
    #[error("record size {0} is below the minimum of 18")]
    InvalidRecordSize(u32),
    #[error("malformed aes128gcm body: {0}")]
    Malformed(&'static str),
    /// Authentication failed: wrong key, wrong auth secret or tampered body.
    #[error("aes128gcm body does not decrypt")]
    Decrypt,
    #[error("the system random number generator failed")]
    Random,
    #[error("cryptographic operation failed")]
    Crypto,
    /// `reason` is ring's classification of the rejection (e.g. `InconsistentComponents`).
    #[error("invalid VAPID key: {reason}")]
    InvalidVapidKey { reason: String },
    #[error("VAPID token lifetime {seconds}s out of range (1 s to 24 h)")]
    VapidTtl { seconds: u64 },
    #[error("VAPID subject must be a mailto: or https: URI without spaces")]
    InvalidSubject,
    #[error("push endpoint is not an absolute http(s) URL with a plain host")]
    InvalidEndpoint,
    #[error("time out of range")]
    TimeOutOfRange,
    #[error("Topic must be 1 to 32 base64url characters")]
    InvalidTopic,
}

// ---------------------------------------------------------------------------------------
// base64url
// ---------------------------------------------------------------------------------------

const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes a subscription or VAPID key as stored: base64url, padded or not (what browsers'
/// `PushSubscription.toJSON()` and the web-push tools produce); standard base64 is accepted
/// too, since some stores keep `btoa` output. `field` names the value in the error.
pub fn decode_base64url(field: &'static str, value: &str) -> Result<Vec<u8>, WebPushError> {
    let value = value.trim();
    URL_SAFE_LENIENT
        .decode(value)
        .or_else(|_| STANDARD_LENIENT.decode(value))
        .map_err(|_| WebPushError::Base64 { field })
}

/// base64url without padding, as JWTs and the VAPID `k` parameter use it.
pub fn encode_base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

// ---------------------------------------------------------------------------------------
// RFC 8291 / RFC 8188 encryption
// ---------------------------------------------------------------------------------------

/// The largest plaintext that one record of `record_size` holds within [`MAX_BODY_LEN`].
pub fn max_plaintext_len(record_size: u32) -> usize {
    let in_record = usize::try_from(record_size).unwrap_or(usize::MAX).saturating_sub(1 + TAG_LEN);
    in_record.min(MAX_PLAINTEXT_LEN)
}

/// The body length [`encrypt`] produces for a plaintext of `plaintext_len` bytes.
pub fn encrypted_len(plaintext_len: usize) -> usize {
    plaintext_len.saturating_add(OVERHEAD)
}

/// Encrypts `plaintext` for a subscription (RFC 8291, `aes128gcm`), with a fresh random salt
/// and ephemeral key. `p256dh` and `auth` are the subscription's decoded keys (see
/// [`decode_base64url`]). `record_size` is the `rs` header field (default 4096).
///
/// Returns the whole request body: `salt | rs | 65 | sender public key | one record`, the
/// record being the plaintext, the `0x02` delimiter and the tag. A plaintext that does not
/// fit one record or [`MAX_BODY_LEN`] is refused with [`WebPushError::PayloadTooLarge`]
/// (never truncated).
pub fn encrypt(
    plaintext: &[u8],
    p256dh: &[u8],
    auth: &[u8],
    record_size: Option<u32>,
) -> Result<Vec<u8>, WebPushError> {
    let rng = rand::SystemRandom::new();
    let mut salt = [0u8; SALT_LEN];
    rng.fill(&mut salt).map_err(|_| WebPushError::Random)?;
    let as_private =
        agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).map_err(|_| WebPushError::Random)?;
    encrypt_with(plaintext, p256dh, auth, record_size, as_private, &salt)
}

/// [`encrypt`] with the sender's ephemeral key and the salt given (tests, known-answer
/// vectors). The key is consumed: ring keys are single-use, so it cannot be reused by
/// mistake. Production code calls [`encrypt`].
pub fn encrypt_with(
    plaintext: &[u8],
    p256dh: &[u8],
    auth: &[u8],
    record_size: Option<u32>,
    as_private: agreement::EphemeralPrivateKey,
    salt: &[u8; SALT_LEN],
) -> Result<Vec<u8>, WebPushError> {
    let rs = record_size.unwrap_or(DEFAULT_RECORD_SIZE);
    if rs < MIN_RECORD_SIZE {
        return Err(WebPushError::InvalidRecordSize(rs));
    }
    let limit = max_plaintext_len(rs);
    if plaintext.len() > limit {
        return Err(WebPushError::PayloadTooLarge { bytes: plaintext.len(), limit });
    }
    check_p256dh(p256dh)?;
    check_auth(auth)?;

    let as_public = as_private.compute_public_key().map_err(|_| WebPushError::Crypto)?;
    let as_public = as_public.as_ref();
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, p256dh);
    // ring validates the peer point (on the curve, not the identity) before agreeing.
    let ikm =
        agreement::agree_ephemeral(as_private, &peer, |ecdh_secret| webpush_ikm(ecdh_secret, auth, p256dh, as_public))
            .map_err(|_| WebPushError::InvalidP256dh)??;
    let (cek, nonce) = content_keys(salt, &ikm)?;

    let mut record = Vec::with_capacity(plaintext.len() + 1 + TAG_LEN);
    record.extend_from_slice(plaintext);
    record.push(0x02); // last (and only) record, no further padding
    let key =
        aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &cek).map_err(|_| WebPushError::Crypto)?);
    key.seal_in_place_append_tag(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::empty(), &mut record)
        .map_err(|_| WebPushError::Crypto)?;

    let mut body = Vec::with_capacity(HEADER_LEN + record.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&rs.to_be_bytes());
    body.push(PUBLIC_KEY_LEN as u8);
    body.extend_from_slice(as_public);
    body.extend_from_slice(&record);
    Ok(body)
}

fn check_p256dh(p256dh: &[u8]) -> Result<(), WebPushError> {
    if p256dh.len() != PUBLIC_KEY_LEN || p256dh.first() != Some(&0x04) {
        return Err(WebPushError::InvalidP256dh);
    }
    Ok(())
}

fn check_auth(auth: &[u8]) -> Result<(), WebPushError> {
    if auth.len() != AUTH_SECRET_LEN {
        return Err(WebPushError::InvalidAuthSecret);
    }
    Ok(())
}

/// A length for ring's HKDF-Expand.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn hkdf_expand<const N: usize>(prk: &hkdf::Prk, info: &[&[u8]]) -> Result<[u8; N], WebPushError> {
    let mut out = [0u8; N];
    prk.expand(info, Len(N)).and_then(|okm| okm.fill(&mut out)).map_err(|_| WebPushError::Crypto)?;
    Ok(out)
}

/// RFC 8291 §3.4: `PRK_key = HKDF-Extract(auth, ecdh_secret)`,
/// `IKM = HKDF-Expand(PRK_key, "WebPush: info" || 0x00 || ua_public || as_public, 32)`.
fn webpush_ikm(ecdh_secret: &[u8], auth: &[u8], ua_public: &[u8], as_public: &[u8]) -> Result<[u8; 32], WebPushError> {
    let prk_key = hkdf::Salt::new(hkdf::HKDF_SHA256, auth).extract(ecdh_secret);
    hkdf_expand::<32>(&prk_key, &[KEY_INFO, ua_public, as_public])
}

/// RFC 8188 §2.2 and §2.3: `PRK = HKDF-Extract(salt, IKM)`, then the 16-byte content
/// encryption key and the 12-byte nonce.
fn content_keys(salt: &[u8], ikm: &[u8]) -> Result<([u8; 16], [u8; 12]), WebPushError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    Ok((hkdf_expand::<16>(&prk, &[CEK_INFO])?, hkdf_expand::<12>(&prk, &[NONCE_INFO])?))
}

// ---------------------------------------------------------------------------------------
// Decryption: the push service's (and the user agent's) side, for test stand-ins
// ---------------------------------------------------------------------------------------

/// A P-256 key from a fixed scalar. ring only builds ECDH keys from its RNG, so this feeds
/// the scalar through ring's deterministic test RNG (deprecated, internal to ring): for
/// tests and stand-ins only, hence the cfg.
#[cfg(any(test, feature = "testing"))]
#[allow(deprecated)]
fn fixed_private_key(private: &[u8]) -> Result<agreement::EphemeralPrivateKey, WebPushError> {
    if private.len() != PRIVATE_KEY_LEN {
        return Err(WebPushError::InvalidPrivateKey);
    }
    let rng = ring::test::rand::FixedSliceRandom { bytes: private };
    agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).map_err(|_| WebPushError::InvalidPrivateKey)
}

/// Decrypts an `aes128gcm` body with the subscription's private key (raw 32-byte scalar)
/// and auth secret, as a browser would: the push-service stand-in of the tests compares the
/// result with what was rendered. Handles any number of records; refuses a tampered body,
/// a wrong key or secret ([`WebPushError::Decrypt`]) and malformed framing or padding.
#[cfg(any(test, feature = "testing"))]
pub fn decrypt(body: &[u8], ua_private: &[u8], auth: &[u8]) -> Result<Vec<u8>, WebPushError> {
    check_auth(auth)?;
    let (salt, rest) = body.split_at_checked(SALT_LEN).ok_or(WebPushError::Malformed("truncated header"))?;
    let (rs, rest) = rest.split_first_chunk::<4>().ok_or(WebPushError::Malformed("truncated header"))?;
    let rs = u32::from_be_bytes(*rs);
    let (&idlen, rest) = rest.split_first().ok_or(WebPushError::Malformed("truncated header"))?;
    if usize::from(idlen) != PUBLIC_KEY_LEN {
        return Err(WebPushError::Malformed("keyid is not an uncompressed P-256 public key"));
    }
    let (as_public, records) =
        rest.split_at_checked(PUBLIC_KEY_LEN).ok_or(WebPushError::Malformed("truncated header"))?;
    if rs < MIN_RECORD_SIZE {
        return Err(WebPushError::Malformed("record size below 18"));
    }
    if records.is_empty() {
        return Err(WebPushError::Malformed("no records"));
    }

    let ua_key = fixed_private_key(ua_private)?;
    let ua_public = ua_key.compute_public_key().map_err(|_| WebPushError::Crypto)?;
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, as_public);
    let ikm = agreement::agree_ephemeral(ua_key, &peer, |ecdh_secret| {
        webpush_ikm(ecdh_secret, auth, ua_public.as_ref(), as_public)
    })
    .map_err(|_| WebPushError::Malformed("keyid is not a valid P-256 public key"))??;
    let (cek, nonce) = content_keys(salt, &ikm)?;
    let key =
        aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &cek).map_err(|_| WebPushError::Crypto)?);

    let rs = usize::try_from(rs).map_err(|_| WebPushError::Malformed("record size"))?;
    let count = records.len().div_ceil(rs);
    let mut plaintext = Vec::with_capacity(records.len());
    for (seq, record) in records.chunks(rs).enumerate() {
        if record.len() <= TAG_LEN {
            return Err(WebPushError::Malformed("record shorter than its tag"));
        }
        let mut buf = record.to_vec();
        let opened = key
            .open_in_place(aead::Nonce::assume_unique_for_key(record_nonce(nonce, seq)), aead::Aad::empty(), &mut buf)
            .map_err(|_| WebPushError::Decrypt)?;
        // Padding: the data, a delimiter (2 on the last record, 1 before), then zeros.
        let end = opened.iter().rposition(|&b| b != 0).ok_or(WebPushError::Malformed("record without delimiter"))?;
        let expected = if seq + 1 == count { 0x02 } else { 0x01 };
        if opened.get(end) != Some(&expected) {
            return Err(WebPushError::Malformed("wrong padding delimiter"));
        }
        plaintext.extend_from_slice(opened.get(..end).unwrap_or_default());
    }
    Ok(plaintext)
}

/// RFC 8188 §2.3: the nonce of record `seq` is `NONCE XOR seq` (seq as a 96-bit integer).
#[cfg(any(test, feature = "testing"))]
fn record_nonce(mut nonce: [u8; 12], seq: usize) -> [u8; 12] {
    let seq = (seq as u64).to_be_bytes();
    for (n, s) in nonce.iter_mut().skip(4).zip(seq) {
        *n ^= s;
    }
    nonce
}

/// A browser's side of a subscription, for push-service stand-ins in tests: a fresh key
/// pair and auth secret, the values to hand herald (`p256dh`, `auth`, base64url) and
/// [`UserAgentKeys::decrypt`].
#[cfg(any(test, feature = "testing"))]
pub struct UserAgentKeys {
    /// The raw private scalar.
    pub private: [u8; PRIVATE_KEY_LEN],
    /// The uncompressed public key.
    pub p256dh: [u8; PUBLIC_KEY_LEN],
    pub auth: [u8; AUTH_SECRET_LEN],
}

#[cfg(any(test, feature = "testing"))]
impl UserAgentKeys {
    /// Fresh random keys.
    pub fn generate() -> Result<Self, WebPushError> {
        let rng = rand::SystemRandom::new();
        let mut auth = [0u8; AUTH_SECRET_LEN];
        rng.fill(&mut auth).map_err(|_| WebPushError::Random)?;
        // A random 32-byte string is a valid scalar but with probability about 2^-32.
        for _ in 0..8 {
            let mut private = [0u8; PRIVATE_KEY_LEN];
            rng.fill(&mut private).map_err(|_| WebPushError::Random)?;
            let Ok(key) = fixed_private_key(&private) else { continue };
            let public = key.compute_public_key().map_err(|_| WebPushError::Crypto)?;
            let p256dh = public.as_ref().try_into().map_err(|_| WebPushError::Crypto)?;
            return Ok(Self { private, p256dh, auth });
        }
        Err(WebPushError::Random)
    }

    /// From a stored private scalar and auth secret (the public key is derived).
    pub fn from_private(private: &[u8], auth: &[u8]) -> Result<Self, WebPushError> {
        check_auth(auth)?;
        let key = fixed_private_key(private)?;
        let public = key.compute_public_key().map_err(|_| WebPushError::Crypto)?;
        Ok(Self {
            private: private.try_into().map_err(|_| WebPushError::InvalidPrivateKey)?,
            p256dh: public.as_ref().try_into().map_err(|_| WebPushError::Crypto)?,
            auth: auth.try_into().map_err(|_| WebPushError::InvalidAuthSecret)?,
        })
    }

    /// `keys.p256dh` of the subscription JSON.
    pub fn p256dh_base64url(&self) -> String {
        encode_base64url(&self.p256dh)
    }

    /// `keys.auth` of the subscription JSON.
    pub fn auth_base64url(&self) -> String {
        encode_base64url(&self.auth)
    }

    /// [`decrypt`] with these keys.
    pub fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>, WebPushError> {
        decrypt(body, &self.private, &self.auth)
    }
}

#[cfg(any(test, feature = "testing"))]
impl fmt::Debug for UserAgentKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserAgentKeys")
            .field("p256dh", &self.p256dh_base64url())
            .field("private", &"<redacted>")
            .field("auth", &"<redacted>")
            .finish()
    }
}

// ---------------------------------------------------------------------------------------
// RFC 8292 VAPID
// ---------------------------------------------------------------------------------------

/// The application server's VAPID signing key (ECDSA P-256).
///
/// Accepted formats:
/// - [`VapidKey::from_raw_private`]: the raw 32-byte private scalar and the 65-byte
///   uncompressed public key, both base64url (padded or not). This is what
///   `web-push generate-vapid-keys` (Node), pywebpush/py_vapid's `--applicationServerKey`
///   output and most dashboards store; the public key is the `applicationServerKey`
///   browsers subscribed with. ring needs both halves and checks that they match.
/// - [`VapidKey::from_pkcs8`] / [`VapidKey::from_pkcs8_pem`]: an unencrypted PKCS#8 v1
///   document (`-----BEGIN PRIVATE KEY-----`, as `openssl pkcs8 -topk8 -nocrypt` writes)
///   whose inner ECPrivateKey includes the public key (OpenSSL's and ring's do). A bare
///   SEC1 `BEGIN EC PRIVATE KEY` file must be converted with `openssl pkcs8 -topk8` first.
pub struct VapidKey {
    pair: signature::EcdsaKeyPair,
    public_b64: String,
}

impl VapidKey {
    /// From an unencrypted PKCS#8 v1 DER document (see the type's documentation).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, WebPushError> {
        let rng = rand::SystemRandom::new();
        let pair = signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|e| WebPushError::InvalidVapidKey { reason: e.to_string() })?;
        Ok(Self::new(pair))
    }

    /// From a PEM `PRIVATE KEY` (PKCS#8) block.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, WebPushError> {
        const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
        const END: &str = "-----END PRIVATE KEY-----";
        let invalid = || WebPushError::InvalidVapidKey { reason: "expected a PEM PRIVATE KEY (PKCS#8) block".into() };
        let (_, rest) = pem.split_once(BEGIN).ok_or_else(invalid)?;
        let (body, _) = rest.split_once(END).ok_or_else(invalid)?;
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = STANDARD_LENIENT.decode(b64).map_err(|_| invalid())?;
        Self::from_pkcs8(&der)
    }

    /// From the raw private scalar (32 bytes) and the uncompressed public key (65 bytes),
    /// both base64url as web-push tools store them.
    pub fn from_raw_private(private_b64url: &str, public_b64url: &str) -> Result<Self, WebPushError> {
        let private = decode_base64url("VAPID private key", private_b64url)?;
        let public = decode_base64url("VAPID public key", public_b64url)?;
        Self::from_raw_bytes(&private, &public)
    }

    /// [`VapidKey::from_raw_private`] with decoded bytes.
    pub fn from_raw_bytes(private: &[u8], public: &[u8]) -> Result<Self, WebPushError> {
        if private.len() != PRIVATE_KEY_LEN || public.len() != PUBLIC_KEY_LEN {
            return Err(WebPushError::InvalidVapidKey {
                reason: "expected a 32-byte private scalar and a 65-byte uncompressed public key".into(),
            });
        }
        let rng = rand::SystemRandom::new();
        let pair = signature::EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            private,
            public,
            &rng,
        )
        .map_err(|e| WebPushError::InvalidVapidKey { reason: e.to_string() })?;
        Ok(Self::new(pair))
    }

    /// A fresh key as a PKCS#8 document (tests, key rotation tooling).
    pub fn generate_pkcs8() -> Result<Vec<u8>, WebPushError> {
        let rng = rand::SystemRandom::new();
        let doc = signature::EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| WebPushError::Random)?;
        Ok(doc.as_ref().to_vec())
    }

    fn new(pair: signature::EcdsaKeyPair) -> Self {
        use signature::KeyPair as _;
        let public_b64 = encode_base64url(pair.public_key().as_ref());
        Self { pair, public_b64 }
    }

    /// The uncompressed public key (the browsers' `applicationServerKey`).
    pub fn public_key(&self) -> &[u8] {
        use signature::KeyPair as _;
        self.pair.public_key().as_ref()
    }

    /// The public key, base64url without padding (the `k` parameter).
    pub fn public_key_base64url(&self) -> &str {
        &self.public_b64
    }

    /// The `Authorization` header value for a push to `endpoint`:
    /// `vapid t=<JWT>, k=<public key>`. The JWT is ES256 with claims `aud` (the endpoint's
    /// origin, never its path), `exp` (`now + ttl`, whole seconds) and `sub` (a `mailto:`
    /// or `https:` URI). `ttl` must be 1 s to 24 h; 12 h is the usual choice, leaving
    /// room for clock skew at the push service. Whether an `http:` endpoint is acceptable
    /// is the caller's policy (tests use one).
    pub fn authorization(
        &self,
        endpoint: &str,
        subject: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<String, WebPushError> {
        let origin = origin(endpoint)?;
        Ok(self.token_for_origin(&origin, subject, now, ttl)?.0)
    }

    /// The header value and its expiry (`exp`, Unix seconds) for an already computed origin.
    fn token_for_origin(
        &self,
        origin: &str,
        subject: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<(String, i64), WebPushError> {
        check_ttl(ttl)?;
        check_subject(subject)?;
        let ttl = i64::try_from(ttl.as_secs()).map_err(|_| WebPushError::TimeOutOfRange)?;
        let exp = now.as_second().checked_add(ttl).ok_or(WebPushError::TimeOutOfRange)?;
        let claims = serde_json::json!({ "aud": origin, "exp": exp, "sub": subject });
        let claims = serde_json::to_vec(&claims).map_err(|_| WebPushError::Crypto)?;
        let signing_input = format!("{}.{}", encode_base64url(JWT_HEADER), encode_base64url(&claims));
        let rng = rand::SystemRandom::new();
        let sig = self.pair.sign(&rng, signing_input.as_bytes()).map_err(|_| WebPushError::Crypto)?;
        let header = format!("vapid t={signing_input}.{}, k={}", encode_base64url(sig.as_ref()), self.public_b64);
        Ok((header, exp))
    }
}

impl fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKey").field("public_key", &self.public_b64).field("private_key", &"<redacted>").finish()
    }
}

fn check_ttl(ttl: Duration) -> Result<(), WebPushError> {
    if ttl.as_secs() == 0 || ttl > MAX_VAPID_TTL {
        return Err(WebPushError::VapidTtl { seconds: ttl.as_secs() });
    }
    Ok(())
}

fn check_subject(subject: &str) -> Result<(), WebPushError> {
    let rest = subject.strip_prefix("mailto:").or_else(|| subject.strip_prefix("https://"));
    match rest {
        Some(rest) if !rest.is_empty() && !subject.chars().any(|c| c.is_whitespace() || c.is_control()) => Ok(()),
        _ => Err(WebPushError::InvalidSubject),
    }
}

/// The origin of a push endpoint, `scheme://host[:port]`, as the VAPID `aud` claim needs it:
/// scheme and host lowercased, the default port dropped, path, query, fragment never kept.
/// Only `https` and `http` endpoints with a plain host (name, IPv4 or bracketed IPv6, no
/// user info) are accepted; whether `http` is allowed is the caller's policy.
pub fn origin(endpoint: &str) -> Result<String, WebPushError> {
    let bad = WebPushError::InvalidEndpoint;
    let (scheme, rest) = endpoint.split_once("://").ok_or(bad.clone())?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return Err(bad),
    };
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let authority = rest.get(..end).ok_or(bad.clone())?;
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or(bad.clone())?;
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return Err(bad);
        }
        let port = if after.is_empty() { None } else { Some(after.strip_prefix(':').ok_or(bad.clone())?) };
        (format!("[{}]", addr.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) {
            return Err(bad);
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None | Some("") => None,
        Some(p) if p.chars().all(|c| c.is_ascii_digit()) => Some(p.parse::<u16>().map_err(|_| bad.clone())?),
        Some(_) => return Err(bad),
    };
    Ok(match port {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// VAPID tokens per push-service origin, reused until [`VAPID_RENEW_BEFORE`] before they
/// expire. Pure: every call takes `now`. Share one per warm function behind a mutex.
pub struct VapidCache {
    key: VapidKey,
    subject: String,
    ttl: Duration,
    tokens: HashMap<String, CachedToken>,
}

struct CachedToken {
    header: String,
    exp: i64,
}

impl VapidCache {
    /// A cache signing with `key` for `subject`, each token valid for `ttl` (1 s to 24 h;
    /// 12 h is the usual choice). Subject and ttl are checked here.
    pub fn new(key: VapidKey, subject: impl Into<String>, ttl: Duration) -> Result<Self, WebPushError> {
        let subject = subject.into();
        check_ttl(ttl)?;
        check_subject(&subject)?;
        Ok(Self { key, subject, ttl, tokens: HashMap::new() })
    }

    /// The `Authorization` header value for `endpoint`: the cached one for its origin while
    /// it has more than five minutes left at `now`, else a fresh one (cached in its place).
    pub fn authorization(&mut self, endpoint: &str, now: Timestamp) -> Result<String, WebPushError> {
        let origin = origin(endpoint)?;
        let renew_before = i64::try_from(VAPID_RENEW_BEFORE.as_secs()).map_err(|_| WebPushError::TimeOutOfRange)?;
        let now_s = now.as_second();
        if let Some(token) = self.tokens.get(&origin)
            && now_s < token.exp.saturating_sub(renew_before)
        {
            return Ok(token.header.clone());
        }
        let (header, exp) = self.key.token_for_origin(&origin, &self.subject, now, self.ttl)?;
        self.tokens.retain(|_, t| t.exp > now_s);
        self.tokens.insert(origin, CachedToken { header: header.clone(), exp });
        Ok(header)
    }

    /// Drops the token cached for `endpoint`'s origin (its push service refused it), so
    /// the next [`authorization`](Self::authorization) signs a new one.
    pub fn forget(&mut self, endpoint: &str) {
        if let Ok(origin) = origin(endpoint) {
            self.tokens.remove(&origin);
        }
    }

    /// The signing key (its public half is what subscriptions were made with).
    pub fn key(&self) -> &VapidKey {
        &self.key
    }

    /// How many origins have a token cached.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl fmt::Debug for VapidCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut origins: Vec<&str> = self.tokens.keys().map(String::as_str).collect();
        origins.sort_unstable();
        f.debug_struct("VapidCache")
            .field("key", &self.key)
            .field("subject", &self.subject)
            .field("ttl", &self.ttl)
            .field("cached_origins", &origins)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------
// RFC 8030 headers
// ---------------------------------------------------------------------------------------

/// RFC 8030 §5.3 message urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Urgency {
    VeryLow,
    Low,
    #[default]
    Normal,
    High,
}

impl Urgency {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VeryLow => "very-low",
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
        }
    }
}

impl fmt::Display for Urgency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The request headers of an encrypted push (RFC 8030 §5): `TTL` (seconds the push
/// service may keep the message), `Urgency`, `Topic` when given (1 to 32 base64url
/// characters, replacing a pending message with the same topic), `Content-Encoding:
/// aes128gcm` and `Content-Type: application/octet-stream`. `Authorization` comes from
/// [`VapidKey::authorization`] or [`VapidCache`]; `Content-Length` from the HTTP client.
pub fn headers(ttl_seconds: u32, urgency: Urgency, topic: Option<&str>) -> Result<Vec<(String, String)>, WebPushError> {
    let mut out =
        vec![("TTL".to_owned(), ttl_seconds.to_string()), ("Urgency".to_owned(), urgency.as_str().to_owned())];
    if let Some(topic) = topic {
        let valid = !topic.is_empty()
            && topic.len() <= MAX_TOPIC_LEN
            && topic.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(WebPushError::InvalidTopic);
        }
        out.push(("Topic".to_owned(), topic.to_owned()));
    }
    out.push(("Content-Encoding".to_owned(), "aes128gcm".to_owned()));
    out.push(("Content-Type".to_owned(), "application/octet-stream".to_owned()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8291 Appendix A (also §5): the worked example.
    const PLAINTEXT: &[u8] = b"When I grow up, I want to be a watermelon";
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const UA_PUBLIC: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const AS_PUBLIC: &str = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
    const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const BODY: &str = concat!(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml",
        "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT",
        "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
    );

    fn b64(s: &str) -> Vec<u8> {
        decode_base64url("test", s).unwrap()
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_750_000_000).unwrap()
    }

    #[test]
    fn rfc8291_appendix_a_is_reproduced_byte_for_byte() {
        let as_private = fixed_private_key(&b64(AS_PRIVATE)).unwrap();
        assert_eq!(as_private.compute_public_key().unwrap().as_ref(), b64(AS_PUBLIC).as_slice());
        let salt: [u8; SALT_LEN] = b64(SALT).try_into().unwrap();
        let body = encrypt_with(PLAINTEXT, &b64(UA_PUBLIC), &b64(AUTH), Some(4096), as_private, &salt).unwrap();
        assert_eq!(encode_base64url(&body), BODY);
        assert_eq!(body.len(), encrypted_len(PLAINTEXT.len()));
    }

    #[test]
    fn rfc8291_appendix_a_decrypts_with_the_user_agent_key() {
        assert_eq!(decrypt(&b64(BODY), &b64(UA_PRIVATE), &b64(AUTH)).unwrap(), PLAINTEXT);
        let ua = UserAgentKeys::from_private(&b64(UA_PRIVATE), &b64(AUTH)).unwrap();
        assert_eq!(ua.p256dh_base64url(), UA_PUBLIC);
        assert_eq!(ua.auth_base64url(), AUTH);
    }

    #[test]
    fn round_trip_with_random_keys_and_fresh_salt_and_key_per_message() {
        let ua = UserAgentKeys::generate().unwrap();
        let msg = br#"{"title":"Hello","body":"\u00e5\u00e4\u00f6"}"#;
        let a = encrypt(msg, &ua.p256dh, &ua.auth, None).unwrap();
        let b = encrypt(msg, &ua.p256dh, &ua.auth, None).unwrap();
        assert_eq!(ua.decrypt(&a).unwrap(), msg);
        assert_eq!(ua.decrypt(&b).unwrap(), msg);
        assert_eq!(a.len(), msg.len() + OVERHEAD);
        assert_eq!(a[16..20], 4096u32.to_be_bytes());
        assert_eq!(a[20], 65);
        assert_eq!(a[21], 0x04);
        assert_ne!(a[..16], b[..16], "salt must be fresh");
        assert_ne!(a[21..86], b[21..86], "ephemeral key must be fresh");
        // Keys as stored in a subscription, base64url with or without padding.
        let p256dh = decode_base64url("p256dh", &format!("{}=", ua.p256dh_base64url())).unwrap();
        let body = encrypt(b"", &p256dh, &b64(&ua.auth_base64url()), Some(18)).unwrap();
        assert_eq!(ua.decrypt(&body).unwrap(), b"");
    }

    #[test]
    fn tampered_or_misaddressed_bodies_are_refused() {
        let ua = UserAgentKeys::generate().unwrap();
        let body = encrypt(b"secret message", &ua.p256dh, &ua.auth, None).unwrap();
        for i in [0, 7, SALT_LEN - 1, HEADER_LEN, HEADER_LEN + 5, body.len() - 1] {
            let mut bad = body.clone();
            bad[i] ^= 0x01;
            assert!(ua.decrypt(&bad).is_err(), "flip at {i} accepted");
        }
        // rs is not authenticated (RFC 8188): a larger one changes nothing, a smaller one
        // splits the record and breaks it.
        let mut bigger = body.clone();
        bigger[16] = 0x01;
        assert_eq!(ua.decrypt(&bigger).unwrap(), b"secret message");
        let mut smaller = body.clone();
        smaller[16..20].copy_from_slice(&20u32.to_be_bytes());
        assert!(ua.decrypt(&smaller).is_err());
        let mut bad_key = body.clone();
        bad_key[40] ^= 0x01; // sender public key no longer on the curve
        assert!(matches!(ua.decrypt(&bad_key), Err(WebPushError::Malformed(_))));
        let mut tag = body.clone();
        *tag.last_mut().unwrap() ^= 0x80;
        assert_eq!(ua.decrypt(&tag), Err(WebPushError::Decrypt));
        let other = UserAgentKeys::generate().unwrap();
        assert_eq!(other.decrypt(&body), Err(WebPushError::Decrypt));
        assert_eq!(decrypt(&body, &ua.private, &other.auth), Err(WebPushError::Decrypt));
        assert!(matches!(ua.decrypt(&body[..HEADER_LEN + 10]), Err(WebPushError::Malformed(_))));
        assert!(matches!(ua.decrypt(&body[..30]), Err(WebPushError::Malformed(_))));
    }

    #[test]
    fn size_limit_3993_bytes_fit_4096_and_one_more_is_reported() {
        assert_eq!(MAX_PLAINTEXT_LEN, 3993);
        let ua = UserAgentKeys::generate().unwrap();
        let max = vec![b'x'; MAX_PLAINTEXT_LEN];
        let body = encrypt(&max, &ua.p256dh, &ua.auth, None).unwrap();
        assert_eq!(body.len(), MAX_BODY_LEN);
        assert_eq!(ua.decrypt(&body).unwrap(), max);
        let over = vec![b'x'; MAX_PLAINTEXT_LEN + 1];
        let err = encrypt(&over, &ua.p256dh, &ua.auth, None).unwrap_err();
        assert_eq!(err, WebPushError::PayloadTooLarge { bytes: 3994, limit: 3993 });
        assert_eq!(err.to_string(), "payload too large: 3994 bytes, limit 3993");
        // A smaller record size bounds the single record.
        assert_eq!(max_plaintext_len(100), 83);
        assert!(encrypt(&[1; 83], &ua.p256dh, &ua.auth, Some(100)).is_ok());
        assert_eq!(
            encrypt(&[1; 84], &ua.p256dh, &ua.auth, Some(100)),
            Err(WebPushError::PayloadTooLarge { bytes: 84, limit: 83 })
        );
        assert_eq!(encrypt(b"", &ua.p256dh, &ua.auth, Some(17)), Err(WebPushError::InvalidRecordSize(17)));
    }

    #[test]
    fn bad_subscription_keys_are_refused() {
        let ua = UserAgentKeys::generate().unwrap();
        assert_eq!(encrypt(b"x", &ua.p256dh[..64], &ua.auth, None), Err(WebPushError::InvalidP256dh));
        let mut off_curve = [0u8; 65];
        off_curve[0] = 0x04;
        assert_eq!(encrypt(b"x", &off_curve, &ua.auth, None), Err(WebPushError::InvalidP256dh));
        assert_eq!(encrypt(b"x", &ua.p256dh, &ua.auth[..15], None), Err(WebPushError::InvalidAuthSecret));
        assert_eq!(decode_base64url("p256dh", "not base64!"), Err(WebPushError::Base64 { field: "p256dh" }));
        // Standard-alphabet storage is tolerated.
        assert_eq!(
            decode_base64url("auth", &base64::engine::general_purpose::STANDARD.encode([0xfb; 16])).unwrap(),
            [0xfb; 16]
        );
    }

    /// Verifies a `vapid t=…, k=…` header as a push service would; returns the claims.
    fn verify_vapid(header: &str, expected_k: &str) -> serde_json::Value {
        let rest = header.strip_prefix("vapid t=").unwrap();
        let (jwt, k) = rest.split_once(", k=").unwrap();
        assert_eq!(k, expected_k);
        let (signing_input, sig) = jwt.rsplit_once('.').unwrap();
        let (head, claims) = signing_input.split_once('.').unwrap();
        let public = signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, b64(k));
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        assert_eq!(sig.len(), 64);
        public.verify(signing_input.as_bytes(), &sig).unwrap();
        let head: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap();
        assert_eq!(head, serde_json::json!({ "typ": "JWT", "alg": "ES256" }));
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap()
    }

    #[test]
    fn vapid_jwt_verifies_and_carries_origin_expiry_and_subject() {
        let key = VapidKey::from_pkcs8(&VapidKey::generate_pkcs8().unwrap()).unwrap();
        let ttl = Duration::from_secs(12 * 3600);
        let header = key
            .authorization(
                "https://FCM.googleapis.com:443/fcm/send/dQw4w9WgXcQ:APA91b?x=1#f",
                "mailto:ops@example.com",
                now(),
                ttl,
            )
            .unwrap();
        let claims = verify_vapid(&header, key.public_key_base64url());
        assert_eq!(
            claims,
            serde_json::json!({
                "aud": "https://fcm.googleapis.com",
                "exp": now().as_second() + 12 * 3600,
                "sub": "mailto:ops@example.com",
            })
        );
        assert_eq!(key.public_key().len(), 65);
        // A local stand-in keeps its port; path never leaks into aud.
        let header = key.authorization("http://127.0.0.1:8081/push/abc", "https://herald.example", now(), ttl).unwrap();
        assert_eq!(verify_vapid(&header, key.public_key_base64url())["aud"], "http://127.0.0.1:8081");
    }

    #[test]
    fn vapid_key_from_raw_private_and_pem() {
        // The RFC 8291 sender pair is a valid P-256 key pair.
        let key = VapidKey::from_raw_private(AS_PRIVATE, AS_PUBLIC).unwrap();
        assert_eq!(key.public_key_base64url(), AS_PUBLIC);
        let header = key
            .authorization(
                "https://updates.push.services.mozilla.com/wpush/v2/gAAA",
                "mailto:a@b.c",
                now(),
                Duration::from_secs(60),
            )
            .unwrap();
        assert_eq!(verify_vapid(&header, AS_PUBLIC)["aud"], "https://updates.push.services.mozilla.com");
        // Mismatched halves, wrong lengths, garbage.
        let err = VapidKey::from_raw_private(UA_PRIVATE, AS_PUBLIC).unwrap_err();
        assert!(matches!(err, WebPushError::InvalidVapidKey { .. }));
        assert!(!err.to_string().contains(UA_PRIVATE));
        assert!(VapidKey::from_raw_private(AUTH, AS_PUBLIC).is_err());
        assert!(VapidKey::from_pkcs8(b"not a key").is_err());
        // PEM round trip of a generated PKCS#8 document.
        let der = VapidKey::generate_pkcs8().unwrap();
        let body = base64::engine::general_purpose::STANDARD.encode(&der);
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n{}\n-----END PRIVATE KEY-----\n", &body[..64], &body[64..]);
        let from_pem = VapidKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(from_pem.public_key(), VapidKey::from_pkcs8(&der).unwrap().public_key());
        assert!(VapidKey::from_pkcs8_pem("-----BEGIN EC PRIVATE KEY-----").is_err());
    }

    #[test]
    fn vapid_refuses_long_ttl_bad_subject_and_bad_endpoint() {
        let key = VapidKey::from_raw_private(AS_PRIVATE, AS_PUBLIC).unwrap();
        let ep = "https://push.example.net/x";
        let day = Duration::from_secs(24 * 3600);
        assert!(key.authorization(ep, "mailto:a@b.c", now(), day).is_ok());
        assert_eq!(
            key.authorization(ep, "mailto:a@b.c", now(), day + Duration::from_secs(1)),
            Err(WebPushError::VapidTtl { seconds: 86401 })
        );
        assert!(key.authorization(ep, "mailto:a@b.c", now(), Duration::ZERO).is_err());
        for subject in ["ops@example.com", "mailto:", "mailto: a@b.c", "http://example.com", "https://"] {
            assert_eq!(key.authorization(ep, subject, now(), day), Err(WebPushError::InvalidSubject), "{subject}");
        }
        for endpoint in [
            "ftp://push.example.net/secret-path",
            "push.example.net/secret-path",
            "https:///secret-path",
            "https://user:pw@push.example.net/secret-path",
            "https://push.example.net:99999/secret-path",
            "https://push example.net/secret-path",
        ] {
            let err = key.authorization(endpoint, "mailto:a@b.c", now(), day).unwrap_err();
            assert_eq!(err, WebPushError::InvalidEndpoint, "{endpoint}");
            assert!(!err.to_string().contains("secret-path"));
        }
    }

    #[test]
    fn origin_keeps_scheme_host_and_non_default_port_only() {
        assert_eq!(origin("https://fcm.googleapis.com/fcm/send/abc").unwrap(), "https://fcm.googleapis.com");
        assert_eq!(origin("HTTPS://Web.Push.Apple.com:443/QGx").unwrap(), "https://web.push.apple.com");
        assert_eq!(origin("https://push.example:8443?x").unwrap(), "https://push.example:8443");
        assert_eq!(origin("http://localhost:80/a").unwrap(), "http://localhost");
        assert_eq!(origin("http://[::1]:9000/a").unwrap(), "http://[::1]:9000");
        assert_eq!(
            origin("https://wns2-par02p.notify.windows.com/w/?token=abc").unwrap(),
            "https://wns2-par02p.notify.windows.com"
        );
        assert_eq!(origin("https://push.example:/a").unwrap(), "https://push.example");
    }

    #[test]
    fn vapid_cache_reuses_per_origin_and_renews_five_minutes_before_expiry() {
        let key = VapidKey::from_raw_private(AS_PRIVATE, AS_PUBLIC).unwrap();
        let ttl = Duration::from_secs(3600);
        let mut cache = VapidCache::new(key, "mailto:ops@example.com", ttl).unwrap();
        let fcm = "https://fcm.googleapis.com/fcm/send/one";
        let first = cache.authorization(fcm, now()).unwrap();
        // Another subscription on the same push service, later: same token.
        let later = now().checked_add(jiff::SignedDuration::from_secs(3600 - 301)).unwrap();
        assert_eq!(cache.authorization("https://fcm.googleapis.com/fcm/send/two", later).unwrap(), first);
        // Another push service: its own token.
        let moz = cache.authorization("https://updates.push.services.mozilla.com/wpush/v2/x", now()).unwrap();
        assert_ne!(moz, first);
        assert_eq!(verify_vapid(&moz, AS_PUBLIC)["aud"], "https://updates.push.services.mozilla.com");
        assert_eq!(cache.len(), 2);
        // Five minutes before expiry: renewed, with a later exp.
        let renew = now().checked_add(jiff::SignedDuration::from_secs(3600 - 300)).unwrap();
        let second = cache.authorization(fcm, renew).unwrap();
        assert_ne!(second, first);
        assert_eq!(verify_vapid(&second, AS_PUBLIC)["exp"], renew.as_second() + 3600);
        assert_eq!(cache.authorization(fcm, renew).unwrap(), second);
        // The expired Mozilla token is dropped once a later token is minted.
        let much_later = now().checked_add(jiff::SignedDuration::from_secs(3 * 3600)).unwrap();
        cache.authorization(fcm, much_later).unwrap();
        assert_eq!(cache.len(), 1);
        assert!(VapidCache::new(VapidKey::from_raw_private(AS_PRIVATE, AS_PUBLIC).unwrap(), "x", ttl).is_err());
        assert!(
            VapidCache::new(VapidKey::from_raw_private(AS_PRIVATE, AS_PUBLIC).unwrap(), "mailto:a@b.c", ttl * 25)
                .is_err()
        );
    }

    #[test]
    fn debug_never_shows_private_keys_or_tokens() {
        let key = VapidKey::from_raw_private(AS_PRIVATE, AS_PUBLIC).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains(AS_PUBLIC) && !shown.contains(AS_PRIVATE) && shown.contains("<redacted>"));
        let mut cache = VapidCache::new(key, "mailto:a@b.c", Duration::from_secs(600)).unwrap();
        let header = cache.authorization("https://push.example/abc", now()).unwrap();
        let shown = format!("{cache:?}");
        let jwt = header.strip_prefix("vapid t=").unwrap().split_once(',').unwrap().0;
        assert!(!shown.contains(jwt) && !shown.contains("/abc") && shown.contains("https://push.example"));
        let ua = UserAgentKeys::from_private(&b64(UA_PRIVATE), &b64(AUTH)).unwrap();
        let shown = format!("{ua:?}");
        assert!(shown.contains(UA_PUBLIC) && !shown.contains(UA_PRIVATE) && !shown.contains(AUTH));
    }

    #[test]
    fn rfc8030_headers() {
        let h = headers(86400, Urgency::High, Some("order-42_shipped")).unwrap();
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            h,
            [
                ("TTL", "86400"),
                ("Urgency", "high"),
                ("Topic", "order-42_shipped"),
                ("Content-Encoding", "aes128gcm"),
                ("Content-Type", "application/octet-stream"),
            ]
        );
        let h = headers(0, Urgency::VeryLow, None).unwrap();
        assert_eq!(h.len(), 4);
        assert_eq!(h[1].1, "very-low");
        assert_eq!(Urgency::default().as_str(), "normal");
        assert_eq!(Urgency::Low.to_string(), "low");
        assert!(headers(60, Urgency::Normal, Some(&"a".repeat(32))).is_ok());
        for bad in ["a".repeat(33), String::new(), "has space".into(), "slash/no".into(), "plus+".into(), "é".into()] {
            assert_eq!(headers(60, Urgency::Normal, Some(&bad)), Err(WebPushError::InvalidTopic), "{bad:?}");
        }
    }
}
