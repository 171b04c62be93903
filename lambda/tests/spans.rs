//! The entry point's tracing: one span per record, naming the SQS message and the
//! request. Its own test binary: tracing caches per call site whether anyone listens,
//! and a test in the same process logging without a subscriber could cache "no one".

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::*;

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
