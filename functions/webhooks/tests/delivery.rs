//! The webhooks dispatcher against real subscribers: HTTP servers on loopback that
//! verify the signature of everything they receive, the real guarded client (loopback
//! allowed only where a test says so), and the in-memory twins of the state store and
//! the queues. Retries are replayed by feeding the messages the dispatcher queued back to
//! it, with the clock moved past their delay, as SQS would.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use herald::adapters::http::{AllowList, GuardOptions, GuardedClient};
use herald::config::{Subscription, WebhookSettings};
use herald::ports::{Clock, EventStore};
use herald::receipt::webhook::{self, Backoff, SignedHeaders, WebhookSecret};
use herald::request::TenantId;
use herald::testing::{MemoryQueue, MemoryStore};
use herald_lambda::records::Handled;
use herald_webhooks::{DISABLED_FRESH, Dispatcher, PendingDelivery};
use jiff::{SignedDuration, Timestamp};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A clock the test moves.
struct TestClock(Mutex<Timestamp>);

impl TestClock {
    fn advance(&self, seconds: i64) {
        let mut now = self.0.lock().unwrap();
        *now = now.checked_add(SignedDuration::from_secs(seconds)).unwrap();
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// A status with `Retry-After: <seconds>`.
    Throttle(u16, u64),
    /// A redirect to another address.
    Redirect(SocketAddr),
    /// Never answers.
    Hang,
}

/// What a subscriber received: (webhook-id, timestamp, signature verified, body).
type Seen = Arc<Mutex<Vec<(String, String, bool, String)>>>;

/// A subscriber on loopback answering with `script` (the last answer repeats).
async fn subscriber(script: Vec<Answer>) -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let script = Arc::new(Mutex::new(script));
    let recorded = seen.clone();
    let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let seen = recorded.clone();
        let script = script.clone();
        async move {
            let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let (id, ts, sig) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
            let secret = WebhookSecret::parse(SECRET).unwrap();
            let signed = SignedHeaders { id: &id, timestamp: &ts, signature: &sig };
            // The test clock is fixed in 2026: verify at the timestamp sent, tolerance 0.
            let at = Timestamp::from_second(ts.parse().unwrap_or(0)).unwrap_or(Timestamp::UNIX_EPOCH);
            let ok = webhook::verify(&secret, &signed, &body, at, Duration::ZERO).is_ok();
            seen.lock().unwrap().push((id, ts, ok, String::from_utf8_lossy(&body).into_owned()));
            let answer = {
                let mut s = script.lock().unwrap();
                if s.len() > 1 { s.remove(0) } else { s[0] }
            };
            match answer {
                Answer::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
                Answer::Throttle(code, after) => {
                    (StatusCode::from_u16(code).unwrap(), [("retry-after", after.to_string())]).into_response()
                }
                Answer::Redirect(to) => {
                    (StatusCode::FOUND, [("location", format!("http://{to}/hook"))]).into_response()
                }
                Answer::Hang => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Response::new(axum::body::Body::empty())
                }
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

struct Rig {
    dispatcher: Dispatcher,
    clock: Arc<TestClock>,
    store: Arc<MemoryStore>,
    retries: Arc<MemoryQueue>,
    dead_letters: Arc<MemoryQueue>,
}

fn subscription(id: &str, url: String, events: &[&str], tenant: Option<&str>) -> Subscription {
    Subscription {
        id: id.into(),
        url,
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
    }
}

fn rig(subscriptions: Vec<Subscription>, backoff: Backoff, allow: &[&str], timeout: Duration) -> Rig {
    let settings = WebhookSettings { subscriptions, backoff, timeout };
    let secrets: BTreeMap<String, Vec<WebhookSecret>> =
        settings.subscriptions.iter().map(|s| (s.id.clone(), vec![WebhookSecret::parse(SECRET).unwrap()])).collect();
    let client = GuardedClient::new(GuardOptions {
        allow: AllowList::parse(allow.iter().copied()).unwrap(),
        timeout,
        max_body: 64 * 1024,
    })
    .unwrap();
    let clock = Arc::new(TestClock(Mutex::new("2026-11-30T12:00:00Z".parse().unwrap())));
    let store = Arc::new(MemoryStore::new());
    let retries = Arc::new(MemoryQueue::new());
    let dead_letters = Arc::new(MemoryQueue::new());
    let dispatcher = Dispatcher::new(
        &settings,
        secrets,
        Arc::new(client),
        store.clone(),
        retries.clone(),
        dead_letters.clone(),
        clock.clone(),
    );
    Rig { dispatcher, clock, store, retries, dead_letters }
}

fn message(body: &str) -> SqsMessage {
    serde_json::from_value(serde_json::json!({ "messageId": "m", "body": body })).unwrap()
}

fn receipt(id: &str, status: &str, tenant: Option<&str>) -> String {
    let mut r = serde_json::json!({
        "receipt_id": id, "request_id": "order-1", "status": status, "reason": null, "channel": "email",
        "metadata": {}, "at": "2026-11-30T12:00:00Z",
    });
    if let Some(t) = tenant {
        r["tenant"] = t.into();
    }
    r.to_string()
}

fn event(id: &str, kind: &str, tenant: Option<&str>) -> String {
    let mut e = serde_json::json!({
        "event_id": id, "event": kind, "request_id": "order-1", "channel": "email", "provider": "ses",
        "at": "2026-11-30T12:00:00Z",
    });
    if let Some(t) = tenant {
        e["tenant"] = t.into();
    }
    e.to_string()
}

fn quick(max_attempts: u32) -> Backoff {
    Backoff { base: Duration::from_secs(1), max: Duration::from_secs(2), max_attempts }
}

/// Feeds every retry queued since `from` back to the dispatcher, after its delay.
async fn replay(rig: &Rig, from: usize) -> usize {
    let sent = rig.retries.sent();
    for (body, delay, _) in &sent[from..] {
        assert!(*delay <= Duration::from_secs(900), "an SQS delay is at most 15 minutes: {delay:?}");
        rig.clock.advance(i64::try_from(delay.as_secs()).unwrap() + 1);
        assert_eq!(rig.dispatcher.handle(message(body)).await, Handled::Done);
    }
    sent.len()
}

#[tokio::test]
async fn a_failing_subscriber_gets_the_same_webhook_id_until_it_answers() {
    let (addr, seen) =
        subscriber(vec![Answer::Status(500), Answer::Status(500), Answer::Status(500), Answer::Status(200)]).await;
    let rig = rig(
        vec![subscription("crm", format!("http://{addr}/hook"), &["*"], None)],
        quick(5),
        &["127.0.0.0/8"],
        Duration::from_secs(5),
    );
    rig.dispatcher.new_invocation().await;
    assert_eq!(rig.dispatcher.handle(message(&receipt("r-1", "sent", None))).await, Handled::Done);
    let mut done = 0;
    for _ in 0..5 {
        done = replay(&rig, done).await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "three failures then a success");
    assert!(seen.iter().all(|(id, _, ok, _)| id == "r-1" && *ok), "same id, valid signatures: {seen:?}");
    // Each attempt signs its own timestamp.
    assert!(seen.windows(2).all(|w| w[0].1 < w[1].1), "{seen:?}");
    let body: serde_json::Value = serde_json::from_str(&seen[3].3).unwrap();
    assert_eq!(body["type"], "receipt.sent");
    assert_eq!(body["data"]["receipt_id"], "r-1");
    assert_eq!(rig.retries.sent().len(), 3);
    assert!(rig.dead_letters.sent().is_empty());
}

#[tokio::test]
async fn a_410_disables_the_endpoint_until_an_operator_enables_it() {
    let (addr, seen) = subscriber(vec![Answer::Status(410)]).await;
    let rig = rig(
        vec![subscription("gone", format!("http://{addr}/hook"), &["*"], None)],
        quick(5),
        &["127.0.0.1/32"],
        Duration::from_secs(5),
    );
    rig.dispatcher.new_invocation().await;
    rig.dispatcher.handle(message(&receipt("r-1", "sent", None))).await;
    assert!(rig.store.disabled_endpoints().await.unwrap().contains_key("gone"));
    assert!(rig.retries.sent().is_empty() && rig.dead_letters.sent().is_empty(), "a 410 is not retried");
    // Later messages, in this invocation and the next, are not sent.
    rig.dispatcher.handle(message(&receipt("r-2", "sent", None))).await;
    rig.dispatcher.new_invocation().await;
    rig.dispatcher.handle(message(&receipt("r-3", "sent", None))).await;
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert!(rig.store.enable_endpoint("gone").await.unwrap());
    // Enabled again: sent once this instance's read of the list is DISABLED_FRESH old.
    rig.clock.advance(DISABLED_FRESH.as_secs());
    rig.dispatcher.new_invocation().await;
    rig.dispatcher.handle(message(&receipt("r-4", "sent", None))).await;
    assert_eq!(seen.lock().unwrap().len(), 2);
}

/// One invocation that handles one receipt (`id`).
async fn invocation_with(rig: &Rig, id: &str) {
    rig.dispatcher.new_invocation().await;
    rig.dispatcher.handle(message(&receipt(id, "sent", None))).await;
}

/// A rig with one subscription, `crm`, whose endpoint answers 200.
async fn crm_rig() -> (Rig, Seen) {
    let (addr, seen) = subscriber(vec![Answer::Status(200); 4]).await;
    let rig = rig(
        vec![subscription("crm", format!("http://{addr}/hook"), &["*"], None)],
        quick(5),
        &["127.0.0.1/32"],
        Duration::from_secs(5),
    );
    (rig, seen)
}

/// `crm` is disabled in the table, and the instance's last read (or failed read) of the
/// list was at the rig's time: an invocation a second before DISABLED_FRESH still sends
/// (`sent` so far becomes `sent + 1`), the first one at DISABLED_FRESH reads the list
/// again and does not.
async fn read_again_at_disabled_fresh(rig: &Rig, seen: &Seen, sent: usize, within: &str, after: &str) {
    rig.clock.advance(DISABLED_FRESH.as_secs() - 1);
    invocation_with(rig, "r-2").await;
    assert_eq!(seen.lock().unwrap().len(), sent + 1, "{within}");
    rig.clock.advance(1);
    invocation_with(rig, "r-3").await;
    assert_eq!(seen.lock().unwrap().len(), sent + 1, "{after}");
}

#[tokio::test]
async fn a_failed_read_of_the_disabled_list_is_not_retried_every_invocation() {
    let (rig, seen) = crm_rig().await;
    rig.store.disable_endpoint("crm", rig.clock.now()).await.unwrap();
    // The read fails (a throttled item): nothing counts as disabled...
    rig.store.fail_next(1);
    invocation_with(&rig, "r-1").await;
    assert_eq!(seen.lock().unwrap().len(), 1, "a failed read disables nothing");
    // ...and the next invocations do not read it harder: not before DISABLED_FRESH.
    read_again_at_disabled_fresh(
        &rig,
        &seen,
        1,
        "no read again within DISABLED_FRESH of the failed one",
        "read again after it: crm is disabled",
    )
    .await;
}

#[tokio::test]
async fn the_disabled_list_is_read_again_only_when_it_is_old() {
    let (rig, seen) = crm_rig().await;
    invocation_with(&rig, "r-1").await;
    // Another instance met a 410 and wrote it down. This one's invocations within
    // DISABLED_FRESH of its read go on with what it read: one read per instance and
    // period instead of one per invocation on the stack's one WEBHOOKS item.
    rig.store.disable_endpoint("crm", rig.clock.now()).await.unwrap();
    read_again_at_disabled_fresh(&rig, &seen, 1, "the list read a moment ago", "read again once old: crm is disabled")
        .await;
}

#[tokio::test]
async fn a_subscriber_that_never_answers_ends_in_the_dead_letter_queue() {
    let (addr, seen) = subscriber(vec![Answer::Hang]).await;
    let rig = rig(
        vec![subscription("slow", format!("http://{addr}/hook"), &["*"], None)],
        quick(3),
        &["127.0.0.1/32"],
        Duration::from_millis(500),
    );
    rig.dispatcher.new_invocation().await;
    rig.dispatcher.handle(message(&event("e-1", "bounced", None))).await;
    let mut done = 0;
    for _ in 0..4 {
        done = replay(&rig, done).await;
    }
    assert_eq!(seen.lock().unwrap().len(), 3, "the configured attempts, no more");
    let dead = rig.dead_letters.sent();
    assert_eq!(dead.len(), 1);
    let pending: PendingDelivery = serde_json::from_str(&dead[0].0).unwrap();
    assert_eq!((pending.webhook_id.as_str(), pending.attempts_made), ("e-1", 3));
    let reason = &dead[0].2[0].1;
    assert!(reason.contains("gave up after 3") && reason.contains("timed out"), "{reason}");
    assert!(!reason.contains(&addr.port().to_string()), "the reason names no target: {reason}");
}

#[tokio::test]
async fn retry_after_is_honoured_on_429_and_503() {
    let (addr, _seen) =
        subscriber(vec![Answer::Throttle(429, 120), Answer::Throttle(503, 30), Answer::Status(204)]).await;
    let rig = rig(
        vec![subscription("busy", format!("http://{addr}/hook"), &["*"], None)],
        Backoff { base: Duration::from_secs(1), max: Duration::from_secs(3600), max_attempts: 5 },
        &["127.0.0.1/32"],
        Duration::from_secs(5),
    );
    rig.dispatcher.new_invocation().await;
    rig.dispatcher.handle(message(&receipt("r-1", "sent", None))).await;
    let first = rig.retries.sent();
    assert_eq!(first.len(), 1);
    assert!(first[0].1 >= Duration::from_secs(120), "Retry-After 120 s: {:?}", first[0].1);
    replay(&rig, 0).await;
    let second = rig.retries.sent();
    assert!(second[1].1 >= Duration::from_secs(30), "Retry-After 30 s: {:?}", second[1].1);
    replay(&rig, 1).await;
    assert_eq!(rig.retries.sent().len(), 2);
    assert!(rig.dead_letters.sent().is_empty());
}

#[tokio::test]
async fn internal_targets_are_refused_without_a_connection() {
    // The subscriber listens on loopback, but this dispatcher allows no internal address.
    let (addr, seen) = subscriber(vec![Answer::Status(200)]).await;
    let port = addr.port();
    let targets = [
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("https://localhost:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        "http://10.0.0.1/hook".to_owned(),
    ];
    let subscriptions =
        targets.iter().enumerate().map(|(i, url)| subscription(&format!("s{i}"), url.clone(), &["*"], None)).collect();
    let rig = rig(subscriptions, quick(5), &[], Duration::from_secs(2));
    rig.dispatcher.new_invocation().await;
    assert_eq!(rig.dispatcher.handle(message(&receipt("r-1", "sent", None))).await, Handled::Done);
    assert!(seen.lock().unwrap().is_empty(), "nothing reached the loopback subscriber");
    let dead = rig.dead_letters.sent();
    assert_eq!(dead.len(), targets.len(), "each refused target is dead-lettered at once, never retried");
    assert!(rig.retries.sent().is_empty());
    for (_, _, attrs) in &dead {
        let reason = &attrs[0].1;
        assert!(reason.contains("refused") || reason.contains("request failed"), "{reason}");
    }
}

#[tokio::test]
async fn a_redirect_is_never_followed() {
    let (inner, inner_seen) = subscriber(vec![Answer::Status(200)]).await;
    let (outer, outer_seen) = subscriber(vec![Answer::Redirect(inner)]).await;
    let rig = rig(
        vec![subscription("moved", format!("http://{outer}/hook"), &["*"], None)],
        quick(2),
        &["127.0.0.1/32"],
        Duration::from_secs(2),
    );
    rig.dispatcher.new_invocation().await;
    rig.dispatcher.handle(message(&receipt("r-1", "sent", None))).await;
    replay(&rig, 0).await;
    assert_eq!(outer_seen.lock().unwrap().len(), 2);
    assert!(inner_seen.lock().unwrap().is_empty(), "the redirect target was never called");
    let dead = rig.dead_letters.sent();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].2[0].1.contains("HTTP 302"), "{:?}", dead[0].2);
}

#[tokio::test]
async fn filters_and_tenants_choose_the_subscribers() {
    let (addr, seen) = subscriber(vec![Answer::Status(200)]).await;
    let url = format!("http://{addr}/hook");
    let rig = rig(
        vec![
            subscription("bounces-acme", format!("{url}?s=1"), &["bounced", "complained"], Some("acme")),
            subscription("receipts", format!("{url}?s=2"), &["receipt.*"], None),
        ],
        quick(2),
        &["127.0.0.1/32"],
        Duration::from_secs(2),
    );
    rig.dispatcher.new_invocation().await;
    for body in [
        receipt("r-1", "sent", Some("acme")),
        event("e-1", "bounced", Some("acme")),
        event("e-2", "bounced", Some("globex")),
        event("e-3", "delivered", Some("acme")),
    ] {
        rig.dispatcher.handle(message(&body)).await;
    }
    let mut ids: Vec<String> = seen.lock().unwrap().iter().map(|(id, ..)| id.clone()).collect();
    ids.sort();
    assert_eq!(ids, vec!["e-1", "r-1"]);
}

#[tokio::test]
async fn an_unreadable_stream_message_is_dead_lettered_not_dropped() {
    let rig = rig(vec![], quick(2), &[], Duration::from_secs(1));
    assert_eq!(rig.dispatcher.handle(message("{\"hello\": 1}")).await, Handled::Done);
    assert_eq!(rig.dead_letters.sent().len(), 1);
    // The queue refusing it too: SQS delivers the message again.
    rig.dead_letters.fail(true);
    assert_eq!(rig.dispatcher.handle(message("not json")).await, Handled::Retry);
}

#[tokio::test]
async fn a_subscription_without_a_secret_is_dead_lettered_at_once_not_retried() {
    let (addr, seen) = subscriber(vec![Answer::Status(200)]).await;
    let settings = WebhookSettings {
        subscriptions: vec![subscription("nosecret", format!("http://{addr}/hook"), &["*"], None)],
        backoff: quick(5),
        timeout: Duration::from_secs(2),
    };
    let client = GuardedClient::new(GuardOptions {
        allow: AllowList::parse(["127.0.0.1/32"]).unwrap(),
        timeout: Duration::from_secs(2),
        max_body: 1024,
    })
    .unwrap();
    let (retries, dead_letters) = (Arc::new(MemoryQueue::new()), Arc::new(MemoryQueue::new()));
    let clock = Arc::new(TestClock(Mutex::new("2026-11-30T12:00:00Z".parse().unwrap())));
    let dispatcher = Dispatcher::new(
        &settings,
        BTreeMap::new(),
        Arc::new(client),
        Arc::new(MemoryStore::new()),
        retries.clone(),
        dead_letters.clone(),
        clock,
    );
    dispatcher.new_invocation().await;
    assert_eq!(dispatcher.handle(message(&receipt("r-1", "sent", None))).await, Handled::Done);
    assert!(seen.lock().unwrap().is_empty(), "nothing unsigned is sent");
    assert!(retries.sent().is_empty());
    let dead = dead_letters.sent();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].2[0].1.contains("cannot be signed"), "{:?}", dead[0].2);
}
