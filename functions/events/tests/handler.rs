//! The events function's handler in-process, with the in-memory twins: what each kind
//! of provider message does to herald's state and what it emits.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsMessage;
use herald::ports::{Admission, Advance, Completion, EventStore, FixedClock, StateStore, SuppressionReason, Verdict};
use herald::receipt::Status;
use herald::receipt::event::EventKind;
use herald::request::{IdempotencyKey, RequestId, SuppressionKey, TenantId};
use herald::testing::{MemoryQueue, MemorySink, MemoryStore};
use herald_events::EventsHandler;
use herald_lambda::records::Handled;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

struct Rig {
    handler: EventsHandler,
    store: Arc<MemoryStore>,
    sink: Arc<MemorySink>,
    dead_letters: Arc<MemoryQueue>,
}

fn now() -> Timestamp {
    "2026-11-30T12:00:00Z".parse().unwrap()
}

fn rig() -> Rig {
    let store = Arc::new(MemoryStore::new());
    let sink = Arc::new(MemorySink::new());
    let dead_letters = Arc::new(MemoryQueue::new());
    let handler = EventsHandler {
        store: store.clone(),
        events: store.clone(),
        sink: sink.clone(),
        dead_letters: dead_letters.clone(),
        clock: Arc::new(FixedClock(now())),
        archive_for: Some(SignedDuration::from_hours(24)),
    };
    Rig { handler, store, sink, dead_letters }
}

fn message(body: &str) -> SqsMessage {
    message_sent_at(body, 1_796_040_000_000)
}

/// A queue message SQS received at `sent_ms` (what dates a raw SMS reply).
fn message_sent_at(body: &str, sent_ms: i64) -> SqsMessage {
    let attributes = json!({ "SentTimestamp": sent_ms.to_string() });
    serde_json::from_value(json!({ "messageId": "m1", "body": body, "attributes": attributes })).unwrap()
}

/// An SES event as the configuration set publishes it for a message herald sent.
fn ses_event(kind: &str, section: Value, tenant: Option<&str>) -> String {
    let mut tags = json!({ "herald-request-id": ["order-1"], "herald-category": ["marketing"] });
    if let Some(t) = tenant {
        tags["herald-tenant"] = json!([t]);
    }
    let mut event = json!({
        "eventType": kind,
        "mail": {
            "timestamp": "2026-11-30T11:59:00.000Z",
            "messageId": "ses-msg-1",
            "destination": ["pat@example.com"],
            "tags": tags,
        },
    });
    event[kind.to_ascii_lowercase()] = section;
    event.to_string()
}

fn permanent_bounce() -> Value {
    json!({
        "bounceType": "Permanent", "bounceSubType": "General", "timestamp": "2026-11-30T11:59:30.000Z",
        "feedbackId": "fb-1",
        "bouncedRecipients": [{ "emailAddress": "pat@example.com", "status": "5.1.1", "diagnosticCode": "smtp; 550 pat@example.com unknown" }],
    })
}

fn email_key() -> SuppressionKey {
    SuppressionKey::email(&herald::request::EmailAddress::parse("pat@example.com").unwrap())
}

/// Records `order-1` (of `tenant`) as sent, as the email function would.
async fn sent(store: &MemoryStore, tenant: Option<&str>) -> IdempotencyKey {
    let tenant = tenant.map(|t| TenantId::parse(t).unwrap());
    let key = IdempotencyKey::new(tenant.as_ref(), &RequestId::parse("order-1").unwrap());
    let admission = Admission {
        idempotency_key: key.clone(),
        fingerprint: "fp".into(),
        suppression_key: SuppressionKey::from_stored("email:other@example.com"),
        tenant_suppression_key: None,
        consent: None,
        caps: vec![],
        now: now(),
        lock_expires_at: now() + SignedDuration::from_mins(5),
        retain_until: now() + SignedDuration::from_hours(24),
    };
    let Verdict::Admitted(lease) = store.admit(&admission).await.unwrap() else { panic!("admitted") };
    let done = Completion {
        status: Status::Sent,
        reason: None,
        provider_message_id: Some("ses-msg-1".into()),
        at: now(),
        release_slots: false,
        retain_until: now() + SignedDuration::from_hours(24),
    };
    store.complete(&lease, &done).await.unwrap();
    key
}

fn admission_for(key: SuppressionKey, tenant_key: Option<SuppressionKey>, id: &str) -> Admission {
    Admission {
        idempotency_key: IdempotencyKey::from_stored(id),
        fingerprint: "fp".into(),
        suppression_key: key,
        tenant_suppression_key: tenant_key,
        consent: None,
        caps: vec![],
        now: now(),
        lock_expires_at: now() + SignedDuration::from_mins(5),
        retain_until: now() + SignedDuration::from_hours(24),
    }
}

#[tokio::test]
async fn a_permanent_bounce_suppresses_on_the_tenants_list_and_moves_the_status() {
    let rig = rig();
    let key = sent(&rig.store, Some("acme")).await;
    let body = ses_event("Bounce", permanent_bounce(), Some("acme"));
    assert_eq!(rig.handler.handle(message(&body)).await, Handled::Done);
    let acme = TenantId::parse("acme").unwrap();
    // The tenant's list holds it; another tenant may still write to the address.
    let v = rig.store.admit(&admission_for(email_key(), Some(email_key().for_tenant(&acme)), "-/n1")).await.unwrap();
    assert_eq!(v, Verdict::Suppressed(SuppressionReason::HardBounce));
    let globex = TenantId::parse("globex").unwrap();
    let v = rig.store.admit(&admission_for(email_key(), Some(email_key().for_tenant(&globex)), "-/n2")).await.unwrap();
    assert!(matches!(v, Verdict::Admitted(_)), "{v:?}");
    let state = rig.store.request_state(&key).await.unwrap().unwrap();
    assert_eq!(state.delivery.map(|d| d.0), Some(EventKind::Bounced));
    // One event out, naming the request, without the address.
    let events = rig.sink.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event, EventKind::Bounced);
    assert_eq!(events[0].request_id.as_deref(), Some("order-1"));
    let json = events[0].to_json();
    assert!(!json.contains("pat@example.com"), "{json}");
    // The payload is archived, addresses and all, in the state store only.
    assert!(rig.store.archived(&events[0].event_id).unwrap().contains("pat@example.com"));
    // A late delivery does not undo the bounce.
    let delivery = ses_event(
        "Delivery",
        json!({ "timestamp": "2026-11-30T11:59:10.000Z", "recipients": ["pat@example.com"] }),
        Some("acme"),
    );
    assert_eq!(rig.handler.handle(message(&delivery)).await, Handled::Done);
    assert_eq!(rig.store.request_state(&key).await.unwrap().unwrap().delivery.map(|d| d.0), Some(EventKind::Bounced));
    assert_eq!(rig.store.advance_delivery(&key, EventKind::Delivered, now()).await.unwrap(), Advance::Behind);
}

#[tokio::test]
async fn a_transient_bounce_never_suppresses() {
    let rig = rig();
    let mut bounce = permanent_bounce();
    bounce["bounceType"] = "Transient".into();
    bounce["bounceSubType"] = "MailboxFull".into();
    rig.handler.handle(message(&ses_event("Bounce", bounce, None))).await;
    let v = rig.store.admit(&admission_for(email_key(), None, "-/n1")).await.unwrap();
    assert!(matches!(v, Verdict::Admitted(_)), "{v:?}");
    assert_eq!(
        rig.sink.events()[0].bounce.as_ref().map(|b| b.bounce_type),
        Some(herald::receipt::event::BounceType::Transient)
    );
}

#[tokio::test]
async fn a_complaint_suppresses_globally_without_a_tenant() {
    let rig = rig();
    let complaint = json!({
        "timestamp": "2026-11-30T11:59:30.000Z", "feedbackId": "fb-2", "complaintFeedbackType": "abuse",
        "complainedRecipients": [{ "emailAddress": "pat@example.com" }],
    });
    rig.handler.handle(message(&ses_event("Complaint", complaint, None))).await;
    let v = rig.store.admit(&admission_for(email_key(), None, "-/n1")).await.unwrap();
    assert_eq!(v, Verdict::Suppressed(SuppressionReason::Complaint));
    assert_eq!(rig.sink.events()[0].event, EventKind::Complained);
}

#[tokio::test]
async fn stop_and_start_replies_change_sms_consent() {
    let rig = rig();
    let phone = SuppressionKey::phone(&herald::request::PhoneNumber::parse("+14155550123").unwrap());
    let reply = |text: &str, id: &str| {
        json!({
            "originationNumber": "+14155550123", "destinationNumber": "+18005550100", "messageKeyword": "KEYWORD",
            "messageBody": text, "inboundMessageId": id, "previousPublishedMessageId": "sns-1",
        })
        .to_string()
    };
    let t0 = 1_796_040_000_000;
    rig.handler.handle(message_sent_at(&reply("Stop", "in-1"), t0)).await;
    let v = rig.store.admit(&admission_for(phone.clone(), None, "-/s1")).await.unwrap();
    assert_eq!(v, Verdict::Suppressed(SuppressionReason::OptedOut));
    assert_eq!(v.decided().map(|(status, _)| status), Some(Status::Unsubscribed));
    // A START sent before that STOP, delivered late (a retry): the STOP stands.
    rig.handler.handle(message_sent_at(&reply("start", "in-0"), t0 - 60_000)).await;
    let v = rig.store.admit(&admission_for(phone.clone(), None, "-/s2")).await.unwrap();
    assert_eq!(v, Verdict::Suppressed(SuppressionReason::OptedOut));
    // A START sent after it lifts it.
    rig.handler.handle(message_sent_at(&reply("START", "in-2"), t0 + 60_000)).await;
    let v = rig.store.admit(&admission_for(phone, None, "-/s3")).await.unwrap();
    assert!(matches!(v, Verdict::Admitted(_)), "{v:?}");
    let kinds: Vec<EventKind> = rig.sink.events().iter().map(|e| e.event).collect();
    assert_eq!(kinds, vec![EventKind::OptedOut, EventKind::OptedIn, EventKind::OptedIn]);
    assert!(!rig.sink.events()[0].to_json().contains("4155550123"));
}

#[tokio::test]
async fn unreadable_messages_go_to_the_dead_letter_queue_with_the_reason() {
    let rig = rig();
    for body in ["not json", "{\"eventType\": \"Teleport\", \"mail\": {\"messageId\": \"x\"}}", "[1, 2]"] {
        assert_eq!(rig.handler.handle(message(body)).await, Handled::Done, "{body}");
    }
    let dead = rig.dead_letters.sent();
    assert_eq!(dead.len(), 3);
    assert!(dead[1].2[0].1.contains("Teleport"), "{:?}", dead[1].2);
    assert!(rig.sink.events().is_empty());
    // SNS housekeeping is not an event, and not an error either.
    let confirmation = json!({"Type": "SubscriptionConfirmation", "MessageId": "x", "Message": "confirm"}).to_string();
    assert_eq!(rig.handler.handle(message(&confirmation)).await, Handled::Done);
    assert_eq!(rig.dead_letters.sent().len(), 3);
    // A dead-letter queue that refuses: SQS delivers the message again, nothing is lost.
    rig.dead_letters.fail(true);
    assert_eq!(rig.handler.handle(message("not json")).await, Handled::Retry);
}

#[tokio::test]
async fn a_failed_emit_is_retried_and_the_event_keeps_its_id() {
    let rig = rig();
    let body = ses_event("Bounce", permanent_bounce(), None);
    rig.sink.fail(true);
    assert_eq!(rig.handler.handle(message(&body)).await, Handled::Retry);
    rig.sink.fail(false);
    assert_eq!(rig.handler.handle(message(&body)).await, Handled::Done);
    // The SNS envelope form of the same event: the same id, a duplicate to subscribers.
    let envelope =
        json!({"Type": "Notification", "MessageId": "sns-2", "Message": body, "Timestamp": "2026-11-30T11:59:31.000Z"})
            .to_string();
    assert_eq!(rig.handler.handle(message(&envelope)).await, Handled::Done);
    let events = rig.sink.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event_id, events[1].event_id);
}

#[tokio::test]
async fn a_store_failure_retries_the_message() {
    let rig = rig();
    rig.store.fail_next(1);
    assert_eq!(rig.handler.handle(message(&ses_event("Bounce", permanent_bounce(), None))).await, Handled::Retry);
    assert!(rig.sink.events().is_empty(), "nothing emitted before the state changed");
}

/// A bounce of request `id`, as queue message `message_id`.
fn bounce_of(id: &str, message_id: &str) -> SqsMessage {
    let mut event: Value = serde_json::from_str(&ses_event("Bounce", permanent_bounce(), None)).unwrap();
    event["mail"]["tags"]["herald-request-id"] = json!([id]);
    event["mail"]["messageId"] = json!(format!("ses-{id}"));
    let mut message = message(&event.to_string());
    message.message_id = Some(message_id.to_owned());
    message
}

fn batch_of(messages: Vec<SqsMessage>) -> aws_lambda_events::event::sqs::SqsEvent {
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    event.records = messages;
    event
}

fn failures(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    ids.sort();
    ids
}

/// The events of an invocation's messages go out together: one emit (one
/// `SendMessageBatch` per 10 events on SQS), not one per message.
#[tokio::test]
async fn an_invocations_events_go_out_in_one_emit() {
    let rig = rig();
    let messages = (1..=4).map(|i| bounce_of(&format!("order-{i}"), &format!("m{i}"))).collect();
    let response = rig.handler.handle_batch(batch_of(messages), 10, None, std::time::Duration::from_secs(1)).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    assert_eq!(rig.sink.calls(), 1, "one emit for the invocation");
    let mut requests: Vec<String> = rig.sink.events().iter().filter_map(|e| e.request_id.clone()).collect();
    requests.sort();
    assert_eq!(requests, ["order-1", "order-2", "order-3", "order-4"]);
}

/// A sink that refuses the events of one request and keeps the others.
struct Refusing(&'static str, std::sync::Mutex<Vec<String>>);

#[async_trait::async_trait]
impl herald::ports::EventSink for Refusing {
    async fn emit_events(
        &self,
        events: &[herald::receipt::event::DeliveryEvent],
    ) -> Result<(), herald::ports::EmitError> {
        let refused = |i: &usize| events[*i].request_id.as_deref() == Some(self.0);
        let failed: Vec<usize> = (0..events.len()).filter(refused).collect();
        let kept = (0..events.len()).filter(|i| !refused(i)).filter_map(|i| events[i].request_id.clone());
        self.1.lock().unwrap().extend(kept);
        if failed.is_empty() {
            return Ok(());
        }
        Err(herald::ports::EmitError { failed, message: "refused".into() })
    }
}

/// Only the messages whose events did not go out come back (their state changes are
/// idempotent); the others are done. A message with several events comes before the
/// refused one (the refusal is mapped back to its message, not to the n-th message), a
/// store failure is retried on its own, and an unreadable message goes to the
/// dead-letter queue, untouched by the emit.
#[tokio::test]
async fn only_messages_whose_events_did_not_go_out_are_retried() {
    let mut rig = rig();
    let sink = Arc::new(Refusing("order-3", std::sync::Mutex::default()));
    rig.handler.sink = sink.clone();
    // m1: the store fails (records run one at a time, so its first write gets the failure).
    let mut messages = vec![bounce_of("order-1", "m1")];
    // m2: a bounce of three recipients, three events.
    let mut several: Value = serde_json::from_str(&ses_event("Bounce", permanent_bounce(), None)).unwrap();
    several["mail"]["tags"]["herald-request-id"] = json!(["order-2"]);
    several["bounce"]["bouncedRecipients"] = json!([
        { "emailAddress": "a@example.com", "status": "5.1.1" },
        { "emailAddress": "b@example.com", "status": "5.1.1" },
        { "emailAddress": "c@example.com", "status": "5.1.1" },
    ]);
    let mut m2 = message(&several.to_string());
    m2.message_id = Some("m2".into());
    messages.push(m2);
    messages.push(bounce_of("order-3", "m3"));
    messages.push(bounce_of("order-4", "m4"));
    let mut unreadable = message("not json");
    unreadable.message_id = Some("m-bad".into());
    messages.push(unreadable);
    rig.store.fail_next(1);
    let response = rig.handler.handle_batch(batch_of(messages), 1, None, std::time::Duration::from_secs(1)).await;
    assert_eq!(failures(&response), ["m1", "m3"]);
    let kept = sink.1.lock().unwrap().clone();
    assert_eq!(kept, ["order-2", "order-2", "order-2", "order-4"], "the events that went out");
    assert_eq!(rig.dead_letters.sent().len(), 1, "the unreadable message went to the dead-letter queue");
}
