//! What the entry point's in-process tests share: a handler over the in-memory twins,
//! and SQS events shaped as Lambda delivers them.
#![allow(dead_code)] // Each test binary uses its own share of these.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use herald::config::Settings;
use herald::pipeline::{Pipeline, Ports, Senders};
use herald::ports::FixedClock;
use herald::receipt::{Receipt, Status};
use herald::render::Catalogue;
use herald::testing::{MemorySink, MemoryStore, RecordingSender};
use herald_lambda::Handler;
use serde_json::{Value, json};

const CONFIG: &str = r#"
[email]
from = "Acme <hello@acme.example>"
unsubscribe_url = "https://acme.example/u?token={token}"
unsubscribe_secret = "0123456789abcdef0123"
"#;

pub struct Rig {
    pub handler: Handler,
    pub sender: Arc<RecordingSender>,
    pub sink: Arc<MemorySink>,
    pub invocations: Arc<AtomicUsize>,
}

/// A handler for one channel's function (`senders`) over `store` (AWS: one table for all).
pub fn rig_on(store: Arc<MemoryStore>, senders: fn(Arc<RecordingSender>) -> Senders) -> Rig {
    let files = vec![
        ("hello/email.subject.hbs".to_owned(), "Hi {{name}}".to_owned()),
        ("hello/email.html.hbs".to_owned(), "<p>Hello {{name}}</p>".to_owned()),
        ("hello/sms.hbs".to_owned(), "Hello {{name}}".to_owned()),
    ];
    let catalogue = Arc::new(Catalogue::from_files("test", files).expect("catalogue"));
    let settings = Arc::new(Settings::parse(CONFIG, "test", std::path::Path::new("."), None).expect("settings"));
    let sender = Arc::new(RecordingSender::new());
    let sink = Arc::new(MemorySink::new());
    let ports = Ports {
        store: store.clone(),
        senders: senders(sender.clone()),
        scheduler: store,
        clock: Arc::new(FixedClock("2026-11-28T12:00:00Z".parse().expect("instant"))),
    };
    let invocations = Arc::new(AtomicUsize::new(0));
    let counter = invocations.clone();
    let handler = Handler {
        pipeline: Pipeline::new(catalogue, settings, ports),
        sink: sink.clone(),
        concurrency: 4,
        aws_timeout: Duration::from_millis(100),
        extra_calls_per_record: 0,
        on_invocation: Some(Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })),
    };
    Rig { handler, sender, sink, invocations }
}

pub fn rig(senders: fn(Arc<RecordingSender>) -> Senders) -> Rig {
    rig_on(Arc::new(MemoryStore::new()), senders)
}

pub fn email_only(s: Arc<RecordingSender>) -> Senders {
    Senders::email(s)
}

pub fn sms_only(s: Arc<RecordingSender>) -> Senders {
    Senders::sms(s)
}

pub fn request(id: &str, channel: &str) -> String {
    json!({"id": id, "channel": channel, "category": "transactional",
        "recipient": {"id": "u1", "email": "ada@example.com", "phone": "+447700900123"},
        "template": "hello", "data": {"name": "Ada"}})
    .to_string()
}

/// An SQS record as Lambda's event source mapping delivers it.
pub fn record(message_id: &str, body: &str, receive_count: u32, attempt: Option<u32>) -> Value {
    let mut attributes = json!({});
    if let Some(n) = attempt {
        attributes["herald-attempt"] = json!({"stringValue": n.to_string(), "dataType": "Number",
            "stringListValues": [], "binaryListValues": []});
    }
    json!({
        "messageId": message_id,
        "receiptHandle": format!("handle-{message_id}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": receive_count.to_string(), "SentTimestamp": "1795867140000",
            "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1795867140001"},
        "messageAttributes": attributes,
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:herald-email-requests",
        "awsRegion": "eu-west-1"
    })
}

pub fn event(records: Vec<Value>) -> SqsEvent {
    serde_json::from_value(json!({ "Records": records })).expect("an SQS event")
}

pub fn failures(response: &SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    ids.sort();
    ids
}

pub fn by_request(receipts: &[Receipt]) -> BTreeMap<String, (Status, String)> {
    receipts
        .iter()
        .map(|r| {
            let reason = r.reason.as_ref().map(|x| x.to_string()).unwrap_or_default();
            (r.request_id.clone().unwrap_or_default(), (r.status, reason))
        })
        .collect()
}
