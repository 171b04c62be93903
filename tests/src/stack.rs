//! A deployed herald on moto, for any set of functions: the resources `infra/template.yaml`
//! defines, each function's real binary behind its own Lambda Runtime API emulator and
//! SQS event-source emulator, every AWS call through the recording, fault-injecting
//! proxy. What the functions have in common lives here once; a test adds what its
//! channel needs (a verified identity, a template folder).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use serde_json::Value;

use crate::event_source::EventSource;
use crate::lambda::{FunctionProcess, RuntimeApi};
use crate::moto::Moto;
use crate::proxy::Proxy;
use crate::template::{Overrides, Template};

/// One function to run: its logical id in the template, its binary, how many
/// execution environments, and the environment only a deployment supplies.
pub struct Spec {
    pub id: &'static str,
    pub binary: PathBuf,
    pub processes: usize,
    pub env: Vec<(String, String)>,
    /// The queue (logical id) to feed it from, for a function with several SQS event
    /// sources (one `Spec` per source); None: its only one.
    pub queue: Option<&'static str>,
}

impl Spec {
    /// One process of `binary` as the function `id`, fed from its only queue.
    pub fn new(id: &'static str, binary: PathBuf) -> Spec {
        Spec { id, binary, processes: 1, env: Vec::new(), queue: None }
    }

    pub fn env(mut self, name: &str, value: impl Into<String>) -> Spec {
        self.env.push((name.to_owned(), value.into()));
        self
    }

    /// Fed from this queue (logical id) of its event sources.
    pub fn fed_by(mut self, queue: &'static str) -> Spec {
        self.queue = Some(queue);
        self
    }
}

/// A binary of another workspace package, built beside `own` (a test's
/// `env!("CARGO_BIN_EXE_...")`): `cargo test --workspace` builds every package's.
pub fn sibling_binary(own: &str, name: &str) -> PathBuf {
    let path = PathBuf::from(own).with_file_name(name);
    assert!(path.exists(), "{} is not built: run `cargo build -p {name}` (scripts/test.sh builds it)", path.display());
    path
}

/// One running function.
pub struct Running {
    pub id: &'static str,
    /// The logical id of the queue it is fed from.
    pub queue_id: String,
    pub request_queue: String,
    pub dlq: String,
    pub runtime: Arc<RuntimeApi>,
    pub source: Arc<EventSource>,
    pub processes: Vec<FunctionProcess>,
    /// Its environment, as the processes got it.
    pub env: Vec<(String, String)>,
}

impl Running {
    pub fn env_var(&self, name: &str) -> &str {
        self.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        self.processes.iter().map(FunctionProcess::logs).collect::<Vec<_>>().join("\n")
    }
}

/// Settings of a whole stack.
pub struct Options {
    /// The `HERALD_CONFIG_TOML` every function gets.
    pub config: String,
    /// Every queue's visibility timeout (seconds): above the longest batch.
    pub visibility: u32,
    /// `HERALD_AWS_TIMEOUT_MS`, and the invocation deadline that fits a batch of such calls.
    pub aws_timeout_ms: u64,
    pub function_timeout: Duration,
}

pub struct Stack {
    pub moto: Moto,
    pub proxy: Proxy,
    pub sdk: aws_config::SdkConfig,
    pub sqs: aws_sdk_sqs::Client,
    pub table: String,
    pub receipts_queue: String,
    pub functions: Vec<Running>,
    logs: tempfile::TempDir,
}

impl Stack {
    pub async fn start(specs: Vec<Spec>, options: &Options) -> Stack {
        Self::start_with_secrets(specs, options, &[]).await
    }

    /// [`Stack::start`], with these values in the template's secrets (logical id, text)
    /// before any function starts: what an operator puts in a secret after deploying
    /// (the push providers' credentials).
    pub async fn start_with_secrets(specs: Vec<Spec>, options: &Options, secrets: &[(&str, &str)]) -> Stack {
        let moto = Moto::start().await;
        let proxy = Proxy::start(&moto.endpoint).await;
        let sdk = moto.sdk_config(&moto.endpoint).await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        // Queues (attributes, redrive policies), the table (keys, TTL) and secrets as the
        // template defines them, so the tests exercise what is deployed.
        let template = Template::repo();
        let overrides = Overrides { visibility_timeout: Some(options.visibility) };
        let deployed = template.create_resources(&sdk, &overrides).await;
        for (id, value) in secrets {
            deployed.put_secret(&sdk, id, value).await;
        }
        let logs = tempfile::tempdir().expect("log folder");
        let (mut table, mut receipts_queue) = (String::new(), String::new());
        let mut functions = Vec::new();
        for spec in specs {
            let request_queue_id = spec.queue.unwrap_or_else(|| template.event_queue(spec.id));
            let request_queue = deployed.queue_url(request_queue_id).to_owned();
            let dlq = deployed.queue_url(template.dead_letter_queue(request_queue_id).expect("a DLQ")).to_owned();
            // The environment as the template sets it, then what only a deployment supplies.
            let mut vars = template.resolved_env(spec.id, &deployed);
            vars.insert("HERALD_CONFIG_TOML".to_owned(), options.config.clone());
            vars.insert("HERALD_AWS_TIMEOUT_MS".to_owned(), options.aws_timeout_ms.to_string());
            vars.extend(spec.env);
            for name in template.unresolved_env(spec.id, &deployed) {
                assert!(vars.contains_key(&name), "the template sets {name} on {}: give the test a value", spec.id);
            }
            table = vars.get("HERALD_TABLE").cloned().unwrap_or_default();
            receipts_queue = vars.get("HERALD_RECEIPTS_QUEUE_URL").cloned().unwrap_or_default();
            let mut env = moto.env(&proxy.endpoint());
            env.extend(vars);
            let runtime = Arc::new(RuntimeApi::start().await);
            runtime.set_deadline(options.function_timeout);
            let processes = (0..spec.processes)
                .map(|_| FunctionProcess::spawn(&spec.binary, &runtime, &env, logs.path()))
                .collect();
            let mut source = EventSource::new(sqs.clone(), &request_queue).await;
            source.invoke_timeout = options.function_timeout + Duration::from_secs(5);
            functions.push(Running {
                id: spec.id,
                queue_id: request_queue_id.to_owned(),
                request_queue,
                dlq,
                runtime,
                source: Arc::new(source),
                processes,
                env,
            });
        }
        Stack { moto, proxy, sdk, sqs, table, receipts_queue, functions, logs }
    }

    pub fn function(&self, id: &str) -> &Running {
        self.functions.iter().find(|f| f.id == id).unwrap_or_else(|| panic!("{id} is not running"))
    }

    /// The function fed from the queue `queue_id` (logical id).
    pub fn fed_by(&self, queue_id: &str) -> &Running {
        self.functions.iter().find(|f| f.queue_id == queue_id).unwrap_or_else(|| panic!("nothing is fed by {queue_id}"))
    }

    /// Runs the function fed by `queue_id` until that queue is empty (delayed messages too).
    pub async fn drain_queue(&self, queue_id: &str, pollers: usize) {
        let f = self.fed_by(queue_id);
        let drained = f.source.drain(&f.runtime, pollers, Duration::from_secs(90)).await;
        assert!(drained, "{queue_id} did not drain; {} logs:\n{}", f.id, f.logs());
    }

    /// Puts request bodies on a function's request queue, ten to a batch.
    pub async fn enqueue(&self, id: &str, bodies: &[String]) {
        let queue = &self.function(id).request_queue;
        for (n, chunk) in bodies.chunks(10).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("m{n}-{i}"))
                        .message_body(body)
                        .build()
                        .expect("entry")
                })
                .collect();
            let out = self.sqs.send_message_batch().queue_url(queue).set_entries(Some(entries)).send().await;
            let out = out.expect("SendMessageBatch");
            assert!(out.failed().is_empty(), "enqueue failed: {:?}", out.failed());
        }
    }

    /// Runs a function until its request queue is empty.
    pub async fn drain(&self, id: &str, pollers: usize) {
        let f = self.function(id);
        let drained = f.source.drain(&f.runtime, pollers, Duration::from_secs(90)).await;
        assert!(drained, "{id}'s request queue did not drain; function logs:\n{}", f.logs());
    }

    /// Runs a function until nothing is visible or in flight on its request queue:
    /// deferrals hours away stay delayed there.
    pub async fn settle(&self, id: &str, pollers: usize) {
        let f = self.function(id);
        let settled = f.source.settle(&f.runtime, pollers, Duration::from_secs(90)).await;
        assert!(settled, "{id}'s request queue did not settle; function logs:\n{}", f.logs());
    }

    /// Every receipt on the receipts queue (read and deleted).
    pub async fn receipts(&self) -> Vec<Value> {
        take_json(&self.sqs, &self.receipts_queue).await
    }

    /// Messages on a queue, visible, in flight or delayed.
    pub async fn queue_depth(&self, url: &str) -> usize {
        queue_depth(&self.sqs, url).await
    }

    pub fn log_dir(&self) -> &std::path::Path {
        self.logs.path()
    }
}

/// Every message on a queue, parsed as JSON (read and deleted): receipts, for instance.
pub async fn take_json(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .expect("ReceiveMessage");
        if got.messages().is_empty() {
            return out;
        }
        for m in got.messages() {
            out.push(serde_json::from_str(m.body().unwrap_or_default()).expect("a message is JSON"));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("DeleteMessage");
        }
    }
}

/// Messages on a queue, visible, in flight or delayed.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .expect("GetQueueAttributes");
    out.attributes().map(|a| a.values().filter_map(|v| v.parse::<usize>().ok()).sum()).unwrap_or(0)
}

/// Receipts grouped by request id.
pub fn by_request(receipts: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut map: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in receipts {
        map.entry(r["request_id"].as_str().unwrap_or("<none>").to_owned()).or_default().push(r.clone());
    }
    map
}
