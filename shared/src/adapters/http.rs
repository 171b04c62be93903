//! Outbound HTTP for webhooks and SNS certificate fetches, behind an SSRF guard.
//!
//! The targets come from outside (a subscriber's webhook URL, a message's
//! `SigningCertURL` or `SubscribeURL`), so every connection is checked where it is made,
//! not where the URL was configured: a name is resolved by [`GuardedResolver`], which
//! drops refused addresses (a later DNS answer cannot sneak in an internal one), and an
//! IP-literal host is checked by [`LiteralGuard`], since hyper connects to literals
//! without asking the resolver.
//!
//! Only `https`, except to addresses in the allow-list (tests serve plain http on
//! 127.0.0.1). Redirects are never followed. One timeout covers the whole exchange, and
//! the body is read up to a cap. One TLS stack: rustls with ring, the OS root store.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use ipnet::IpNet;
use tokio::time::Instant;

type BoxError = Box<dyn StdError + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Enough for any acknowledgement or SNS signing certificate; the rest is dropped.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------
// Which addresses are refused
// ---------------------------------------------------------------------------------------

/// Why `ip` is no webhook target, or `None` for a public address. IPv6 forms that embed
/// an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by that address: a
/// dual-stack socket to `::ffff:127.0.0.1` reaches 127.0.0.1.
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: [([u8; 4], u8, &str); 17] = [
        ([0, 0, 0, 0], 8, "unspecified"),
        ([10, 0, 0, 0], 8, "private"),
        ([100, 64, 0, 0], 10, "shared address space (CGNAT)"),
        ([127, 0, 0, 0], 8, "loopback"),
        // Before link-local, to name it: EC2/ECS/Lambda credentials live there.
        ([169, 254, 169, 254], 32, "cloud metadata"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 0, 0, 0], 24, "IETF protocol assignments"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([192, 88, 99, 0], 24, "6to4 relay"),
        ([192, 168, 0, 0], 16, "private"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([255, 255, 255, 255], 32, "broadcast"),
        ([240, 0, 0, 0], 4, "reserved"),
    ];
    let bits = u32::from(ip);
    RANGES.iter().find(|(net, len, _)| prefix_match(bits, u32::from_be_bytes(*net), *len)).map(|(_, _, why)| *why)
}

fn prefix_match(bits: u32, net: u32, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    bits & mask == net & mask
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    let in_net = |net: u128, len: u32| {
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        bits & mask == net & mask
    };
    let embedded = Ipv4Addr::from(bits as u32);
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        return Some("cloud metadata");
    }
    // Forms carrying an IPv4 address in their low 32 bits: ::ffff:a.b.c.d (mapped),
    // ::a.b.c.d (compatible, deprecated), ::ffff:0:a.b.c.d (SIIT), 64:ff9b::a.b.c.d (NAT64,
    // which a VPC's NAT gateway translates to private addresses too).
    if in_net(0xffff << 32, 96) || in_net(0, 96) || in_net(0xffff << 48, 96) || in_net(0x0064_ff9b << 96, 96) {
        return refused_v4(embedded);
    }
    // 6to4: 2002:AABB:CCDD::/48 carries A.B.C.D in bits 16..48.
    if in_net(0x2002 << 112, 16) {
        return refused_v4(Ipv4Addr::from((bits >> 80) as u32));
    }
    const RANGES: [(u128, u32, &str); 10] = [
        (0x0064_ff9b_0001 << 80, 48, "NAT64 local-use"),
        (0x0100 << 112, 64, "discard-only"),
        // Includes Teredo (2001::/32), whose embedded address is obfuscated.
        (0x2001 << 112, 23, "IETF protocol assignments"),
        (0x2001_0db8 << 96, 32, "documentation"),
        (0x3fff << 112, 20, "documentation"),
        (0xfc00 << 112, 7, "unique-local"),
        (0xfe80 << 112, 10, "link-local"),
        (0xfec0 << 112, 10, "site-local"),
        (0xff00 << 112, 8, "multicast"),
        (0, 128, "unspecified"),
    ];
    RANGES.iter().find(|(net, len, _)| in_net(*net, *len)).map(|(_, _, why)| *why)
}

/// Networks the guard lets through: the one way to reach 127.0.0.1 (tests) or a private
/// endpoint on purpose, and the only targets plain `http` may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    nets: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowListError {
    #[error("allow-list entry `{entry}` is not a network: write a CIDR such as 127.0.0.1/32 or ::1/128")]
    Invalid { entry: String },
    #[error("allow-list entry `{entry}` has bits set past its prefix: did you mean `{network}`?")]
    HostBits { entry: String, network: String },
}

impl AllowList {
    /// CIDR networks (`127.0.0.0/8`, `fd00::/8`) or single addresses (`127.0.0.1`).
    pub fn parse<I, S>(entries: I) -> Result<Self, AllowListError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nets = entries
            .into_iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                let net = match entry.parse::<IpNet>() {
                    Ok(net) => net,
                    Err(_) => entry
                        .parse::<IpAddr>()
                        .map(IpNet::from)
                        .map_err(|_| AllowListError::Invalid { entry: entry.to_owned() })?,
                };
                // `10.0.0.1/8` is most likely a typo for a host or for the network: ask.
                if net.trunc() != net {
                    return Err(AllowListError::HostBits { entry: entry.to_owned(), network: net.trunc().to_string() });
                }
                Ok(net)
            })
            .collect::<Result<_, _>>()?;
        Ok(AllowList { nets })
    }

    /// A comma-separated list (an environment variable's value); blank entries are skipped.
    pub fn parse_list(text: &str) -> Result<Self, AllowListError> {
        Self::parse(text.split(',').map(str::trim).filter(|s| !s.is_empty()))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

/// Why the guard refused a target. Travels inside hyper's error chain, where
/// [`HttpError`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Refusal {
    reason: &'static str,
    /// A name whose every address was refused, rather than an IP literal.
    resolved: bool,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.resolved {
            write!(f, "target resolves only to refused addresses ({})", self.reason)
        } else {
            write!(f, "target address is refused ({})", self.reason)
        }
    }
}

impl StdError for Refusal {}

const PLAIN_HTTP: &str = "plain http outside the allow-list";

/// What one client may connect to.
#[derive(Debug)]
struct Policy {
    allow: AllowList,
    /// The plain-http client: allow-listed addresses only.
    allow_listed_only: bool,
}

impl Policy {
    fn check(&self, ip: IpAddr) -> Result<(), &'static str> {
        if self.allow.contains(ip) {
            return Ok(());
        }
        if self.allow_listed_only {
            return Err(PLAIN_HTTP);
        }
        refused_range(ip).map_or(Ok(()), Err)
    }

    /// The addresses of a name this policy lets through: the public ones of a name that
    /// also has internal ones, so that such a name cannot steer a connection inward.
    fn keep(&self, found: impl Iterator<Item = SocketAddr>) -> Result<Vec<SocketAddr>, BoxError> {
        let mut refusal = None;
        let kept: Vec<SocketAddr> = found
            .filter(|addr| match self.check(addr.ip()) {
                Ok(()) => true,
                Err(reason) => {
                    refusal.get_or_insert(Refusal { reason, resolved: true });
                    false
                }
            })
            .collect();
        match refusal {
            Some(refusal) if kept.is_empty() => Err(refusal.into()),
            _ if kept.is_empty() => Err(io::Error::new(io::ErrorKind::NotFound, "name has no address").into()),
            _ => Ok(kept),
        }
    }
}

/// The connector's DNS: the system resolver, then the policy. Refused addresses are
/// dropped; a name left with none fails with a [`Refusal`] before any connection.
#[derive(Debug, Clone)]
struct GuardedResolver {
    policy: Arc<Policy>,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            // Port 0: the connector puts the URL's port on every address.
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            Ok(policy.keep(found)?.into_iter())
        })
    }
}

/// Checks IP-literal hosts (`https://[::ffff:127.0.0.1]/`), which the connector
/// connects to without calling the resolver.
#[derive(Debug, Clone)]
struct LiteralGuard<C> {
    inner: C,
    policy: Arc<Policy>,
}

impl<C> tower_service::Service<Uri> for LiteralGuard<C>
where
    C: tower_service::Service<Uri>,
    C::Response: Send + 'static,
    C::Error: Into<BoxError>,
    C::Future: Send + 'static,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = BoxFuture<C::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        if let Some(ip) = literal_ip(&uri)
            && let Err(reason) = self.policy.check(ip)
        {
            return Box::pin(std::future::ready(Err(Refusal { reason, resolved: false }.into())));
        }
        let connecting = self.inner.call(uri);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}

/// The host as an address when the URL names one (`[::1]` with brackets in a URI).
fn literal_ip(uri: &Uri) -> Option<IpAddr> {
    let host = uri.host()?;
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host).parse().ok()
}

// ---------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct GuardOptions {
    pub allow: AllowList,
    /// The whole exchange: DNS, connect, TLS, request, and the (capped) body read.
    pub timeout: Duration,
    /// Response body bytes kept; the rest is not read.
    pub max_body: usize,
}

impl Default for GuardOptions {
    fn default() -> Self {
        GuardOptions { allow: AllowList::default(), timeout: DEFAULT_TIMEOUT, max_body: DEFAULT_MAX_BODY }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Lowercase names, in the order received; non-UTF-8 values lossily decoded.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was cut at the cap, or broke off (or ran out of time) after the status
    /// came: the status still stands.
    pub truncated: bool,
}

impl HttpResponse {
    /// The first value of `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Timeout,
    /// Refused or reset connection, DNS failure: nothing was answered.
    Connect,
    /// The SSRF guard refused the target: no connection was made.
    Refused,
    Tls,
    /// A malformed URL (or one with credentials), or an invalid header: a configuration
    /// fault no retry mends.
    InvalidRequest,
    Other,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timed out",
            ErrorKind::Connect => "could not connect",
            ErrorKind::Refused => "refused by the SSRF guard",
            ErrorKind::Tls => "TLS failure",
            ErrorKind::InvalidRequest => "invalid request",
            ErrorKind::Other => "HTTP failure",
        }
    }
}

/// A failed exchange. Its text names the cause, never the URL: paths and queries carry
/// tokens (a `SubscribeURL`'s, a subscriber's), and callers log the host themselves.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpError {
    kind: ErrorKind,
    detail: String,
}

impl HttpError {
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn is_refused(&self) -> bool {
        self.kind == ErrorKind::Refused
    }

    fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        HttpError { kind, detail: detail.into() }
    }

    /// Reads hyper's error chain: the guard's refusal, a rustls error, a timeout, a
    /// connect failure, in that order of precedence.
    fn from_chain(err: &(dyn StdError + 'static), is_connect: bool) -> Self {
        let mut texts: Vec<String> = Vec::new();
        let (mut refusal, mut tls, mut timed_out) = (None, false, false);
        visit_chain(err, &mut |e| {
            let text = e.to_string();
            if texts.last() != Some(&text) {
                texts.push(text);
            }
            refusal = refusal.or_else(|| e.downcast_ref::<Refusal>().copied());
            tls |= e.is::<rustls::Error>();
            timed_out |= e.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::TimedOut);
        });
        // A refusal's own words: hyper's wrapping adds only plumbing.
        if let Some(refusal) = refusal {
            return HttpError::new(ErrorKind::Refused, refusal.to_string());
        }
        let kind = if tls {
            ErrorKind::Tls
        } else if timed_out {
            ErrorKind::Timeout
        } else if is_connect {
            ErrorKind::Connect
        } else {
            ErrorKind::Other
        };
        HttpError { kind, detail: texts.join(": ") }
    }
}

/// Each error of the chain, looking inside `io::Error`s too: their `source()` skips the
/// error they wrap, which is where tokio-rustls puts the rustls error.
fn visit_chain<'a>(err: &'a (dyn StdError + 'static), visit: &mut dyn FnMut(&'a (dyn StdError + 'static))) {
    visit(err);
    if let Some(inner) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
        let inner: &'a (dyn StdError + 'static) = inner;
        visit_chain(inner, visit);
    } else if let Some(source) = err.source() {
        visit_chain(source, visit);
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(self.kind.describe())
        } else {
            write!(f, "{}: {}", self.kind.describe(), self.detail)
        }
    }
}

// By hand, so no field (or future field) can bring a URL into logs.
impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpError").field("kind", &self.kind).field("detail", &self.detail).finish()
    }
}

impl StdError for HttpError {}

type Guarded = LiteralGuard<HttpConnector<GuardedResolver>>;
type Body = Full<Bytes>;

/// An HTTP client whose every connection passes the SSRF guard. Cheap to clone (shared
/// connection pools); build one per process.
#[derive(Clone)]
pub struct GuardedClient {
    https: Client<HttpsConnector<Guarded>, Body>,
    /// Only with a non-empty allow-list.
    http: Option<Client<Guarded, Body>>,
    timeout: Duration,
    max_body: usize,
}

impl fmt::Debug for GuardedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedClient")
            .field("plain_http", &self.http.is_some())
            .field("timeout", &self.timeout)
            .field("max_body", &self.max_body)
            .finish()
    }
}

impl GuardedClient {
    /// Fails only when the OS offers no usable root certificate (a Lambda image has them
    /// in /etc/pki; SSL_CERT_FILE points elsewhere).
    pub fn new(options: GuardOptions) -> Result<Self, HttpError> {
        Self::build(options, false)
    }

    /// A client that speaks HTTP/2 only (APNs): ALPN `h2` over TLS, and HTTP/2 with prior
    /// knowledge (h2c) to an allow-listed plain-http address (tests). Requests share one
    /// connection per host, multiplexed.
    #[cfg(feature = "push")]
    pub fn http2(options: GuardOptions) -> Result<Self, HttpError> {
        Self::build(options, true)
    }

    fn build(options: GuardOptions, http2: bool) -> Result<Self, HttpError> {
        let GuardOptions { allow, timeout, max_body } = options;
        let connector = |allow_listed_only| {
            let policy = Arc::new(Policy { allow: allow.clone(), allow_listed_only });
            let mut http = HttpConnector::new_with_resolver(GuardedResolver { policy: Arc::clone(&policy) });
            // Lets https URLs through to the TLS layer above.
            http.enforce_http(false);
            http.set_nodelay(true);
            LiteralGuard { inner: http, policy }
        };
        let tls = HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| HttpError::new(ErrorKind::Tls, format!("no usable root certificates: {e}")))?
            .https_only();
        #[cfg(feature = "push")]
        let tls = if http2 {
            tls.enable_http2().wrap_connector(connector(false))
        } else {
            tls.enable_http1().wrap_connector(connector(false))
        };
        #[cfg(not(feature = "push"))]
        let tls = tls.enable_http1().wrap_connector(connector(false));
        let https = Self::client(tls, http2);
        let http = (!allow.is_empty()).then(|| Self::client(connector(true), http2));
        Ok(GuardedClient { https, http, timeout, max_body })
    }

    fn client<C>(connector: C, http2: bool) -> Client<C, Body>
    where
        C: hyper_util::client::legacy::connect::Connect + Clone,
    {
        let mut builder = Client::builder(TokioExecutor::new());
        #[cfg(feature = "push")]
        builder.http2_only(http2);
        #[cfg(not(feature = "push"))]
        let _ = http2;
        builder
            .pool_timer(TokioTimer::new())
            // Shorter than most servers' keep-alive, so a reused connection is rarely
            // one the server is closing.
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector)
    }

    /// POSTs `body` (a webhook). `headers` are sent as given; Host and Content-Length
    /// are set from the URL and the body.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<HttpResponse, HttpError> {
        self.send(Method::POST, url, headers, body).await
    }

    /// GETs `url` (an SNS signing certificate, a `SubscribeURL` confirmation).
    pub async fn get(&self, url: &str) -> Result<HttpResponse, HttpError> {
        self.send(Method::GET, url, &[], Vec::new()).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<HttpResponse, HttpError> {
        let deadline = Instant::now() + self.timeout;
        let invalid = |what: &str| HttpError::new(ErrorKind::InvalidRequest, what);
        let uri: Uri = url.parse().map_err(|_| invalid("not a valid URL"))?;
        let authority = uri.authority().ok_or_else(|| invalid("URL has no host"))?;
        // hyper would not send them, and they are secrets in a URL that gets logged.
        if authority.as_str().contains('@') {
            return Err(invalid("URL carries credentials"));
        }
        let plain = match uri.scheme_str() {
            Some("https") => false,
            Some("http") => true,
            _ => return Err(invalid("URL scheme must be https")),
        };
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid("invalid header name"))?;
            // No value in the error: it may be a signature or a token.
            let value = HeaderValue::from_str(value).map_err(|_| invalid("invalid header value"))?;
            request = request.header(name, value);
        }
        let request = request.body(Full::new(Bytes::from(body))).map_err(|_| invalid("invalid request"))?;

        let answer = async {
            if plain {
                match &self.http {
                    Some(client) => client.request(request).await,
                    None => return Err(HttpError::new(ErrorKind::Refused, PLAIN_HTTP)),
                }
            } else {
                self.https.request(request).await
            }
            .map_err(|e| HttpError::from_chain(&e, e.is_connect()))
        };
        let response = tokio::time::timeout_at(deadline, answer)
            .await
            .map_err(|_| HttpError::new(ErrorKind::Timeout, "no response in time"))??;

        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let (body, truncated) = read_capped(response.into_body(), self.max_body, deadline).await;
        Ok(HttpResponse { status, headers, body, truncated })
    }
}

/// Up to `cap` bytes of the body by `deadline`. A body that breaks off or runs late
/// still leaves the status: the receiver has answered, and a retry would deliver twice.
async fn read_capped(mut body: hyper::body::Incoming, cap: usize, deadline: Instant) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) => return (kept, false),
            Ok(Some(Err(_))) | Err(_) => return (kept, true),
        };
        let Ok(data) = frame.into_data() else { continue };
        let room = cap - kept.len();
        if data.len() > room {
            kept.extend_from_slice(&data[..room]);
            // Dropping the body closes the connection: the rest is never read.
            return (kept, true);
        }
        kept.extend_from_slice(&data);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// What a test server does with each connection.
    #[derive(Clone)]
    enum Behaviour {
        /// Reads one request, writes these bytes, closes.
        Answer(Vec<u8>),
        /// Reads one request, never answers, keeps the connection open.
        Silent,
        /// Writes a non-TLS answer at once (what a plain server says to a ClientHello).
        Garbage,
    }

    struct Server {
        addr: SocketAddr,
        connections: Arc<AtomicUsize>,
        requests: Arc<Mutex<Vec<String>>>,
    }

    impl Server {
        fn port(&self) -> u16 {
            self.addr.port()
        }
        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
        fn request(&self, i: usize) -> String {
            self.requests.lock().unwrap()[i].clone()
        }
    }

    async fn serve(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count, log) = (Arc::clone(&connections), Arc::clone(&requests));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (behaviour, log) = (behaviour.clone(), Arc::clone(&log));
                tokio::spawn(async move {
                    if let Behaviour::Garbage = behaviour {
                        let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
                        return;
                    }
                    let request = read_request(&mut socket).await;
                    log.lock().unwrap().push(request);
                    match behaviour {
                        Behaviour::Answer(bytes) => {
                            let _ = socket.write_all(&bytes).await;
                            let _ = socket.shutdown().await;
                        }
                        Behaviour::Silent => tokio::time::sleep(Duration::from_secs(30)).await,
                        Behaviour::Garbage => {}
                    }
                });
            }
        });
        Server { addr, connections, requests }
    }

    /// Head and body of one HTTP/1.1 request (Content-Length framed, as hyper sends ours).
    async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                if buf.len() >= end + 4 + length {
                    return String::from_utf8_lossy(&buf).into_owned();
                }
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&buf).into_owned(),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn answer(status_line: &str, headers: &[&str], body: &[u8]) -> Behaviour {
        let mut bytes = format!("HTTP/1.1 {status_line}\r\nContent-Length: {}\r\n", body.len());
        for header in headers {
            bytes.push_str(header);
            bytes.push_str("\r\n");
        }
        bytes.push_str("\r\n");
        let mut bytes = bytes.into_bytes();
        bytes.extend_from_slice(body);
        Behaviour::Answer(bytes)
    }

    fn client(allow: &[&str]) -> GuardedClient {
        let options = GuardOptions { allow: AllowList::parse(allow).unwrap(), ..GuardOptions::default() };
        GuardedClient::new(options).unwrap()
    }

    fn loopback_client() -> GuardedClient {
        client(&["127.0.0.1/32"])
    }

    /// Lets a connection the client might have opened reach the server's counter.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    #[tokio::test]
    async fn posts_to_an_allow_listed_loopback_server() {
        let server = serve(answer("200 OK", &["X-Test: Yes", "Retry-After: 7"], b"ok")).await;
        let headers = vec![
            ("webhook-id".to_owned(), "msg_1".to_owned()),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        let url = format!("http://127.0.0.1:{}/hooks/receipts?token=abc", server.port());
        let response = loopback_client().post(&url, &headers, br#"{"a":1}"#.to_vec()).await.unwrap();

        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"ok");
        assert!(!response.truncated);
        assert_eq!(response.header("retry-after"), Some("7"));
        assert_eq!(response.header("X-TEST"), Some("Yes"));
        assert!(response.headers.iter().any(|(n, v)| n == "x-test" && v == "Yes"), "{:?}", response.headers);
        assert_eq!(server.connections(), 1);
        let seen = server.request(0);
        assert!(seen.starts_with("POST /hooks/receipts?token=abc HTTP/1.1\r\n"), "{seen}");
        let lowered = seen.to_ascii_lowercase();
        assert!(lowered.contains("\r\nwebhook-id: msg_1\r\n"), "{seen}");
        assert!(lowered.contains("\r\ncontent-type: application/json\r\n"), "{seen}");
        assert!(lowered.contains("\r\ncontent-length: 7\r\n"), "{seen}");
        assert!(seen.ends_with("\r\n\r\n{\"a\":1}"), "{seen}");
    }

    #[tokio::test]
    async fn get_works_too() {
        let server = serve(answer("200 OK", &[], b"-----BEGIN CERTIFICATE-----")).await;
        let response = loopback_client().get(&format!("http://127.0.0.1:{}/cert.pem", server.port())).await.unwrap();
        assert_eq!(response.body, b"-----BEGIN CERTIFICATE-----");
        assert!(server.request(0).starts_with("GET /cert.pem HTTP/1.1\r\n"));
    }

    #[tokio::test]
    async fn without_the_allow_list_loopback_is_refused_before_connecting() {
        let server = serve(answer("200 OK", &[], b"ok")).await;
        let client = client(&[]);
        let port = server.port();
        for url in [
            format!("http://127.0.0.1:{port}/"),
            format!("https://127.0.0.1:{port}/"),
            format!("https://localhost:{port}/"),
            format!("https://[::1]:{port}/"),
            format!("https://[::ffff:127.0.0.1]:{port}/"),
            format!("https://[::ffff:7f00:1]:{port}/"),
            format!("https://[::127.0.0.1]:{port}/"),
            format!("https://[64:ff9b::127.0.0.1]:{port}/"),
            format!("https://[2002:7f00:1::]:{port}/"),
        ] {
            let err = client.post(&url, &[], b"x".to_vec()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Refused, "{url}: {err}");
            assert!(err.is_refused());
        }
        settle().await;
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_by_the_resolver() {
        let server = serve(answer("200 OK", &[], b"ok")).await;
        let port = server.port();
        // https: the public policy; http with an allow-list not covering loopback: the
        // allow-list-only policy. Both run in the resolver.
        for (allow, url) in [
            (vec![], format!("https://localhost:{port}/")),
            (vec!["192.0.2.0/24"], format!("http://localhost:{port}/")),
            // getaddrinfo reads a bare number as an IPv4 address: 2130706433 = 127.0.0.1.
            (vec!["192.0.2.0/24"], format!("http://2130706433:{port}/")),
            (vec!["192.0.2.0/24"], format!("http://127.1:{port}/")),
        ] {
            let err = client(&allow).post(&url, &[], Vec::new()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Refused, "{url}: {err}");
            assert!(err.to_string().contains("resolves only to refused addresses"), "{url}: {err}");
        }
        settle().await;
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn internal_targets_are_refused() {
        // Allow-listing loopback opens 127.0.0.1, nothing else: not ::1, not the mapped
        // form, not the metadata service.
        let server = serve(answer("200 OK", &[], b"ok")).await;
        let port = server.port();
        for client in [client(&[]), loopback_client()] {
            for url in [
                "http://169.254.169.254/latest/meta-data/".to_owned(),
                "https://169.254.169.254/latest/meta-data/".to_owned(),
                "https://[fd00:ec2::254]/latest/meta-data/".to_owned(),
                "http://[::1]/".to_owned(),
                format!("https://[::1]:{port}/"),
                format!("http://[::ffff:127.0.0.1]:{port}/"),
                format!("https://[::ffff:127.0.0.1]:{port}/"),
                "https://10.1.2.3/".to_owned(),
                "https://[fe80::1]/".to_owned(),
                "https://0.0.0.0/".to_owned(),
            ] {
                let err = client.get(&url).await.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Refused, "{url}: {err}");
            }
        }
        settle().await;
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn errors_show_no_path_or_query() {
        let url = "https://localhost:1/hooks/s3cr3t-path?token=t0k3n";
        let err = client(&[]).post(url, &[("authorization".into(), "Bearer xyz".into())], Vec::new()).await;
        let err = err.unwrap_err();
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains("s3cr3t") && !text.contains("t0k3n") && !text.contains("xyz"), "{text}");
        }
        assert_eq!(err.to_string(), "refused by the SSRF guard: target resolves only to refused addresses (loopback)");
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let target = serve(answer("200 OK", &[], b"followed")).await;
        let location = format!("Location: http://127.0.0.1:{}/elsewhere", target.port());
        let redirect = serve(answer("302 Found", &[&location], b"")).await;
        let url = format!("http://127.0.0.1:{}/hook", redirect.port());
        let response = loopback_client().post(&url, &[], b"x".to_vec()).await.unwrap();
        assert_eq!(response.status, 302);
        assert_eq!(response.header("location"), Some(&location["Location: ".len()..]));
        settle().await;
        assert_eq!(redirect.connections(), 1);
        assert_eq!(target.connections(), 0);
    }

    #[tokio::test]
    async fn a_silent_server_times_out_in_the_configured_time() {
        let server = serve(Behaviour::Silent).await;
        let options = GuardOptions {
            allow: AllowList::parse(["127.0.0.1"]).unwrap(),
            timeout: Duration::from_millis(300),
            ..GuardOptions::default()
        };
        let client = GuardedClient::new(options).unwrap();
        let started = std::time::Instant::now();
        let err = client.post(&format!("http://127.0.0.1:{}/", server.port()), &[], b"x".to_vec()).await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "{took:?}");
        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    async fn a_huge_body_is_capped() {
        let huge = vec![b'a'; 4 * 1024 * 1024];
        let server = serve(answer("200 OK", &[], &huge)).await;
        let options = GuardOptions {
            allow: AllowList::parse(["127.0.0.1/32"]).unwrap(),
            max_body: 1000,
            ..GuardOptions::default()
        };
        let client = GuardedClient::new(options).unwrap();
        let response = client.get(&format!("http://127.0.0.1:{}/", server.port())).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body.len(), 1000);
        assert!(response.truncated);

        // The default cap, exactly filled, is not a truncation.
        let exact = serve(answer("200 OK", &[], &vec![b'b'; DEFAULT_MAX_BODY])).await;
        let response = loopback_client().get(&format!("http://127.0.0.1:{}/", exact.port())).await.unwrap();
        assert_eq!(response.body.len(), DEFAULT_MAX_BODY);
        assert!(!response.truncated);
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = loopback_client().get(&format!("http://127.0.0.1:{port}/")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    }

    #[tokio::test]
    async fn a_non_tls_server_is_a_tls_error() {
        let server = serve(Behaviour::Garbage).await;
        let err = loopback_client().get(&format!("https://127.0.0.1:{}/", server.port())).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    async fn malformed_requests_are_refused_without_echoing_them() {
        let client = loopback_client();
        let cases = [
            ("not a url", vec![]),
            ("/relative/path", vec![]),
            ("ftp://127.0.0.1/", vec![]),
            ("https://user:pa55@127.0.0.1/", vec![]),
            ("https://127.0.0.1/", vec![("bad name".to_owned(), "v".to_owned())]),
            ("https://127.0.0.1/", vec![("x-signature".to_owned(), "s3cr3t\nInjected: 1".to_owned())]),
        ];
        for (url, headers) in cases {
            let err = client.post(url, &headers, Vec::new()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{url}: {err}");
            let text = err.to_string();
            assert!(!text.contains("pa55") && !text.contains("s3cr3t"), "{text}");
        }
    }

    #[test]
    fn refused_ranges() {
        let refused = [
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.170.2", "link-local"),
            ("100.64.0.1", "shared address space (CGNAT)"),
            ("100.127.255.255", "shared address space (CGNAT)"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.1", "documentation"),
            ("203.0.113.1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("::127.0.0.1", "loopback"),
            ("::ffff:0:192.168.0.1", "private"),
            ("64:ff9b::10.0.0.1", "private"),
            ("64:ff9b:1::1", "NAT64 local-use"),
            ("2002:a9fe:a9fe::1", "cloud metadata"),
            ("2001::1", "IETF protocol assignments"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("fd00:ec2::254", "cloud metadata"),
            ("fd00:ec2::23", "unique-local"),
            ("fc00::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("100::1", "discard-only"),
        ];
        for (ip, why) in refused {
            assert_eq!(refused_range(ip.parse().unwrap()), Some(why), "{ip}");
        }
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.255.255",
            "192.0.3.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
            "2001:200::1",
        ];
        for ip in public {
            assert_eq!(refused_range(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn allow_list_parsing() {
        let list = AllowList::parse(["127.0.0.1/32", " ::1 ", "10.0.0.0/8"]).unwrap();
        assert!(list.contains("127.0.0.1".parse().unwrap()));
        assert!(!list.contains("127.0.0.2".parse().unwrap()));
        assert!(list.contains("::1".parse().unwrap()));
        assert!(list.contains("10.200.0.1".parse().unwrap()));
        // A v4 network does not cover the mapped v6 form.
        assert!(!list.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(AllowList::parse(Vec::<String>::new()).unwrap().is_empty());

        let err = AllowList::parse(["127.0.0.1/32", "10.0.0.0/33"]).unwrap_err();
        assert_eq!(err, AllowListError::Invalid { entry: "10.0.0.0/33".into() });
        assert_eq!(
            err.to_string(),
            "allow-list entry `10.0.0.0/33` is not a network: write a CIDR such as 127.0.0.1/32 or ::1/128"
        );
        assert!(matches!(AllowList::parse(["localhost"]), Err(AllowListError::Invalid { .. })));
        assert!(matches!(AllowList::parse([""]), Err(AllowListError::Invalid { .. })));
        let err = AllowList::parse(["10.0.0.1/8"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "allow-list entry `10.0.0.1/8` has bits set past its prefix: did you mean `10.0.0.0/8`?"
        );
    }

    #[test]
    fn resolved_addresses_are_filtered() {
        let addrs = |list: &[&str]| list.iter().map(|a| SocketAddr::new(a.parse().unwrap(), 0)).collect::<Vec<_>>();
        let public = Policy { allow: AllowList::default(), allow_listed_only: false };
        let mixed = addrs(&["10.0.0.1", "93.184.216.34", "::1", "2606:2800:220:1::1"]);
        assert_eq!(public.keep(mixed.into_iter()).unwrap(), addrs(&["93.184.216.34", "2606:2800:220:1::1"]));
        let err = public.keep(addrs(&["127.0.0.1", "169.254.169.254"]).into_iter()).unwrap_err();
        assert_eq!(err.downcast_ref::<Refusal>(), Some(&Refusal { reason: "loopback", resolved: true }));
        let err = public.keep(std::iter::empty()).unwrap_err();
        assert!(err.downcast_ref::<io::Error>().is_some());

        let plain = Policy { allow: AllowList::parse(["127.0.0.0/8"]).unwrap(), allow_listed_only: true };
        assert_eq!(plain.keep(addrs(&["127.0.0.1", "::1"]).into_iter()).unwrap(), addrs(&["127.0.0.1"]));
        let err = plain.keep(addrs(&["93.184.216.34"]).into_iter()).unwrap_err();
        assert_eq!(err.downcast_ref::<Refusal>(), Some(&Refusal { reason: PLAIN_HTTP, resolved: true }));
    }

    #[test]
    fn literal_hosts() {
        let ip = |url: &str| literal_ip(&url.parse().unwrap());
        assert_eq!(ip("https://[::ffff:127.0.0.1]:8080/x"), Some("::ffff:127.0.0.1".parse().unwrap()));
        assert_eq!(ip("https://127.0.0.1/"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(ip("https://example.com/"), None);
        assert_eq!(ip("https://2130706433/"), None);
    }
}
