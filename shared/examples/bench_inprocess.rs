//! The in-process half of `scripts/bench.sh`: rendering beside handlebars.js, the
//! whole email, the pipeline's CPU per message, and one function instance's batches
//! against a provider that answers after 50 ms. Prints one JSON object per line
//! (`{"metric", "unit", "samples"}` or `{"metric", "unit", "value"}`) for
//! scripts/bench_table.py.
//!
//! usage: bench_inprocess <repo root> <node> <tests/js/bench.js>
//!
//! Timing is the same for herald and for the reference: warm up for 2 s, then 50
//! samples, each the mean of a timed loop; herald and handlebars.js take turns three
//! times so that a noisy spell of the machine falls on both.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use herald::config::Settings;
use herald::pipeline::{BatchBudget, Pipeline, Ports, QueuedRequest, Senders};
use herald::ports::{EmailSender, OutboundEmail, SendError, SystemClock};
use herald::render::Catalogue;
use herald::request::{Channel, TemplateRef};
use herald::testing::{MemorySink, MemoryStore};
use serde_json::{Value, json};

#[global_allocator]
static ALLOC: herald::alloc::Allocator = herald::alloc::Allocator;

fn emit(metric: &str, unit: &str, samples: &[f64]) {
    println!("{}", json!({"metric": metric, "unit": unit, "samples": samples}));
}

fn emit_value(metric: &str, unit: &str, value: f64) {
    println!("{}", json!({"metric": metric, "unit": unit, "value": value}));
}

/// Warm up, then `samples` timed loops of `iterations`; microseconds per iteration.
fn time_loop(samples: usize, mut f: impl FnMut()) -> Vec<f64> {
    let warm = Instant::now();
    let mut n = 0u64;
    while warm.elapsed() < Duration::from_secs(2) {
        f();
        n += 1;
    }
    // About 100 ms a sample.
    let per = warm.elapsed().as_secs_f64() / n.max(1) as f64;
    let iterations = ((0.1 / per) as u64).clamp(1, 100_000);
    (0..samples)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                f();
            }
            start.elapsed().as_secs_f64() * 1e6 / iterations as f64
        })
        .collect()
}

/// The context the pipeline builds for a request of `template` with this example data.
fn context(repo: &Path, template: &str, data_file: &str, category: &str) -> Value {
    let data = std::fs::read_to_string(repo.join("examples/data").join(data_file)).expect("example data");
    herald::testing::email_context(serde_json::from_str(&data).expect("example data is JSON"), template, category)
}

fn template(name: &str) -> TemplateRef {
    serde_json::from_value(json!(name)).expect("template name")
}

/// herald's Handlebars stage of the newsletter, then handlebars.js on the same files and
/// context (checked to print the same text), three turns each.
fn render_beside_handlebars_js(repo: &Path, node: &str, script: &str) {
    let catalogue = Catalogue::load(&repo.join("templates")).expect("templates");
    let value = context(repo, "newsletter", "newsletter.json", "marketing");
    let newsletter = template("newsletter");
    let ctx = handlebars::Context::from(value.clone());
    let parts = ["email.subject.hbs", "email.mjml.hbs"];
    let expected: serde_json::Map<String, Value> = parts
        .iter()
        .map(|file| {
            let out = catalogue.render_handlebars(&newsletter, file, None, &ctx).expect("render").expect("part");
            (file.to_string(), Value::String(out))
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let (context_file, expected_file) = (dir.path().join("context.json"), dir.path().join("expected.json"));
    std::fs::write(&context_file, value.to_string()).expect("write context");
    std::fs::write(&expected_file, Value::Object(expected).to_string()).expect("write expected");

    let (mut herald, mut reference) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        herald.extend(time_loop(50, || {
            for file in parts {
                std::hint::black_box(catalogue.render_handlebars(&newsletter, file, None, &ctx).expect("render"));
            }
        }));
        let out = std::process::Command::new(node)
            .arg(script)
            .arg(repo.join("templates"))
            .arg("newsletter")
            .arg(&context_file)
            .arg(&expected_file)
            .output()
            .expect("run node");
        assert!(out.status.success(), "handlebars.js reference failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let result: Value = serde_json::from_slice(&out.stdout).expect("bench.js prints JSON");
        let samples = result["samples_ns"].as_array().expect("samples_ns");
        reference.extend(samples.iter().filter_map(Value::as_f64).map(|ns| ns / 1000.0));
    }
    emit("render.handlebars.newsletter", "us", &herald);
    emit("render.handlebars.newsletter.reference", "us", &reference);
}

fn full_email(repo: &Path) {
    let catalogue = Catalogue::load(&repo.join("templates")).expect("templates");
    for (name, data, category) in
        [("order-confirmation", "order.json", "transactional"), ("newsletter", "newsletter.json", "marketing")]
    {
        let value = context(repo, name, data, category);
        let t = template(name);
        // A campaign's emails share a few shapes: the CSS inlining of one is reused
        // (render::inline)...
        let samples = time_loop(30, || {
            std::hint::black_box(catalogue.render(&t, Channel::Email, None, &value).expect("render"));
        });
        emit(&format!("render.email.{name}"), "us", &samples);
        // ...and the first email of a shape pays for css-inline.
        let samples = time_loop(30, || {
            herald::render::email::forget_shapes();
            std::hint::black_box(catalogue.render(&t, Channel::Email, None, &value).expect("render"));
        });
        emit(&format!("render.email.{name}.first_of_shape"), "us", &samples);
    }
}

/// A provider that answers at once, or after `delay`, and keeps nothing.
struct Provider {
    delay: Option<Duration>,
    sent: AtomicU64,
}

#[async_trait]
impl EmailSender for Provider {
    async fn send_email(&self, _: &OutboundEmail) -> Result<String, SendError> {
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        Ok(format!("m-{}", self.sent.fetch_add(1, Ordering::Relaxed)))
    }
}

fn pipeline(repo: &Path, delay: Option<Duration>) -> Pipeline {
    let catalogue = Arc::new(Catalogue::load(&repo.join("templates")).expect("templates"));
    let settings = Arc::new(
        Settings::parse(
            "[email]\nfrom = \"Acme <hello@acme.example>\"\nunsubscribe_url = \"https://acme.example/u?token={token}\"\nunsubscribe_secret = \"0123456789abcdef0123\"\n\n[[caps]]\ncategory = \"marketing\"\nlimit = 3\nwindow = \"7d\"\n",
            "bench",
            repo,
            None,
        )
        .expect("settings"),
    );
    let store = Arc::new(MemoryStore::new());
    let sender = Arc::new(Provider { delay, sent: AtomicU64::new(0) });
    let ports =
        Ports { store: store.clone(), senders: Senders::email(sender), scheduler: store, clock: Arc::new(SystemClock) };
    Pipeline::new(catalogue, settings, ports)
}

/// The example data of the two templates the pipeline benches send, read once.
fn example_data(repo: &Path) -> &'static (Value, Value) {
    static DATA: std::sync::OnceLock<(Value, Value)> = std::sync::OnceLock::new();
    DATA.get_or_init(|| {
        let read = |file: &str| -> Value {
            let text = std::fs::read_to_string(repo.join("examples/data").join(file)).expect("example data");
            serde_json::from_str(&text).expect("example data is JSON")
        };
        (read("order.json"), read("newsletter.json"))
    })
}

/// `n` requests: the order confirmation (transactional, HTML layout) and the newsletter
/// (marketing, MJML, one cap), alternately, each to its own recipient.
fn requests(repo: &Path, seq: &AtomicU64, n: usize) -> Vec<QueuedRequest> {
    let (order, newsletter) = example_data(repo);
    (0..n)
        .map(|i| {
            let k = seq.fetch_add(1, Ordering::Relaxed);
            let (template, category, data) = if i % 2 == 0 {
                ("order-confirmation", "transactional", order)
            } else {
                ("newsletter", "marketing", newsletter)
            };
            let body = json!({"id": format!("bench-{k}"), "channel": "email", "category": category,
                "recipient": {"id": format!("u{k}"), "email": "ada@example.com", "locale": "en"},
                "template": template, "data": data});
            QueuedRequest {
                message_id: format!("m{k}"),
                body: body.to_string(),
                attempt: 0,
                not_before: None,
                enqueued_at: None,
                source: None,
            }
        })
        .collect()
}

/// CPU seconds this process has used (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The pipeline alone (parse, validate, policy, render, build, in-memory store, a
/// provider answering at once), one thread: CPU per message, as the wall time of a
/// thread that never waits (the batches are built before each is timed).
fn pipeline_cpu(repo: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let pipeline = pipeline(repo, None);
    let sink = MemorySink::new();
    let seq = AtomicU64::new(0);
    let mut samples = Vec::new();
    rt.block_on(async {
        for round in 0..40 {
            let batch = requests(repo, &seq, 10);
            let start = Instant::now();
            let result = pipeline.process_batch(batch, 10, &sink, BatchBudget::default()).await;
            let elapsed = start.elapsed();
            assert!(result.failed.is_empty(), "a bench request failed");
            if round >= 10 {
                samples.push(elapsed.as_secs_f64() * 1e6 / 10.0);
            }
        }
    });
    emit("pipeline.cpu_per_message", "us", &samples);
}

/// Batches against a provider answering after 50 ms: a batch of 10 at record concurrency
/// 10 (wall time against the round trip), then throughput at concurrency 10, 50, 100.
fn provider_batches(repo: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let pipeline = pipeline(repo, Some(Duration::from_millis(50)));
    let sink = MemorySink::new();
    let seq = AtomicU64::new(0);
    rt.block_on(async {
        let mut batch_ms = Vec::new();
        for round in 0..25 {
            let batch = requests(repo, &seq, 10);
            let start = Instant::now();
            let result = pipeline.process_batch(batch, 10, &sink, BatchBudget::default()).await;
            assert!(result.failed.is_empty(), "a bench request failed");
            if round >= 5 {
                batch_ms.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        emit("batch10.provider50ms", "ms", &batch_ms);
        for concurrency in [10usize, 50, 100] {
            // Several batches of 100 records, as one instance with a large SQS batch.
            let (mut sent, cpu0, start) = (0usize, cpu_seconds(), Instant::now());
            while start.elapsed() < Duration::from_secs(3) {
                let batch = requests(repo, &seq, 100);
                let result = pipeline.process_batch(batch, concurrency, &sink, BatchBudget::default()).await;
                assert!(result.failed.is_empty(), "a bench request failed");
                sent += 100;
            }
            let (wall, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
            emit_value(&format!("throughput.c{concurrency}.messages_per_second"), "msg/s", sent as f64 / wall);
            emit_value(&format!("throughput.c{concurrency}.cpu_per_message"), "us", cpu * 1e6 / sent as f64);
        }
    });
}

fn main() {
    let mut args = std::env::args().skip(1);
    let repo = PathBuf::from(args.next().expect("usage: bench_inprocess <repo> <node> <bench.js>"));
    let node = args.next().expect("node");
    let script = args.next().expect("bench.js");
    render_beside_handlebars_js(&repo, &node, &script);
    full_email(&repo);
    pipeline_cpu(&repo);
    provider_batches(&repo);
}
