//! A recording, fault-injecting HTTP proxy between a function binary and moto.
//!
//! The binary gets `AWS_ENDPOINT_URL=<proxy.endpoint()>`; the proxy forwards every request to
//! moto unchanged (moto does not check SigV4 signatures, so re-sending them is fine), records
//! what was asked, and can answer instead of moto with the error a real AWS service sends.
//! Tests assert at the proxy what moto drops (SES v2 tags, headers, configuration sets) and
//! how the code under test reacts to throttling, server errors and slow answers.
//!
//! Injected error shapes, per protocol (the Rust SDK takes the error code from
//! `x-amzn-ErrorType`, else `__type` / `code` in the body, after the `#` and before any `:`;
//! for SQS `x-amzn-query-error` wins):
//!
//! - sesv2 (REST-JSON), body `{"message": ..}`: Throttle 429 with
//!   `x-amzn-ErrorType: TooManyRequestsException`; ServerError 500 with
//!   `x-amzn-ErrorType: InternalFailure`.
//! - dynamodb (JSON 1.0): Throttle 400 `{"__type":
//!   "com.amazonaws.dynamodb.v20120810#ThrottlingException"}`; ServerError 500 with
//!   `...#InternalServerError`.
//! - sqs (JSON 1.0, query-compatible): Throttle 400 `{"__type": "com.amazonaws.sqs#RequestThrottled"}`
//!   and `x-amzn-query-error: RequestThrottled;Sender`; ServerError 500 with `...#InternalFailure`
//!   and `InternalFailure;Receiver`.
//! - anything else (query protocol, XML): 400 `<Code>Throttling</Code>`, 500
//!   `<Code>InternalFailure</Code>`.
//!
//! All throttling codes are in the SDK's throttling list (`aws_runtime::retries::classifiers::
//! THROTTLING_ERRORS`) and every 500 is transient for its status classifier, so both are
//! retried by the standard retry strategy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

/// One request that reached the proxy.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `dynamodb`, `sqs`, `sesv2`, or the credential scope's service for anything else.
    pub service: String,
    /// `PutItem`, `SendMessage`, `SendEmail`, ...; for SES v2 paths without a name here,
    /// `"<METHOD> <path>"`.
    pub operation: String,
    /// The request body parsed as JSON, or `{"raw": text}` when it is not JSON.
    pub body: Value,
    /// Path and query as sent.
    pub path: String,
    /// Status returned to the client (the injected one, or upstream's; 502 if moto is gone).
    pub status: u16,
    /// True when a fault rule handled this request (an error answer, or a delay).
    pub injected: bool,
    /// When the request arrived.
    pub at: Instant,
}

/// What a matching fault rule does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultKind {
    /// The service's throttling error; the request is not forwarded.
    Throttle,
    /// The service's internal error (HTTP 500); the request is not forwarded.
    ServerError,
    /// Waits this long, then forwards. A client whose timeout is shorter gives up first.
    Timeout(Duration),
}

/// A fault rule. The first rule (in order of [`Proxy::inject`]) that matches and draws the
/// request handles it.
#[derive(Debug, Clone)]
pub struct Fault {
    pub service: String,
    /// An operation name as in [`Recorded::operation`], or `"*"` for all of the service's.
    pub operation: String,
    pub kind: FaultKind,
    /// Share of matching requests affected, 0.0 to 1.0, drawn from a fixed pseudo-random
    /// sequence per rule so a test sees the same pattern on every run.
    pub share: f64,
    /// Affect at most this many requests.
    pub remaining: Option<u32>,
}

impl Fault {
    /// Every matching request, without limit.
    pub fn always(service: &str, operation: &str, kind: FaultKind) -> Fault {
        Fault { service: service.to_owned(), operation: operation.to_owned(), kind, share: 1.0, remaining: None }
    }
}

struct Rule {
    fault: Fault,
    /// Matching requests seen so far: the index into the pseudo-random sequence.
    seen: u64,
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    records: Mutex<Vec<Recorded>>,
    rules: Mutex<Vec<Rule>>,
    seed: AtomicU64,
    request_ids: AtomicU64,
    dynamodb_serial: tokio::sync::Mutex<()>,
}

/// The running proxy; stops on drop.
pub struct Proxy {
    endpoint: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream` (e.g. moto's endpoint).
    pub async fn start(upstream: &str) -> Proxy {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client for the proxy");
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http,
            records: Mutex::new(Vec::new()),
            rules: Mutex::new(Vec::new()),
            seed: AtomicU64::new(0x4845_5241_4c44),
            request_ids: AtomicU64::new(0),
            dynamodb_serial: tokio::sync::Mutex::new(()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("herald-e2e proxy stopped: {e}");
            }
        });
        Proxy { endpoint: format!("http://{addr}"), shared, task }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Every request so far, in the order they were answered (a delayed request is recorded
    /// when it completes; `at` is its arrival).
    pub fn records(&self) -> Vec<Recorded> {
        lock(&self.shared.records).clone()
    }

    /// How many requests for this service and operation arrived (injected ones included).
    pub fn count(&self, service: &str, operation: &str) -> usize {
        lock(&self.shared.records).iter().filter(|r| r.service == service && r.operation == operation).count()
    }

    /// Records of one service and operation.
    pub fn calls(&self, service: &str, operation: &str) -> Vec<Recorded> {
        lock(&self.shared.records)
            .iter()
            .filter(|r| r.service == service && r.operation == operation)
            .cloned()
            .collect()
    }

    /// Forgets the records.
    pub fn clear(&self) {
        lock(&self.shared.records).clear();
    }

    /// Adds a fault rule.
    pub fn inject(&self, rule: Fault) {
        lock(&self.shared.rules).push(Rule { fault: rule, seen: 0 });
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        lock(&self.shared.rules).clear();
    }

    /// Changes the seed of the pseudo-random sequence behind `share` (a fixed one by default).
    pub fn set_seed(&self, seed: u64) {
        self.shared.seed.store(seed, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// A test that panicked while holding the lock must not hide its own failure behind a poison error.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Headers that belong to one connection, not to the request (RFC 9110 7.6.1), plus the
/// ones the HTTP stacks on each side recompute.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("proxy could not read the request body: {e}")),
    };
    let path = parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let (service, operation) = identify(&parts.method, &parts.uri, &parts.headers, &body);

    // moto applies a DynamoDB transaction item by item without a lock, so two
    // concurrent TransactWriteItems can interleave (and its rollback can undo the
    // other's writes). DynamoDB itself is serializable: one DynamoDB call at a time
    // here restores that, so tests measure herald's atomicity, not moto's races.
    let _serial = if service == "dynamodb" { Some(shared.dynamodb_serial.lock().await) } else { None };
    let fault = shared.draw(&service, &operation);
    let (response, injected) = match fault {
        Some(FaultKind::Timeout(delay)) => {
            tokio::time::sleep(delay).await;
            (shared.forward(&parts.method, &path, &parts.headers, body.clone()).await, true)
        }
        Some(kind) => (shared.error_response(&service, kind), true),
        None => (shared.forward(&parts.method, &path, &parts.headers, body.clone()).await, false),
    };

    let record = Recorded {
        service,
        operation,
        body: parse_body(&body),
        path,
        status: response.status().as_u16(),
        injected,
        at,
    };
    lock(&shared.records).push(record);
    response
}

impl Shared {
    /// The kind of the first rule that matches and whose pseudo-random draw hits, if any.
    fn draw(&self, service: &str, operation: &str) -> Option<FaultKind> {
        let seed = self.seed.load(Ordering::Relaxed);
        let mut rules = lock(&self.rules);
        for (index, rule) in rules.iter_mut().enumerate() {
            let f = &rule.fault;
            if f.service != service || (f.operation != "*" && f.operation != operation) || f.remaining == Some(0) {
                continue;
            }
            let n = rule.seen;
            rule.seen += 1;
            if unit_draw(seed, index as u64, n) >= rule.fault.share {
                continue;
            }
            if let Some(left) = rule.fault.remaining.as_mut() {
                *left -= 1;
            }
            return Some(rule.fault.kind);
        }
        None
    }

    async fn forward(&self, method: &Method, path: &str, headers: &HeaderMap, body: Bytes) -> Response {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.upstream)).body(body);
        for (name, value) in headers {
            // Host is kept: moto builds SQS queue URLs from it, so they name the proxy.
            if !is_hop_by_hop(name) {
                req = req.header(name, value);
            }
        }
        let upstream = match req.send().await {
            Ok(r) => r,
            Err(e) => return plain(StatusCode::BAD_GATEWAY, format!("proxy could not reach {}: {e}", self.upstream)),
        };
        let status = upstream.status();
        let mut out = HeaderMap::new();
        for (name, value) in upstream.headers() {
            if !is_hop_by_hop(name) {
                out.append(name.clone(), value.clone());
            }
        }
        let bytes = match upstream.bytes().await {
            Ok(b) => b,
            Err(e) => return plain(StatusCode::BAD_GATEWAY, format!("proxy lost {}'s answer: {e}", self.upstream)),
        };
        let mut response = Response::new(Body::from(bytes));
        *response.status_mut() = status;
        *response.headers_mut() = out;
        response
    }

    /// The error the real service sends, in its protocol's shape.
    fn error_response(&self, service: &str, kind: FaultKind) -> Response {
        let request_id = format!("herald-e2e-{:08}", self.request_ids.fetch_add(1, Ordering::Relaxed));
        let throttle = kind == FaultKind::Throttle;
        let (status, headers, body): (StatusCode, Vec<(&str, String)>, String) = match service {
            "sesv2" => {
                let (status, code, message) = if throttle {
                    (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", "Maximum sending rate exceeded.")
                } else {
                    (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", "An internal failure occurred.")
                };
                let headers =
                    vec![("x-amzn-errortype", code.to_owned()), ("content-type", "application/json".to_owned())];
                (status, headers, json!({ "message": message }).to_string())
            }
            "dynamodb" => {
                let (status, code, message) = if throttle {
                    (StatusCode::BAD_REQUEST, "ThrottlingException", "Rate exceeded")
                } else {
                    (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Internal server error")
                };
                let body = json!({ "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"), "message": message });
                (status, vec![("content-type", "application/x-amz-json-1.0".to_owned())], body.to_string())
            }
            "sqs" => {
                // SQS speaks JSON but stays compatible with its old query error codes.
                let (status, code, fault, message) = if throttle {
                    (StatusCode::BAD_REQUEST, "RequestThrottled", "Sender", "Rate exceeded")
                } else {
                    (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", "Receiver", "Internal failure")
                };
                let headers = vec![
                    ("content-type", "application/x-amz-json-1.0".to_owned()),
                    ("x-amzn-query-error", format!("{code};{fault}")),
                ];
                (
                    status,
                    headers,
                    json!({ "__type": format!("com.amazonaws.sqs#{code}"), "message": message }).to_string(),
                )
            }
            _ => {
                let (status, code, fault) = if throttle {
                    (StatusCode::BAD_REQUEST, "Throttling", "Sender")
                } else {
                    (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", "Receiver")
                };
                let body = format!(
                    "<ErrorResponse><Error><Type>{fault}</Type><Code>{code}</Code>\
                     <Message>injected by herald-e2e</Message></Error>\
                     <RequestId>{request_id}</RequestId></ErrorResponse>"
                );
                (status, vec![("content-type", "text/xml".to_owned())], body)
            }
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let out = response.headers_mut();
        for (name, value) in headers.into_iter().chain([("x-amzn-requestid", request_id)]) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                out.insert(HeaderName::from_static(name), value);
            }
        }
        response
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

fn plain(status: StatusCode, text: String) -> Response {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response
}

fn parse_body(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(body) }))
}

/// A number in [0, 1) from (seed, rule, n): splitmix64, so draws are reproducible and
/// independent of other traffic through the proxy.
fn unit_draw(seed: u64, rule: u64, n: u64) -> f64 {
    let mut z = seed ^ rule.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// (service, operation) of a request: `X-Amz-Target` for JSON-protocol services, the path for
/// SES v2 (REST-JSON), else the credential scope's service and the query `Action`.
pub fn identify(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let path = uri.path();
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok())
        && let Some((prefix, operation)) = target.rsplit_once('.')
    {
        let service = match prefix {
            p if p.starts_with("DynamoDBStreams") => "dynamodbstreams".to_owned(),
            p if p.starts_with("DynamoDB") => "dynamodb".to_owned(),
            "AmazonSQS" => "sqs".to_owned(),
            p => scope_service(headers).unwrap_or_else(|| p.to_ascii_lowercase()),
        };
        return (service, operation.to_owned());
    }
    if let Some(rest) = path.strip_prefix("/v2/email/") {
        return ("sesv2".to_owned(), sesv2_operation(method, rest));
    }
    let service = scope_service(headers).unwrap_or_else(|| "unknown".to_owned());
    // Query protocol: `Action=` in the form body (POST) or the query string (GET).
    let form = std::str::from_utf8(body).unwrap_or("");
    let action = form_value(form, "Action").or_else(|| form_value(uri.query().unwrap_or(""), "Action"));
    (service, action.map_or_else(|| format!("{method} {path}"), str::to_owned))
}

/// SES v2 operation from method and the path after `/v2/email/`.
fn sesv2_operation(method: &Method, rest: &str) -> String {
    let segments: Vec<&str> = rest.split('?').next().unwrap_or("").split('/').filter(|s| !s.is_empty()).collect();
    let name = match (method.as_str(), segments.as_slice()) {
        ("POST", ["outbound-emails"]) => "SendEmail",
        ("POST", ["outbound-bulk-emails"]) => "SendBulkEmail",
        ("GET", ["account"]) => "GetAccount",
        ("POST", ["identities"]) => "CreateEmailIdentity",
        ("GET", ["identities"]) => "ListEmailIdentities",
        ("GET", ["identities", _]) => "GetEmailIdentity",
        ("DELETE", ["identities", _]) => "DeleteEmailIdentity",
        ("POST", ["configuration-sets"]) => "CreateConfigurationSet",
        ("GET", ["configuration-sets"]) => "ListConfigurationSets",
        ("GET", ["configuration-sets", _]) => "GetConfigurationSet",
        ("DELETE", ["configuration-sets", _]) => "DeleteConfigurationSet",
        ("PUT", ["suppression", "addresses"]) => "PutSuppressedDestination",
        ("GET", ["suppression", "addresses"]) => "ListSuppressedDestinations",
        ("GET", ["suppression", "addresses", _]) => "GetSuppressedDestination",
        ("DELETE", ["suppression", "addresses", _]) => "DeleteSuppressedDestination",
        _ => return format!("{method} /v2/email/{rest}"),
    };
    name.to_owned()
}

/// `<service>` of `Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/<service>/aws4_request, ...`.
fn scope_service(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?.split([',', ' ']).next()?;
    credential.split('/').nth(3).map(str::to_owned)
}

/// A value of an `application/x-www-form-urlencoded` body (names are plain ASCII in AWS queries).
fn form_value<'a>(form: &'a str, name: &str) -> Option<&'a str> {
    form.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}
