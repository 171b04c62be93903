//! The SMS function end to end: its real binary, driven through the Lambda Runtime API
//! emulator by the SQS event-source emulator, talking to moto (SQS, DynamoDB, SNS)
//! through the recording proxy. moto drops SNS message attributes and never enforces
//! opt-outs, so what SNS was asked is read at the proxy.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use herald::adapters::aws::DynamoStore;
use herald::ports::StateStore;
use herald::request::RecipientKey;
use herald_e2e::proxy::{form_fields, sns_message_attributes, xml_text};
use herald_e2e::stack::{Options, Spec, Stack, by_request, sibling_binary};
use serde_json::{Value, json};

const SMS: &str = "SmsFunction";
const EMAIL: &str = "EmailFunction";

/// Each AWS call's timeout under test load; the invocation deadline fits a batch of such
/// calls (a record's, the opt-out check, the receipts'), as the template's timeout must.
const AWS_TIMEOUT_MS: u64 = 4_000;

fn options(config: String) -> Options {
    let calls = herald::pipeline::CALLS_PER_RECORD
        + herald_sms::FUNCTION.extra_calls_per_record
        + herald::pipeline::CALLS_PER_EMIT;
    let function_timeout = Duration::from_millis(AWS_TIMEOUT_MS * u64::from(calls)) + Duration::from_secs(4);
    Options { config, visibility: 30, aws_timeout_ms: AWS_TIMEOUT_MS, function_timeout }
}

fn sms_spec(env: Vec<(String, String)>) -> Spec {
    Spec { id: SMS, binary: PathBuf::from(env!("CARGO_BIN_EXE_herald-sms")), processes: 1, env, queue: None }
}

/// A fixed-offset zone whose local hour is `hour` now: `Etc/GMT-N` is UTC+N.
fn zone_at_local_hour(hour: i64) -> String {
    let utc_hour = i64::from(jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).hour());
    let mut offset = (hour - utc_hour).rem_euclid(24);
    if offset > 12 {
        offset -= 24;
    }
    match offset {
        0 => "Etc/UTC".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

fn sms(id: &str, category: &str, phone: &str, timezone: &str, text: &str) -> Value {
    json!({"id": id, "channel": "sms", "category": category,
           "recipient": {"id": format!("u-{id}"), "phone": phone, "timezone": timezone},
           "template": "echo", "data": {"text": text}})
}

/// One `Publish` SNS accepted, as the proxy saw it.
#[derive(Debug)]
struct Published {
    phone: String,
    message: String,
    attributes: BTreeMap<String, (String, String)>,
    message_id: String,
}

fn published(stack: &Stack) -> Vec<Published> {
    stack
        .proxy
        .accepted("sns", "Publish")
        .into_iter()
        .map(|r| {
            let mut form = form_fields(&r.body);
            Published {
                phone: form.remove("PhoneNumber").unwrap_or_default(),
                message: form.remove("Message").unwrap_or_default(),
                attributes: sns_message_attributes(&r.body),
                message_id: r.upstream_body.as_ref().and_then(|b| xml_text(b, "MessageId")).unwrap_or_default(),
            }
        })
        .collect()
}

fn attr(p: &Published, name: &str) -> Option<String> {
    p.attributes.get(name).map(|(_, v)| v.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mixed_batch_is_published_exactly_as_its_receipts_say() {
    let templates = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(templates.path().join("echo")).unwrap();
    std::fs::write(templates.path().join("echo/sms.hbs"), "{{text}}").unwrap();
    // Quiet hours 21:00-08:00 in the recipient's zone: a zone at 13:00 is open, one
    // at 02:00 is quiet.
    let (day, night) = (zone_at_local_hour(13), zone_at_local_hour(2));
    let config = r#"
[sms]
sender_id = "ACME"
max_price = "0.50"
max_segments = 6

[sms.categories.marketing]
max_segments = 2

[sms.countries.GB]
sender_id = "ACMEUK"
origination_number = "+447700900001"

[quiet_hours]
start = "21:00"
end = "08:00"
channels = ["sms"]
default_timezone = "UTC"
"#;
    let env = vec![
        ("HERALD_SNS_OPT_OUT_CHECK".to_owned(), "true".to_owned()),
        ("HERALD_TEMPLATES".to_owned(), templates.path().display().to_string()),
    ];
    let stack = Stack::start(vec![sms_spec(env)], &options(config.to_owned())).await;

    // herald's own consent list: this recipient left marketing.
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.table.clone());
    let left = RecipientKey::new(None, "u-consent");
    store.set_consent(&left, "marketing", false, jiff::Timestamp::now()).await.unwrap();

    let long = "Our winter sale starts now with new deals every day. ".repeat(7);
    let requests = [
        sms("gsm", "transactional", "+14155550101", &day, "Your code is 123456. Valid for 10 minutes."),
        sms("extension", "transactional", "+14155550102", &day, "Total: €25 {incl. VAT} [ref ~A|B^C]"),
        sms("ucs2", "transactional", "+14155550103", &day, "Привет! Ваш заказ готов 📦"),
        sms("smart", "marketing", "+447700900104", &day, "It’s here — the “winter” sale… see you"),
        sms("too-long", "marketing", "+14155550105", &day, &long),
        sms("invalid", "transactional", "+1 206 555", &day, "never sent"),
        sms("opted-out", "marketing", "+14155550199", &day, "moto says this number opted out"),
        sms("consent", "marketing", "+14155550106", &day, "herald says this recipient left"),
        sms("quiet-transactional", "transactional", "+14155550107", &night, "Your code is 654321"),
        sms("quiet-marketing", "marketing", "+14155550108", &night, "Sale tonight"),
    ];
    // The recipient whose consent is withdrawn.
    let mut requests = requests.to_vec();
    requests[7]["recipient"]["id"] = json!("u-consent");
    let bodies: Vec<String> = requests.iter().map(Value::to_string).collect();
    stack.enqueue(SMS, &bodies).await;
    // The marketing text in quiet hours waits on the queue, delayed, until 08:00.
    stack.settle(SMS, 2).await;

    let receipts = stack.receipts().await;
    let by_id = by_request(&receipts);
    let outcome = |id: &str| -> (String, String) {
        let rs = &by_id[id];
        assert_eq!(rs.len(), 1, "{id}: {rs:?}");
        (rs[0]["status"].as_str().unwrap_or("").to_owned(), rs[0]["reason"].as_str().unwrap_or("").to_owned())
    };
    let sent = ["gsm", "extension", "ucs2", "smart", "quiet-transactional"];
    for id in sent {
        assert_eq!(outcome(id).0, "sent", "{id}: {:?}", by_id[id]);
    }
    assert_eq!(outcome("too-long"), ("failed".into(), "sms_too_long".into()));
    assert_eq!(outcome("invalid").0, "rejected");
    assert!(outcome("invalid").1.starts_with("invalid_request:recipient.phone"), "{:?}", outcome("invalid"));
    assert_eq!(outcome("opted-out"), ("unsubscribed".into(), "opted_out".into()));
    assert_eq!(outcome("consent"), ("unsubscribed".into(), "unsubscribed:marketing".into()));
    assert_eq!(outcome("quiet-marketing"), ("deferred".into(), "quiet_hours".into()));

    // What SNS was asked is exactly what the sent receipts say, no more.
    let calls = published(&stack);
    assert_eq!(calls.len(), sent.len(), "{calls:#?}");
    let stored = stack.moto.sent_sms().await;
    assert_eq!(stored.len(), sent.len());
    for id in sent {
        let receipt = &by_id[id][0];
        let message_id = receipt["provider_message_id"].as_str().expect("a message id");
        let call = calls.iter().find(|c| c.message_id == message_id).expect("the publish of a sent receipt");
        let request = requests.iter().find(|r| r["id"] == id).expect("request");
        assert_eq!(call.phone, request["recipient"]["phone"].as_str().unwrap_or(""), "{id}");
        let kept = stored.iter().find(|m| m["message_id"] == message_id).expect("moto stored it");
        assert_eq!(kept["message"].as_str(), Some(call.message.as_str()));
        // The receipt's account of the message is the text that went out.
        let facts = &receipt["sms"];
        let cost = herald::render::sms::segment(&call.message);
        assert_eq!(facts["encoding"], cost.encoding.as_str(), "{id}: {facts}");
        assert_eq!(facts["segments"], cost.segments, "{id}: {facts}");
        assert_eq!(facts["characters"], cost.characters, "{id}: {facts}");
        let kind = if request["category"] == "transactional" { "Transactional" } else { "Promotional" };
        assert_eq!(attr(call, "AWS.SNS.SMS.SMSType").as_deref(), Some(kind), "{id}");
        assert_eq!(attr(call, "AWS.SNS.SMS.MaxPrice").as_deref(), Some("0.50"), "{id}");
    }
    let call = |id: &str| {
        let message_id = by_id[id][0]["provider_message_id"].as_str().unwrap_or("").to_owned();
        calls.iter().find(|c| c.message_id == message_id).expect("published")
    };
    // Encodings as the bodies demand; the smart quotes and dashes of a marketing text
    // became GSM-7, and the receipt says which characters were replaced.
    assert_eq!(by_id["gsm"][0]["sms"]["encoding"], "gsm-7");
    assert_eq!(by_id["extension"][0]["sms"]["encoding"], "gsm-7");
    assert_eq!(by_id["ucs2"][0]["sms"]["encoding"], "ucs-2");
    assert_eq!(call("smart").message, "It's here - the \"winter\" sale... see you");
    assert_eq!(by_id["smart"][0]["sms"]["encoding"], "gsm-7");
    assert!(by_id["smart"][0]["sms"]["transliterated"].as_array().is_some_and(|t| !t.is_empty()));
    // A transactional text keeps its characters: no transliteration by default.
    assert_eq!(call("ucs2").message, "Привет! Ваш заказ готов 📦");
    // The destination's settings: a UK number gets the UK sender id and number.
    assert_eq!(attr(call("smart"), "AWS.SNS.SMS.SenderID").as_deref(), Some("ACMEUK"));
    assert_eq!(attr(call("smart"), "AWS.MM.SMS.OriginationNumber").as_deref(), Some("+447700900001"));
    assert_eq!(attr(call("gsm"), "AWS.SNS.SMS.SenderID").as_deref(), Some("ACME"));
    assert_eq!(attr(call("gsm"), "AWS.MM.SMS.OriginationNumber"), None);
    // The opted-out number was asked about, and nothing was published to it.
    let asked: Vec<String> = stack
        .proxy
        .accepted("sns", "CheckIfPhoneNumberIsOptedOut")
        .iter()
        .filter_map(|r| form_fields(&r.body).remove("phoneNumber"))
        .collect();
    assert!(asked.contains(&"+14155550199".to_owned()), "{asked:?}");
    assert!(!asked.contains(&"+14155550106".to_owned()), "herald's consent list answers first");
    // Receipts never carry a recipient's number.
    for r in &receipts {
        for request in &requests {
            let number = request["recipient"]["phone"].as_str().unwrap_or("").replace(' ', "");
            let digits = number.trim_start_matches("+1");
            assert!(!r.to_string().contains(digits), "a receipt carries a phone number: {r}");
        }
    }
    assert_eq!(stack.queue_depth(&stack.function(SMS).dlq).await, 0);
    assert_eq!(stack.queue_depth(&stack.function(SMS).request_queue).await, 1, "the quiet-hours deferral waits");
}

fn email_config() -> String {
    r#"
quiet_hours = "off"

[email]
from = "Acme <hello@acme.example>"
unsubscribe_url = "https://acme.example/unsubscribe?token={token}"
"#
    .to_owned()
}

/// An SMS request on the email queue and an email request on the SMS queue are rejected
/// before admission; the same ids then succeed on the right queues (one shared table).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_on_the_wrong_queue_is_rejected_and_its_id_then_succeeds_on_the_right_one() {
    // The email binary is another package's: found beside this one.
    let email_spec = Spec::new(EMAIL, sibling_binary(env!("CARGO_BIN_EXE_herald-sms"), "herald-email"));
    let stack = Stack::start(vec![sms_spec(Vec::new()), email_spec], &options(email_config())).await;
    stack.moto.verify_email_identity("acme.example").await;

    let text = json!({"id": "lost-text", "channel": "sms", "category": "transactional",
        "recipient": {"id": "u1", "phone": "+14155550111"}, "template": "one-time-code", "data": {"code": "123456"}});
    let mail = json!({"id": "lost-mail", "channel": "email", "category": "transactional",
        "recipient": {"id": "u2", "email": "ada@example.com"}, "template": "one-time-code", "data": {"code": "654321"}});
    stack.enqueue(EMAIL, &[text.to_string()]).await;
    stack.enqueue(SMS, &[mail.to_string()]).await;
    stack.drain(EMAIL, 1).await;
    stack.drain(SMS, 1).await;
    let first = by_request(&stack.receipts().await);
    assert_eq!(first["lost-text"][0]["status"], "rejected");
    assert_eq!(first["lost-text"][0]["reason"], "wrong_queue:sms");
    assert_eq!(first["lost-mail"][0]["status"], "rejected");
    assert_eq!(first["lost-mail"][0]["reason"], "wrong_queue:email");
    assert!(stack.proxy.accepted("sns", "Publish").is_empty() && stack.proxy.accepted("sesv2", "SendEmail").is_empty());

    stack.enqueue(SMS, &[text.to_string()]).await;
    stack.enqueue(EMAIL, &[mail.to_string()]).await;
    stack.drain(SMS, 1).await;
    stack.drain(EMAIL, 1).await;
    let second = by_request(&stack.receipts().await);
    assert_eq!(second["lost-text"][0]["status"], "sent", "{:?}", second["lost-text"]);
    assert_eq!(second["lost-mail"][0]["status"], "sent", "{:?}", second["lost-mail"]);
    assert_eq!(stack.proxy.accepted("sns", "Publish").len(), 1);
    assert_eq!(stack.proxy.accepted("sesv2", "SendEmail").len(), 1);
}
