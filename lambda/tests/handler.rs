//! The entry point's batch handler, in-process: the in-memory twins behind the ports and
//! plain `SqsEvent`s shaped as Lambda delivers them, the way aws-lambda-rust-runtime's
//! examples test a handler. The real binaries on moto are the functions' own tests.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use herald::config::Settings;
use herald::pipeline::{MAX_ATTEMPTS, Pipeline, Ports, Senders};
use herald::ports::{FixedClock, SendError};
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

struct Rig {
    handler: Handler,
    sender: Arc<RecordingSender>,
    sink: Arc<MemorySink>,
    invocations: Arc<AtomicUsize>,
}

/// A handler for one channel's function (`senders`) over `store` (AWS: one table for all).
fn rig_on(store: Arc<MemoryStore>, senders: fn(Arc<RecordingSender>) -> Senders) -> Rig {
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

fn rig(senders: fn(Arc<RecordingSender>) -> Senders) -> Rig {
    rig_on(Arc::new(MemoryStore::new()), senders)
}

fn email_only(s: Arc<RecordingSender>) -> Senders {
    Senders::email(s)
}

fn sms_only(s: Arc<RecordingSender>) -> Senders {
    Senders::sms(s)
}

fn request(id: &str, channel: &str) -> String {
    json!({"id": id, "channel": channel, "category": "transactional",
        "recipient": {"id": "u1", "email": "ada@example.com", "phone": "+447700900123"},
        "template": "hello", "data": {"name": "Ada"}})
    .to_string()
}

/// An SQS record as Lambda's event source mapping delivers it.
fn record(message_id: &str, body: &str, receive_count: u32, attempt: Option<u32>) -> Value {
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

fn event(records: Vec<Value>) -> SqsEvent {
    serde_json::from_value(json!({ "Records": records })).expect("an SQS event")
}

fn failures(response: &SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    ids.sort();
    ids
}

fn by_request(receipts: &[Receipt]) -> BTreeMap<String, (Status, String)> {
    receipts
        .iter()
        .map(|r| {
            let reason = r.reason.as_ref().map(|x| x.to_string()).unwrap_or_default();
            (r.request_id.clone().unwrap_or_default(), (r.status, reason))
        })
        .collect()
}

#[tokio::test]
async fn a_batch_ends_in_one_receipt_per_record_and_no_failures() {
    let rig = rig(email_only);
    let records = vec![
        record("m1", &request("r1", "email"), 1, None),
        record("m2", "{not json", 1, None),
        record("m3", &request("r3", "sms"), 1, None),
    ];
    let response = rig.handler.handle(event(records), None).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    let receipts = rig.sink.receipts();
    assert_eq!(receipts.len(), 3, "{receipts:?}");
    let seen = by_request(&receipts);
    assert_eq!(seen["r1"].0, Status::Sent);
    assert_eq!(seen["r3"], (Status::Rejected, "wrong_queue:sms".to_owned()));
    assert!(receipts.iter().any(|r| r.status == Status::Rejected && r.request_id.is_none()), "the unparsable one");
    assert_eq!(rig.sender.sent().len(), 1);
    // The receipt names the record it came from.
    let sent = receipts.iter().find(|r| r.status == Status::Sent).expect("sent");
    assert_eq!(sent.source.as_deref(), Some("sqs:m1"));
    assert_eq!(rig.invocations.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_request_for_another_channel_leaves_its_id_unused_for_the_right_function() {
    let table = Arc::new(MemoryStore::new());
    let email = rig_on(table.clone(), email_only);
    let sms = rig_on(table, sms_only);
    for (rig, message) in [(&email, "m1"), (&sms, "m2")] {
        let response = rig.handler.handle(event(vec![record(message, &request("same", "sms"), 1, None)]), None).await;
        assert_eq!(failures(&response), Vec::<String>::new());
    }
    assert_eq!(by_request(&email.sink.receipts())["same"], (Status::Rejected, "wrong_queue:sms".to_owned()));
    assert_eq!(by_request(&sms.sink.receipts())["same"].0, Status::Sent);
    assert_eq!((email.sender.sent().len(), sms.sender.sent().len()), (0, 1));
}

#[tokio::test]
async fn an_undecided_record_is_handed_back_and_the_others_are_not() {
    let rig = rig(email_only);
    rig.sender.fail_with([SendError::transient("Throttling", "slow down")]);
    let records = vec![record("m1", &request("r1", "email"), 1, None), record("m2", &request("r2", "email"), 1, None)];
    let response = rig.handler.handle(event(records), None).await;
    // Concurrency decides which of the two met the throttle: exactly one is handed back.
    let failed = failures(&response);
    assert_eq!(failed.len(), 1, "{failed:?}");
    let receipts = rig.sink.receipts();
    assert_eq!(receipts.len(), 1, "no receipt for the undecided one: {receipts:?}");
    assert_eq!(receipts[0].status, Status::Sent);
    assert_ne!(receipts[0].source.as_deref(), Some(format!("sqs:{}", failed[0]).as_str()));
}

#[tokio::test]
async fn receives_and_hops_count_as_attempts_until_the_request_ends_failed() {
    let last = rig(email_only);
    // One hop and MAX_ATTEMPTS - 1 receives: attempt MAX_ATTEMPTS - 1, the last allowed.
    last.sender.fail_with([SendError::transient("Throttling", "slow down")]);
    let e = event(vec![record("m1", &request("r1", "email"), MAX_ATTEMPTS - 1, Some(1))]);
    let response = last.handler.handle(e, None).await;
    assert_eq!(failures(&response), Vec::<String>::new(), "out of attempts: ended, not handed back");
    assert_eq!(by_request(&last.sink.receipts())["r1"], (Status::Failed, "retries_exhausted".to_owned()));

    // One attempt fewer: handed back for SQS to deliver again, no receipt yet.
    let rig = rig(email_only);
    rig.sender.fail_with([SendError::transient("Throttling", "slow down")]);
    let e = event(vec![record("m1", &request("r1", "email"), MAX_ATTEMPTS - 2, Some(1))]);
    assert_eq!(failures(&rig.handler.handle(e, None).await), ["m1"]);
    assert!(rig.sink.receipts().is_empty());
}

#[tokio::test]
async fn past_the_deadline_nothing_starts_and_everything_is_handed_back() {
    let rig = rig(email_only);
    let records = vec![record("m1", &request("r1", "email"), 1, None), record("m2", &request("r2", "email"), 1, None)];
    let response = rig.handler.handle(event(records), Some(Instant::now())).await;
    assert_eq!(failures(&response), ["m1", "m2"]);
    assert!(rig.sender.sent().is_empty());
    assert!(rig.sink.receipts().is_empty());
}

#[tokio::test]
async fn a_terminal_receipt_that_cannot_go_out_hands_its_record_back() {
    let rig = rig(email_only);
    rig.sink.fail(true);
    let response = rig.handler.handle(event(vec![record("m1", &request("r1", "email"), 1, None)]), None).await;
    assert_eq!(failures(&response), ["m1"]);
    // The redelivery re-emits the recorded outcome and sends nothing again.
    rig.sink.fail(false);
    let response = rig.handler.handle(event(vec![record("m1", &request("r1", "email"), 2, None)]), None).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    assert_eq!(by_request(&rig.sink.receipts())["r1"].0, Status::Sent);
    assert_eq!(rig.sender.sent().len(), 1);
    assert_eq!(rig.invocations.load(Ordering::SeqCst), 2, "the hook runs once per invocation");
}

type SeenSpans = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

/// Spans opened while handling, with their fields.
#[derive(Clone, Default)]
struct Spans(SeenSpans);

struct FieldVisitor<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for FieldVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut FieldVisitor(&mut fields));
        if let Ok(mut spans) = self.0.lock() {
            spans.push((attrs.metadata().name().to_owned(), fields));
        }
    }
}

#[tokio::test]
async fn each_record_runs_in_a_span_naming_its_message_and_request() {
    use tracing_subscriber::layer::SubscriberExt;
    let spans = Spans::default();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
    let rig = rig(email_only);
    let records = vec![record("m1", &request("r1", "email"), 1, None), record("m2", &request("r2", "email"), 1, None)];
    rig.handler.handle(event(records), None).await;
    let seen = spans.0.lock().expect("spans").clone();
    let mut records: Vec<(String, String)> = seen
        .iter()
        .filter(|(name, _)| name == "record")
        .map(|(_, f)| {
            let field = |k: &str| f.get(k).cloned().unwrap_or_default();
            (field("message_id"), field("request_id"))
        })
        .collect();
    records.sort();
    assert_eq!(records, [("m1".to_owned(), "r1".to_owned()), ("m2".to_owned(), "r2".to_owned())], "{seen:?}");
    // Fields name ids only, never an address.
    assert!(!format!("{seen:?}").contains("ada@example.com"));
}

/// A sender's own calls (the SMS opt-out check) count in each record's budget: with room
/// for exactly the standard calls, a record whose sender asks first is not started.
#[tokio::test]
async fn a_senders_own_calls_count_in_the_budget() {
    for (extra, started) in [(0, true), (1, false)] {
        let mut rig = rig(email_only);
        rig.handler.extra_calls_per_record = extra;
        let calls = herald::pipeline::CALLS_PER_RECORD + herald::pipeline::CALLS_PER_EMIT;
        let room = rig.handler.aws_timeout * calls + Duration::from_millis(50);
        let response = rig
            .handler
            .handle(event(vec![record("m1", &request("r1", "email"), 1, None)]), Some(Instant::now() + room))
            .await;
        assert_eq!(failures(&response).is_empty(), started, "extra calls {extra}");
        assert_eq!(rig.sender.sent().len(), usize::from(started), "extra calls {extra}");
    }
}
