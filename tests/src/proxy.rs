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
//!
//! Transport faults, by what reached the service (the distinction a delivery guarantee
//! rests on):
//!
//! | fault                  | forwarded to moto | the client sees                                   |
//! |------------------------|-------------------|---------------------------------------------------|
//! | `Throttle`, `ServerError` | no             | the service's error                               |
//! | `Reset`                | no                | the connection reset, no response                 |
//! | `Timeout(d)`           | after `d`, if the client still waits | a late answer, or its own timeout (then nothing reached moto) |
//! | `LostResponse`         | yes               | the connection reset, no response                 |
//! | `StallAfterForward(d)` | yes, at once      | the answer after `d`, or its own timeout          |
//!
//! Each [`Recorded`] request says whether it was forwarded and what moto answered, so a
//! test counts what the provider actually accepted, not what the client believes.
//!
//! DynamoDB calls reach moto one at a time (see `Shared::forward`); a call whose client
//! gives up while it waits for its turn is not forwarded.
//!
//! The proxy serves HTTP/1.1 with hyper directly (not axum): dropping a connection
//! without a response needs the connection in hand.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

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
    /// Status returned to the client (the injected one, or upstream's; 502 if moto is gone);
    /// 0 when the client got none: the connection was dropped, or the client gave up first.
    pub status: u16,
    /// True when a fault rule handled this request (an error answer, a delay, a dropped
    /// connection).
    pub injected: bool,
    /// The fault that handled it, if any.
    pub fault: Option<FaultKind>,
    /// Whether the request was sent on to moto, where it then took effect whatever the client
    /// saw (a send whose answer was lost still went out).
    pub forwarded: bool,
    /// moto's status for a forwarded request; None when it was not forwarded or moto was
    /// unreachable.
    pub upstream_status: Option<u16>,
    /// moto's answer to a forwarded request, parsed like [`Recorded::body`]: the MessageId of
    /// a send whose answer the client never saw, for example.
    pub upstream_body: Option<Value>,
    /// When the request arrived.
    pub at: Instant,
    /// From arrival to the answer (or to the client leaving, or the connection's reset).
    pub elapsed: Duration,
}

impl Recorded {
    /// Write units of one recorded DynamoDB request, for items up to 1 KB (checked apart,
    /// on the table): transactions 2 per item, other writes 1 per item.
    pub fn write_units(&self) -> f64 {
        let r = self;
        match r.operation.as_str() {
            "TransactWriteItems" => 2.0 * r.body["TransactItems"].as_array().map_or(0, Vec::len) as f64,
            "PutItem" | "UpdateItem" | "DeleteItem" => 1.0,
            "BatchWriteItem" => r.body["RequestItems"]
                .as_object()
                .map_or(0, |t| t.values().filter_map(Value::as_array).map(Vec::len).sum())
                as f64,
            _ => 0.0,
        }
    }

    /// Read units: strongly consistent 1 per item, eventually consistent 0.5 (up to 4 KB).
    pub fn read_units(&self) -> f64 {
        let r = self;
        let per = |consistent: bool| if consistent { 1.0 } else { 0.5 };
        match r.operation.as_str() {
            "GetItem" | "Query" => per(r.body["ConsistentRead"].as_bool().unwrap_or(false)),
            "BatchGetItem" => r.body["RequestItems"].as_object().map_or(0.0, |t| {
                t.values()
                    .map(|v| {
                        let keys = v["Keys"].as_array().map_or(0, Vec::len) as f64;
                        keys * per(v["ConsistentRead"].as_bool().unwrap_or(false))
                    })
                    .sum()
            }),
            "TransactGetItems" => 2.0 * r.body["TransactItems"].as_array().map_or(0, Vec::len) as f64,
            _ => 0.0,
        }
    }

    /// Forwarded and answered 2xx by moto: the call took effect at the provider.
    pub fn accepted(&self) -> bool {
        self.forwarded && self.upstream_status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// What a matching fault rule does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultKind {
    /// The service's throttling error; the request is not forwarded.
    Throttle,
    /// The service's internal error (HTTP 500); the request is not forwarded.
    ServerError,
    /// Waits this long, then forwards. A client whose timeout is shorter gives up first, and
    /// then the request is never forwarded: nothing reached the service.
    Timeout(Duration),
    /// Closes the connection at once (TCP reset), without a response and without forwarding:
    /// a transport failure before anything reached the service.
    Reset,
    /// Forwards the request (it takes effect at moto), then resets the connection without
    /// a response: the provider acted, the answer was lost.
    LostResponse,
    /// Forwards at once (it takes effect), then holds the answer back this long. A client
    /// whose timeout is shorter gives up after the provider acted.
    StallAfterForward(Duration),
}

impl FaultKind {
    /// Whether a request this fault handles reaches moto (for `Timeout`: only when the
    /// client waits longer than the delay).
    pub fn forwards(self) -> bool {
        matches!(self, FaultKind::Timeout(_) | FaultKind::LostResponse | FaultKind::StallAfterForward(_))
    }
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
        Fault::sometimes(service, operation, kind, 1.0)
    }

    /// This share (0.0 to 1.0) of matching requests, without limit.
    pub fn sometimes(service: &str, operation: &str, kind: FaultKind, share: f64) -> Fault {
        Fault { service: service.to_owned(), operation: operation.to_owned(), kind, share, remaining: None }
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
        let task = tokio::spawn(accept(listener, shared.clone()));
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

    /// Records of one service and operation that took effect at moto ([`Recorded::accepted`]),
    /// whatever the client was told.
    pub fn accepted(&self, service: &str, operation: &str) -> Vec<Recorded> {
        lock(&self.shared.records)
            .iter()
            .filter(|r| r.service == service && r.operation == operation && r.accepted())
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

/// Accepts connections until the proxy is dropped (which aborts this task).
async fn accept(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, shared.clone()));
            }
            Err(e) => {
                // Out of file descriptors or similar: back off instead of spinning.
                eprintln!("herald-e2e proxy: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// What the proxy does with the client's connection for one request.
enum Answer {
    Respond(Response),
    /// Drop the connection without a response.
    Reset,
}

/// Serves one client connection. A request answered [`Answer::Reset`] ends it: the
/// connection is taken back from hyper and closed with a TCP reset (zero linger), so the
/// client sees a transport error and not a half-written response.
async fn serve(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let reset = Arc::new(Notify::new());
    let service = {
        let reset = reset.clone();
        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let (shared, reset) = (shared.clone(), reset.clone());
            async move {
                match handle(shared, req.map(Body::new)).await {
                    Answer::Respond(response) => Ok::<_, Infallible>(response),
                    Answer::Reset => {
                        // `notify_one` keeps the permit if `serve` is not waiting yet.
                        reset.notify_one();
                        std::future::pending().await
                    }
                }
            }
        })
    };
    let mut connection =
        hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::select! {
        // Errors are the client's business (it closed, sent garbage): nothing to record.
        _ = &mut connection => {}
        () = reset.notified() => {
            let stream = connection.into_parts().io.into_inner();
            // Fails only if the socket is already gone, which closes it just the same.
            let _ = stream.set_zero_linger();
            drop(stream);
        }
    }
}

/// One request as it arrived, with the fault drawn for it.
struct Exchange {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
    fault: Option<FaultKind>,
    record: Recorded,
}

async fn handle(shared: Arc<Shared>, req: Request) -> Answer {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return Answer::Respond(plain(
                StatusCode::BAD_REQUEST,
                format!("proxy could not read the request body: {e}"),
            ));
        }
    };
    let path = parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let (service, operation) = identify(&parts.method, &parts.uri, &parts.headers, &body);
    let fault = shared.draw(&service, &operation);
    let record = Recorded {
        service,
        operation,
        body: parse_body(&body),
        path: path.clone(),
        status: 0,
        injected: fault.is_some(),
        fault,
        forwarded: false,
        upstream_status: None,
        upstream_body: None,
        at,
        elapsed: Duration::ZERO,
    };
    let exchange = Exchange { method: parts.method, path, headers: parts.headers, body, fault, record };
    // hyper drops this future when the client closes its connection (a client-side timeout).
    // The exchange runs detached so that what reaches moto, and what is recorded, does not
    // depend on where this future happened to be at that moment; it watches `tx` to learn
    // that the client has gone.
    let (tx, rx) = oneshot::channel();
    tokio::spawn(shared.exchange(exchange, tx));
    rx.await.unwrap_or(Answer::Reset)
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

    /// Carries out one exchange: applies its fault, forwards when the fault lets it, answers
    /// the client (if it still waits), then records what happened.
    async fn exchange(self: Arc<Self>, mut x: Exchange, mut tx: oneshot::Sender<Answer>) {
        let answer = match x.fault {
            None => self.forward(&mut x, &mut tx).await.map(Answer::Respond),
            Some(kind @ (FaultKind::Throttle | FaultKind::ServerError)) => {
                Some(Answer::Respond(self.error_response(&x.record.service, kind)))
            }
            Some(FaultKind::Timeout(delay)) => {
                // The client gave up during the delay: the request never reaches moto.
                let waited = tokio::select! {
                    () = tokio::time::sleep(delay) => true,
                    () = tx.closed() => false,
                };
                if waited { self.forward(&mut x, &mut tx).await.map(Answer::Respond) } else { None }
            }
            Some(FaultKind::Reset) => Some(Answer::Reset),
            Some(FaultKind::LostResponse) => self.forward(&mut x, &mut tx).await.map(|_| Answer::Reset),
            Some(FaultKind::StallAfterForward(delay)) => match self.forward(&mut x, &mut tx).await {
                Some(response) => {
                    let waited = tokio::select! {
                        () = tokio::time::sleep(delay) => true,
                        () = tx.closed() => false,
                    };
                    waited.then_some(Answer::Respond(response))
                }
                None => None,
            },
        };
        if let Some(answer) = answer {
            let status = match &answer {
                Answer::Respond(response) => response.status().as_u16(),
                Answer::Reset => 0,
            };
            // A failed send means the client left meanwhile: it got nothing.
            if tx.send(answer).is_ok() {
                x.record.status = status;
            }
        }
        x.record.elapsed = x.record.at.elapsed();
        lock(&self.records).push(x.record);
    }

    /// Sends the request to moto and returns its answer for the client, noting in the record
    /// that it was forwarded and what moto said. None when the client left while the call
    /// waited for its turn (then it is not forwarded).
    async fn forward(&self, x: &mut Exchange, tx: &mut oneshot::Sender<Answer>) -> Option<Response> {
        // moto applies a DynamoDB transaction item by item without a lock, so two
        // concurrent TransactWriteItems can interleave (and its rollback can undo the
        // other's writes). DynamoDB itself is serializable: one DynamoDB call at a time
        // here restores that, so tests measure herald's atomicity, not moto's races.
        // Only the call itself is serialized: a fault's delay never holds up other calls.
        // The queue for the lock is this proxy's artefact: a call whose client gave up
        // while queued is dropped, or abandoned calls would pile up behind it and slow
        // every later one into a timeout too.
        let _serial = if x.record.service == "dynamodb" {
            tokio::select! {
                guard = self.dynamodb_serial.lock() => Some(guard),
                () = tx.closed() => return None,
            }
        } else {
            None
        };
        let mut req = self.http.request(x.method.clone(), format!("{}{}", self.upstream, x.path)).body(x.body.clone());
        for (name, value) in &x.headers {
            // Host is kept: moto builds SQS queue URLs from it, so they name the proxy.
            if !is_hop_by_hop(name) {
                req = req.header(name, value);
            }
        }
        let upstream = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                // Anything but a failed connect may have reached moto.
                x.record.forwarded = !e.is_connect();
                return Some(plain(StatusCode::BAD_GATEWAY, format!("proxy could not reach {}: {e}", self.upstream)));
            }
        };
        x.record.forwarded = true;
        let status = upstream.status();
        x.record.upstream_status = Some(status.as_u16());
        let mut out = HeaderMap::new();
        for (name, value) in upstream.headers() {
            if !is_hop_by_hop(name) {
                out.append(name.clone(), value.clone());
            }
        }
        let bytes = match upstream.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Some(plain(StatusCode::BAD_GATEWAY, format!("proxy lost {}'s answer: {e}", self.upstream)));
            }
        };
        x.record.upstream_body = Some(parse_body(&bytes));
        let mut response = Response::new(Body::from(bytes));
        *response.status_mut() = status;
        *response.headers_mut() = out;
        Some(response)
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
/// The fields of a query-protocol request (SNS, the old SQS): the form body as the proxy
/// recorded it (`{"raw": "Action=Publish&PhoneNumber=%2B44..."}`), decoded.
pub fn form_fields(body: &Value) -> BTreeMap<String, String> {
    let raw = body["raw"].as_str().unwrap_or_default();
    raw.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

/// SNS `MessageAttributes` of a recorded query-protocol request, by name: (data type, value).
pub fn sns_message_attributes(body: &Value) -> BTreeMap<String, (String, String)> {
    let fields = form_fields(body);
    let mut attributes = BTreeMap::new();
    for n in 1.. {
        let prefix = format!("MessageAttributes.entry.{n}");
        let Some(name) = fields.get(&format!("{prefix}.Name")) else { break };
        let data_type = fields.get(&format!("{prefix}.Value.DataType")).cloned().unwrap_or_default();
        let value = fields.get(&format!("{prefix}.Value.StringValue")).cloned().unwrap_or_default();
        attributes.insert(name.clone(), (data_type, value));
    }
    attributes
}

/// The text of the first `<tag>` in a recorded XML answer (`{"raw": "<PublishResponse>..."}`).
pub fn xml_text(body: &Value, tag: &str) -> Option<String> {
    let raw = body["raw"].as_str()?;
    let start = raw.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = raw[start..].find(&format!("</{tag}>"))? + start;
    Some(raw[start..end].to_owned())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form_value<'a>(form: &'a str, name: &str) -> Option<&'a str> {
    form.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}
