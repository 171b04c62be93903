//! A Lambda Runtime API emulator and the function processes it drives.
//!
//! The emulator speaks the same HTTP contract as Lambda's
//! (`GET /2018-06-01/runtime/invocation/next`, `POST .../{id}/response`,
//! `POST .../{id}/error`, `POST /2018-06-01/runtime/init/error`), so the function's
//! real compiled binary runs unmodified. Several processes may poll one emulator:
//! each is one execution environment, and each invocation goes to exactly one.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

/// Why an invocation did not produce a response.
#[derive(Debug, Clone, PartialEq)]
pub enum InvokeError {
    /// The function reported an error (`/error`), with its payload.
    Function(Value),
    /// No response in time: the function crashed, hung or was killed.
    Timeout,
}

type Reply = oneshot::Sender<Result<Value, InvokeError>>;

struct Pending {
    id: String,
    event: Value,
    reply: Reply,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Pending>>,
    notify: Notify,
    inflight: Mutex<HashMap<String, Reply>>,
    counter: AtomicU64,
    next_calls: Mutex<Vec<Instant>>,
    init_errors: Mutex<Vec<Value>>,
    deadline: Mutex<Duration>,
}

pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    lock(&shared.next_calls).push(Instant::now());
    loop {
        let notified = shared.notify.notified();
        let pending = lock(&shared.queue).pop_front();
        if let Some(p) = pending {
            let deadline = *lock(&shared.deadline);
            let deadline_ms = SystemTime::now()
                .checked_add(deadline)
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis());
            lock(&shared.inflight).insert(p.id.clone(), p.reply);
            let mut headers = HeaderMap::new();
            let put = |h: &mut HeaderMap, k: &'static str, v: String| {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(k, v);
                }
            };
            put(&mut headers, "lambda-runtime-aws-request-id", p.id.clone());
            put(&mut headers, "lambda-runtime-deadline-ms", deadline_ms.to_string());
            put(
                &mut headers,
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:herald-test".to_owned(),
            );
            put(&mut headers, "lambda-runtime-trace-id", format!("Root=1-00000000-{:024x}", 0));
            put(&mut headers, "content-type", "application/json".to_owned());
            return (StatusCode::OK, headers, p.event.to_string()).into_response();
        }
        notified.await;
    }
}

async fn respond(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    finish(&shared, &id, Ok(value))
}

async fn error(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    finish(&shared, &id, Err(InvokeError::Function(value)))
}

fn finish(shared: &Shared, id: &str, result: Result<Value, InvokeError>) -> StatusCode {
    match lock(&shared.inflight).remove(id) {
        Some(reply) => {
            let _ = reply.send(result);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    lock(&shared.init_errors).push(value);
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        *lock(&shared.deadline) = Duration::from_secs(30);
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the runtime API emulator");
        let addr = listener.local_addr().expect("emulator address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RuntimeApi { addr, shared, task }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Invokes the function with `event` and waits for its answer.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Value, InvokeError> {
        let id = format!("req-{:08}", self.shared.counter.fetch_add(1, Ordering::SeqCst));
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.queue).push_back(Pending { id: id.clone(), event, reply: tx });
        self.shared.notify.notify_one();
        let result = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            _ => Err(InvokeError::Timeout),
        };
        // A crashed function never answers: forget the invocation.
        lock(&self.shared.inflight).remove(&id);
        lock(&self.shared.queue).retain(|p| p.id != id);
        result
    }

    /// The time each invocation is given (`Lambda-Runtime-Deadline-Ms` is now + this): the
    /// function's timeout. 30 s unless set; match it to the event source's `invoke_timeout`.
    pub fn set_deadline(&self, timeout: Duration) {
        *lock(&self.shared.deadline) = timeout;
    }

    /// Fails at once every invocation a process took and has not answered, with `error`, as
    /// Lambda does when the runtime process exits (`Runtime.ExitError`) instead of waiting
    /// for the timeout. For an emulator polled by one process, after killing it. Returns how
    /// many invocations failed.
    pub fn fail_taken(&self, error: Value) -> usize {
        let taken: Vec<Reply> = lock(&self.shared.inflight).drain().map(|(_, reply)| reply).collect();
        let n = taken.len();
        for reply in taken {
            // The invoker may have given up already: nobody left to tell.
            let _ = reply.send(Err(InvokeError::Function(error.clone())));
        }
        n
    }

    /// When each `/next` call arrived (the first one ends a cold start).
    pub fn next_calls(&self) -> Vec<Instant> {
        lock(&self.shared.next_calls).clone()
    }

    pub fn init_errors(&self) -> Vec<Value> {
        lock(&self.shared.init_errors).clone()
    }
}

/// One execution environment: the function binary as a child process.
pub struct FunctionProcess {
    child: std::process::Child,
    log: PathBuf,
    pub started: Instant,
}

impl FunctionProcess {
    /// Starts `bin` against `runtime` with `env` (AWS endpoint, herald config...).
    /// Output (the function's JSON logs) goes to `log_dir`.
    pub fn spawn(bin: &Path, runtime: &RuntimeApi, env: &[(String, String)], log_dir: &Path) -> Self {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let log = log_dir.join(format!("function-{}.log", SEQ.fetch_add(1, Ordering::SeqCst)));
        let out = std::fs::File::create(&log).expect("function log file");
        let err = out.try_clone().expect("function log file");
        let mut cmd = std::process::Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", runtime.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "herald-test")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/herald-test")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .stdout(out)
            .stderr(err)
            .stdin(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        FunctionProcess { child, log, started }
    }

    /// Kills the process at once (SIGKILL), as a crashed or timed-out sandbox would die.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id (for its peak memory in /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Everything the function wrote so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
