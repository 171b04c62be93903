//! One-click unsubscribe, in-process: the endpoint with the in-memory twins and a
//! fixed clock. What changed is read back the way the pipeline reads it (an admission's
//! consent check), what was emitted from the sink, what was logged from the JSON lines.

mod common;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::Logs;
use herald::ports::{
    Admission, Claim, Completion, ConsentCheck, Decision, EventStore, FixedClock, Lease, Recorded, Release, StateStore,
    StoreError, SuppressionEntry, Verdict,
};
use herald::receipt::event::EventKind;
use herald::receipt::unsubscribe::{UnsubscribeClaims, UnsubscribeKeys, sign};
use herald::request::{Channel, IdempotencyKey, RecipientKey, RequestId, SuppressionKey, TenantId};
use herald::testing::{MemorySink, MemoryStore};
use herald_inbound::{Inbound, Request, Response, Unsubscribe};
use hmac::{KeyInit, Mac};
use jiff::{SignedDuration, Timestamp};
use sha2::Digest as _;

const KEY: &str = "k1-test-key-0123456789abcdefghij";
const OTHER_KEY: &str = "k9-other-key-0123456789abcdefghij";
const RECIPIENT: &str = "cust-4711-private";
const TENANT: &str = "acme";
const ONE_CLICK: &str = "List-Unsubscribe=One-Click";
const FORM: &str = "application/x-www-form-urlencoded";

fn now() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().unwrap()
}

fn keys() -> UnsubscribeKeys {
    UnsubscribeKeys::parse(&format!(r#"{{"primary":"k1","k1":"{KEY}"}}"#)).unwrap()
}

fn claims(category: &str) -> UnsubscribeClaims {
    UnsubscribeClaims {
        tenant: Some(TENANT.into()),
        recipient_id: RECIPIENT.into(),
        category: category.into(),
        exp: now().as_second() + 365 * 86_400,
    }
}

fn token() -> String {
    sign(&keys(), &claims("marketing"))
}

struct Rig {
    inbound: Inbound,
    store: Arc<MemoryStore>,
    sink: Arc<MemorySink>,
    logs: Logs,
    admissions: std::cell::Cell<u32>,
}

fn rig_at(at: Timestamp) -> Rig {
    let logs = Logs::capture();
    let store = Arc::new(MemoryStore::new());
    let sink = Arc::new(MemorySink::new());
    let unsubscribe = Unsubscribe::new(keys(), store.clone(), store.clone(), sink.clone(), Arc::new(FixedClock(at)));
    Rig { inbound: Inbound::new(unsubscribe, None), store, sink, logs, admissions: std::cell::Cell::new(0) }
}

fn rig() -> Rig {
    rig_at(now())
}

impl Rig {
    async fn send(&self, request: Request) -> Response {
        self.inbound.handle(request).await
    }

    async fn post(&self, token: &str) -> Response {
        self.send(Request::new("POST", &format!("/unsubscribe?token={token}")).with_body(FORM, ONE_CLICK)).await
    }

    /// What the pipeline's admission says of a new `category` message to the recipient.
    async fn admission(&self, category: &str) -> Verdict {
        let n = self.admissions.get() + 1;
        self.admissions.set(n);
        let tenant = TenantId::parse(TENANT).unwrap();
        let admission = Admission {
            idempotency_key: IdempotencyKey::new(Some(&tenant), &RequestId::parse(&format!("r-{n}")).unwrap()),
            fingerprint: format!("f-{n}"),
            suppression_key: SuppressionKey::from_stored("email:someone@example.com"),
            tenant_suppression_key: None,
            consent: Some(ConsentCheck {
                recipient_key: RecipientKey::new(Some(&tenant), RECIPIENT),
                category: category.into(),
            }),
            caps: Vec::new(),
            now: now(),
            lock_expires_at: now() + SignedDuration::from_mins(1),
            retain_until: now() + SignedDuration::from_hours(24),
        };
        self.store.admit(&admission).await.unwrap()
    }

    async fn subscribed(&self, category: &str) -> bool {
        match self.admission(category).await {
            Verdict::Admitted(_) => true,
            Verdict::Unsubscribed { category: c } if c == category => false,
            other => panic!("unexpected verdict {other:?}"),
        }
    }

    /// Nothing changed: still subscribed, nothing emitted.
    async fn assert_unchanged(&self, what: &str) {
        assert!(self.subscribed("marketing").await, "{what}: consent changed");
        assert_eq!(self.sink.calls(), 0, "{what}: the sink was called");
        assert!(self.sink.events().is_empty(), "{what}: an event was emitted");
    }
}

fn assert_page_headers(response: &Response) {
    assert_eq!(response.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(response.header("Cache-Control"), Some("no-store"));
    assert_eq!(response.header("X-Robots-Tag"), Some("noindex"));
    assert_eq!(response.header("Referrer-Policy"), Some("no-referrer"));
    let csp = response.header("Content-Security-Policy").unwrap_or_default();
    assert!(csp.starts_with("default-src 'none'") && !csp.contains("script"), "{csp}");
}

/// Neither the token (nor its payload) nor the recipient id appears in `text`.
fn assert_no_secrets(text: &str, token: &str, what: &str) {
    let payload = token.split('.').nth(2).unwrap_or(token);
    for needle in [token, payload, RECIPIENT] {
        assert!(!needle.is_empty() && !text.contains(needle), "{what} contains {needle:?}: {text}");
    }
}

fn digest(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_one_click_post_unsubscribes_once() {
    let rig = rig();
    assert!(rig.subscribed("marketing").await);
    let token = token();

    let response = rig.post(&token).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_page_headers(&response);
    assert!(response.body.contains("You are unsubscribed") && response.body.contains("marketing"));
    assert!(!rig.subscribed("marketing").await, "consent recorded");
    assert!(rig.subscribed("news").await, "only the token's category");

    let events = rig.sink.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.event, EventKind::Unsubscribed);
    assert_eq!(event.channel, Channel::Email);
    assert_eq!(event.provider, "herald");
    assert_eq!(event.tenant.as_deref(), Some(TENANT));
    assert_eq!(event.category.as_deref(), Some("marketing"));
    assert_eq!(event.recipient_id.as_deref(), Some(RECIPIENT));
    assert_eq!(event.at, now());
    assert_eq!(event.request_id, None);
    let logs = rig.logs.text();
    assert!(logs.contains("\"unsubscribed\""), "{logs}");
    assert_no_secrets(&logs, &token, "the logs");
    assert_no_secrets(&response.body, &token, "the page");

    // A replay, by the query or by the path: 409, nothing more.
    let again = rig.post(&token).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_page_headers(&again);
    assert!(again.body.contains("already used"), "{}", again.body);
    let by_path = rig.send(Request::new("POST", &format!("/unsubscribe/{token}")).with_body(FORM, ONE_CLICK)).await;
    assert_eq!(by_path.status, 409);
    assert_eq!(rig.sink.events().len(), 1, "no second event");
    assert_eq!(rig.sink.calls(), 1);
}

#[tokio::test]
async fn the_token_may_be_the_last_path_segment_and_the_body_multipart() {
    let rig = rig();
    let body =
        "--b0undary\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b0undary--\r\n";
    let request = Request::new("POST", &format!("/unsubscribe/{}", token()))
        .with_body("multipart/form-data; boundary=b0undary", body);
    let response = rig.send(request).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(!rig.subscribed("marketing").await);
    assert_eq!(rig.sink.events().len(), 1);
}

#[tokio::test]
async fn another_token_for_the_same_person_is_its_own_event() {
    let rig = rig();
    assert_eq!(rig.post(&token()).await.status, 200);
    // A later mail's link: another token, another event id; consent stays off.
    let later = sign(&keys(), &UnsubscribeClaims { exp: claims("marketing").exp + 60, ..claims("marketing") });
    assert_eq!(rig.post(&later).await.status, 200);
    let events = rig.sink.events();
    assert_eq!(events.len(), 2);
    assert_ne!(events[0].event_id, events[1].event_id);
    assert!(!rig.subscribed("marketing").await);
    // The same token, at another time, elsewhere (a retry that reached another store):
    // the same event id, so consumers de-duplicate.
    let elsewhere = rig_at(now() + SignedDuration::from_mins(5));
    assert_eq!(elsewhere.post(&token()).await.status, 200);
    assert_eq!(elsewhere.sink.events()[0].event_id, events[0].event_id);
}

#[tokio::test]
async fn get_and_head_show_the_button_and_change_nothing() {
    let rig = rig();
    let token = token();
    // What a link scanner or a prefetcher does.
    let page = rig.send(Request::new("GET", &format!("/unsubscribe?token={token}"))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_page_headers(&page);
    assert!(page.body.contains("Unsubscribe from marketing?"), "{}", page.body);
    assert!(page.body.contains("<form method=\"post\">"), "{}", page.body);
    assert!(page.body.contains("<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"));
    assert!(!page.body.contains("<script"));
    assert_no_secrets(&page.body, &token, "the page");
    rig.assert_unchanged("GET").await;

    let by_path = rig.send(Request::new("GET", &format!("/unsubscribe/{token}"))).await;
    assert_eq!(by_path.status, 200);
    let head = rig.send(Request::new("HEAD", &format!("/unsubscribe?token={token}"))).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_page_headers(&head);
    rig.assert_unchanged("HEAD").await;

    // The GET claimed nothing: the button still works.
    assert_eq!(rig.post(&token).await.status, 200);
}

/// A token signed like a real one, but for another purpose.
fn signed_for(purpose: &str, key: &str, kid: &str, claims: &UnsubscribeClaims) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{purpose}.{kid}.{payload}").as_bytes());
    format!("v2.{kid}.{payload}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn refused_tokens_change_nothing_and_leak_nothing() {
    let good = token();
    // Flip one character of the signature.
    let mut forged = good.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let other_ring = UnsubscribeKeys::parse(&format!(r#"{{"primary":"k9","k9":"{OTHER_KEY}"}}"#)).unwrap();
    let same_kid_other_key = UnsubscribeKeys::parse(&format!(r#"{{"primary":"k1","k1":"{OTHER_KEY}"}}"#)).unwrap();
    let cases = [
        ("forged signature", forged, 403, "unsubscribe token signature does not verify"),
        ("unknown key id", sign(&other_ring, &claims("marketing")), 403, "key id that is not in the key ring"),
        ("another key", sign(&same_kid_other_key, &claims("marketing")), 403, "signature does not verify"),
        (
            "another purpose",
            signed_for("herald-webhook-v1", KEY, "k1", &claims("marketing")),
            403,
            "signature does not verify",
        ),
        ("relabelled key id", good.replacen("v2.k1.", "v2.k2.", 1), 403, "key id that is not in the key ring"),
        ("malformed", "v2.k1.not-base64!.x".to_owned(), 400, "malformed unsubscribe token"),
        ("not a token", "hello".to_owned(), 400, "malformed unsubscribe token"),
        ("empty", String::new(), 400, "malformed unsubscribe token"),
        (
            "a category herald never writes",
            sign(&keys(), &claims("<b>marketing</b>")),
            400,
            "claims are not a valid tenant and category",
        ),
    ];
    for (what, token, status, reason) in cases {
        for method in ["POST", "GET"] {
            let rig = rig();
            let request = Request::new(method, &format!("/unsubscribe?token={token}")).with_body(FORM, ONE_CLICK);
            let response = rig.send(request).await;
            assert_eq!(response.status, status, "{what} {method}: {}", response.body);
            assert_page_headers(&response);
            assert!(!response.body.contains("<form"), "{what}: no button on a refusal");
            let logs = rig.logs.text();
            assert!(logs.contains(reason), "{what}: the log names the reason: {logs}");
            assert!(logs.contains("\"level\":\"WARN\""), "{what}: {logs}");
            if !token.is_empty() {
                assert_no_secrets(&response.body, &token, what);
                assert_no_secrets(&logs, &token, what);
            }
            assert!(!response.body.contains(RECIPIENT) && !logs.contains(RECIPIENT), "{what}");
            rig.assert_unchanged(what).await;
        }
    }
}

#[tokio::test]
async fn an_expired_token_is_gone() {
    let token = token();
    let exp = Timestamp::from_second(claims("marketing").exp).unwrap();
    for at in [exp, exp + SignedDuration::from_hours(24)] {
        let rig = rig_at(at);
        for method in ["POST", "GET"] {
            let request = Request::new(method, &format!("/unsubscribe?token={token}")).with_body(FORM, ONE_CLICK);
            let response = rig.send(request).await;
            assert_eq!(response.status, 410, "{}", response.body);
            assert!(response.body.contains("expired"), "{}", response.body);
            assert_no_secrets(&response.body, &token, "the page");
        }
        let logs = rig.logs.text();
        assert!(logs.contains("unsubscribe token has expired"), "{logs}");
        assert_no_secrets(&logs, &token, "the logs");
        rig.assert_unchanged("expired").await;
    }
    // A second before its expiry it still works.
    let rig = rig_at(exp - SignedDuration::from_secs(1));
    assert_eq!(rig.post(&token).await.status, 200);
}

#[tokio::test]
async fn a_failing_sink_answers_500_and_the_retry_succeeds() {
    let rig = rig();
    let token = token();
    rig.sink.fail(true);
    let response = rig.post(&token).await;
    assert_eq!(response.status, 500, "{}", response.body);
    assert_page_headers(&response);
    assert!(rig.sink.events().is_empty());
    assert!(rig.logs.text().contains("unsubscribe not recorded"), "{}", rig.logs.text());
    assert_no_secrets(&rig.logs.text(), &token, "the logs");

    // The provider (or the person) retries: the claim was released.
    rig.sink.fail(false);
    let retry = rig.post(&token).await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(rig.sink.events().len(), 1);
    assert!(!rig.subscribed("marketing").await);
    assert_eq!(rig.post(&token).await.status, 409);
}

/// The state store, but `set_consent` fails while `failing` is set.
struct FlakyConsent {
    store: Arc<MemoryStore>,
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl StateStore for FlakyConsent {
    async fn admit(&self, a: &Admission) -> Result<Verdict, StoreError> {
        self.store.admit(a).await
    }
    async fn complete(&self, lease: &Lease, completion: &Completion) -> Result<(), StoreError> {
        self.store.complete(lease, completion).await
    }
    async fn abandon(&self, lease: &Lease, release: Release) -> Result<(), StoreError> {
        self.store.abandon(lease, release).await
    }
    async fn record(&self, decision: &Decision) -> Result<Recorded, StoreError> {
        self.store.record(decision).await
    }
    async fn suppress(&self, entry: &SuppressionEntry, at: Timestamp) -> Result<(), StoreError> {
        self.store.suppress(entry, at).await
    }
    async fn unsuppress(&self, key: &SuppressionKey) -> Result<bool, StoreError> {
        self.store.unsuppress(key).await
    }
    async fn set_consent(&self, key: &RecipientKey, category: &str, on: bool, at: Timestamp) -> Result<(), StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::new("injected consent failure"));
        }
        self.store.set_consent(key, category, on, at).await
    }
}

#[tokio::test]
async fn a_failing_store_answers_500_and_the_retry_succeeds() {
    let rig = rig();
    let token = token();
    // The claim itself fails.
    rig.store.fail_next(1);
    assert_eq!(rig.post(&token).await.status, 500);
    rig.assert_unchanged("claim failed").await;
    assert!(rig.logs.text().contains("cannot claim the unsubscribe link"), "{}", rig.logs.text());
    assert_eq!(rig.post(&token).await.status, 200);

    // The claim succeeds, the consent write fails: nothing emitted, the claim released.
    let logs = Logs::capture();
    let store = Arc::new(MemoryStore::new());
    let flaky = Arc::new(FlakyConsent { store: store.clone(), failing: true.into() });
    let sink = Arc::new(MemorySink::new());
    let unsubscribe = Unsubscribe::new(keys(), flaky.clone(), store.clone(), sink.clone(), Arc::new(FixedClock(now())));
    let inbound = Inbound::new(unsubscribe, None);
    let post = || Request::new("POST", &format!("/unsubscribe?token={token}")).with_body(FORM, ONE_CLICK);
    assert_eq!(inbound.handle(post()).await.status, 500);
    assert_eq!(sink.calls(), 0);
    assert_no_secrets(&logs.text(), &token, "the logs");
    flaky.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(inbound.handle(post()).await.status, 200);
    assert_eq!(sink.events().len(), 1);
    assert_eq!(inbound.handle(post()).await.status, 409);
}

#[tokio::test]
async fn a_token_in_use_answers_503_with_retry_after() {
    let rig = rig();
    let token = token();
    // Another request holds the token's claim: the id is the token's SHA-256.
    let id = format!("unsub:{}", digest(&token));
    assert_eq!(rig.store.claim(&id, now(), now() + SignedDuration::from_secs(30)).await.unwrap(), Claim::New);
    let response = rig.post(&token).await;
    assert_eq!(response.status, 503, "{}", response.body);
    assert_eq!(response.header("Retry-After"), Some("30"));
    rig.assert_unchanged("busy").await;
    // Its lock lapses (the holder died): the next attempt takes over.
    rig.store.release(&id).await.unwrap();
    assert_eq!(rig.post(&token).await.status, 200);
}

#[tokio::test]
async fn a_post_without_the_one_click_field_changes_nothing() {
    let rig = rig();
    let token = token();
    for (content_type, body) in [(FORM, ""), (FORM, "List-Unsubscribe=Yes"), ("text/plain", "One-Click")] {
        let request = Request::new("POST", &format!("/unsubscribe?token={token}")).with_body(content_type, body);
        let response = rig.send(request).await;
        assert_eq!(response.status, 400, "{body}: {}", response.body);
        // The person gets the real button.
        assert!(response.body.contains("<form method=\"post\">"), "{}", response.body);
    }
    rig.assert_unchanged("no one-click field").await;
}

#[tokio::test]
async fn methods_paths_and_sizes() {
    let rig = rig();
    let target = format!("/unsubscribe?token={}", token());
    for method in ["PUT", "DELETE", "PATCH", "OPTIONS"] {
        let response = rig.send(Request::new(method, &target)).await;
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.header("Allow"), Some("GET, HEAD, POST"));
    }
    for path in ["/", "/unsubscribe/a/b", "/unsubscribes", "/sns", "/favicon.ico"] {
        let response = rig.send(Request::new("GET", path)).await;
        assert_eq!(response.status, 404, "{path}: /sns is off without a queue");
    }
    let big = format!("{ONE_CLICK}&pad={}", "x".repeat(16 * 1024));
    let response = rig.send(Request::new("POST", &target).with_body(FORM, big)).await;
    assert_eq!(response.status, 413);
    // No token at all.
    for target in ["/unsubscribe", "/unsubscribe/", "/unsubscribe?t=1"] {
        assert_eq!(rig.send(Request::new("GET", target)).await.status, 400, "{target}");
    }
    assert!(rig.logs.text().contains("no unsubscribe token in the URL"), "{}", rig.logs.text());
    // Two tokens: which one was meant is unknowable.
    let two = format!("/unsubscribe?token={}&token={}", token(), token());
    assert_eq!(rig.send(Request::new("POST", &two).with_body(FORM, ONE_CLICK)).await.status, 400);
    rig.assert_unchanged("refused requests").await;
}
