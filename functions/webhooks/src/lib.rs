//! The webhooks function: every receipt and delivery event on the receipt stream is
//! POSTed to each subscription that wants it, signed per Standard Webhooks.
//!
//! It is fed by two queues:
//! - the receipts queue (receipts from the channel functions, delivery events from the
//!   events function and the unsubscribe endpoint): each message is fanned out, one
//!   first attempt per matching subscription, all at once;
//! - the webhook queue: one message per delivery still owed to one subscription, held
//!   by an SQS delay until its next attempt (never by sleeping here). Waits longer than
//!   SQS's 15 minutes hop through the queue until `due_at`.
//!
//! The timeline of one delivery:
//!
//! ```text
//!  attempt n --2xx--> delivered
//!      |--410--> endpoint disabled (log + metric); nothing more to it
//!      |--429/502/503/504, other status, timeout, refused connection-->
//!      |      n < max_attempts: retry message, delay = backoff(n) (at least Retry-After)
//!      |      n = max_attempts: dead-letter queue (alarm)
//!      \--target refused by the SSRF guard--> dead-letter queue at once
//! ```
//! The `webhook-id` is the receipt's or event's own id on every attempt, so a subscriber
//! de-duplicates; the signature is made anew per attempt, over that attempt's timestamp.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsMessage;
use herald::adapters::http::{ErrorKind, GuardedClient, HttpError, HttpResponse};
use herald::config::{Subscription, WebhookSettings};
use herald::ports::{Clock, EventStore, Queue, StoreError};
use herald::receipt::webhook::{self, Backoff, Delivery, Failure, WebhookSecret};
use herald_lambda::Need;
use herald_lambda::records::{self, Handled};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The secret holding every subscription's signing secret (see [`parse_secrets`]).
pub const SECRETS_ARN: &str = "HERALD_WEBHOOK_SECRETS_ARN";
/// Where deliveries wait for their next attempt (this function's second event source).
pub const RETRY_QUEUE_URL: &str = "HERALD_WEBHOOK_QUEUE_URL";
/// Where deliveries that ran out of attempts go.
pub const DEAD_LETTER_QUEUE_URL: &str = "HERALD_WEBHOOK_DLQ_URL";
/// Networks the SSRF guard lets through (CIDR, comma-separated): for tests on loopback
/// only. Empty in a deployment.
pub const ALLOW_NETWORKS: &str = "HERALD_WEBHOOK_ALLOW_NETWORKS";
pub use herald_lambda::records::ERROR_ATTRIBUTE;

pub const SERVICE: herald_lambda::Service = herald_lambda::Service {
    name: "webhooks",
    env_vars: &[
        (herald_lambda::env::CONFIG_TOML, Need::EitherOr(herald_lambda::env::CONFIG_PATH)),
        (herald_lambda::env::CONFIG_PATH, Need::EitherOr(herald_lambda::env::CONFIG_TOML)),
        (herald_lambda::env::UNSUBSCRIBE_SECRET, Need::Forbidden),
        (herald_lambda::env::TABLE, Need::Required),
        (SECRETS_ARN, Need::Required),
        (RETRY_QUEUE_URL, Need::Required),
        (DEAD_LETTER_QUEUE_URL, Need::Required),
        (ALLOW_NETWORKS, Need::Optional),
        (herald_lambda::env::CONCURRENCY, Need::Optional),
        (herald_lambda::env::AWS_TIMEOUT_MS, Need::Optional),
        (herald_lambda::env::LOG, Need::Optional),
    ],
    aws_adapters: &["dynamo", "secrets", "sqs"],
};

/// SQS holds a message 15 minutes at most.
const MAX_QUEUE_DELAY: Duration = Duration::from_secs(900);

/// Posts a signed webhook: the guarded client in production, the same in tests (with
/// loopback allowed).
#[async_trait]
pub trait Transport: Send + Sync {
    async fn post(&self, url: &str, headers: &[(String, String)], body: Vec<u8>) -> Result<HttpResponse, HttpError>;
}

#[async_trait]
impl Transport for GuardedClient {
    async fn post(&self, url: &str, headers: &[(String, String)], body: Vec<u8>) -> Result<HttpResponse, HttpError> {
        GuardedClient::post(self, url, headers, body).await
    }
}

/// Why the webhook secret is unusable. Names subscriptions, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "the webhook secret is not a JSON object of subscription id -> \"whsec_...\" (or a list of them, newest first)"
    )]
    NotAnObject,
    #[error("webhook secret entry `{id}`: {source}")]
    Bad {
        id: String,
        #[source]
        source: webhook::SecretError,
    },
    #[error("webhook secret entry `{id}`: a string or a list of strings")]
    NotAString { id: String },
    #[error(
        "subscription `{id}` has no secret: add `\"{id}\": \"whsec_...\"` (or a `default` entry) to the webhook secret"
    )]
    Missing { id: String },
}

/// The webhook secret's format: `{"crm": "whsec_...", "billing": ["whsec_new", "whsec_old"],
/// "default": "whsec_..."}`. A list signs with every key (newest first) during a rotation;
/// `default` serves subscriptions without an entry of their own.
pub fn parse_secrets(
    text: &str,
    subscriptions: &[Subscription],
) -> Result<BTreeMap<String, Vec<WebhookSecret>>, SecretsError> {
    let value: Value = serde_json::from_str(text).map_err(|_| SecretsError::NotAnObject)?;
    let Value::Object(entries) = value else { return Err(SecretsError::NotAnObject) };
    let mut parsed = BTreeMap::new();
    for (id, entry) in entries {
        let texts: Vec<&str> = match &entry {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().ok_or_else(|| SecretsError::NotAString { id: id.clone() }))
                .collect::<Result<_, _>>()?,
            _ => return Err(SecretsError::NotAString { id }),
        };
        let secrets = texts
            .into_iter()
            .map(WebhookSecret::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| SecretsError::Bad { id: id.clone(), source })?;
        if secrets.is_empty() {
            return Err(SecretsError::NotAString { id });
        }
        parsed.insert(id, secrets);
    }
    let mut out = BTreeMap::new();
    for s in subscriptions {
        let secrets = parsed
            .get(&s.id)
            .or_else(|| parsed.get("default"))
            .ok_or_else(|| SecretsError::Missing { id: s.id.clone() })?;
        out.insert(s.id.clone(), secrets.clone());
    }
    Ok(out)
}

/// One delivery owed to one subscription, as it waits on the webhook queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDelivery {
    pub subscription: String,
    pub webhook_id: String,
    /// `receipt.sent`, `event.bounced`...
    #[serde(rename = "type")]
    pub type_name: String,
    /// The exact body every attempt sends (and signs).
    pub payload: String,
    pub attempts_made: u32,
    /// Not before this instant (for waits longer than one SQS delay).
    pub due_at: Timestamp,
}

/// What a receipt-stream message is, for subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub webhook_id: String,
    pub type_name: String,
    pub is_receipt: bool,
    pub tenant: Option<String>,
    pub payload: String,
}

/// Reads a receipt or a delivery event into the webhook body:
/// `{"type": "receipt.sent", "timestamp": "<at>", "data": {...the receipt...}}`.
pub fn outgoing(body: &str) -> Result<Outgoing, &'static str> {
    let data: Value = serde_json::from_str(body).map_err(|_| "not JSON")?;
    let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
    let (webhook_id, type_name, is_receipt) =
        match (text("event_id"), text("event"), text("receipt_id"), text("status")) {
            (Some(id), Some(event), _, _) => (id, format!("event.{event}"), false),
            (_, _, Some(id), Some(status)) => (id, format!("receipt.{status}"), true),
            _ => return Err("neither a receipt (receipt_id, status) nor a delivery event (event_id, event)"),
        };
    let timestamp = text("at").unwrap_or_default();
    let tenant = text("tenant");
    let payload = herald::receipt::sqs_safe_json(
        serde_json::json!({ "type": type_name, "timestamp": timestamp, "data": data }).to_string(),
    );
    Ok(Outgoing { webhook_id, type_name, is_receipt, tenant, payload })
}

/// A subscription with its signing secrets.
pub struct Subscriber {
    pub subscription: Subscription,
    pub secrets: Vec<WebhookSecret>,
}

impl Subscriber {
    fn wants(&self, out: &Outgoing) -> bool {
        let short = out.type_name.split_once('.').map_or(out.type_name.as_str(), |(_, name)| name);
        let tenant_ok = match &self.subscription.tenant {
            Some(t) => out.tenant.as_deref() == Some(t.as_str()),
            None => true,
        };
        tenant_ok && webhook::matches(&self.subscription.events, short, out.is_receipt)
    }
}

pub struct Dispatcher {
    pub subscribers: Vec<Subscriber>,
    pub backoff: Backoff,
    pub transport: Arc<dyn Transport>,
    pub events: Arc<dyn EventStore>,
    pub retries: Arc<dyn Queue>,
    pub dead_letters: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    /// Subscriptions disabled by a 410, as last read from the table.
    disabled: Mutex<Disabled>,
}

/// How long an instance goes on with the disabled endpoints it read. The list is one
/// item for the whole stack: read every invocation, it capped the stack near 3,000
/// invocations a second (one partition's strongly consistent reads, docs/scale.md §4);
/// read this often, one item serves about 6,000 instances. The cost: an endpoint
/// enabled again waits this long on an instance that read it disabled (and an
/// invocation already running goes on with the list it started with, as before).
pub const DISABLED_FRESH: jiff::SignedDuration = jiff::SignedDuration::from_secs(2);

#[derive(Default)]
struct Disabled {
    subscriptions: BTreeSet<String>,
    /// When `subscriptions` was read (or a read failed); None before the first.
    read_at: Option<Timestamp>,
}

impl Dispatcher {
    pub fn new(
        settings: &WebhookSettings,
        mut secrets: BTreeMap<String, Vec<WebhookSecret>>,
        transport: Arc<dyn Transport>,
        events: Arc<dyn EventStore>,
        retries: Arc<dyn Queue>,
        dead_letters: Arc<dyn Queue>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let subscribers = settings
            .subscriptions
            .iter()
            .map(|s| Subscriber { subscription: s.clone(), secrets: secrets.remove(&s.id).unwrap_or_default() })
            .collect();
        Dispatcher {
            subscribers,
            backoff: settings.backoff,
            transport,
            events,
            retries,
            dead_letters,
            clock,
            disabled: Mutex::new(Disabled::default()),
        }
    }

    /// At the start of each invocation: which endpoints a 410 took down (by any
    /// instance), read again once the last read is `DISABLED_FRESH` old. If the table
    /// cannot say, nothing counts as disabled until the next read, `DISABLED_FRESH`
    /// later (a throttled item is not read harder): a retired endpoint gets one more
    /// 410, a live one loses nothing.
    pub async fn new_invocation(&self) {
        let now = self.clock.now();
        let fresh = self.disabled.lock().ok().and_then(|d| d.read_at).is_some_and(|at| {
            let age = now.duration_since(at);
            // A clock that went back is no reason to trust an old read.
            !age.is_negative() && age < DISABLED_FRESH
        });
        if fresh {
            return;
        }
        let disabled = match self.events.disabled_endpoints().await {
            Ok(d) => Disabled { subscriptions: d.into_keys().collect(), read_at: Some(now) },
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the disabled webhook endpoints; sending to all");
                Disabled { subscriptions: BTreeSet::new(), read_at: Some(now) }
            }
        };
        if let Ok(mut d) = self.disabled.lock() {
            *d = disabled;
        }
    }

    fn is_disabled(&self, id: &str) -> bool {
        self.disabled.lock().map(|d| d.subscriptions.contains(id)).unwrap_or(false)
    }

    /// One message of either queue.
    pub async fn handle(&self, record: SqsMessage) -> Handled {
        let body = record.body.as_deref().unwrap_or_default();
        if !is_pending_delivery(body) {
            return self.fan_out(body).await;
        }
        match serde_json::from_str::<PendingDelivery>(body) {
            Ok(pending) => self.retry(pending).await,
            // A pending delivery of another release's shape: kept for an operator.
            Err(_) => {
                records::dead_letter(self.dead_letters.as_ref(), body, "an unreadable pending webhook delivery").await
            }
        }
    }

    async fn fan_out(&self, body: &str) -> Handled {
        let out = match outgoing(body) {
            Ok(out) => out,
            Err(why) => {
                return records::dead_letter(
                    self.dead_letters.as_ref(),
                    body,
                    &format!("not deliverable as a webhook: {why}"),
                )
                .await;
            }
        };
        let mut wanted: Vec<&Subscriber> = self.subscribers.iter().filter(|s| s.wants(&out)).collect();
        wanted.retain(|s| {
            let disabled = self.is_disabled(&s.subscription.id);
            if disabled {
                tracing::info!(subscription = %s.subscription.id, webhook_id = %out.webhook_id, "not sent: the endpoint is disabled (410); `herald webhooks enable` sends again");
            }
            !disabled
        });
        let attempts = wanted.iter().map(|s| async {
            let pending = PendingDelivery {
                subscription: s.subscription.id.clone(),
                webhook_id: out.webhook_id.clone(),
                type_name: out.type_name.clone(),
                payload: out.payload.clone(),
                attempts_made: 0,
                due_at: self.clock.now(),
            };
            self.attempt(s, pending).await
        });
        let results = futures_util::future::join_all(attempts).await;
        // A delivery whose next step could not be queued is redone with the whole
        // message: the subscribers already served see the same webhook-id again.
        if results.iter().any(Result::is_err) { Handled::Retry } else { Handled::Done }
    }

    async fn retry(&self, pending: PendingDelivery) -> Handled {
        let Some(subscriber) = self.subscribers.iter().find(|s| s.subscription.id == pending.subscription) else {
            let reason = "the subscription is no longer configured";
            tracing::warn!(subscription = %pending.subscription, webhook_id = %pending.webhook_id, "{reason}");
            return records::dead_letter(self.dead_letters.as_ref(), &to_json(&pending), reason).await;
        };
        if self.is_disabled(&pending.subscription) {
            tracing::info!(subscription = %pending.subscription, webhook_id = %pending.webhook_id, "dropped: endpoint disabled (410)");
            return Handled::Done;
        }
        let now = self.clock.now();
        // Within a second is due: SQS delays are whole seconds.
        if pending.due_at > now + jiff::SignedDuration::from_secs(1) {
            // Still waiting: hop once more through the queue.
            let wait = Duration::try_from(pending.due_at.duration_since(now)).unwrap_or_default();
            let result = self.retries.send(&to_json(&pending), wait.min(MAX_QUEUE_DELAY), &[]).await;
            return if result.is_ok() { Handled::Done } else { Handled::Retry };
        }
        match self.attempt(subscriber, pending).await {
            Ok(()) => Handled::Done,
            Err(_) => Handled::Retry,
        }
    }

    /// One attempt and what follows from it. Err: its next step could not be queued.
    async fn attempt(&self, subscriber: &Subscriber, mut pending: PendingDelivery) -> Result<(), StoreError> {
        let id = subscriber.subscription.id.as_str();
        let outcome = self.post(subscriber, &pending).await;
        pending.attempts_made += 1;
        let attempt = pending.attempts_made;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            // No attempt can succeed: straight to the dead-letter queue.
            Err(why) => {
                tracing::error!(subscription = id, webhook_id = %pending.webhook_id, failure = why, "not deliverable; dead-lettered");
                metric("WebhookDeadLettered", id);
                let reason = format!("not deliverable: {why}");
                return self.dead_letters.send(&to_json(&pending), Duration::ZERO, &[(ERROR_ATTRIBUTE, &reason)]).await;
            }
        };
        match outcome {
            Delivery::Delivered => {
                tracing::info!(subscription = id, webhook_id = %pending.webhook_id, r#type = %pending.type_name, attempt, "delivered");
                Ok(())
            }
            Delivery::Gone => {
                tracing::warn!(subscription = id, webhook_id = %pending.webhook_id, "endpoint answered 410 Gone: disabled until an operator enables it");
                metric("WebhookEndpointDisabled", id);
                if let Ok(mut d) = self.disabled.lock() {
                    d.subscriptions.insert(id.to_owned());
                }
                self.events.disable_endpoint(id, self.clock.now()).await
            }
            other => {
                let jitter = f64::from(uuid::Uuid::new_v4().as_bytes()[0]) / 256.0;
                let why = describe(&other);
                match other.next_delay(&self.backoff, attempt, jitter) {
                    Some(delay) => {
                        tracing::info!(subscription = id, webhook_id = %pending.webhook_id, attempt, failure = %why, retry_in_s = delay.as_secs(), "not delivered; will retry");
                        pending.due_at = self
                            .clock
                            .now()
                            .checked_add(jiff::SignedDuration::try_from(delay).unwrap_or_default())
                            .unwrap_or(Timestamp::MAX);
                        self.retries.send(&to_json(&pending), delay.min(MAX_QUEUE_DELAY), &[]).await
                    }
                    None => {
                        let reason = format!("gave up after {attempt} attempt(s): {why}");
                        tracing::error!(subscription = id, webhook_id = %pending.webhook_id, failure = %why, attempt, "not delivered; dead-lettered");
                        metric("WebhookDeadLettered", id);
                        self.dead_letters.send(&to_json(&pending), Duration::ZERO, &[(ERROR_ATTRIBUTE, &reason)]).await
                    }
                }
            }
        }
    }

    /// One attempt. Err: a fault no retry mends (the subscription's configuration).
    async fn post(&self, subscriber: &Subscriber, pending: &PendingDelivery) -> Result<Delivery, &'static str> {
        let now = self.clock.now();
        let signed =
            webhook::sign(&subscriber.secrets, &pending.webhook_id, now.as_second(), pending.payload.as_bytes());
        let Ok(signature) = signed else {
            return Err("the delivery cannot be signed (no secret, or an id Standard Webhooks forbids)");
        };
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("user-agent".to_owned(), concat!("herald-webhooks/", env!("CARGO_PKG_VERSION")).to_owned()),
            ("webhook-id".to_owned(), pending.webhook_id.clone()),
            ("webhook-timestamp".to_owned(), now.as_second().to_string()),
            ("webhook-signature".to_owned(), signature),
        ];
        match self.transport.post(&subscriber.subscription.url, &headers, pending.payload.clone().into_bytes()).await {
            Ok(response) => {
                let retry_after = response
                    .header("retry-after")
                    .and_then(|v| webhook::parse_retry_after(v, now, webhook::MAX_RETRY_AFTER));
                Ok(webhook::classify(response.status, retry_after))
            }
            Err(e) => {
                // The error names the host at most, never the path or query (tokens).
                tracing::info!(subscription = %subscriber.subscription.id, error = %e, "webhook request failed");
                Ok(Delivery::Failed(match e.kind() {
                    ErrorKind::Timeout => Failure::Timeout,
                    ErrorKind::Connect => Failure::Connect,
                    ErrorKind::Refused => Failure::Refused,
                    ErrorKind::Tls => Failure::Tls,
                    ErrorKind::InvalidRequest => return Err("the subscription's URL is not a valid https URL"),
                    ErrorKind::Other => Failure::Other,
                }))
            }
        }
    }
}

/// SQS-safe JSON (a provider's text may hold U+FFFE or U+FFFF, which SQS refuses raw).
fn to_json(pending: &PendingDelivery) -> String {
    herald::receipt::sqs_safe_json(serde_json::to_string(pending).unwrap_or_default())
}

/// Whether a webhook-queue message is a pending delivery (rather than a receipt or an
/// event): it names a subscription and a webhook id.
fn is_pending_delivery(body: &str) -> bool {
    serde_json::from_str::<serde_json::Map<String, Value>>(body)
        .is_ok_and(|o| o.contains_key("subscription") && o.contains_key("webhook_id"))
}

fn describe(outcome: &Delivery) -> String {
    match outcome {
        Delivery::Failed(Failure::Status(code)) => format!("HTTP {code}"),
        Delivery::RetryLater { after } => match after {
            Some(a) => format!("throttled (Retry-After {}s)", a.as_secs()),
            None => "throttled".to_owned(),
        },
        Delivery::Failed(Failure::Timeout) => "timed out".to_owned(),
        Delivery::Failed(Failure::Connect) => "could not connect".to_owned(),
        Delivery::Failed(Failure::Refused) => "target refused: it resolves to an internal address".to_owned(),
        Delivery::Failed(Failure::Tls) => "TLS failed".to_owned(),
        Delivery::Failed(Failure::Other) => "request failed".to_owned(),
        Delivery::Delivered => "delivered".to_owned(),
        Delivery::Gone => "gone (410)".to_owned(),
    }
}

/// A CloudWatch metric in the embedded metric format: one JSON line on stdout, which
/// Lambda's log stream turns into a data point (the template alarms on it).
fn metric(name: &str, subscription: &str) {
    let line = serde_json::json!({
        "_aws": {
            "Timestamp": Timestamp::now().as_millisecond(),
            "CloudWatchMetrics": [{
                "Namespace": "herald",
                "Dimensions": [["Function"]],
                "Metrics": [{ "Name": name, "Unit": "Count" }],
            }],
        },
        "Function": "webhooks",
        "subscription": subscription,
        name: 1,
    });
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_lambda::env::unlisted_variables;

    #[test]
    fn every_variable_the_function_reads_is_listed() {
        let sources = [("main.rs", include_str!("main.rs")), ("lib.rs", include_str!("lib.rs"))];
        assert_eq!(unlisted_variables(&sources, SERVICE.env_vars), Vec::<String>::new());
    }

    #[test]
    fn receipts_and_events_become_typed_payloads() {
        let receipt = r#"{"receipt_id":"r1","request_id":"q","status":"sent","channel":"email","metadata":{},"at":"2026-11-30T00:00:00Z","tenant":"acme"}"#;
        let out = outgoing(receipt).unwrap();
        assert_eq!((out.webhook_id.as_str(), out.type_name.as_str(), out.is_receipt), ("r1", "receipt.sent", true));
        assert_eq!(out.tenant.as_deref(), Some("acme"));
        let payload: Value = serde_json::from_str(&out.payload).unwrap();
        assert_eq!(payload["type"], "receipt.sent");
        assert_eq!(payload["data"]["request_id"], "q");
        let event =
            r#"{"event_id":"e1","event":"bounced","channel":"email","provider":"ses","at":"2026-11-30T00:00:00Z"}"#;
        let out = outgoing(event).unwrap();
        assert_eq!((out.type_name.as_str(), out.is_receipt), ("event.bounced", false));
        assert!(outgoing("{}").is_err());
        assert!(outgoing("not json").is_err());
    }

    #[test]
    fn secrets_name_each_subscription_or_a_default() {
        let sub = |id: &str| Subscription {
            id: id.into(),
            url: "https://h.example".into(),
            events: vec!["*".into()],
            tenant: None,
        };
        let key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let text = format!(r#"{{"crm": ["{key}", "{key}"], "default": "{key}"}}"#);
        let parsed = parse_secrets(&text, &[sub("crm"), sub("other")]).unwrap();
        assert_eq!(parsed["crm"].len(), 2);
        assert_eq!(parsed["other"].len(), 1);
        let missing = parse_secrets(&format!(r#"{{"crm": "{key}"}}"#), &[sub("billing")]).unwrap_err();
        assert_eq!(missing, SecretsError::Missing { id: "billing".into() });
        let bad = parse_secrets(r#"{"crm": "whsec_short"}"#, &[sub("crm")]).unwrap_err();
        assert!(!bad.to_string().contains("short"), "{bad}");
    }
}
