//! Local stand-ins for the three push providers, served on loopback ports: FCM HTTP v1 with
//! Google's OAuth token endpoint, APNs (HTTP/2 cleartext with prior knowledge, as APNs speaks
//! only HTTP/2) and a Web Push service (RFC 8030 with RFC 8292 VAPID), over plain HTTP/1.1 or,
//! as herald requires of subscription endpoints, over HTTPS.
//!
//! Each stand-in checks what the real provider checks and the code under test could get
//! wrong: the signature of every JWT, verified with `ring` against the public key the test
//! registered (a wrong key, a tampered signature, an expired token are all refused, with the
//! provider's own status and error body), the claims, and the request headers and body
//! limits. It records every request (headers, raw body, whether its credentials were good)
//! and answers the provider's success, or what a test scripted for that registration token,
//! device token or subscription.
//!
//! A scripted answer replaces the success of a request that passed every check: a request
//! the stand-in refuses gets the refusal and leaves the script in place. Per key,
//! [`script`](FcmStandIn::script)ed answers are used first, in order, one per request; then a
//! [`script_always`](FcmStandIn::script_always) answer, if any; then the success.
//!
//! The Web Push body is recorded as sent (`aes128gcm`): the test decrypts it with the
//! subscription's private key.
//!
//! The stand-ins serve with hyper directly (not axum): APNs needs an HTTP/2-only server
//! without TLS, which a router does not offer.
//!
//! The HTTPS Web Push stand-in ([`WebPushStandIn::start_tls`]) presents a certificate for
//! `IP:127.0.0.1` and `DNS:localhost` issued by a TEST-ONLY CA (`fixtures/push-tls`, made by
//! its `generate.sh`); a client trusts it through [`test_ca_file`] (herald: `SSL_CERT_FILE`)
//! or [`TEST_CA_PEM`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

/// How long an APNs provider token stays good after its `iat`.
const APNS_TOKEN_LIFETIME: i64 = 3600;
/// How far in the future an APNs `iat` may be (the sender's clock may run a little ahead).
const APNS_CLOCK_SKEW: i64 = 60;
/// Largest APNs payload (non-VoIP) and largest Web Push body, in bytes.
const MAX_PAYLOAD: usize = 4096;
/// Largest `apns-collapse-id`, in bytes.
const MAX_COLLAPSE_ID: usize = 64;
/// Largest Web Push `topic`, in characters (RFC 8030 §5.4).
const MAX_TOPIC: usize = 32;
/// Furthest a VAPID `exp` may be ahead of now (RFC 8292 §2).
const MAX_VAPID_LIFETIME: i64 = 24 * 60 * 60;
/// Google's tolerance for the grant's `iat` against its own clock, and the grant's longest life.
const GRANT_CLOCK_SKEW: u64 = 300;
const MAX_GRANT_LIFETIME: i64 = 3600;
/// Scope an FCM access token needs.
const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// RFC 7523 grant type of the token request.
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Longest a client may take over its TLS handshake before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request body read; a bigger one is refused unread (413), well above every limit
/// the stand-ins check themselves.
const MAX_READ: usize = 1 << 20;
/// The APNs push types Apple documents; anything else is `InvalidPushType`.
const APNS_PUSH_TYPES: &[&str] = &[
    "alert",
    "background",
    "controls",
    "complication",
    "fileprovider",
    "liveactivity",
    "location",
    "mdm",
    "pushtotalk",
    "voip",
    "widgets",
];

/// What a stand-in answers: a scripted answer, or built by the stand-in itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// `status` with a JSON body and `content-type: application/json`.
    pub fn json(status: u16, body: &str) -> Self {
        Answer {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// This answer with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    fn text(status: u16, body: &str) -> Self {
        Answer {
            status,
            headers: vec![("content-type".to_owned(), "text/plain; charset=utf-8".to_owned())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn empty(status: u16) -> Self {
        Answer { status, headers: Vec::new(), body: Vec::new() }
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

/// One request a stand-in received, whatever it answered.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// In arrival order, names lowercase.
    pub headers: Vec<(String, String)>,
    /// As received (for Web Push, still encrypted).
    pub body: Vec<u8>,
    /// Whether its credentials passed every check (the JWT, or FCM's access token).
    pub auth_ok: bool,
    /// The status the stand-in answered.
    pub status: u16,
}

impl Recorded {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON; `Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Scripted answers of one stand-in, by key.
#[derive(Default)]
struct Scripts {
    /// Used one per request, in order.
    once: HashMap<String, VecDeque<Answer>>,
    /// Used when `once` has nothing left for the key.
    always: HashMap<String, Answer>,
}

impl Scripts {
    fn next(&mut self, key: &str) -> Option<Answer> {
        if let Some(answer) = self.once.get_mut(key).and_then(VecDeque::pop_front) {
            return Some(answer);
        }
        self.always.get(key).cloned()
    }
}

/// What every stand-in keeps: its requests (with the key each concerned), its scripts and
/// the JWTs it has seen.
#[derive(Default)]
struct Core {
    records: Mutex<Vec<(Option<String>, Recorded)>>,
    scripts: Mutex<Scripts>,
    jwts: Mutex<HashSet<String>>,
}

impl Core {
    fn record(&self, key: Option<String>, request: Recorded) {
        lock(&self.records).push((key, request));
    }

    fn records(&self, keep: impl Fn(&Recorded) -> bool) -> Vec<Recorded> {
        lock(&self.records).iter().map(|(_, r)| r).filter(|r| keep(r)).cloned().collect()
    }

    fn count(&self, key: &str) -> usize {
        lock(&self.records).iter().filter(|(k, _)| k.as_deref() == Some(key)).count()
    }

    fn script(&self, key: &str, answer: Answer) {
        lock(&self.scripts).once.entry(key.to_owned()).or_default().push_back(answer);
    }

    fn script_always(&self, key: &str, answer: Answer) {
        lock(&self.scripts).always.insert(key.to_owned(), answer);
    }

    fn scripted(&self, key: &str) -> Option<Answer> {
        lock(&self.scripts).next(key)
    }

    fn saw_jwt(&self, jwt: &str) {
        lock(&self.jwts).insert(jwt.to_owned());
    }

    fn distinct_jwts(&self) -> usize {
        lock(&self.jwts).len()
    }
}

/// One provider's checks, behind the shared HTTP plumbing.
trait Provider: Send + Sync + 'static {
    fn core(&self) -> &Core;

    /// Checks a request, sets its `auth_ok`, and returns the key it concerns (registration
    /// token, device token, subscription id) with the answer.
    fn answer(&self, request: &mut Recorded) -> (Option<String>, Answer);
}

#[derive(Clone, Copy)]
enum Protocol {
    Http1,
    /// HTTP/2 with prior knowledge, no TLS: an HTTP/1.1 client gets a protocol error.
    Http2,
}

/// A stand-in's accept loop; dropping it closes the listener and every open connection.
struct Server {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a push provider stand-in");
    let addr = listener.local_addr().expect("push provider stand-in address");
    (listener, addr)
}

/// Serves `provider` on `listener`: every connection in TLS first when `tls` is given.
fn spawn_server<P: Provider>(
    listener: tokio::net::TcpListener,
    provider: Arc<P>,
    protocol: Protocol,
    tls: Option<TlsAcceptor>,
) -> Server {
    Server { task: tokio::spawn(accept(listener, provider, protocol, tls)) }
}

async fn accept<P: Provider>(
    listener: tokio::net::TcpListener,
    provider: Arc<P>,
    protocol: Protocol,
    tls: Option<TlsAcceptor>,
) {
    // Connections live in the set so that aborting this task ends them too: a client's
    // idle HTTP/2 connection must not outlive the stand-in.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _)) => match &tls {
                None => {
                    connections.spawn(serve(stream, provider.clone(), protocol));
                }
                // The handshake runs in the connection's task: a slow client holds up no other.
                Some(tls) => {
                    connections.spawn(serve_tls(tls.clone(), stream, provider.clone(), protocol));
                }
            },
            Err(e) => {
                // Out of file descriptors or similar: back off instead of spinning.
                eprintln!("herald-e2e push stand-in: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_tls<P: Provider>(tls: TlsAcceptor, stream: tokio::net::TcpStream, provider: Arc<P>, protocol: Protocol) {
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
        Ok(Ok(stream)) => serve(stream, provider, protocol).await,
        // Said on stderr (shown with a failing test's output): a client that does not trust
        // the test CA, or sent plain HTTP, is otherwise only a connection error on its side.
        Ok(Err(e)) => eprintln!("herald-e2e push stand-in: TLS handshake failed: {e}"),
        Err(_) => eprintln!("herald-e2e push stand-in: TLS handshake timed out"),
    }
}

async fn serve<P, S>(stream: S, provider: Arc<P>, protocol: Protocol)
where
    P: Provider,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let provider = provider.clone();
        async move { Ok::<_, Infallible>(respond(&*provider, req).await) }
    });
    let io = TokioIo::new(stream);
    // Errors are the client's business (it closed, sent garbage, spoke the wrong protocol).
    let _ = match protocol {
        Protocol::Http1 => hyper::server::conn::http1::Builder::new().serve_connection(io, service).await,
        Protocol::Http2 => {
            hyper::server::conn::http2::Builder::new(TokioExecutor::new()).serve_connection(io, service).await
        }
    };
}

async fn respond<P: Provider>(provider: &P, req: hyper::Request<hyper::body::Incoming>) -> hyper::Response<Body> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(Body::new(body), MAX_READ).await;
    let mut request = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        version: format!("{:?}", parts.version),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: body.as_ref().map(|b| b.to_vec()).unwrap_or_default(),
        auth_ok: false,
        status: 0,
    };
    let (key, answer) = match body {
        Ok(_) => provider.answer(&mut request),
        Err(_) => (None, Answer::text(413, "request body too large or unreadable\n")),
    };
    request.status = answer.status;
    provider.core().record(key, request);
    into_response(answer)
}

fn into_response(answer: Answer) -> hyper::Response<Body> {
    use axum::http::{HeaderName, HeaderValue, StatusCode};
    let mut response = hyper::Response::new(Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &answer.headers {
        // A malformed scripted header is left out rather than failing the whole answer.
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// A compact JWS (`header.payload.signature`), decoded but not yet trusted.
struct Jwt {
    header: Value,
    claims: Value,
    /// `header.payload` as sent: what the signature covers.
    signing_input: String,
    signature: Vec<u8>,
}

impl Jwt {
    fn parse(token: &str) -> Option<Jwt> {
        let mut parts = token.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        // JWS uses base64url without padding (RFC 7515 §2): padded input is malformed.
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
        let object = |bytes: Vec<u8>| serde_json::from_slice::<Value>(&bytes).ok().filter(Value::is_object);
        Some(Jwt {
            header: object(decode(header)?)?,
            claims: object(decode(payload)?)?,
            signing_input: format!("{header}.{payload}"),
            signature: decode(signature)?,
        })
    }

    fn verifies(&self, algorithm: &'static dyn VerificationAlgorithm, public_key: &[u8]) -> bool {
        UnparsedPublicKey::new(algorithm, public_key).verify(self.signing_input.as_bytes(), &self.signature).is_ok()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    fn claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A NumericDate claim (whole seconds; a fraction is dropped).
    fn time(&self, name: &str) -> Option<i64> {
        let value = self.claims.get(name)?;
        value.as_i64().or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
    }
}

// ---------------------------------------------------------------------------------------
// FCM
// ---------------------------------------------------------------------------------------

/// FCM HTTP v1 and Google's OAuth 2.0 token endpoint, over HTTP/1.1.
///
/// `POST /token` exchanges a service account's RS256 JWT grant (RFC 7523) for an access
/// token; `POST /v1/projects/{project_id}/messages:send` accepts a message with a token it
/// issued. Scripts are keyed by registration token (`message.token`).
pub struct FcmStandIn {
    fcm: Arc<Fcm>,
    base_url: String,
    _server: Server,
}

struct Fcm {
    core: Core,
    project_id: String,
    client_email: String,
    /// DER `RSAPublicKey` (PKCS#1).
    public_key: Vec<u8>,
    /// The grant's expected `aud`.
    token_url: String,
    /// Access tokens issued and not revoked.
    issued: Mutex<HashSet<String>>,
    token_scripts: Mutex<VecDeque<Answer>>,
    tokens_issued: AtomicU64,
    messages_sent: AtomicU64,
}

impl FcmStandIn {
    /// Starts on a free loopback port, accepting grants signed by the key whose public half
    /// is `rsa_public_key_der` (DER `RSAPublicKey`, as `RsaKeyPair::public_key()` gives it).
    pub async fn start(project_id: &str, client_email: &str, rsa_public_key_der: Vec<u8>) -> FcmStandIn {
        let (listener, addr) = bind().await;
        let base_url = format!("http://{addr}");
        let fcm = Arc::new(Fcm {
            core: Core::default(),
            project_id: project_id.to_owned(),
            client_email: client_email.to_owned(),
            public_key: rsa_public_key_der,
            token_url: format!("{base_url}/token"),
            issued: Mutex::new(HashSet::new()),
            token_scripts: Mutex::new(VecDeque::new()),
            tokens_issued: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
        });
        let server = spawn_server(listener, fcm.clone(), Protocol::Http1, None);
        FcmStandIn { fcm, base_url, _server: server }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// `http://127.0.0.1:PORT/token`: the service account's `token_uri`, and the grant's `aud`.
    pub fn token_url(&self) -> String {
        self.fcm.token_url.clone()
    }

    /// `http://127.0.0.1:PORT/v1/projects/{project_id}/messages:send`
    pub fn send_url(&self) -> String {
        format!("{}/v1/projects/{}/messages:send", self.base_url, self.fcm.project_id)
    }

    /// POSTs to `/token`, whatever they were answered.
    pub fn token_fetches(&self) -> usize {
        self.token_requests().iter().filter(|r| r.method == "POST").count()
    }

    /// Every request to `/token`, in order.
    pub fn token_requests(&self) -> Vec<Recorded> {
        self.fcm.core.records(|r| r.path == "/token")
    }

    /// The next token request that presents a good grant gets this answer instead of a token.
    pub fn script_token(&self, answer: Answer) {
        lock(&self.fcm.token_scripts).push_back(answer);
    }

    /// Forgets every access token issued so far: requests bearing one get 401, as after
    /// Google expired or revoked them.
    pub fn revoke_tokens(&self) {
        lock(&self.fcm.issued).clear();
    }

    /// The next authorised, well-formed message to this registration token gets `answer`.
    pub fn script(&self, registration_token: &str, answer: Answer) {
        self.fcm.core.script(registration_token, answer);
    }

    /// Every authorised, well-formed message to this registration token gets `answer` (once
    /// the [`script`](Self::script)ed ones are used up).
    pub fn script_always(&self, registration_token: &str, answer: Answer) {
        self.fcm.core.script_always(registration_token, answer);
    }

    /// Every request to this project's send path, in order, whatever it was answered.
    pub fn messages(&self) -> Vec<Recorded> {
        self.fcm.core.records(|r| self.fcm.is_send_path(&r.path))
    }

    /// Requests to the send path for this registration token, whatever they were answered.
    pub fn sent_to(&self, registration_token: &str) -> usize {
        self.fcm.core.count(registration_token)
    }

    /// Every request the stand-in received (token, send, anything else), in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.fcm.core.records(|_| true)
    }
}

impl Provider for Fcm {
    fn core(&self) -> &Core {
        &self.core
    }

    fn answer(&self, request: &mut Recorded) -> (Option<String>, Answer) {
        if request.path == "/token" {
            if request.method != "POST" {
                return (None, oauth_error(405, "invalid_request", "The token endpoint takes POST only."));
            }
            return (None, self.token(request));
        }
        if !self.is_send_path(&request.path) {
            return (None, google_error(404, "NOT_FOUND", "Requested entity was not found."));
        }
        if request.method != "POST" {
            return (None, google_error(405, "METHOD_NOT_ALLOWED", "The send method takes POST only."));
        }
        self.send(request)
    }
}

impl Fcm {
    /// `/v1/projects/{project_id}/messages:send`, the project possibly percent-encoded (a
    /// domain-scoped project id has a colon).
    fn is_send_path(&self, path: &str) -> bool {
        path.strip_prefix("/v1/projects/")
            .and_then(|rest| rest.strip_suffix("/messages:send"))
            .is_some_and(|project| percent_decode(project) == self.project_id)
    }

    fn token(&self, request: &mut Recorded) -> Answer {
        let form = form_fields(&request.body);
        if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER_GRANT) {
            return oauth_error(400, "unsupported_grant_type", "Invalid grant_type.");
        }
        let Some(assertion) = form.get("assertion") else {
            return oauth_error(400, "invalid_grant", "Missing required parameter: assertion");
        };
        if let Err(why) = self.check_grant(assertion) {
            return oauth_error(400, "invalid_grant", why);
        }
        request.auth_ok = true;
        if let Some(answer) = lock(&self.token_scripts).pop_front() {
            return answer;
        }
        let n = self.tokens_issued.fetch_add(1, Ordering::Relaxed) + 1;
        let token = format!("ya29.standin-{n}");
        lock(&self.issued).insert(token.clone());
        Answer::json(200, &json!({ "access_token": token, "expires_in": 3599, "token_type": "Bearer" }).to_string())
    }

    /// The checks Google makes of a JWT grant, with its error descriptions.
    fn check_grant(&self, assertion: &str) -> Result<(), &'static str> {
        let jwt = Jwt::parse(assertion).ok_or("Invalid JWT: the assertion is not a signed JWT.")?;
        if jwt.header("alg") != Some("RS256") {
            return Err("Invalid JWT: the algorithm must be RS256.");
        }
        if jwt.header("kid").is_none_or(str::is_empty) {
            return Err("Invalid JWT: no key id (kid) in the header.");
        }
        if !jwt.verifies(&signature::RSA_PKCS1_2048_8192_SHA256, &self.public_key) {
            return Err("Invalid JWT Signature.");
        }
        if jwt.claim("iss") != Some(self.client_email.as_str()) {
            return Err("Invalid grant: account not found");
        }
        if !jwt.claim("scope").is_some_and(|scopes| scopes.split_whitespace().any(|s| s == FCM_SCOPE)) {
            return Err("Invalid OAuth scope or ID token audience provided.");
        }
        if jwt.claim("aud") != Some(self.token_url.as_str()) {
            return Err("Invalid JWT: Failed audience check.");
        }
        let now = unix_now();
        let timely = match (jwt.time("iat"), jwt.time("exp")) {
            (Some(iat), Some(exp)) => {
                iat.abs_diff(now) <= GRANT_CLOCK_SKEW && exp > now && exp.saturating_sub(iat) <= MAX_GRANT_LIFETIME
            }
            _ => false,
        };
        if !timely {
            return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. \
                        Check your iat and exp values in the JWT claim.");
        }
        Ok(())
    }

    fn send(&self, request: &mut Recorded) -> (Option<String>, Answer) {
        // The key is read before any check, so that refused attempts count for the token too.
        let token = serde_json::from_slice::<Value>(&request.body)
            .ok()
            .and_then(|body| body.get("message")?.get("token")?.as_str().map(str::to_owned))
            .filter(|t| !t.is_empty());
        let authorised = request
            .header("authorization")
            .and_then(|v| strip_scheme(v, "bearer"))
            .is_some_and(|t| lock(&self.issued).contains(t));
        request.auth_ok = authorised;
        if !authorised {
            let body = json!({ "error": {
                "code": 401,
                "message": "Request had invalid authentication credentials.",
                "status": "UNAUTHENTICATED",
            }});
            let answer = Answer::json(401, &body.to_string())
                .with_header("www-authenticate", "Bearer realm=\"https://accounts.google.com/\"");
            return (token, answer);
        }
        let Some(token) = token else {
            let message = if serde_json::from_slice::<Value>(&request.body).is_ok_and(|b| b.is_object()) {
                "Recipient of the message is not set."
            } else {
                "Invalid JSON payload received."
            };
            return (None, fcm_invalid_argument(message));
        };
        let answer = self.core.scripted(&token).unwrap_or_else(|| {
            let n = self.messages_sent.fetch_add(1, Ordering::Relaxed) + 1;
            Answer::json(200, &json!({ "name": format!("projects/{}/messages/{n}", self.project_id) }).to_string())
        });
        (Some(token), answer)
    }
}

/// An OAuth 2.0 error (RFC 6749 §5.2) as Google's token endpoint writes it.
fn oauth_error(status: u16, error: &str, description: &str) -> Answer {
    Answer::json(status, &json!({ "error": error, "error_description": description }).to_string())
}

/// A Google API error (`google.rpc.Status`).
fn google_error(code: u16, status: &str, message: &str) -> Answer {
    Answer::json(code, &json!({ "error": { "code": code, "message": message, "status": status } }).to_string())
}

/// FCM's 400, with its `FcmError` detail.
fn fcm_invalid_argument(message: &str) -> Answer {
    let body = json!({ "error": {
        "code": 400,
        "message": message,
        "status": "INVALID_ARGUMENT",
        "details": [{
            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": "INVALID_ARGUMENT",
        }],
    }});
    Answer::json(400, &body.to_string())
}

// ---------------------------------------------------------------------------------------
// APNs
// ---------------------------------------------------------------------------------------

/// APNs' provider API with token-based authentication, over HTTP/2 cleartext (prior
/// knowledge); it does not speak HTTP/1.1, like the real service. Scripts are keyed by
/// device token. Every answer carries `apns-id`.
pub struct ApnsStandIn {
    apns: Arc<Apns>,
    base_url: String,
    _server: Server,
}

struct Apns {
    core: Core,
    team_id: String,
    key_id: String,
    /// Uncompressed P-256 point (65 bytes).
    public_key: Vec<u8>,
    rng: ring::rand::SystemRandom,
    ids: AtomicU64,
}

impl ApnsStandIn {
    /// Starts on a free loopback port, accepting provider tokens signed by the key whose
    /// public half is `p256_public_key` (the 65-byte uncompressed point
    /// `EcdsaKeyPair::public_key()` gives).
    pub async fn start(team_id: &str, key_id: &str, p256_public_key: Vec<u8>) -> ApnsStandIn {
        let (listener, addr) = bind().await;
        let apns = Arc::new(Apns {
            core: Core::default(),
            team_id: team_id.to_owned(),
            key_id: key_id.to_owned(),
            public_key: p256_public_key,
            rng: ring::rand::SystemRandom::new(),
            ids: AtomicU64::new(0),
        });
        let server = spawn_server(listener, apns.clone(), Protocol::Http2, None);
        ApnsStandIn { apns, base_url: format!("http://{addr}"), _server: server }
    }

    /// `http://127.0.0.1:PORT` (speak HTTP/2 with prior knowledge to it).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The next accepted notification to this device token gets `answer` (with `apns-id`
    /// added unless it has one).
    pub fn script(&self, device_token: &str, answer: Answer) {
        self.apns.core.script(device_token, answer);
    }

    /// Every accepted notification to this device token gets `answer` (once the
    /// [`script`](Self::script)ed ones are used up).
    pub fn script_always(&self, device_token: &str, answer: Answer) {
        self.apns.core.script_always(device_token, answer);
    }

    /// Every request, in order, whatever it was answered.
    pub fn requests(&self) -> Vec<Recorded> {
        self.apns.core.records(|_| true)
    }

    /// Requests to `/3/device/{device_token}`, whatever they were answered.
    pub fn sent_to(&self, device_token: &str) -> usize {
        self.apns.core.count(device_token)
    }

    /// Distinct bearer tokens seen, good or bad: how often the sender minted a provider token.
    pub fn distinct_jwts(&self) -> usize {
        self.apns.core.distinct_jwts()
    }
}

impl Provider for Apns {
    fn core(&self) -> &Core {
        &self.core
    }

    fn answer(&self, request: &mut Recorded) -> (Option<String>, Answer) {
        let (key, answer) = self.check(request);
        // Errors and scripted answers name the notification too, as APNs does.
        if answer.has_header("apns-id") {
            return (key, answer);
        }
        let id = request.header("apns-id").filter(|id| is_uuid(id)).map_or_else(|| self.new_id(), str::to_owned);
        (key, answer.with_header("apns-id", &id))
    }
}

impl Apns {
    fn check(&self, request: &mut Recorded) -> (Option<String>, Answer) {
        let Some(device) = request.path.strip_prefix("/3/device/").filter(|t| !t.is_empty() && !t.contains('/')) else {
            return (None, apns_reason(404, "BadPath"));
        };
        let key = Some(device.to_owned());
        if request.method != "POST" {
            return (key, apns_reason(405, "MethodNotAllowed"));
        }
        if let Err(reason) = self.authenticate(request) {
            return (key, apns_reason(403, reason));
        }
        request.auth_ok = true;
        if let Some(reason) = header_problem(request) {
            return (key, apns_reason(400, reason));
        }
        if request.body.is_empty() {
            return (key, apns_reason(400, "PayloadEmpty"));
        }
        if request.body.len() > MAX_PAYLOAD {
            return (key, apns_reason(413, "PayloadTooLarge"));
        }
        // A JSON object with `aps` (`get` is None for anything but an object).
        let payload = serde_json::from_slice::<Value>(&request.body).ok();
        if payload.is_none_or(|p| p.get("aps").is_none()) {
            return (key, apns_reason(400, "BadPayload"));
        }
        let answer = self.core.scripted(device).unwrap_or_else(|| Answer::empty(200));
        (key, answer)
    }

    /// The provider token's checks, with the reason APNs gives for each failure.
    fn authenticate(&self, request: &Recorded) -> Result<(), &'static str> {
        const INVALID: &str = "InvalidProviderToken";
        let header = request.header("authorization").ok_or("MissingProviderToken")?;
        let token = strip_scheme(header, "bearer").ok_or(INVALID)?;
        self.core.saw_jwt(token);
        let jwt = Jwt::parse(token).ok_or(INVALID)?;
        if jwt.header("alg") != Some("ES256") || jwt.header("kid") != Some(self.key_id.as_str()) {
            return Err(INVALID);
        }
        if !jwt.verifies(&signature::ECDSA_P256_SHA256_FIXED, &self.public_key) {
            return Err(INVALID);
        }
        if jwt.claim("iss") != Some(self.team_id.as_str()) {
            return Err(INVALID);
        }
        let iat = jwt.time("iat").ok_or(INVALID)?;
        let now = unix_now();
        if iat > now.saturating_add(APNS_CLOCK_SKEW) {
            return Err(INVALID);
        }
        if now.saturating_sub(iat) > APNS_TOKEN_LIFETIME {
            return Err("ExpiredProviderToken");
        }
        Ok(())
    }

    /// A random version-4 UUID in APNs' uppercase form.
    fn new_id(&self) -> String {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; 16];
        if self.rng.fill(&mut bytes).is_err() {
            // Never seen in practice; a counter still keeps ids distinct.
            bytes[8..].copy_from_slice(&(self.ids.fetch_add(1, Ordering::Relaxed) + 1).to_be_bytes());
        }
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
        format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
    }
}

/// The first APNs request header that is missing or malformed, as APNs' reason.
fn header_problem(request: &Recorded) -> Option<&'static str> {
    if request.header("apns-id").is_some_and(|id| !is_uuid(id)) {
        return Some("BadMessageId");
    }
    if request.header("apns-topic").is_none_or(str::is_empty) {
        return Some("MissingTopic");
    }
    if !request.header("apns-push-type").is_some_and(|t| APNS_PUSH_TYPES.contains(&t)) {
        return Some("InvalidPushType");
    }
    if request.header("apns-priority").is_some_and(|p| !matches!(p, "5" | "10" | "1")) {
        return Some("BadPriority");
    }
    if request.header("apns-expiration").is_some_and(|e| e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit())) {
        return Some("BadExpirationDate");
    }
    if request.header("apns-collapse-id").is_some_and(|c| c.len() > MAX_COLLAPSE_ID) {
        return Some("BadCollapseId");
    }
    None
}

fn apns_reason(status: u16, reason: &str) -> Answer {
    Answer::json(status, &json!({ "reason": reason }).to_string())
}

/// `8-4-4-4-12` hexadecimal digits, either case: the form APNs requires of `apns-id`.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

// ---------------------------------------------------------------------------------------
// Web Push
// ---------------------------------------------------------------------------------------

/// A Web Push service (RFC 8030) requiring VAPID (RFC 8292), over HTTP/1.1, plain
/// ([`start`](Self::start)) or in TLS ([`start_tls`](Self::start_tls)). Subscriptions are
/// `/push/{id}` for any id; scripts are keyed by that id.
pub struct WebPushStandIn {
    web: Arc<WebPush>,
    _server: Server,
}

struct WebPush {
    core: Core,
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`: the `aud` every VAPID token must
    /// carry.
    origin: String,
    /// Distinct `k` values, in the order first seen.
    keys: Mutex<Vec<String>>,
    accepted: AtomicU64,
}

impl WebPushStandIn {
    /// Starts on a free loopback port, over plain HTTP/1.1 (`http://` endpoints, which herald
    /// refuses: for checking the stand-in itself, or a client that takes any scheme).
    pub async fn start() -> WebPushStandIn {
        Self::serve(None).await
    }

    /// Starts on a free loopback port, every connection in TLS (1.2 or 1.3, ALPN `http/1.1`
    /// only: a client offering only `h2` is refused in the handshake), presenting the test
    /// certificate for `IP:127.0.0.1` and `DNS:localhost`. Clients must trust [`test_ca_file`]
    /// (for herald: `SSL_CERT_FILE`); endpoints and the VAPID `aud` are then `https://`.
    pub async fn start_tls() -> WebPushStandIn {
        Self::serve(Some(test_tls_acceptor())).await
    }

    async fn serve(tls: Option<TlsAcceptor>) -> WebPushStandIn {
        let (listener, addr) = bind().await;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let web = Arc::new(WebPush {
            core: Core::default(),
            origin: format!("{scheme}://{addr}"),
            keys: Mutex::new(Vec::new()),
            accepted: AtomicU64::new(0),
        });
        let server = spawn_server(listener, web.clone(), Protocol::Http1, tls);
        WebPushStandIn { web, _server: server }
    }

    /// `http(s)://127.0.0.1:PORT/push/{id}`: a subscription's endpoint.
    pub fn endpoint(&self, id: &str) -> String {
        format!("{}/push/{id}", self.web.origin)
    }

    /// `http://127.0.0.1:PORT`, or `https://127.0.0.1:PORT` when started with
    /// [`start_tls`](Self::start_tls): the `aud` VAPID tokens must carry.
    pub fn origin(&self) -> String {
        self.web.origin.clone()
    }

    /// The next accepted push to this subscription gets `answer`.
    pub fn script(&self, id: &str, answer: Answer) {
        self.web.core.script(id, answer);
    }

    /// Every accepted push to this subscription gets `answer` (once the
    /// [`script`](Self::script)ed ones are used up).
    pub fn script_always(&self, id: &str, answer: Answer) {
        self.web.core.script_always(id, answer);
    }

    /// Every request, in order, whatever it was answered.
    pub fn requests(&self) -> Vec<Recorded> {
        self.web.core.records(|_| true)
    }

    /// Requests to `/push/{id}`, whatever they were answered.
    pub fn sent_to(&self, id: &str) -> usize {
        self.web.core.count(id)
    }

    /// Distinct VAPID public keys (`k`, as sent) seen, good or bad, in the order first seen.
    pub fn vapid_public_keys(&self) -> Vec<String> {
        lock(&self.web.keys).clone()
    }

    /// Distinct VAPID JWTs (`t`) seen, good or bad.
    pub fn distinct_jwts(&self) -> usize {
        self.web.core.distinct_jwts()
    }
}

impl Provider for WebPush {
    fn core(&self) -> &Core {
        &self.core
    }

    fn answer(&self, request: &mut Recorded) -> (Option<String>, Answer) {
        let Some(id) = request.path.strip_prefix("/push/").filter(|id| !id.is_empty() && !id.contains('/')) else {
            return (None, Answer::text(404, "no such subscription\n"));
        };
        let key = Some(id.to_owned());
        if request.method != "POST" {
            return (key, Answer::text(405, "push takes POST\n"));
        }
        if let Err((status, why)) = self.authenticate(request) {
            return (key, Answer::text(status, why));
        }
        request.auth_ok = true;
        if !request.header("ttl").is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())) {
            return (key, Answer::text(400, "TTL header missing or not a non-negative integer\n"));
        }
        if !request.header("content-encoding").is_some_and(|c| c.eq_ignore_ascii_case("aes128gcm")) {
            return (key, Answer::text(415, "content-encoding must be aes128gcm\n"));
        }
        if request.body.len() > MAX_PAYLOAD {
            return (key, Answer::text(413, "payload larger than 4096 bytes\n"));
        }
        if request.header("urgency").is_some_and(|u| !matches!(u, "very-low" | "low" | "normal" | "high")) {
            return (key, Answer::text(400, "urgency must be very-low, low, normal or high\n"));
        }
        let bad_topic = |t: &str| {
            t.is_empty()
                || t.len() > MAX_TOPIC
                || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if request.header("topic").is_some_and(bad_topic) {
            return (key, Answer::text(400, "topic must be 1 to 32 characters of the base64url alphabet\n"));
        }
        let answer = self.core.scripted(id).unwrap_or_else(|| {
            let n = self.accepted.fetch_add(1, Ordering::Relaxed) + 1;
            Answer::empty(201).with_header("location", &format!("/msg/{n}"))
        });
        (key, answer)
    }
}

impl WebPush {
    /// RFC 8292's checks of `authorization: vapid t=<JWT>, k=<key>`: 401 when absent, 403
    /// when anything is wrong with it.
    fn authenticate(&self, request: &Recorded) -> Result<(), (u16, &'static str)> {
        let refuse = |why| Err((403, why));
        let header = request.header("authorization").ok_or((401, "VAPID authorization required\n"))?;
        let Some(params) = strip_scheme(header, "vapid") else {
            return refuse("authorization scheme must be vapid\n");
        };
        let (mut token, mut key) = (None, None);
        for param in params.split(',') {
            match param.trim().split_once('=') {
                Some(("t", value)) => token = Some(value.trim()),
                Some(("k", value)) => key = Some(value.trim()),
                _ => {}
            }
        }
        let (Some(token), Some(key_b64)) = (token, key) else {
            return refuse("vapid authorization needs t= and k=\n");
        };
        self.core.saw_jwt(token);
        {
            let mut keys = lock(&self.keys);
            if !keys.iter().any(|k| k == key_b64) {
                keys.push(key_b64.to_owned());
            }
        }
        let Some(public_key) = URL_SAFE_NO_PAD
            .decode(key_b64.trim_end_matches('='))
            .ok()
            .filter(|k| k.len() == 65 && k.first() == Some(&0x04))
        else {
            return refuse("k is not a base64url uncompressed P-256 public key\n");
        };
        let Some(jwt) = Jwt::parse(token) else {
            return refuse("t is not a JWT\n");
        };
        if !jwt.header("typ").is_some_and(|t| t.eq_ignore_ascii_case("JWT")) || jwt.header("alg") != Some("ES256") {
            return refuse("JWT header must be {\"typ\":\"JWT\",\"alg\":\"ES256\"}\n");
        }
        if !jwt.verifies(&signature::ECDSA_P256_SHA256_FIXED, &public_key) {
            return refuse("JWT signature does not verify with k\n");
        }
        if jwt.claim("aud") != Some(self.origin.as_str()) {
            return refuse("aud is not this push service's origin\n");
        }
        let now = unix_now();
        match jwt.time("exp") {
            Some(exp) if exp <= now => return refuse("JWT expired\n"),
            Some(exp) if exp > now.saturating_add(MAX_VAPID_LIFETIME) => {
                return refuse("exp is more than 24 hours ahead\n");
            }
            Some(_) => {}
            None => return refuse("JWT has no exp\n"),
        }
        if !jwt.claim("sub").is_some_and(|s| s.starts_with("mailto:") || s.starts_with("https:")) {
            return refuse("sub must be a mailto: or https: URI\n");
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Test credentials
// ---------------------------------------------------------------------------------------

/// TEST-ONLY 2048-bit RSA key (PKCS#8 PEM), the same as in herald's credential tests. Never
/// use it for anything real: it is public.
pub const TEST_RSA_PKCS8_PEM: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCpK4V2SWvh9b4s
2rIm0tsneGyMgnKrxdYmNf7xCD2U/Tyz7vGxC38mJilNsTNId5gHhkJVIWHKGrer
tdtahhs56M/TA+BqsiagVGjUg8oJ/lz0lVhFU6NO1HN2xF7ggfyLVo5bXcwQU6WG
Wi6VL/qj+RrmWMYShBspcDj1SdFLNEDRBDB3Fb9uj9dO16nSEAFzZTnWhriQJ8Io
4O6IUia8mDO+5qaaH1oB87wXjyI4SJNULfQxrCAJI0w2wKUM//AbVH57g0h4CN50
XmqQQ+ymy0EprWsE2vqGlpzCQC2duuD11bTgH2IwPTXMz06FMBfdb3PqXRHR5iyp
QqBB3V9jAgMBAAECggEAD3H1R/TxIBq/J7o53LiQoLxqcLOyQ4OXBzsT0S7W7ITo
Z2cv8uGhVLrUN48vpvSgUUONR9d55allzowWgF/RGYrrepEWirdENowuXATCTAJI
u13tRrsZpGdaOWQ5Y1cK1y/qZGYebPkuGiOesClGwXTLY2+EeglMr45a7O416R8w
rnwxQN49Ye9+rhBndyTjaPjukXlezSC56+vPi3bFdBDS2sC/0C2NIXMSjcUq+lPn
Z4yUouWrLpoxZEDv4WW1arcCDylTxzxQpsy84t0++2VmjI8B72X+8nXbMi/ycp4j
ecWqo7VljjOloI71Eb9Wt0PwoPshbjbrOqJKxzBCmQKBgQDVhELS7PDui6T/tZ/1
DY0FgA8zPtfMRkYAv5PAsDZbVqFaMHXG9OfOLtj2cRuLtqcWj0ytzp3++H4K5c1n
ehmBv6MzaG0OqgJHpHBprX1baJcOtOIFIUYIAn9WBlTbsyMO0WD7a1iGtBT7H46k
L6nExSrN00eHdG8Wl7JE5pnRSQKBgQDK1GiOawo2+9K09kqSn6jCqxR/9ErnIhdc
tk2msrkSv4V5i4xshBCe4o/6xg9E+ySybDBPoRnOTvzVvMCp6Su/6IqwqJ91h214
BiRlUVMe1OUyvG84LY8SMxvOBCeIfCm7mVC0LXmkSfvegrMxi5CzjC+EknEPWGxO
lZ3m4IOXSwKBgGo6mXyTgfNM6tSGKoUjLsxTwDxAweDR/bYVmo89nG2pFjHm9lH8
OvAsAqnp8Eh8oXjp5r56k8TtINiPKLiY2OPi0nGbPNcU4nl+aKdLN5ko2i7o86KV
wV/uziegksuTvpd6uIOeDrdGFUIzmyY4yIArkHZC7c2IslRNONZq3JBxAoGAFVVD
7f7KI0BXSBtDeqp6SIdP76lVG3xVcrXl8uuHVbZ5JnCMA3nceamgtSKRxpKXqICC
kE2EdlOOejiRFw3kQRoHRE9n/ieRVvdmapWkJXEE7lItbH42NxbTDNcZBVzx0r5s
Y5cI3UO+zwd2K3bfcFMFSG9SnueQ9K793aOtk4MCgYEAsXl2qsNH+5iXB//kbbbZ
fcjV5Mjgv1mRlhERR1HAAbDkaZhXgEHkF81D970o+75YY1okOLDS8tEyz10i2+V+
5GmTiKKhOZFNBZa8QRdfGVTILgv1aw/O5dIwtIuuuyKPXekMJX66Tf011DYJbT2Y
5QsaWPM9UX1zjIGASSrPJNM=
-----END PRIVATE KEY-----
";

/// The `private_key_id` of [`test_service_account_json`] (the grant's `kid`).
pub const TEST_PRIVATE_KEY_ID: &str = "standin0000000000000000000000000000000001";

/// [`TEST_RSA_PKCS8_PEM`] as a ring key pair; `public_key().as_ref()` is what
/// [`FcmStandIn::start`] takes.
pub fn test_rsa_key() -> signature::RsaKeyPair {
    let base64: String = TEST_RSA_PKCS8_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(base64).expect("TEST_RSA_PKCS8_PEM is base64");
    signature::RsaKeyPair::from_pkcs8(&der).expect("TEST_RSA_PKCS8_PEM is an RSA PKCS#8 key")
}

/// A Google service-account key file for [`TEST_RSA_PKCS8_PEM`]: what herald reads to sign
/// its FCM grants (point `token_uri` at [`FcmStandIn::token_url`]).
pub fn test_service_account_json(project_id: &str, client_email: &str, token_uri: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": TEST_PRIVATE_KEY_ID,
        "private_key": TEST_RSA_PKCS8_PEM,
        "client_email": client_email,
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    })
    .to_string()
}

/// The TEST-ONLY CA that issued the HTTPS Web Push stand-in's certificate (PEM): what a client
/// of [`WebPushStandIn::start_tls`] trusts. Its key was thrown away; never trust it outside tests.
pub const TEST_CA_PEM: &str = include_str!("../fixtures/push-tls/ca.pem");

/// The stand-in's end-entity certificate (`IP:127.0.0.1`, `DNS:localhost`, serverAuth) and
/// its P-256 key (PKCS#8), issued by [`TEST_CA_PEM`] and valid from 2000 to 2126.
const TEST_SERVER_CERT_PEM: &str = include_str!("../fixtures/push-tls/server.pem");
const TEST_SERVER_KEY_PEM: &str = include_str!("../fixtures/push-tls/server.key.pem");

/// The absolute path of a PEM file holding [`TEST_CA_PEM`] alone (a fixture of this crate):
/// start herald with `SSL_CERT_FILE` set to it to make it trust [`WebPushStandIn::start_tls`]
/// (rustls-native-certs then reads that file instead of the system store).
pub fn test_ca_file() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/push-tls/ca.pem"))
}

/// A TLS acceptor presenting the test certificate, with its own ring provider (no process-wide
/// default needed), TLS 1.2 and 1.3, ALPN `http/1.1`.
fn test_tls_acceptor() -> TlsAcceptor {
    let chain =
        vec![CertificateDer::from_pem_slice(TEST_SERVER_CERT_PEM.as_bytes()).expect("the test server certificate")];
    let key = PrivateKeyDer::from_pem_slice(TEST_SERVER_KEY_PEM.as_bytes()).expect("the test server key");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("the test certificate and key match");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

// A test that panicked while holding the lock must not hide its own failure behind a poison error.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Unix seconds now (the stand-ins check tokens against the real clock, as providers do).
fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The credentials after `<scheme> ` (scheme in any case), if that is the scheme and there are some.
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    (given.eq_ignore_ascii_case(scheme) && !rest.is_empty()).then_some(rest)
}

/// The fields of an `application/x-www-form-urlencoded` body, decoded.
fn form_fields(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " "))))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // Two hex digits exactly (`from_str_radix` alone would take a sign).
        let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
