//! `POST /sns`, in-process, with the real AWS-signed messages and certificates of
//! ../shared/spec/sns-signature: the clock pinned minutes after each message was sent
//! (inside its certificate's validity), the topics the vectors carry pinned, and the
//! certificate served by a fake source under the vector's own SigningCertURL. Nothing
//! is fetched from the network.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::Logs;
use herald::ports::{Claim, EventStore, FixedClock};
use herald::testing::{MemoryQueue, MemorySink, MemoryStore};
use herald_inbound::{CertificateSource, Inbound, Request, Response, SnsEndpoint, SubscriptionConfirmer, Unsubscribe};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

fn spec_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/spec/sns-signature");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: {} not found (the shared spec folder)", dir.display());
        None
    }
}

/// A real signed message: its JSON as SNS posted it, its certificate's PEM.
struct Vector {
    json: Value,
    pem: Vec<u8>,
}

impl Vector {
    fn load(dir: &Path, file: &str, index: Option<usize>) -> Self {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let mut json: Value = serde_json::from_str(&text).unwrap();
        if let Some(i) = index {
            json = json["messages"][i].clone();
        }
        let cert_url = json["SigningCertURL"].as_str().unwrap();
        let pem_name = cert_url.rsplit('/').next().unwrap();
        let folder = Path::new(file).parent().unwrap();
        let pem = std::fs::read(dir.join(folder).join(pem_name)).unwrap();
        Vector { json, pem }
    }

    fn java(dir: &Path, name: &str) -> Self {
        Self::load(dir, &format!("aws-sdk-java-v2/{name}.json"), None)
    }

    fn field(&self, name: &str) -> &str {
        self.json[name].as_str().unwrap()
    }

    fn body(&self) -> String {
        self.json.to_string()
    }

    /// A few minutes after SNS sent it.
    fn now(&self) -> Timestamp {
        self.field("Timestamp").parse::<Timestamp>().unwrap() + SignedDuration::from_mins(3)
    }

    fn with(&self, field: &str, value: &str) -> Value {
        let mut json = self.json.clone();
        json[field] = value.into();
        json
    }
}

/// Serves PEMs by URL and remembers every URL asked for.
#[derive(Default)]
struct FakeCertificates {
    pems: HashMap<String, Vec<u8>>,
    fetched: Mutex<Vec<String>>,
}

#[async_trait]
impl CertificateSource for FakeCertificates {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        self.fetched.lock().unwrap().push(url.to_owned());
        self.pems.get(url).cloned().ok_or_else(|| "404 from the fake".to_owned())
    }
}

#[derive(Default)]
struct FakeConfirmer {
    confirmed: Mutex<Vec<String>>,
}

#[async_trait]
impl SubscriptionConfirmer for FakeConfirmer {
    async fn confirm(&self, url: &str) -> Result<(), String> {
        self.confirmed.lock().unwrap().push(url.to_owned());
        Ok(())
    }
}

struct Rig {
    inbound: Inbound,
    store: Arc<MemoryStore>,
    queue: Arc<MemoryQueue>,
    certificates: Arc<FakeCertificates>,
    confirmer: Arc<FakeConfirmer>,
    logs: Logs,
}

impl Rig {
    /// `/sns` pinned to `topics`, certificates served for `vectors`, the clock at `now`.
    fn new(topics: &[&str], vectors: &[&Vector], now: Timestamp) -> Self {
        let logs = Logs::capture();
        let store = Arc::new(MemoryStore::new());
        let queue = Arc::new(MemoryQueue::new());
        let mut certificates = FakeCertificates::default();
        for v in vectors {
            certificates.pems.insert(v.field("SigningCertURL").to_owned(), v.pem.clone());
            // Were a foreign URL ever fetched, the fake would hand it a genuine PEM.
            certificates.pems.insert("https://internetbadguys.com/cert.pem".into(), v.pem.clone());
        }
        let certificates = Arc::new(certificates);
        let confirmer = Arc::new(FakeConfirmer::default());
        let clock = Arc::new(FixedClock(now));
        let keys = herald::receipt::unsubscribe::UnsubscribeKeys::single("k0-test-key-0123456789abcdef").unwrap();
        let unsubscribe =
            Unsubscribe::new(keys, store.clone(), store.clone(), Arc::new(MemorySink::new()), clock.clone());
        let sns = SnsEndpoint::new(
            topics.iter().map(|t| (*t).to_owned()).collect(),
            queue.clone(),
            store.clone(),
            certificates.clone(),
            confirmer.clone(),
            clock,
        );
        Rig { inbound: Inbound::new(unsubscribe, Some(sns)), store, queue, certificates, confirmer, logs }
    }

    fn for_vector(v: &Vector) -> Self {
        Self::new(&[v.field("TopicArn")], &[v], v.now())
    }

    async fn post(&self, body: &str) -> Response {
        // SNS posts text/plain by default.
        self.inbound.handle(Request::new("POST", "/sns").with_body("text/plain; charset=UTF-8", body)).await
    }

    fn forwarded(&self) -> Vec<String> {
        self.queue.sent().into_iter().map(|(body, _, _)| body).collect()
    }

    fn fetched(&self) -> Vec<String> {
        self.certificates.fetched.lock().unwrap().clone()
    }

    fn confirmed(&self) -> Vec<String> {
        self.confirmer.confirmed.lock().unwrap().clone()
    }

    /// Nothing forwarded, confirmed, nor fetched from anywhere but SNS.
    fn assert_no_effect(&self, what: &str) {
        assert!(self.forwarded().is_empty(), "{what}: forwarded {:?}", self.forwarded());
        assert!(self.confirmed().is_empty(), "{what}: confirmed {:?}", self.confirmed());
        for url in self.fetched() {
            assert!(url.starts_with("https://sns."), "{what}: fetched {url}");
        }
    }
}

#[tokio::test]
async fn a_notification_is_forwarded_once() {
    let Some(dir) = spec_dir() else { return };
    for name in ["test-notification-signature-v2", "test-notification-with-subject", "test-notification-no-subject"] {
        let v = Vector::java(&dir, name);
        let rig = Rig::for_vector(&v);
        let response = rig.post(&v.body()).await;
        assert_eq!(response.status, 200, "{name}: {}", response.body);
        // Exactly the Message text, as SNS would have put it on a queue (raw delivery).
        assert_eq!(rig.forwarded(), [v.field("Message")], "{name}");
        let (_, delay, attributes) = rig.queue.sent().remove(0);
        assert_eq!((delay, attributes.len()), (std::time::Duration::ZERO, 0));

        // SNS delivers it again (a retry, or at-least-once): nothing more.
        let again = rig.post(&v.body()).await;
        assert_eq!(again.status, 200, "{name}: {}", again.body);
        assert_eq!(rig.forwarded().len(), 1, "{name}: forwarded twice");
        // The certificate came from the message's own URL, once: then from the cache.
        assert_eq!(rig.fetched(), [v.field("SigningCertURL")], "{name}");
        assert!(rig.confirmed().is_empty());
        let logs = rig.logs.text();
        assert!(logs.contains("SNS message forwarded") && logs.contains("SNS message already forwarded"), "{logs}");
        assert!(!logs.contains(v.field("Message")), "the body is not logged: {logs}");
    }
}

#[tokio::test]
async fn older_vectors_forward_with_their_own_clock() {
    let Some(dir) = spec_dir() else { return };
    // SignatureVersion 1 and 2, with and without Subject, an expired-today certificate.
    for i in 0..4 {
        let v = Vector::load(&dir, "aws-php-sns-message-validator/http-notifications.json", Some(i));
        let rig = Rig::for_vector(&v);
        let response = rig.post(&v.body()).await;
        assert_eq!(response.status, 200, "[{i}]: {}", response.body);
        assert_eq!(rig.forwarded(), [v.field("Message")], "[{i}]");
    }
}

#[tokio::test]
async fn a_subscription_confirmation_is_confirmed_at_its_subscribe_url() {
    let Some(dir) = spec_dir() else { return };
    let v = Vector::java(&dir, "test-subscription-confirmation");
    let rig = Rig::for_vector(&v);
    let response = rig.post(&v.body()).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(rig.confirmed(), [v.field("SubscribeURL")]);
    assert!(rig.forwarded().is_empty());
    let logs = rig.logs.text();
    assert!(logs.contains("SNS subscription confirmed"), "{logs}");
    assert!(!logs.contains(v.field("Token")), "the confirmation token is not logged: {logs}");
}

#[tokio::test]
async fn an_unsubscribe_confirmation_is_only_noted() {
    let Some(dir) = spec_dir() else { return };
    let v = Vector::java(&dir, "test-unsubscribe-confirmation");
    let rig = Rig::for_vector(&v);
    let response = rig.post(&v.body()).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(rig.confirmed().is_empty(), "visiting its SubscribeURL would re-subscribe");
    assert!(rig.forwarded().is_empty());
    assert!(rig.logs.text().contains("UnsubscribeConfirmation"));
}

#[tokio::test]
async fn a_message_for_another_topic_is_refused_before_anything() {
    let Some(dir) = spec_dir() else { return };
    for name in ["test-notification-signature-v2", "test-subscription-confirmation"] {
        let v = Vector::java(&dir, name);
        let rig = Rig::new(&["arn:aws:sns:us-west-2:131990247566:some-other-topic"], &[&v], v.now());
        let response = rig.post(&v.body()).await;
        assert_eq!(response.status, 403, "{name}: {}", response.body);
        rig.assert_no_effect(name);
        assert!(rig.fetched().is_empty(), "{name}: no fetch for an unpinned topic");
        let logs = rig.logs.text();
        assert!(logs.contains("topic not configured"), "{logs}");
        assert!(!logs.contains("dongie-standard-topic"), "unverified input is not echoed: {logs}");
    }
}

#[tokio::test]
async fn forged_and_foreign_messages_are_refused() {
    let Some(dir) = spec_dir() else { return };
    let v = Vector::java(&dir, "test-notification-signature-v2");
    let confirmation = Vector::java(&dir, "test-subscription-confirmation");
    let cert_url = v.field("SigningCertURL");
    let cases: Vec<(&str, Value, &str)> = vec![
        ("tampered Message", v.with("Message", "This message was changed."), "signature does not verify"),
        (
            "tampered MessageId",
            v.with("MessageId", "00000000-0000-0000-0000-000000000000"),
            "signature does not verify",
        ),
        ("swapped signature", v.with("Signature", confirmation.field("Signature")), "signature does not verify"),
        ("cert URL on another host", v.with("SigningCertURL", "https://internetbadguys.com/cert.pem"), "URL refused"),
        ("http cert URL", v.with("SigningCertURL", &cert_url.replacen("https://", "http://", 1)), "URL refused"),
        (
            "suffixed host",
            v.with("SigningCertURL", &cert_url.replacen(".amazonaws.com/", ".amazonaws.com.evil.com/", 1)),
            "URL refused",
        ),
        ("SignatureVersion 3", v.with("SignatureVersion", "3"), "unsupported SNS SignatureVersion"),
        (
            "cert URL of another region",
            v.with("SigningCertURL", &cert_url.replacen("sns.us-west-2.", "sns.eu-west-1.", 1)),
            "another region",
        ),
        (
            "another file on an SNS host",
            v.with("SigningCertURL", &format!("{}/other.pem", cert_url.rsplit_once('/').unwrap().0)),
            "URL refused",
        ),
        (
            "confirmation with another SubscribeURL",
            confirmation.with("SubscribeURL", "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&x=1"),
            "signature does not verify",
        ),
    ];
    for (what, json, reason) in cases {
        let rig = Rig::new(&[v.field("TopicArn")], &[&v], v.now());
        let response = rig.post(&json.to_string()).await;
        assert_eq!(response.status, 403, "{what}: {}", response.body);
        rig.assert_no_effect(what);
        let logs = rig.logs.text();
        assert!(logs.contains(reason), "{what}: {logs}");
        assert!(!logs.contains("This message"), "{what}: the body is not logged: {logs}");
        // Still nothing for the genuine message's id: the refusal claimed nothing.
        let claim = format!("sns:{}:{}", v.field("TopicArn"), v.field("MessageId"));
        assert_eq!(rig.store.claim(&claim, v.now(), v.now()).await.unwrap(), Claim::New, "{what}");
    }
}

#[tokio::test]
async fn stale_and_malformed_messages_are_refused_without_a_fetch() {
    let Some(dir) = spec_dir() else { return };
    let v = Vector::java(&dir, "test-notification-signature-v2");
    let sent: Timestamp = v.field("Timestamp").parse().unwrap();
    for (what, at) in [
        ("replayed after 66 minutes", sent + SignedDuration::from_mins(66)),
        ("from the future", sent - SignedDuration::from_mins(66)),
    ] {
        let rig = Rig::new(&[v.field("TopicArn")], &[&v], at);
        let response = rig.post(&v.body()).await;
        assert_eq!(response.status, 403, "{what}");
        assert!(rig.fetched().is_empty(), "{what}");
        rig.assert_no_effect(what);
        assert!(rig.logs.text().contains("Timestamp is further from now"), "{}", rig.logs.text());
    }
    // An hour after, SNS may still be retrying: accepted.
    let rig = Rig::new(&[v.field("TopicArn")], &[&v], sent + SignedDuration::from_mins(60));
    assert_eq!(rig.post(&v.body()).await.status, 200);

    let rig = Rig::for_vector(&v);
    let mut missing = v.json.clone();
    missing.as_object_mut().unwrap().remove("Signature");
    for (what, body) in [
        ("not JSON", "MARKER{".to_owned()),
        ("not an object", "[\"MARKER\"]".to_owned()),
        ("no Signature", missing.to_string()),
        ("unknown Type", v.with("Type", "MARKER").to_string()),
    ] {
        let response = rig.post(&body).await;
        assert_eq!(response.status, 400, "{what}: {}", response.body);
    }
    let bad_utf8 = rig.inbound.handle(Request::new("POST", "/sns").with_body("text/plain", vec![0xff, 0xfe])).await;
    assert_eq!(bad_utf8.status, 400);
    rig.assert_no_effect("malformed");
    assert!(rig.fetched().is_empty());
    assert!(!rig.logs.text().contains("MARKER"), "{}", rig.logs.text());
}

#[tokio::test]
async fn a_forward_failure_answers_500_and_the_retry_forwards() {
    let Some(dir) = spec_dir() else { return };
    let v = Vector::java(&dir, "test-notification-no-subject");
    let rig = Rig::for_vector(&v);
    rig.queue.fail(true);
    let response = rig.post(&v.body()).await;
    assert_eq!(response.status, 500, "{}", response.body);
    assert!(rig.forwarded().is_empty());
    // SNS retries: the claim was released.
    rig.queue.fail(false);
    assert_eq!(rig.post(&v.body()).await.status, 200);
    assert_eq!(rig.forwarded(), [v.field("Message")]);
    assert_eq!(rig.post(&v.body()).await.status, 200);
    assert_eq!(rig.forwarded().len(), 1);
}

#[tokio::test]
async fn a_message_being_forwarded_elsewhere_answers_503() {
    let Some(dir) = spec_dir() else { return };
    let v = Vector::java(&dir, "test-notification-no-subject");
    let rig = Rig::for_vector(&v);
    let claim = format!("sns:{}:{}", v.field("TopicArn"), v.field("MessageId"));
    assert_eq!(rig.store.claim(&claim, v.now(), v.now() + SignedDuration::from_secs(60)).await.unwrap(), Claim::New);
    let response = rig.post(&v.body()).await;
    assert_eq!(response.status, 503);
    assert!(response.header("Retry-After").is_some());
    assert!(rig.forwarded().is_empty());
}

#[tokio::test]
async fn a_certificate_that_cannot_be_fetched_is_a_5xx() {
    let Some(dir) = spec_dir() else { return };
    let v = Vector::java(&dir, "test-notification-no-subject");
    // No certificate served: the fetch fails, SNS should retry.
    let rig = Rig::new(&[v.field("TopicArn")], &[], v.now());
    let response = rig.post(&v.body()).await;
    assert_eq!(response.status, 502, "{}", response.body);
    assert_eq!(rig.fetched(), [v.field("SigningCertURL")]);
    rig.assert_no_effect("no certificate");
}

#[tokio::test]
async fn methods_and_configuration() {
    let Some(dir) = spec_dir() else { return };
    let v = Vector::java(&dir, "test-notification-no-subject");
    let rig = Rig::for_vector(&v);
    let get = rig.inbound.handle(Request::new("GET", "/sns")).await;
    assert_eq!((get.status, get.header("Allow")), (405, Some("POST")));
    let big = "x".repeat(herald_inbound::sns::MAX_BODY_BYTES + 1);
    assert_eq!(rig.post(&big).await.status, 413);
    rig.assert_no_effect("methods");
}
