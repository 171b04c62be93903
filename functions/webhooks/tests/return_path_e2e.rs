//! The return path end to end, on moto with the real binaries: the email function
//! sends, SES reports a bounce on the provider-events queue, the events function
//! suppresses the address and emits `bounced`, and the webhooks function delivers both
//! the `sent` receipt and the `bounced` event to a subscriber (a real HTTP server on
//! loopback that verifies every signature). Then the webhook failure modes through the
//! real binary: retries through SQS delays, a 410, a subscriber that never answers.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use herald::adapters::aws::DynamoStore;
use herald::ports::EventStore;
use herald::receipt::webhook::{self, SignedHeaders, WebhookSecret};
use herald_e2e::stack::{Options, Spec, Stack, sibling_binary};
use serde_json::{Value, json};

const OWN: &str = env!("CARGO_BIN_EXE_herald-webhooks");
const AWS_TIMEOUT_MS: u64 = 4_000;

fn options(config: String) -> Options {
    let calls = herald::pipeline::CALLS_PER_RECORD + herald::pipeline::CALLS_PER_EMIT;
    let function_timeout = Duration::from_millis(AWS_TIMEOUT_MS * u64::from(calls)) + Duration::from_secs(4);
    Options { config, visibility: 30, aws_timeout_ms: AWS_TIMEOUT_MS, function_timeout }
}

/// What a subscriber answers, in order (the last one repeats).
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    Hang,
}

/// (webhook-id, signature verified, body as JSON)
type Seen = Arc<Mutex<Vec<(String, bool, Value)>>>;

/// A subscriber on loopback that checks each signature with the deployed secret.
async fn subscriber(secret: Arc<Mutex<Option<WebhookSecret>>>, script: Vec<Answer>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let script = Arc::new(Mutex::new(script));
    let recorded = seen.clone();
    let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let (seen, script, secret) = (recorded.clone(), script.clone(), secret.clone());
        async move {
            let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let (id, ts, sig) = (h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"));
            let signed = SignedHeaders { id: &id, timestamp: &ts, signature: &sig };
            let verified = secret.lock().unwrap().as_ref().is_some_and(|key| {
                webhook::verify(key, &signed, &body, jiff::Timestamp::now(), webhook::DEFAULT_TOLERANCE).is_ok()
            });
            let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
            seen.lock().unwrap().push((id, verified, json));
            let answer = {
                let mut s = script.lock().unwrap();
                if s.len() > 1 { s.remove(0) } else { s[0] }
            };
            match answer {
                Answer::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
                Answer::Hang => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    StatusCode::OK.into_response()
                }
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/herald?source=test", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn webhooks_specs() -> Vec<Spec> {
    let webhooks = |queue| {
        Spec::new("WebhooksFunction", PathBuf::from(OWN))
            .fed_by(queue)
            .env("HERALD_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8")
    };
    vec![webhooks("ReceiptsQueue"), webhooks("WebhookQueue")]
}

/// The signing secret the stack generated, as a subscriber configures it.
async fn deployed_secret(stack: &Stack) -> WebhookSecret {
    let arn = stack.fed_by("ReceiptsQueue").env_var("HERALD_WEBHOOK_SECRETS_ARN").to_owned();
    let client = aws_sdk_secretsmanager::Client::new(&stack.sdk);
    let text = client.get_secret_value().secret_id(arn).send().await.unwrap().secret_string().unwrap().to_owned();
    let entries: Value = serde_json::from_str(&text).unwrap();
    WebhookSecret::parse(&format!("whsec_{}", entries["default"].as_str().unwrap())).unwrap()
}

fn seen_types(seen: &Seen) -> Vec<String> {
    seen.lock().unwrap().iter().map(|(_, _, body)| body["type"].as_str().unwrap_or_default().to_owned()).collect()
}

async fn send_raw(stack: &Stack, queue_id: &str, body: &str) {
    let url = stack.fed_by(queue_id).request_queue.clone();
    stack.sqs.send_message().queue_url(url).message_body(body).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bounce_reaches_the_subscriber_after_sent_and_suppresses_the_address() {
    let secret = Arc::new(Mutex::new(None));
    let (url, seen) = subscriber(secret.clone(), vec![Answer::Status(200)]).await;
    let config = format!(
        r#"
quiet_hours = "off"

[email]
from = "Acme <hello@acme.example>"
unsubscribe_url = "https://acme.example/unsubscribe?token={{token}}"

[webhooks]
max_attempts = 3
backoff_base = "1s"
backoff_max = "2s"

[[webhooks.subscriptions]]
id = "orchestrator"
url = "{url}"
events = ["receipt.*", "event.*"]
tenant = "acme"
"#
    );
    let mut specs = vec![
        Spec::new("EmailFunction", sibling_binary(OWN, "herald-email")),
        Spec::new("EventsFunction", sibling_binary(OWN, "herald-events")),
    ];
    specs.extend(webhooks_specs());
    let stack = Stack::start(specs, &options(config)).await;
    stack.moto.verify_email_identity("acme.example").await;
    *secret.lock().unwrap() = Some(deployed_secret(&stack).await);

    let request = |id: &str| {
        json!({"id": id, "tenant": "acme", "channel": "email", "category": "transactional",
               "recipient": {"id": "u1", "email": "Pat@Example.com"}, "template": "one-time-code",
               "data": {"code": "123456"}})
        .to_string()
    };
    stack.enqueue("EmailFunction", &[request("order:1/welcome")]).await;
    stack.drain("EmailFunction", 1).await;
    stack.drain_queue("ReceiptsQueue", 1).await;
    assert_eq!(seen_types(&seen), vec!["receipt.sent"]);
    let sent = seen.lock().unwrap()[0].2.clone();
    let provider_id = sent["data"]["provider_message_id"].as_str().unwrap().to_owned();

    // What SES publishes for that message, as the configuration set's topic delivers it
    // to the queue (raw), with the tags the email function set.
    let ses = stack.proxy.accepted("sesv2", "SendEmail");
    let tags = ses[0].body["EmailTags"].clone();
    let mut tag_map = serde_json::Map::new();
    for tag in tags.as_array().unwrap() {
        tag_map.insert(tag["Name"].as_str().unwrap().to_owned(), json!([tag["Value"]]));
    }
    let bounce = json!({
        "eventType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General", "feedbackId": "fb-1",
                   "timestamp": jiff::Timestamp::now().to_string(),
                   "bouncedRecipients": [{"emailAddress": "pat@example.com", "status": "5.1.1",
                                          "diagnosticCode": "smtp; 550 5.1.1 pat@example.com unknown"}]},
        "mail": {"timestamp": jiff::Timestamp::now().to_string(), "messageId": provider_id,
                 "destination": ["pat@example.com"], "tags": tag_map},
    });
    send_raw(&stack, "ProviderEventsQueue", &bounce.to_string()).await;
    stack.drain_queue("ProviderEventsQueue", 1).await;
    stack.drain_queue("ReceiptsQueue", 1).await;
    assert_eq!(seen_types(&seen), vec!["receipt.sent", "event.bounced"]);
    let bounced = seen.lock().unwrap()[1].2.clone();
    assert_eq!(bounced["data"]["request_id"], "order:1/welcome", "matched through the (encoded) tag");
    assert_eq!(bounced["data"]["bounce"]["bounce_type"], "permanent");
    assert_eq!(bounced["data"]["provider_message_id"], provider_id.as_str());
    assert!(!bounced.to_string().to_ascii_lowercase().contains("pat@example.com"), "{bounced}");

    // The next request to that address, for that tenant, is suppressed.
    stack.enqueue("EmailFunction", &[request("order:2/welcome")]).await;
    stack.drain("EmailFunction", 1).await;
    stack.drain_queue("ReceiptsQueue", 1).await;
    assert_eq!(seen_types(&seen), vec!["receipt.sent", "event.bounced", "receipt.suppressed"]);
    let suppressed = seen.lock().unwrap()[2].2.clone();
    assert_eq!(suppressed["data"]["reason"], "suppressed:hard_bounce");
    assert_eq!(stack.proxy.accepted("sesv2", "SendEmail").len(), 1, "nothing more was sent");

    // Every delivery was signed with the deployed secret; ids are the receipts' own.
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().all(|(_, verified, _)| *verified), "{seen:?}");
    assert!(
        seen.iter().all(|(id, _, body)| body["data"]["receipt_id"].as_str().or(body["data"]["event_id"].as_str())
            == Some(id.as_str()))
    );
    // The status shows the bounce.
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.table.clone());
    let key = herald::request::IdempotencyKey::new(
        Some(&herald::request::TenantId::parse("acme").unwrap()),
        &herald::request::RequestId::parse("order:1/welcome").unwrap(),
    );
    let state = store.request_state(&key).await.unwrap().unwrap();
    assert_eq!(state.delivery.map(|d| d.0), Some(herald::receipt::event::EventKind::Bounced));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_a_410_and_a_silent_subscriber_through_the_real_binary() {
    let secret = Arc::new(Mutex::new(None));
    let failing = vec![Answer::Status(500), Answer::Status(500), Answer::Status(500), Answer::Status(200)];
    let (flaky, flaky_seen) = subscriber(secret.clone(), failing).await;
    let (gone, gone_seen) = subscriber(secret.clone(), vec![Answer::Status(410)]).await;
    let (silent, silent_seen) = subscriber(secret.clone(), vec![Answer::Hang]).await;
    let config = format!(
        r#"
[webhooks]
max_attempts = 4
backoff_base = "1s"
backoff_max = "2s"
timeout = "1s"

[[webhooks.subscriptions]]
id = "flaky"
url = "{flaky}"
events = ["*"]

[[webhooks.subscriptions]]
id = "gone"
url = "{gone}"
events = ["*"]

[[webhooks.subscriptions]]
id = "silent"
url = "{silent}"
events = ["*"]
"#
    );
    let stack = Stack::start(webhooks_specs(), &options(config)).await;
    *secret.lock().unwrap() = Some(deployed_secret(&stack).await);
    let receipt = |id: &str| {
        json!({"receipt_id": id, "request_id": "order-1", "status": "sent", "reason": null, "channel": "sms",
               "metadata": {}, "at": jiff::Timestamp::now().to_string()})
        .to_string()
    };
    send_raw(&stack, "ReceiptsQueue", &receipt("r-1")).await;
    stack.drain_queue("ReceiptsQueue", 1).await;
    stack.drain_queue("WebhookQueue", 2).await;

    let flaky_seen = flaky_seen.lock().unwrap().clone();
    assert_eq!(flaky_seen.len(), 4, "three 500s, then delivered");
    assert!(flaky_seen.iter().all(|(id, verified, _)| id == "r-1" && *verified), "{flaky_seen:?}");
    assert_eq!(gone_seen.lock().unwrap().len(), 1, "a 410 is not retried");
    assert_eq!(silent_seen.lock().unwrap().len(), 4, "the configured attempts");
    let dead = stack.fed_by("ReceiptsQueue").env_var("HERALD_WEBHOOK_DLQ_URL").to_owned();
    let messages = stack
        .sqs
        .receive_message()
        .queue_url(&dead)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let messages = messages.messages();
    assert_eq!(messages.len(), 1, "only the silent subscriber's delivery is dead-lettered");
    let pending: Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!((pending["subscription"].as_str(), pending["webhook_id"].as_str()), (Some("silent"), Some("r-1")));
    let reason = messages[0].message_attributes().unwrap()["herald-error"].string_value().unwrap().to_owned();
    assert!(reason.contains("gave up after 4"), "{reason}");

    // The 410 disabled its endpoint: the next receipt is not sent there.
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.table.clone());
    assert!(store.disabled_endpoints().await.unwrap().contains_key("gone"));
    send_raw(&stack, "ReceiptsQueue", &receipt("r-2")).await;
    stack.drain_queue("ReceiptsQueue", 1).await;
    assert_eq!(gone_seen.lock().unwrap().len(), 1);
    let logs = stack.fed_by("ReceiptsQueue").logs();
    assert!(logs.contains("410 Gone"), "the log says so");
    assert!(logs.contains("WebhookEndpointDisabled"), "and a metric counts it");
    assert!(!logs.contains("/hooks/herald"), "no webhook URL in the logs");
}
