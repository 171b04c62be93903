//! The email function end to end: its real binary, driven through the Lambda
//! Runtime API emulator by the SQS event-source emulator, talking to moto's
//! standalone server (SQS, DynamoDB, SES v2, Secrets Manager) through the recording,
//! fault-injecting proxy.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald::adapters::aws::DynamoStore;
use herald::ports::{StateStore, SuppressionEntry, SuppressionReason};
use herald::receipt::unsubscribe::{self, UnsubscribeKeys};
use herald::request::SuppressionKey;
use herald_e2e::event_source::EventSource;
use herald_e2e::lambda::{FunctionProcess, RuntimeApi};
use herald_e2e::moto::Moto;
use herald_e2e::proxy::{Fault, FaultKind, Proxy};
// Receipts grouped by request id.
use herald_e2e::stack::by_request as by_id;
use herald_e2e::template::{Overrides, Template};
use serde_json::{Value, json};

/// Each AWS call's timeout in these tests, and the invocation deadline that fits a
/// batch of such calls (`BatchBudget::total`).
const AWS_TIMEOUT_MS: u64 = 4_000;
/// The invocation deadline fits a record's calls and the receipts', as the template's
/// timeout must.
const FUNCTION_TIMEOUT: Duration = Duration::from_millis(
    AWS_TIMEOUT_MS * (herald::pipeline::CALLS_PER_RECORD + herald::pipeline::CALLS_PER_EMIT) as u64 + 4_000,
);

/// The lock: longer than a record's calls at this timeout (the function refuses a lock a
/// live attempt could outlast), and short enough for the crash tests to wait it out.
const LOCK_SECONDS: u64 =
    AWS_TIMEOUT_MS * (herald::pipeline::CALLS_PER_RECORD + herald_lambda::LOCK_MARGIN_CALLS) as u64 / 1000 + 6;

/// The email function's logical id in infra/template.yaml.
const FUNCTION: &str = "EmailFunction";

fn config(extra: &str) -> String {
    format!(
        r#"
[email]
from = "Acme <hello@acme.example>"
unsubscribe_url = "https://acme.example/unsubscribe?token={{token}}"

[idempotency]
lock_timeout = "{LOCK_SECONDS}s"
retention = "1d"

[[caps]]
category = "marketing"
limit = 3
window = "24h"
{extra}
"#
    )
}

struct Stack {
    moto: Moto,
    proxy: Proxy,
    sqs: aws_sdk_sqs::Client,
    store: DynamoStore,
    request_queue: String,
    dlq: String,
    receipts_queue: String,
    runtime: Arc<RuntimeApi>,
    source: Arc<EventSource>,
    functions: Vec<FunctionProcess>,
    env: Vec<(String, String)>,
    logs: tempfile::TempDir,
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_herald-email"))
}

async fn stack(cfg: &str, functions: usize) -> Stack {
    stack_with(cfg, functions, 2).await
}

/// `visibility` (seconds) overrides the template's 180 s so SQS-level retries come
/// quickly; it must stay above the longest batch, or SQS redelivers a message still
/// being processed.
async fn stack_with(cfg: &str, functions: usize, visibility: u32) -> Stack {
    let moto = Moto::start().await;
    let proxy = Proxy::start(&moto.endpoint).await;
    let sdk = moto.sdk_config(&moto.endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);

    // Queues (attributes, redrive policies) and the table (keys, TTL) as the template
    // defines them, so the tests exercise what is deployed.
    let template = Template::repo();
    let overrides = Overrides { visibility_timeout: Some(visibility) };
    let deployed = template.create_resources(&sdk, &overrides).await;
    let request_queue_id = template.event_queue(FUNCTION);
    let request_queue = deployed.queue_url(request_queue_id).to_owned();
    let dlq = deployed.queue_url(template.dead_letter_queue(request_queue_id).expect("a DLQ")).to_owned();
    moto.verify_email_identity("acme.example").await;

    // The function's environment as the template sets it (queue URLs, table, the ARN of
    // the generated unsubscribe secret, parameter defaults), then what only a deployment
    // supplies.
    let mut vars = template.resolved_env(FUNCTION, &deployed);
    vars.insert("HERALD_CONFIG_TOML".to_owned(), cfg.to_owned());
    // Under test load (many processes on few cores, a proxy that stalls on purpose) a
    // call can take longer than the default 2.5 s. The invocation deadline below is
    // raised to match, as a deployment raising one raises the other.
    vars.insert("HERALD_AWS_TIMEOUT_MS".to_owned(), AWS_TIMEOUT_MS.to_string());
    for name in template.unresolved_env(FUNCTION, &deployed) {
        assert!(vars.contains_key(&name), "the template sets {name}: give the tests a value for it");
    }
    let receipts_queue = vars["HERALD_RECEIPTS_QUEUE_URL"].clone();
    let table = vars["HERALD_TABLE"].clone();
    let mut env = moto.env(&proxy.endpoint());
    env.extend(vars);
    let runtime = Arc::new(RuntimeApi::start().await);
    runtime.set_deadline(FUNCTION_TIMEOUT);
    let logs = tempfile::tempdir().unwrap();
    let functions = (0..functions).map(|_| FunctionProcess::spawn(&bin(), &runtime, &env, logs.path())).collect();
    let mut source = EventSource::new(sqs.clone(), &request_queue).await;
    source.invoke_timeout = FUNCTION_TIMEOUT + Duration::from_secs(5);
    let source = Arc::new(source);
    let store = DynamoStore::new(ddb, table);
    Stack { moto, proxy, sqs, store, request_queue, dlq, receipts_queue, runtime, source, functions, env, logs }
}

impl Stack {
    async fn enqueue(&self, bodies: &[String]) {
        herald::adapters::aws::enqueue(&self.sqs, &self.request_queue, bodies).await.unwrap();
    }

    async fn drain(&self, pollers: usize) {
        let drained = self.source.drain(&self.runtime, pollers, Duration::from_secs(90)).await;
        assert!(drained, "the request queue did not drain; function logs:\n{}", self.all_logs());
    }

    /// Every receipt on the receipts queue (read and deleted).
    async fn receipts(&self) -> Vec<Value> {
        herald_e2e::stack::take_json(&self.sqs, &self.receipts_queue).await
    }

    async fn queue_depth(&self, url: &str) -> usize {
        herald_e2e::stack::queue_depth(&self.sqs, url).await
    }

    /// The key ring in the secret the function was given, read back from moto.
    async fn unsubscribe_keys(&self) -> UnsubscribeKeys {
        let client = aws_sdk_secretsmanager::Client::new(&self.moto.sdk_config(&self.moto.endpoint).await);
        herald::adapters::aws::unsubscribe_keys(&client, self.env_var("HERALD_UNSUBSCRIBE_SECRET_ARN")).await.unwrap()
    }

    fn env_var(&self, name: &str) -> &str {
        self.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default()
    }

    fn all_logs(&self) -> String {
        self.functions.iter().map(FunctionProcess::logs).collect::<Vec<_>>().join("\n")
    }

    fn ses_sends(&self) -> Vec<Value> {
        self.proxy
            .records()
            .into_iter()
            .filter(|r| r.service == "sesv2" && r.operation == "SendEmail" && !r.injected && r.status == 200)
            .map(|r| r.body)
            .collect()
    }
}

fn request(id: &str, recipient: &str, email: &str, category: &str, template: &str, data: Value) -> Value {
    json!({"id": id, "channel": "email", "category": category,
           "recipient": {"id": recipient, "email": email},
           "template": template, "data": data, "metadata": {"case": id}})
}

fn order(id: &str, n: usize) -> Value {
    request(
        id,
        &format!("cust-{n}"),
        &format!("cust{n}@example.com"),
        "transactional",
        "order-confirmation",
        json!({"customer": {"first_name": "Ada"}, "order": {"number": id, "total": "$1", "items": []}}),
    )
}

fn promo(id: &str, recipient: &str) -> Value {
    request(id, recipient, "promo@example.net", "marketing", "newsletter", json!({"intro": "Hi", "articles": []}))
}

fn statuses(receipts: &[Value]) -> Vec<String> {
    receipts.iter().map(|r| r["status"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_requests_each_end_in_exactly_one_terminal_receipt() {
    // A quiet window around "now" in UTC (the default zone): marketing mail without
    // a time zone is held; recipients in UTC+12 are outside the window.
    let now = jiff::Timestamp::now();
    let hhmm = |t: jiff::Timestamp| t.to_zoned_datetime(jiff::tz::TimeZone::UTC).strftime("%H:%M").to_string();
    let quiet = format!(
        "[quiet_hours]\nstart = \"{}\"\nend = \"{}\"\nchannels = [\"email\"]\ndefault_timezone = \"UTC\"\n",
        hhmm(now - jiff::SignedDuration::from_hours(1)),
        hhmm(now + jiff::SignedDuration::from_hours(6)),
    );
    let s = stack(&config(&quiet), 2).await;
    let mut bodies: Vec<String> = Vec::new();
    let mut expect: HashMap<String, &str> = HashMap::new();
    // 45 valid transactional orders.
    for i in 0..45 {
        let id = format!("order-{i}");
        bodies.push(order(&id, i).to_string());
        expect.insert(id, "sent");
    }
    // 10 redeliveries of 5 of them (the same request id in other messages): duplicates.
    for i in 0..5 {
        bodies.push(order(&format!("order-{i}"), i).to_string());
        bodies.push(order(&format!("order-{i}"), i).to_string());
    }
    // 10 invalid of several kinds.
    let invalid = [
        ("bad-json", "{\"id\": \"bad-json\", ".to_owned()),
        ("bad-field", json!({"id": "bad-field", "channel": "email", "category": "transactional", "recipient": {"id": "x", "emial": "a@example.com"}, "template": "order-confirmation"}).to_string()),
        ("bad-email", request("bad-email", "x", "not-an-email", "transactional", "order-confirmation", json!({})).to_string()),
        ("bad-template", request("bad-template", "x", "a@example.com", "transactional", "nope", json!({})).to_string()),
        ("no-email", json!({"id": "no-email", "channel": "email", "category": "transactional", "recipient": {"id": "x"}, "template": "order-confirmation"}).to_string()),
        ("bad-type", json!({"id": "bad-type", "channel": "email", "category": "transactional", "recipient": {"id": 7, "email": "a@example.com"}, "template": "order-confirmation"}).to_string()),
        ("bad-channel", json!({"id": "bad-channel", "channel": "fax", "category": "transactional", "recipient": {"id": "x", "email": "a@example.com"}, "template": "order-confirmation"}).to_string()),
        ("bad-time", json!({"id": "bad-time", "channel": "email", "category": "transactional", "recipient": {"id": "x", "email": "a@example.com"}, "template": "order-confirmation", "expires_at": "soon"}).to_string()),
        ("sms-here", json!({"id": "sms-here", "channel": "sms", "category": "transactional", "recipient": {"id": "x", "phone": "+14155550123"}, "template": "one-time-code", "data": {"code": "1"}}).to_string()),
        ("render-fails", request("render-fails", "r", "r@example.com", "transactional", "order-confirmation", json!({})).to_string()),
    ];
    for (id, body) in &invalid {
        bodies.push(body.clone());
        expect.insert((*id).to_owned(), if *id == "bad-json" { "rejected" } else { "x" });
    }
    // 10 marketing mails to one recipient (zone where the window is open): 3 sent, 7 capped.
    let open_zone = "Etc/GMT-12";
    for i in 0..10 {
        let mut p = promo(&format!("promo-{i}"), "cust-capped");
        p["recipient"]["timezone"] = json!(open_zone);
        bodies.push(p.to_string());
    }
    // 10 to suppressed addresses (hard bounce), 5 marketing held by quiet hours
    // (default zone UTC: inside the window), 5 expired, 5 with send_after in 12 s.
    for i in 0..10 {
        let addr = format!("bounced{i}@example.com");
        s.store
            .suppress(
                &SuppressionEntry {
                    key: SuppressionKey::from_stored(format!("email:{addr}")),
                    reason: SuppressionReason::HardBounce,
                },
                now,
            )
            .await
            .unwrap();
        bodies.push(
            request(
                &format!("supp-{i}"),
                &format!("s{i}"),
                &addr,
                "transactional",
                "one-time-code",
                json!({"code": "1"}),
            )
            .to_string(),
        );
    }
    for i in 0..5 {
        bodies.push(promo(&format!("quiet-{i}"), &format!("q{i}")).to_string());
    }
    for i in 0..5 {
        let mut r = order(&format!("expired-{i}"), 100 + i);
        r["expires_at"] = json!("2020-01-01T00:00:00Z");
        bodies.push(r.to_string());
    }
    for i in 0..5 {
        let mut r = order(&format!("later-{i}"), 200 + i);
        r["send_after"] = json!(now.checked_add(jiff::SignedDuration::from_secs(12)).unwrap().to_string());
        bodies.push(r.to_string());
    }
    assert_eq!(bodies.len(), 100);
    s.enqueue(&bodies).await;
    // The quiet-hours requests stay delayed in the queue; drain the rest.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        s.source.poll_once(&s.runtime, 1).await;
        let depth = s.queue_depth(&s.request_queue).await;
        if depth <= 5 || Instant::now() > deadline {
            break;
        }
    }
    let receipts = s.receipts().await;
    let groups = by_id(&receipts);

    // Every request has exactly one terminal outcome. A message enqueued three times
    // reports it three times, under one receipt id (consumers de-duplicate on it).
    for i in 0..45 {
        let group = &groups[&format!("order-{i}")];
        let st = statuses(group);
        let expected_messages = if i < 5 { 3 } else { 1 };
        let terminal: Vec<&Value> = group.iter().filter(|r| r["status"] != "deferred").collect();
        assert_eq!(terminal.len(), expected_messages, "order-{i}: {st:?}");
        assert!(terminal.iter().all(|r| r["status"] == "sent"), "order-{i}: {st:?}");
        let ids: std::collections::BTreeSet<&str> =
            terminal.iter().map(|r| r["receipt_id"].as_str().expect("receipt_id")).collect();
        assert_eq!(ids.len(), 1, "order-{i}: one receipt id for its one outcome: {ids:?}");
    }
    for (id, _) in &invalid {
        let group = if *id == "bad-json" { &groups["<none>"] } else { &groups[*id] };
        assert_eq!(group.len(), 1, "{id}: {group:?}");
        let st = group[0]["status"].as_str().unwrap();
        let want = if *id == "render-fails" { "failed" } else { "rejected" };
        assert_eq!(st, want, "{id}: {}", group[0]);
        if *id == "sms-here" {
            // Refused before admission: the id stays free for the SMS queue.
            assert_eq!(group[0]["reason"], "wrong_queue:sms");
        }
    }
    let promo_statuses: Vec<String> = (0..10).flat_map(|i| statuses(&groups[&format!("promo-{i}")])).collect();
    assert_eq!(promo_statuses.iter().filter(|s| *s == "sent").count(), 3, "{promo_statuses:?}");
    assert_eq!(promo_statuses.iter().filter(|s| *s == "capped").count(), 7, "{promo_statuses:?}");
    for i in 0..10 {
        assert_eq!(statuses(&groups[&format!("supp-{i}")]), ["suppressed"]);
        assert_eq!(groups[&format!("supp-{i}")][0]["reason"], "suppressed:hard_bounce");
    }
    for i in 0..5 {
        let q = &groups[&format!("quiet-{i}")];
        assert_eq!(statuses(q), ["deferred"], "held until the window opens");
        assert_eq!(q[0]["reason"], "quiet_hours");
        assert_eq!(statuses(&groups[&format!("expired-{i}")]), ["expired"]);
        // Deferred until due (or already due when it was first received).
        let later = statuses(&groups[&format!("later-{i}")]);
        assert!(later == ["deferred", "sent"] || later == ["sent"], "later-{i}: {later:?}");
    }
    assert_eq!(s.queue_depth(&s.request_queue).await, 5, "only the quiet-hours requests wait, delayed");
    // Chained delays: held past SQS's 15 minutes with a not-before attribute.
    let hops: Vec<Value> =
        s.proxy.records().into_iter().filter(|r| r.operation == "SendMessage").map(|r| r.body).collect();
    assert!(
        hops.iter()
            .filter(|b| b["DelaySeconds"] == 900 && b["MessageAttributes"]["herald-not-before"].is_object())
            .count()
            >= 5,
        "{hops:?}"
    );

    // moto's sent mail matches the `sent` outcomes one for one (receipts reported
    // again for a redelivered message count once: they share the receipt id).
    let mut sent: Vec<&Value> = receipts.iter().filter(|r| r["status"] == "sent").collect();
    let mut seen = std::collections::BTreeSet::new();
    sent.retain(|r| seen.insert(r["receipt_id"].as_str().unwrap_or_default().to_owned()));
    assert_eq!(sent.len(), 45 + 3 + 5);
    let sends = s.ses_sends();
    assert_eq!(sends.len(), sent.len(), "one SendEmail per sent receipt");
    let mut moto_ids: Vec<String> =
        s.moto.sent_emails().await.iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
    let mut receipt_ids: Vec<String> =
        sent.iter().map(|r| r["provider_message_id"].as_str().unwrap().to_owned()).collect();
    moto_ids.sort();
    receipt_ids.sort();
    assert_eq!(moto_ids, receipt_ids, "every sent receipt names a message moto accepted, one for one");
    // Headers, tags and configuration set on each SendEmail, as moto does not keep them.
    let keys = s.unsubscribe_keys().await;
    let mut tokens = Vec::new();
    for body in &sends {
        assert_eq!(body["ConfigurationSetName"], s.env_var("HERALD_SES_CONFIGURATION_SET"), "{body}");
        let tags: HashMap<&str, &str> = body["EmailTags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["Name"].as_str().unwrap(), t["Value"].as_str().unwrap()))
            .collect();
        let id = tags["herald-request-id"];
        let category = tags["herald-category"];
        let headers: Vec<&str> = body["Content"]["Simple"]["Headers"]
            .as_array()
            .map(|h| h.iter().map(|h| h["Name"].as_str().unwrap()).collect())
            .unwrap_or_default();
        if category == "marketing" {
            assert!(
                headers.contains(&"List-Unsubscribe") && headers.contains(&"List-Unsubscribe-Post"),
                "{id}: {headers:?}"
            );
            // The link's token verifies with the key ring in Secrets Manager (v2: key id,
            // expiry a year out) and names this recipient and category.
            let link = body["Content"]["Simple"]["Headers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h["Name"] == "List-Unsubscribe")
                .and_then(|h| h["Value"].as_str())
                .unwrap();
            let token = link.split("token=").nth(1).unwrap().trim_end_matches('>');
            assert!(token.starts_with(&format!("v2.{}.", keys.primary())), "{token}");
            let claims = unsubscribe::verify(&keys, token, now).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!((claims.recipient_id.as_str(), claims.category.as_str()), ("cust-capped", "marketing"));
            let ttl = claims.exp - now.as_second();
            assert!((365 * 86_400..365 * 86_400 + 600).contains(&ttl), "{id}: expires in {ttl} s");
            tokens.push(token.to_owned());
        } else {
            assert!(headers.is_empty(), "{id}: {headers:?}");
        }
        assert!(body["Content"]["Simple"]["Body"]["Text"]["Data"].as_str().is_some_and(|t| !t.is_empty()));
    }
    // Receipts were sent in batches, not one call per message.
    let batches = s.proxy.count("sqs", "SendMessageBatch");
    assert!(batches > 0 && batches < receipts.len() / 2, "{batches} batches for {} receipts", receipts.len());
    // Nothing permanent went to the DLQ.
    assert_eq!(s.queue_depth(&s.dlq).await, 0);
    // No addresses, tokens or keys in the logs.
    let logs = s.all_logs();
    assert!(!logs.contains("@example.com") && !logs.contains("@example.net"), "PII in logs");
    assert_eq!(tokens.len(), 3, "one unsubscribe link per marketing mail sent");
    for token in &tokens {
        assert!(!logs.contains(token.as_str()), "a token in the logs");
    }
    // The key ring was read once per execution environment, and never passed in the
    // environment: only the secret's ARN is there.
    assert_eq!(s.proxy.count("secretsmanager", "GetSecretValue"), 2, "one read per cold start");
    let secret = s.moto.sdk_config(&s.moto.endpoint).await;
    let secret = aws_sdk_secretsmanager::Client::new(&secret)
        .get_secret_value()
        .secret_id(s.env_var("HERALD_UNSUBSCRIBE_SECRET_ARN"))
        .send()
        .await
        .unwrap();
    let ring: Value = serde_json::from_str(secret.secret_string().unwrap()).unwrap();
    for (kid, key) in ring.as_object().unwrap().iter().filter(|(kid, _)| *kid != "primary") {
        let key = key.as_str().unwrap();
        assert!(key.len() >= 32, "{kid}");
        assert!(s.env.iter().all(|(_, value)| !value.contains(key)), "key {kid} is in the function's environment");
        assert!(!logs.contains(key), "key {kid} is in the logs");
    }
    assert!(s.env.iter().all(|(name, _)| name != "HERALD_UNSUBSCRIBE_SECRET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_message_twice_and_the_same_id_twice_send_one_email() {
    let s = stack(&config(""), 1).await;
    // The same SQS message delivered twice: invoke with one event two times.
    s.enqueue(&[order("twice", 1).to_string()]).await;
    let got = s
        .sqs
        .receive_message()
        .queue_url(&s.request_queue)
        .max_number_of_messages(1)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let event = s.source.event(got.messages());
    let first = s.runtime.invoke(event.clone(), Duration::from_secs(20)).await.unwrap();
    let second = s.runtime.invoke(event, Duration::from_secs(20)).await.unwrap();
    assert_eq!(first["batchItemFailures"], json!([]));
    assert_eq!(second["batchItemFailures"], json!([]));
    // What the event source would do after a success.
    let handle = got.messages()[0].receipt_handle().unwrap();
    s.sqs.delete_message().queue_url(&s.request_queue).receipt_handle(handle).send().await.unwrap();
    // The same request id in two messages.
    s.enqueue(&[order("same-id", 2).to_string(), order("same-id", 2).to_string()]).await;
    s.drain(1).await;
    let receipts = s.receipts().await;
    let groups = by_id(&receipts);
    // The redelivered message reports its outcome again, identically.
    assert_eq!(statuses(&groups["twice"]), ["sent", "sent"]);
    assert_eq!(groups["twice"][1]["receipt_id"], groups["twice"][0]["receipt_id"]);
    assert_eq!(groups["twice"][1]["provider_message_id"], groups["twice"][0]["provider_message_id"]);
    // Two messages with the same content are the same request delivered twice (the
    // second may first wait, `deferred: in_progress`, while the first holds the lock).
    let same: Vec<&Value> = groups["same-id"].iter().filter(|r| r["status"] != "deferred").collect();
    assert_eq!(same.len(), 2, "{:?}", statuses(&groups["same-id"]));
    assert!(same.iter().all(|r| r["status"] == "sent" && r["receipt_id"] == same[0]["receipt_id"]), "{same:?}");
    // A different message reusing the id: `duplicate`, under its own receipt id.
    let sent_id = same[0]["receipt_id"].clone();
    s.enqueue(&[order("same-id", 3).to_string()]).await;
    s.drain(1).await;
    let receipts = s.receipts().await;
    let groups = by_id(&receipts);
    let last = groups["same-id"].last().expect("a receipt");
    assert_eq!((last["status"].as_str(), last["reason"].as_str()), (Some("duplicate"), Some("duplicate:sent")));
    assert_ne!(last["receipt_id"], sent_id);
    assert_eq!(s.ses_sends().len(), 2);
    assert_eq!(s.moto.sent_emails().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_after_defers_without_burning_receives_and_sends_once_due() {
    let s = stack(&config(""), 1).await;
    let due = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3);
    let mut r = order("due-soon", 1);
    r["send_after"] = json!(due.to_string());
    s.enqueue(&[r.to_string()]).await;
    s.drain(1).await;
    let receipts = s.receipts().await;
    assert_eq!(statuses(&receipts), ["deferred", "sent"]);
    assert_eq!(receipts[0]["deferred_until"], json!(due.to_string()));
    let sent_at: jiff::Timestamp = receipts[1]["at"].as_str().unwrap().parse().unwrap();
    assert!(sent_at >= due, "sent at {sent_at}, due {due}");
    // Deferred by re-enqueueing with a delay, not by failing the record.
    assert_eq!(s.source.stats().reported_failures.load(std::sync::atomic::Ordering::SeqCst), 0);
    let hop = s.proxy.calls("sqs", "SendMessage");
    assert_eq!(hop.len(), 1);
    assert!(hop[0].body["DelaySeconds"].as_i64().is_some_and(|d| (3..=4).contains(&d)), "{}", hop[0].body);
    assert_eq!(s.ses_sends().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_invocations_for_one_recipient_send_exactly_three() {
    // Twenty execution environments, one record per invocation, all at once.
    let s = stack(&config(""), 20).await;
    let bodies: Vec<String> = (0..20).map(|i| promo(&format!("race-{i}"), "cust-race").to_string()).collect();
    s.enqueue(&bodies).await;
    let mut source = EventSource::new(s.sqs.clone(), &s.request_queue).await;
    source.batch_size = 1;
    let source = Arc::new(source);
    assert!(source.drain(&s.runtime, 20, Duration::from_secs(90)).await, "{}", s.all_logs());
    let receipts = s.receipts().await;
    let st = statuses(&receipts);
    assert_eq!(st.iter().filter(|s| *s == "sent").count(), 3, "{st:?}");
    assert_eq!(st.iter().filter(|s| *s == "capped").count(), 17, "{st:?}");
    assert_eq!(s.ses_sends().len(), 3);
    assert_eq!(s.moto.sent_emails().await.len(), 3);
    assert!(source.stats().invocations.load(std::sync::atomic::Ordering::SeqCst) >= 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttling_and_server_errors_are_retried_through_sqs_and_each_request_is_sent_once() {
    // The SDK backs off between its own attempts: a batch can take a few seconds.
    let s = stack_with(&config(""), 2, 8).await;
    let fault =
        |kind, share| Fault { service: "sesv2".into(), operation: "SendEmail".into(), kind, share, remaining: None };
    s.proxy.inject(fault(FaultKind::Throttle, 0.5));
    s.proxy.inject(fault(FaultKind::ServerError, 0.3));
    let bodies: Vec<String> = (0..30).map(|i| order(&format!("flaky-{i}"), i).to_string()).collect();
    s.enqueue(&bodies).await;
    s.drain(2).await;
    let receipts = s.receipts().await;
    let groups = by_id(&receipts);
    for i in 0..30 {
        assert_eq!(statuses(&groups[&format!("flaky-{i}")]), ["sent"], "flaky-{i}");
    }
    // Exactly one accepted SendEmail per request, and moto has exactly those.
    assert_eq!(s.ses_sends().len(), 30);
    let emails = s.moto.sent_emails().await;
    assert_eq!(emails.len(), 30);
    let stats = s.source.stats();
    let redelivered = stats.reported_failures.load(std::sync::atomic::Ordering::SeqCst);
    assert!(redelivered > 0, "some requests outlasted the SDK's own retries and went back to SQS");
    // Bounded: at most the SDK's 3 attempts per delivery, never a tight loop.
    let attempts = s.proxy.count("sesv2", "SendEmail");
    assert!(attempts <= 3 * (30 + redelivered), "{attempts} attempts for {redelivered} redeliveries");
    assert_eq!(s.queue_depth(&s.dlq).await, 0, "transient failures never reach the DLQ here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_function_killed_mid_batch_loses_nothing_and_sends_nothing_twice() {
    let mut s = stack(&config(""), 1).await;
    // The first sends stall in the proxy, so the kill lands while a batch is in flight.
    s.proxy.inject(Fault {
        service: "sesv2".into(),
        operation: "SendEmail".into(),
        kind: FaultKind::Timeout(Duration::from_secs(3)),
        share: 1.0,
        remaining: Some(4),
    });
    let bodies: Vec<String> = (0..20).map(|i| order(&format!("crash-{i}"), i).to_string()).collect();
    s.enqueue(&bodies).await;
    let mut source = EventSource::new(s.sqs.clone(), &s.request_queue).await;
    source.invoke_timeout = Duration::from_secs(5);
    let source = Arc::new(source);
    let poller = {
        let (source, runtime) = (source.clone(), s.runtime.clone());
        tokio::spawn(async move { source.poll_once(&runtime, 1).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.functions[0].kill();
    assert_eq!(poller.await.unwrap(), 10, "the killed invocation had a full batch");
    assert_eq!(source.stats().failed_invocations.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A new execution environment picks up where the dead one stopped.
    let fresh = FunctionProcess::spawn(&bin(), &s.runtime, &s.env, s.logs.path());
    s.functions.push(fresh);
    assert!(source.drain(&s.runtime, 1, Duration::from_secs(90)).await, "{}", s.all_logs());
    let receipts = s.receipts().await;
    let groups = by_id(&receipts);
    for i in 0..20 {
        let st = statuses(&groups[&format!("crash-{i}")]);
        let terminal: Vec<&String> = st.iter().filter(|s| *s != "deferred").collect();
        assert_eq!(terminal.len(), 1, "crash-{i}: {st:?}");
        // Completed before the kill: the redelivery reports `duplicate` with the id
        // of the message that went out; everything else is sent after the restart.
        assert!(*terminal[0] == "sent" || *terminal[0] == "duplicate", "crash-{i}: {st:?}");
        let last = groups[&format!("crash-{i}")].last().unwrap();
        assert!(last["provider_message_id"].as_str().is_some(), "crash-{i}: {last}");
    }
    assert_eq!(s.moto.sent_emails().await.len(), 20, "nothing lost, nothing sent twice");
    assert_eq!(s.ses_sends().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_permanent_ses_rejection_fails_once_and_is_never_retried() {
    // moto refuses a sender whose identity is not verified, as SES does: MessageRejected.
    let cfg = config("").replace("hello@acme.example", "hello@unverified.example");
    let s = stack(&cfg, 1).await;
    s.enqueue(&[order("rejected-by-ses", 1).to_string()]).await;
    s.drain(1).await;
    let receipts = s.receipts().await;
    assert_eq!(statuses(&receipts), ["failed"]);
    assert_eq!(receipts[0]["reason"], "provider:MessageRejected");
    assert_eq!(s.source.stats().reported_failures.load(std::sync::atomic::Ordering::SeqCst), 0, "not retried");
    assert_eq!(s.proxy.count("sesv2", "SendEmail"), 1, "one attempt: the SDK does not retry it either");
    assert_eq!(s.queue_depth(&s.dlq).await, 0);
    assert!(s.moto.sent_emails().await.is_empty());
}

/// The request id a SendEmail call carried (its `herald-request-id` tag).
fn tagged_request_id(body: &Value) -> Option<String> {
    body["EmailTags"].as_array()?.iter().find(|t| t["Name"] == "herald-request-id")?["Value"]
        .as_str()
        .map(str::to_owned)
}

/// The audit's double send: SES acted on the request, and its answer was lost. No SDK
/// retry follows; a marketing request (at most once) ends `failed: provider:unknown_outcome`
/// and is never sent again, while a transactional one (at least once) is sent again.
/// On the code before the fix the SDK resent both at once, and both were then counted
/// as transient failures and sent again through SQS.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_send_whose_answer_is_lost_is_not_resent_at_most_once_and_is_at_least_once() {
    let s = stack(&config(""), 1).await;
    s.proxy.inject(Fault { remaining: Some(2), ..Fault::always("sesv2", "SendEmail", FaultKind::LostResponse) });
    s.enqueue(&[promo("lost-promo", "cust-lost").to_string(), order("lost-order", 7).to_string()]).await;
    s.drain(1).await;
    let receipts = s.receipts().await;
    let groups = by_id(&receipts);
    let promo_receipts = &groups["lost-promo"];
    assert_eq!(statuses(promo_receipts), ["failed"]);
    assert_eq!(promo_receipts[0]["reason"], "provider:unknown_outcome");
    let order_terminal: Vec<&Value> = groups["lost-order"].iter().filter(|r| r["status"] != "deferred").collect();
    assert_eq!(order_terminal.len(), 1, "{:?}", statuses(&groups["lost-order"]));
    assert_eq!(order_terminal[0]["status"], "sent");
    // What reached SES, per request: the lost answers included.
    let reached: Vec<String> = s
        .proxy
        .calls("sesv2", "SendEmail")
        .iter()
        .filter(|r| r.forwarded)
        .filter_map(|r| tagged_request_id(&r.body))
        .collect();
    assert_eq!(reached.iter().filter(|id| *id == "lost-promo").count(), 1, "{reached:?}");
    assert_eq!(reached.iter().filter(|id| *id == "lost-order").count(), 2, "{reached:?}");
    assert_eq!(s.moto.sent_emails().await.len(), 3);
}

/// Write units of DynamoDB per sent email, counted from every request the function
/// made (admission, completion, cap trims), at on-demand prices the largest part of
/// herald's running cost. Transactional with a tenant: the lock and the completion
/// (the suppression lists are read, not condition-checked in a transaction).
/// Marketing with a cap: the lock, one update of the recipient item (consent and every
/// cap window in one item, each list written whole and trimmed, since the reads brought
/// the item), the completion: no trims. At most 2 and 3 (the issue's targets are 3 and
/// 4). Read units too: the screen's reads are eventually consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_units_per_sent_email_stay_within_budget() {
    let s = stack(&config(""), 1).await;
    let units = |s: &Stack| -> f64 {
        s.proxy.records().iter().filter(|r| r.service == "dynamodb").map(|r| r.write_units()).sum()
    };
    let read_units = |s: &Stack| -> f64 {
        s.proxy.records().iter().filter(|r| r.service == "dynamodb").map(|r| r.read_units()).sum()
    };
    let orders: Vec<String> = (0..12)
        .map(|i| {
            let mut r = order(&format!("wcu-order-{i}"), 100 + i);
            r["tenant"] = json!("acme");
            r.to_string()
        })
        .collect();
    s.enqueue(&orders).await;
    s.drain(1).await;
    let got = statuses(&s.receipts().await);
    assert!(got.len() == 12 && got.iter().all(|st| st == "sent"), "{got:?}");
    let transactional = units(&s) / 12.0;
    let transactional_reads = read_units(&s) / 12.0;
    s.proxy.clear();
    let promos: Vec<String> =
        (0..12).map(|i| promo(&format!("wcu-promo-{i}"), &format!("reader-{i}")).to_string()).collect();
    s.enqueue(&promos).await;
    s.drain(1).await;
    let got = statuses(&s.receipts().await);
    assert!(got.len() == 12 && got.iter().all(|st| st == "sent"), "{got:?}");
    let marketing = units(&s) / 12.0;
    let marketing_reads = read_units(&s) / 12.0;
    // The suppression reads of a batch's records go out together.
    let reads = s.proxy.count("dynamodb", "BatchGetItem");
    assert!(reads < 12, "{reads} suppression reads for 12 emails");
    assert!(transactional <= 2.0, "{transactional} write units per transactional email");
    assert!(marketing <= 3.0, "{marketing} write units per marketing email");
    // Read units: the screen's items (the global and the tenant's suppression list; for
    // marketing, the recipient's consent), eventually consistent: ½ each (the promos
    // share one address, read once per batch: about 0.6; strongly consistent, 1.2).
    assert!(transactional_reads <= 1.0, "{transactional_reads} read units per transactional email");
    assert!(marketing_reads <= 1.0, "{marketing_reads} read units per marketing email");
    eprintln!(
        "per email: write units transactional {transactional:.2}, marketing {marketing:.2}; read units \
         {transactional_reads:.2}, {marketing_reads:.2}; {reads} reads"
    );
    assert_eq!(s.moto.sent_emails().await.len(), 24);
}
