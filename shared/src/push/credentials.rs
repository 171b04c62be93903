//! Push provider credentials, pure code (no network, no clock: callers pass `now`):
//!
//! - APNs token-based auth: [`ApnsSigningKey`] (the `.p8` key Apple issues, its key id and
//!   team id) and [`ApnsTokenCache`], one ES256 provider JWT shared by every request of a
//!   warm function and renewed every 20 to 60 minutes, as APNs demands.
//! - FCM HTTP v1 OAuth2: [`ServiceAccount`] (a Google service-account key JSON) builds the
//!   RS256 JWT grant and the token request body; [`AccessToken`] reads the token
//!   endpoint's answer; [`FcmTokenCache`] keeps the access token until five minutes
//!   before it expires.
//!
//! Built on `ring`, like [`super::webpush`]. No error message carries key material, a JWT
//! or an access token, and no service-account field value is echoed; `Debug` of the key
//! and token types redacts the secrets.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jiff::Timestamp;
use ring::{rand, signature};
use serde_json::{Value, json};

/// APNs refuses provider tokens renewed more often than this (`TooManyProviderTokenUpdates`).
pub const APNS_MIN_REFRESH: Duration = Duration::from_secs(20 * 60);
/// APNs refuses provider tokens older than this (`ExpiredProviderToken`).
pub const APNS_MAX_REFRESH: Duration = Duration::from_secs(60 * 60);
/// The renewal interval [`ApnsTokenCache::with_default_refresh`] uses: inside the window,
/// with margin on both sides for clock skew and requests in flight.
pub const APNS_DEFAULT_REFRESH: Duration = Duration::from_secs(40 * 60);
/// [`ApnsTokenCache::invalidate`] ignores a token younger than this, so a rejection cannot
/// make the cache sign again and again (see there).
pub const APNS_REISSUE_GUARD: Duration = Duration::from_secs(60);
/// Length of an APNs key id and of a team id.
pub const APNS_ID_LEN: usize = 10;

/// The OAuth2 scope FCM HTTP v1 needs.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Lifetime of the JWT grant (`exp - iat`); Google accepts at most one hour.
pub const FCM_ASSERTION_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// [`FcmTokenCache::current`] stops handing out an access token this long before it expires.
pub const FCM_RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// RFC 7523 grant type of the token request.
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Everything that can go wrong here. Messages never carry key material, JWTs, access
/// tokens or the values of service-account fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "{what} is not a PEM `PRIVATE KEY` (PKCS#8) block; convert a `BEGIN EC PRIVATE KEY` or \
         `BEGIN RSA PRIVATE KEY` file with `openssl pkcs8 -topk8 -nocrypt`"
    )]
    Pem { what: &'static str },
    /// `reason` is ring's classification of the rejection (e.g. `WrongAlgorithm`).
    #[error("{what} rejected: {reason}")]
    InvalidKey { what: &'static str, reason: String },
    /// ring needs the public key inside the PKCS#8 document; Apple's `.p8` files carry it,
    /// keys re-exported by some tools do not.
    #[error(
        "APNs key is a PKCS#8 document without its public key, which ring requires; re-export it \
         with `openssl ec -in AuthKey.p8 | openssl pkcs8 -topk8 -nocrypt -out AuthKey-full.p8`"
    )]
    ApnsKeyWithoutPublicKey,
    #[error("APNs {field} must be 10 ASCII letters or digits")]
    InvalidApnsId { field: &'static str },
    #[error("APNs token refresh interval {seconds}s out of range (20 to 60 minutes)")]
    ApnsRefreshInterval { seconds: u64 },
    #[error("service account key is not valid JSON (line {line}, column {column})")]
    ServiceAccountSyntax { line: usize, column: usize },
    #[error("service account key is not a JSON object")]
    ServiceAccountNotObject,
    #[error("service account key: {field} is missing or not a string")]
    MissingField { field: &'static str },
    #[error("service account key: {field} is not valid (expected {expected})")]
    InvalidField { field: &'static str, expected: &'static str },
    #[error("service account key: type is not \"service_account\"")]
    NotServiceAccount,
    #[error("OAuth token response: {problem}")]
    TokenResponse { problem: &'static str },
    /// The token endpoint's `error` code (RFC 6749 §5.2, e.g. `invalid_grant`), reduced to
    /// its safe characters; the description is left out.
    #[error("OAuth token endpoint answered `{code}`")]
    TokenEndpoint { code: String },
    #[error("signing failed")]
    Signing,
    #[error("time out of range")]
    TimeOutOfRange,
}

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The DER inside a PEM `PRIVATE KEY` block. Literal `\n` sequences are dropped as well as
/// whitespace: secrets pasted through a JSON or env layer twice often carry them.
fn pkcs8_der_from_pem(pem: &str, what: &'static str) -> Result<Vec<u8>, CredentialError> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    let invalid = || CredentialError::Pem { what };
    let (_, rest) = pem.split_once(BEGIN).ok_or_else(invalid)?;
    let (body, _) = rest.split_once(END).ok_or_else(invalid)?;
    let b64: String = body.replace("\\n", "").replace("\\r", "").chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD_LENIENT.decode(b64).map_err(|_| invalid())
}

/// `base64url(header).base64url(claims)`.
fn signing_input(header: &Value, claims: &Value) -> String {
    format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

fn seconds(d: Duration) -> Result<i64, CredentialError> {
    i64::try_from(d.as_secs()).map_err(|_| CredentialError::TimeOutOfRange)
}

// ---------------------------------------------------------------------------------------
// APNs
// ---------------------------------------------------------------------------------------

/// The APNs token-auth signing key: the P-256 key of the `.p8` file Apple issues, with its
/// 10-character key id and the team id of the developer account.
///
/// Apple's `.p8` is an unencrypted PKCS#8 v1 document that includes the public key, which
/// `ring` requires ([`EcdsaKeyPair::from_pkcs8`](signature::EcdsaKeyPair::from_pkcs8)
/// refuses an `ECPrivateKey` without its optional `publicKey`, and cannot derive it). A
/// key re-exported without it is recognised and refused with
/// [`CredentialError::ApnsKeyWithoutPublicKey`], whose message gives the `openssl` command
/// that puts it back.
pub struct ApnsSigningKey {
    pair: signature::EcdsaKeyPair,
    key_id: String,
    team_id: String,
}

impl ApnsSigningKey {
    /// From the `.p8` file's text, the key id and the team id. Surrounding whitespace of
    /// the ids is ignored (secrets often end with a newline).
    pub fn from_p8(pem: &str, key_id: &str, team_id: &str) -> Result<Self, CredentialError> {
        let der = pkcs8_der_from_pem(pem, "APNs key")?;
        Self::from_pkcs8(&der, key_id, team_id)
    }

    /// [`ApnsSigningKey::from_p8`] with the DER document.
    pub fn from_pkcs8(der: &[u8], key_id: &str, team_id: &str) -> Result<Self, CredentialError> {
        let key_id = apns_id(key_id, "key id")?;
        let team_id = apns_id(team_id, "team id")?;
        let rng = rand::SystemRandom::new();
        let pair = signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|e| {
                // ring says only `InvalidEncoding` when the public key is missing: name it.
                if ec_pkcs8_has_public_key(der) == Some(false) {
                    CredentialError::ApnsKeyWithoutPublicKey
                } else {
                    CredentialError::InvalidKey { what: "APNs key", reason: e.to_string() }
                }
            })?;
        Ok(Self { pair, key_id, team_id })
    }

    /// The key id (the JWT's `kid`).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The team id (the JWT's `iss`).
    pub fn team_id(&self) -> &str {
        &self.team_id
    }

    /// The uncompressed public key (`0x04 || X || Y`), for stand-ins that verify tokens.
    pub fn public_key(&self) -> &[u8] {
        use signature::KeyPair as _;
        self.pair.public_key().as_ref()
    }

    /// A fresh provider token issued at `now`. Private: every caller goes through
    /// [`ApnsTokenCache`], since APNs throttles a provider that renews too often.
    fn sign(&self, now: Timestamp) -> Result<String, CredentialError> {
        let header = json!({ "alg": "ES256", "kid": self.key_id });
        let claims = json!({ "iss": self.team_id, "iat": now.as_second() });
        let input = signing_input(&header, &claims);
        let rng = rand::SystemRandom::new();
        let sig = self.pair.sign(&rng, input.as_bytes()).map_err(|_| CredentialError::Signing)?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
    }
}

impl fmt::Debug for ApnsSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApnsSigningKey")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

fn apns_id(value: &str, field: &'static str) -> Result<String, CredentialError> {
    let value = value.trim();
    if value.len() != APNS_ID_LEN || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CredentialError::InvalidApnsId { field });
    }
    Ok(value.to_owned())
}

/// Whether a PKCS#8 document's inner `ECPrivateKey` carries its `[1] publicKey`; `None`
/// when it does not parse that far. Only used to explain a rejection by ring.
fn ec_pkcs8_has_public_key(der: &[u8]) -> Option<bool> {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const OCTET_STRING: u8 = 0x04;
    const PUBLIC_KEY: u8 = 0xa1;
    let (tag, pkcs8, _) = der_next(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_version, rest) = der_expect(pkcs8, INTEGER)?;
    let (_algorithm, rest) = der_expect(rest, SEQUENCE)?;
    let (private_key, _) = der_expect(rest, OCTET_STRING)?;
    let (ec_private_key, _) = der_expect(private_key, SEQUENCE)?;
    let (_version, rest) = der_expect(ec_private_key, INTEGER)?;
    let (_scalar, mut rest) = der_expect(rest, OCTET_STRING)?;
    while !rest.is_empty() {
        let (tag, _, next) = der_next(rest)?;
        if tag == PUBLIC_KEY {
            return Some(true);
        }
        rest = next;
    }
    Some(false)
}

/// One DER element: tag, contents, what follows. Definite lengths up to 2^16 only, which
/// is all a key document needs.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81 => {
            let (&len, rest) = rest.split_first()?;
            (usize::from(len), rest)
        }
        0x82 => {
            let (len, rest) = rest.split_first_chunk::<2>()?;
            (usize::from(u16::from_be_bytes(*len)), rest)
        }
        _ => return None,
    };
    let (value, rest) = rest.split_at_checked(len)?;
    Some((tag, value, rest))
}

fn der_expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (actual, value, rest) = der_next(input)?;
    (actual == tag).then_some((value, rest))
}

/// The APNs provider token of a warm function: one ES256 JWT (`{"alg":"ES256","kid":…}`,
/// `{"iss":<team id>,"iat":…}`) shared by every request until `iat + refresh_after`, then
/// a new one. APNs refuses a token older than an hour and throttles a provider that renews
/// more often than every 20 minutes, hence the 20 to 60 minute range.
///
/// Thread-safe: the state sits behind a mutex, and signing happens under it, so callers
/// racing for an expired (or absent) token get one new JWT between them, never one each.
/// Pure: every call takes `now`.
pub struct ApnsTokenCache {
    key: ApnsSigningKey,
    refresh_after: Duration,
    state: Mutex<ApnsState>,
}

#[derive(Default)]
struct ApnsState {
    current: Option<IssuedToken>,
    issued: u64,
}

struct IssuedToken {
    jwt: String,
    iat: i64,
}

impl ApnsTokenCache {
    /// A cache renewing its token `refresh_after` after issuing it (20 to 60 minutes;
    /// [`APNS_DEFAULT_REFRESH`] is the usual choice).
    pub fn new(key: ApnsSigningKey, refresh_after: Duration) -> Result<Self, CredentialError> {
        if !(APNS_MIN_REFRESH..=APNS_MAX_REFRESH).contains(&refresh_after) {
            return Err(CredentialError::ApnsRefreshInterval { seconds: refresh_after.as_secs() });
        }
        Ok(Self { key, refresh_after, state: Mutex::new(ApnsState::default()) })
    }

    /// [`ApnsTokenCache::new`] with [`APNS_DEFAULT_REFRESH`] (40 minutes).
    pub fn with_default_refresh(key: ApnsSigningKey) -> Self {
        Self { key, refresh_after: APNS_DEFAULT_REFRESH, state: Mutex::new(ApnsState::default()) }
    }

    /// The provider token for a request at `now` (the value after `bearer ` in the
    /// `authorization` header): the current one while `now < iat + refresh_after`, else a
    /// new one issued at `now`.
    pub fn bearer(&self, now: Timestamp) -> Result<String, CredentialError> {
        let refresh_after = seconds(self.refresh_after)?;
        let mut state = self.lock();
        if let Some(token) = &state.current
            && now.as_second() < token.iat.saturating_add(refresh_after)
        {
            return Ok(token.jwt.clone());
        }
        let jwt = self.key.sign(now)?;
        state.current = Some(IssuedToken { jwt: jwt.clone(), iat: now.as_second() });
        state.issued = state.issued.saturating_add(1);
        Ok(jwt)
    }

    /// Drops `token` after APNs answered `ExpiredProviderToken` or `InvalidProviderToken`
    /// to a request made with it, so the next [`bearer`](Self::bearer) issues a new one.
    /// Returns whether it did.
    ///
    /// Ignored (returns `false`) when `token` is no longer the current one (a concurrent
    /// request already caused the renewal: a batch of rejections renews once), and when
    /// the current token was issued less than [`APNS_REISSUE_GUARD`] (60 s) before `now`.
    /// A token rejected that young points at the key, the ids or the clock, which a new
    /// token would not fix; renewing on every rejection would only add
    /// `TooManyProviderTokenUpdates` to the failure. So invalidation renews at most once
    /// a minute; the caller fails (or retries later) the records in between.
    pub fn invalidate(&self, token: &str, now: Timestamp) -> bool {
        let Ok(guard) = seconds(APNS_REISSUE_GUARD) else { return false };
        let mut state = self.lock();
        let honoured = state
            .current
            .as_ref()
            .is_some_and(|current| current.jwt == token && now.as_second() >= current.iat.saturating_add(guard));
        if honoured {
            state.current = None;
        }
        honoured
    }

    /// How many tokens this cache has signed (metrics, and tests asserting one JWT per batch).
    pub fn tokens_issued(&self) -> u64 {
        self.lock().issued
    }

    /// The signing key.
    pub fn key(&self) -> &ApnsSigningKey {
        &self.key
    }

    /// The renewal interval.
    pub fn refresh_after(&self) -> Duration {
        self.refresh_after
    }

    /// A panic while the lock was held cannot leave the state half-written (it is replaced
    /// whole), so a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, ApnsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for ApnsTokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("ApnsTokenCache")
            .field("key", &self.key)
            .field("refresh_after", &self.refresh_after)
            .field("current_iat", &state.current.as_ref().map(|t| t.iat))
            .field("tokens_issued", &state.issued)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------
// FCM HTTP v1: OAuth2 with a service-account key
// ---------------------------------------------------------------------------------------

/// A Google service-account key (the JSON file the Cloud console downloads), ready to sign
/// the OAuth2 JWT grant (RFC 7523) that buys an FCM access token.
///
/// Read fields: `type` (must be `service_account`), `project_id` (the FCM URL's
/// `{project}`), `private_key_id` (the grant's `kid`), `private_key` (PKCS#8 PEM, RSA
/// 2048 to 4096 bits), `client_email` (`iss`) and `token_uri` (`aud`, and where to POST
/// [`ServiceAccount::token_request_body`]; `http:` is accepted so tests can point it at a
/// local server). Other fields are ignored.
pub struct ServiceAccount {
    project_id: String,
    private_key_id: String,
    client_email: String,
    token_uri: String,
    pair: signature::RsaKeyPair,
}

impl ServiceAccount {
    /// Parses the key JSON. Errors name the field at fault, never its value, and a JSON
    /// syntax error gives only its position.
    pub fn from_json(text: &str) -> Result<Self, CredentialError> {
        // Through `Value`, not a derived struct: serde's type errors quote the offending
        // value, which could be the private key.
        let value: Value = serde_json::from_str(text)
            .map_err(|e| CredentialError::ServiceAccountSyntax { line: e.line(), column: e.column() })?;
        let object = value.as_object().ok_or(CredentialError::ServiceAccountNotObject)?;
        let field = |name: &'static str| -> Result<&str, CredentialError> {
            object.get(name).and_then(Value::as_str).ok_or(CredentialError::MissingField { field: name })
        };
        if field("type")? != "service_account" {
            return Err(CredentialError::NotServiceAccount);
        }
        let project_id = field("project_id")?;
        // It goes into the FCM URL's path: letters, digits, `-`, and the `.`/`:` of
        // domain-scoped projects (`example.com:my-project`).
        if project_id.is_empty()
            || project_id.len() > 100
            || !project_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'))
        {
            return Err(CredentialError::InvalidField { field: "project_id", expected: "a Google Cloud project id" });
        }
        let private_key_id = field("private_key_id")?;
        if private_key_id.is_empty()
            || private_key_id.len() > 128
            || !private_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(CredentialError::InvalidField { field: "private_key_id", expected: "letters and digits" });
        }
        let client_email = field("client_email")?;
        if !client_email.contains('@') || client_email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(CredentialError::InvalidField { field: "client_email", expected: "an email address" });
        }
        let token_uri = field("token_uri")?;
        let has_host = |rest: &str| rest.split('/').next().is_some_and(|host| !host.is_empty());
        let uri_ok =
            token_uri.strip_prefix("https://").or_else(|| token_uri.strip_prefix("http://")).is_some_and(has_host)
                && !token_uri.chars().any(|c| c.is_whitespace() || c.is_control());
        if !uri_ok {
            return Err(CredentialError::InvalidField { field: "token_uri", expected: "an absolute http(s) URL" });
        }
        let der = pkcs8_der_from_pem(field("private_key")?, "service account private_key")?;
        let pair = signature::RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| CredentialError::InvalidKey { what: "service account private_key", reason: e.to_string() })?;
        Ok(Self {
            project_id: project_id.to_owned(),
            private_key_id: private_key_id.to_owned(),
            client_email: client_email.to_owned(),
            token_uri: token_uri.to_owned(),
            pair,
        })
    }

    /// The Firebase project (`/v1/projects/{project_id}/messages:send`).
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// The key's id (the grant's `kid`).
    pub fn private_key_id(&self) -> &str {
        &self.private_key_id
    }

    /// The service account (the grant's `iss`).
    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// Where the token request goes (and the grant's `aud`).
    pub fn token_uri(&self) -> &str {
        &self.token_uri
    }

    /// The public key as a DER `RSAPublicKey` (PKCS#1), for stand-ins that verify grants
    /// with ring's `RSA_PKCS1_2048_8192_SHA256`.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public().as_ref()
    }

    /// The RS256 JWT grant: header `{"alg":"RS256","typ":"JWT","kid":<private_key_id>}`,
    /// claims `iss` (client_email), `scope` ([`FCM_SCOPE`]), `aud` (token_uri), `iat`
    /// (`now`) and `exp` (`iat` + one hour).
    pub fn assertion(&self, now: Timestamp) -> Result<String, CredentialError> {
        let iat = now.as_second();
        let exp = iat.checked_add(seconds(FCM_ASSERTION_LIFETIME)?).ok_or(CredentialError::TimeOutOfRange)?;
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": self.private_key_id });
        let claims = json!({
            "iss": self.client_email,
            "scope": FCM_SCOPE,
            "aud": self.token_uri,
            "iat": iat,
            "exp": exp,
        });
        let input = signing_input(&header, &claims);
        let rng = rand::SystemRandom::new();
        let mut sig = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(&signature::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
            .map_err(|_| CredentialError::Signing)?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// The `application/x-www-form-urlencoded` body to POST to [`token_uri`](Self::token_uri):
    /// `grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=<JWT>`.
    /// A `Result` because signing can fail (ring reports RNG failure).
    pub fn token_request_body(&self, now: Timestamp) -> Result<String, CredentialError> {
        let assertion = self.assertion(now)?;
        Ok(format!("grant_type={}&assertion={}", form_encode(JWT_BEARER_GRANT_TYPE), form_encode(&assertion)))
    }
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// Form-urlencoding of a value: unreserved bytes as they are, everything else `%XX` (a JWT
/// needs none, but the grant type's colons do).
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// An OAuth2 access token and the moment it expires. `Debug` redacts the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    token: String,
    expires_at: Timestamp,
}

impl AccessToken {
    /// A token known by other means (tests, stand-ins).
    pub fn new(token: impl Into<String>, expires_at: Timestamp) -> Self {
        Self { token: token.into(), expires_at }
    }

    /// Reads the token endpoint's JSON answer, `{"access_token", "expires_in",
    /// "token_type": "Bearer"}`. `now` should be when the request was sent, so the expiry
    /// errs early. An error answer (`{"error": "invalid_grant", …}`) gives
    /// [`CredentialError::TokenEndpoint`] with the code only.
    pub fn from_token_response(json: &str, now: Timestamp) -> Result<Self, CredentialError> {
        let problem = |problem| CredentialError::TokenResponse { problem };
        let value: Value = serde_json::from_str(json).map_err(|_| problem("not valid JSON"))?;
        let object = value.as_object().ok_or_else(|| problem("not a JSON object"))?;
        if let Some(code) = object.get("error").and_then(Value::as_str) {
            let code: String =
                code.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')).take(64).collect();
            return Err(CredentialError::TokenEndpoint { code });
        }
        let token = object
            .get("access_token")
            .and_then(Value::as_str)
            // It becomes a header value: visible ASCII only.
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| problem("access_token is missing, empty or not header-safe"))?;
        let token_type = object.get("token_type").and_then(Value::as_str);
        // RFC 6749 §5.1: the type is case-insensitive.
        if !token_type.is_some_and(|t| t.eq_ignore_ascii_case("bearer")) {
            return Err(problem("token_type is not Bearer"));
        }
        let expires_in = match object.get("expires_in") {
            Some(Value::Number(n)) => n.as_i64(),
            // Some servers send it as a string.
            Some(Value::String(s)) => s.parse::<i64>().ok(),
            _ => None,
        }
        .filter(|&s| s > 0)
        .ok_or_else(|| problem("expires_in is missing or not a positive number of seconds"))?;
        let expires_at = now
            .as_second()
            .checked_add(expires_in)
            .and_then(|s| Timestamp::from_second(s).ok())
            .ok_or(CredentialError::TimeOutOfRange)?;
        Ok(Self { token: token.to_owned(), expires_at })
    }

    /// The token (the value after `Bearer ` in the `Authorization` header).
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// When the endpoint said it expires.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken").field("token", &"<redacted>").field("expires_at", &self.expires_at).finish()
    }
}

/// The FCM access token of a warm function, handed out until [`FCM_RENEW_BEFORE`] (five
/// minutes) before it expires. A pure state machine, no I/O and no lock of its own.
///
/// The adapter keeps it in a `tokio::sync::Mutex<FcmTokenCache>` and holds that lock
/// across check, fetch and store, so concurrent records wait for one fetch instead of
/// each starting their own (one token request per warm function and hour, not per
/// message):
///
/// ```text
/// let mut cache = fcm_cache.lock().await;
/// let token = match cache.current(now) {
///     Some(token) => token,
///     None => {
///         let body = account.token_request_body(now)?;
///         let answer = post_form(account.token_uri(), body).await?;
///         let token = AccessToken::from_token_response(&answer, now)?;
///         let secret = token.secret().to_owned();
///         cache.store(token);
///         secret
///     }
/// };
/// drop(cache); // before sending: the lock guards the fetch, not the sends
/// ```
///
/// On a 401 from FCM, [`invalidate_token`](Self::invalidate_token) with the token the
/// request used drops it unless a newer one is already stored.
#[derive(Default)]
pub struct FcmTokenCache {
    token: Option<AccessToken>,
    stored: u64,
}

impl FcmTokenCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored token while `now` is more than five minutes before its expiry, else
    /// `None` (fetch a new one). A token granted for under five minutes is never handed out.
    pub fn current(&self, now: Timestamp) -> Option<String> {
        let renew_before = seconds(FCM_RENEW_BEFORE).ok()?;
        self.token
            .as_ref()
            .filter(|t| now.as_second() < t.expires_at.as_second().saturating_sub(renew_before))
            .map(|t| t.token.clone())
    }

    /// Keeps `token`, replacing any other.
    pub fn store(&mut self, token: AccessToken) {
        self.token = Some(token);
        self.stored = self.stored.saturating_add(1);
    }

    /// Drops the stored token (FCM answered 401).
    pub fn invalidate(&mut self) {
        self.token = None;
    }

    /// Drops the stored token if it is `token`, the one a 401 answered; a newer token
    /// stored meanwhile stays. Returns whether it dropped one.
    pub fn invalidate_token(&mut self, token: &str) -> bool {
        let matches = self.token.as_ref().is_some_and(|t| t.token == token);
        if matches {
            self.token = None;
        }
        matches
    }

    /// How many tokens were stored (metrics, and tests asserting one fetch per batch).
    pub fn tokens_stored(&self) -> u64 {
        self.stored
    }
}

impl fmt::Debug for FcmTokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FcmTokenCache").field("token", &self.token).field("tokens_stored", &self.stored).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::UnparsedPublicKey;
    use std::collections::HashSet;
    use std::sync::Barrier;

    /// TEST-ONLY RSA-2048 key, shared with the harness's FCM stand-in (one copy).
    const TEST_RSA_PKCS8_PEM: &str = herald_e2e::push_providers::TEST_RSA_PKCS8_PEM;
    /// Its public half as DER `RSAPublicKey` (`openssl rsa -RSAPublicKey_out -outform DER`).
    const TEST_RSA_PUBLIC_DER_B64: &str = "MIIBCgKCAQEAqSuFdklr4fW+LNqyJtLbJ3hsjIJyq8XWJjX+8Qg9lP08s+7xsQt/JiYpTbEzSHeYB4ZCVSFhyhq3q7XbWoYbOejP0wPgarImoFRo1IPKCf5c9JVYRVOjTtRzdsRe4IH8i1aOW13MEFOlhloulS/6o/ka5ljGEoQbKXA49UnRSzRA0QQwdxW/bo/XTtep0hABc2U51oa4kCfCKODuiFImvJgzvuammh9aAfO8F48iOEiTVC30MawgCSNMNsClDP/wG1R+e4NIeAjedF5qkEPspstBKa1rBNr6hpacwkAtnbrg9dW04B9iMD01zM9OhTAX3W9z6l0R0eYsqUKgQd1fYwIDAQAB";

    /// TEST-ONLY P-256 key as PKCS#8 without the public key (`openssl ec -no_public`, then
    /// `openssl pkcs8 -topk8 -nocrypt`): what ring refuses.
    const TEST_P256_NO_PUBLIC_P8: &str = r"-----BEGIN PRIVATE KEY-----
MEECAQAwEwYHKoZIzj0CAQYIKoZIzj0DAQcEJzAlAgEBBCATqGGNLBfXRQThkS65
tB3O7genhB1IWzaRWC/IUHckuA==
-----END PRIVATE KEY-----
";
    /// The same key after the conversion the error message recommends.
    const TEST_P256_FULL_P8: &str = r"-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgE6hhjSwX10UE4ZEu
ubQdzu4Hp4QdSFs2kVgvyFB3JLihRANCAASDzZcFBcoTSxCnXxw5OPeHk+xqD//G
OQXnGXA9UtVfTUDmuH9I4lm6IHaDwY1/GPhAdIIVPvVcmNy7QXEweFCQ
-----END PRIVATE KEY-----
";
    /// Its public key, uncompressed, base64 (from `openssl ec -pubout`).
    const TEST_P256_PUBLIC_B64: &str =
        "BIPNlwUFyhNLEKdfHDk494eT7GoP/8Y5BecZcD1S1V9NQOa4f0jiWbogdoPBjX8Y+EB0ghU+9VyY3LtBcTB4UJA=";

    const KEY_ID: &str = "ABC123DEFG";
    const TEAM_ID: &str = "TEAM123456";
    const PRIVATE_KEY_ID: &str = "0123456789abcdef0123456789abcdef01234567";
    const CLIENT_EMAIL: &str = "herald-push@example-project.iam.gserviceaccount.com";
    const TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

    fn now() -> Timestamp {
        Timestamp::from_second(1_750_000_000).unwrap()
    }

    fn at(offset: i64) -> Timestamp {
        Timestamp::from_second(now().as_second() + offset).unwrap()
    }

    fn pem(der: &[u8]) -> String {
        let b64 = STANDARD_LENIENT.encode(der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
    }

    fn p256_pkcs8() -> Vec<u8> {
        let rng = rand::SystemRandom::new();
        signature::EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    fn apns_key() -> ApnsSigningKey {
        ApnsSigningKey::from_p8(&pem(&p256_pkcs8()), KEY_ID, TEAM_ID).unwrap()
    }

    /// Header, claims, signing input and signature of a compact JWT.
    fn split(jwt: &str) -> (Value, Value, String, Vec<u8>) {
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "three segments");
        let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        (header, claims, format!("{}.{}", parts[0], parts[1]), sig)
    }

    /// No base64 run of the key's PEM body, however short, shows up in `text`.
    fn assert_no_key_text(text: &str, pem: &str) {
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            for chunk in line.as_bytes().chunks(12).filter(|c| c.len() == 12) {
                let chunk = std::str::from_utf8(chunk).unwrap();
                assert!(!text.contains(chunk), "{text:?} echoes key material");
            }
        }
        assert!(!text.contains("BEGIN PRIVATE KEY"), "{text:?} echoes the PEM");
    }

    fn assert_error_is_clean(err: &CredentialError, pem: &str) {
        assert_no_key_text(&err.to_string(), pem);
        assert_no_key_text(&format!("{err:?}"), pem);
    }

    // -----------------------------------------------------------------------------------
    // APNs key
    // -----------------------------------------------------------------------------------

    #[test]
    fn apns_token_has_exact_header_and_claims_and_verifies() {
        let key = apns_key();
        let jwt = key.sign(now()).unwrap();
        let (header, claims, input, sig) = split(&jwt);
        assert_eq!(header, json!({ "alg": "ES256", "kid": KEY_ID }));
        assert_eq!(claims, json!({ "iss": TEAM_ID, "iat": 1_750_000_000 }));
        assert_eq!(sig.len(), 64, "ES256 signatures are r || s, 64 bytes");
        let public = UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, key.public_key());
        public.verify(input.as_bytes(), &sig).unwrap();
        // A different key does not verify it.
        let other = apns_key();
        let wrong = UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, other.public_key());
        assert!(wrong.verify(input.as_bytes(), &sig).is_err());
    }

    #[test]
    fn apns_key_without_public_key_is_recognised_and_the_documented_fix_works() {
        let err = ApnsSigningKey::from_p8(TEST_P256_NO_PUBLIC_P8, KEY_ID, TEAM_ID).unwrap_err();
        assert_eq!(err, CredentialError::ApnsKeyWithoutPublicKey);
        assert_error_is_clean(&err, TEST_P256_NO_PUBLIC_P8);
        assert!(err.to_string().contains("openssl pkcs8 -topk8 -nocrypt"));

        let key = ApnsSigningKey::from_p8(TEST_P256_FULL_P8, KEY_ID, TEAM_ID).unwrap();
        assert_eq!(key.public_key(), STANDARD_LENIENT.decode(TEST_P256_PUBLIC_B64).unwrap());
        let (_, _, input, sig) = split(&key.sign(now()).unwrap());
        let public = UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, key.public_key());
        public.verify(input.as_bytes(), &sig).unwrap();
    }

    #[test]
    fn der_walker_reads_public_key_presence() {
        let der = |pem| pkcs8_der_from_pem(pem, "t").unwrap();
        assert_eq!(ec_pkcs8_has_public_key(&der(TEST_P256_NO_PUBLIC_P8)), Some(false));
        assert_eq!(ec_pkcs8_has_public_key(&der(TEST_P256_FULL_P8)), Some(true));
        assert_eq!(ec_pkcs8_has_public_key(&p256_pkcs8()), Some(true));
        assert_eq!(ec_pkcs8_has_public_key(b"\x30\x05\x02"), None);
        assert_eq!(ec_pkcs8_has_public_key(&[]), None);
    }

    #[test]
    fn apns_ids_are_validated_without_echo() {
        let pem = pem(&p256_pkcs8());
        for (key_id, team_id, field) in [
            ("ABC123DEF", TEAM_ID, "key id"),
            ("ABC123DEFGH", TEAM_ID, "key id"),
            ("ABC-23DEFG", TEAM_ID, "key id"),
            ("", TEAM_ID, "key id"),
            (KEY_ID, "TEAM12345Ä", "team id"),
            (KEY_ID, "TEAM 23456", "team id"),
        ] {
            let err = ApnsSigningKey::from_p8(&pem, key_id, team_id).unwrap_err();
            assert_eq!(err, CredentialError::InvalidApnsId { field });
            assert_error_is_clean(&err, &pem);
        }
        // Pasting the key into the id field does not echo it either.
        let err = ApnsSigningKey::from_p8(&pem, &pem, TEAM_ID).unwrap_err();
        assert_error_is_clean(&err, &pem);
        // Surrounding whitespace (a secret's trailing newline) is dropped.
        let key = ApnsSigningKey::from_p8(&pem, " ABC123DEFG\n", "TEAM123456\n").unwrap();
        assert_eq!((key.key_id(), key.team_id()), (KEY_ID, TEAM_ID));
    }

    #[test]
    fn apns_bad_keys_are_refused_without_echo() {
        let err = ApnsSigningKey::from_p8("not a key", KEY_ID, TEAM_ID).unwrap_err();
        assert_eq!(err, CredentialError::Pem { what: "APNs key" });

        let corrupt = TEST_P256_FULL_P8.replace("MIGHAgEA", "MIGH!gEA");
        let err = ApnsSigningKey::from_p8(&corrupt, KEY_ID, TEAM_ID).unwrap_err();
        assert_eq!(err, CredentialError::Pem { what: "APNs key" });
        assert_error_is_clean(&err, &corrupt);

        let err = ApnsSigningKey::from_p8(TEST_RSA_PKCS8_PEM, KEY_ID, TEAM_ID).unwrap_err();
        assert!(matches!(err, CredentialError::InvalidKey { what: "APNs key", .. }), "{err:?}");
        assert_error_is_clean(&err, TEST_RSA_PKCS8_PEM);

        let rng = rand::SystemRandom::new();
        let p384 = signature::EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        let p384 = pem(p384.as_ref());
        let err = ApnsSigningKey::from_p8(&p384, KEY_ID, TEAM_ID).unwrap_err();
        assert_eq!(err, CredentialError::InvalidKey { what: "APNs key", reason: "WrongAlgorithm".into() });
        assert_error_is_clean(&err, &p384);

        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA==\n-----END EC PRIVATE KEY-----\n";
        let err = ApnsSigningKey::from_p8(sec1, KEY_ID, TEAM_ID).unwrap_err();
        assert!(err.to_string().contains("openssl pkcs8 -topk8 -nocrypt"));
    }

    #[test]
    fn apns_pem_with_escaped_newlines_and_crlf_is_read() {
        let pem = pem(&p256_pkcs8());
        ApnsSigningKey::from_p8(&pem.replace('\n', "\\n"), KEY_ID, TEAM_ID).unwrap();
        ApnsSigningKey::from_p8(&pem.replace('\n', "\r\n"), KEY_ID, TEAM_ID).unwrap();
    }

    #[test]
    fn apns_debug_redacts_the_key() {
        let pem = pem(&p256_pkcs8());
        let key = ApnsSigningKey::from_p8(&pem, KEY_ID, TEAM_ID).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains(KEY_ID) && debug.contains("<redacted>"));
        assert_no_key_text(&debug, &pem);
        let cache = ApnsTokenCache::with_default_refresh(key);
        let jwt = cache.bearer(now()).unwrap();
        let debug = format!("{cache:?}");
        assert_no_key_text(&debug, &pem);
        assert!(!debug.contains(&jwt) && !debug.contains(jwt.split('.').nth(2).unwrap()));
    }

    // -----------------------------------------------------------------------------------
    // APNs cache
    // -----------------------------------------------------------------------------------

    #[test]
    fn apns_refresh_interval_must_be_20_to_60_minutes() {
        for minutes in [20, 40, 60] {
            let cache = ApnsTokenCache::new(apns_key(), Duration::from_secs(minutes * 60)).unwrap();
            assert_eq!(cache.refresh_after().as_secs(), minutes * 60);
        }
        for seconds in [0, 20 * 60 - 1, 60 * 60 + 1, 24 * 3600] {
            let err = ApnsTokenCache::new(apns_key(), Duration::from_secs(seconds)).unwrap_err();
            assert_eq!(err, CredentialError::ApnsRefreshInterval { seconds });
        }
        assert_eq!(ApnsTokenCache::with_default_refresh(apns_key()).refresh_after(), APNS_DEFAULT_REFRESH);
    }

    #[test]
    fn apns_token_is_reused_until_refresh_after() {
        let cache = ApnsTokenCache::with_default_refresh(apns_key());
        assert_eq!(cache.tokens_issued(), 0);
        let first = cache.bearer(now()).unwrap();
        assert_eq!(cache.bearer(at(1)).unwrap(), first);
        assert_eq!(cache.bearer(at(40 * 60 - 1)).unwrap(), first);
        assert_eq!(cache.tokens_issued(), 1);

        let second = cache.bearer(at(40 * 60)).unwrap();
        assert_ne!(second, first);
        assert_eq!(split(&second).1, json!({ "iss": TEAM_ID, "iat": 1_750_000_000 + 40 * 60 }));
        assert_eq!(cache.bearer(at(79 * 60)).unwrap(), second);
        assert_eq!(cache.tokens_issued(), 2);
    }

    #[test]
    fn apns_invalidate_renews_once_and_not_right_after_issuing() {
        let cache = ApnsTokenCache::with_default_refresh(apns_key());
        let first = cache.bearer(now()).unwrap();
        // Too young: a fresh token rejected is not fixed by another one.
        assert!(!cache.invalidate(&first, at(59)));
        assert_eq!(cache.bearer(at(59)).unwrap(), first);

        assert!(cache.invalidate(&first, at(300)));
        // The other records of the batch report the same token: no further effect.
        assert!(!cache.invalidate(&first, at(300)));
        let second = cache.bearer(at(301)).unwrap();
        assert_ne!(second, first);
        assert_eq!(split(&second).1["iat"], json!(1_750_000_301));
        assert!(!cache.invalidate(&first, at(400)), "a stale token does not drop the new one");
        assert!(!cache.invalidate(&second, at(330)), "guard applies to the new token too");
        assert_eq!(cache.bearer(at(400)).unwrap(), second);
        assert!(!cache.invalidate("not.a.token", at(4000)));
        assert_eq!(cache.tokens_issued(), 2);
    }

    #[test]
    fn apns_concurrent_callers_share_one_token() {
        const THREADS: usize = 10;
        let cache = ApnsTokenCache::with_default_refresh(apns_key());
        let barrier = Barrier::new(THREADS);
        let tokens: HashSet<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        cache.bearer(now()).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(tokens.len(), 1);
        assert_eq!(cache.tokens_issued(), 1);
    }

    #[test]
    fn cache_types_are_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ApnsTokenCache>();
        assert_send_sync::<ServiceAccount>();
        assert_send_sync::<FcmTokenCache>();
    }

    // -----------------------------------------------------------------------------------
    // FCM service account
    // -----------------------------------------------------------------------------------

    fn account_json() -> Value {
        json!({
            "type": "service_account",
            "project_id": "example-project",
            "private_key_id": PRIVATE_KEY_ID,
            "private_key": TEST_RSA_PKCS8_PEM,
            "client_email": CLIENT_EMAIL,
            "client_id": "123456789012345678901",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": TOKEN_URI,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com"
        })
    }

    fn account() -> ServiceAccount {
        ServiceAccount::from_json(&account_json().to_string()).unwrap()
    }

    #[test]
    fn service_account_is_read() {
        let account = account();
        assert_eq!(account.project_id(), "example-project");
        assert_eq!(account.private_key_id(), PRIVATE_KEY_ID);
        assert_eq!(account.client_email(), CLIENT_EMAIL);
        assert_eq!(account.token_uri(), TOKEN_URI);
        assert_eq!(account.public_key(), STANDARD_LENIENT.decode(TEST_RSA_PUBLIC_DER_B64).unwrap());
        let debug = format!("{account:?}");
        assert!(debug.contains("<redacted>"));
        assert_no_key_text(&debug, TEST_RSA_PKCS8_PEM);
    }

    #[test]
    fn fcm_assertion_has_exact_header_and_claims_and_verifies() {
        let account = account();
        let jwt = account.assertion(now()).unwrap();
        let (header, claims, input, sig) = split(&jwt);
        assert_eq!(header, json!({ "alg": "RS256", "typ": "JWT", "kid": PRIVATE_KEY_ID }));
        assert_eq!(
            claims,
            json!({
                "iss": CLIENT_EMAIL,
                "scope": "https://www.googleapis.com/auth/firebase.messaging",
                "aud": TOKEN_URI,
                "iat": 1_750_000_000,
                "exp": 1_750_003_600,
            })
        );
        assert_eq!(sig.len(), 256);
        let public_der = STANDARD_LENIENT.decode(TEST_RSA_PUBLIC_DER_B64).unwrap();
        let public = UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &public_der);
        public.verify(input.as_bytes(), &sig).unwrap();
        assert!(public.verify(format!("{input}x").as_bytes(), &sig).is_err());
    }

    #[test]
    fn fcm_token_request_body_is_form_encoded() {
        let account = account();
        let body = account.token_request_body(now()).unwrap();
        let prefix = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
        let jwt = body.strip_prefix(prefix).unwrap();
        // RSASSA-PKCS1-v1_5 is deterministic: the same grant as `assertion`.
        assert_eq!(jwt, account.assertion(now()).unwrap());
        assert!(jwt.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')));
        assert_eq!(form_encode("a b&c=d/é~"), "a%20b%26c%3Dd%2F%C3%A9~");
    }

    #[test]
    fn service_account_accepts_http_token_uri_for_local_tests() {
        let mut json = account_json();
        json["token_uri"] = json!("http://127.0.0.1:8080/token");
        let account = ServiceAccount::from_json(&json.to_string()).unwrap();
        assert_eq!(split(&account.assertion(now()).unwrap()).1["aud"], json!("http://127.0.0.1:8080/token"));
    }

    #[test]
    fn service_account_errors_name_the_field_and_never_the_key() {
        let key = TEST_RSA_PKCS8_PEM;
        let check = |json: String, expected: CredentialError| {
            let err = ServiceAccount::from_json(&json).unwrap_err();
            assert_eq!(err, expected);
            assert_error_is_clean(&err, key);
        };
        let with = |field: &str, value: Value| {
            let mut json = account_json();
            json[field] = value;
            json.to_string()
        };
        let without = |field: &str| {
            let mut json = account_json();
            json.as_object_mut().unwrap().remove(field);
            json.to_string()
        };
        for field in ["type", "project_id", "private_key_id", "private_key", "client_email", "token_uri"] {
            let expected = CredentialError::MissingField {
                field: match field {
                    "type" => "type",
                    "project_id" => "project_id",
                    "private_key_id" => "private_key_id",
                    "private_key" => "private_key",
                    "client_email" => "client_email",
                    _ => "token_uri",
                },
            };
            check(without(field), expected.clone());
            check(with(field, json!(42)), expected.clone());
            check(with(field, json!([key])), expected);
        }
        check(with("type", json!("authorized_user")), CredentialError::NotServiceAccount);
        // The key pasted into the wrong field is not echoed either.
        check(with("type", json!(key)), CredentialError::NotServiceAccount);
        let invalid = |field, expected| CredentialError::InvalidField { field, expected };
        check(with("project_id", json!(key)), invalid("project_id", "a Google Cloud project id"));
        check(with("project_id", json!("a/b")), invalid("project_id", "a Google Cloud project id"));
        check(with("project_id", json!("")), invalid("project_id", "a Google Cloud project id"));
        check(with("private_key_id", json!(key)), invalid("private_key_id", "letters and digits"));
        check(with("client_email", json!(key)), invalid("client_email", "an email address"));
        check(with("client_email", json!("no-at-sign")), invalid("client_email", "an email address"));
        check(with("token_uri", json!(key)), invalid("token_uri", "an absolute http(s) URL"));
        check(with("token_uri", json!("ftp://host/token")), invalid("token_uri", "an absolute http(s) URL"));
        check(with("token_uri", json!("https:///token")), invalid("token_uri", "an absolute http(s) URL"));

        let pem_error = CredentialError::Pem { what: "service account private_key" };
        check(with("private_key", json!("not a key")), pem_error.clone());
        check(with("private_key", json!(key.replace("-----END PRIVATE KEY-----", ""))), pem_error.clone());
        let corrupt = key.replacen("MIIEv", "MII!v", 1);
        check(with("private_key", json!(corrupt)), pem_error);
        let pkcs1 =
            key.replace("BEGIN PRIVATE KEY", "BEGIN RSA PRIVATE KEY").replace("END PRIVATE KEY", "END RSA PRIVATE KEY");
        let err = ServiceAccount::from_json(&with("private_key", json!(pkcs1))).unwrap_err();
        assert!(err.to_string().contains("openssl pkcs8"));
        assert_error_is_clean(&err, key);
        // A P-256 key where an RSA key belongs: ring's classification only.
        let ec = pem(&p256_pkcs8());
        let err = ServiceAccount::from_json(&with("private_key", json!(ec))).unwrap_err();
        assert!(matches!(err, CredentialError::InvalidKey { what: "service account private_key", .. }), "{err:?}");
        assert_error_is_clean(&err, &ec);
        // Truncated DER inside a well-formed PEM.
        let short = pem(&pkcs8_der_from_pem(key, "t").unwrap()[..600]);
        let err = ServiceAccount::from_json(&with("private_key", json!(short))).unwrap_err();
        assert!(matches!(err, CredentialError::InvalidKey { .. }), "{err:?}");
        assert_error_is_clean(&err, key);
    }

    #[test]
    fn service_account_json_syntax_errors_give_a_position_only() {
        let key = TEST_RSA_PKCS8_PEM;
        let text = account_json().to_string();
        // Cut inside the private key.
        let cut = text.find("MIIEv").unwrap() + 200;
        let err = ServiceAccount::from_json(&text[..cut]).unwrap_err();
        assert!(matches!(err, CredentialError::ServiceAccountSyntax { .. }), "{err:?}");
        assert_error_is_clean(&err, key);
        // Raw newlines inside the key string are invalid JSON.
        let raw = format!(r#"{{"type":"service_account","private_key":"{key}"}}"#);
        let err = ServiceAccount::from_json(&raw).unwrap_err();
        assert!(matches!(err, CredentialError::ServiceAccountSyntax { .. }), "{err:?}");
        assert_error_is_clean(&err, key);
        let err = ServiceAccount::from_json(&json!([key]).to_string()).unwrap_err();
        assert_eq!(err, CredentialError::ServiceAccountNotObject);
        assert_error_is_clean(&err, key);
    }

    // -----------------------------------------------------------------------------------
    // FCM access token
    // -----------------------------------------------------------------------------------

    const ACCESS_TOKEN: &str = "ya29.c.SECRET-access-token_value";

    #[test]
    fn access_token_is_read_from_the_token_response() {
        let answer = json!({ "access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer" });
        let token = AccessToken::from_token_response(&answer.to_string(), now()).unwrap();
        assert_eq!(token.secret(), ACCESS_TOKEN);
        assert_eq!(token.expires_at(), at(3599));
        let debug = format!("{token:?}");
        assert!(!debug.contains("SECRET") && debug.contains("<redacted>"));

        let answer = json!({ "access_token": ACCESS_TOKEN, "expires_in": "3600", "token_type": "bearer" });
        assert_eq!(AccessToken::from_token_response(&answer.to_string(), now()).unwrap().expires_at(), at(3600));
    }

    #[test]
    fn token_response_errors_never_carry_the_token() {
        let problem = |json: Value| {
            let err = AccessToken::from_token_response(&json.to_string(), now()).unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(!text.contains("SECRET"), "{text}");
            err
        };
        let good = json!({ "access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer" });
        let with = |field: &str, value: Value| {
            let mut json = good.clone();
            json[field] = value;
            json
        };
        let without = |field: &str| {
            let mut json = good.clone();
            json.as_object_mut().unwrap().remove(field);
            json
        };
        for json in [
            without("access_token"),
            with("access_token", json!("")),
            with("access_token", json!("ya29 SECRET")),
            with("access_token", json!("ya29\r\nX-SECRET: 1")),
            with("access_token", json!(7)),
            without("token_type"),
            with("token_type", json!("MAC")),
            without("expires_in"),
            with("expires_in", json!(0)),
            with("expires_in", json!(-5)),
            with("expires_in", json!(1.5)),
            with("expires_in", json!("soon")),
            json!([ACCESS_TOKEN]),
        ] {
            assert!(matches!(problem(json), CredentialError::TokenResponse { .. }));
        }
        let err = AccessToken::from_token_response("{\"access_token\": \"ya29.SECRET", now()).unwrap_err();
        assert_eq!(err, CredentialError::TokenResponse { problem: "not valid JSON" });
        let err = problem(json!({ "error": "invalid_grant", "error_description": "Invalid JWT Signature." }));
        assert_eq!(err, CredentialError::TokenEndpoint { code: "invalid_grant".into() });
        assert!(!err.to_string().contains("Signature"));
        let err = problem(json!({ "error": "bad code\n<script>", "access_token": ACCESS_TOKEN }));
        assert_eq!(err, CredentialError::TokenEndpoint { code: "badcodescript".into() });
        let err = problem(with("expires_in", json!(i64::MAX)));
        assert_eq!(err, CredentialError::TimeOutOfRange);
    }

    // -----------------------------------------------------------------------------------
    // FCM cache
    // -----------------------------------------------------------------------------------

    #[test]
    fn fcm_cache_hands_out_the_token_until_five_minutes_before_expiry() {
        let mut cache = FcmTokenCache::new();
        assert_eq!(cache.current(now()), None);
        cache.store(AccessToken::new(ACCESS_TOKEN, at(3600)));
        assert_eq!(cache.current(now()).as_deref(), Some(ACCESS_TOKEN));
        assert_eq!(cache.current(at(3600 - 300 - 1)).as_deref(), Some(ACCESS_TOKEN));
        assert_eq!(cache.current(at(3600 - 300)), None);
        assert_eq!(cache.current(at(3600)), None);
        assert_eq!(cache.current(at(7200)), None);
        assert_eq!(cache.tokens_stored(), 1);

        // A token granted for under five minutes is never handed out.
        cache.store(AccessToken::new("short", at(299)));
        assert_eq!(cache.current(now()), None);

        let debug = format!("{cache:?}");
        assert!(!debug.contains("short") && !debug.contains("SECRET"), "{debug}");
    }

    #[test]
    fn fcm_cache_invalidate() {
        let mut cache = FcmTokenCache::new();
        cache.store(AccessToken::new(ACCESS_TOKEN, at(3600)));
        cache.invalidate();
        assert_eq!(cache.current(now()), None);
        cache.invalidate();

        cache.store(AccessToken::new("old", at(3600)));
        cache.store(AccessToken::new("new", at(3700)));
        // A 401 for the token a request used before the refresh keeps the new one.
        assert!(!cache.invalidate_token("old"));
        assert_eq!(cache.current(now()).as_deref(), Some("new"));
        assert!(cache.invalidate_token("new"));
        assert_eq!(cache.current(now()), None);
        assert!(!cache.invalidate_token("new"));
        assert_eq!(cache.tokens_stored(), 3);
    }
}
