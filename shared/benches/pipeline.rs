//! Pipeline speed: rendering the shipped newsletter, and one SQS batch of ten with
//! a provider that answers after 50 ms (the target: the batch takes one round trip,
//! under 75 ms, because records run concurrently).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use herald::config::Settings;
use herald::pipeline::{Pipeline, Ports, QueuedRequest, Senders};
use herald::ports::SystemClock;
use herald::render::Catalogue;
use herald::request::Channel;
use herald::testing::{MemorySink, MemoryStore, RecordingSender};
use serde_json::{Value, json};

// The binaries' allocator, so the figures are theirs.
#[global_allocator]
static ALLOC: herald::alloc::Allocator = herald::alloc::Allocator;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn render(c: &mut Criterion) {
    let catalogue = Catalogue::load(&repo().join("templates")).expect("templates");
    let data: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("examples/data/newsletter.json")).expect("data"))
            .expect("json");
    let mut context = data;
    context["herald"] = json!({"request_id": "r", "recipient_id": "u", "channel": "email", "category": "marketing",
                               "template": "newsletter", "unsubscribe_url": "https://acme.example/u?token=t"});
    let template = serde_json::from_value(json!("newsletter")).expect("name");
    c.bench_function("render newsletter email (subject, html, generated text)", |b| {
        b.iter(|| catalogue.render(&template, Channel::Email, None, &context).expect("render"))
    });
}

fn batch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let catalogue = Arc::new(Catalogue::load(&repo().join("templates")).expect("templates"));
    let settings = Arc::new(
        Settings::parse(
            "[email]\nfrom = \"Acme <hello@acme.example>\"\nunsubscribe_url = \"https://acme.example/u?token={token}\"\nunsubscribe_secret = \"0123456789abcdef0123\"\n",
            "bench",
            &repo(),
            None,
        )
        .expect("settings"),
    );
    let store = Arc::new(MemoryStore::new());
    let sender = Arc::new(RecordingSender::with_delay(Duration::from_millis(50)));
    let ports =
        Ports { store: store.clone(), senders: Senders::all(sender), scheduler: store, clock: Arc::new(SystemClock) };
    let pipeline = Pipeline::new(catalogue, settings, ports);
    let sink = MemorySink::new();
    let seq = AtomicU64::new(0);
    let mut group = c.benchmark_group("sqs batch");
    group.sample_size(30);
    group.bench_function("10 order emails, provider answers in 50 ms", |b| {
        b.to_async(&rt).iter(|| {
            let batch: Vec<QueuedRequest> = (0..10)
                .map(|i| {
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    let body = json!({"id": format!("bench-{n}"), "channel": "email", "category": "transactional",
                        "recipient": {"id": format!("u{i}"), "email": "ada@example.com"}, "template": "order-confirmation",
                        "data": {"customer": {"first_name": "Ada"}, "order": {"number": "A-1", "total": "$1", "items": []}}});
                    QueuedRequest { message_id: format!("m{n}"), body: body.to_string(), attempt: 0, not_before: None, enqueued_at: None, source: None }
                })
                .collect();
            let (pipeline, sink) = (&pipeline, &sink);
            async move {
                let result = pipeline.process_batch(batch, 10, sink, herald::pipeline::BatchBudget::default()).await;
                assert!(result.failed.is_empty());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, render, batch);
criterion_main!(benches);
